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
  /* The closure: arm 0's smallest mean takes in the best arm's e, the lowest (and arm 2's,
   * the next); the best arm's own is its e. */
  double e01 = log(0.5 * (exp(per[0].log_e) + exp(per[1].log_e)));
  double e012 = log((exp(per[0].log_e) + exp(per[1].log_e) + exp(per[2].log_e)) / 3);
  CHECK(near(per[0].log_e_closed, fmin(e01, e012), 1e-9) && per[0].log_e_closed < per[0].log_e);
  CHECK(near(per[1].log_e_closed, per[1].log_e, 1e-12));
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

/* The closure needs every set holding a removed arm to reach 1 / alpha: arm 1 at e = 1.2 /
 * alpha alone is enough for given_best, but the set {0, 1} with the best arm 0 beside it
 * weighs M(0 better than 1) by 1/3 only (K = 3). */
static void test_bandit_closure(void) {
  sy_gate_params_t p = bandit_defaults();
  p.lat_p95_ratio_max = p.error_delta_max = p.tokens_ratio_max = 0;
  double q = 1.0 / 3;
  sy_gate_bandit_t b;
  sy_gate_bandit_arm_t per[3];
  int found = 0;
  /* arm 0 at 0.13, arm 2 at 0.10; arm 1 between, moved until its own e is near 1.2 / alpha */
  for (double s1 = 520; s1 <= 640 && !found; s1 += 1) {
    sy_gate_arm_t arms[3] = {ipw_arm(5000, 650, q), ipw_arm(5000, s1, q), ipw_arm(5000, 500, q)};
    p.given_best = 0;
    sy_gate_bandit_check(&p, arms, NULL, 3, 0, 0, &b, per);
    double own = per[1].log_e - b.log_threshold;
    if (own < log(1.1) || own > log(1.3))
      continue;
    found = 1;
    CHECK(!per[1].not_best && per[1].log_e_closed < b.log_threshold && per[2].not_best);
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
  test_bandit_srm_counts();
  test_bandit();
  test_bandit_guardrails();
  test_bandit_level();
  return CHECK_DONE();
}
