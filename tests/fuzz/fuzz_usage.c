/*
 * fuzz_usage.c — libFuzzer target for the streaming usage/id/model scanner over
 * upstream response bodies, JSON and SSE (stats/usage_scan.h).
 *
 * The input is a response body. It is fed whole, in pieces of 1 to 17 bytes (the
 * first byte of the input picks the size), in pieces of varying size (taken from
 * the input's own bytes, with empty feeds between them) and byte by byte. The
 * target aborts when:
 *   - the four ways give different results (token counts, id, model): the scanner
 *     must not depend on how the body is split;
 *   - at any point a count is below -1, or goes back to -1 once seen; an id or model
 *     is not NUL-terminated inside its buffer; an id or model seen part way disagrees
 *     with the final one on their common prefix, or is more than 3 bytes (one cut
 *     UTF-8 character) longer than it;
 *   - a body without '{' yields anything, or one without digits a count;
 *   - the body is valid UTF-8 but the id or model is not (a cut must fall on a
 *     character boundary);
 *   - the body is a JSON object jansson reads (no duplicate keys, no raw NUL, no
 *     "-0"), and the scanner's id, model or counts differ from those of the tree:
 *     the top-level "id" / "model" strings (cut to at most 79 bytes at a character
 *     boundary; left out when the string has characters beyond the BMP, which the
 *     scanner does not decode from surrogate escapes), and the last non-negative
 *     integer prompt_tokens / completion_tokens, in document order, of an object
 *     that is the value of a "usage" member at most SY_USAGE_MAX_DEPTH deep.
 * Build with libFuzzer: tests/fuzz/run; without it: meson test --suite fuzz.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "stats/usage_scan.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* The results of a scan, copied out. */
typedef struct {
  long long prompt, completion;
  char id[SY_USAGE_STR_MAX], model[SY_USAGE_STR_MAX];
} result_t;

/* A string result's length; aborts unless it is NUL-terminated inside its buffer. */
static size_t str_len(const char *s) {
  const char *nul = memchr(s, '\0', SY_USAGE_STR_MAX);
  REQUIRE(nul != NULL);
  return (size_t)(nul - s);
}

static void snapshot(const sy_usage_scan_t *s, result_t *r) {
  REQUIRE(s->prompt_tokens >= -1 && s->completion_tokens >= -1);
  r->prompt = s->prompt_tokens;
  r->completion = s->completion_tokens;
  memcpy(r->id, s->id, sizeof r->id);
  memcpy(r->model, s->model, sizeof r->model);
  str_len(r->id);
  str_len(r->model);
}

static int same(const result_t *a, const result_t *b) {
  return a->prompt == b->prompt && a->completion == b->completion && strcmp(a->id, b->id) == 0 &&
         strcmp(a->model, b->model) == 0;
}

/* Between two moments of one scan: counts once seen stay seen. */
static void check_progress(const result_t *before, const result_t *after) {
  REQUIRE(before->prompt < 0 || after->prompt >= 0);
  REQUIRE(before->completion < 0 || after->completion >= 0);
}

/* A string seen part way against the final one (see the file comment). */
static void check_partial_str(const char *part, const char *final) {
  size_t pl = strlen(part), fl = strlen(final), n = pl < fl ? pl : fl;
  REQUIRE(memcmp(part, final, n) == 0);
  REQUIRE(fl + 3 >= pl);
}

/* Feeds in pieces; sizes[] (cycled) gives each piece's size, 0 = an empty feed. Checks
 * each moment against the previous one and against `final`, the result of the whole. */
static void feed_pieces(const char *body, size_t n, const uint8_t *sizes, size_t nsizes,
                        const result_t *final, result_t *out) {
  sy_usage_scan_t s;
  sy_usage_scan_init(&s);
  result_t prev;
  snapshot(&s, &prev);
  for (size_t off = 0, i = 0; off < n; i++) {
    size_t k = sizes[i % nsizes];
    if (k > n - off)
      k = n - off;
    sy_usage_scan_feed(&s, k > 0 ? body + off : NULL, k);
    off += k;
    result_t now;
    snapshot(&s, &now);
    check_progress(&prev, &now);
    check_partial_str(now.id, final->id);
    check_partial_str(now.model, final->model);
    prev = now;
  }
  snapshot(&s, out);
}


/* ---- the jansson cross-check ---- */

