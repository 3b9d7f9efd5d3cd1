/*
 * rewrite.c — applies a variant's body changes to a JSON request body by splicing.
 *
 * The body is validated by json_scan (strict RFC 8259, no allocation) and then
 * copied piecewise into one new buffer: only the values that change are replaced
 * and only the members that are missing are inserted, so every other byte the
 * client sent (numbers, escapes, whitespace, key order, duplicate keys) reaches
 * the upstream unchanged. Changes, in the order the old tree-based version applied
 * them (retrieval fields last, so they win on a clash):
 *   - every top-level "model" member gets the variant's model (all duplicates, so
 *     it does not matter which one the upstream reads); appended if absent;
 *   - in every top-level "messages" array (which must be an array), the first
 *     object whose last "role" member is the string "system" gets the prompt in
 *     all its "content" members (added if it has none); with no such element a
 *     system message is inserted at index 0; no "messages", no change;
 *   - every body field replaces the top-level members with its key, or is appended.
 * The walk runs twice: once to size the output, once to write it into a buffer of
 * exactly that size (the caller's, with sy_rewrite_body_to: the upstream request's,
 * so that a large body is not copied once more). Every step is linear in the body:
 * each container on the path to a changed member is walked once per pass. Only body field values are serialised with jansson (config
 * data); the request body is never parsed into a tree. Nothing here does I/O.
 */
#include "router/rewrite.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/json_scan.h"

/* The output under construction: sizing pass (out == NULL) or writing pass. */
typedef struct {
  const char *src; /* the request body */
  size_t done;     /* src bytes before this offset have been copied or dropped */
  char *out;       /* NULL while sizing */
  size_t n;        /* output bytes so far */
  size_t cap;      /* size of out */
  int failed;      /* a body field could not be serialised */
} emit_t;

/*
 * Body field values already serialised during this call: each is dumped by
 * jansson once, not once per pass (values that do not fit are dumped each time).
 */
#define DUMP_ITEMS 16
typedef struct {
  struct {
    const json_t *value;
    size_t off, len; /* len SIZE_MAX: too big for text, dump it each time */
  } item[DUMP_ITEMS];
  size_t n;
  size_t used;
  char text[1024];
} dump_cache_t;

/* One rewrite: the variant's changes, prepared once for both passes. */
typedef struct {
  const sy_variant_conf_t *v;
  const char *body;
  size_t len;
  const json_t *fields;        /* v->body_fields if it has members, else NULL */
  size_t model_len, model_q;   /* lengths of the text and of its quoted form */
  size_t prompt_len, prompt_q; /* (quoted: SIZE_MAX if not valid UTF-8) */
  char *err;
  size_t errlen;
  dump_cache_t dumps;
} job_t;

/* What the walk of the top-level object found. */
typedef struct {
  int model;       /* a "model" member is present */
  uint64_t fields; /* bit i: the key of body field i (i < 64) is present */
  size_t members;  /* number of top-level members */
  size_t last_end; /* offset just past the last member's value */
} seen_t;

__attribute__((format(printf, 3, 4)))
static int set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* True if v->body_fields holds at least one field. */
static int has_body_fields(const sy_variant_conf_t *v) {
  return v->body_fields != NULL && json_is_object(v->body_fields) &&
         json_object_size(v->body_fields) > 0;
}

/* True if the variant changes anything in the body (so the body must be parsed). */
int sy_rewrite_needs_body(const sy_variant_conf_t *v) {
  return v->model != NULL || v->system_prompt != NULL || has_body_fields(v);
}

/* Copies the body up to offset off (if not done yet). */
static void copy_to(emit_t *e, size_t off) {
  if (off <= e->done)
    return;
  if (e->out != NULL)
    memcpy(e->out + e->n, e->src + e->done, off - e->done);
  e->n += off - e->done;
  e->done = off;
}

/* Appends n bytes of new text. */
static void put_raw(emit_t *e, const char *s, size_t n) {
  if (e->out != NULL)
    memcpy(e->out + e->n, s, n);
  e->n += n;
}

static void put_lit(emit_t *e, const char *s) {
  put_raw(e, s, strlen(s));
}

