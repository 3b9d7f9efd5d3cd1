/*
 * gate.c — the canary gate's decision (promote, roll back, continue, halt) from per-arm
 * sufficient statistics, and the guardrails both modes share (bandit mode: gate_bandit.c). The maths of the boundaries lives in
 * seqtest.c; this file turns arms into estimates and variances, runs the checks in the order
 * gate.h documents and records every number it used, so that a decision can be audited.
 *
 * Every test here reads only the current totals: nothing is remembered between looks. That
 * is what makes the gate safe to run from any router instance at any cadence — the
 * sequences are valid at every sample size at once, so looking more often costs nothing.
 */
#include "policies/gate.h"

#include <math.h>
#include <string.h>

#include "policies/lathist.h"

/* The latency guardrail compares 95th percentiles: 5% of requests lie above one. */
#define LAT_Q 0.95
#define LAT_TAIL (1 - LAT_Q)

/* Relative slack of the Cauchy–Schwarz consistency checks, for rounding in long sums. */
#define CS_SLACK 1e-9

const char *const sy__gate_guard_reason[SY_GATE_NGUARDS] = {
    "guardrail:latency_p95", "guardrail:error_rate", "guardrail:tokens"};

/* ---- parameters ---- */

/* Fills p with the defaults (gate.h). */
void sy_gate_params_default(sy_gate_params_t *p) {
  *p = (sy_gate_params_t){.minimize = 0,
                          .alpha = 0.05,
                          .promote_share = 0.9,
                          .tuning_n = SY_GATE_TUNING_N,
                          .min_n = 100,
                          .max_age_ms = 300000,
                          .alpha_guard = 0.05,
                          .lat_p95_ratio_max = 1.2,
                          .error_delta_max = 0.02,
                          .tokens_ratio_max = 1.5,
                          .alpha_srm = 0.001,
                          .srm_concentration = 1000,
                          .floor = 0,
                          .y_min = 0,
                          .y_max = 1};
}

/* Returns NULL or the first field out of range (gate.h). */
const char *sy_gate_params_check(const sy_gate_params_t *p) {
  /* Both levels stay below 0.5 so that their one-sided uses (guardrails, bandit pruning)
   * are well defined; nobody gates at 50% anyway. */
  if (!(p->alpha > 0 && p->alpha < 0.5))
    return "alpha must be in (0, 0.5)";
  if (!(p->promote_share > 0 && p->promote_share < 1))
    return "promote_share must be in (0, 1)";
  if (isnan(p->tuning_n) || isinf(p->tuning_n))
    return "tuning_n must be finite";
  if (!(p->min_n >= 1) || isinf(p->min_n))
    return "min_n must be >= 1";
  if (!(p->max_age_ms >= 0))
    return "max_age_ms must be >= 0";
  if (!(p->alpha_guard > 0 && p->alpha_guard < 0.5))
    return "alpha_guard must be in (0, 0.5)";
  if (!(p->lat_p95_ratio_max == 0 || (p->lat_p95_ratio_max > 0 && isfinite(p->lat_p95_ratio_max))))
    return "lat_p95_ratio_max must be > 0, or 0 (off)";
  if (!(p->error_delta_max >= 0 && p->error_delta_max < 1))
    return "error_delta_max must be in [0, 1)";
  if (!(p->tokens_ratio_max >= 0) || isinf(p->tokens_ratio_max))
    return "tokens_ratio_max must be > 0, or 0 (off)";
  if (!(p->alpha_srm >= 0 && p->alpha_srm < 1))
    return "alpha_srm must be in [0, 1)";
  if (!(p->srm_concentration > 0) || isinf(p->srm_concentration))
    return "srm_concentration must be > 0";
  if (!(p->floor >= 0 && p->floor <= 0.5))
    return "floor must be in [0, 0.5]";
  if (!(isfinite(p->y_min) && isfinite(p->y_max) && p->y_min < p->y_max))
    return "the outcome range must be finite with y_min < y_max";
  return NULL;
}

/* Returns the tuning sample size in effect (gate.h). */
double sy_gate_tuning_n(const sy_gate_params_t *p) {
  return p->tuning_n > 0 ? p->tuning_n : SY_GATE_TUNING_N;
}

/* ---- arms ---- */

