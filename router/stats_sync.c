/*
 * stats_sync.c — the worker's Redis link over time: opened at start, and every
 * events.sync_ms (default 1 s) each experiment's posterior is refreshed from the
 * shared statistics (one script call per experiment, which also writes the
 * router's view for dashboards: sy:{E}:meta), and experiments with a binary metric
 * and missing: failure are swept. At shutdown the journal is flushed and given a
 * few seconds to be acknowledged; what is not goes to the spool.
 *
 * Between refreshes, and while Redis is away, the policies keep the last posterior
 * they had: routing never waits for Redis.
 */
#include "router/stats_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/log.h"
#include "router/cli_redis.h"
#include "router/control.h"
#include "router/events.h"
#include "router/exchange.h"
#include "router/gate_run.h"
#include "router/runtime.h"
#include "router/worker.h"
#include "stats/posterior.h"
#include "stats/store.h"

#define STOP_WAIT_MS 3000
#define SWEEP_LIMIT 1000u

typedef struct sync_req_s {
  sy_worker_t *w;
  char exp[80];
  char **variants;
  size_t nvariants;
} sync_req_t;

static void sync_req_free(sync_req_t *q) {
  for (size_t i = 0; i < q->nvariants; i++)
    free(q->variants[i]);
  free(q->variants);
  free(q);
}

static void on_synced(sy_redis_t *r, redisReply *reply, void *data) {
  sync_req_t *q = data;
  sy_worker_t *w = q->w;
  if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
    sy_log_warn("sync %s: %s", q->exp, reply->str);
  /* A stats_file, when configured, is the posterior's source (offline replays, tests). */
  if (w->rt != NULL && w->rt->cfg->stats_file == NULL) {
    json_t *snap = sy_stats_sync_snapshot(reply, q->exp, q->variants, q->nvariants);
    if (snap != NULL)
      sy__runtime_apply_stats(w->rt, snap);
    json_decref(snap);
  }
  sync_req_free(q);
}

static void on_versioned(sy_redis_t *r, redisReply *reply, void *data) {
  (void)r;
  (void)data;
  if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
    sy_log_warn("version registry: %s", reply->str);
}

/* The version registry (sy:{E}:versions): this config's variant versions of E are
 * serving now. Every sync refreshes it, so its "last" is as fresh as sync_ms. */
static void register_versions(sy_worker_t *w, const sy_experiment_conf_t *e) {
  const char *ids[64], *vers[64];
  size_t n = e->nvariants < 64 ? e->nvariants : 64;
  for (size_t k = 0; k < n; k++) {
    ids[k] = e->variants[k].id;
    vers[k] = e->variants[k].version != NULL ? e->variants[k].version : "";
  }
  sy_stats_versions(w->link, e->id, w->rt->cfg->config_hash, sy_stats_now_ms(), ids, vers, n,
                    on_versioned, NULL);
}

static void sync_experiment(sy_worker_t *w, size_t i) {
  const sy_experiment_conf_t *e = &w->rt->cfg->experiments[i];
  size_t nv = e->nvariants;
  sync_req_t *q = calloc(1, sizeof *q);
  if (q == NULL || (q->variants = calloc(nv, sizeof *q->variants)) == NULL) {
    free(q);
    return;
  }
  q->w = w;
  snprintf(q->exp, sizeof q->exp, "%s", e->id);
  char list[4096] = "";
  for (size_t k = 0; k < nv; k++) {
    q->variants[k] = strdup(e->variants[k].id);
    q->nvariants = k + 1;
    size_t l = strlen(list);
    snprintf(list + l, sizeof list - l, "%s%s", k ? "," : "", e->variants[k].id);
  }
  static const char *const policies[] = {"split", "fixed", "thompson"};
  sy_argv_t meta;
  sy_argv_init(&meta);
  sy_argv_pair(&meta, "metric", e->outcome.metric);
  sy_argv_pair(&meta, "type", e->outcome.continuous ? "continuous" : "binary");
  sy_argv_pair(&meta, "direction", e->outcome.minimise ? "minimize" : "maximize");
  sy_argv_pair(&meta, "policy", policies[e->policy]);
  sy_argv_pair(&meta, "control", e->variants[e->control].id);
  sy_argv_pair(&meta, "variants", list);
  sy_argv_pair_num(&meta, "window_s", e->outcome.window_s);
  sy_argv_pair_num(&meta, "updated_ms", (double)sy_stats_now_ms());
  for (size_t k = 0; k < nv; k++) {
    char share[80], p[32];
    snprintf(share, sizeof share, "share:%s", e->variants[k].id);
    snprintf(p, sizeof p, "%.6f", sy_policy_propensity(sy__control_policy(w->rt, i), k));
    sy_argv_pair(&meta, share, p);
  }
  sy_sync_exp_t x = {e->id, q->variants, q->nvariants, &meta};
  if (sy_stats_sync(w->link, &x, on_synced, q) < 0)
    sync_req_free(q);
  sy_argv_free(&meta);
  register_versions(w, e);
}

