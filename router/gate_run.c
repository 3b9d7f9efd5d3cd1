/*
 * gate_run.c — the gate's decider: the lifecycle of an experiment's candidates,
 * driven by the statistics of policies/gate.h.
 *
 * Exactly one decider at a time: every `gate.interval` each router tries to take or
 * extend the experiment's lease (sy:{E}:gate:lease, a key with an expiry of three
 * intervals); the one that holds it reads the state and every variant's statistics
 * in one script call (one instant), decides, and writes at most one change through
 * SY_LUA_CONTROL with the version it read — so an operator's command that lands in
 * between makes the gate's write fail (CONFLICT) rather than undo it. If the decider
 * dies, another router takes the lease when it expires.
 *
 * Lifecycle (canary mode), per candidate:
 *   shadow  --(shadow_min_requests mirrored, shadow error rate within the guardrail)--> canary 0
 *   canary i --(guardrails hold, step_min and step_min_requests reached)--> canary i+1
 *   canary  --(outcome better: the whole confidence sequence above 0)--> promoted (concluded)
 *   canary  --(outcome worse, or a guardrail breached)--> rolled_back
 *   any     --(sample-ratio mismatch)--> the experiment halts (an operator resumes)
 * Bandit mode: the posterior allocates; an arm the gate finds certainly not the best, or
 * breaching a guardrail against the control, is removed; the only arm left that may be
 * the best, passing the guardrails, is promoted and concludes the experiment. Its
 * propensity check (the logged propensities against the realised allocation) halts.
 * Missing or stale data (no router has written the experiment's meta for max_stale)
 * decides nothing. A paused, halted or concluded experiment is left alone.
 *
 * Estimates are inverse-propensity weighted (Hajek) from the iw* sums the feedback
 * script keeps (proto/KEYS.md): the canary's shares move from step to step, and a
 * plain mean would then mix periods in different proportions for the two arms. With
 * constant shares the weighted and the plain means coincide.
 */
#include "router/gate_run.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "policies/gate.h"
#include "policies/gate_bandit.h"
#include "proto/events.h"
#include "proto/keys.h"
#include "proto/latency.h"
#include "router/runtime.h"
#include "router/worker.h"
#include "stats/store.h"
#include "stats/scripts.h"

#define TICK_MS 500

typedef struct gate_req_s {
  sy_worker_t *w;
  char exp[80];
} gate_req_t;

static int exp_index(const sy_runtime_t *rt, const char *id) {
  for (size_t i = 0; rt != NULL && i < rt->cfg->nexperiments; i++)
    if (strcmp(rt->cfg->experiments[i].id, id) == 0)
      return (int)i;
  return -1;
}

static gate_req_t *req_new(sy_worker_t *w, const char *exp) {
  gate_req_t *q = malloc(sizeof *q);
  if (q != NULL) {
    q->w = w;
    snprintf(q->exp, sizeof q->exp, "%s", exp);
  }
  return q;
}

/* ---- reading the statistics ---- */

static double hnum(const redisReply *h, const char *field) {
  for (size_t i = 0; h != NULL && i + 1 < h->elements; i += 2)
    if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, field) == 0 &&
        h->element[i + 1]->type == REDIS_REPLY_STRING)
      return strtod(h->element[i + 1]->str, NULL);
  return 0;
}

/* One variant's hash -> the gate's arm (IPW sums when there are any). */
static void arm_from(const redisReply *h, sy_gate_arm_t *a) {
  memset(a, 0, sizeof(*a));
  a->n = hnum(h, "n");
  if (hnum(h, "iw") > 0) {
    a->sw = hnum(h, "iw");
    a->swy = hnum(h, "iwy");
    a->sw2 = hnum(h, "iw2");
    a->sw2y = hnum(h, "iw2y");
    a->sw2y2 = hnum(h, "iw2y2");
  } else {
    a->sw = a->sw2 = a->n;
    a->swy = a->sw2y = hnum(h, "sum");
    a->sw2y2 = hnum(h, "sumsq");
  }
  a->requests = hnum(h, "requests");
  a->assigned = hnum(h, "assigned"); /* absent (0) before the counters existed */
  a->p_sum = hnum(h, "p_sum");
  a->p_sum2 = hnum(h, "p_sum_sq");
  a->p_own = hnum(h, "p_own");
  a->errors = hnum(h, "errors");
  for (size_t b = 0; b < SY_LAT_BUCKETS; b++)
    a->lat_hist[b] = hnum(h, sy_lat_fields[b]);
  a->tokens_n = hnum(h, "tokens_n");
  a->tokens_sum = hnum(h, "tokens_out");
  a->tokens_sumsq = hnum(h, "tokens_out_sq");
}

