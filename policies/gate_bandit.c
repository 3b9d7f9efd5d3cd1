/*
 * gate_bandit.c — the bandit gate (gate.h, "Bandit mode"): finite-sample e-processes on
 * inverse-propensity-weighted pseudo-outcomes (eproc.h) decide which arms are certainly not
 * the best; the canary mode's guardrail tests remove arms that breach a guardrail against
 * the control; a propensity check halts when the logged propensities do not explain the
 * realised allocation. Like gate.c it reads only the current totals.
 */
#include "policies/gate_bandit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "policies/eproc.h"
#include "policies/gate.h"

/* Relative slack of the range and floor checks, for rounding in long sums. */
#define SLACK 1e-9

/* Sum of u (y - y_min) and of u^2 (y - y_min)^2 over an arm's outcomes: the shifted
 * pseudo-outcomes' sums (gate.h). */
static void shifted(const sy_gate_params_t *p, const sy_gate_arm_t *a, double *s1, double *s2) {
  double lo = p->y_min;
  *s1 = a->swy - lo * a->sw;
  *s2 = fmax(0, a->sw2y2 - 2 * lo * a->sw2y + lo * lo * a->sw2);
}

/* log M for "arm j is better than arm i" (gate.h): increments D / c with D the signed
 * difference of the two arms' shifted pseudo-outcomes, c = (y_max - y_min) / floor. A request
 * feeds one arm only, so the increments from the arm that counts positively are >= 0 and
 * those from the other <= 0: their squares go to eproc's split mixture separately. */
static double pair_log_e(const sy_gate_params_t *p, const sy_gate_arm_t *j, const sy_gate_arm_t *i) {
  double aj, bj, ai, bi, c = (p->y_max - p->y_min) / p->floor;
  shifted(p, j, &aj, &bj);
  shifted(p, i, &ai, &bi);
  double sd = p->minimize ? ai - aj : aj - ai;
  double vpos = p->minimize ? bi : bj, vneg = p->minimize ? bj : bi;
  return sy_eproc_log_e_grid(sd / c, vneg / (c * c), vpos / (c * c), SY_EPROC_OUTCOME_LMAX,
                             SY_EPROC_OUTCOME_N);
}

/* Returns NULL or why an arm's sums cannot come from propensities >= floor and outcomes in
 * [y_min, y_max] (each weight u = 1/p <= 1/floor, so sum u^2 <= sum u / floor). */
static const char *bandit_arm_check(const sy_gate_params_t *p, const sy_gate_arm_t *a) {
  const char *d = sy_gate_arm_check(a);
  if (d != NULL)
    return d;
  double tol = SLACK * (1 + a->sw);
  if (a->sw2 > a->sw / p->floor * (1 + SLACK))
    return "propensities below the floor (sum u^2 > sum u / floor)";
  if (a->swy < p->y_min * a->sw - fabs(p->y_min) * tol - tol ||
      a->swy > p->y_max * a->sw + fabs(p->y_max) * tol + tol)
    return "outcomes outside the declared range";
  double m = fmax(p->y_min * p->y_min, p->y_max * p->y_max);
  if (a->sw2y2 > m * a->sw2 * (1 + SLACK) + tol)
    return "outcomes outside the declared range (sum u^2 y^2)";
  return NULL;
}

/* The sample-ratio check of an arm (gate.h): its realised assignments against the sum of
 * the propensities logged for it, log e of the larger of the two directions. */
static double srm_counts_log_e(const sy_gate_arm_t *a) {
  double s = a->assigned - a->p_sum, v = fmax(0, a->assigned - 2 * a->p_own + a->p_sum2);
  return fmax(sy_eproc_log_e(s, v), sy_eproc_log_e(-s, v));
}

/* The fallback for data without those counters (gate.h): the inverse form on outcomes. */
static double srm_inverse_log_e(const sy_gate_params_t *p, const sy_gate_arm_t *a, double total_n) {
  double s = a->sw - total_n, v = fmax(0, a->sw2 - 2 * a->sw + total_n);
  double c = 1 / p->floor - 1; /* 1 - u >= 1 - 1/floor */
  double up = sy_eproc_log_e(s, v), down = c > 0 ? sy_eproc_log_e(-s / c, v / (c * c)) : -INFINITY;
  return fmax(up, down);
}

