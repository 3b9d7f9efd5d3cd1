/*
 * test_gate.c — the gate's statistics (policies/seqtest.h, policies/gate.h): boundaries
 * against their closed forms and defining equations, the SRM Bayes factor against hand
 * values, arm estimates, consistency checks, histogram curves against exact distributions,
 * every decision path of sy_gate_evaluate, and a small A/A Monte Carlo of the false decision
 * rate under looks at every 20 users per arm. The bandit gate's tests are test_gate_bandit.c.
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

/* ---- seqtest ---- */

static void test_boundaries(void) {
  double l = -2 * log(0.05);
  CHECK(near(sy_seq_rho(5000, 0.05), sqrt((l + log(l + 1)) / 5000), 1e-14));
  CHECK(isnan(sy_seq_rho(0, 0.05)) && isnan(sy_seq_rho(100, 0)) && isnan(sy_seq_rho(100, 1)));

  /* z2 is the brief's half-width divided by sqrt(V): compare with the formula as written. */
  double rho = sy_seq_rho(7000, 0.05), v = 2.5e-5;
  for (double n = 200; n <= 1e6; n *= 3.7) {
    double hw = sqrt(v * n) * sqrt(2 * (n * rho * rho + 1) / (n * n * rho * rho) *
                                   log(sqrt(n * rho * rho + 1) / 0.05));
    CHECK_MSG(near(sqrt(v) * sy_seq_z2(n, rho, 0.05), hw, 1e-12), "n %g", n);
  }
  CHECK(isinf(sy_seq_z2(0, rho, 0.05)) && isnan(sy_seq_z2(10, 0, 0.05)));
  CHECK(isnan(sy_seq_z2(NAN, rho, 0.05)) && isnan(sy_seq_z2(10, rho, 1)));

  /* rho(n_star) puts the narrowest point near n_star: scan N for the minimum. */
  double best = INFINITY, arg = 0;
  for (double n = 100; n < 100000; n *= 1.01) {
    double z = sy_seq_z2(n, rho, 0.05);
    if (z < best)
      best = z, arg = n;
  }
  CHECK_MSG(arg > 0.7 * 7000 && arg < 1.4 * 7000, "argmin %g", arg);
  CHECK_MSG(best > 3.0 && best < 3.1, "min z2 %g", best);

  /* z1 solves the one-sided mixture's equation 2 (1+x)^-1/2 e^(u^2/2) Phi(u) = 1/alpha, and
   * lies between the two-sided boundaries at 2 alpha and alpha. */
  double alphas[] = {0.05, 0.0167, 0.001, 0.3};
  for (size_t i = 0; i < sizeof alphas / sizeof alphas[0]; i++) {
    double a = alphas[i];
    for (double n = 150; n <= 1e6; n *= 4.3) {
      double z = sy_seq_z1(n, rho, a), x = n * rho * rho, u = z * sqrt(x / (1 + x));
      double m = 2 / sqrt(1 + x) * exp(u * u / 2) * norm_cdf(u);
      CHECK_MSG(near(m, 1 / a, 1e-9), "alpha %g n %g: M %g", a, n, m);
      if (2 * a < 1)
        CHECK(z > sy_seq_z2(n, rho, 2 * a) && z < sy_seq_z2(n, rho, a));
    }
  }
  CHECK(isinf(sy_seq_z1(0, rho, 0.05)) && isnan(sy_seq_z1(10, rho, 0.5)));
}

