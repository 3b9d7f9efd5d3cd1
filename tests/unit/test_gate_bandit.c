/*
 * test_gate_bandit.c — the bandit gate (policies/gate_bandit.h, policies/eproc.h): the
 * e-processes' inequality, every decision path (closure over the tied-best sets,
 * removal, winner), the sample-ratio check on assignment counts against logged
 * propensities, guardrails in bandit mode, and the gate's level under adaptive
 * propensities.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "check.h"
#include "gate_fixture.h"
#include "policies/eproc.h"
#include "policies/gate.h"
#include "policies/gate_bandit.h"
#include "policies/lathist.h"
#include "policies/rng.h"
#include "policies/thompson.h"

/* Fan et al.'s inequality behind eproc.h: exp(l x - psi(l) x^2) <= 1 + l x for x >= -1. */
static void test_eproc(void) {
  for (int j = 0; j < SY_EPROC_NLAMBDA; j++) {
    double l = sy_eproc_lambda(j), psi = -log1p(-l) - l;
    for (double x = -1; x <= 50; x += 0.01)
      CHECK_MSG(exp(l * x - psi * x * x) <= (1 + l * x) * (1 + 1e-12) + 1e-300, "l %g x %g", l, x);
  }
  CHECK(isnan(sy_eproc_lambda(-1)) && isnan(sy_eproc_lambda(SY_EPROC_NLAMBDA)));
  CHECK(near(sy_eproc_log_e(0, 0), 0, 1e-15)); /* no data: e = 1 */
  CHECK(isnan(sy_eproc_log_e(1, -1)) && isnan(sy_eproc_log_e(NAN, 1)));
  CHECK(sy_eproc_log_e(30, 100) > sy_eproc_log_e(20, 100)); /* more drift, more evidence */
  CHECK(sy_eproc_log_e(20, 200) < sy_eproc_log_e(20, 100)); /* more noise, less */
  /* the split: nonnegative increments charged l^2 x^2 / 2, still <= 1 + l x */
  for (int j = 0; j < SY_EPROC_NLAMBDA; j++) {
    double l = sy_eproc_lambda(j);
    for (double x = 0; x <= 50; x += 0.01)
      CHECK_MSG(exp(l * x - 0.5 * l * l * x * x) <= (1 + l * x) * (1 + 1e-12), "l %g x %g", l, x);
  }
  CHECK(near(sy_eproc_log_e_split(20, 100, 0), sy_eproc_log_e(20, 100), 1e-12));
  CHECK(sy_eproc_log_e_split(20, 60, 40) > sy_eproc_log_e(20, 100));
  CHECK(isnan(sy_eproc_log_e_split(1, 1, -1)) && isnan(sy_eproc_log_e_split(1, NAN, 1)));
  /* grids: the wide one is the split mixture's; the outcome grid (0.4 down to 0.1) gains
   * where the best bet is inside it (l ~ s / v = 0.2) and loses where it is far below (0.025) */
  CHECK(near(sy_eproc_log_e_grid(20, 60, 40, SY_EPROC_LMAX, SY_EPROC_NLAMBDA),
             sy_eproc_log_e_split(20, 60, 40), 1e-12));
  double lo = SY_EPROC_OUTCOME_LMAX * exp2(-0.125 * (SY_EPROC_OUTCOME_N - 1));
  CHECK(near(lo, 0.1, 1e-12) && SY_EPROC_OUTCOME_N <= SY_EPROC_NMAX);
  CHECK(sy_eproc_log_e_grid(20, 100, 0, SY_EPROC_OUTCOME_LMAX, SY_EPROC_OUTCOME_N) >
        sy_eproc_log_e(20, 100) + 0.2);
  CHECK(sy_eproc_log_e_grid(5, 200, 0, SY_EPROC_OUTCOME_LMAX, SY_EPROC_OUTCOME_N) <
        sy_eproc_log_e(5, 200) - 0.3);
  CHECK(near(sy_eproc_log_e_grid(0, 0, 0, 0.4, 1), 0, 1e-15));
  CHECK(isnan(sy_eproc_log_e_grid(1, 1, 1, 1.0, 4)) && isnan(sy_eproc_log_e_grid(1, 1, 1, 0.4, 0)) &&
        isnan(sy_eproc_log_e_grid(1, 1, 1, 0.4, SY_EPROC_NMAX + 1)));
}