/* Runs the sample-ratio check (gate.h); returns 1 if some arm's log e reached the threshold. */
static int srm_check(const sy_gate_params_t *p, const sy_gate_arm_t *arms, size_t k,
                     sy_gate_bandit_t *out, sy_gate_bandit_arm_t *per) {
  double total_n = 0;
  int counted = 0, hit = 0;
  for (size_t i = 0; i < k; i++) {
    total_n += arms[i].n;
    counted |= arms[i].assigned > 0 || arms[i].p_sum > 0;
  }
  out->srm_check = counted ? "assignments" : "inverse_propensity";
  out->srm_log_threshold = log(2 * (double)k / p->alpha_srm);
  for (size_t i = 0; i < k; i++) {
    if (counted)
      per[i].srm_log_e = srm_counts_log_e(&arms[i]);
    else if (per[i].live)
      per[i].srm_log_e = srm_inverse_log_e(p, &arms[i], total_n);
    hit |= per[i].srm_log_e >= out->srm_log_threshold;
  }
  return hit;
}

static sy_gate_decision_t done(sy_gate_bandit_t *out, sy_gate_decision_t d, const char *reason,
                               const char *detail) {
  out->decision = d;
  out->reason = reason;
  out->detail = detail;
  return d;
}

static void init(const int *live, size_t k, sy_gate_bandit_t *out, sy_gate_bandit_arm_t *per) {
  *out = (sy_gate_bandit_t){SY_GATE_HALT, "missing", NULL, k, k, 0, NAN, NAN, NULL};
  for (size_t i = 0; i < k; i++) {
    sy_gate_bandit_arm_t *a = &per[i];
    memset(a, 0, sizeof *a);
    a->live = live == NULL || live[i];
    a->guard_breached = -1;
    a->mean = a->se = a->log_e = a->log_e_closed = a->srm_log_e = NAN;
    a->vs_leader = sy__gate_test_none();
    for (int g = 0; g < SY_GATE_NGUARDS; g++)
      a->guard[g] = (sy_gate_guard_t){0, 0, 0, NAN, NAN, NAN, sy__gate_test_none()};
  }
}

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* log(e^a + e^b), robust to -inf. */
static double log_add(double a, double b) {
  double top = fmax(a, b);
  if (!isfinite(top))
    return top;
  return top + log(exp(a - top) + exp(b - top));
}

/* The pairwise e-processes of a look: lm[j][i] = log M(j better than i) for the opponents j
 * of i (-inf for the others: not live, or breaching a guardrail), and row[i] = log of their
 * sum over j, R_i. */
typedef struct pairs_s {
  double lm[SY_GATE_MAX_ARMS][SY_GATE_MAX_ARMS];
  double row[SY_GATE_MAX_ARMS];
} pairs_t;

/* The closure (gate.h): a lower bound on the smallest log E_S over the sets S of live arms
 * that contain i, E_S = sum over s in S of (a_m sum_{j in S, j != s} M_js + o_m sum_{j not
 * in S} M_js), m = |S|, a_m = 1 / (K (m - 1)), o_m = 1 / (K m) (o_1 = 1 / (K - 1)). Since
 * a_m > o_m, E_S >= o_m (R_i + sum_{j in S, j != i} (R_j + (M_ji + M_ij) / (m - 1))): the
 * pairs inside S that do not touch i are dropped, which leaves a sum separable in j, smallest
 * over the m - 1 arms with the smallest terms. Exact for m <= 2 and for S = every arm. */
static double closed_log_e(const pairs_t *pr, const sy_gate_bandit_arm_t *per, size_t k, size_t i) {
  double c[SY_GATE_MAX_ARMS], best = per[i].log_e, kk = (double)k;
  size_t nlive = 0;
  for (size_t l = 0; l < k; l++)
    nlive += (size_t)per[l].live;
  if (!isfinite(best))
    return best;
  for (size_t m = 2; m <= nlive; m++) {
    double v;
    if (m == k) { /* every arm: a_K times the sum of all the rows */
      v = -INFINITY;
      for (size_t s = 0; s < k; s++)
        v = log_add(v, pr->row[s]);
      v -= log(kk * (kk - 1));
    } else {
      size_t n = 0;
      for (size_t j = 0; j < k; j++)
        if (j != i && per[j].live)
          c[n++] = log_add(pr->row[j], log_add(pr->lm[j][i], pr->lm[i][j]) - log((double)m - 1));
      qsort(c, n, sizeof c[0], cmp_dbl);
      v = pr->row[i];
      for (size_t a = 0; a + 1 < m; a++)
        v = log_add(v, c[a]);
      v -= log(kk * (double)m);
    }
    best = fmin(best, v);
  }
  return best;
}

/* Up to this many arms the closure enumerates every set (gate.h); above, the pairwise
 * design's separable bound (closed_log_e). Fixed by K, so each set's e-process is too. */
#define EXACT_K 8

/* The share of a two-arm set's e-value on its two inside pairs (gate.h). */
#define INSIDE2 0.9

/* log M for "arm x is better than the mean of the arms in mask t" (x not in t): D = Z_x -
 * mean over t of Z_t (signs flipped when minimising), c = (y_max - y_min) / floor times the
 * largest weight on the negative side, the squares split by the sign of their arm's weight. */