static void test_srm_bf(void) {
  double th[3] = {0.5, 0.5, 0}, x[3] = {0, 0, 0};
  /* c = 2, shares 1/2: a uniform Beta(1, 1) prior. BF(1,0) = 1, BF(2,0) = 4/3, BF(1,1) = 2/3. */
  CHECK(near(sy_seq_srm_log_bf(x, th, 2, 2), 0, 1e-12));
  x[0] = 1;
  CHECK(near(sy_seq_srm_log_bf(x, th, 2, 2), 0, 1e-12));
  x[0] = 2;
  CHECK(near(sy_seq_srm_log_bf(x, th, 2, 2), log(4.0 / 3), 1e-12));
  x[0] = 1, x[1] = 1;
  CHECK(near(sy_seq_srm_log_bf(x, th, 2, 2), log(2.0 / 3), 1e-12));
  /* A share-0 category with no count is left out; with a count it is impossible. */
  CHECK(near(sy_seq_srm_log_bf(x, th, 3, 2), log(2.0 / 3), 1e-12));
  x[2] = 1;
  CHECK(isinf(sy_seq_srm_log_bf(x, th, 3, 2)));
  /* Shares are normalised. */
  double th2[2] = {3, 3}, y[2] = {7, 2};
  CHECK(near(sy_seq_srm_log_bf(y, th2, 2, 50), sy_seq_srm_log_bf(y, th, 2, 50), 1e-12));
  double bad[2] = {-1, 2}, zero[2] = {0, 0};
  CHECK(isnan(sy_seq_srm_log_bf(bad, th, 2, 50)) && isnan(sy_seq_srm_log_bf(y, zero, 2, 50)));
  CHECK(isnan(sy_seq_srm_log_bf(y, th, 2, 0)) && isnan(sy_seq_srm_log_bf(y, th, 0, 50)));
  /* 52/48 over 20,000 requests is a mismatch at 0.001; 50/50 is evidence for H0. */
  double skew[2] = {10400, 9600}, even[2] = {10000, 10000};
  CHECK(sy_seq_srm_log_bf(skew, th, 2, 1000) > log(1000));
  CHECK(sy_seq_srm_log_bf(even, th, 2, 1000) < 0);
}

/* ---- arms ---- */

static void test_arms(void) {
  double ys[] = {1.5, 2, 7, 0.25, 3}, ws[] = {1, 2, 4, 1.25, 8};
  sy_gate_arm_t plain, ipw;
  memset(&plain, 0, sizeof plain);
  memset(&ipw, 0, sizeof ipw);
  double s = 0, ss = 0, sw = 0, swy = 0;
  for (int i = 0; i < 5; i++) {
    sy_gate_arm_add(&plain, ys[i], 1);
    sy_gate_arm_add(&ipw, ys[i], ws[i]);
    s += ys[i], ss += ys[i] * ys[i], sw += ws[i], swy += ws[i] * ys[i];
  }
  double m = s / 5;
  CHECK(plain.n == 5 && plain.sw == 5 && plain.sw2 == 5 && near(plain.sw2y2, ss, 1e-15));
  CHECK(near(sy_gate_arm_mean(&plain), m, 1e-15));
  CHECK(near(sy_gate_arm_var(&plain), (ss / 5 - m * m) / 5, 1e-12)); /* biased s^2 / n */
  double hm = swy / sw, num = 0;
  for (int i = 0; i < 5; i++)
    num += ws[i] * ws[i] * (ys[i] - hm) * (ys[i] - hm);
  CHECK(near(sy_gate_arm_mean(&ipw), hm, 1e-15));
  CHECK(near(sy_gate_arm_var(&ipw), num / (sw * sw), 1e-12));
  CHECK(sy_gate_arm_check(&plain) == NULL && sy_gate_arm_check(&ipw) == NULL);
  sy_gate_arm_t empty;
  memset(&empty, 0, sizeof empty);
  CHECK(isnan(sy_gate_arm_mean(&empty)) && isnan(sy_gate_arm_var(&empty)));
  CHECK(sy_gate_arm_check(&empty) == NULL);

  sy_gate_arm_t a = binary_arm(100, 10), b = binary_arm(50, 20);
  a.expected_share = 0.3;
  a.errors = 2, b.errors = 3;
  a.lat_hist[4] = 7, b.lat_hist[4] = 1, b.lat_hist[15] = 2;
  b.tokens_n = 4, b.tokens_sum = 40, b.tokens_sumsq = 500;
  sy_gate_arm_merge(&a, &b);
  CHECK(a.n == 150 && a.swy == 30 && a.sw2y2 == 30 && a.requests == 150 && a.errors == 5);
  CHECK(a.lat_hist[4] == 8 && a.lat_hist[15] == 2 && a.tokens_sumsq == 500);
  CHECK(a.expected_share == 0.3);

  /* Every kind of corruption is named. */
  sy_gate_arm_t bad = binary_arm(100, 10);
  bad.swy = NAN;
  CHECK(sy_gate_arm_check(&bad) != NULL);
  bad = binary_arm(100, 10), bad.lat_hist[3] = INFINITY;
  CHECK(sy_gate_arm_check(&bad) != NULL);
  bad = binary_arm(100, 10), bad.n = -1;
  CHECK(sy_gate_arm_check(&bad) != NULL);
  bad = binary_arm(100, 10), bad.lat_hist[0] = -1;
  CHECK(sy_gate_arm_check(&bad) != NULL);
  bad = binary_arm(100, 10), bad.expected_share = 1.5;
  CHECK(sy_gate_arm_check(&bad) != NULL);
  bad = binary_arm(0, 0), bad.swy = 3;
  CHECK(sy_gate_arm_check(&bad) != NULL);
  bad = binary_arm(100, 10), bad.sw = 0;
  CHECK(sy_gate_arm_check(&bad) != NULL);
  bad = binary_arm(100, 10), bad.errors = 101;
  CHECK(sy_gate_arm_check(&bad) != NULL);
  bad = binary_arm(100, 10), bad.sw = 120; /* more weight than n sw2 allows */
  CHECK(sy_gate_arm_check(&bad) != NULL);
  bad = binary_arm(100, 10), bad.sw2y = 40; /* 1600 > sw2 sw2y2 = 1000 */
  CHECK(sy_gate_arm_check(&bad) != NULL);
  bad = binary_arm(100, 10), bad.tokens_sum = 5;
  CHECK(sy_gate_arm_check(&bad) != NULL);
  bad = binary_arm(100, 10), bad.tokens_n = 2, bad.tokens_sum = 10, bad.tokens_sumsq = 40;
  CHECK(sy_gate_arm_check(&bad) != NULL);
}