static void params_from(const sy_experiment_conf_t *e, sy_gate_params_t *p) {
  const sy_gate_conf_t *g = &e->gate;
  sy_gate_params_default(p);
  p->minimize = e->outcome.minimise;
  p->alpha = g->alpha;
  p->tuning_n = g->tuning_n;
  p->min_n = g->min_samples;
  p->max_age_ms = (double)g->max_stale_s * 1000;
  p->alpha_guard = g->guard_alpha;
  p->lat_p95_ratio_max = g->latency_p95_ratio;
  p->error_delta_max = g->error_rate_delta;
  p->tokens_ratio_max = g->tokens_ratio;
  p->alpha_srm = g->srm_alpha;
  p->promote_share = g->promote_share;
}

/* ---- writing a decision ---- */

static void on_written(sy_redis_t *r, redisReply *reply, void *data) {
  gate_req_t *q = data;
  (void)r;
  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
      reply->element[0]->type == REDIS_REPLY_STRING &&
      strcmp(reply->element[0]->str, "CONFLICT") == 0)
    sy_log_info("gate %s: the state changed meanwhile (an operator?); deciding again next time",
                q->exp);
  else if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
    sy_log_warn("gate %s: cannot write the decision: %s", q->exp, reply->str);
  free(q);
}

static void write_change(sy_worker_t *w, const sy_experiment_conf_t *e, sy_ctl_change_t *c,
                         long long version) {
  sy_stats_t *s = w->link;
  char event_id[80], ts[32], keys[4][160];
  const char *argv[SY_CTL_ARGV_MAX];
  size_t lens[SY_CTL_ARGV_MAX];
  snprintf(event_id, sizeof event_id, "%s-d%llu", s->instance,
           (unsigned long long)++w->api_seq);
  sy_stats_timestamp(s, ts);
  sy_ctl_change_event(c, e->id, event_id, s->router_instance, ts, SY_EVENT_SCHEMA_VERSION);
  char stream[SY_KEY_MAX];
  sy_stats_stream(s, e->id, stream, sizeof stream);
  int argc = sy_ctl_change_argv(c, SY_LUA_CONTROL, e->id, version, stream, s->maxlen, keys,
                                argv, lens);
  gate_req_t *q = req_new(w, e->id);
  if (q != NULL && sy_stats_command(s, keys[0], 0, on_written, q, argc, argv, lens) < 0)
    free(q);
  sy_log_info("gate %s: %s %s: %s", e->id, c->audit[0][1], c->audit[1][1], c->reason);
}

static void jset_num(json_t *o, const char *k, double x) {
  json_object_set_new(o, k, isfinite(x) ? json_real(x) : json_null());
}

static json_t *test_json(const sy_gate_test_t *t) {
  json_t *o = json_object();
  jset_num(o, "estimate", t->estimate);
  jset_num(o, "lower", t->lower);
  jset_num(o, "upper", t->upper);
  jset_num(o, "n", t->n);
  jset_num(o, "alpha", t->alpha);
  return o;
}

static char *result_json(const sy_gate_result_t *res, const sy_gate_arm_t *ctl,
                         const sy_gate_arm_t *cand) {
  static const char *const gnames[SY_GATE_NGUARDS] = {"latency_p95", "error_rate", "tokens"};
  json_t *o = json_object();
  jset_num(o, "n_control", ctl->n);
  jset_num(o, "n_candidate", cand->n);
  jset_num(o, "mean_control", res->mean_control);
  jset_num(o, "mean_candidate", res->mean_candidate);
  json_object_set_new(o, "outcome", test_json(&res->outcome));
  json_t *g = json_object();
  for (int i = 0; i < SY_GATE_NGUARDS; i++) {
    if (!res->guard[i].enabled)
      continue;
    json_t *gi = test_json(&res->guard[i].test);
    jset_num(gi, "control", res->guard[i].control);
    jset_num(gi, "candidate", res->guard[i].candidate);
    jset_num(gi, "limit", res->guard[i].limit);
    json_object_set_new(gi, "breached", json_boolean(res->guard[i].breached));
    json_object_set_new(g, gnames[i], gi);
  }
  json_object_set_new(o, "guardrails", g);
  if (res->srm_ran)
    jset_num(o, "srm_log_bayes_factor", res->srm_log_bf);
  char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
  json_decref(o);
  return txt;
}

