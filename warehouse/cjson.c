/*
 * cjson.c — canonical JSON text (cjson.h). Written here rather than with json_dumps:
 * jansson prints reals with %.17g (0.1 becomes 0.10000000000000001) and keeps no promise
 * about its formatting across versions; the bytes of a dataset are part of its contract.
 */
#include "warehouse/cjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"

/* Appends bytes (cjson.h). */
int sy_cjson_raw(sy_cjson_buf_t *b, const char *s, size_t n) {
  if (sy_grow(&b->p, &b->cap, b->len + n + 1, 256) < 0)
    return -1;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
  return 0;
}

static int put(sy_cjson_buf_t *b, const char *s) {
  return sy_cjson_raw(b, s, strlen(s));
}

/* Appends a real (cjson.h). */
int sy_cjson_real(sy_cjson_buf_t *b, double v) {
  if (!isfinite(v))
    return put(b, "null");
  char t[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(t, sizeof t, "%.*g", prec, v);
    if (strtod(t, NULL) == v)
      break;
  }
  if (strpbrk(t, ".en") == NULL)
    strcat(t, ".0");
  return put(b, t);
}

static int put_string(sy_cjson_buf_t *b, const char *s, size_t n) {
  if (put(b, "\"") < 0)
    return -1;
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    if (sy_cjson_raw(b, s + run, i - run) < 0)
      return -1;
    char e[8];
    switch (c) {
    case '"': strcpy(e, "\\\""); break;
    case '\\': strcpy(e, "\\\\"); break;
    case '\n': strcpy(e, "\\n"); break;
    case '\r': strcpy(e, "\\r"); break;
    case '\t': strcpy(e, "\\t"); break;
    case '\b': strcpy(e, "\\b"); break;
    case '\f': strcpy(e, "\\f"); break;
    default: snprintf(e, sizeof e, "\\u%04x", c); break;
    }
    if (put(b, e) < 0)
      return -1;
    run = i + 1;
  }
  if (sy_cjson_raw(b, s + run, n - run) < 0)
    return -1;
  return put(b, "\"");
}

static int cmp_keys(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int newline(sy_cjson_buf_t *b, int indent, int depth) {
  if (indent == 0)
    return 0;
  if (put(b, "\n") < 0)
    return -1;
  for (int i = 0; i < indent * depth; i++)
    if (put(b, " ") < 0)
      return -1;
  return 0;
}

static int dump(sy_cjson_buf_t *b, const json_t *v, int indent, int depth);

static int dump_object(sy_cjson_buf_t *b, const json_t *v, int indent, int depth) {
  size_t n = json_object_size(v), k = 0;
  if (n == 0)
    return put(b, "{}");
  const char **keys = malloc(n * sizeof *keys);
  if (keys == NULL)
    return -1;
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)v, key, val) keys[k++] = key;
  qsort(keys, n, sizeof *keys, cmp_keys);
  int rc = put(b, "{");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rc = (i && put(b, ",")) || newline(b, indent, depth + 1) ||
         put_string(b, keys[i], strlen(keys[i])) || put(b, indent ? ": " : ":") ||
         dump(b, json_object_get(v, keys[i]), indent, depth + 1);
  }
  if (rc == 0)
    rc = newline(b, indent, depth) || put(b, "}");
  free(keys);
  return rc;
}

static int dump_array(sy_cjson_buf_t *b, const json_t *v, int indent, int depth) {
  size_t n = json_array_size(v);
  if (n == 0)
    return put(b, "[]");
  int rc = put(b, "[");
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = (i && put(b, ",")) || newline(b, indent, depth + 1) ||
         dump(b, json_array_get(v, i), indent, depth + 1);
  return rc || newline(b, indent, depth) || put(b, "]");
}

static int dump(sy_cjson_buf_t *b, const json_t *v, int indent, int depth) {
  char t[32];
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return dump_object(b, v, indent, depth);
  case JSON_ARRAY:
    return dump_array(b, v, indent, depth);
  case JSON_STRING:
    return put_string(b, json_string_value(v), json_string_length(v));
  case JSON_INTEGER:
    snprintf(t, sizeof t, "%lld", (long long)json_integer_value(v));
    return put(b, t);
  case JSON_REAL:
    return sy_cjson_real(b, json_real_value(v));
  case JSON_TRUE:
    return put(b, "true");
  case JSON_FALSE:
    return put(b, "false");
  case JSON_NULL:
    return put(b, "null");
  }
  return -1;
}

/* Appends v canonically (cjson.h). */
int sy_cjson_dump(sy_cjson_buf_t *b, const json_t *v, int indent) {
  return dump(b, v, indent, 0) ? -1 : 0;
}