/* Appends text (len bytes) as a JSON string whose quoted length is qlen. */
static void put_quoted(emit_t *e, const char *text, size_t len, size_t qlen) {
  if (e->out != NULL)
    sy_json_quote(text, len, e->out + e->n);
  e->n += qlen;
}

/* The cached compact text of value (dumping it into the cache first), or NULL. */
static const char *cached_dump(dump_cache_t *c, const json_t *value, size_t *len) {
  size_t i = 0;
  while (i < c->n && c->item[i].value != value)
    i++;
  if (i == c->n) {
    if (c->n == DUMP_ITEMS)
      return NULL;
    size_t room = sizeof c->text - c->used;
    size_t k = json_dumpb(value, c->text + c->used, room, JSON_COMPACT | JSON_ENCODE_ANY);
    c->item[i].value = value;
    c->item[i].off = c->used;
    c->item[i].len = k == 0 || k > room ? SIZE_MAX : k;
    c->used += c->item[i].len == SIZE_MAX ? 0 : k;
    c->n++;
  }
  *len = c->item[i].len;
  return *len == SIZE_MAX ? NULL : c->text + c->item[i].off;
}

/* Appends a body field value, serialised compact by jansson. */
static void put_json(job_t *j, emit_t *e, const json_t *value) {
  size_t len;
  const char *text = cached_dump(&j->dumps, value, &len);
  if (text != NULL) {
    put_raw(e, text, len);
    return;
  }
  size_t room = e->out != NULL ? e->cap - e->n : 0;
  size_t k = json_dumpb(value, e->out != NULL ? e->out + e->n : NULL, room,
                        JSON_COMPACT | JSON_ENCODE_ANY);
  if (k == 0 || (e->out != NULL && k > room))
    e->failed = 1;
  else
    e->n += k;
}

/* Starts replacing the body's span v: copies up to it and drops it. */
static void replace(emit_t *e, sy_json_span_t v) {
  copy_to(e, v.off);
  e->done = v.off + v.len;
}

/* Appends `,"key":` (no comma before the first member of an empty object). */
static void put_member_start(emit_t *e, int *first, const char *key) {
  size_t q = sy_json_quote(key, strlen(key), NULL);
  if (q == SIZE_MAX) {
    e->failed = 1;
    return;
  }
  if (!*first)
    put_lit(e, ",");
  *first = 0;
  put_quoted(e, key, strlen(key), q);
  put_lit(e, ":");
}

/* True if the object msg is a system message: its (last) "role" is "system". */
static int is_system_message(const char *b, sy_json_span_t msg) {
  if (sy_json_type(b, msg) != SY_JSON_OBJECT)
    return 0;
  sy_json_iter_t it;
  sy_json_span_t key, val, role = {0, 0};
  sy_json_iter_init(&it, b, msg);
  while (sy_json_next_member(&it, &key, &val)) {
    if (sy_json_string_eq(b, key, "role"))
      role = val; /* jansson keeps the last of duplicate keys */
  }
  return role.len > 0 && sy_json_string_eq(b, role, "system");
}

/* Puts the prompt into every "content" of the system message msg (adds one if none). */
static void set_content(const job_t *j, emit_t *e, sy_json_span_t msg) {
  sy_json_iter_t it;
  sy_json_span_t key, val;
  size_t last_end = msg.off + 1;
  int found = 0;
  sy_json_iter_init(&it, j->body, msg);
  while (sy_json_next_member(&it, &key, &val)) {
    last_end = val.off + val.len;
    if (sy_json_string_eq(j->body, key, "content")) {
      replace(e, val);
      put_quoted(e, j->v->system_prompt, j->prompt_len, j->prompt_q);
      found = 1;
    }
  }
  if (!found) {
    copy_to(e, last_end);
    put_lit(e, ",\"content\":");
    put_quoted(e, j->v->system_prompt, j->prompt_len, j->prompt_q);
  }
}