/* ---- deciding ---- */

typedef struct view_s {
  const sy_experiment_conf_t *e;
  sy_ctl_state_t st;
  sy_gate_arm_t arm[SY_CTL_MAX_VARIANTS];
  double shadow_req[SY_CTL_MAX_VARIANTS], shadow_err[SY_CTL_MAX_VARIANTS];
  uint64_t now_ms;
  double age_ms;
  char by[160]; /* gate:ROUTER_INSTANCE */
  int concluded;      /* a change of this look concluded the experiment */
  long long nchanges; /* changes written in this look: each expects the version after
                         the previous one, so an operator's command in between makes the
                         rest fail rather than be undone */
} view_t;

static void num_str(char *b, size_t n, double x) { snprintf(b, n, "%.0f", x); }

/* A candidate moves to canary step `step` (from shadow or the previous step). */
static int ramp(sy_worker_t *w, view_t *v, size_t c, unsigned step, const char *why,
                const char *stats) {
  const sy_experiment_conf_t *e = v->e;
  sy_ctl_change_t ch;
  char f[120], val[48], reason[200];
  snprintf(reason, sizeof reason, "%s; step %u: %g%% of traffic", why, step,
           100 * sy_ctl_canary_share(e, step));
  if (sy_ctl_change_init(&ch, "ramp", e->variants[c].id, v->by, reason, stats, v->now_ms) < 0)
    return -1;
  snprintf(f, sizeof f, "v:%s", e->variants[c].id);
  sy_ctl_change_set(&ch, f, "canary");
  snprintf(f, sizeof f, "step:%s", e->variants[c].id);
  snprintf(val, sizeof val, "%u", step);
  sy_ctl_change_set(&ch, f, val);
  snprintf(f, sizeof f, "since:%s", e->variants[c].id);
  snprintf(val, sizeof val, "%" PRIu64, v->now_ms);
  sy_ctl_change_set(&ch, f, val);
  snprintf(f, sizeof f, "req0:%s", e->variants[c].id);
  num_str(val, sizeof val, v->arm[c].requests);
  sy_ctl_change_set(&ch, f, val);
  write_change(w, e, &ch, v->st.version + v->nchanges++);
  sy_ctl_change_free(&ch);
  return 1;
}

static int set_stage(sy_worker_t *w, view_t *v, size_t c, const char *decision, sy_stage_t to,
                     const char *reason, const char *stats, int conclude) {
  const sy_experiment_conf_t *e = v->e;
  sy_ctl_change_t ch;
  char f[120];
  if (sy_ctl_change_init(&ch, decision, e->variants[c].id, v->by, reason, stats, v->now_ms) < 0)
    return -1;
  snprintf(f, sizeof f, "v:%s", e->variants[c].id);
  sy_ctl_change_set(&ch, f, sy_stage_names[to]);
  if (conclude) {
    v->concluded = 1;
    sy_ctl_change_set(&ch, "status", "concluded");
    sy_ctl_change_set(&ch, "winner", to == SY_STAGE_PROMOTED ? e->variants[c].id : "");
  }
  write_change(w, e, &ch, v->st.version + v->nchanges++);
  sy_ctl_change_free(&ch);
  return 1;
}

static int halt(sy_worker_t *w, view_t *v, size_t c, const char *reason, const char *stats) {
  sy_ctl_change_t ch;
  if (sy_ctl_change_init(&ch, "halt", "", v->by, reason, stats, v->now_ms) < 0)
    return -1;
  sy_ctl_change_set(&ch, "status", "halted");
  write_change(w, v->e, &ch, v->st.version + v->nchanges++);
  sy_ctl_change_free(&ch);
  return 1;
}

