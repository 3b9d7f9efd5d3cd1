/*
 * gate_fixture.h — what test_gate.c and test_gate_bandit.c share: a tolerance
 * compare, a binary arm, the default gate parameters. Static: each test program
 * includes it once.
 */
#ifndef SY_GATE_FIXTURE_H
#define SY_GATE_FIXTURE_H

#include <math.h>
#include <string.h>

#include "policies/gate.h"
#include "proto/latency.h"

#define SY_FIXTURE_UNUSED __attribute__((unused))

SY_FIXTURE_UNUSED static int near(double a, double b, double rel) {
  return fabs(a - b) <= rel * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* An arm with n outcomes and s successes, weights 1 (a fixed 50/50 split). */
SY_FIXTURE_UNUSED static sy_gate_arm_t binary_arm(double n, double s) {
  sy_gate_arm_t a;
  memset(&a, 0, sizeof a);
  a.n = a.sw = a.sw2 = n;
  a.swy = a.sw2y = a.sw2y2 = s;
  a.requests = n;
  a.expected_share = 0.5;
  return a;
}

SY_FIXTURE_UNUSED static sy_gate_params_t defaults(void) {
  sy_gate_params_t p;
  sy_gate_params_default(&p);
  return p;
}


SY_FIXTURE_UNUSED static double norm_cdf(double u) { return 0.5 * erfc(-u / M_SQRT2); }

typedef double (*survival_fn)(double x, double a, double b);

SY_FIXTURE_UNUSED static double lognormal_s(double x, double median, double sigma) {
  return 1 - norm_cdf(log(x / median) / sigma);
}

/* Expected counts of `total` requests with survival S in each latency bucket. */
SY_FIXTURE_UNUSED static void fill_hist(double *h, survival_fn s, double a, double b,
                                        double total) {
  double prev = 1;
  for (size_t i = 0; i < SY_LAT_BUCKETS; i++) {
    double cur = i + 1 < SY_LAT_BUCKETS ? s(sy_lat_bounds[i], a, b) : 0;
    h[i] = total * (prev - cur);
    prev = cur;
  }
}

#endif