/* An arm with n outcomes, s successes, every one logged at propensity q. */
static sy_gate_arm_t ipw_arm(double n, double s, double q) {
  sy_gate_arm_t a = binary_arm(n, s);
  a.sw = n / q, a.swy = s / q;
  a.sw2 = n / (q * q), a.sw2y = a.sw2y2 = s / (q * q);
  return a;
}

static sy_gate_params_t bandit_defaults(void) {
  sy_gate_params_t p = defaults();
  p.floor = 0.1;
  return p;
}

/* ---- the closure computed again, by brute force (gate.h, "Closed testing"; maximising) ---- */

/* log M(x, T): x better than the mean of the arms in mask t, c = R / (f |T|). */
static double brute_contrast(const sy_gate_params_t *p, const sy_gate_arm_t *arms, int x,
                             unsigned t) {
  double nt = 0, sx = arms[x].swy - p->y_min * arms[x].sw, st = 0, vt = 0;
  for (int a = 0; a < 32; a++)
    if (t >> a & 1u) {
      nt += 1;
      st += arms[a].swy - p->y_min * arms[a].sw;
      vt += arms[a].sw2y2 - 2 * p->y_min * arms[a].sw2y + p->y_min * p->y_min * arms[a].sw2;
    }
  double c = (p->y_max - p->y_min) / p->floor / nt;
  double vx = arms[x].sw2y2 - 2 * p->y_min * arms[x].sw2y + p->y_min * p->y_min * arms[x].sw2;
  return sy_eproc_log_e_grid((sx - st / nt) / c, vt / (nt * nt * c * c), vx / (c * c),
                             SY_EPROC_OUTCOME_LMAX, SY_EPROC_OUTCOME_N);
}

/* log E_S for K <= 8, the arms in mask live live (the others' contrasts count 0), none
 * breaching a guardrail. */
static double brute_set(const sy_gate_params_t *p, const sy_gate_arm_t *arms, int k,
                        unsigned live, unsigned S) {
  int m = __builtin_popcount(S);
  double e = 0;
  for (int x = 0; x < k; x++) {
    int in = S >> x & 1u;
    if (!(live >> x & 1u))
      continue;
    double w = m == 1 ? (in ? 0 : 1.0 / (k - 1))
               : m == 2 && k > 2 ? (in ? 0.45 : 0.1 / (k - 2))
                                 : 1.0 / k;
    if (w > 0)
      e += w * exp(brute_contrast(p, arms, x, in ? S & ~(1u << x) : S));
  }
  return log(e);
}

/* The smallest log E_S over the sets of live arms holding i; *at the set that gives it. */
static double brute_closed(const sy_gate_params_t *p, const sy_gate_arm_t *arms, int k,
                           unsigned live, int i, unsigned *at) {
  double best = INFINITY;
  for (unsigned S = 1; S < 1u << k; S++)
    if ((S >> i & 1u) && !(S & ~live) && brute_set(p, arms, k, live, S) < best) {
      best = brute_set(p, arms, k, live, S);
      *at = S;
    }
  return best;
}

/* The pairwise design above 8 arms (gate.h): log E_S exactly, every arm live. */
static double brute_pairwise_set(const sy_gate_params_t *p, const sy_gate_arm_t *arms, int k,
                                 unsigned S) {
  int m = __builtin_popcount(S);
  double e = 0, a = m > 1 ? 1.0 / (k * (m - 1)) : 0, o = m == 1 ? 1.0 / (k - 1) : 1.0 / (k * m);
  for (int s = 0; s < k; s++)
    for (int j = 0; j < k && (S >> s & 1u); j++)
      if (j != s)
        e += (S >> j & 1u ? a : o) * exp(brute_contrast(p, arms, j, 1u << s));
  return log(e);
}

