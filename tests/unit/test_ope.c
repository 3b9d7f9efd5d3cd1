/*
 * test_ope.c — the off-policy estimators (policies/ope.h) against values computed by hand
 * on tiny logs, their invariants on larger simulated ones, the warnings, and the target
 * policy parser.
 */
#include <math.h>
#include <string.h>

#include "policies/ope.h"
#include "policies/rng.h"
#include "tests/unit/check.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

static const char *const names2[] = {"a", "b"};
static const char *const names3[] = {"a", "b", "c"};

static sy_ope_opts_t opts(void) {
  sy_ope_opts_t o;
  sy_ope_opts_default(&o);
  return o;
}

/* Six rows logged uniformly over two arms; target always:a. Every figure below is worked
 * out in the comments (folds: even rows 0,2,4 are all arm a, odd rows all arm b). */
static void test_hand_always(void) {
  sy_ope_row_t rows[] = {{0, 0.5, 1}, {1, 0.5, 0}, {0, 0.5, 0},
                         {1, 0.5, 1}, {0, 0.5, 1}, {1, 0.5, 1}};
  sy_ope_target_t t;
  char err[256];
  CHECK(sy_ope_target_parse("always:a", names2, 2, &t, err, sizeof err) == 0);
  sy_ope_result_t r;
  sy_ope_opts_t o = opts();
  CHECK(sy_ope_evaluate(rows, 6, &t, &o, &r, err, sizeof err) == 0);
  /* IPS terms 2,0,0,0,2,0: mean 2/3, sample var 5.3333/5, se = sqrt(1.06667/6). */
  CHECK(NEAR(r.ips.value, 2.0 / 3));
  CHECK(NEAR(r.ips.se, sqrt(16.0 / 3 / 5 / 6)));
  CHECK(NEAR(r.ips.lo, 2.0 / 3 - SY_OPE_Z95 * r.ips.se));
  /* SNIPS = mean of a's rewards (1, 0, 1); se^2 = sum w^2 (r-V)^2 / (sum w)^2 = (24/9)/36. */
  CHECK(NEAR(r.snips.value, 2.0 / 3));
  CHECK(NEAR(r.snips.se, sqrt(24.0 / 9 / 36)));
  /* DR, cross-fitted: even rows take m from the odd fold, which has no row of a, so its
   * overall mean 2/3: d = 2/3 + 2 (r - 2/3) = 4/3, -2/3, 4/3. Odd rows (weight 0) take
   * m(a) = 2/3 from the even fold: d = 2/3. Mean 2/3; squared deviations 24/9. */
  CHECK(NEAR(r.dr.value, 2.0 / 3));
  CHECK(NEAR(r.dr.se, sqrt(24.0 / 9 / 5 / 6)));
  /* The logging policy's own value: mean reward 4/6, deviations^2 12/9. */
  CHECK(NEAR(r.logged.value, 4.0 / 6));
  CHECK(NEAR(r.logged.se, sqrt(12.0 / 9 / 5 / 6)));
  CHECK(NEAR(r.ess, 3));
  CHECK(NEAR(r.sum_w, 6));
  CHECK(NEAR(r.mean_w, 1));
  CHECK(NEAR(r.max_w, 2));
  CHECK(NEAR(r.min_p, 0.5));
  CHECK(r.n == 6);
  CHECK((r.warnings & SY_OPE_W_FEW_ROWS) != 0);
  CHECK((r.warnings & SY_OPE_W_LOW_ESS) != 0);
  CHECK((r.warnings & SY_OPE_W_NO_SUPPORT) == 0);
  CHECK((r.warnings & SY_OPE_W_MIN_PROPENSITY) == 0);
}

