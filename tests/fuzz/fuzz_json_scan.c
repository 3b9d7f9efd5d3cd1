/*
 * fuzz_json_scan.c — libFuzzer target for the strict JSON scanner
 * (router/json_scan.h), with jansson as the reference.
 *
 * The target aborts when:
 *   - the scanner and jansson disagree on whether the input is one JSON value,
 *     outside the documented differences (numbers beyond int64/double and keys with
 *     \u0000, which we accept; a raw NUL after a number or literal, which jansson
 *     skips: see validity() in tests/unit/test_json_scan.c);
 *   - a refusal has no reason or a position past the end; an accepted container,
 *     string or literal stays accepted when its last byte is cut off;
 *   - walking an accepted document gives spans that are out of order, overlap,
 *     begin or end with whitespace, are separated by anything but whitespace and
 *     the one ',' or ':' the grammar puts there, do not validate on their own
 *     (near the top), or whose type disagrees with their first byte or with the
 *     value jansson read there; an array's element count differs from jansson's,
 *     or (without duplicate keys) an object's member count; a key or string does
 *     not compare equal (sy_json_string_eq) to jansson's decoded text, or equal to
 *     a text one byte shorter or longer;
 *   - sy_json_quote refuses text jansson takes as UTF-8 or the reverse, or its
 *     output is not one JSON string that decodes back to the text.
 * Build with libFuzzer: tests/fuzz/run; without it: meson test --suite fuzz.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "router/json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Spans this deep or less are validated again on their own (deeper: quadratic). */
#define REVALIDATE_DEPTH 8

static int is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* True if buf[from, to) is whitespace around exactly one sep (sep 0: none at all). */
static int gap_ok(const char *buf, size_t from, size_t to, char sep) {
  int seen = sep == 0;
  for (size_t i = from; i < to; i++) {
    if (sep != 0 && buf[i] == sep && !seen)
      seen = 1;
    else if (!is_ws(buf[i]))
      return 0;
  }
  return seen;
}

/* The type a value starting with byte c must have. */
static sy_json_type_t type_of_first(char c) {
  switch (c) {
  case '{': return SY_JSON_OBJECT;
  case '[': return SY_JSON_ARRAY;
  case '"': return SY_JSON_STRING;
  case 't':
  case 'f':
  case 'n': return SY_JSON_LITERAL;
  default: return SY_JSON_NUMBER;
  }
}

static int same_type(sy_json_type_t t, const json_t *j) {
  switch (t) {
  case SY_JSON_OBJECT: return json_is_object(j);
  case SY_JSON_ARRAY: return json_is_array(j);
  case SY_JSON_STRING: return json_is_string(j);
  case SY_JSON_NUMBER: return json_is_number(j);
  default: return json_is_true(j) || json_is_false(j) || json_is_null(j);
  }
}

/* span s equals the NUL-terminated text t byte for byte. */
static int span_is(const char *buf, sy_json_span_t s, const char *t) {
  return s.len == strlen(t) && memcmp(buf + s.off, t, s.len) == 0;
}

/*
 * Checks that string token s decodes to text[0, n) (jansson's reading): equal to
 * it, not to it one byte shorter or longer. Texts holding a NUL cannot be asked.
 */
static void check_string_eq(const char *buf, sy_json_span_t s, const char *text, size_t n) {
  if (memchr(text, '\0', n) != NULL)
    return;
  if (!sy_json_string_eq(buf, s, text))
    abort();
  char *t = malloc(n + 2);
  if (t == NULL)
    return;
  memcpy(t, text, n);
  memcpy(t + n, "x", 2);
  if (sy_json_string_eq(buf, s, t))
    abort();
  if (n > 0) {
    t[n - 1] = '\0';
    if (sy_json_string_eq(buf, s, t))
      abort();
  }
  free(t);
}

/*
 * Quotes text[0, n) and checks the result against jansson: refused iff jansson
 * refuses the text as a string; otherwise one JSON string decoding back to it.
 */
