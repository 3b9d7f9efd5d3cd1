/*
 * test_summary.c — stats/summary.c: outcome intervals, P(best) and parsing of the
 * per-variant hash. (Latency quantiles are policies/lathist.h's: test_gate.c.)
 */
#include <math.h>
#include <string.h>

#include "stats/summary.h"
#include "tests/unit/check.h"

static int near(double a, double b, double tol) {
  return fabs(a - b) <= tol;
}

static void test_binary_interval(void) {
  sy_varstats_t v = {0};
  v.n = 0;
  sy_interval_t r = sy_outcome_interval(&v, 0);
  CHECK(near(r.mean, 0.5, 1e-12) && near(r.lo, 0.025, 1e-9) && near(r.hi, 0.975, 1e-9));

  double prev_width = 2;
  for (double n = 10; n <= 100000; n *= 10) {
    v.n = n;
    v.sum = 0.3 * n;
    r = sy_outcome_interval(&v, 0);
    CHECK_MSG(r.lo < 0.3 && 0.3 < r.hi, "n=%g [%g, %g]", n, r.lo, r.hi);
    CHECK_MSG(r.hi - r.lo < prev_width, "n=%g width %g !< %g", n, r.hi - r.lo, prev_width);
    CHECK(near(r.mean, (1 + 0.3 * n) / (2 + n), 1e-12));
    prev_width = r.hi - r.lo;
  }
  CHECK(prev_width < 0.01);

  v.n = 11.5; /* weighted, fractional */
  v.sum = 4.25;
  r = sy_outcome_interval(&v, 0);
  CHECK(near(r.mean, 5.25 / 13.5, 1e-12) && r.lo < r.mean && r.mean < r.hi);

  v.n = 10; /* sum beyond n (rounding in Redis) is clamped */
  v.sum = 10.000001;
  r = sy_outcome_interval(&v, 0);
  CHECK(near(r.mean, 11.0 / 12.0, 1e-12) && r.hi <= 1);
}

static void test_continuous_interval(void) {
  /* 2 4 4 4 5 5 7 9: mean 5, s^2 = 32/7, t(0.975, 7) = 2.364624252 */
  sy_varstats_t v = {0};
  v.n = 8;
  v.sum = 40;
  v.sumsq = 232;
  sy_interval_t r = sy_outcome_interval(&v, 1);
  double half = 2.364624252 * sqrt(32.0 / 7.0 / 8.0);
  CHECK(near(r.mean, 5, 1e-12));
  CHECK_MSG(near(r.lo, 5 - half, 1e-6) && near(r.hi, 5 + half, 1e-6), "[%.9g, %.9g] vs ±%.9g",
            r.lo, r.hi, half);

  v.n = 1;
  v.sum = 3;
  v.sumsq = 9;
  r = sy_outcome_interval(&v, 1);
  CHECK(near(r.mean, 3, 1e-12) && isnan(r.lo) && isnan(r.hi));

  v.n = 0;
  v.sum = 0;
  v.sumsq = 0;
  r = sy_outcome_interval(&v, 1);
  CHECK(isnan(r.mean) && isnan(r.lo) && isnan(r.hi));
}

static double sum_of(const double *p, size_t k) {
  double s = 0;
  for (size_t i = 0; i < k; i++)
    s += p[i];
  return s;
}

static void set_obs(sy_varstats_t *v, double n, double mean, double sd) {
  v->n = n;
  v->sum = n * mean;
  v->sumsq = (n - 1) * sd * sd + n * mean * mean;
}

static void test_prob_best_binary(void) {
  sy_varstats_t v[3];
  memset(v, 0, sizeof(v));
  double p[3];
  v[0].n = 1000;
  v[0].sum = 600;
  v[1].n = 1000;
  v[1].sum = 400;
  sy_prob_best(v, 2, 0, 0, 20000, 1, p);
  CHECK(near(sum_of(p, 2), 1, 1e-9));
  CHECK_MSG(p[0] > 0.99, "p = %g %g", p[0], p[1]);
  sy_prob_best(v, 2, 0, 1, 20000, 1, p); /* minimise: the low rate wins */
  CHECK_MSG(p[1] > 0.99, "p = %g %g", p[0], p[1]);

  for (int i = 0; i < 3; i++) {
    v[i].n = 100;
    v[i].sum = 50;
  }
  sy_prob_best(v, 3, 0, 0, 20000, 7, p);
  CHECK(near(sum_of(p, 3), 1, 1e-9));
  for (int i = 0; i < 3; i++)
    CHECK_MSG(near(p[i], 1.0 / 3, 0.03), "p[%d] = %g", i, p[i]);

  double q[3];
  sy_prob_best(v, 3, 0, 0, 20000, 7, q); /* fixed seed: same answer */
  CHECK(memcmp(p, q, sizeof(p)) == 0);

  sy_prob_best(v, 1, 0, 0, 100, 1, p);
  CHECK(p[0] == 1);
  sy_prob_best(v, 2, 0, 0, 0, 1, p);
  CHECK(isnan(p[0]) && isnan(p[1]));
}

