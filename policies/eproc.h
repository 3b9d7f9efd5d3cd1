/*
 * eproc.h — an e-process for bounded increments, computable from two running sums: the
 * finite-sample test behind the bandit gate (gate.h derives its increments). Pure numbers:
 * no I/O, no allocation, no state.
 *
 * Let xi_1, xi_2, ... be increments with xi_i >= -1 and E[xi_i | everything before i] <= 0
 * (the null). Fan, Grama & Liu (2015, "Exponential inequalities for martingales with
 * applications", Electron. J. Probab. 20, Lemma 4.1) show that for x >= -1 and 0 <= l < 1
 *     exp(l x - psi(l) x^2) <= 1 + l x,    psi(l) = -log(1 - l) - l,
 * so under the null each
 *     M_t(l) = exp(l S_t - psi(l) V_t),    S_t = sum xi_i,  V_t = sum xi_i^2,
 * is a nonnegative supermartingale (E[factor | past] <= 1 + l E[xi | past] <= 1), and so is
 * any fixed mixture of them. This is the constant-bet case of the betting confidence
 * sequences of Waudby-Smith & Ramdas (2023, JRSS-B, "Estimating means of bounded random
 * variables by betting", the bound behind their predictable-plug-in empirical-Bernstein
 * sequence): the wealth of a bettor who stakes l of it on each xi is prod (1 + l xi_i) >=
 * M_t(l). Unlike the wealth itself, M_t(l) depends on the data only through S_t and V_t, so it
 * can be computed from counters that are merely summed (Redis), at any look, by anyone.
 * Ville's inequality: P(exists t: M_t >= 1/a) <= a, for every sample size at once, with no
 * CLT, whatever the dependence between the xi beyond the null.
 *
 * The mixture: l in a fixed grid l_j = 0.8 x 2^(-j/8), j = 0..51 (0.8 down to 0.0096),
 * equal weights: a discretised log-uniform prior on l. The grid covers every scale an
 * increment normalised by its range has here (the best l is about sqrt(2 log(1/a) / V), and V
 * runs from ~10 to ~50,000 in bench/gate-sim's grid). Its spacing (1/8 octave) is finer than
 * the peak of l S - psi(l) V (relative width ~ 1/sqrt(2 log(1/a)), ~0.4 octave), so the sum
 * acts as the integral: against the best l in hindsight it costs about
 * log(sqrt(2 log(1/a)) x ln(0.8 / 0.0096) / sqrt(2 pi)) ~ 1.8 in log e, where an equal
 * mixture of 14 half-octave points cost log 14 = 2.6 (bench/gate-sim: 10% fewer requests to
 * a winner).
 */
#ifndef SY_EPROC_H
#define SY_EPROC_H

#define SY_EPROC_NLAMBDA 52

/*
 * log M_t for the mixture above, from s = sum xi and v = sum xi^2 (v >= 0). Returns NaN if s
 * or v is NaN or v < 0. (Increments below -1 break the guarantee; the caller bounds them.)
 */
double sy_eproc_log_e(double s, double v);

/* The mixture's l_j, j < SY_EPROC_NLAMBDA (for tests and audits); NaN otherwise. */
double sy_eproc_lambda(int j);

#endif
