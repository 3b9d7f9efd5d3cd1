/*
 * runtime.c — what a loaded config becomes in a worker: resolved upstream
 * addresses with their connection pools, and each experiment's policy (split,
 * fixed or Thompson sampling) with its sessions and segment posteriors.
 *
 * A runtime is reference-counted. The worker holds one reference to the current
 * runtime and every exchange in flight holds one to the runtime it started on;
 * a reload replaces the worker's reference, and the old runtime — with its pools
 * — goes away when its last exchange ends.
 */
#include "router/runtime.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "policies/segments.h"
#include "policies/policy_split.h"
#include "policies/split.h"
#include "policies/thompson.h"
#include "router/upstream.h"
#include "router/worker.h"

int sy__runtime_resolving(const sy_runtime_t *rt) {
  for (size_t i = 0; i < rt->cfg->nupstreams; i++) {
    const sy_uppool_t *p = &rt->pools[i];
    for (size_t j = 0; j < p->nservers; j++)
      if (p->servers[j].naddrs == 0 && p->servers[j].resolving != NULL)
        return 1;
  }
  return 0;
}

/* Takes the addresses the old runtime has for what s dials (its host and port, or
 * its egress proxy's). Returns 1 if found. */
static int adopt_addresses(sy_upserver_t *s, const sy_runtime_t *old) {
  for (size_t i = 0; old != NULL && i < old->cfg->nupstreams; i++) {
    const sy_uppool_t *p = &old->pools[i];
    for (size_t j = 0; p->servers != NULL && j < p->nservers; j++) {
      const sy_upserver_t *o = &p->servers[j];
      if (o->naddrs == 0 || o->dial_port != s->dial_port ||
          strcmp(o->dial_host, s->dial_host) != 0)
        continue;
      memcpy(s->addrs, o->addrs, sizeof s->addrs);
      s->naddrs = o->naddrs;
      s->is_name = o->is_name;
      s->resolve_at = o->resolve_at;
      return 1;
    }
  }
  return 0;
}

/* The pools of rt->cfg. Server names: a worker's first runtime resolves them before
 * its loop runs (may_block); a reload takes the addresses the old runtime has for the
 * same host and port, and resolves new names off the loop. */
static int build_pools(sy_runtime_t *rt, const sy_runtime_t *old, int may_block, char *err,
                       size_t errlen) {
  const sy_config_t *cfg = rt->cfg;
  rt->pools = calloc(cfg->nupstreams, sizeof(*rt->pools));
  if (rt->pools == NULL && cfg->nupstreams > 0)
    return -1;
  for (size_t i = 0; i < cfg->nupstreams; i++) {
    const sy_upstream_conf_t *uc = &cfg->upstreams[i];
    sy_uppool_t *p = &rt->pools[i];
    p->conf = uc;
    p->w = rt->w;
    p->servers = calloc(uc->nservers, sizeof(*p->servers));
    if (p->servers == NULL)
      return -1;
    p->nservers = uc->nservers;
    if (uc->tls_ctx != NULL && uc->tls.insecure)
      sy_log_warn("upstream %s: tls.insecure: its servers' certificates are not verified: anyone "
                  "on the path can read and change its traffic",
                  uc->name);
    for (size_t j = 0; j < uc->nservers; j++) {
      sy_upserver_t *s = &p->servers[j];
      s->pool = p;
      s->hp = &uc->servers[j];
      snprintf(s->label, sizeof(s->label), "%s:%u", uc->servers[j].host,
               (unsigned)uc->servers[j].port);
      sy__upstream_server_names(s);
      if (adopt_addresses(s, old))
        continue;
      if (sy__upstream_server_init(s, may_block, err, errlen) < 0)
        return -1;
    }
  }
  return 0;
}

/* Sessions kept per thompson experiment and worker; the oldest are evicted. */
#define SY_STICKY_CAPACITY 65536

static void ts_conf_from(sy_ts_conf_t *ts, const sy_thompson_conf_t *t) {
  sy_ts_conf_default(ts, t->continuous ? SY_OUTCOME_CONTINUOUS : SY_OUTCOME_BINARY);
  ts->beta_prior.alpha = t->prior_alpha;
  ts->beta_prior.beta = t->prior_beta;
  ts->nig_prior.mu = t->prior_mu;
  ts->nig_prior.kappa = t->prior_kappa;
  ts->nig_prior.alpha = t->prior_a;
  ts->nig_prior.beta = t->prior_b;
  ts->minimise = t->minimise;
  ts->log_scale = t->log_scale;
  ts->floor = t->floor;
  ts->top_two = t->top_two;
  ts->top_two_beta = t->top_two_beta;
}