/* ---- latency histograms ---- */

static double pareto_s(double x, double beta, double unused) {
  (void)unused;
  return x <= 1 ? 1 : pow(x, -beta);
}

static void test_latency(void) {
  const double want[SY_LAT_BUCKETS] = {1,   2,    5,    10,   20,    50,    100,   200,
                                            500, 1000, 2000, 5000, 10000, 30000, 60000, INFINITY};
  CHECK(memcmp(want, sy_lat_bounds, sizeof want) == 0);
  CHECK(sy_lat_bucket(0.5) == 0 && sy_lat_bucket(1) == 0 && sy_lat_bucket(-3) == 0);
  CHECK(sy_lat_bucket(1.0001) == 1 && sy_lat_bucket(250) == 8);
  CHECK(sy_lat_bucket(60000) == 14 && sy_lat_bucket(60001) == 15);
  CHECK(sy_lat_bucket(NAN) == 15);

  /* A power-law tail is a straight line in log-log space: the curve is exact. */
  double h[SY_LAT_BUCKETS];
  fill_hist(h, pareto_s, 1.5, 0, 1e6);
  CHECK(near(sy_lat_quantile(h, 0.95), pow(0.05, -1 / 1.5), 1e-9));
  CHECK(near(sy_lat_quantile(h, 0.5), pow(0.5, -1 / 1.5), 1e-9));
  CHECK(near(sy_lat_frac_above(h, 300), pow(300, -1.5), 1e-9));
  CHECK(near(sy_lat_log_density(h, 300), 1.5 * pow(300, -1.5), 1e-6));

  /* frac_above inverts quantile wherever the curve is drawn. */
  fill_hist(h, lognormal_s, 800, 0.6, 12345);
  for (double q = 0.02; q < 0.999; q += 0.0371) {
    double x = sy_lat_quantile(h, q);
    CHECK_MSG(near(sy_lat_frac_above(h, x), 1 - q, 1e-9), "q %g x %g", q, x);
  }
  /* Log-normal: p95 within 1.5% of the truth, and a candidate 1.2x slower reads a fraction
   * within 0.002 of 5% above 1.2 x the control's p95 — the guardrail's boundary. */
  double p95 = 800 * exp(0.6 * 1.6448536269514722);
  double c95 = sy_lat_quantile(h, 0.95);
  CHECK_MSG(fabs(c95 / p95 - 1) < 0.015, "p95 %g vs %g", c95, p95);
  double slow[SY_LAT_BUCKETS];
  fill_hist(slow, lognormal_s, 960, 0.6, 12345);
  double f = sy_lat_frac_above(slow, 1.2 * c95);
  CHECK_MSG(fabs(f - 0.05) < 0.002, "fraction above the cutoff %g", f);

  double none[SY_LAT_BUCKETS] = {0};
  CHECK(isnan(sy_lat_quantile(none, 0.5)) && isnan(sy_lat_frac_above(none, 3)));
  CHECK(isnan(sy_lat_quantile(h, 1)) && isnan(sy_lat_log_density(h, 0.5)));
  none[15] = 10; /* everything beyond 60 s */
  CHECK(sy_lat_quantile(none, 0.5) == 60000 && sy_lat_frac_above(none, 70000) == 1);
  double fast[SY_LAT_BUCKETS] = {0};
  fast[0] = 10; /* all within 1 ms: linear */
  CHECK(near(sy_lat_quantile(fast, 0.3), 0.3, 1e-12));
  CHECK(near(sy_lat_frac_above(fast, 0.25), 0.75, 1e-12));
  double one[SY_LAT_BUCKETS] = {0};
  one[8] = 4; /* all in (200, 500]: S falls to 0 at 500, linearly in log x */
  CHECK(near(sy_lat_quantile(one, 0.5), sqrt(200.0 * 500), 1e-9));
}