static double contrast_log_e(const sy_gate_params_t *p, const sy_gate_arm_t *arms, size_t k,
                             size_t x, unsigned t) {
  double sign = p->minimize ? -1 : 1, nt = __builtin_popcount(t), s = 0, vpos = 0, vneg = 0;
  double wneg = 0;
  for (size_t a = 0; a < k; a++) {
    if (a != x && !(t >> a & 1u))
      continue;
    double w = a == x ? sign : -sign / nt, s1, s2;
    shifted(p, &arms[a], &s1, &s2);
    s += w * s1;
    if (w > 0)
      vpos += w * w * s2;
    else {
      vneg += w * w * s2;
      wneg = fmax(wneg, -w);
    }
  }
  double c = (p->y_max - p->y_min) / p->floor * wneg;
  return sy_eproc_log_e_grid(s / c, vneg / (c * c), vpos / (c * c), SY_EPROC_OUTCOME_LMAX,
                             SY_EPROC_OUTCOME_N);
}

/* The closure by enumeration (gate.h), K <= EXACT_K: log_closed[i] = the smallest log E_S over
 * the sets S of live arms that contain i, E_S for |S| >= 2 the weighted sum of the contrasts
 * "s better than the mean of S \ s" (s in S, weight a each) and "j better than the mean of S"
 * (j not in S, weight o each); the singletons' E is the arm's own log_e. */
static void closure_exact(const sy_gate_params_t *p, const sy_gate_arm_t *arms, size_t k,
                          const sy_gate_bandit_arm_t *per, double *log_closed) {
  static const double none = -INFINITY;
  double n[EXACT_K][1u << EXACT_K];
  unsigned live = 0, full = (1u << k) - 1;
  for (size_t a = 0; a < k; a++)
    live |= (unsigned)per[a].live << a;
  for (size_t x = 0; x < k; x++)
    for (unsigned t = 1; t <= full; t++)
      n[x][t] = (t & ~live) || (t >> x & 1u) || !per[x].live || per[x].guard_breached >= 0
                    ? none
                    : contrast_log_e(p, arms, k, x, t);
  for (size_t i = 0; i < k; i++)
    log_closed[i] = per[i].live ? per[i].log_e : NAN;
  double kk = (double)k;
  for (unsigned S = 1; S <= full; S++) {
    int m = __builtin_popcount(S);
    if ((S & ~live) || m < 2)
      continue;
    double a = m == 2 && k > 2 ? 0.5 * INSIDE2 : 1 / kk;
    double o = m == 2 && k > 2 ? (1 - INSIDE2) / (kk - 2) : 1 / kk;
    double e = -INFINITY;
    for (size_t x = 0; x < k; x++)
      e = log_add(e, S >> x & 1u ? log(a) + n[x][S & ~(1u << x)] : log(o) + n[x][S]);
    for (size_t i = 0; i < k; i++)
      if (S >> i & 1u)
        log_closed[i] = fmin(log_closed[i], e);
  }
}

/* The outcome: each live arm's e-process against "it is a best arm": the sum over the
 * opponents j of M(j better than i), divided by K - 1. Opponents are the other live arms
 * that breach no guardrail (the best arm worth finding is the best acceptable one); leaving
 * arms out only lowers each E_S below its value with all K - 1, so the bound of gate.h still
 * holds. Then the closure over the live arms (gate.h), unless given_best. And the leader, for
 * the audit. */
static void outcome_tests(const sy_gate_params_t *p, const sy_gate_arm_t *arms, size_t k,
                          sy_gate_bandit_t *out, sy_gate_bandit_arm_t *per) {
  pairs_t pr; /* 33 KB at SY_GATE_MAX_ARMS 64 */
  double sign = p->minimize ? -1 : 1, best = -INFINITY;
  out->log_threshold = -log(p->alpha);
  for (size_t i = 0; i < k; i++) {
    sy_gate_bandit_arm_t *a = &per[i];
    a->mean = sy_gate_arm_mean(&arms[i]);
    a->se = sqrt(sy_gate_arm_var(&arms[i]));
    a->judged = a->live && arms[i].n >= p->min_n;
    if (a->judged && sign * a->mean > best) {
      best = sign * a->mean;
      out->leader = i;
    }
    pr.row[i] = -INFINITY;
    for (size_t j = 0; j < k; j++) {
      int opp = j != i && a->live && per[j].live && per[j].guard_breached < 0;
      pr.lm[j][i] = opp ? pair_log_e(p, &arms[j], &arms[i]) : -INFINITY;
      pr.row[i] = log_add(pr.row[i], pr.lm[j][i]);
    }
    if (a->live)
      a->log_e = pr.row[i] - log((double)k - 1);
  }
  double exact[EXACT_K];
  if (k <= EXACT_K && !p->given_best)
    closure_exact(p, arms, k, per, exact);
  for (size_t i = 0; i < k; i++) {
    sy_gate_bandit_arm_t *a = &per[i];
    if (!a->live)
      continue;
    a->log_e_closed = p->given_best ? a->log_e
                      : k <= EXACT_K ? exact[i]
                                     : closed_log_e(&pr, per, k, i);
    a->not_best = a->judged && a->log_e_closed >= out->log_threshold;
  }
  if (out->leader == k)
    return;
  const sy_gate_arm_t *lead = &arms[out->leader];
  for (size_t i = 0; i < k; i++)
    if (per[i].judged && i != out->leader) {
      double var = sy_gate_arm_var(lead) + sy_gate_arm_var(&arms[i]);
      per[i].vs_leader =
          sy__gate_test_one(sign * (per[out->leader].mean - per[i].mean), var, lead->n + arms[i].n,
                            sy_gate_tuning_n(p), p->alpha / (double)k);
    }
}

