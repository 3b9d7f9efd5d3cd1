/*
 * control.c — every router's side of the control state (router/control_state.h,
 * proto/KEYS.md: sy:{E}:state): the first router to serve an experiment creates its
 * state, every router polls it every 250 ms and applies a new version to routing.
 *
 * Why poll rather than SUBSCRIBE: a subscription needs a second connection per
 * worker and loses what was published while it was down, so it would need a poll
 * anyway. One small HGETALL per experiment four times a second costs Redis nothing
 * and bounds the time to apply a change (1 s is promised; 250 ms plus a round trip
 * is what it takes). The channel sy:control is still published, for dashboards.
 *
 * Applying a state never waits: until a router has read the state it routes by the
 * config; while Redis is away it keeps the last state it read (also across a
 * reload, from w->control).
 */
#include "policies/policy_split.h"
#include "policies/split.h"
#include "router/control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "proto/keys.h"
#include "router/runtime.h"
#include "router/worker.h"
#include "stats/redis_sync.h"
#include "stats/scripts.h"
#include "stats/store.h"

#define POLL_MS 250

static const char *const gate_modes[] = {"off", "canary", "bandit"};

static int exp_index(const sy_runtime_t *rt, const char *id) {
  for (size_t i = 0; i < rt->cfg->nexperiments; i++)
    if (strcmp(rt->cfg->experiments[i].id, id) == 0)
      return (int)i;
  return -1;
}

/* A policy to stand in for the experiment's own: a split by weights. */
static sy_policy_t *weights_policy(const sy_experiment_conf_t *e, const double *weights) {
  const char *ids[SY_SPLIT_MAX_VARIANTS];
  if (e->nvariants > SY_SPLIT_MAX_VARIANTS)
    return NULL;
  for (size_t v = 0; v < e->nvariants; v++)
    ids[v] = e->variants[v].id;
  return sy_policy_split_new(e->salt, ids, weights, e->nvariants);
}

/* Limits a policy to the active variants: those turned on first, so that the
 * active set is never empty on the way. */
static int limit_policy(sy_policy_t *p, size_t n, const unsigned char *active) {
  int rc = 0;
  for (size_t v = 0; v < n; v++)
    if (active[v] && !sy_policy_arm_active(p, v))
      rc |= sy_policy_set_active(p, v, 1);
  for (size_t v = 0; v < n; v++)
    if (!active[v] && sy_policy_arm_active(p, v))
      rc |= sy_policy_set_active(p, v, 0);
  return rc;
}

static void describe(const sy_experiment_conf_t *e, const sy_ctl_state_t *s, const double *wts,
                     sy_route_kind_t kind, char *buf, size_t len) {
  size_t off = (size_t)snprintf(buf, len, "%s", sy_xstatus_names[s->status]);
  for (size_t v = 0; v < s->nvariants && off < len; v++) {
    if (kind == SY_ROUTE_WEIGHTS)
      off += (size_t)snprintf(buf + off, len - off, " %s=%s:%.0f%%", e->variants[v].id,
                              sy_stage_names[s->stage[v]], 100 * wts[v]);
    else
      off += (size_t)snprintf(buf + off, len - off, " %s=%s", e->variants[v].id,
                              sy_stage_names[s->stage[v]]);
  }
}

/* Applies state (a {field: value} object) to experiment i of rt if its version is new. */
static void apply(sy_runtime_t *rt, size_t i, json_t *state, int force) {
  const sy_experiment_conf_t *e = &rt->cfg->experiments[i];
  sy_exprt_t *x = &rt->exps[i];
  size_t n = json_object_size(state), k = 0;
  const char **kv = calloc(2 * n + 1, sizeof *kv);
  if (kv == NULL)
    return;
  const char *f;
  json_t *val;
  json_object_foreach(state, f, val) {
    kv[2 * k] = f;
    kv[2 * k + 1] = json_is_string(val) ? json_string_value(val) : "";
    k++;
  }
  sy_ctl_state_t s;
  int bad = sy_ctl_state_parse(e, kv, k, &s);
  free(kv);
  if (s.version == 0 || (!force && s.version == x->ctl.version))
    return;
  if (bad > 0)
    sy_log_warn("experiment %s: control state version %lld has %d fields this router does not "
                "understand; applying the rest",
                e->id, s.version, bad);
  double weights[SY_CTL_MAX_VARIANTS];
  unsigned char active[SY_CTL_MAX_VARIANTS];
  sy_route_kind_t kind = sy_ctl_routing(e, &s, weights, active);
  sy_policy_t *ov = NULL;
  if (kind == SY_ROUTE_POLICY) {
    int rc = limit_policy(x->policy, s.nvariants, active);
    for (size_t j = 0; j < x->nsegs; j++)
      rc |= limit_policy(x->segs[j].policy, s.nvariants, active);
    if (rc != 0) { /* e.g. a split whose remaining variants all weigh 0 */
      for (size_t v = 0; v < s.nvariants; v++)
        weights[v] = v == e->control;
      kind = SY_ROUTE_WEIGHTS;
    }
  }
  if (kind == SY_ROUTE_WEIGHTS && (ov = weights_policy(e, weights)) == NULL) {
    sy_log_error("experiment %s: cannot apply control state version %lld (out of memory?)",
                 e->id, s.version);
    return;
  }
  sy_policy_destroy(x->override);
  x->override = ov;
  int first = x->ctl.version == 0;
  x->ctl = s;
  if (rt == rt->w->rt) {
    char what[1024];
    describe(e, &s, weights, kind, what, sizeof what);
    if (first)
      sy_log_info("experiment %s: control state version %lld: %s", e->id, s.version, what);
    else
      sy_log_info("experiment %s: control state changed to version %lld: %s", e->id, s.version,
                  what);
  }
}

