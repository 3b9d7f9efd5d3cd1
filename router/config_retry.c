/*
 * config_retry.c — an upstream's retry policy and a variant's fallback:
 *
 *   upstreams:
 *     vllm:
 *       servers: [10.0.0.5:8000, 10.0.0.6:8000]
 *       retry: {attempts: 2, on: [connect, reset, 429, 503], backoff_ms: 50,
 *               backoff_max_ms: 1000, retry_after_max_ms: 5000, budget_percent: 20}
 *   experiments:
 *     - variants:
 *         - {id: a, upstream: vllm, fallback: {upstream: openai, model: gpt-4o-mini}}
 *
 * `on` names what is tried again: connect (no connection could be made), reset (the
 * connection failed before the first response byte), timeout (no first byte in
 * time: off unless named, since the backend may already be spending tokens) and
 * HTTP statuses 400..599 (an answer is retried on another server, never the one that
 * gave it). Giving `on` replaces the whole default list.
 */
#include "router/config_retry.h"

#include <stdlib.h>
#include <string.h>

#include "router/config_util.h"

#define MAX_ATTEMPTS 5

void sy__cfg_retry_defaults(sy_retry_conf_t *r) {
  static const int statuses[] = {429, 502, 503, 504};
  memset(r, 0, sizeof(*r));
  r->attempts = 2;
  r->on = SY_RETRY_CONNECT | SY_RETRY_RESET;
  for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
    r->statuses[r->nstatuses++] = statuses[i];
  r->backoff_ms = 50;
  r->backoff_max_ms = 1000;
  r->retry_after_max_ms = 5000;
  r->budget_percent = 20;
  r->budget_min = 3;
}

static int p_on(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_retry_conf_t *r = obj;
  if (v->type != YAML_SEQUENCE_NODE)
    return sy__yaml_fail(w, v, "must be a list of connect, reset, timeout or HTTP statuses");
  r->on = 0;
  r->nstatuses = 0;
  for (size_t i = 0; i < sy__yaml_nitems(v); i++) {
    yaml_node_t *item = sy__yaml_item(w, v, i);
    size_t old = sy__yaml_path_index(w, i);
    const char *s = item->type == YAML_SCALAR_NODE ? sy__yaml_text(item) : "";
    int rc = 0;
    if (strcmp(s, "connect") == 0) {
      r->on |= SY_RETRY_CONNECT;
    } else if (strcmp(s, "reset") == 0) {
      r->on |= SY_RETRY_RESET;
    } else if (strcmp(s, "timeout") == 0) {
      r->on |= SY_RETRY_TIMEOUT;
    } else if (sy__yaml_is_int_text(s)) {
      long long st;
      rc = sy__yaml_get_int(w, item, 400, 599, &st);
      for (size_t j = 0; rc == 0 && j < r->nstatuses; j++)
        if (r->statuses[j] == (int)st)
          rc = sy__yaml_fail(w, item, "%lld is listed twice", st);
      if (rc == 0 && r->nstatuses == SY_RETRY_MAX_STATUSES)
        rc = sy__yaml_fail(w, item, "at most %d statuses", SY_RETRY_MAX_STATUSES);
      if (rc == 0)
        r->statuses[r->nstatuses++] = (int)st;
    } else {
      rc = sy__yaml_fail(w, item,
                         "must be connect, reset, timeout or an HTTP status 400..599");
    }
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

static const sy__yaml_field_t retry_fields[] = {
    {"attempts", sy__yaml_p_uint, offsetof(sy_retry_conf_t, attempts), 1, MAX_ATTEMPTS, 0, NULL},
    {"on", p_on, 0, 0, 0, 0, NULL},
    {"backoff_ms", sy__yaml_p_uint, offsetof(sy_retry_conf_t, backoff_ms), 0, MAX_MS, 0, NULL},
    {"backoff_max_ms", sy__yaml_p_uint, offsetof(sy_retry_conf_t, backoff_max_ms), 0, MAX_MS, 0,
     NULL},
    {"retry_after_max_ms", sy__yaml_p_uint, offsetof(sy_retry_conf_t, retry_after_max_ms), 0,
     MAX_MS, 0, NULL},
    {"budget_percent", sy__yaml_p_uint, offsetof(sy_retry_conf_t, budget_percent), 0, 100, 0,
     NULL},
    {"budget_min", sy__yaml_p_uint, offsetof(sy_retry_conf_t, budget_min), 0, 100000, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

int sy__cfg_p_retry(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_upstream_conf_t *u = obj;
  if (v->type != YAML_MAPPING_NODE)
    return sy__yaml_fail(w, v, "must be a mapping (attempts, on, backoff_ms, ...)");
  if (sy__yaml_walk_map(w, v, retry_fields, &u->retry) < 0)
    return -1;
  if (u->retry.backoff_max_ms < u->retry.backoff_ms)
    return sy__yaml_fail(w, v, "backoff_max_ms (%u) must be at least backoff_ms (%u)",
                         u->retry.backoff_max_ms, u->retry.backoff_ms);
  return 0;
}

typedef struct fallback_s {
  size_t upstream;
  char *model;
} fallback_t;

static const sy__yaml_field_t fallback_fields[] = {
    {"upstream", sy__cfg_p_upstream_ref, offsetof(fallback_t, upstream), 0, 0, 1, NULL},
    {"model", sy__yaml_p_str, offsetof(fallback_t, model), 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

int sy__cfg_p_fallback(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_variant_conf_t *var = obj;
  fallback_t fb = {0, NULL};
  static const sy__yaml_field_t name_only = {"fallback", sy__cfg_p_upstream_ref,
                                             offsetof(fallback_t, upstream), 0, 0, 1, NULL};
  int rc = v->type == YAML_MAPPING_NODE ? sy__yaml_walk_map(w, v, fallback_fields, &fb)
           : v->type == YAML_SCALAR_NODE
               ? sy__cfg_p_upstream_ref(w, v, &fb, &name_only)
               : sy__yaml_fail(w, v, "must be an upstream name or {upstream: NAME, model: MODEL}");
  if (rc < 0) {
    free(fb.model);
    return -1;
  }
  var->has_fallback = 1;
  var->fallback = fb.upstream;
  free(var->fallback_model);
  var->fallback_model = fb.model;
  return 0;
}