/* Walks container v at depth `depth` (the top object is 1) in document order. */
static void walk(const json_t *v, unsigned depth, int usage, long long *prompt,
                 long long *completion) {
  if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++)
      walk(json_array_get(v, i), depth + 1, 0, prompt, completion);
    return;
  }
  if (!json_is_object(v))
    return;
  const char *k;
  json_t *m;
  json_object_foreach((json_t *)v, k, m) {
    if (usage && json_is_integer(m) && json_integer_value(m) >= 0) {
      if (strcmp(k, "prompt_tokens") == 0)
        *prompt = json_integer_value(m);
      else if (strcmp(k, "completion_tokens") == 0)
        *completion = json_integer_value(m);
    }
    int child_usage = strcmp(k, "usage") == 0 && json_is_object(m) &&
                      depth + 1 <= SY_USAGE_MAX_DEPTH;
    walk(m, depth + 1, child_usage, prompt, completion);
  }
}

/* The scanner's string result against the tree's top-level member `key`. */
static void check_str_member(const json_t *root, const char *key, const char *got) {
  const json_t *v = json_object_get(root, key);
  if (!json_is_string(v)) {
    REQUIRE(got[0] == '\0');
    return;
  }
  const char *want = json_string_value(v);
  size_t wl = json_string_length(v), gl = strlen(got);
  for (size_t i = 0; i < wl; i++)
    if ((unsigned char)want[i] >= 0xF0)
      return; /* beyond the BMP: see the file comment */
  if (wl < SY_USAGE_STR_MAX) {
    REQUIRE(gl == wl && memcmp(got, want, wl) == 0);
  } else {
    REQUIRE(gl + 3 >= SY_USAGE_STR_MAX - 1 && gl < SY_USAGE_STR_MAX && memcmp(got, want, gl) == 0);
    REQUIRE(((unsigned char)want[gl] & 0xC0) != 0x80); /* cut at a character boundary */
  }
}

static void check_tree(const char *body, size_t n, const result_t *r) {
  if (memchr(body, '\0', n) != NULL || memmem(body, n, "-0", 2) != NULL)
    return;
  json_t *root = json_loadb(body, n, JSON_REJECT_DUPLICATES, NULL);
  if (json_is_object(root)) {
    long long prompt = -1, completion = -1;
    walk(root, 1, 0, &prompt, &completion);
    REQUIRE(r->prompt == prompt && r->completion == completion);
    check_str_member(root, "id", r->id);
    check_str_member(root, "model", r->model);
  }
  json_decref(root);
}

/* True if none of the n bytes at p is an ASCII digit. */
static int no_digit(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] >= '0' && p[i] <= '9')
      return 0;
  return 1;
}

/* libFuzzer entry point: see the file comment. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *body = size > 0 ? (const char *)data : ""; /* libFuzzer may pass NULL */
  sy_usage_scan_t s;
  sy_usage_scan_init(&s);
  result_t whole, fixed, varied, bytes;
  snapshot(&s, &whole);
  REQUIRE(whole.prompt == -1 && whole.completion == -1 && !whole.id[0] && !whole.model[0]);
  sy_usage_scan_feed(&s, body, size);
  snapshot(&s, &whole);

  uint8_t piece = (uint8_t)(size > 0 ? data[0] % 17 + 1 : 1), one = 1;
  feed_pieces(body, size, &piece, 1, &whole, &fixed);
  /* Sizes 0..12 from the body's last bytes, backwards, then one of 5 (never all 0). */
  uint8_t sizes[64];
  size_t nsizes = 0;
  while (nsizes < size && nsizes < sizeof sizes - 1) {
    sizes[nsizes] = (uint8_t)(data[size - 1 - nsizes] % 13);
    nsizes++;
  }
  sizes[nsizes++] = 5;
  feed_pieces(body, size, sizes, nsizes, &whole, &varied);
  feed_pieces(body, size, &one, 1, &whole, &bytes);
  REQUIRE(same(&whole, &fixed) && same(&whole, &varied) && same(&whole, &bytes));

  if (memchr(body, '{', size) == NULL)
    REQUIRE(whole.prompt == -1 && whole.completion == -1 && !whole.id[0] && !whole.model[0]);
  if (no_digit(body, size))
    REQUIRE(whole.prompt == -1 && whole.completion == -1);
  if (valid_utf8((const unsigned char *)body, size))
    REQUIRE(valid_utf8((const unsigned char *)whole.id, strlen(whole.id)) &&
            valid_utf8((const unsigned char *)whole.model, strlen(whole.model)));
  check_tree(body, size, &whole);
  return 0;
}