/* A shadowed candidate: enough mirrored responses, and not failing more than the
 * control by the error guardrail's margin, go canary; failing more is rolled back. */
static int decide_shadow(sy_worker_t *w, view_t *v, size_t c) {
  const sy_gate_conf_t *g = &v->e->gate;
  double nreq = v->shadow_req[c];
  if (nreq < g->shadow_min_requests || nreq <= 0)
    return 0;
  const sy_gate_arm_t *ctl = &v->arm[v->e->control];
  double ctl_rate = ctl->requests > 0 ? ctl->errors / ctl->requests : 0;
  double rate = v->shadow_err[c] / nreq;
  char stats[200], why[200];
  snprintf(stats, sizeof stats,
           "{\"shadow_requests\":%.0f,\"shadow_error_rate\":%.4f,\"control_error_rate\":%.4f}",
           nreq, rate, ctl_rate);
  if (g->error_rate_delta > 0 && rate - ctl_rate > g->error_rate_delta) {
    snprintf(why, sizeof why,
             "shadow error rate %.1f%% exceeds the control's %.1f%% by more than %.1f points",
             100 * rate, 100 * ctl_rate, 100 * g->error_rate_delta);
    return set_stage(w, v, c, "rollback", SY_STAGE_ROLLED_BACK, why, stats, 0);
  }
  snprintf(why, sizeof why, "shadow: %.0f mirrored responses, error rate %.1f%%", nreq,
           100 * rate);
  return ramp(w, v, c, 0, why, stats);
}

/* Phase 0 acts only on halts and roll backs, phase 1 on promotions and ramps: a
 * candidate that is clearly worse is taken out before another's promotion ends the
 * experiment. */
static int decide_canary(sy_worker_t *w, view_t *v, size_t c, int phase) {
  const sy_experiment_conf_t *e = v->e;
  sy_gate_params_t p;
  params_from(e, &p);
  sy_gate_arm_t ctl = v->arm[e->control], cand = v->arm[c];
  p.alpha_srm = 0; /* checked for the whole allocation in check_srm() */
  sy_gate_result_t res;
  sy_gate_decision_t d = sy_gate_evaluate(&p, &ctl, &cand, v->age_ms, &res);
  /* guardrails and the outcome use all the data, not only the step's */
  char *stats = result_json(&res, &ctl, &cand);
  char why[256];
  int rc = 0;
  snprintf(why, sizeof why, "%s%s%s", res.reason, res.detail ? ": " : "",
           res.detail ? res.detail : "");
  if (phase == 0 && d != SY_GATE_HALT && d != SY_GATE_ROLLBACK) {
    d = SY_GATE_HALT; /* not this phase's business: nothing to do */
    res.reason = "";
  } else if (phase == 1 && (d == SY_GATE_HALT || d == SY_GATE_ROLLBACK)) {
    free(stats);
    return 0;
  }
  if (d == SY_GATE_HALT && res.reason[0] == '\0') {
    /* phase 0, nothing to do */
  } else if (d == SY_GATE_HALT) {
    sy_log_warn("gate %s: no decision for %s: %s", e->id, e->variants[c].id, why);
  } else if (d == SY_GATE_PROMOTE) {
    rc = set_stage(w, v, c, "promote", SY_STAGE_PROMOTED, why, stats, 1);
  } else if (d == SY_GATE_ROLLBACK) {
    rc = set_stage(w, v, c, "rollback", SY_STAGE_ROLLED_BACK, why, stats, 0);
  } else {
    unsigned step = v->st.step[c];
    int breached = 0;
    for (int i = 0; i < SY_GATE_NGUARDS; i++)
      breached |= res.guard[i].breached;
    double on_step = v->arm[c].requests - v->st.req0[c];
    if (!breached && step + 1 < e->gate.nramp &&
        v->now_ms >= v->st.since_ms[c] + (uint64_t)e->gate.step_min_s * 1000 &&
        on_step >= e->gate.step_min_requests) {
      snprintf(why, sizeof why, "guardrails hold after %.0f requests on step %u", on_step, step);
      rc = ramp(w, v, c, step + 1, why, stats);
    }
  }
  free(stats);
  return rc;
}

