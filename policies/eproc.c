/*
 * eproc.c — the mixture e-process of eproc.h: a log-sum-exp over a fixed grid of bets.
 */
#include "policies/eproc.h"

#include <math.h>

/* Returns l_j = SY_EPROC_LMAX x 2^(-j/8) (eproc.h). */
double sy_eproc_lambda(int j) {
  if (j < 0 || j >= SY_EPROC_NLAMBDA)
    return NAN;
  return SY_EPROC_LMAX * exp2(-0.125 * j);
}

/* Returns the log of the equal-weight mixture of exp(l s - psi(l) v) (eproc.h). */
double sy_eproc_log_e(double s, double v) {
  return sy_eproc_log_e_split(s, v, 0);
}

/* Returns the log of the equal-weight mixture of exp(l s - psi(l) v_neg - l^2 v_pos / 2)
 * (eproc.h). */
double sy_eproc_log_e_split(double s, double v_neg, double v_pos) {
  if (isnan(s) || isnan(v_neg) || isnan(v_pos) || v_neg < 0 || v_pos < 0)
    return NAN;
  double t[SY_EPROC_NLAMBDA], top = -INFINITY;
  for (int j = 0; j < SY_EPROC_NLAMBDA; j++) {
    double l = sy_eproc_lambda(j), psi = -log1p(-l) - l;
    t[j] = l * s - psi * v_neg - 0.5 * l * l * v_pos;
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