static sy_policy_t *new_policy(const sy_experiment_conf_t *e) {
  const char *ids[SY_SPLIT_MAX_VARIANTS];
  double weights[SY_SPLIT_MAX_VARIANTS];
  if (e->nvariants > SY_SPLIT_MAX_VARIANTS)
    return NULL;
  for (size_t v = 0; v < e->nvariants; v++) {
    ids[v] = e->variants[v].id;
    weights[v] = e->variants[v].weight;
  }
  switch (e->policy) {
  case SY_POLICY_FIXED:
    return sy_policy_fixed_new(e->nvariants, e->control);
  case SY_POLICY_THOMPSON: {
    sy_ts_conf_t ts;
    ts_conf_from(&ts, &e->thompson);
    return sy_policy_thompson_new(&ts, e->nvariants);
  }
  case SY_POLICY_SPLIT:
  default:
    return sy_policy_split_new(e->salt, ids, weights, e->nvariants);
  }
}

static int build_exps(sy_runtime_t *rt, char *err, size_t errlen) {
  const sy_config_t *cfg = rt->cfg;
  rt->exps = calloc(cfg->nexperiments ? cfg->nexperiments : 1, sizeof(*rt->exps));
  if (rt->exps == NULL)
    return -1;
  for (size_t i = 0; i < cfg->nexperiments; i++) {
    const sy_experiment_conf_t *e = &cfg->experiments[i];
    sy_exprt_t *x = &rt->exps[i];
    x->policy = new_policy(e);
    if (x->policy == NULL) {
      snprintf(err, errlen, "experiment %s: cannot set up its %s policy", e->id,
               e->policy == SY_POLICY_THOMPSON ? "thompson" : "split");
      return -1;
    }
    if (e->policy == SY_POLICY_THOMPSON && e->sticky_header != NULL &&
        e->thompson.sticky_ttl_ms > 0) {
      if (sy_sticky_init(&x->sticky, SY_STICKY_CAPACITY, e->thompson.sticky_ttl_ms, 0,
                         sy_rng_next(&rt->w->rng)) < 0)
        return -1;
      x->has_sticky = 1;
    }
  }
  return 0;
}

static void free_exps(sy_runtime_t *rt) {
  for (size_t i = 0; rt->exps != NULL && i < rt->cfg->nexperiments; i++) {
    sy_exprt_t *x = &rt->exps[i];
    sy_policy_destroy(x->policy);
    sy_policy_destroy(x->override);
    if (x->has_sticky)
      sy_sticky_free(&x->sticky);
    for (size_t j = 0; j < x->nsegs; j++) {
      free(x->segs[j].name);
      sy_policy_destroy(x->segs[j].policy);
    }
    free(x->segs);
    free(x->ment);
  }
  free(rt->exps);
}

static int same_variants(const sy_experiment_conf_t *a, const sy_experiment_conf_t *b) {
  if (a->nvariants != b->nvariants)
    return 0;
  for (size_t v = 0; v < a->nvariants; v++)
    if (strcmp(a->variants[v].id, b->variants[v].id) != 0)
      return 0;
  return 1;
}

void sy__runtime_adopt_sessions(sy_runtime_t *rt, sy_runtime_t *old) {
  for (size_t i = 0; i < rt->cfg->nexperiments; i++) {
    sy_exprt_t *x = &rt->exps[i];
    const sy_experiment_conf_t *e = &rt->cfg->experiments[i];
    for (size_t j = 0; x->has_sticky && j < old->cfg->nexperiments; j++) {
      sy_exprt_t *ox = &old->exps[j];
      const sy_experiment_conf_t *oe = &old->cfg->experiments[j];
      if (!ox->has_sticky || strcmp(e->id, oe->id) != 0 || !same_variants(e, oe))
        continue;
      /* The table's own TTL goes with it; the old runtime chooses no more. */
      sy_sticky_t tmp = x->sticky;
      x->sticky = ox->sticky;
      ox->sticky = tmp;
      break;
    }
  }
}

static void runtime_free(sy_runtime_t *rt) {
  if (rt->pools != NULL) {
    for (size_t i = 0; i < rt->cfg->nupstreams; i++) {
      sy_uppool_t *p = &rt->pools[i];
      for (size_t j = 0; p->servers != NULL && j < p->nservers; j++) {
        while (p->servers[j].idle != NULL)
          sy__upstream_close(p->servers[j].idle, 0);
        sy__upstream_server_free(&p->servers[j]);
      }
      free(p->servers);
    }
    free(rt->pools);
  }
  free_exps(rt);
  sy_config_free(rt->cfg);
  free(rt);
}