/* What `status` and the admin API used to read with linear interpolation inside a bucket
 * (stats/summary.c's sy_hist_quantile, removed) now reads on the gate's curve; the old
 * value is in each comment. */
static void test_latency_reported(void) {
  double h[SY_LAT_BUCKETS] = {0};
  h[3] = 10; /* one bucket, (5, 10]: linear in log x */
  CHECK(near(sy_lat_quantile(h, 0.5), 5 * sqrt(2), 1e-9)); /* was 7.5 */
  CHECK(near(sy_lat_quantile(h, 0.1), 5 * pow(2, 0.1), 1e-9)); /* was 5.5 */
  CHECK(isnan(sy_lat_quantile(h, 0)) && isnan(sy_lat_quantile(h, 1)));
  memset(h, 0, sizeof h);
  h[0] = 50; /* (0, 1] */
  h[6] = 50; /* (50, 100] */
  CHECK(near(sy_lat_quantile(h, 0.5), 1, 1e-9));             /* was 1 */
  CHECK(near(sy_lat_quantile(h, 0.25), 0.5, 1e-9));          /* was 0.5 */
  CHECK(near(sy_lat_quantile(h, 0.75), 50 * sqrt(2), 1e-9)); /* was 75 */
  CHECK(near(sy_lat_quantile(h, 0.95), 50 * pow(2, 0.9), 1e-9)); /* was 95 */
  memset(h, 0, sizeof h);
  h[0] = 1;
  h[15] = 9;
  CHECK(near(sy_lat_quantile(h, 0.05), 0.5, 1e-9) && sy_lat_quantile(h, 0.95) == 60000);
  /* Counts that are negative or NaN count as nothing (lathist.h); the gate never sees
   * them (sy_gate_arm_check halts first). */
  memset(h, 0, sizeof h);
  h[2] = -3;
  h[5] = NAN;
  CHECK(isnan(sy_lat_quantile(h, 0.5)));
  h[4] = 2; /* (10, 20] */
  CHECK(near(sy_lat_quantile(h, 0.5), 10 * sqrt(2), 1e-9)); /* was 15 */
  /* A total that overflows reads the shares; an infinite count has no curve. */
  memset(h, 0, sizeof h);
  h[3] = h[4] = DBL_MAX;
  CHECK(near(sy_lat_quantile(h, 0.5), 10, 1e-9));
  CHECK(near(sy_lat_frac_above(h, 10), 0.5, 1e-12));
  h[4] = INFINITY;
  CHECK(isnan(sy_lat_quantile(h, 0.5)));
}