/* Adds one weighted outcome (gate.h). */
void sy_gate_arm_add(sy_gate_arm_t *a, double y, double w) {
  double w2 = w * w;
  a->n += 1;
  a->sw += w;
  a->swy += w * y;
  a->sw2 += w2;
  a->sw2y += w2 * y;
  a->sw2y2 += w2 * y * y;
}

/* Adds src's counts and sums into dst (gate.h). */
void sy_gate_arm_merge(sy_gate_arm_t *dst, const sy_gate_arm_t *src) {
  dst->n += src->n;
  dst->sw += src->sw;
  dst->swy += src->swy;
  dst->sw2 += src->sw2;
  dst->sw2y += src->sw2y;
  dst->sw2y2 += src->sw2y2;
  dst->requests += src->requests;
  dst->assigned += src->assigned;
  dst->p_sum += src->p_sum;
  dst->p_sum2 += src->p_sum2;
  dst->p_own += src->p_own;
  dst->errors += src->errors;
  for (size_t i = 0; i < SY_LAT_BUCKETS; i++)
    dst->lat_hist[i] += src->lat_hist[i];
  dst->tokens_n += src->tokens_n;
  dst->tokens_sum += src->tokens_sum;
  dst->tokens_sumsq += src->tokens_sumsq;
}

/* Returns swy / sw (gate.h). */
double sy_gate_arm_mean(const sy_gate_arm_t *a) {
  return a->sw > 0 ? a->swy / a->sw : NAN;
}

/* Returns the delta-method variance of the Hajek mean (gate.h). */
double sy_gate_arm_var(const sy_gate_arm_t *a) {
  if (!(a->sw > 0))
    return NAN;
  double m = a->swy / a->sw;
  double num = a->sw2y2 - 2 * m * a->sw2y + m * m * a->sw2; /* sum w^2 (y - m)^2 */
  return num > 0 ? num / (a->sw * a->sw) : 0;
}

/* lhs <= rhs up to rounding: the Cauchy–Schwarz checks. */
static int cs_ok(double lhs, double rhs) {
  return lhs <= rhs * (1 + CS_SLACK);
}

static int all_finite(const sy_gate_arm_t *a) {
  double v[] = {a->n,      a->sw,       a->swy,        a->sw2,
                a->sw2y,   a->sw2y2,    a->requests,   a->expected_share,
                a->errors, a->tokens_n, a->tokens_sum, a->tokens_sumsq,
                a->assigned, a->p_sum, a->p_sum2, a->p_own};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    if (!isfinite(v[i]))
      return 0;
  for (size_t i = 0; i < SY_LAT_BUCKETS; i++)
    if (!isfinite(a->lat_hist[i]))
      return 0;
  return 1;
}

/* Returns NULL or what is wrong with a (gate.h). */
const char *sy_gate_arm_check(const sy_gate_arm_t *a) {
  if (!all_finite(a))
    return "a statistic is NaN or infinite";
  if (a->n < 0 || a->sw < 0 || a->sw2 < 0 || a->sw2y2 < 0 || a->requests < 0 || a->errors < 0 ||
      a->tokens_n < 0 || a->tokens_sum < 0 || a->tokens_sumsq < 0)
    return "a count or a sum of squares is negative";
  for (size_t i = 0; i < SY_LAT_BUCKETS; i++)
    if (a->lat_hist[i] < 0)
      return "a latency bucket is negative";
  if (a->expected_share < 0 || a->expected_share > 1)
    return "expected_share is outside [0, 1]";
  if (a->n == 0 && (a->sw != 0 || a->swy != 0 || a->sw2 != 0 || a->sw2y != 0 || a->sw2y2 != 0))
    return "outcome sums without outcomes";
  if (a->n > 0 && !(a->sw > 0 && a->sw2 > 0))
    return "outcomes without weight";
  if (a->errors > a->requests * (1 + CS_SLACK))
    return "more errors than requests";
  /* propensities are in [0, 1]: sum p^2 <= sum p, and sum over own assignments <= both */
  if (a->assigned < 0 || a->p_sum < 0 || a->p_sum2 < 0 || a->p_own < 0)
    return "an assignment count or a propensity sum is negative";
  if (!cs_ok(a->p_sum2, a->p_sum) || !cs_ok(a->p_own, a->assigned) || !cs_ok(a->p_own, a->p_sum))
    return "propensity sums inconsistent (p_sum2 > p_sum, or p_own above assigned or p_sum)";
  /* (sum w)^2 <= n sum w^2 and (sum w^2 y)^2 <= sum w^2 sum w^2 y^2 hold for any real data;
   * sums that break them were torn (read from different moments) or corrupted. */
  if (!cs_ok(a->sw * a->sw, a->n * a->sw2))
    return "sum of weights too large for the count (sw^2 > n sw2)";
  if (!cs_ok(a->sw2y * a->sw2y, a->sw2 * a->sw2y2))
    return "weighted sums inconsistent (sw2y^2 > sw2 sw2y2)";
  if (a->tokens_n == 0 && (a->tokens_sum != 0 || a->tokens_sumsq != 0))
    return "token sums without requests";
  if (!cs_ok(a->tokens_sum * a->tokens_sum, a->tokens_n * a->tokens_sumsq))
    return "token sums inconsistent (sum^2 > n sumsq)";
  return NULL;
}