/* DR with unequal propensities, four rows, target split a=1,b=3 (pi = .25, .75). */
static void test_hand_dr(void) {
  sy_ope_row_t rows[] = {{0, 0.8, 1}, {0, 0.8, 0}, {1, 0.2, 1}, {1, 0.2, 0}};
  sy_ope_target_t t;
  char err[256];
  CHECK(sy_ope_target_parse("split:a=1,b=3", names2, 2, &t, err, sizeof err) == 0);
  CHECK(NEAR(t.pi[0], 0.25) && NEAR(t.pi[1], 0.75));
  sy_ope_result_t r;
  sy_ope_opts_t o = opts();
  CHECK(sy_ope_evaluate(rows, 4, &t, &o, &r, err, sizeof err) == 0);
  /* w = .3125, .3125, 3.75, 3.75. IPS = (.3125 + 3.75) / 4. */
  CHECK(NEAR(r.ips.value, (0.3125 + 3.75) / 4));
  /* SNIPS = (.3125 + 3.75) / 8.125 = 0.5. */
  CHECK(NEAR(r.snips.value, 0.5));
  /* Folds: even {row0 a:1, row2 b:1}, odd {row1 a:0, row3 b:0}. Even rows use the odd
   * fold's means (a 0, b 0): dm = 0, d0 = .3125 (1 - 0), d2 = 3.75 (1 - 0). Odd rows use the
   * even fold's (a 1, b 1): dm = 1, d1 = 1 + .3125 (0 - 1) = .6875, d3 = 1 - 3.75 = -2.75. */
  double d[4] = {0.3125, 0.6875, 3.75, -2.75};
  double m = (d[0] + d[1] + d[2] + d[3]) / 4, q = 0;
  for (int i = 0; i < 4; i++)
    q += (d[i] - m) * (d[i] - m);
  CHECK(NEAR(r.dr.value, m));
  CHECK(NEAR(r.dr.se, sqrt(q / 3 / 4)));
  CHECK(NEAR(r.ess, 8.125 * 8.125 / (2 * 0.3125 * 0.3125 + 2 * 3.75 * 3.75)));
}

/* Invariants on a larger log with uniform logging over three arms. */
static void test_invariants(void) {
  enum { N = 3000 };
  static sy_ope_row_t rows[N];
  double mean_true[3] = {0.2, 0.5, 0.7};
  double sum[3] = {0}, cnt[3] = {0}, all = 0;
  sy_rng_t rng;
  sy_rng_seed(&rng, 42);
  for (size_t i = 0; i < N; i++) {
    size_t a = (size_t)(sy_rng_uniform(&rng) * 3);
    double y = sy_rng_uniform(&rng) < mean_true[a] ? 1 : 0;
    rows[i] = (sy_ope_row_t){a, 1.0 / 3, y};
    sum[a] += y;
    cnt[a] += 1;
    all += y;
  }
  char err[256];
  sy_ope_opts_t o = opts();
  sy_ope_target_t t;
  sy_ope_result_t r;
  /* always:V under uniform logging: SNIPS is exactly V's mean reward. */
  for (size_t v = 0; v < 3; v++) {
    char spec[32];
    snprintf(spec, sizeof spec, "always:%s", names3[v]);
    CHECK(sy_ope_target_parse(spec, names3, 3, &t, err, sizeof err) == 0);
    CHECK(sy_ope_evaluate(rows, N, &t, &o, &r, err, sizeof err) == 0);
    CHECK(NEAR(r.snips.value, sum[v] / cnt[v]));
    CHECK(NEAR(r.ess, cnt[v]));
    CHECK(r.snips.lo < mean_true[v] && mean_true[v] < r.snips.hi);
    CHECK(r.dr.lo < mean_true[v] && mean_true[v] < r.dr.hi);
    CHECK(r.warnings == 0);
  }
  /* The target equal to the logging policy: every weight is 1, IPS = SNIPS = the logged
   * mean, ESS = n. */
  CHECK(sy_ope_target_parse("uniform", names3, 3, &t, err, sizeof err) == 0);
  CHECK(sy_ope_evaluate(rows, N, &t, &o, &r, err, sizeof err) == 0);
  CHECK(NEAR(r.ips.value, all / N));
  CHECK(NEAR(r.snips.value, all / N));
  CHECK(NEAR(r.logged.value, all / N));
  CHECK(NEAR(r.ips.se, r.logged.se));
  CHECK(NEAR(r.ess, N));
  /* greedy: arm c is best in both halves; its cross-fitted value is then c's SNIPS. */
  CHECK(sy_ope_target_parse("greedy", names3, 3, &t, err, sizeof err) == 0);
  CHECK(sy_ope_evaluate(rows, N, &t, &o, &r, err, sizeof err) == 0);
  CHECK(r.greedy_arm == 2 && r.greedy_fold[0] == 2 && r.greedy_fold[1] == 2);
  CHECK(NEAR(r.snips.value, sum[2] / cnt[2]));
  CHECK((r.warnings & SY_OPE_W_GREEDY_UNSTABLE) == 0);
  t.minimise = 1;
  CHECK(sy_ope_evaluate(rows, N, &t, &o, &r, err, sizeof err) == 0);
  CHECK(r.greedy_arm == 0);
  CHECK(NEAR(r.snips.value, sum[0] / cnt[0]));
}