static void on_swept(sy_redis_t *r, redisReply *reply, void *data) {
  char *exp = data;
  if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
    sy_log_info("sweep %s: %lld trials past their window without an outcome counted as failures",
                exp, reply->integer);
  else if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
    sy_log_warn("sweep %s: %s", exp, reply->str);
  free(exp);
}

static void sweep_experiment(sy_worker_t *w, const sy_experiment_conf_t *e) {
  char *exp = strdup(e->id);
  w->link->trace_back_ms = sy__events_trace_back_ms(e, 1);
  if (exp != NULL && sy_stats_sweep(w->link, e->id, e->outcome.metric, SWEEP_LIMIT, on_swept, exp) < 0)
    free(exp);
}

void sy__sync_now(sy_worker_t *w) {
  if (w->link == NULL || w->rt == NULL)
    return;
  const sy_config_t *cfg = w->rt->cfg;
  if (w->link->cluster != NULL) { /* where feedback looks, and a journal each */
    char *ids[64];
    size_t n = 0;
    for (size_t i = 0; i < cfg->nexperiments && n < 64; i++)
      ids[n++] = cfg->experiments[i].id;
    sy_stats_set_experiments(w->link, ids, n);
  }
  if (!sy_stats_usable(w->link))
    return;
  for (size_t i = 0; i < cfg->nexperiments; i++) {
    const sy_experiment_conf_t *e = &cfg->experiments[i];
    sync_experiment(w, i);
    if (!e->outcome.continuous && e->outcome.missing == SY_MISSING_FAILURE)
      sweep_experiment(w, e);
  }
}

static void on_sync_timer(uv_timer_t *t) {
  sy_worker_t *w = t->data;
  if (w->report != NULL)
    w->report->tick(w);
  sy__sync_now(w);
}

static void on_up(sy_stats_t *s, void *data) {
  sy__control_sync(data);
  sy__sync_now(data);
}

int sy__sync_open(sy_worker_t *w, char *err, size_t errlen) {
  const sy_config_t *cfg = w->rt->cfg;
  uv_timer_init(&w->loop, &w->sync_timer);
  uv_timer_init(&w->loop, &w->stop_timer);
  w->sync_timer.data = w->stop_timer.data = w;
  if (!cfg->redis.enabled)
    return 0;
  w->link = calloc(1, sizeof *w->link);
  if (w->link == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  sy_redis_addr_t addr;
  if (sy_config_redis_addr(cfg, &addr, err, errlen) < 0) {
    free(w->link);
    w->link = NULL;
    return -1;
  }
  sy_stats_conf_t sc = {cfg->redis.url,
                        cfg->data_dir,
                        {cfg->redis.timeout_ms, cfg->redis.connect_timeout_ms,
                         cfg->redis.reconnect_max_ms, 0, cfg->redis.wait_replicas,
                         cfg->redis.wait_timeout_ms, cfg->redis.wait_strict},
                        cfg->hash_key,
                        cfg->events.enabled,
                        cfg->events.stream,
                        cfg->events.maxlen,
                        cfg->events.batch_max,
                        cfg->events.flush_ms,
                        cfg->events.queue_bytes,
                        cfg->events.spool_bytes,
                        &addr,
                        (const char *const *)cfg->redis.cluster,
                        cfg->redis.ncluster};
  if (sy_stats_open(w->link, &w->loop, &sc, err, errlen) < 0) {
    free(w->link);
    w->link = NULL;
    return -1;
  }
  w->link->on_up = on_up;
  w->link->up_data = w;
  if (w->link->cluster != NULL)
    sy__sync_now(w); /* the experiments' journals now: they adopt spools left behind */
  uv_timer_start(&w->sync_timer, on_sync_timer, cfg->events.sync_ms, cfg->events.sync_ms);
  sy__control_open(w);
  sy__gate_open(w);
  return 0;
}

static void on_link_closed(sy_stats_t *s) { free(s); }

static void close_link(sy_worker_t *w) {
  uv_timer_stop(&w->stop_timer);
  uv_close((uv_handle_t *)&w->stop_timer, NULL);
  if (w->link != NULL) {
    sy_stats_close(w->link, on_link_closed);
    w->link = NULL;
  }
}

static void on_stop_tick(uv_timer_t *t) {
  sy_worker_t *w = t->data;
  if (!sy_stats_events(w->link) || sy_stats_idle(w->link) ||
      uv_now(&w->loop) >= w->stop_deadline || !sy_stats_usable(w->link))
    close_link(w);
}

void sy__sync_close(sy_worker_t *w, void (*done)(sy_worker_t *w)) {
  uv_timer_stop(&w->sync_timer);
  uv_close((uv_handle_t *)&w->sync_timer, NULL);
  if (w->link != NULL) {
    sy__control_close(w);
    sy__gate_close(w);
  }
  if (w->link != NULL && sy_stats_events(w->link) && sy_stats_usable(w->link)) {
    sy_stats_flush(w->link);
    w->stop_deadline = uv_now(&w->loop) + STOP_WAIT_MS;
    uv_timer_start(&w->stop_timer, on_stop_tick, 10, 10);
  } else {
    close_link(w);
  }
  if (done != NULL)
    done(w);
}