/* ---- tests ---- */

/* A test that did not run (gate_internal.h). */
sy_gate_test_t sy__gate_test_none(void) {
  return (sy_gate_test_t){0, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
}

/* A two-sided sequence around est at level alpha. */
static sy_gate_test_t test_two(double est, double var, double n, double rho, double alpha) {
  double se = sqrt(var), z = sy_seq_z2(n, rho, alpha);
  return (sy_gate_test_t){1, est, se, z, z, est - z * se, est + z * se, n, alpha};
}

/* A one-sided (lower) sequence for est at level alpha; its rho is tuned like the two-sided
 * one at 2 alpha, which it nearly equals (seqtest.h). */
sy_gate_test_t sy__gate_test_one(double est, double var, double n, double tuning_n, double alpha) {
  double se = sqrt(var), z = sy_seq_z1(n, sy_seq_rho(tuning_n, 2 * alpha), alpha);
  return (sy_gate_test_t){1, est, se, z, INFINITY, est - z * se, INFINITY, n, alpha};
}

/* ---- guardrails ---- */

/* Latency p95 (gate.h): the candidate's excess share above ratio x control p95. */
static void guard_latency(const sy_gate_params_t *p, const sy_gate_arm_t *c, const sy_gate_arm_t *t,
                          double alpha, sy_gate_guard_t *g) {
  double nc = 0, nt = 0;
  for (size_t i = 0; i < SY_LAT_BUCKETS; i++) {
    nc += c->lat_hist[i];
    nt += t->lat_hist[i];
  }
  g->control = sy_lat_quantile(c->lat_hist, LAT_Q);
  g->candidate = sy_lat_quantile(t->lat_hist, LAT_Q);
  if (nc < p->min_n || nt < p->min_n)
    return;
  g->cutoff_ms = g->limit * g->control;
  double f = sy_lat_frac_above(t->lat_hist, g->cutoff_ms);
  double kappa = sy_lat_log_density(t->lat_hist, g->cutoff_ms) /
                 sy_lat_log_density(c->lat_hist, g->control);
  if (!(kappa > 1)) /* also NaN: outside the interpolated range */
    kappa = 1;
  double var = f * (1 - f) / nt + kappa * kappa * LAT_TAIL * (1 - LAT_TAIL) / nc;
  g->test = sy__gate_test_one(f - LAT_TAIL, var, nc + nt, sy_gate_tuning_n(p), alpha);
}

/* Error rate: candidate - control - limit. */
static void guard_errors(const sy_gate_params_t *p, const sy_gate_arm_t *c, const sy_gate_arm_t *t,
                         double alpha, sy_gate_guard_t *g) {
  double rc = c->requests, rt = t->requests;
  g->control = rc > 0 ? c->errors / rc : NAN;
  g->candidate = rt > 0 ? t->errors / rt : NAN;
  if (rc < p->min_n || rt < p->min_n)
    return;
  double ec = g->control, et = g->candidate;
  double var = et * (1 - et) / rt + ec * (1 - ec) / rc;
  g->test = sy__gate_test_one(et - ec - g->limit, var, rc + rt, sy_gate_tuning_n(p), alpha);
}

/* Mean and variance of the mean of tokens per request. */
static void token_moments(const sy_gate_arm_t *a, double *mean, double *var) {
  *mean = *var = NAN;
  if (!(a->tokens_n > 0))
    return;
  *mean = a->tokens_sum / a->tokens_n;
  double v = (a->tokens_sumsq / a->tokens_n - *mean * *mean) / a->tokens_n;
  *var = v > 0 ? v : 0; /* rounding */
}

/* Tokens per request: mean_cand - limit x mean_ctl. */
static void guard_tokens(const sy_gate_params_t *p, const sy_gate_arm_t *c, const sy_gate_arm_t *t,
                         double alpha, sy_gate_guard_t *g) {
  double vc, vt;
  token_moments(c, &g->control, &vc);
  token_moments(t, &g->candidate, &vt);
  if (c->tokens_n < p->min_n || t->tokens_n < p->min_n)
    return;
  double r = g->limit;
  g->test = sy__gate_test_one(g->candidate - r * g->control, vt + r * r * vc, c->tokens_n + t->tokens_n,
                     sy_gate_tuning_n(p), alpha);
}

/* Runs the guardrails that are on; returns the first breached one's index or -1
 * (gate_internal.h). */
int sy__gate_run_guards(const sy_gate_params_t *p, const sy_gate_arm_t *c, const sy_gate_arm_t *t,
                      sy_gate_guard_t *g) {
  double limits[SY_GATE_NGUARDS] = {p->lat_p95_ratio_max, p->error_delta_max, p->tokens_ratio_max};
  int on = 0;
  for (int i = 0; i < SY_GATE_NGUARDS; i++) {
    g[i].enabled = limits[i] > 0;
    g[i].limit = limits[i];
    on += g[i].enabled;
  }
  if (on == 0)
    return -1;
  double alpha = p->alpha_guard / on; /* Bonferroni over the guardrails on */
  if (g[SY_GATE_GUARD_LATENCY].enabled)
    guard_latency(p, c, t, alpha, &g[SY_GATE_GUARD_LATENCY]);
  if (g[SY_GATE_GUARD_ERRORS].enabled)
    guard_errors(p, c, t, alpha, &g[SY_GATE_GUARD_ERRORS]);
  if (g[SY_GATE_GUARD_TOKENS].enabled)
    guard_tokens(p, c, t, alpha, &g[SY_GATE_GUARD_TOKENS]);
  int first = -1;
  for (int i = 0; i < SY_GATE_NGUARDS; i++) {
    g[i].breached = g[i].test.ran && g[i].test.lower > 0;
    if (g[i].breached && first < 0)
      first = i;
  }
  return first;
}

/* ---- the decision ---- */

static sy_gate_decision_t finish(sy_gate_result_t *out, sy_gate_decision_t d, const char *reason,
                                 const char *detail) {
  out->decision = d;
  out->reason = reason;
  out->detail = detail;
  return d;
}

static void result_init(sy_gate_result_t *out) {
  memset(out, 0, sizeof *out);
  out->mean_control = out->mean_candidate = out->rho = NAN;
  out->outcome = sy__gate_test_none();
  for (int i = 0; i < SY_GATE_NGUARDS; i++)
    out->guard[i] = (sy_gate_guard_t){0, 0, 0, NAN, NAN, NAN, sy__gate_test_none()};
  out->srm_log_bf = out->srm_log_threshold = NAN;
}

/* The halts that do not depend on the statistics: the parameters and the data's age.
 * Returns the reason (and *detail) or NULL (gate_internal.h). */
const char *sy__gate_setup_halt(const sy_gate_params_t *p, double age, const char **detail) {
  if ((*detail = sy_gate_params_check(p)) != NULL)
    return "config";
  if (!(age >= 0))
    return "missing";
  if (age > p->max_age_ms)
    return "stale";
  return NULL;
}

/* The outcome's sequence around delta (gate.h): symmetric, or alpha split between its ends.
 * Sets out->rho to the promoting end's mixture scale. */
static sy_gate_test_t outcome_sequence(const sy_gate_params_t *p, double delta, double var,
                                       double n, sy_gate_result_t *out) {
  double tn = sy_gate_tuning_n(p);
  if (p->promote_share == 0.5) {
    out->rho = sy_seq_rho(tn, p->alpha);
    return test_two(delta, var, n, out->rho, p->alpha);
  }
  double ap = p->promote_share * p->alpha, ar = p->alpha - ap;
  out->rho = sy_seq_rho(tn, 2 * ap);
  double zp = sy_seq_z1(n, out->rho, ap), zr = sy_seq_z1(n, sy_seq_rho(tn, 2 * ar), ar);
  double zl = p->minimize ? zr : zp, zu = p->minimize ? zp : zr, se = sqrt(var);
  return (sy_gate_test_t){1, delta, se, zl, zu, delta - zl * se, delta + zu * se, n, p->alpha};
}

/* The outcome sequence and its verdict. */
static sy_gate_decision_t decide_outcome(const sy_gate_params_t *p, const sy_gate_arm_t *c,
                                         const sy_gate_arm_t *t, sy_gate_result_t *out) {
  if (c->n < p->min_n || t->n < p->min_n)
    return finish(out, SY_GATE_CONTINUE, "min_samples", NULL);
  double var = sy_gate_arm_var(c) + sy_gate_arm_var(t);
  /* Two constant arms give a zero-width sequence: a difference would be "certain" after
   * min_n outcomes, which no metric worth gating on justifies. Wait for variation. */
  if (!(var > 0))
    return finish(out, SY_GATE_CONTINUE, "outcome:no_variance", NULL);
  out->outcome =
      outcome_sequence(p, out->mean_candidate - out->mean_control, var, c->n + t->n, out);
  int better = p->minimize ? out->outcome.upper < 0 : out->outcome.lower > 0;
  int worse = p->minimize ? out->outcome.lower > 0 : out->outcome.upper < 0;
  if (better)
    return finish(out, SY_GATE_PROMOTE, "outcome:better", NULL);
  if (worse)
    return finish(out, SY_GATE_ROLLBACK, "outcome:worse", NULL);
  return finish(out, SY_GATE_CONTINUE, "outcome:inconclusive", NULL);
}

/* Decides a candidate against the control (gate.h). */
sy_gate_decision_t sy_gate_evaluate(const sy_gate_params_t *p, const sy_gate_arm_t *control,
                                    const sy_gate_arm_t *candidate, double data_age_ms,
                                    sy_gate_result_t *out) {
  result_init(out);
  if (control == NULL || candidate == NULL)
    return finish(out, SY_GATE_HALT, "missing", NULL);
  const char *detail, *halt = sy__gate_setup_halt(p, data_age_ms, &detail);
  if (halt != NULL)
    return finish(out, SY_GATE_HALT, halt, detail);
  if ((detail = sy_gate_arm_check(control)) != NULL)
    return finish(out, SY_GATE_HALT, "invalid:control", detail);
  if ((detail = sy_gate_arm_check(candidate)) != NULL)
    return finish(out, SY_GATE_HALT, "invalid:candidate", detail);
  out->mean_control = sy_gate_arm_mean(control);
  out->mean_candidate = sy_gate_arm_mean(candidate);

  if (p->alpha_srm > 0) {
    double x[2] = {control->requests, candidate->requests};
    double th[2] = {control->expected_share, candidate->expected_share};
    out->srm_log_bf = sy_seq_srm_log_bf(x, th, 2, p->srm_concentration);
    out->srm_log_threshold = -log(p->alpha_srm);
    if (isnan(out->srm_log_bf))
      return finish(out, SY_GATE_HALT, "invalid:shares", "expected shares sum to 0");
    out->srm_ran = 1;
    if (out->srm_log_bf >= out->srm_log_threshold)
      return finish(out, SY_GATE_HALT, "srm", NULL);
  }

  int breached = sy__gate_run_guards(p, control, candidate, out->guard);
  if (breached >= 0)
    return finish(out, SY_GATE_ROLLBACK, sy__gate_guard_reason[breached], NULL);
  return decide_outcome(p, control, candidate, out);
}

/* Returns a guardrail's reason string (gate.h). */
const char *sy_gate_guard_reason_name(int g) {
  return g >= 0 && g < SY_GATE_NGUARDS ? sy__gate_guard_reason[g] : "?";
}

/* Returns the decision's name (gate.h). */
const char *sy_gate_decision_name(sy_gate_decision_t d) {
  switch (d) {
  case SY_GATE_CONTINUE: return "continue";
  case SY_GATE_PROMOTE: return "promote";
  case SY_GATE_ROLLBACK: return "rollback";
  case SY_GATE_HALT: return "halt";
  }
  return "?";
}