static void test_warnings(void) {
  char err[256];
  sy_ope_opts_t o = opts();
  sy_ope_target_t t;
  sy_ope_result_t r;
  /* A tiny propensity on a row the target weighs. */
  sy_ope_row_t small[] = {{0, 0.005, 1}, {1, 0.995, 0}, {1, 0.995, 1}};
  CHECK(sy_ope_target_parse("always:a", names2, 2, &t, err, sizeof err) == 0);
  CHECK(sy_ope_evaluate(small, 3, &t, &o, &r, err, sizeof err) == 0);
  CHECK((r.warnings & SY_OPE_W_MIN_PROPENSITY) != 0);
  CHECK(NEAR(r.min_p, 0.005));
  /* ... but not when the target never weighs that row. */
  CHECK(sy_ope_target_parse("always:b", names2, 2, &t, err, sizeof err) == 0);
  CHECK(sy_ope_evaluate(small, 3, &t, &o, &r, err, sizeof err) == 0);
  CHECK((r.warnings & SY_OPE_W_MIN_PROPENSITY) == 0);
  /* Mass on a variant never logged: no support; SNIPS undefined. */
  sy_ope_row_t ab[] = {{0, 0.5, 1}, {1, 0.5, 0}};
  CHECK(sy_ope_target_parse("always:c", names3, 3, &t, err, sizeof err) == 0);
  CHECK(sy_ope_evaluate(ab, 2, &t, &o, &r, err, sizeof err) == 0);
  CHECK((r.warnings & SY_OPE_W_NO_SUPPORT) != 0 && r.nosupport_arm == 2);
  CHECK(isnan(r.snips.value));
  CHECK(NEAR(r.ips.value, 0));
  /* Logged p = 0.5 for two arms, but arm a in 90% of 1000 rows: the weights do not average
   * to 1 (mean w = 0.9 * 2 = 1.8 under always:a). */
  static sy_ope_row_t skew[1000];
  for (size_t i = 0; i < 1000; i++)
    skew[i] = (sy_ope_row_t){i % 10 == 0 ? 1u : 0u, 0.5, (double)(i % 3 == 0)};
  CHECK(sy_ope_target_parse("uniform", names2, 2, &t, err, sizeof err) == 0);
  CHECK(sy_ope_evaluate(skew, 1000, &t, &o, &r, err, sizeof err) == 0);
  CHECK(NEAR(r.mean_w, 1));
  CHECK((r.warnings & SY_OPE_W_WEIGHTS_OFF) == 0);
  CHECK(sy_ope_target_parse("always:a", names2, 2, &t, err, sizeof err) == 0);
  CHECK(sy_ope_evaluate(skew, 1000, &t, &o, &r, err, sizeof err) == 0);
  CHECK(NEAR(r.mean_w, 1.8));
  CHECK((r.warnings & SY_OPE_W_WEIGHTS_OFF) != 0);
  /* greedy whose halves disagree: the even rows favour a, the odd rows b. */
  sy_ope_row_t split[] = {{0, 0.5, 1}, {0, 0.5, 0}, {1, 0.5, 0}, {1, 0.5, 1}};
  CHECK(sy_ope_target_parse("greedy", names2, 2, &t, err, sizeof err) == 0);
  CHECK(sy_ope_evaluate(split, 4, &t, &o, &r, err, sizeof err) == 0);
  CHECK(r.greedy_fold[0] == 1 && r.greedy_fold[1] == 0);
  CHECK((r.warnings & SY_OPE_W_GREEDY_UNSTABLE) != 0);
  /* Even rows judged against b (odd fold's best): weight 2 on row 2 (b, r 0). Odd rows
   * against a: weight 2 on row 1 (a, r 0). IPS = 0: what greedy learned from one half
   * earned nothing on the other. */
  CHECK(NEAR(r.ips.value, 0));
  /* No rows: NaN, few rows, no error. */
  CHECK(sy_ope_evaluate(NULL, 0, &t, &o, &r, err, sizeof err) == 0);
  CHECK(isnan(r.ips.value) && isnan(r.snips.value) && isnan(r.dr.value));
  CHECK((r.warnings & SY_OPE_W_FEW_ROWS) != 0);
  CHECK(strcmp(sy_ope_warning_name(SY_OPE_W_LOW_ESS), "low_ess") == 0);
  CHECK(sy_ope_warning_name(3) == NULL);
  CHECK(sy_ope_warning_text(SY_OPE_W_NO_SUPPORT) != NULL);
}

