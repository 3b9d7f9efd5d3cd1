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
 * The mixture: l in a fixed grid l_j = l_max x 2^(-j/8), j < n, equal weights: a discretised
 * log-uniform prior on l. Its spacing (1/8 octave) is finer than the peak of l S - psi(l) V
 * (relative width ~ 1/sqrt(2 log(1/a)), ~0.4 octave), so the sum acts as the integral:
 * against the best l in hindsight it costs about log(ln(l_max / l_min)) + 0.5 log(log(1/a) /
 * pi) in log e (Laplace's method on the log-l scale), so each halving of the range saves
 * log 2 of evidence, and a bet off the best by a factor r grows log e at 2r - r^2 of the
 * best rate (r = 2: not at all). Two grids:
 *   - the wide one, 0.8 down to 0.055 (4 octaves, 32 points; sy_eproc_log_e,
 *     sy_eproc_log_e_split): the bandit gate's sample-ratio check, whose increments'
 *     best l is the relative size of a mismatch, anywhere from a few percent up;
 *   - the outcome grid, SY_EPROC_OUTCOME_LMAX 0.4 down to 0.1 (2 octaves, 17 points; gate.h,
 *     bandit mode). For the gate's binary increments the best l is about the relative
 *     difference of the two arms compared (0.17 for 0.12 against 0.10, whatever the floor),
 *     so this grid is tuned to relative differences of 10% to 40%: larger ones are found
 *     with a bet too small (up to 80%: log e grows at >= 3/4 of the best rate, and they are
 *     found fast anyway), a 7% one at 0.8 of the rate, and one of 5% or less never (it would
 *     need ~16 times the requests of a 20% one even at its best bet: beyond bench/gate-sim's
 *     horizon).
 *     Measured, bench/gate-sim bandit ab --reps 1000 --seed 1, 0.12 among 0.10, median
 *     requests to a winner (K = 3 / K = 5): this grid 29,400 / 45,000; the wide grid 34,200
 *     / 49,000; 3 octaves (0.8 to 0.1) 32,900 / 50,000; the best l of the wide grid in
 *     hindsight (not an e-process: what no mixture can beat) 23,600 / 38,200. Issue 15 first
 *     narrowed it from 6.4 octaves (down to 0.0096) to the wide grid: 41,600 -> 38,200.
 *     Narrower still around 0.17 is faster on that benchmark (0.3 to 0.1: 26,800) and is
 *     tuning to it; a bet chosen from the data (predictable plug-in, aGRAPA) would need
 *     state the gate does not keep (gate.h).
 *
 * Split squares. Increments of both signs cost psi(l) x^2 above, but Fan's bound is only
 * needed for the negative ones: for u = l x >= 0, log(1 + u) >= u - u^2/2, so a nonnegative
 * increment may be charged l^2 x^2 / 2 instead. sy_eproc_log_e_split takes the two sums of
 * squares apart (the bandit gate has them: one arm's pseudo-outcomes enter each comparison
 * with a plus sign, the other's with a minus sign). Still a product of factors <= 1 + l x.
 */
#ifndef SY_EPROC_H
#define SY_EPROC_H

#define SY_EPROC_NLAMBDA 32 /* the wide grid: l_j = SY_EPROC_LMAX x 2^(-j/8), j < 32 */
#define SY_EPROC_LMAX 0.8
#define SY_EPROC_OUTCOME_LMAX 0.4 /* the outcome grid: 0.4 x 2^(-j/8), j < 17 (to 0.1) */
#define SY_EPROC_OUTCOME_N 17
#define SY_EPROC_NMAX 64 /* the most points a grid may have */

/*
 * log M_t for the mixture above, from s = sum xi and v = sum xi^2 (v >= 0). Returns NaN if s
 * or v is NaN or v < 0. (Increments below -1 break the guarantee; the caller bounds them.)
 */
double sy_eproc_log_e(double s, double v);

/*
 * The same mixture with the increments' squares split by sign: v_neg = sum of xi^2 over the
 * increments < 0, v_pos over those >= 0. A nonnegative increment is charged l^2/2 instead of
 * psi(l) (log(1 + u) >= u - u^2/2 for u >= 0), so this is never below sy_eproc_log_e(s,
 * v_neg + v_pos), and it is the same supermartingale argument. NaN as above.
 */
double sy_eproc_log_e_split(double s, double v_neg, double v_pos);

/*
 * sy_eproc_log_e_split on the grid l_j = l_max x 2^(-j/8), j < n (the outcome grid:
 * SY_EPROC_OUTCOME_LMAX, SY_EPROC_OUTCOME_N). NaN as above, and when l_max is not in (0, 1)
 * or n not in [1, SY_EPROC_NMAX].
 */
double sy_eproc_log_e_grid(double s, double v_neg, double v_pos, double l_max, int n);

/* The wide grid's l_j, j < SY_EPROC_NLAMBDA (for tests and audits); NaN otherwise. */
double sy_eproc_lambda(int j);

#endif
