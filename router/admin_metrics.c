/*
 * admin_metrics.c — where the request path feeds the shared metrics table
 * (metrics.h), and the part of a scrape that comes from the serving worker's own
 * runtime: each variant's current traffic share and stage, each experiment's status.
 *
 * The per-request hook runs once per exchange (sy__proxy_end); it finds the
 * variant's entry through a pointer cached in the runtime, so the hot path does a
 * few increments and no string compare after the first request of a variant.
 */
#include "router/admin_metrics.h"

#include <stdlib.h>
#include <string.h>

#include "router/exchange.h"
#include "router/metrics.h"
#include "router/runtime.h"
#include "router/worker.h"
#include "stats/stats.h"
#include "stats/store.h"

static sy_mentry_t *entry_for(sy_worker_t *w, const sy_req_t *r) {
  sy_exprt_t *x = &r->rt->exps[r->exp];
  const sy_experiment_conf_t *e = &r->rt->cfg->experiments[r->exp];
  if (r->variant >= e->nvariants)
    return NULL;
  if (x->ment == NULL) {
    x->ment = calloc(e->nvariants, sizeof *x->ment);
    if (x->ment == NULL)
      return NULL;
  }
  if (x->ment[r->variant] == NULL)
    x->ment[r->variant] = sy_metrics_entry(w->mslot, e->id, e->variants[r->variant].id);
  return x->ment[r->variant];
}

void sy__metrics_done(sy_worker_t *w, const sy_req_t *r, const sy_exchange_end_t *end) {
  if (w == NULL || w->mslot == NULL)
    return;
  sy_mentry_t *m = entry_for(w, r);
  if (m == NULL)
    return;
  double ttfb = end->ttfb_ms >= 0 ? end->ttfb_ms / 1e3 : -1;
  sy_metrics_response(m, end->status, end->error, end->ms / 1e3, ttfb);
  m->retried += end->retried != 0;
  m->fallbacks += end->fallback != 0;
}

void sy__metrics_shadow(sy_worker_t *w, const sy_experiment_conf_t *e, const sy_variant_conf_t *v,
                        const char *field) {
  if (w == NULL || w->mslot == NULL || strncmp(field, "shadow_", 7) != 0)
    return;
  const char *f = field + 7;
  /* shadow.c's other counters (latency sums, tokens, comparisons) are Redis-only */
  static const char *const names[] = {"requests", "errors", "skipped", "dropped_inflight",
                                      "dropped_budget"};
  size_t k = 0;
  while (k < 5 && strcmp(f, names[k]) != 0)
    k++;
  sy_mentry_t *m = k < 5 ? sy_metrics_entry(w->mslot, e->id, v->id) : NULL;
  if (m == NULL)
    return;
  uint64_t *c[5] = {&m->shadow_sent, &m->shadow_errors, &m->shadow_skipped,
                    &m->shadow_dropped_inflight, &m->shadow_dropped_budget};
  (*c[k])++;
}

void sy__metrics_refresh(sy_worker_t *w) {
  sy_mslot_t *s = w->mslot;
  if (s == NULL)
    return;
  s->redis_up = w->link != NULL && sy_stats_ready(w->link);
  s->redis_down_ms = w->link != NULL ? sy_stats_down_ms(w->link) : 0;
  if (w->link != NULL) {
    s->redis_switches = s->switches_base + sy_redis_switches(&w->link->redis);
    s->redis_wait_short = s->wait_short_base + w->link->redis.wait_short;
  }
  /* Every configured variant has its series from the start, at zero: a rate() over
   * a series that appears only with its first request misses that request. */
  for (size_t i = 0; w->rt != NULL && i < w->rt->cfg->nexperiments; i++) {
    const sy_experiment_conf_t *e = &w->rt->cfg->experiments[i];
    for (size_t v = 0; v < e->nvariants; v++)
      sy_metrics_entry(s, e->id, e->variants[v].id);
  }
  if (w->link == NULL || !sy_stats_events(w->link))
    return;
  sy_journal_counters_t c;
  sy_stats_journal_counters(w->link, &c);
  s->events_queued = c.queued_events;
  s->events_spooled = s->spooled_base + c.spooled;
  s->events_replayed = s->replayed_base + c.replayed;
  s->events_dropped = s->dropped_base + c.dropped;
}

void sy__metrics_render_state(sy_worker_t *w, sy_mtext_t *t) {
  const sy_runtime_t *rt = w->rt;
  if (rt == NULL)
    return;
  const sy_config_t *cfg = rt->cfg;
  sy_mtext_printf(t, "# HELP switchyard_variant_share The variant's current share of live "
                     "traffic (0 to 1), as this router routes it.\n"
                     "# TYPE switchyard_variant_share gauge\n");
  for (size_t i = 0; i < cfg->nexperiments; i++) {
    const sy_policy_t *p = sy__control_policy(rt, i);
    for (size_t v = 0; v < cfg->experiments[i].nvariants; v++)
      sy_mtext_printf(t, "switchyard_variant_share{experiment=\"%s\",variant=\"%s\"} %.6g\n",
                      cfg->experiments[i].id, cfg->experiments[i].variants[v].id,
                      p != NULL ? sy_policy_propensity(p, v) : 0.0);
  }
  sy_mtext_printf(t, "# HELP switchyard_variant_stage 1 for the variant's current stage "
                     "(the gate's or an operator's decision), else 0.\n"
                     "# TYPE switchyard_variant_stage gauge\n");
  for (size_t i = 0; i < cfg->nexperiments; i++) {
    const sy_ctl_state_t *st = &rt->exps[i].ctl;
    for (size_t v = 0; v < cfg->experiments[i].nvariants; v++)
      for (int k = 0; k < SY_STAGE_COUNT; k++) {
        sy_stage_t cur = v < st->nvariants ? st->stage[v] : SY_STAGE_LIVE;
        sy_mtext_printf(t,
                        "switchyard_variant_stage{experiment=\"%s\",variant=\"%s\",stage=\"%s\"} "
                        "%d\n",
                        cfg->experiments[i].id, cfg->experiments[i].variants[v].id,
                        sy_stage_names[k], (int)cur == k);
      }
  }
  sy_mtext_printf(t, "# HELP switchyard_experiment_status 1 for the experiment's current status, "
                     "else 0.\n# TYPE switchyard_experiment_status gauge\n");
  for (size_t i = 0; i < cfg->nexperiments; i++)
    for (int k = 0; k < SY_XS_COUNT; k++)
      sy_mtext_printf(t, "switchyard_experiment_status{experiment=\"%s\",status=\"%s\"} %d\n",
                      cfg->experiments[i].id, sy_xstatus_names[k],
                      (int)rt->exps[i].ctl.status == k);
}

const sy_report_ops_t sy__metrics_report = {
    .exchange_end = sy__metrics_done,
    .shadow_count = sy__metrics_shadow,
    .tick = sy__metrics_refresh,
};