/* ---- sy_gate_evaluate ---- */

static void test_params_and_halts(void) {
  sy_gate_params_t p = defaults(), q;
  CHECK(sy_gate_params_check(&p) == NULL);
  CHECK(p.alpha == 0.05 && p.min_n == 100 && p.alpha_guard == 0.05 && p.alpha_srm == 0.001);
  CHECK(p.lat_p95_ratio_max == 1.2 && p.error_delta_max == 0.02 && p.tokens_ratio_max == 1.5);
  CHECK(sy_gate_tuning_n(&p) == SY_GATE_TUNING_N);
  q = p, q.tuning_n = 0;
  CHECK(sy_gate_params_check(&q) == NULL && sy_gate_tuning_n(&q) == SY_GATE_TUNING_N);
  q = p, q.tuning_n = 123;
  CHECK(sy_gate_tuning_n(&q) == 123);

  sy_gate_arm_t c = binary_arm(5000, 500), t = binary_arm(5000, 700);
  sy_gate_result_t r;
  CHECK(sy_gate_evaluate(&p, &c, &t, 0, &r) == SY_GATE_PROMOTE);

  sy_gate_params_t bad[8];
  for (int i = 0; i < 8; i++)
    bad[i] = p;
  bad[0].alpha = 0.5, bad[1].alpha = NAN, bad[2].promote_share = 1, bad[3].min_n = 0;
  bad[4].alpha_guard = 0, bad[5].lat_p95_ratio_max = -1, bad[6].alpha_srm = 1;
  bad[7].srm_concentration = 0;
  for (int i = 0; i < 8; i++) {
    CHECK_MSG(sy_gate_evaluate(&bad[i], &c, &t, 0, &r) == SY_GATE_HALT, "param set %d", i);
    CHECK(strcmp(r.reason, "config") == 0 && r.detail != NULL);
  }
  CHECK(sy_gate_evaluate(&p, NULL, &t, 0, &r) == SY_GATE_HALT && strcmp(r.reason, "missing") == 0);
  CHECK(sy_gate_evaluate(&p, &c, &t, NAN, &r) == SY_GATE_HALT && strcmp(r.reason, "missing") == 0);
  CHECK(sy_gate_evaluate(&p, &c, &t, -1, &r) == SY_GATE_HALT && strcmp(r.reason, "missing") == 0);
  CHECK(sy_gate_evaluate(&p, &c, &t, 300001, &r) == SY_GATE_HALT);
  CHECK(strcmp(r.reason, "stale") == 0);
  CHECK(sy_gate_evaluate(&p, &c, &t, 300000, &r) == SY_GATE_PROMOTE);
  sy_gate_arm_t broken = c;
  broken.sw2y2 = -1;
  CHECK(sy_gate_evaluate(&p, &broken, &t, 0, &r) == SY_GATE_HALT);
  CHECK(strcmp(r.reason, "invalid:control") == 0 && r.detail != NULL);
  CHECK(sy_gate_evaluate(&p, &c, &broken, 0, &r) == SY_GATE_HALT);
  CHECK(strcmp(r.reason, "invalid:candidate") == 0);
  sy_gate_arm_t c0 = c, t0 = t;
  c0.expected_share = t0.expected_share = 0;
  CHECK(sy_gate_evaluate(&p, &c0, &t0, 0, &r) == SY_GATE_HALT);
  CHECK(strcmp(r.reason, "invalid:shares") == 0);
  CHECK(strcmp(sy_gate_decision_name(SY_GATE_HALT), "halt") == 0);
  CHECK(strcmp(sy_gate_decision_name(SY_GATE_PROMOTE), "promote") == 0);
  CHECK(strcmp(sy_gate_decision_name(SY_GATE_ROLLBACK), "rollback") == 0);
  CHECK(strcmp(sy_gate_decision_name(SY_GATE_CONTINUE), "continue") == 0);
  CHECK(strcmp(sy_gate_decision_name((sy_gate_decision_t)42), "?") == 0);
}