/* A bandit look's numbers, per variant (live or not), for the audit. */
static char *bandit_json(const view_t *v, const sy_gate_bandit_t *out,
                         const sy_gate_bandit_arm_t *per) {
  static const char *const gnames[SY_GATE_NGUARDS] = {"latency_p95", "error_rate", "tokens"};
  json_t *o = json_object();
  for (size_t a = 0; a < v->st.nvariants; a++) {
    json_t *ai = test_json(&per[a].vs_leader);
    jset_num(ai, "mean", per[a].mean);
    jset_num(ai, "n", v->arm[a].n);
    jset_num(ai, "log_e", per[a].log_e);
    jset_num(ai, "log_e_closed", per[a].log_e_closed);
    jset_num(ai, "log_threshold", out->log_threshold);
    jset_num(ai, "srm_log_e", per[a].srm_log_e);
    jset_num(ai, "assigned", v->arm[a].assigned);
    jset_num(ai, "expected", v->arm[a].p_sum);
    json_object_set_new(ai, "live", json_boolean(per[a].live));
    json_object_set_new(ai, "not_best", json_boolean(per[a].not_best));
    for (int g = 0; g < SY_GATE_NGUARDS; g++)
      if (per[a].guard[g].enabled && per[a].guard[g].test.ran) {
        json_t *gi = test_json(&per[a].guard[g].test);
        jset_num(gi, "control", per[a].guard[g].control);
        jset_num(gi, "candidate", per[a].guard[g].candidate);
        json_object_set_new(gi, "breached", json_boolean(per[a].guard[g].breached));
        json_object_set_new(ai, gnames[g], gi);
      }
    json_object_set_new(o, v->e->variants[a].id, ai);
  }
  char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
  json_decref(o);
  return txt;
}

/* Bandit mode (policies/gate.h): every variant's totals, removed ones included (the
 * tests use their data); at most one change per look: a halt (the propensity check), a
 * winner, or the removal of one arm that is certainly not the best or breaches a
 * guardrail against the control. */
static int decide_bandit(sy_worker_t *w, view_t *v) {
  const sy_experiment_conf_t *e = v->e;
  sy_gate_params_t p;
  params_from(e, &p);
  p.floor = e->thompson.floor;
  p.y_min = e->gate.outcome_min;
  p.y_max = e->gate.outcome_max;
  size_t k = v->st.nvariants, nlive = 0;
  int counted = 0;
  for (size_t j = 0; j < k; j++)
    counted |= v->arm[j].assigned > 0 || v->arm[j].p_sum > 0;
  if (e->outcome.nproxies > 0 && !counted)
    p.alpha_srm = 0; /* weighted proxy feedback breaks the inverse check's count identity */
  int live[SY_CTL_MAX_VARIANTS];
  for (size_t j = 0; j < k; j++)
    nlive += (size_t)(live[j] = v->st.stage[j] == SY_STAGE_LIVE);
  if (nlive < 2 || k < 2)
    return 0;
  sy_gate_bandit_t out;
  sy_gate_bandit_arm_t per[SY_CTL_MAX_VARIANTS];
  sy_gate_decision_t d = sy_gate_bandit_check(&p, v->arm, live, k, e->control, v->age_ms, &out, per);
  if (d == SY_GATE_HALT && strcmp(out.reason, "srm") != 0) {
    sy_log_warn("gate %s: no decision: %s%s%s", e->id, out.reason, out.detail ? ": " : "",
                out.detail ? out.detail : "");
    return 0;
  }
  char *stats = bandit_json(v, &out, per);
  int rc = 0;
  char why[400];
  if (d == SY_GATE_HALT) {
    size_t worst = 0;
    for (size_t a = 1; a < k; a++)
      if (per[a].srm_log_e > per[worst].srm_log_e || isnan(per[worst].srm_log_e))
        worst = a;
    if (out.srm_check[0] == 'a')
      snprintf(why, sizeof why, "sample ratio mismatch: %s assigned %.0f requests where its "
               "logged propensities expect %.1f (log e %.2f >= log(2K/alpha_srm) = %.2f); "
               "routing or logging is broken: the gate stops until resumed",
               e->variants[worst].id, v->arm[worst].assigned, v->arm[worst].p_sum,
               per[worst].srm_log_e, out.srm_log_threshold);
    else
      snprintf(why, sizeof why, "propensity check: %s (%s: log e %.2f >= log(2K/alpha_srm) = "
               "%.2f); routing or logging is broken: the gate stops until resumed", out.detail,
               e->variants[worst].id, per[worst].srm_log_e, out.srm_log_threshold);
    rc = halt(w, v, e->control, why, stats);
  } else if (d == SY_GATE_PROMOTE) {
    snprintf(why, sizeof why, "bandit: %s is the only arm left that may be the best (closed "
             "log e of every other >= %.2f = log(1/alpha)) and passes the guardrails",
             e->variants[out.winner].id, out.log_threshold);
    rc = set_stage(w, v, out.winner, "promote", SY_STAGE_PROMOTED, why, stats, 1);
  } else {
    for (size_t a = 0; a < k && rc == 0; a++) {
      if (!per[a].remove)
        continue;
      if (per[a].guard_breached >= 0)
        snprintf(why, sizeof why, "bandit: %s against the control %s",
                 sy_gate_guard_reason_name(per[a].guard_breached), e->variants[e->control].id);
      else
        snprintf(why, sizeof why, "bandit: certainly not the best (closed log e %.2f >= %.2f "
                 "= log(1/alpha))", per[a].log_e_closed, out.log_threshold);
      rc = set_stage(w, v, a, "remove", SY_STAGE_REMOVED, why, stats, 0);
    }
  }
  free(stats);
  return rc;
}