/* Sets the system prompt in the messages array arr (see the file comment). */
static void set_prompt(const job_t *j, emit_t *e, sy_json_span_t arr) {
  sy_json_iter_t it;
  sy_json_span_t msg;
  int any = 0;
  sy_json_iter_init(&it, j->body, arr);
  while (sy_json_next_element(&it, &msg)) {
    if (is_system_message(j->body, msg)) {
      set_content(j, e, msg);
      return;
    }
    any = 1;
  }
  copy_to(e, arr.off + 1);
  put_lit(e, "{\"role\":\"system\",\"content\":");
  put_quoted(e, j->v->system_prompt, j->prompt_len, j->prompt_q);
  put_lit(e, any ? "}," : "}");
}

/* The body field whose key is the string token key (its index in *index), or NULL. */
static const json_t *field_for(const job_t *j, sy_json_span_t key, size_t *index) {
  const char *k;
  json_t *value;
  size_t i = 0;
  if (j->fields == NULL)
    return NULL;
  json_object_foreach((json_t *)j->fields, k, value) {
    if (sy_json_string_eq(j->body, key, k)) {
      *index = i;
      return value;
    }
    i++;
  }
  return NULL;
}

/* Applies the variant to one top-level member; returns 0, or -1 with err set. */
static int rewrite_member(job_t *j, emit_t *e, sy_json_span_t key, sy_json_span_t val,
                          seen_t *seen) {
  int is_model = sy_json_string_eq(j->body, key, "model");
  int is_messages = j->v->system_prompt != NULL && sy_json_string_eq(j->body, key, "messages");
  seen->model |= is_model;
  if (is_messages && sy_json_type(j->body, val) != SY_JSON_ARRAY)
    return set_err(j->err, j->errlen, "messages must be an array");
  if (is_messages && j->prompt_q == SIZE_MAX)
    return set_err(j->err, j->errlen, "system prompt is not valid UTF-8");
  size_t index = 0;
  const json_t *field = field_for(j, key, &index);
  if (field != NULL) {
    if (index < 64)
      seen->fields |= (uint64_t)1 << index;
    replace(e, val);
    put_json(j, e, field);
  } else if (is_model && j->v->model != NULL) {
    replace(e, val);
    put_quoted(e, j->v->model, j->model_len, j->model_q);
  } else if (is_messages) {
    set_prompt(j, e, val);
  }
  return 0;
}

/* True if the top-level object root has a member named key. */
static int has_member(const job_t *j, sy_json_span_t root, const char *key) {
  sy_json_iter_t it;
  sy_json_span_t k, val;
  sy_json_iter_init(&it, j->body, root);
  while (sy_json_next_member(&it, &k, &val)) {
    if (sy_json_string_eq(j->body, k, key))
      return 1;
  }
  return 0;
}

/* Appends the model and the body fields the object did not have, in that order. */
static void append_missing(job_t *j, emit_t *e, sy_json_span_t root, const seen_t *seen) {
  int first = seen->members == 0;
  int add_model = j->v->model != NULL && !seen->model;
  const json_t *model_field = j->fields ? json_object_get(j->fields, "model") : NULL;
  if (add_model) {
    put_member_start(e, &first, "model");
    if (model_field != NULL)
      put_json(j, e, model_field);
    else
      put_quoted(e, j->v->model, j->model_len, j->model_q);
  }
  if (j->fields == NULL)
    return;
  const char *k;
  json_t *value;
  size_t i = 0;
  json_object_foreach((json_t *)j->fields, k, value) {
    int present = i < 64 ? (int)((seen->fields >> i) & 1) : has_member(j, root, k);
    if (!present && !(add_model && value == model_field)) {
      put_member_start(e, &first, k);
      put_json(j, e, value);
    }
    i++;
  }
}

/* One pass over the object root: sizes (e->out NULL) or writes the output. */
static int rewrite_object(job_t *j, emit_t *e, sy_json_span_t root) {
  seen_t seen = {0, 0, 0, root.off + 1};
  sy_json_iter_t it;
  sy_json_span_t key, val;
  sy_json_iter_init(&it, j->body, root);
  while (sy_json_next_member(&it, &key, &val)) {
    if (rewrite_member(j, e, key, val, &seen) != 0)
      return -1;
    seen.members++;
    seen.last_end = val.off + val.len;
  }
  copy_to(e, seen.last_end);
  append_missing(j, e, root, &seen);
  copy_to(e, j->len);
  if (e->failed)
    return set_err(j->err, j->errlen, "cannot serialise a body field (out of memory?)");
  return 0;
}