static void test_outcome(void) {
  sy_gate_params_t p = defaults();
  sy_gate_result_t r;
  sy_gate_arm_t c = binary_arm(5000, 500), t = binary_arm(5000, 700);
  CHECK(sy_gate_evaluate(&p, &c, &t, 0, &r) == SY_GATE_PROMOTE);
  CHECK(strcmp(r.reason, "outcome:better") == 0 && r.detail == NULL);
  CHECK(r.mean_control == 0.1 && r.mean_candidate == 0.14 && r.outcome.ran);
  CHECK(near(r.outcome.estimate, 0.04, 1e-12) && r.outcome.n == 10000 && r.outcome.alpha == 0.05);
  CHECK(r.outcome.lower > 0 && r.outcome.upper > r.outcome.estimate);
  CHECK(near(r.outcome.se, sqrt(0.09 / 5000 + 0.14 * 0.86 / 5000), 1e-12));
  /* The default split: the promoting end at 0.045, the other at 0.005 (wider). */
  CHECK(near(r.outcome.z_lower, sy_seq_z1(10000, r.rho, p.promote_share * p.alpha), 1e-12));
  CHECK(r.outcome.z_upper > r.outcome.z_lower);

  CHECK(sy_gate_evaluate(&p, &t, &c, 0, &r) == SY_GATE_ROLLBACK);
  CHECK(strcmp(r.reason, "outcome:worse") == 0 && r.outcome.upper < 0);
  p.minimize = 1; /* the lower rate is now the better one */
  CHECK(sy_gate_evaluate(&p, &t, &c, 0, &r) == SY_GATE_PROMOTE);
  CHECK(r.outcome.upper < 0 &&
        near(r.outcome.z_upper, sy_seq_z1(10000, r.rho, p.promote_share * p.alpha), 1e-12));
  CHECK(sy_gate_evaluate(&p, &c, &t, 0, &r) == SY_GATE_ROLLBACK);

  /* Symmetric: the brief's half-width, exactly. */
  p = defaults();
  p.promote_share = 0.5;
  sy_gate_arm_t t2 = binary_arm(5000, 540);
  CHECK(sy_gate_evaluate(&p, &c, &t2, 0, &r) == SY_GATE_CONTINUE);
  CHECK(strcmp(r.reason, "outcome:inconclusive") == 0);
  double n = 10000, rho = sy_seq_rho(SY_GATE_TUNING_N, 0.05), v = r.outcome.se * r.outcome.se;
  double hw = sqrt(v * n) * sqrt(2 * (n * rho * rho + 1) / (n * n * rho * rho) *
                                 log(sqrt(n * rho * rho + 1) / 0.05));
  CHECK(near(r.rho, rho, 1e-15) && near(r.outcome.upper - r.outcome.estimate, hw, 1e-12));
  CHECK(near(r.outcome.estimate - r.outcome.lower, hw, 1e-12));

  /* Too few outcomes, or nothing varying: continue. */
  sy_gate_arm_t few = binary_arm(99, 90);
  few.requests = 5000; /* outcomes lag requests; the split is fine */
  CHECK(sy_gate_evaluate(&p, &c, &few, 0, &r) == SY_GATE_CONTINUE);
  CHECK(strcmp(r.reason, "min_samples") == 0 && !r.outcome.ran && isnan(r.outcome.lower));
  sy_gate_arm_t zeros = binary_arm(500, 0), ones = binary_arm(500, 500);
  CHECK(sy_gate_evaluate(&p, &zeros, &ones, 0, &r) == SY_GATE_CONTINUE);
  CHECK(strcmp(r.reason, "outcome:no_variance") == 0);

  /* IPW sums: the Hajek means are compared, not the raw ones. */
  sy_gate_arm_t wc, wt;
  memset(&wc, 0, sizeof wc);
  memset(&wt, 0, sizeof wt);
  for (int i = 0; i < 400; i++) {
    sy_gate_arm_add(&wc, i % 10 == 0, 2);            /* 10%, weight 2 */
    sy_gate_arm_add(&wt, i % 4 == 0, i % 2 ? 1 : 3); /* 25% on weight-3 rows */
  }
  wc.requests = wt.requests = 400;
  wc.expected_share = wt.expected_share = 0.5;
  CHECK(sy_gate_evaluate(&p, &wc, &wt, 0, &r) != SY_GATE_HALT);
  CHECK(near(r.mean_control, 0.1, 1e-12) && near(r.mean_candidate, 0.5 * 3 * 200 / 800, 1e-12));
}