static void on_baseline(sy_redis_t *r, redisReply *reply, void *data) {
  (void)r;
  (void)reply;
  free(data);
}

/* Records every variant's request count as the sample-ratio baseline of the current
 * version, once routers have had time to apply it (their poll, plus a journal flush). */
static void write_baseline(sy_worker_t *w, view_t *v) {
  const sy_experiment_conf_t *e = v->e;
  size_t nv = v->st.nvariants, n = 0;
  const char **argv = calloc(6 + 2 * nv, sizeof *argv);
  size_t *lens = calloc(6 + 2 * nv, sizeof *lens);
  char (*buf)[2][96] = calloc(nv, sizeof *buf);
  char key[120], ver[32];
  gate_req_t *q = req_new(w, e->id);
  if (argv == NULL || lens == NULL || buf == NULL || q == NULL)
    goto out;
  sy_key_state(key, sizeof key, e->id);
  snprintf(ver, sizeof ver, "%lld", v->st.version);
  argv[n++] = "EVAL";
  argv[n++] = SY_LUA_BASELINE;
  argv[n++] = "1";
  argv[n++] = key;
  argv[n++] = ver;
  for (size_t j = 0; j < nv; j++) {
    snprintf(buf[j][0], sizeof buf[j][0], "base:%s", e->variants[j].id);
    num_str(buf[j][1], sizeof buf[j][1], v->arm[j].requests);
    argv[n++] = buf[j][0];
    argv[n++] = buf[j][1];
  }
  for (size_t j = 0; j < n; j++)
    lens[j] = strlen(argv[j]);
  if (sy_stats_command(w->link, key, 0, on_baseline, q, (int)n, argv, lens) == 0)
    q = NULL;
out:
  free(q);
  free(argv);
  free(lens);
  free(buf);
}

#define SETTLE_MS 1500

/* The sample-ratio check over the whole allocation since the baseline of the current
 * version (Lindon & Malek's multinomial test, policies/seqtest.h): requests per
 * variant against the shares routing gives them. Variants with no share are left out
 * (a late-counted request from before the change must not look like a mismatch).
 * Returns 1 if it halted the experiment. */
