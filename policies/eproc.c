/*
 * eproc.c — the mixture e-process of eproc.h: a log-sum-exp over a fixed grid of bets.
 */
#include "policies/eproc.h"

#include <math.h>

/* Returns l_j = 0.8 x 2^(-j/8) (eproc.h). */
double sy_eproc_lambda(int j) {
  if (j < 0 || j >= SY_EPROC_NLAMBDA)
    return NAN;
  return 0.8 * exp2(-0.125 * j);
}

/* Returns the log of the equal-weight mixture of exp(l s - psi(l) v) (eproc.h). */
double sy_eproc_log_e(double s, double v) {
  if (isnan(s) || isnan(v) || v < 0)
    return NAN;
  double t[SY_EPROC_NLAMBDA], top = -INFINITY;
  for (int j = 0; j < SY_EPROC_NLAMBDA; j++) {
    double l = sy_eproc_lambda(j), psi = -log1p(-l) - l;
    t[j] = l * s - psi * v;
    if (t[j] > top)
      top = t[j];
  }
  if (!isfinite(top))
    return top;
  double sum = 0;
  for (int j = 0; j < SY_EPROC_NLAMBDA; j++)
    sum += exp(t[j] - top);
  return top + log(sum / SY_EPROC_NLAMBDA);
}
