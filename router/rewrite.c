/*
 * rewrite.c — applies a variant's body changes to a JSON request body.
 *
 * The body is parsed with jansson into a tree, changed in place (model, system
 * message, retrieval fields, in that order, so retrieval.body fields are applied
 * last and win on a clash), and written back compact with the original key order.
 * Nothing here does I/O; every jansson reference taken is released on every path.
 */
#include "router/rewrite.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable output buffer filled by json_dump_callback. */
typedef struct {
  char *data;
  size_t len;
  size_t cap;
} out_buf_t;

__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
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

/* True if msg is an object whose "role" is exactly the string "system". */
static int is_system_message(const json_t *msg) {
  const json_t *role = json_object_get(msg, "role");
  return json_is_string(role) && json_string_length(role) == 6 &&
         memcmp(json_string_value(role), "system", 6) == 0;
}

/* Inserts {"role":"system","content":content} at index 0; consumes content. */
static int insert_system_message(json_t *messages, json_t *content) {
  /* The *_new calls consume their value even when they fail (also on a NULL
   * object), so each is called exactly once whatever happened before. */
  json_t *sys = json_object();
  int rc = json_object_set_new(sys, "role", json_string("system"));
  rc |= json_object_set_new(sys, "content", content);
  if (rc != 0) {
    json_decref(sys);
    return -1;
  }
  return json_array_insert_new(messages, 0, sys);
}

/* Replaces the first system message's content, or inserts one at index 0. */
static int set_system_prompt(json_t *root, const char *text, char *err, size_t errlen) {
  json_t *messages = json_object_get(root, "messages");
  if (messages == NULL)
    return 0; /* e.g. a /v1/completions body: no chat messages to change */
  if (!json_is_array(messages)) {
    set_err(err, errlen, "messages must be an array");
    return -1;
  }
  json_t *content = json_string(text);
  if (content == NULL) {
    set_err(err, errlen, "system prompt is not valid UTF-8");
    return -1;
  }
  size_t i;
  json_t *msg;
  int rc = -2;
  json_array_foreach(messages, i, msg) {
    if (is_system_message(msg)) {
      rc = json_object_set_new(msg, "content", content);
      break;
    }
  }
  if (rc == -2)
    rc = insert_system_message(messages, content);
  if (rc != 0)
    set_err(err, errlen, "out of memory");
  return rc == 0 ? 0 : -1;
}

/* Sets every field of v->body_fields on root (deep copies; existing keys replaced). */
static int set_body_fields(json_t *root, const json_t *fields, char *err, size_t errlen) {
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)fields, key, value) {
    if (json_object_set_new(root, key, json_deep_copy(value)) != 0) {
      set_err(err, errlen, "out of memory");
      return -1;
    }
  }
  return 0;
}

/* Applies all of v's changes to the object root; returns 0 or -1 with err set. */
static int apply_variant(const sy_variant_conf_t *v, json_t *root, char *err, size_t errlen) {
  if (v->model != NULL && json_object_set_new(root, "model", json_string(v->model)) != 0) {
    set_err(err, errlen, "cannot set model (not valid UTF-8?)");
    return -1;
  }
  if (v->system_prompt != NULL && set_system_prompt(root, v->system_prompt, err, errlen) != 0)
    return -1;
  if (has_body_fields(v) && set_body_fields(root, v->body_fields, err, errlen) != 0)
    return -1;
  return 0;
}

/* json_dump_callback sink: appends to an out_buf_t, doubling its capacity. */
static int append_cb(const char *buf, size_t size, void *data) {
  out_buf_t *o = data;
  if (size > o->cap - o->len) {
    size_t cap = o->cap;
    while (size > cap - o->len)
      cap = cap < 256 ? 256 : cap * 2;
    char *p = realloc(o->data, cap);
    if (p == NULL)
      return -1;
    o->data = p;
    o->cap = cap;
  }
  memcpy(o->data + o->len, buf, size);
  o->len += size;
  return 0;
}

/* Writes root compact into a new malloc'd buffer; returns 0 or -1. */
static int dump_compact(const json_t *root, size_t hint, char **out, size_t *outlen) {
  out_buf_t o = {malloc(hint + 64), 0, hint + 64};
  if (o.data == NULL)
    return -1;
  if (json_dump_callback(root, append_cb, &o, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0) {
    free(o.data);
    return -1;
  }
  *out = o.data;
  *outlen = o.len;
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

/*
 * Rewrites `body` for variant v (see rewrite.h). On success *out is malloc'd and
 * owned by the caller; on failure *out is NULL, *outlen 0, and err holds the reason.
 */
int sy_rewrite_body(const sy_variant_conf_t *v, const char *body, size_t len, char **out,
                    size_t *outlen, char *err, size_t errlen) {
  *out = NULL;
  *outlen = 0;
  if (!sy_rewrite_needs_body(v)) {
    if (copy_body(body, len, out, outlen) == 0)
      return 0;
    set_err(err, errlen, "out of memory");
    return -1;
  }
  json_error_t jerr;
  json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
  if (root == NULL) {
    set_err(err, errlen, "request body is not valid JSON (at byte %d): %s", jerr.position,
            jerr.text);
    return -1;
  }
  int rc = -1;
  if (!json_is_object(root))
    set_err(err, errlen, "request body is not a JSON object");
  else if (apply_variant(v, root, err, errlen) == 0) {
    rc = dump_compact(root, len, out, outlen);
    if (rc != 0)
      set_err(err, errlen, "out of memory");
  }
  json_decref(root);
  return rc;
}
