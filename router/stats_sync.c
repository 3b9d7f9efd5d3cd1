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

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/log.h"
#include "proto/events.h"
#include "proto/keys.h"
#include "router/admin_metrics.h"
#include "router/control.h"
#include "router/gate_run.h"
#include "router/runtime.h"
#include "router/worker.h"
#include "stats/scripts.h"

#define STOP_WAIT_MS 3000
#define SWEEP_LIMIT "1000"

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

static double num_of(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : 0;
}

static json_t *suff_stats(const redisReply *hm) {
  json_t *o = json_object();
  const redisReply *e0 = hm && hm->elements > 0 ? hm->element[0] : NULL;
  const redisReply *e1 = hm && hm->elements > 1 ? hm->element[1] : NULL;
  const redisReply *e2 = hm && hm->elements > 2 ? hm->element[2] : NULL;
  json_object_set_new(o, "n", json_real(num_of(e0)));
  json_object_set_new(o, "sum", json_real(num_of(e1)));
  json_object_set_new(o, "sumsq", json_real(num_of(e2)));
  return o;
}

/* {vs, ss} -> {"experiments": {E: {"variants": {...}, "segments": {...}}}} */
static json_t *snapshot(const sync_req_t *q, const redisReply *reply) {
  const redisReply *vs = reply->element[0], *ss = reply->element[1];
  if (vs->type != REDIS_REPLY_ARRAY || ss->type != REDIS_REPLY_ARRAY ||
      vs->elements != q->nvariants)
    return NULL;
  json_t *vars = json_object(), *segs = json_object();
  for (size_t i = 0; i < q->nvariants; i++)
    json_object_set_new(vars, q->variants[i], suff_stats(vs->element[i]));
  for (size_t i = 0; i < ss->elements; i++) {
    const redisReply *row = ss->element[i];
    if (row->type != REDIS_REPLY_ARRAY || row->elements != q->nvariants + 1 ||
        row->element[0]->type != REDIS_REPLY_STRING)
      continue;
    json_t *so = json_object();
    for (size_t k = 0; k < q->nvariants; k++)
      json_object_set_new(so, q->variants[k], suff_stats(row->element[k + 1]));
    json_object_set_new(segs, row->element[0]->str, so);
  }
  json_t *e = json_pack("{s:o,s:o}", "variants", vars, "segments", segs);
  return json_pack("{s:{s:o}}", "experiments", q->exp, e);
}

static void on_synced(sy_redis_t *r, redisReply *reply, void *data) {
  sync_req_t *q = data;
  sy_worker_t *w = q->w;
  if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
    sy_log_warn("sync %s: %s", q->exp, reply->str);
  /* A stats_file, when configured, is the posterior's source (offline replays, tests). */
  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && w->rt != NULL &&
      w->rt->cfg->stats_file == NULL) {
    json_t *snap = snapshot(q, reply);
    if (snap != NULL)
      sy__runtime_apply_stats(w->rt, snap);
    json_decref(snap);
  }
  sync_req_free(q);
}

static void sync_experiment(sy_worker_t *w, size_t i) {
  const sy_experiment_conf_t *e = &w->rt->cfg->experiments[i];
  sync_req_t *q = calloc(1, sizeof *q);
  size_t nv = e->nvariants;
  size_t max = 36 + nv * 3; /* 7 + nv + 20 + 2 nv arguments */
  const char **argv = calloc(max, sizeof *argv);
  size_t *lens = calloc(max, sizeof *lens);
  char (*nums)[48] = calloc(nv + 4, sizeof *nums);
  char meta[160], prefix[160], list[4096] = "";
  if (q == NULL || argv == NULL || lens == NULL || nums == NULL ||
      (q->variants = calloc(nv, sizeof *q->variants)) == NULL)
    goto out;
  q->w = w;
  snprintf(q->exp, sizeof q->exp, "%s", e->id);
  sy_key_meta(meta, sizeof meta, e->id);
  sy_key_prefix(prefix, sizeof prefix, e->id);
  size_t n = 0;
  argv[n++] = "EVAL";
  argv[n++] = SY_LUA_SYNC;
  argv[n++] = "1";
  argv[n++] = meta;
  argv[n++] = prefix;
  argv[n++] = e->id;
  snprintf(nums[0], sizeof nums[0], "%zu", nv);
  argv[n++] = nums[0];
  for (size_t k = 0; k < nv; k++) {
    q->variants[k] = strdup(e->variants[k].id);
    q->nvariants = k + 1;
    argv[n++] = e->variants[k].id;
    size_t l = strlen(list);
    snprintf(list + l, sizeof list - l, "%s%s", k ? "," : "", e->variants[k].id);
  }
  static const char *const policies[] = {"split", "fixed", "thompson"};
  const char *pairs[][2] = {
      {"metric", e->outcome.metric},
      {"type", e->outcome.continuous ? "continuous" : "binary"},
      {"direction", e->outcome.minimise ? "minimize" : "maximize"},
      {"policy", policies[e->policy]},
      {"control", e->variants[e->control].id},
      {"variants", list},
      {"stream", w->link->stream},
      {"maxlen", w->link->maxlen},
  };
  for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
    argv[n++] = pairs[k][0];
    argv[n++] = pairs[k][1];
  }
  snprintf(nums[1], sizeof nums[1], "%u", e->outcome.window_s);
  argv[n++] = "window_s";
  argv[n++] = nums[1];
  snprintf(nums[2], sizeof nums[2], "%llu", (unsigned long long)sy_stats_now_ms());
  argv[n++] = "updated_ms";
  argv[n++] = nums[2];
  char (*share)[80] = calloc(nv, sizeof *share);
  for (size_t k = 0; share != NULL && k < nv; k++) {
    snprintf(share[k], sizeof share[k], "share:%s", e->variants[k].id);
    snprintf(nums[3 + k], sizeof nums[0], "%.6f",
             sy_policy_propensity(sy__control_policy(w->rt, i), k));
    argv[n++] = share[k];
    argv[n++] = nums[3 + k];
  }
  for (size_t k = 0; k < n; k++)
    lens[k] = strlen(argv[k]);
  if (sy_redis_command(&w->link->redis, on_synced, q, (int)n, argv, lens) == 0)
    q = NULL;
  free(share);
