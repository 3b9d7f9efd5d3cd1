/*
 * seqtest.c — normal-mixture boundaries and the Dirichlet-multinomial SRM Bayes factor
 * (formulas and sources in seqtest.h).
 *
 * Everything here is a closed form except the one-sided boundary, which solves
 * u^2/2 + log Phi(u) = c by Newton's method. That function of u is convex (its second
 * derivative is 1 + d/du [phi(u)/Phi(u)] > 0, because the inverse Mills ratio's slope is
 * above -1), so Newton started to the right of the root descends to it monotonically and
 * never overshoots; a handful of steps reach double precision.
 */
#include "policies/seqtest.h"

#include <math.h>

/* Phi(u) and log Phi(u) for the standard normal, accurate in both tails via erfc. */
static double norm_cdf(double u) {
  return 0.5 * erfc(-u / M_SQRT2);
}

static int bad_alpha(double alpha, double max) {
  return !(alpha > 0 && alpha < max);
}

/* Returns rho for the width minimum near n_star (seqtest.h). */
double sy_seq_rho(double n_star, double alpha) {
  if (!(n_star > 0) || !isfinite(n_star) || bad_alpha(alpha, 1))
    return NAN;
  double l = -2 * log(alpha);
  return sqrt((l + log(l + 1)) / n_star);
}

/* Returns the two-sided z multiplier (seqtest.h). */
double sy_seq_z2(double n, double rho, double alpha) {
  if (isnan(n) || !(rho > 0) || !isfinite(rho) || bad_alpha(alpha, 1))
    return NAN;
  if (!(n > 0))
    return INFINITY;
  double x = n * rho * rho;
  return sqrt((1 + x) / x * 2 * log(sqrt(1 + x) / alpha));
}

/* Returns the one-sided z multiplier (seqtest.h). */
double sy_seq_z1(double n, double rho, double alpha) {
  if (isnan(n) || !(rho > 0) || !isfinite(rho) || bad_alpha(alpha, 0.5))
    return NAN;
  if (!(n > 0))
    return INFINITY;
  double x = n * rho * rho;
  /* Solve h(u) = u^2/2 + log Phi(u) - c = 0 with c = log(sqrt(1+x) / (2 alpha)) > 0 (alpha <
   * 0.5). Since log Phi(u) is in (log 1/2, 0) for u > 0, the root lies in
   * [sqrt(2c), sqrt(2 (c + log 2))]: start at the right end. */
  double c = 0.5 * log1p(x) - log(2 * alpha);
  double u = sqrt(2 * (c + M_LN2));
  for (int i = 0; i < 50; i++) {
    double cdf = norm_cdf(u);
    double h = 0.5 * u * u + log(cdf) - c;
    double dh = u + exp(-0.5 * u * u) / sqrt(2 * M_PI) / cdf;
    double step = h / dh;
    u -= step;
    if (fabs(step) <= 1e-13 * u)
      break;
  }
  return u * sqrt((1 + x) / x);
}

/* Returns the log Bayes factor of the Dirichlet-multinomial SRM test (seqtest.h). */
double sy_seq_srm_log_bf(const double *x, const double *theta, size_t k, double c) {
  if (k < 1 || !(c > 0) || !isfinite(c))
    return NAN;
  double tsum = 0;
  for (size_t i = 0; i < k; i++) {
    if (!(x[i] >= 0) || !isfinite(x[i]) || !(theta[i] >= 0) || !isfinite(theta[i]))
      return NAN;
    tsum += theta[i];
  }
  if (!(tsum > 0))
    return NAN;
  double n = 0, lbf = 0;
  for (size_t i = 0; i < k; i++) {
    double th = theta[i] / tsum;
    if (th == 0) {
      if (x[i] > 0)
        return INFINITY;
      continue;
    }
    double a = c * th;
    n += x[i];
    lbf += lgamma(a + x[i]) - lgamma(a) - x[i] * log(th);
  }
  /* Categories left out had share 0, so the remaining prior mass is still c. */
  return lbf + lgamma(c) - lgamma(c + n);
}
