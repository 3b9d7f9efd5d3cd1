/*
 * config_shadow.c — the config of shadow traffic: a variant's `shadow:` block
 *   shadow: {fraction: 0.1, max_inflight: 16, tokens_per_minute: 0, timeout_ms: 30000}
 * (the variant receives mirrored copies of requests routed live to another variant
 * of its experiment; see router/shadow.c), and an experiment's `shadow_skip:` rules
 *   shadow_skip: {body_keys: [tools, functions], headers: [{name: x-foo, value: bar}]}
 * naming requests that are never mirrored: a JSON body with one of the top-level
 * members, or a request with the header (and value, if given).
 *
 * The bounds are per worker process (max_inflight) or spread over the workers
 * (tokens_per_minute), because workers share nothing; the comments in config.h say so.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/config_shadow.h"
#include "router/config_util.h"

#define MAX_INFLIGHT 100000
#define MAX_TIMEOUT_MS 86400000LL /* one day */
#define MAX_TOKENS_PER_MINUTE (1LL << 40)
#define MAX_SKIP_RULES 64

/* ---- shadow: ------------------------------------------------------------------------- */

/* fraction: a number in [0, 1]; 0 keeps the block but mirrors nothing. */
static int p_fraction01(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  double x;
  if (sy__cfg_number(w, v, "a number in 0..1", &x) < 0)
    return -1;
  if (!(x >= 0 && x <= 1))
    return sy__yaml_fail(w, v, "must be a number in 0..1");
  ((sy_shadow_conf_t *)obj)->fraction = x;
  return 0;
}

static int p_tokens(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  long long n;
  if (sy__yaml_get_int(w, v, 0, MAX_TOKENS_PER_MINUTE, &n) < 0)
    return -1;
  ((sy_shadow_conf_t *)obj)->tokens_per_minute = (uint64_t)n;
  return 0;
}

static const sy__yaml_field_t shadow_fields[] = {
    {"fraction", p_fraction01, 0, 0, 0, 1, NULL},
    {"max_inflight", sy__yaml_p_uint, offsetof(sy_shadow_conf_t, max_inflight), 1, MAX_INFLIGHT, 0,
     NULL},
    {"tokens_per_minute", p_tokens, 0, 0, 0, 0, NULL},
    {"timeout_ms", sy__yaml_p_uint, offsetof(sy_shadow_conf_t, timeout_ms), 1, MAX_TIMEOUT_MS, 0,
     NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* See config_shadow.h: a variant's shadow: block, with its defaults. */
int sy__cfg_p_shadow(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_shadow_conf_t *s = &((sy_variant_conf_t *)obj)->shadow;
  s->on = 1;
  s->max_inflight = 16;
  s->tokens_per_minute = 0;
  s->timeout_ms = 30000;
  return sy__yaml_walk_map(w, v, shadow_fields, s);
}

/* ---- shadow_skip: -------------------------------------------------------------------- */

static int p_body_keys(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_shadow_skip_t *k = obj;
  if (v->type != YAML_SEQUENCE_NODE)
    return sy__yaml_fail(w, v, "must be a list of member names, e.g. [tools, functions]");
  if (sy__yaml_nitems(v) > MAX_SKIP_RULES)
    return sy__yaml_fail(w, v, "at most %d names", MAX_SKIP_RULES);
  k->body_keys = calloc(sy__yaml_nitems(v) + 1, sizeof *k->body_keys);
  if (k->body_keys == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  for (size_t i = 0; i < sy__yaml_nitems(v); i++) {
    yaml_node_t *item = sy__yaml_item(w, v, i);
    const char *s;
    size_t old = sy__yaml_path_index(w, i);
    int rc = sy__yaml_get_nonempty(w, item, &s);
    if (rc == 0) {
      rc = sy__yaml_set_str(w, item, &k->body_keys[i], s);
      k->nbody_keys = i + 1; /* counted at once, so that the free frees it */
    }
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* A header rule's name, lower-cased: a header the client sends. */
static int p_rule_name(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_kv_t *kv = obj;
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (!sy__cfg_is_token(s))
    return sy__yaml_fail(w, v, "must be a valid header name");
  if (sy__yaml_set_str(w, v, &kv->name, s) < 0)
    return -1;
  for (char *p = kv->name; *p != '\0'; p++)
    *p = (char)tolower((unsigned char)*p);
  return 0;
}

static int p_rule_value(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_str(w, v, &s) < 0)
    return -1;
  if (!sy__cfg_is_header_value(s))
    return sy__yaml_fail(w, v, "header value must not contain CR, LF or other control characters");
  return sy__yaml_set_str(w, v, &((sy_kv_t *)obj)->value, s);
}

static const sy__yaml_field_t header_rule_fields[] = {
    {"name", p_rule_name, 0, 0, 0, 1, NULL},
    {"value", p_rule_value, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int p_skip_headers(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                          const sy__yaml_field_t *f) {
  sy_shadow_skip_t *k = obj;
  if (v->type != YAML_SEQUENCE_NODE)
    return sy__yaml_fail(w, v, "must be a list of {name, value}");
  if (sy__yaml_nitems(v) > MAX_SKIP_RULES)
    return sy__yaml_fail(w, v, "at most %d rules", MAX_SKIP_RULES);
  k->headers = calloc(sy__yaml_nitems(v) + 1, sizeof *k->headers);
  if (k->headers == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  for (size_t i = 0; i < sy__yaml_nitems(v); i++) {
    size_t old = sy__yaml_path_index(w, i);
    k->nheaders = i + 1;
    int rc = sy__yaml_walk_map(w, sy__yaml_item(w, v, i), header_rule_fields, &k->headers[i]);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

static const sy__yaml_field_t skip_fields[] = {
    {"body_keys", p_body_keys, 0, 0, 0, 0, NULL},
    {"headers", p_skip_headers, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* See config_shadow.h: an experiment's shadow_skip: rules. */
int sy__cfg_p_shadow_skip(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                          const sy__yaml_field_t *f) {
  return sy__yaml_walk_map(w, v, skip_fields, &((sy_experiment_conf_t *)obj)->shadow_skip);
}

/* See config_shadow.h: frees the rules (any partly parsed state included). */
void sy__cfg_shadow_skip_free(sy_shadow_skip_t *s) {
  for (size_t i = 0; i < s->nbody_keys; i++)
    free(s->body_keys[i]);
  free(s->body_keys);
  for (size_t i = 0; i < s->nheaders; i++) {
    free(s->headers[i].name);
    free(s->headers[i].value);
  }
  free(s->headers);
}