static void test_errors(void) {
  char err[256];
  sy_ope_target_t t;
  sy_ope_opts_t o = opts();
  sy_ope_result_t r;
  CHECK(sy_ope_target_parse("always:z", names2, 2, &t, err, sizeof err) < 0);
  CHECK(strstr(err, "unknown variant 'z'") != NULL);
  CHECK(sy_ope_target_parse("split:a=0,b=0", names2, 2, &t, err, sizeof err) < 0);
  CHECK(strstr(err, "sum to more than 0") != NULL);
  CHECK(sy_ope_target_parse("split:a=-1,b=2", names2, 2, &t, err, sizeof err) < 0);
  CHECK(strstr(err, ">= 0") != NULL);
  CHECK(sy_ope_target_parse("split:a=1,a=2", names2, 2, &t, err, sizeof err) < 0);
  CHECK(strstr(err, "twice") != NULL);
  CHECK(sy_ope_target_parse("split:x=1", names2, 2, &t, err, sizeof err) < 0);
  CHECK(strstr(err, "unknown variant 'x'") != NULL);
  CHECK(sy_ope_target_parse("split:a", names2, 2, &t, err, sizeof err) < 0);
  CHECK(sy_ope_target_parse("split:a=1x", names2, 2, &t, err, sizeof err) < 0);
  CHECK(sy_ope_target_parse("best", names2, 2, &t, err, sizeof err) < 0);
  CHECK(strstr(err, "unknown policy 'best'") != NULL);
  CHECK(sy_ope_target_parse("split:a=70,b=30", names2, 2, &t, err, sizeof err) == 0);
  CHECK(NEAR(t.pi[0], 0.7) && NEAR(t.pi[1], 0.3) && t.kind == SY_OPE_SPLIT);
  CHECK(sy_ope_target_parse("split:b=5", names3, 3, &t, err, sizeof err) == 0);
  CHECK(NEAR(t.pi[0], 0) && NEAR(t.pi[1], 1) && NEAR(t.pi[2], 0));
  CHECK(sy_ope_target_parse("uniform", names3, 3, &t, err, sizeof err) == 0);
  sy_ope_row_t bad_p[] = {{0, 0, 1}};
  CHECK(sy_ope_evaluate(bad_p, 1, &t, &o, &r, err, sizeof err) < 0);
  CHECK(strstr(err, "propensity") != NULL);
  sy_ope_row_t big_p[] = {{0, 1.5, 1}};
  CHECK(sy_ope_evaluate(big_p, 1, &t, &o, &r, err, sizeof err) < 0);
  sy_ope_row_t nan_r[] = {{0, 0.5, NAN}};
  CHECK(sy_ope_evaluate(nan_r, 1, &t, &o, &r, err, sizeof err) < 0);
  /* A row of an arm outside the target (a retired variant): weight 0, no error. */
  sy_ope_row_t extra[] = {{5, 0.5, 1}, {0, 0.5, 1}};
  CHECK(sy_ope_evaluate(extra, 2, &t, &o, &r, err, sizeof err) == 0);
  CHECK(NEAR(r.sum_w, (1.0 / 3) / 0.5));
}

int main(void) {
  test_hand_always();
  test_hand_dr();
  test_invariants();
  test_warnings();
  test_errors();
  return CHECK_DONE();
}