static void test_bandit(void) {
  sy_gate_params_t p = bandit_defaults();
  p.lat_p95_ratio_max = p.tokens_ratio_max = 0; /* no latency or tokens in these arms */
  double q = 1.0 / 3;
  sy_gate_arm_t arms[3] = {ipw_arm(5000, 500, q), ipw_arm(5000, 1000, q), ipw_arm(5000, 550, q)};
  sy_gate_bandit_t b;
  sy_gate_bandit_arm_t per[3];
  CHECK(sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per) == SY_GATE_PROMOTE);
  CHECK(strcmp(b.reason, "bandit:winner") == 0 && b.winner == 1 && b.leader == 1);
  CHECK(near(b.log_threshold, log(1 / 0.05), 1e-12) && per[0].not_best && per[2].not_best);
  CHECK(!per[1].not_best && per[1].log_e < 0 && per[0].log_e > b.log_threshold);
  /* The closure: for arm 0 the set beside the best arm binds, 0.45 M(1 better than 0) + 0.45
   * M(0 better than 1) + 0.1 M(2 better than the mean of 0 and 1); the best arm's own e is
   * its smallest. */
  unsigned at = 0;
  CHECK(near(per[0].log_e_closed, brute_closed(&p, arms, 3, 7, 0, &at), 1e-9) && at == 3);
  CHECK(near(per[0].log_e_closed,
             log(0.45 * exp(brute_contrast(&p, arms, 1, 1)) + 0.45 * exp(brute_contrast(&p, arms, 0, 2)) +
                 0.1 * exp(brute_contrast(&p, arms, 2, 3))),
             1e-9));
  CHECK(per[0].log_e_closed < per[0].log_e && near(per[1].log_e_closed, per[1].log_e, 1e-12));
  CHECK(b.srm_check != NULL && strcmp(b.srm_check, "inverse_propensity") == 0);
  CHECK(near(per[0].vs_leader.estimate, 0.1, 1e-12) && !per[1].vs_leader.ran);
  CHECK(per[0].srm_log_e < b.srm_log_threshold);

  arms[1] = ipw_arm(5000, 520, q); /* 0.104 vs 0.10 and 0.11: nothing certain */
  CHECK(sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per) == SY_GATE_CONTINUE);
  CHECK(strcmp(b.reason, "bandit:continue") == 0 && b.leader == 2 && b.nremove == 0);
  p.minimize = 1;
  CHECK(sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per) == SY_GATE_CONTINUE && b.leader == 0);

  /* A removed arm's data still counts; it is never judged again. */
  p = bandit_defaults();
  p.lat_p95_ratio_max = p.tokens_ratio_max = 0;
  arms[1] = ipw_arm(5000, 1000, q);
  int live[3] = {1, 1, 0};
  CHECK(sy_gate_bandit_check(&p, arms, live, 3, 0, 0, &b, per) == SY_GATE_PROMOTE);
  CHECK(b.winner == 1 && !per[2].live && !per[2].judged && !per[2].remove);

  /* Halts: no floor (config), propensities below the floor, outcomes out of range, few arms. */
  p.floor = 0;
  CHECK(sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per) == SY_GATE_HALT);
  CHECK(strcmp(b.reason, "config") == 0 && b.detail != NULL);
  p.floor = 0.4;
  CHECK(sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per) == SY_GATE_HALT);
  CHECK(strcmp(b.reason, "invalid:arm") == 0 && strstr(b.detail, "floor") != NULL);
  p.floor = 0.1, p.y_max = 0.5;
  sy_gate_arm_t big[2] = {ipw_arm(500, 50, 0.5), ipw_arm(500, 50, 0.5)};
  big[1].swy = big[1].sw; /* mean 1 > y_max */
  CHECK(sy_gate_bandit_check(&p, big, NULL, 2, 0, 0, &b, per) == SY_GATE_HALT);
  CHECK(strcmp(b.reason, "invalid:arm") == 0 && strstr(b.detail, "range") != NULL);
  p = bandit_defaults();
  CHECK(sy_gate_bandit_check(&p, arms, NULL, 1, 0, 0, &b, per) == SY_GATE_HALT);
  CHECK(sy_gate_bandit_check(&p, arms, NULL, 3, 0, 1e9, &b, per) == SY_GATE_HALT);
  CHECK(strcmp(b.reason, "stale") == 0);

  /* Few outcomes: nothing judged. */
  sy_gate_arm_t few[2] = {ipw_arm(50, 5, 0.5), ipw_arm(50, 30, 0.5)};
  CHECK(sy_gate_bandit_check(&p, few, NULL, 2, 0, 0, &b, per) == SY_GATE_CONTINUE);
  CHECK(strcmp(b.reason, "min_samples") == 0 && b.leader == 2);

  /* The propensity check: arm 0 logged 0.5 but got a third of the outcomes. */
  sy_gate_arm_t srm[3] = {ipw_arm(5000, 500, 0.5), ipw_arm(5000, 500, 0.25),
                          ipw_arm(5000, 500, 0.25)};
  CHECK(sy_gate_bandit_check(&p, srm, NULL, 3, 0, 0, &b, per) == SY_GATE_HALT);
  CHECK(strcmp(b.reason, "srm") == 0 && per[0].srm_log_e >= b.srm_log_threshold);
  p.alpha_srm = 0;
  CHECK(sy_gate_bandit_check(&p, srm, NULL, 3, 0, 0, &b, per) != SY_GATE_HALT);
}