static int check_srm(sy_worker_t *w, view_t *v) {
  const sy_experiment_conf_t *e = v->e;
  if (e->gate.srm_alpha <= 0)
    return 0;
  if (v->st.srm_version != v->st.version) {
    if (v->now_ms >= v->st.changed_ms + SETTLE_MS)
      write_baseline(w, v);
    return 0;
  }
  double weights[SY_CTL_MAX_VARIANTS], x[SY_CTL_MAX_VARIANTS], th[SY_CTL_MAX_VARIANTS];
  unsigned char active[SY_CTL_MAX_VARIANTS];
  if (sy_ctl_routing(e, &v->st, weights, active) != SY_ROUTE_WEIGHTS)
    return 0;
  size_t k = 0;
  double total = 0;
  for (size_t j = 0; j < v->st.nvariants; j++)
    if (weights[j] > 0) {
      x[k] = fmax(0, v->arm[j].requests - v->st.base[j]);
      th[k++] = weights[j];
      total += x[k - 1];
    }
  if (k < 2)
    return 0;
  sy_gate_params_t p;
  params_from(e, &p);
  double lbf = sy_seq_srm_log_bf(x, th, k, p.srm_concentration);
  if (!(lbf >= -log(e->gate.srm_alpha)))
    return 0;
  char why[400], stats[600];
  size_t off = (size_t)snprintf(why, sizeof why,
                                "sample ratio mismatch since state version %lld (%.0f requests):",
                                v->st.version, total);
  size_t so = (size_t)snprintf(stats, sizeof stats, "{\"log_bayes_factor\":%.3f,\"variants\":{",
                               lbf);
  for (size_t j = 0, i = 0; j < v->st.nvariants && off < sizeof why && so < sizeof stats; j++) {
    if (!(weights[j] > 0))
      continue;
    off += (size_t)snprintf(why + off, sizeof why - off, " %s %.1f%% (expected %.1f%%)",
                            e->variants[j].id, total > 0 ? 100 * x[i] / total : 0,
                            100 * weights[j]);
    so += (size_t)snprintf(stats + so, sizeof stats - so,
                           "%s\"%s\":{\"requests\":%.0f,\"expected_share\":%.4f}", i ? "," : "",
                           e->variants[j].id, x[i], weights[j]);
    i++;
  }
  if (so < sizeof stats)
    snprintf(stats + so, sizeof stats - so, "}}");
  if (off < sizeof why)
    snprintf(why + off, sizeof why - off, "; routing or logging is broken: the gate stops until resumed");
  return halt(w, v, e->control, why, stats);
}

static void decide(sy_worker_t *w, view_t *v) {
  const sy_experiment_conf_t *e = v->e;
  if (v->st.status != SY_XS_RUNNING || v->st.winner >= 0)
    return;
  if (e->gate.mode == SY_GATE_BANDIT) {
    decide_bandit(w, v);
    return;
  }
  if (check_srm(w, v))
    return;
  /* At most one change per candidate and look, roll backs first; a promotion ends
   * the experiment, so nothing follows it. */
  unsigned char changed[SY_CTL_MAX_VARIANTS] = {0};
  for (int phase = 0; phase < 2; phase++)
    for (size_t c = 0; c < v->st.nvariants; c++) {
      if (c == e->control || changed[c])
        continue;
      int rc = 0;
      if (v->st.stage[c] == SY_STAGE_SHADOW && phase == 1)
        rc = decide_shadow(w, v, c);
      else if (v->st.stage[c] == SY_STAGE_CANARY)
        rc = decide_canary(w, v, c, phase);
      changed[c] = rc != 0;
      if (rc != 0 && v->concluded)
        return;
    }
}

static void on_read(sy_redis_t *r, redisReply *reply, void *data) {
  gate_req_t *q = data;
  sy_worker_t *w = q->w;
  int i = exp_index(w->rt, q->exp);
  (void)r;
  if (i < 0 || w->link == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
      reply->elements != 3 + w->rt->cfg->experiments[i].nvariants) {
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
      sy_log_warn("gate %s: cannot read the statistics: %s", q->exp, reply->str);
    free(q);
    return;
  }
  view_t *v = calloc(1, sizeof *v);
  const redisReply *sh = reply->element[0], *tm = reply->element[1], *up = reply->element[2];
  const char **kv = calloc(sh->elements + 1, sizeof *kv);
  if (v == NULL || kv == NULL || tm->elements != 2) {
    free(v);
    free(kv);
    free(q);
    return;
  }
  v->e = &w->rt->cfg->experiments[i];
  snprintf(v->by, sizeof v->by, "gate:%s", w->link->router_instance);
  for (size_t j = 0; j < sh->elements; j++)
    kv[j] = sh->element[j]->type == REDIS_REPLY_STRING ? sh->element[j]->str : "";
  sy_ctl_state_parse(v->e, kv, sh->elements / 2, &v->st);
  free(kv);
  v->now_ms = strtoull(tm->element[0]->str, NULL, 10) * 1000 +
              strtoull(tm->element[1]->str, NULL, 10) / 1000;
  double updated = up->type == REDIS_REPLY_STRING && up->str[0] ? strtod(up->str, NULL) : NAN;
  v->age_ms = isfinite(updated) ? fmax(0, (double)v->now_ms - updated) : NAN;
  for (size_t j = 0; j < v->e->nvariants && j < SY_CTL_MAX_VARIANTS; j++) {
    const redisReply *h = reply->element[3 + j];
    arm_from(h, &v->arm[j]);
    v->shadow_req[j] = hnum(h, "shadow_requests");
    v->shadow_err[j] = hnum(h, "shadow_errors");
  }
  if (v->st.version > 0)
    decide(w, v);
  free(v);
  free(q);
}

