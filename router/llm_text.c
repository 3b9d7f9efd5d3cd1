/*
 * llm_text.c — the output text of an LLM response and a cheap comparison of two
 * texts; see llm_text.h.
 *
 * The bodies are parsed with jansson: a shadow comparison runs once per mirrored
 * request, after both responses are complete, off the client's path, so a full
 * parse of a body of at most SY_LLM_CAPTURE_MAX bytes is affordable and much
 * simpler to get right than another incremental scanner. The similarity hashes
 * words instead of keeping them: a word set is then a sorted array of 64-bit
 * numbers, and the intersection one merge, with no allocation per word.
 */
#include "router/llm_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* ---- capture ------------------------------------------------------------------------- */

void sy_llm_capture_init(sy_llm_capture_t *c, size_t max) {
  memset(c, 0, sizeof *c);
  c->max = max;
}

void sy_llm_capture_add(sy_llm_capture_t *c, const char *p, size_t n) {
  if (n > c->max - c->len) {
    n = c->max - c->len;
    c->truncated = 1;
  }
  if (n == 0)
    return;
  if (c->len + n > c->cap) {
    /* Grow geometrically, but never past max: most answers are a few KiB. */
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + n)
      cap *= 2;
    if (cap > c->max)
      cap = c->max;
    char *nb = realloc(c->buf, cap);
    if (nb == NULL) {
      c->truncated = 1;
      return;
    }
    c->buf = nb;
    c->cap = cap;
  }
  memcpy(c->buf + c->len, p, n);
  c->len += n;
}

void sy_llm_capture_free(sy_llm_capture_t *c) {
  free(c->buf);
  sy_llm_capture_init(c, c->max);
}

/* ---- extraction ---------------------------------------------------------------------- */

typedef struct strbuf_s {
  char *p;
  size_t len, cap;
  int oom;
} strbuf_t;

static void sb_add(strbuf_t *sb, const char *p, size_t n) {
  if (sb->oom || n == 0)
    return;
  if (sb->len + n + 1 > sb->cap) {
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + n + 1)
      cap *= 2;
    char *np = realloc(sb->p, cap);
    if (np == NULL) {
      sb->oom = 1;
      return;
    }
    sb->p = np;
    sb->cap = cap;
  }
  memcpy(sb->p + sb->len, p, n);
  sb->len += n;
}

static void sb_add_json_str(strbuf_t *sb, const json_t *s) {
  sb_add(sb, json_string_value(s), json_string_length(s));
}

/* content: a string, null, or an array of parts with "text" strings. Returns 1 if
 * it is one of these (text appended), else 0. */
static int add_content(strbuf_t *sb, const json_t *content) {
  if (json_is_string(content)) {
    sb_add_json_str(sb, content);
    return 1;
  }
  if (json_is_null(content))
    return 1;
  if (!json_is_array(content))
    return 0;
  size_t i;
  const json_t *part;
  json_array_foreach(content, i, part) {
    const json_t *t = json_object_get(part, "text");
    if (json_is_string(t))
      sb_add_json_str(sb, t);
  }
  return 1;
}

/* Appends the text of choices[0] of object o: message.content (delta.content for a
 * stream chunk), else text. Returns 1 if o has such a choice, else 0. */
static int add_choice(strbuf_t *sb, const json_t *o, const char *member) {
  const json_t *choices = json_object_get(o, "choices");
  const json_t *c0 = json_array_get(choices, 0);
  if (!json_is_object(c0))
    return 0;
  const json_t *m = json_object_get(c0, member);
  if (json_is_object(m)) {
    const json_t *content = json_object_get(m, "content");
    /* No content at all: e.g. a delta with only a role, or tool calls. */
    return content == NULL ? 1 : add_content(sb, content);
  }
  const json_t *t = json_object_get(c0, "text");
  if (json_is_string(t)) {
    sb_add_json_str(sb, t);
    return 1;
  }
  return 0;
}

static int extract_json(const char *body, size_t len, strbuf_t *sb) {
  json_t *root = json_loadb(body, len, 0, NULL);
  int found = json_is_object(root) && add_choice(sb, root, "message");
  json_decref(root);
  return found ? 0 : -1;
}