/* The winner, if one is clear: the only live arm not to be removed, judged, and (unless it
 * is the control) with every guardrail on tested and none breached. Returns its index or k. */
static size_t find_winner(const sy_gate_bandit_arm_t *per, size_t k, size_t ctl) {
  size_t w = k, nlive = 0;
  for (size_t i = 0; i < k; i++) {
    nlive += (size_t)per[i].live;
    if (per[i].live && !per[i].remove) {
      if (w != k)
        return k;
      w = i;
    }
  }
  if (w == k || nlive < 2 || !per[w].judged)
    return k;
  for (int g = 0; g < SY_GATE_NGUARDS && w != ctl && ctl < k; g++)
    if (per[w].guard[g].enabled && (!per[w].guard[g].test.ran || per[w].guard[g].breached))
      return k;
  return w;
}

/* Bandit mode (gate.h). */
sy_gate_decision_t sy_gate_bandit_check(const sy_gate_params_t *p, const sy_gate_arm_t *arms,
                                        const int *live, size_t k, size_t ctl,
                                        double data_age_ms, sy_gate_bandit_t *out,
                                        sy_gate_bandit_arm_t *per) {
  if (out == NULL)
    return SY_GATE_HALT;
  if (arms == NULL || per == NULL || k < 2 || k > SY_GATE_MAX_ARMS) {
    *out = (sy_gate_bandit_t){SY_GATE_HALT, "missing", NULL, k, k, 0, NAN, NAN, NULL};
    return SY_GATE_HALT;
  }
  init(live, k, out, per);
  const char *detail, *halt = sy__gate_setup_halt(p, data_age_ms, &detail);
  if (halt != NULL)
    return done(out, SY_GATE_HALT, halt, detail);
  if (!(p->floor > 0))
    return done(out, SY_GATE_HALT, "config",
                "bandit mode needs an exploration floor > 0 (its tests need bounded weights)");
  for (size_t i = 0; i < k; i++)
    if ((detail = bandit_arm_check(p, &arms[i])) != NULL)
      return done(out, SY_GATE_HALT, "invalid:arm", detail);
  if (p->alpha_srm > 0 && srm_check(p, arms, k, out, per))
    return done(out, SY_GATE_HALT, "srm",
                out->srm_check[0] == 'a'
                    ? "an arm's assignments do not match the sum of its logged propensities"
                    : "an arm's inverse-propensity count does not match the total");
  for (size_t i = 0; i < k; i++)
    if (per[i].live && ctl < k && i != ctl)
      per[i].guard_breached = sy__gate_run_guards(p, &arms[ctl], &arms[i], per[i].guard);
  outcome_tests(p, arms, k, out, per);
  for (size_t i = 0; i < k; i++)
    per[i].remove = per[i].live && (per[i].not_best || per[i].guard_breached >= 0);
  out->winner = find_winner(per, k, ctl);
  if (out->winner < k)
    return done(out, SY_GATE_PROMOTE, "bandit:winner", NULL);
  size_t nlive = 0;
  for (size_t i = 0; i < k; i++) {
    nlive += (size_t)per[i].live;
    out->nremove += (size_t)per[i].remove;
  }
  if (out->nremove >= nlive && nlive > 0) { /* never empty the experiment */
    size_t keep = k;
    double sign = p->minimize ? -1 : 1;
    for (size_t i = 0; i < k; i++)
      if (per[i].live && (keep == k || (per[keep].guard_breached >= 0 && per[i].guard_breached < 0) ||
                          ((per[keep].guard_breached >= 0) == (per[i].guard_breached >= 0) &&
                           sign * per[i].mean > sign * per[keep].mean)))
        keep = i;
    per[keep].remove = 0;
    out->nremove--;
  }
  return done(out, SY_GATE_CONTINUE, out->leader == k ? "min_samples" : "bandit:continue", NULL);
}