out:
  if (q != NULL)
    sync_req_free(q);
  free(argv);
  free(lens);
  free(nums);
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
  sy_stats_t *s = w->link;
  char pending[160], prefix[160], ts[32], ver[8];
  sy_key_pending(pending, sizeof pending, e->id);
  sy_key_prefix(prefix, sizeof prefix, e->id);
  snprintf(ver, sizeof ver, "%d", SY_EVENT_SCHEMA_VERSION);
  sy_stats_timestamp(s, ts);
  const char *argv[] = {"EVAL", SY_LUA_SWEEP, "2", pending, s->stream, prefix, SWEEP_LIMIT,
                        s->maxlen, e->id, e->outcome.metric, s->router_instance, ver, ts};
  size_t lens[sizeof argv / sizeof argv[0]];
  for (size_t k = 0; k < sizeof argv / sizeof argv[0]; k++)
    lens[k] = strlen(argv[k]);
  char *exp = strdup(e->id);
  if (exp != NULL &&
      sy_redis_command(&s->redis, on_swept, exp, (int)(sizeof argv / sizeof argv[0]), argv,
                       lens) < 0)
    free(exp);
}

void sy__sync_now(sy_worker_t *w) {
  if (w->link == NULL || w->rt == NULL || !sy_redis_ready(&w->link->redis))
    return;
  const sy_config_t *cfg = w->rt->cfg;
  for (size_t i = 0; i < cfg->nexperiments; i++) {
    const sy_experiment_conf_t *e = &cfg->experiments[i];
    sync_experiment(w, i);
    if (!e->outcome.continuous && e->outcome.missing == SY_MISSING_FAILURE)
      sweep_experiment(w, e);
  }
}

static void on_sync_timer(uv_timer_t *t) {
  sy__metrics_refresh(t->data);
  sy__sync_now(t->data);
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
  sy_stats_conf_t sc = {cfg->redis.url,
                        cfg->data_dir,
                        {cfg->redis.timeout_ms, cfg->redis.connect_timeout_ms,
                         cfg->redis.reconnect_max_ms, 0},
                        cfg->hash_key,
                        cfg->events.enabled,
                        cfg->events.stream,
                        cfg->events.maxlen,
                        cfg->events.batch_max,
                        cfg->events.flush_ms,
                        cfg->events.queue_bytes,
                        cfg->events.spool_bytes};
  if (sy_stats_open(w->link, &w->loop, &sc, err, errlen) < 0) {
    free(w->link);
    w->link = NULL;
    return -1;
  }
  w->link->on_up = on_up;
  w->link->up_data = w;
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
  sy_journal_t *j = w->link->journal;
  if (j == NULL || sy_journal_idle(j) || uv_now(&w->loop) >= w->stop_deadline ||
      !sy_redis_ready(&w->link->redis))
    close_link(w);
}

void sy__sync_close(sy_worker_t *w, void (*done)(sy_worker_t *w)) {
  uv_timer_stop(&w->sync_timer);
  uv_close((uv_handle_t *)&w->sync_timer, NULL);
  if (w->link != NULL) {
    sy__control_close(w);
    sy__gate_close(w);
  }
  if (w->link != NULL && w->link->journal != NULL && sy_redis_ready(&w->link->redis)) {
    sy_journal_flush(w->link->journal);
    w->stop_deadline = uv_now(&w->loop) + STOP_WAIT_MS;
    uv_timer_start(&w->stop_timer, on_stop_tick, 10, 10);
  } else {
    close_link(w);
  }
  if (done != NULL)
    done(w);
}