/* The gate's closure against the brute force: K = 3 and 5 every arm live, K = 4 with one
 * arm removed (sets are of live arms only), and above 8 arms a lower bound on the exact
 * minimum of the pairwise design. */
static void test_bandit_closure_brute(void) {
  sy_gate_params_t p = bandit_defaults();
  p.lat_p95_ratio_max = p.error_delta_max = p.tokens_ratio_max = 0;
  p.alpha_srm = 0;
  static const double succ[9] = {560, 640, 500, 610, 530, 505, 590, 620, 515};
  sy_gate_arm_t arms[9];
  for (int i = 0; i < 9; i++)
    arms[i] = ipw_arm(5000, succ[i], 1.0 / 3);
  sy_gate_bandit_t b;
  sy_gate_bandit_arm_t per[9];
  for (int k = 3; k <= 5; k++) {
    int live[5] = {1, 1, 1, 1, 1};
    if (k == 4)
      live[3] = 0;
    unsigned lm = 0, at = 0;
    for (int i = 0; i < k; i++)
      lm |= (unsigned)live[i] << i;
    sy_gate_bandit_check(&p, arms, live, (size_t)k, k, 0, &b, per);
    for (int i = 0; i < k; i++)
      if (live[i])
        CHECK_MSG(near(per[i].log_e_closed, brute_closed(&p, arms, k, lm, i, &at), 1e-9),
                  "K %d arm %d: %g vs %g", k, i, per[i].log_e_closed,
                  brute_closed(&p, arms, k, lm, i, &at));
  }
  sy_gate_bandit_check(&p, arms, NULL, 9, 9, 0, &b, per);
  for (int i = 0; i < 9; i++) {
    double exact = INFINITY;
    for (unsigned S = 1; S < 1u << 9; S++)
      if (S >> i & 1u)
        exact = fmin(exact, brute_pairwise_set(&p, arms, 9, S));
    CHECK_MSG(per[i].log_e_closed <= exact + 1e-9 && per[i].log_e_closed > exact - 1,
              "K 9 arm %d: %g vs exact %g", i, per[i].log_e_closed, exact);
  }
}

/* The closure needs every set holding a removed arm to reach 1 / alpha: arm 1, between the
 * best arm 0 and arm 2, moved until its own e (the singleton's, enough for given_best) is
 * past 1 / alpha while the set {0, 1} beside the best arm, which weighs M(0 better than 1) by
 * 0.45, is not yet. */
static void test_bandit_closure(void) {
  sy_gate_params_t p = bandit_defaults();
  p.lat_p95_ratio_max = p.error_delta_max = p.tokens_ratio_max = 0;
  double q = 1.0 / 3;
  sy_gate_bandit_t b;
  sy_gate_bandit_arm_t per[3];
  int found = 0;
  for (double s1 = 520; s1 <= 640 && !found; s1 += 1) {
    sy_gate_arm_t arms[3] = {ipw_arm(5000, 650, q), ipw_arm(5000, s1, q), ipw_arm(5000, 500, q)};
    p.given_best = 0;
    sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per);
    CHECK(per[1].log_e_closed <= per[1].log_e);
    if (per[1].log_e < b.log_threshold || per[1].not_best)
      continue;
    found = 1;
    unsigned at = 0;
    CHECK(per[2].not_best && near(per[1].log_e_closed, brute_closed(&p, arms, 3, 7, 1, &at), 1e-9));
    CHECK(at == 3); /* {0, 1} */
    p.given_best = 1;
    sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per);
    CHECK(per[1].not_best && near(per[1].log_e_closed, per[1].log_e, 1e-12));
  }
  CHECK(found);
}

/* One request drawn as the router draws it, and counted as router/events.c counts it; a
 * tampering router serves a instead of b on a fraction of b's draws (and logs a). */
static void count_draw(sy_gate_arm_t *arms, const double *prop, size_t k, double tamper,
                       sy_rng_t *rng) {
  double u = sy_rng_uniform(rng), cum = 0;
  size_t a = k - 1;
  for (size_t i = 0; i < k; i++)
    if (u < (cum += prop[i])) {
      a = i;
      break;
    }
  if (a == 1 && sy_rng_uniform(rng) < tamper)
    a = 0;
  for (size_t i = 0; i < k; i++) {
    arms[i].p_sum += prop[i];
    arms[i].p_sum2 += prop[i] * prop[i];
  }
  arms[a].assigned += 1;
  arms[a].p_own += prop[a];
}

