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

/* The wide grid (eproc.h). */
double sy_eproc_log_e_split(double s, double v_neg, double v_pos) {
  return sy_eproc_log_e_grid(s, v_neg, v_pos, SY_EPROC_LMAX, SY_EPROC_NLAMBDA);
}

/* Returns the log of the equal-weight mixture of exp(l s - psi(l) v_neg - l^2 v_pos / 2) over
 * l = l_max x 2^(-j/8), j < n (eproc.h). */
double sy_eproc_log_e_grid(double s, double v_neg, double v_pos, double l_max, int n) {
  if (isnan(s) || isnan(v_neg) || isnan(v_pos) || v_neg < 0 || v_pos < 0 || !(l_max > 0) ||
      !(l_max < 1) || n < 1 || n > SY_EPROC_NMAX)
    return NAN;
  double t[SY_EPROC_NMAX], top = -INFINITY;
  for (int j = 0; j < n; j++) {
    double l = l_max * exp2(-0.125 * j), psi = -log1p(-l) - l;
    t[j] = l * s - psi * v_neg - 0.5 * l * l * v_pos;
    if (t[j] > top)
      top = t[j];
  }
  if (!isfinite(top))
    return top;
  double sum = 0;
  for (int j = 0; j < n; j++)
    sum += exp(t[j] - top);
  return top + log(sum / n);
}