typedef struct poll_req_s {
  sy_worker_t *w;
  char exp[80];
} poll_req_t;

static void on_polled(sy_redis_t *r, redisReply *reply, void *data) {
  poll_req_t *q = data;
  sy_worker_t *w = q->w;
  (void)r;
  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 && w->rt != NULL &&
      w->control != NULL) {
    json_t *st = sy_redis_hash_json(reply);
    int i = exp_index(w->rt, q->exp);
    if (st != NULL) {
      json_object_set(w->control, q->exp, st);
      if (i >= 0)
        apply(w->rt, (size_t)i, st, 0);
    }
    json_decref(st);
  }
  free(q);
}

static void poll_all(sy_worker_t *w) {
  if (w->link == NULL || w->rt == NULL || !sy_stats_usable(w->link))
    return;
  for (size_t i = 0; i < w->rt->cfg->nexperiments; i++) {
    const char *id = w->rt->cfg->experiments[i].id;
    poll_req_t *q = malloc(sizeof *q);
    char key[120];
    if (q == NULL)
      return;
    q->w = w;
    snprintf(q->exp, sizeof q->exp, "%s", id);
    sy_key_state(key, sizeof key, id);
    const char *argv[] = {"HGETALL", key};
    size_t lens[] = {7, strlen(key)};
    if (sy_stats_command(w->link, key, 0, on_polled, q, 2, argv, lens) < 0)
      free(q);
  }
}

static void on_poll_timer(uv_timer_t *t) { poll_all(t->data); }

static void on_init(sy_redis_t *r, redisReply *reply, void *data) {
  char *exp = data;
  (void)r;
  if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
    sy_log_warn("experiment %s: cannot create its control state: %s", exp, reply->str);
  free(exp);
}

/* Creates the experiment's state if no router has, and adds variants it lacks. */
static void init_state(sy_worker_t *w, const sy_experiment_conf_t *e) {
  size_t nv = e->nvariants, n = 0;
  const char **argv = calloc(10 + 2 * nv, sizeof *argv);
  size_t *lens = calloc(10 + 2 * nv, sizeof *lens);
  char k_state[120], k_audit[120], now[32], count[16];
  char *exp = strdup(e->id);
  if (argv == NULL || lens == NULL || exp == NULL)
    goto out;
  sy_key_state(k_state, sizeof k_state, e->id);
  sy_key_audit(k_audit, sizeof k_audit, e->id);
  snprintf(now, sizeof now, "%llu", (unsigned long long)sy_stats_now_ms());
  snprintf(count, sizeof count, "%zu", nv);
  argv[n++] = "EVAL";
  argv[n++] = SY_LUA_STATE_INIT;
  argv[n++] = "2";
  argv[n++] = k_state;
  argv[n++] = k_audit;
  argv[n++] = now;
  argv[n++] = w->link->router_instance;
  argv[n++] = gate_modes[e->gate.mode];
  argv[n++] = e->id;
  argv[n++] = count;
  for (size_t v = 0; v < nv; v++) {
    argv[n++] = e->variants[v].id;
    argv[n++] = sy_stage_names[sy_ctl_initial_stage(e, v)];
  }
  for (size_t j = 0; j < n; j++)
    lens[j] = strlen(argv[j]);
  if (sy_stats_command(w->link, k_state, 0, on_init, exp, (int)n, argv, lens) == 0)
    exp = NULL;
out:
  free(exp);
  free(argv);
  free(lens);
}

void sy__control_sync(sy_worker_t *w) {
  if (w->link == NULL || w->rt == NULL || !sy_stats_usable(w->link))
    return;
  for (size_t i = 0; i < w->rt->cfg->nexperiments; i++)
    init_state(w, &w->rt->cfg->experiments[i]);
  poll_all(w); /* after the inits on the same connection: reads what they made */
}

void sy__control_reapply(sy_worker_t *w) {
  if (w->control == NULL || w->rt == NULL)
    return;
  for (size_t i = 0; i < w->rt->cfg->nexperiments; i++) {
    json_t *st = json_object_get(w->control, w->rt->cfg->experiments[i].id);
    if (st != NULL)
      apply(w->rt, i, st, 1);
  }
  sy__control_sync(w);
}

void sy__control_open(sy_worker_t *w) {
  uv_timer_init(&w->loop, &w->control_timer);
  w->control_timer.data = w;
  w->control = json_object();
  if (w->link != NULL)
    uv_timer_start(&w->control_timer, on_poll_timer, POLL_MS, POLL_MS);
}

void sy__control_close(sy_worker_t *w) {
  uv_timer_stop(&w->control_timer);
  uv_close((uv_handle_t *)&w->control_timer, NULL);
}