/* The sample-ratio check on the router's counts (gate.h): propensities that move as a
 * bandit's do (K = 3, floor 0.1), a look every 500 requests up to 60,000. An honest router
 * never trips it in 40 runs; one that serves b on 85% of its draws (b gets ~0.085 of the
 * traffic where its propensities promise ~0.1) trips it in every run. */
static void test_bandit_srm_counts(void) {
  sy_gate_params_t p = bandit_defaults();
  p.lat_p95_ratio_max = p.error_delta_max = p.tokens_ratio_max = 0;
  sy_rng_t rng;
  sy_rng_seed(&rng, 15);
  int honest_halts = 0, tampered_halts = 0, reps = 40;
  for (int rep = 0; rep < 2 * reps; rep++) {
    double tamper = rep < reps ? 0 : 0.15;
    sy_gate_arm_t arms[3];
    memset(arms, 0, sizeof arms);
    int halted = 0;
    for (int t = 1; t <= 60000 && !halted; t++) {
      double drift = fmin(1, t / 20000.0); /* a leader emerges: 1/3 each -> 0.8, 0.1, 0.1 */
      double prop[3] = {1.0 / 3 + drift * (0.8 - 1.0 / 3), 1.0 / 3 - drift * (1.0 / 3 - 0.1), 0};
      prop[2] = 1 - prop[0] - prop[1];
      count_draw(arms, prop, 3, tamper, &rng);
      if (t % 500 != 0)
        continue;
      sy_gate_bandit_t b;
      sy_gate_bandit_arm_t per[3];
      sy_gate_decision_t d = sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per);
      CHECK(d != SY_GATE_HALT || strcmp(b.reason, "srm") == 0);
      CHECK(b.srm_check != NULL && strcmp(b.srm_check, "assignments") == 0);
      halted = d == SY_GATE_HALT;
    }
    if (tamper > 0)
      tampered_halts += halted;
    else
      honest_halts += halted;
  }
  CHECK_MSG(honest_halts == 0, "%d of %d honest runs halted", honest_halts, reps);
  CHECK_MSG(tampered_halts == reps, "%d of %d tampered runs halted", tampered_halts, reps);
  /* Off, it never runs. */
  p.alpha_srm = 0;
  sy_gate_arm_t arms[3];
  memset(arms, 0, sizeof arms);
  arms[0].assigned = 100; /* every request to arm 0, where half were expected */
  arms[0].p_sum = arms[0].p_own = arms[1].p_sum = 50;
  arms[0].p_sum2 = arms[1].p_sum2 = 25;
  sy_gate_bandit_t b;
  sy_gate_bandit_arm_t per[3];
  CHECK(sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per) != SY_GATE_HALT);
  p.alpha_srm = 0.001;
  CHECK(sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per) == SY_GATE_HALT &&
        strcmp(b.reason, "srm") == 0 && per[0].srm_log_e >= b.srm_log_threshold);
}

/* Guardrails in bandit mode: the best arm at 2x the control's latency is removed, and never
 * promoted; within the limit it wins. */