/* One SSE line: returns 1 if it was a data line holding a JSON object. */
static int sse_line(strbuf_t *sb, const char *p, size_t n) {
  if (n > 0 && p[n - 1] == '\r')
    n--;
  if (n < 5 || memcmp(p, "data:", 5) != 0)
    return 0;
  p += 5;
  n -= 5;
  while (n > 0 && (*p == ' ' || *p == '\t')) {
    p++;
    n--;
  }
  if (n == 0 || *p != '{') /* [DONE], or not an object */
    return 0;
  json_t *o = json_loadb(p, n, 0, NULL);
  int ok = json_is_object(o);
  if (ok)
    add_choice(sb, o, "delta");
  json_decref(o);
  return ok;
}

static int extract_sse(const char *body, size_t len, strbuf_t *sb) {
  size_t objects = 0;
  if (len == 0)
    return -1; /* (body may then be NULL) */
  const char *p = body, *end = body + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl != NULL ? nl : end;
    objects += (size_t)sse_line(sb, p, (size_t)(eol - p));
    p = nl != NULL ? nl + 1 : end;
  }
  return objects > 0 ? 0 : -1;
}

int sy_llm_text_extract(const char *body, size_t len, char **out, size_t *outlen) {
  strbuf_t sb = {NULL, 0, 0, 0};
  size_t i = 0;
  *out = NULL;
  *outlen = 0;
  while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
    i++;
  int rc = i < len && body[i] == '{' ? extract_json(body, len, &sb) : extract_sse(body, len, &sb);
  if (rc == 0 && !sb.oom && sb.p == NULL) { /* found, but empty: still a string */
    sb.p = malloc(1);
    sb.oom = sb.p == NULL;
  }
  if (rc < 0 || sb.oom) {
    free(sb.p);
    return -1;
  }
  sb.p[sb.len] = '\0';
  *out = sb.p;
  *outlen = sb.len;
  return 0;
}

/* ---- comparison ---------------------------------------------------------------------- */

size_t sy_llm_text_chars(const char *s, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    count += ((unsigned char)s[i] & 0xC0) != 0x80; /* every byte but continuation bytes */
  return count;
}

static int is_word_byte(unsigned char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         ch >= 0x80;
}

/* Hashes the words of s into h (NULL: only count them); returns the count. */
static size_t word_hashes(const char *s, size_t n, uint64_t *h) {
  size_t count = 0;
  size_t i = 0;
  while (i < n) {
    while (i < n && !is_word_byte((unsigned char)s[i]))
      i++;
    if (i == n)
      break;
    uint64_t x = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (; i < n && is_word_byte((unsigned char)s[i]); i++) {
      unsigned char ch = (unsigned char)s[i];
      if (ch >= 'A' && ch <= 'Z')
        ch = (unsigned char)(ch + 32);
      x = (x ^ ch) * 0x100000001b3ULL;
    }
    if (h != NULL)
      h[count] = x;
    count++;
  }
  return count;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The sorted, distinct word hashes of s in a new array (*set, *n); -1 if out of memory. */
static int word_set(const char *s, size_t len, uint64_t **set, size_t *n) {
  size_t count = word_hashes(s, len, NULL);
  *set = NULL;
  *n = 0;
  if (count == 0)
    return 0;
  uint64_t *h = malloc(count * sizeof *h);
  if (h == NULL)
    return -1;
  word_hashes(s, len, h);
  qsort(h, count, sizeof *h, cmp_u64);
  size_t k = 1;
  for (size_t i = 1; i < count; i++)
    if (h[i] != h[k - 1])
      h[k++] = h[i];
  *set = h;
  *n = k;
  return 0;
}

double sy_llm_text_similarity(const char *a, size_t an, const char *b, size_t bn) {
  uint64_t *sa, *sb;
  size_t na, nb;
  if (word_set(a, an, &sa, &na) < 0)
    return -1;
  if (word_set(b, bn, &sb, &nb) < 0) {
    free(sa);
    return -1;
  }
  size_t common = 0;
  for (size_t i = 0, j = 0; i < na && j < nb;) {
    if (sa[i] == sb[j]) {
      common++;
      i++;
      j++;
    } else if (sa[i] < sb[j]) {
      i++;
    } else {
      j++;
    }
  }
  free(sa);
  free(sb);
  size_t uni = na + nb - common;
  return uni == 0 ? 1.0 : (double)common / (double)uni;
}
