/*
 * api_parse.c — the schema of the feedback and outcome request bodies (see
 * api_parse.h). Moved out of router/api.c unchanged, so that the checks can be
 * unit-tested and fuzzed without a connection, Redis or an event loop.
 */
#include "router/api_parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/config.h"

/* The 32 hex digits of a trace id (either case, not all zeros) into out, lower-case.
 * Returns 0, or -1 if v is anything else. */
static int parse_trace_id(const json_t *v, char out[33]) {
  const char *s = json_string_value(v);
  if (s == NULL || strlen(s) != 32)
    return -1;
  int nonzero = 0;
  for (int i = 0; i < 32; i++) {
    char ch = s[i];
    if (ch >= 'A' && ch <= 'F')
      ch = (char)(ch - 'A' + 'a');
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
      return -1;
    nonzero |= ch != '0';
    out[i] = ch;
  }
  out[32] = '\0';
  return nonzero ? 0 : -1;
}

/* A finite number, or true/false as 1/0, into *out. Returns 0, or -1 for anything else. */
static int get_value(const json_t *v, double *out) {
  if (json_is_boolean(v)) {
    *out = json_is_true(v) ? 1 : 0;
    return 0;
  }
  if (!json_is_number(v) || !isfinite(json_number_value(v)))
    return -1;
  *out = json_number_value(v);
  return 0;
}

/* The fields of a feedback body after the common ones (type, value, name, comment). */
static const char *parse_feedback(const json_t *b, sy_api_body_t *op, char *why, size_t whylen) {
  const char *t = json_string_value(json_object_get(b, "type"));
  op->fb_type = -1;
  for (int i = 0; t != NULL && i < SY_FB_NTYPES; i++)
    if (strcmp(t, sy_feedback_type_names[i]) == 0)
      op->fb_type = i;
  if (op->fb_type < 0)
    return "type must be one of: thumbs, rating, edit, copy, retry, abandon, escalation, custom";
  if (!op->has_value &&
      (op->fb_type == SY_FB_THUMBS || op->fb_type == SY_FB_RATING || op->fb_type == SY_FB_EDIT)) {
    snprintf(why, whylen, "value is required for type %s", t);
    return why;
  }
  if (!op->has_value)
    op->value = 1; /* copy, retry, abandon, escalation: the event happened */
  if (op->fb_type == SY_FB_THUMBS && op->value != 1 && op->value != 0 && op->value != -1)
    return "a thumbs value is 1 (up), 0 or -1 (down), or true/false";
  if (op->fb_type == SY_FB_EDIT && op->value < 0)
    return "an edit value is an edit distance >= 0";
  const char *name = json_string_value(json_object_get(b, "name"));
  if (json_object_get(b, "name") != NULL && (name == NULL || strlen(name) >= sizeof op->name))
    return "name must be a string of at most 64 bytes";
  if (op->fb_type == SY_FB_CUSTOM && name == NULL)
    return "custom feedback needs a name";
  if (name != NULL)
    snprintf(op->name, sizeof op->name, "%s", name);
  json_t *cm = json_object_get(b, "comment");
  if (cm != NULL) {
    const char *s = json_string_value(cm);
    if (s == NULL || json_string_length(cm) > SY_API_COMMENT_MAX)
      return "comment must be a string of at most 4096 bytes";
    op->comment = strdup(s);
  }
  return NULL;
}

const char *sy_api_parse_body(sy_api_kind_t kind, const json_t *b, sy_api_body_t *op, char *why,
                              size_t whylen) {
  static const char *const fb_keys[] = {"trace_id",          "type", "value", "comment", "name",
                                        "client_latency_ms", NULL};
  static const char *const out_keys[] = {"trace_id", "metric", "value", "client_latency_ms", NULL};
  const char *const *keys = kind == SY_API_FEEDBACK ? fb_keys : out_keys;
  const char *k;
  json_t *v;
  memset(op, 0, sizeof *op);
  op->fb_type = -1;
  op->client_ms = NAN;
  if (!json_is_object(b))
    return "the body must be a JSON object";
  json_object_foreach((json_t *)b, k, v) {
    int known = 0;
    for (const char *const *p = keys; *p != NULL; p++)
      known |= strcmp(*p, k) == 0;
    if (!known) {
      /* At most 64 bytes of the name, cut at a character boundary: the message goes
       * into the JSON of the response, which must stay valid UTF-8. */
      int n = 0;
      while (n < 64 && k[n] != '\0')
        n++;
      while (n > 0 && k[n] != '\0' && ((unsigned char)k[n] & 0xC0) == 0x80)
        n--;
      snprintf(why, whylen, "unknown field '%.*s'", n, k);
      return why;
    }
  }
  if (parse_trace_id(json_object_get(b, "trace_id"), op->trace_id) < 0)
    return "trace_id must be the 32 hex digits of a trace id (x-switchyard-trace-id)";
  v = json_object_get(b, "client_latency_ms");
  if (v != NULL && (get_value(v, &op->client_ms) < 0 || op->client_ms < 0))
    return "client_latency_ms must be a number >= 0";
  v = json_object_get(b, "value");
  if (v != NULL) {
    if (get_value(v, &op->value) < 0)
      return "value must be a finite number or a boolean";
    op->has_value = 1;
  }
  if (kind == SY_API_FEEDBACK)
    return parse_feedback(b, op, why, whylen);
  const char *m = json_string_value(json_object_get(b, "metric"));
  if (m == NULL || *m == '\0' || strlen(m) >= sizeof op->name)
    return "metric must be the experiment's outcome metric name";
  snprintf(op->name, sizeof op->name, "%s", m);
  if (!op->has_value)
    return "value is required";
  return NULL;
}

void sy_api_body_free(sy_api_body_t *b) {
  if (b == NULL)
    return;
  free(b->comment);
  b->comment = NULL;
}

int sy_api_utf8_prefix(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  int i = 0;
  while (p[i] != '\0') {
    unsigned c = p[i], need, min;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF)
      need = 1, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
      need = 2, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
      need = 3, min = 0x10000;
    else
      return i;
    unsigned cp = c & (0x3Fu >> need);
    for (unsigned k = 1; k <= need; k++) {
      if ((p[i + k] & 0xC0) != 0x80) /* a NUL ends the loop here too */
        return i;
      cp = cp << 6 | (p[i + k] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
      return i;
    i += (int)need + 1;
  }
  return i;
}