static void test_prob_best_continuous(void) {
  sy_varstats_t v[4];
  memset(v, 0, sizeof(v));
  double p[4];
  set_obs(&v[0], 200, 10.0, 2.0);
  set_obs(&v[1], 200, 11.0, 2.0);
  sy_prob_best(v, 2, 1, 0, 20000, 3, p);
  CHECK(near(sum_of(p, 2), 1, 1e-9));
  CHECK_MSG(p[1] > 0.99, "p = %g %g", p[0], p[1]);
  sy_prob_best(v, 2, 1, 1, 20000, 3, p);
  CHECK_MSG(p[0] > 0.99, "p = %g %g", p[0], p[1]);

  for (int i = 0; i < 4; i++)
    set_obs(&v[i], 50, 3.0, 1.0);
  sy_prob_best(v, 4, 1, 0, 20000, 3, p);
  CHECK(near(sum_of(p, 4), 1, 1e-9));
  for (int i = 0; i < 4; i++)
    CHECK_MSG(near(p[i], 0.25, 0.03), "p[%d] = %g", i, p[i]);

  /* no data on one arm: the vague fallback keeps it away from 0 and 1 */
  memset(&v[1], 0, sizeof(v[1]));
  sy_prob_best(v, 2, 1, 0, 20000, 3, p);
  CHECK(near(sum_of(p, 2), 1, 1e-9));
  CHECK_MSG(p[1] > 0.2 && p[1] < 0.8, "p = %g %g", p[0], p[1]);

  /* zero variance, equal means: every draw ties, the credit is split */
  v[0].n = v[1].n = 5;
  v[0].sum = v[1].sum = 10;
  v[0].sumsq = v[1].sumsq = 20;
  sy_prob_best(v, 2, 1, 0, 1000, 3, p);
  CHECK(near(p[0], 0.5, 1e-12) && near(p[1], 0.5, 1e-12));
}

static void test_from_hash(void) {
  const char *f[] = {"requests", "errors", "n",          "sum",       "sumsq",      "outcomes",
                     "lat:1",    "lat:5",  "lat:60000",  "lat:inf",   "lat_ms_sum", "tokens_in",
                     "tokens_out", "missing_failures", "fb:thumbs:n", "lat:3", "bogus", "errors"};
  const char *val[] = {"12", "2",   "11.5", "4.25", "x1",   "9", "3",   "4", "1",
                       "2",  "812", "100",  "250",  "1.5",  "7", "5",   "1", "nan"};
  sy_varstats_t v;
  memset(&v, 0x7f, sizeof(v)); /* garbage that must be reset */
  strcpy(v.id, "b");
  sy_varstats_from_hash(&v, f, val, sizeof(f) / sizeof(f[0]));
  CHECK(strcmp(v.id, "b") == 0);
  CHECK(v.requests == 12 && v.errors == 2 && v.n == 11.5 && v.sum == 4.25);
  CHECK(v.sumsq == 0); /* "x1" is not a number */
  CHECK(v.outcomes == 9 && v.missing_failures == 1.5);
  CHECK(v.lat[0] == 3 && v.lat[2] == 4 && v.lat[14] == 1 && v.lat[15] == 2);
  CHECK(v.lat[1] == 0 && v.lat[3] == 0); /* "lat:3" is no bound */
  CHECK(v.lat_ms_sum == 812 && v.tokens_in == 100 && v.tokens_out == 250);
  CHECK(v.share == -1);
  CHECK(strcmp(sy_lat_fields[14], "lat:60000") == 0 && strcmp(sy_lat_fields[15], "lat:inf") == 0);
}

int main(void) {
  test_binary_interval();
  test_continuous_interval();
  test_prob_best_binary();
  test_prob_best_continuous();
  test_from_hash();
  return CHECK_DONE();
}