static void test_bandit_guardrails(void) {
  sy_gate_params_t p = bandit_defaults();
  double q = 1.0 / 3;
  sy_gate_arm_t arms[3] = {ipw_arm(5000, 500, q), ipw_arm(5000, 1000, q), ipw_arm(5000, 550, q)};
  for (int i = 0; i < 3; i++) {
    fill_hist(arms[i].lat_hist, lognormal_s, 800, 0.6, 5000);
    arms[i].errors = 50;
    arms[i].tokens_n = 5000;
    arms[i].tokens_sum = 5000 * 300.0;
    arms[i].tokens_sumsq = 5000 * 300.0 * 300 * 1.25;
  }
  sy_gate_bandit_t b;
  sy_gate_bandit_arm_t per[3];
  CHECK(sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per) == SY_GATE_PROMOTE && b.winner == 1);
  CHECK(per[1].guard[SY_GATE_GUARD_LATENCY].test.ran && !per[0].guard[0].enabled);
  fill_hist(arms[1].lat_hist, lognormal_s, 1600, 0.6, 5000);
  CHECK(sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per) == SY_GATE_CONTINUE);
  CHECK(per[1].remove && per[1].guard_breached == SY_GATE_GUARD_LATENCY && !per[1].not_best);
  /* It is no opponent: 0.10 and 0.11 are not told apart, nobody wins. */
  CHECK(!per[0].remove && !per[2].remove && b.winner == 3 && b.nremove == 1);
  /* Once it is removed, the best of the rest may be promoted, never it. */
  int live[3] = {1, 0, 1};
  CHECK(sy_gate_bandit_check(&p, arms, live, 3, 0, 0, &b, per) == SY_GATE_CONTINUE);
  CHECK(b.winner == 3 && !per[1].remove);
  arms[2] = ipw_arm(5000, 300, q);
  fill_hist(arms[2].lat_hist, lognormal_s, 800, 0.6, 5000);
  arms[2].tokens_n = 5000, arms[2].tokens_sum = 5000 * 300.0;
  arms[2].tokens_sumsq = 5000 * 300.0 * 300 * 1.25;
  CHECK(sy_gate_bandit_check(&p, arms, live, 3, 0, 0, &b, per) == SY_GATE_PROMOTE);
  CHECK(b.winner == 0 && strcmp(sy_gate_guard_reason_name(0), "guardrail:latency_p95") == 0);
}

/* The e-processes keep their level under adaptive allocation: 600 A/A runs of K = 3
 * Bernoulli(0.05) arms, propensities from the data so far (greedy on the means, floor 0.1,
 * refreshed every 50 outcomes), a look every 100 outcomes up to 30,000: any arm found not the
 * best is a false decision. Ville bounds the rate by alpha = 0.05; it lands well below. And
 * not absurdly wide: 0.05 against 0.10 is found within the same horizon nearly always. */
static void test_bandit_level(void) {
  sy_gate_params_t p = bandit_defaults();
  p.lat_p95_ratio_max = p.error_delta_max = p.tokens_ratio_max = 0;
  sy_rng_t rng;
  sy_rng_seed(&rng, 77);
  int reps = 600, false_dec = 0, found = 0;
  for (int rep = 0; rep < 2 * reps; rep++) {
    int aa = rep < reps;
    double rate[3] = {0.05, 0.05, aa ? 0.05 : 0.10}, prop[3] = {1.0 / 3, 1.0 / 3, 1.0 / 3};
    sy_gate_arm_t a[3] = {ipw_arm(0, 0, 1), ipw_arm(0, 0, 1), ipw_arm(0, 0, 1)};
    for (int t = 1; t <= 30000; t++) {
      double u = sy_rng_uniform(&rng);
      int k = u < prop[0] ? 0 : u < prop[0] + prop[1] ? 1 : 2;
      double y = sy_rng_uniform(&rng) < rate[k], w = 1 / prop[k];
      sy_gate_arm_add(&a[k], y, w);
      a[k].requests += 1;
      if (t % 50 == 0) { /* greedy with a floor: the propensities move with the data */
        int best = 0;
        for (int i = 1; i < 3; i++)
          if (a[i].swy / fmax(a[i].sw, 1) > a[best].swy / fmax(a[best].sw, 1))
            best = i;
        for (int i = 0; i < 3; i++)
          prop[i] = i == best ? 0.8 : 0.1;
      }
      if (t % 100 != 0)
        continue;
      sy_gate_bandit_t b;
      sy_gate_bandit_arm_t per[3];
      sy_gate_decision_t d = sy_gate_bandit_check(&p, a, NULL, 3, 0, 0, &b, per);
      if (aa && (d == SY_GATE_PROMOTE || b.nremove > 0)) {
        false_dec++;
        break;
      }
      if (!aa && per[0].not_best && per[1].not_best) {
        found++;
        break;
      }
      CHECK_MSG(d != SY_GATE_HALT, "halt: %s %s", b.reason, b.detail ? b.detail : "");
    }
  }
  CHECK_MSG(false_dec <= 0.05 * reps, "%d false decisions in %d A/A runs", false_dec, reps);
  CHECK_MSG(found >= 0.9 * reps, "0.10 against 0.05 found in only %d of %d runs", found, reps);
}

/* ---- an A/A Monte Carlo through sy_gate_evaluate ---- */

int main(void) {
  test_eproc();
  test_bandit_closure();
  test_bandit_closure_brute();
  test_bandit_srm_counts();
  test_bandit();
  test_bandit_guardrails();
  test_bandit_level();
  return CHECK_DONE();
}