static void test_srm_halts(void) {
  sy_gate_params_t p = defaults();
  sy_gate_result_t r;
  sy_gate_arm_t c = binary_arm(5000, 500), t = binary_arm(5000, 700);
  c.requests = 10000, t.requests = 12000;
  /* A clearly better candidate, but the split is off: halt, never promote. */
  CHECK(sy_gate_evaluate(&p, &c, &t, 0, &r) == SY_GATE_HALT && strcmp(r.reason, "srm") == 0);
  CHECK(r.srm_ran && r.srm_log_bf >= r.srm_log_threshold &&
        near(r.srm_log_threshold, log(1000), 1e-12));
  c.expected_share = 10.0 / 22, t.expected_share = 12.0 / 22; /* intended 10:12: no mismatch */
  CHECK(sy_gate_evaluate(&p, &c, &t, 0, &r) == SY_GATE_PROMOTE && r.srm_log_bf < 0);
  c.expected_share = t.expected_share = 0.5;
  p.alpha_srm = 0; /* off */
  CHECK(sy_gate_evaluate(&p, &c, &t, 0, &r) == SY_GATE_PROMOTE && !r.srm_ran);
}

static void test_guardrails(void) {
  sy_gate_params_t p = defaults();
  sy_gate_result_t r;
  sy_gate_arm_t c = binary_arm(5000, 500), t = binary_arm(5000, 700);
  fill_hist(c.lat_hist, lognormal_s, 800, 0.6, 5000);
  fill_hist(t.lat_hist, lognormal_s, 800, 0.6, 5000);
  c.errors = t.errors = 50;
  c.tokens_n = t.tokens_n = 5000;
  c.tokens_sum = t.tokens_sum = 5000 * 300.0;
  c.tokens_sumsq = t.tokens_sumsq = 5000 * 300.0 * 300 * 1.25;
  CHECK(sy_gate_evaluate(&p, &c, &t, 0, &r) == SY_GATE_PROMOTE);
  for (int g = 0; g < SY_GATE_NGUARDS; g++) {
    CHECK(r.guard[g].enabled && r.guard[g].test.ran && !r.guard[g].breached);
    CHECK(near(r.guard[g].test.alpha, 0.05 / 3, 1e-15) && isinf(r.guard[g].test.upper));
  }
  const sy_gate_guard_t *lat = &r.guard[SY_GATE_GUARD_LATENCY];
  CHECK(near(lat->control, lat->candidate, 1e-12) &&
        near(lat->cutoff_ms, 1.2 * lat->control, 1e-12));
  CHECK(lat->test.estimate < 0);
  CHECK(near(r.guard[SY_GATE_GUARD_ERRORS].test.estimate, -0.02, 1e-12));
  CHECK(near(r.guard[SY_GATE_GUARD_TOKENS].test.estimate, 300 - 1.5 * 300, 1e-9));

  /* Each breach rolls back even a better candidate. */
  sy_gate_arm_t slow = t;
  fill_hist(slow.lat_hist, lognormal_s, 1600, 0.6, 5000);
  CHECK(sy_gate_evaluate(&p, &c, &slow, 0, &r) == SY_GATE_ROLLBACK);
  CHECK(strcmp(r.reason, "guardrail:latency_p95") == 0 && r.guard[0].breached);
  CHECK(r.guard[SY_GATE_GUARD_LATENCY].candidate > 1.9 * r.guard[SY_GATE_GUARD_LATENCY].control);
  sy_gate_arm_t failing = t;
  failing.errors = 500;
  CHECK(sy_gate_evaluate(&p, &c, &failing, 0, &r) == SY_GATE_ROLLBACK);
  CHECK(strcmp(r.reason, "guardrail:error_rate") == 0 && near(r.guard[1].candidate, 0.1, 1e-12));
  sy_gate_arm_t wordy = t;
  wordy.tokens_sum *= 2, wordy.tokens_sumsq *= 4;
  CHECK(sy_gate_evaluate(&p, &c, &wordy, 0, &r) == SY_GATE_ROLLBACK);
  CHECK(strcmp(r.reason, "guardrail:tokens") == 0);
  /* Within the limits: +1.5 points of errors, 1.2x tokens. */
  sy_gate_arm_t fine = t;
  fine.errors = 125, fine.tokens_sum *= 1.2, fine.tokens_sumsq *= 1.44;
  CHECK(sy_gate_evaluate(&p, &c, &fine, 0, &r) == SY_GATE_PROMOTE);

  /* Off: the breach is ignored and Bonferroni counts only the guardrails on. */
  p.error_delta_max = 0;
  CHECK(sy_gate_evaluate(&p, &c, &failing, 0, &r) == SY_GATE_PROMOTE);
  CHECK(!r.guard[1].enabled && !r.guard[1].test.ran && near(r.guard[0].test.alpha, 0.025, 1e-15));
  /* Too few requests: the guardrail does not run. */
  p = defaults();
  sy_gate_arm_t c2 = binary_arm(150, 15), t2 = binary_arm(150, 15);
  c2.requests = t2.requests = 99;
  c2.n = c2.sw = c2.sw2 = t2.n = t2.sw = t2.sw2 = 99;
  t2.errors = 99;
  CHECK(sy_gate_evaluate(&p, &c2, &t2, 0, &r) == SY_GATE_CONTINUE && !r.guard[1].test.ran);
}