sy_runtime_t *sy__runtime_new(sy_worker_t *w, sy_config_t *cfg, const sy_runtime_t *old,
                              char *err, size_t errlen) {
  sy_runtime_t *rt = calloc(1, sizeof(*rt));
  if (rt == NULL) {
    sy_config_free(cfg);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  rt->refs = 1;
  rt->w = w;
  rt->cfg = cfg;
  rt->generation = ++w->generation;
  err[0] = '\0';
  if (build_pools(rt, old, old == NULL, err, errlen) < 0 || build_exps(rt, err, errlen) < 0) {
    if (err[0] == '\0')
      snprintf(err, errlen, "out of memory");
    runtime_free(rt);
    return NULL;
  }
  return rt;
}

void sy__runtime_unref(sy_runtime_t *rt) {
  if (rt != NULL && --rt->refs == 0)
    runtime_free(rt);
}

/* ---- statistics fed from outside (the stats file now, Redis later) ---- */

static int read_totals(const sy_experiment_conf_t *e, const json_t *vars, sy_arm_stats_t *t) {
  memset(t, 0, e->nvariants * sizeof(*t));
  if (!json_is_object(vars))
    return -1;
  for (size_t v = 0; v < e->nvariants; v++) {
    const json_t *a = json_object_get(vars, e->variants[v].id);
    if (a == NULL)
      continue;
    const json_t *n = json_object_get(a, "n"), *sum = json_object_get(a, "sum"),
                 *sq = json_object_get(a, "sumsq");
    if (!json_is_number(n) || !json_is_number(sum) || (sq != NULL && !json_is_number(sq)))
      return -1;
    t[v].n = json_number_value(n);
    t[v].sum = json_number_value(sum);
    /* Binary outcomes: x in {0, 1}, so the sum of squares is the sum. */
    t[v].sumsq = sq != NULL ? json_number_value(sq) : t[v].sum;
  }
  return 0;
}

static sy_policy_t *segment_policy(sy_exprt_t *x, const sy_experiment_conf_t *e,
                                   const char *name) {
  for (size_t j = 0; j < x->nsegs; j++)
    if (strcmp(x->segs[j].name, name) == 0)
      return x->segs[j].policy;
  if (x->nsegs == x->segcap) {
    size_t cap = x->segcap ? x->segcap * 2 : 8;
    sy_segpol_t *ns = realloc(x->segs, cap * sizeof(*ns));
    if (ns == NULL)
      return NULL;
    x->segs = ns;
    x->segcap = cap;
  }
  sy_policy_t *p = new_policy(e);
  char *nm = strdup(name);
  if (p == NULL || nm == NULL) {
    sy_policy_destroy(p);
    free(nm);
    return NULL;
  }
  x->segs[x->nsegs].name = nm;
  x->segs[x->nsegs].policy = p;
  x->nsegs++;
  return p;
}

int sy__runtime_apply_stats(sy_runtime_t *rt, const json_t *snapshot) {
  const json_t *exps = json_object_get(snapshot, "experiments");
  int updated = 0;
  sy_arm_stats_t t[SY_SPLIT_MAX_VARIANTS];
  for (size_t i = 0; json_is_object(exps) && i < rt->cfg->nexperiments; i++) {
    const sy_experiment_conf_t *e = &rt->cfg->experiments[i];
    const json_t *ej = json_object_get(exps, e->id);
    if (ej == NULL || e->policy != SY_POLICY_THOMPSON)
      continue;
    if (read_totals(e, json_object_get(ej, "variants"), t) < 0 ||
        sy_policy_update(rt->exps[i].policy, t) < 0) {
      sy_log_warn("stats: experiment %s: bad statistics; keeping the previous posterior", e->id);
      continue;
    }
    updated++;
    const json_t *segs = json_object_get(ej, "segments");
    const char *name;
    const json_t *sj;
    json_object_foreach((json_t *)segs, name, sj) {
      sy_policy_t *p = e->thompson.segment_header ? segment_policy(&rt->exps[i], e, name) : NULL;
      if (p == NULL || read_totals(e, sj, t) < 0 || sy_policy_update(p, t) < 0)
        sy_log_warn("stats: experiment %s: segment %s: not applied", e->id, name);
    }
  }
  return updated;
}

const sy_policy_t *sy__runtime_policy_for(const sy_runtime_t *rt, size_t i, const char *seg,
                                          size_t seglen) {
  const sy_exprt_t *x = &rt->exps[i];
  const sy_experiment_conf_t *e = &rt->cfg->experiments[i];
  for (size_t j = 0; seg != NULL && j < x->nsegs; j++)
    if (strlen(x->segs[j].name) == seglen && memcmp(x->segs[j].name, seg, seglen) == 0)
      return sy_segment_pick(x->policy, x->segs[j].policy, e->thompson.segment_min_samples);
  return x->policy;
}