static void check_quote(const char *text, size_t n) {
  size_t want = sy_json_quote(text, n, NULL);
  json_t *js = json_stringn(text, n);
  if ((js == NULL) != (want == SIZE_MAX))
    abort();
  if (js == NULL)
    return;
  char *q = malloc(want);
  if (q == NULL || sy_json_quote(text, n, q) != want)
    abort();
  sy_json_span_t root;
  if (sy_json_validate(q, want, &root, NULL) != 0 || root.off != 0 || root.len != want ||
      sy_json_type(q, root) != SY_JSON_STRING)
    abort();
  json_t *back = json_loadb(q, want, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  if (!json_equal(back, js))
    abort();
  check_string_eq(q, root, json_string_value(js), json_string_length(js));
  json_decref(back);
  json_decref(js);
  free(q);
}

static void walk(const char *buf, sy_json_span_t v, const json_t *j, int depth);

/* Members of object v: spans in order, separators, keys; values walked in turn. */
static void walk_object(const char *buf, sy_json_span_t v, const json_t *j, int depth) {
  sy_json_iter_t it;
  sy_json_span_t key, val;
  size_t n = 0, last = v.off + v.len - 1;
  sy_json_iter_init(&it, buf, v);
  while (sy_json_next_member(&it, &key, &val))
    n++;
  /* Without duplicate keys every member is the one jansson kept: compare values too. */
  int compare = j != NULL && n == json_object_size(j);
  size_t prev = v.off + 1;
  sy_json_iter_init(&it, buf, v);
  for (size_t i = 0; sy_json_next_member(&it, &key, &val); i++) {
    if (key.off < prev || !gap_ok(buf, prev, key.off, i > 0 ? ',' : 0) ||
        sy_json_type(buf, key) != SY_JSON_STRING || val.off < key.off + key.len ||
        !gap_ok(buf, key.off + key.len, val.off, ':') || val.off + val.len > last)
      abort();
    const json_t *child = NULL;
    if (j != NULL) {
      json_t *k = json_loadb(buf + key.off, key.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
      if (!json_is_string(k))
        abort();
      check_string_eq(buf, key, json_string_value(k), json_string_length(k));
      child = json_object_getn(j, json_string_value(k), json_string_length(k));
      if (child == NULL)
        abort();
      json_decref(k);
    }
    walk(buf, val, compare ? child : NULL, depth + 1);
    prev = val.off + val.len;
  }
  if (!gap_ok(buf, prev, last, 0))
    abort();
}

/* Elements of array v: spans in order, separators, count; each walked in turn. */
static void walk_array(const char *buf, sy_json_span_t v, const json_t *j, int depth) {
  sy_json_iter_t it;
  sy_json_span_t el;
  size_t n = 0, prev = v.off + 1, last = v.off + v.len - 1;
  sy_json_iter_init(&it, buf, v);
  while (sy_json_next_element(&it, &el)) {
    if (el.off < prev || !gap_ok(buf, prev, el.off, n > 0 ? ',' : 0) ||
        el.off + el.len > last || (j != NULL && n >= json_array_size(j)))
      abort();
    walk(buf, el, j != NULL ? json_array_get(j, n) : NULL, depth + 1);
    prev = el.off + el.len;
    n++;
  }
  if (!gap_ok(buf, prev, last, 0) || (j != NULL && n != json_array_size(j)))
    abort();
}

/* Checks value span v (and everything in it) against its text and jansson's j. */
static void walk(const char *buf, sy_json_span_t v, const json_t *j, int depth) {
  if (v.len == 0 || is_ws(buf[v.off]) || is_ws(buf[v.off + v.len - 1]))
    abort();
  sy_json_type_t t = sy_json_type(buf, v);
  if (t != type_of_first(buf[v.off]) || (j != NULL && !same_type(t, j)))
    abort();
  if (depth <= REVALIDATE_DEPTH) {
    sy_json_span_t sub;
    if (sy_json_validate(buf + v.off, v.len, &sub, NULL) != 0 || sub.off != 0 || sub.len != v.len)
      abort();
  }
  if (t == SY_JSON_OBJECT) {
    walk_object(buf, v, j, depth);
  } else if (t == SY_JSON_ARRAY) {
    walk_array(buf, v, j, depth);
  } else if (t == SY_JSON_STRING && j != NULL) {
    check_string_eq(buf, v, json_string_value(j), json_string_length(j));
  } else if (t == SY_JSON_LITERAL) {
    int ok = j == NULL ? span_is(buf, v, "true") || span_is(buf, v, "false") ||
                             span_is(buf, v, "null")
                       : span_is(buf, v, json_is_true(j) ? "true" : json_is_false(j) ? "false"
                                                                                       : "null");
    if (!ok)
      abort();
  }
}

/*
 * jansson's verdict on the input (any top-level value): *doc is its tree or NULL;
 * returns 1 (JSON), 0 (not JSON) or -1 where the scanner differs by design.
 */
static int jansson_verdict(const char *in, size_t size, json_t **doc) {
  json_error_t je;
  *doc = json_loadb(in, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
  if (*doc != NULL && memchr(in, '\0', size) != NULL) {
    json_decref(*doc); /* a raw NUL is never JSON: jansson skips one after a number */
    *doc = NULL;
    return 0;
  }
  if (*doc != NULL)
    return 1;
  enum json_error_code code = json_error_code(&je);
  return code == json_error_numeric_overflow || code == json_error_null_byte_in_key ? -1 : 0;
}

/* libFuzzer entry point: see the file comment. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  sy_json_span_t root;
  sy_json_error_t err = {0, NULL};
  int ours = sy_json_validate(in, size, &root, &err) == 0;
  if (ours != (sy_json_validate(in, size, NULL, NULL) == 0))
    abort();
  json_t *doc;
  int theirs = jansson_verdict(in, size, &doc);
  if (theirs >= 0 && ours != theirs)
    abort();
  if (!ours && (err.reason == NULL || err.pos > size))
    abort();
  if (ours) {
    walk(in, root, doc, 0);
    if (sy_json_type(in, root) != SY_JSON_NUMBER &&
        sy_json_validate(in, root.off + root.len - 1, NULL, NULL) == 0)
      abort();
  }
  json_decref(doc);
  check_quote(in, size);
  return 0;
}