/* Prepares a job: quoted lengths of the model and the prompt. */
static int job_init(job_t *j, const sy_variant_conf_t *v, const char *body, size_t len, char *err,
                    size_t errlen) {
  memset(j, 0, offsetof(job_t, dumps)); /* the cache's text needs no clearing */
  j->dumps.n = 0;
  j->dumps.used = 0;
  j->v = v;
  j->body = body;
  j->len = len;
  j->fields = has_body_fields(v) ? v->body_fields : NULL;
  j->err = err;
  j->errlen = errlen;
  if (v->model != NULL) {
    j->model_len = strlen(v->model);
    j->model_q = sy_json_quote(v->model, j->model_len, NULL);
    if (j->model_q == SIZE_MAX)
      return set_err(err, errlen, "cannot set model (not valid UTF-8?)");
  }
  if (v->system_prompt != NULL) {
    j->prompt_len = strlen(v->system_prompt);
    j->prompt_q = sy_json_quote(v->system_prompt, j->prompt_len, NULL);
  }
  return 0;
}

/* Returns a malloc'd copy of body (an unchanged body needs no parse). */
static int copy_body(const char *body, size_t len, char **out, size_t *outlen) {
  char *p = malloc(len ? len : 1);
  if (p == NULL)
    return -1;
  if (len)
    memcpy(p, body, len);
  *out = p;
  *outlen = len;
  return 0;
}

/* Validates body and writes the rewritten copy where alloc says; see sy_rewrite_body_to. */
static int splice_body(const sy_variant_conf_t *v, const char *body, size_t len,
                       sy_rewrite_alloc_fn alloc, void *ctx, char **out, size_t *outlen, char *err,
                       size_t errlen) {
  sy_json_span_t root;
  sy_json_error_t jerr;
  if (sy_json_validate(body, len, &root, &jerr) != 0)
    return set_err(err, errlen, "request body is not valid JSON (at byte %zu): %s", jerr.pos,
                   jerr.reason);
  if (sy_json_type(body, root) != SY_JSON_OBJECT)
    return set_err(err, errlen, "request body is not a JSON object");
  job_t j;
  if (job_init(&j, v, body, len, err, errlen) != 0)
    return -1;
  emit_t size = {body, 0, NULL, 0, 0, 0};
  if (rewrite_object(&j, &size, root) != 0)
    return -1;
  emit_t w = {body, 0, alloc(ctx, size.n), 0, size.n, 0};
  if (w.out == NULL)
    return set_err(err, errlen, "out of memory");
  if (rewrite_object(&j, &w, root) != 0 || w.n != size.n) {
    *out = w.out; /* the caller's to free */
    return set_err(err, errlen, "out of memory");
  }
  *out = w.out;
  *outlen = w.n;
  return 0;
}

/* See rewrite.h: the rewrite written where alloc says. */
int sy_rewrite_body_to(const sy_variant_conf_t *v, const char *body, size_t len,
                       sy_rewrite_alloc_fn alloc, void *ctx, size_t *outlen, char *err,
                       size_t errlen) {
  char *out = NULL;
  *outlen = 0;
  return splice_body(v, body, len, alloc, ctx, &out, outlen, err, errlen);
}

static char *alloc_malloc(void *ctx, size_t n) {
  (void)ctx;
  return malloc(n ? n : 1);
}

/*
 * Rewrites `body` for variant v (see rewrite.h). On success *out is malloc'd and
 * owned by the caller; on failure *out is NULL, *outlen 0, and err holds the reason.
 */
int sy_rewrite_body(const sy_variant_conf_t *v, const char *body, size_t len, char **out,
                    size_t *outlen, char *err, size_t errlen) {
  *out = NULL;
  *outlen = 0;
  if (sy_rewrite_needs_body(v)) {
    int rc = splice_body(v, body, len, alloc_malloc, NULL, out, outlen, err, errlen);
    if (rc != 0) {
      free(*out);
      *out = NULL;
      *outlen = 0;
    }
    return rc;
  }
  if (copy_body(body, len, out, outlen) == 0)
    return 0;
  return set_err(err, errlen, "out of memory");
}