/* 1,000 A/A runs, Bernoulli(0.3), a look every ~20 users per arm up to 5,000 per arm: the
 * false decision rate must stay under alpha, where a naive z-test at every look far exceeds
 * it. (bench/gate-sim does this at scale.) */
static void test_aa_monte_carlo(void) {
  sy_gate_params_t p = defaults();
  sy_rng_t rng;
  gsl_rng g;
  sy_rng_seed(&rng, 20240611);
  sy_gsl_rng_bind(&g, &rng);
  int reps = 1000, false_dec = 0, naive = 0;
  for (int rep = 0; rep < reps; rep++) {
    sy_gate_arm_t a[2] = {binary_arm(0, 0), binary_arm(0, 0)};
    int decided = 0, crossed = 0;
    for (int look = 0; look < 250 && !(decided && crossed); look++) {
      unsigned m0 = gsl_ran_binomial(&g, 0.5, 40);
      unsigned m[2] = {m0, 40 - m0};
      for (int i = 0; i < 2; i++) {
        double s = gsl_ran_binomial(&g, 0.3, m[i]);
        a[i].n += m[i], a[i].sw += m[i], a[i].sw2 += m[i], a[i].requests += m[i];
        a[i].swy += s, a[i].sw2y += s, a[i].sw2y2 += s;
      }
      sy_gate_result_t r;
      sy_gate_decision_t d = sy_gate_evaluate(&p, &a[0], &a[1], 0, &r);
      if (!decided && d != SY_GATE_CONTINUE) {
        decided = 1;
        false_dec += d == SY_GATE_PROMOTE || d == SY_GATE_ROLLBACK;
      }
      if (!crossed && a[0].n >= 100 && a[1].n >= 100) {
        double z = r.mean_candidate - r.mean_control;
        z /= sqrt(sy_gate_arm_var(&a[0]) + sy_gate_arm_var(&a[1]));
        crossed = fabs(z) > 1.96;
      }
    }
    naive += crossed;
  }
  CHECK_MSG(false_dec <= 50, "gate: %d false decisions in %d A/A runs", false_dec, reps);
  CHECK_MSG(naive >= 250, "naive z-test: only %d crossings in %d runs", naive, reps);
}

int main(void) {
  test_boundaries();
  test_srm_bf();
  test_arms();
  test_latency();
  test_latency_reported();
  test_params_and_halts();
  test_outcome();
  test_srm_halts();
  test_guardrails();
  test_aa_monte_carlo();
  return CHECK_DONE();
}