static void read_and_decide(sy_worker_t *w, const sy_experiment_conf_t *e) {
  size_t n = 0, nv = e->nvariants;
  const char **argv = calloc(6 + nv, sizeof *argv);
  size_t *lens = calloc(6 + nv, sizeof *lens);
  char k_state[120], prefix[120];
  gate_req_t *q = req_new(w, e->id);
  if (argv == NULL || lens == NULL || q == NULL)
    goto out;
  sy_key_state(k_state, sizeof k_state, e->id);
  sy_key_prefix(prefix, sizeof prefix, e->id);
  argv[n++] = "EVAL";
  argv[n++] = SY_LUA_GATE_READ;
  argv[n++] = "1";
  argv[n++] = k_state;
  argv[n++] = prefix;
  for (size_t j = 0; j < nv; j++)
    argv[n++] = e->variants[j].id;
  for (size_t j = 0; j < n; j++)
    lens[j] = strlen(argv[j]);
  if (sy_stats_command(w->link, k_state, 0, on_read, q, (int)n, argv, lens) == 0)
    q = NULL;
out:
  free(q);
  free(argv);
  free(lens);
}

static void on_lease(sy_redis_t *r, redisReply *reply, void *data) {
  gate_req_t *q = data;
  sy_worker_t *w = q->w;
  int i = exp_index(w->rt, q->exp);
  (void)r;
  if (i >= 0 && w->link != NULL && reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
      reply->integer == 1)
    read_and_decide(w, &w->rt->cfg->experiments[i]);
  free(q);
}

static void look(sy_worker_t *w, size_t i) {
  const sy_experiment_conf_t *e = &w->rt->cfg->experiments[i];
  char key[120], ttl[24];
  sy_key_lease(key, sizeof key, e->id);
  snprintf(ttl, sizeof ttl, "%u", 3 * e->gate.interval_ms);
  const char *argv[] = {"EVAL", SY_LUA_LEASE, "1", key, w->link->instance, ttl};
  size_t lens[6];
  for (size_t j = 0; j < 6; j++)
    lens[j] = strlen(argv[j]);
  gate_req_t *q = req_new(w, e->id);
  if (q != NULL && sy_stats_command(w->link, key, 0, on_lease, q, 6, argv, lens) < 0)
    free(q);
}

static void on_tick(uv_timer_t *t) {
  sy_worker_t *w = t->data;
  if (w->link == NULL || w->rt == NULL || !sy_stats_usable(w->link) || w->draining)
    return;
  uint64_t now = uv_now(&w->loop);
  for (size_t i = 0; i < w->rt->cfg->nexperiments; i++) {
    const sy_experiment_conf_t *e = &w->rt->cfg->experiments[i];
    sy_exprt_t *x = &w->rt->exps[i];
    if (e->gate.mode == SY_GATE_OFF || now < x->gate_next_ms)
      continue;
    x->gate_next_ms = now + e->gate.interval_ms;
    look(w, i);
  }
}

void sy__gate_open(sy_worker_t *w) {
  uv_timer_init(&w->loop, &w->gate_timer);
  w->gate_timer.data = w;
  uv_timer_start(&w->gate_timer, on_tick, TICK_MS, TICK_MS);
}

void sy__gate_close(sy_worker_t *w) {
  uv_timer_stop(&w->gate_timer);
  uv_close((uv_handle_t *)&w->gate_timer, NULL);
}
