/*
 * seqtest.h — the always-valid (anytime) statistics behind the gate (gate.h): normal-mixture
 * confidence sequences and a Dirichlet-multinomial sample-ratio test. Pure numbers: no I/O,
 * no allocation, no state.
 *
 * Confidence sequences. Let est be an estimate built from N observations (for a difference
 * of two arms, N = n_control + n_candidate), se its standard error (sqrt of the estimated
 * variance V) and theta its true value. Robbins' normal mixture over the standardised sum
 * S_N = N (est - theta) / sqrt(N V), with mixing distribution lambda ~ N(0, rho^2), is the
 * nonnegative martingale
 *     M_N = (1 + N rho^2)^(-1/2) exp(rho^2 S_N^2 / (2 (1 + N rho^2))),
 * and Ville's inequality, P(exists N: M_N >= 1/alpha) <= alpha, gives the two-sided sequence
 *     |est - theta| <= sqrt(V N) sqrt(2 (N rho^2 + 1) / (N^2 rho^2) log(sqrt(N rho^2 + 1) / alpha))
 * valid at every N at once, however often it is looked at. With an estimated variance the
 * guarantee is asymptotic: Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2021),
 * "Time-uniform central limit theory and asymptotic confidence sequences", arXiv:2103.06476,
 * Theorem 2.2 — the form GrowthBook uses for its sequential tests. Written in z units, with
 * x = N rho^2, the multiplier of se is
 *     z2(x, alpha) = sqrt( (1 + x)/x * 2 log(sqrt(1 + x) / alpha) ).
 *
 * A one-sided claim (a guardrail is breached; an arm is worse than the leader) takes the
 * half-normal mixture, lambda >= 0 with density 2 phi(lambda/rho)/rho (Howard, Ramdas,
 * McAuliffe & Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences",
 * Ann. Statist. 49(2), sec. 3.5). Integrating gives
 *     M_N = 2 (1 + x)^(-1/2) exp(u^2 / 2) Phi(u),   u = z sqrt(x / (1 + x)),
 * increasing in z, so the one-sided boundary z1(x, alpha) = u* sqrt((1 + x)/x) where u* solves
 * exp(u^2/2) Phi(u) = sqrt(1 + x) / (2 alpha) (Newton's method; the function is convex). It is
 * about z2 at 2 alpha but, unlike that shortcut, its level is exactly alpha.
 *
 * rho sets where the sequence is narrowest. sy_seq_rho(n_star, alpha) =
 *     sqrt( (-2 log alpha + log(-2 log alpha + 1)) / n_star )
 * (the closed-form approximation of the width-minimising rho used with Waudby-Smith et al.'s
 * sequences, and GrowthBook's gbstats) makes the two-sided width smallest near N = n_star:
 * it puts x = N rho^2 at about 7.9 there for alpha = 0.05, where z2 bottoms out at ~3.04.
 *
 * Sample-ratio mismatch: Lindon & Malek (2020), "Anytime-valid inference for multinomial
 * count data" (arXiv:2011.03567). Under H0 the counts x_i of K categories come from a
 * multinomial with shares theta_i; the alternative puts a Dirichlet(C theta) prior on the
 * shares. The Bayes factor
 *     BF = Gamma(C) / Gamma(C + n) prod_i Gamma(C theta_i + x_i) / Gamma(C theta_i)
 *          / prod_i theta_i^(x_i)
 * depends on the counts only (exchangeability), is a nonnegative martingale under H0 in the
 * order requests arrive, and so P(BF ever >= 1/alpha) <= alpha. The Dirichlet mean is theta,
 * so C acts like a prior sample size: the test is most sensitive at about n = 16 C requests
 * for alpha = 0.001 (the normal-mixture analogue has rho^2 = 1/(C + 1)).
 */
#ifndef SY_SEQTEST_H
#define SY_SEQTEST_H

#include <stddef.h>

/*
 * The mixture scale that makes the two-sided sequence at level alpha narrowest near n_star
 * observations (formula above). Returns NaN unless 0 < alpha < 1 and n_star > 0.
 */
double sy_seq_rho(double n_star, double alpha);

/*
 * The two-sided multiplier z2: |est - theta| <= z2 * se holds for all N at once with
 * probability >= 1 - alpha (asymptotically). n is the number of observations behind est,
 * rho > 0, 0 < alpha < 1. Returns +inf when n <= 0 (no information), NaN on bad arguments.
 */
double sy_seq_z2(double n, double rho, double alpha);

/*
 * The one-sided multiplier z1: est - theta <= z1 * se (equally theta >= est - z1 se) holds for
 * all N at once with probability >= 1 - alpha. Arguments as for sy_seq_z2 but
 * 0 < alpha < 0.5. Returns +inf when n <= 0, NaN on bad arguments.
 */
double sy_seq_z1(double n, double rho, double alpha);

/*
 * The natural log of Lindon & Malek's Bayes factor above for counts x[0..k) against shares
 * theta[0..k) (normalised here: only their ratios matter) with prior concentration c > 0.
 * A category with share 0 and count 0 is left out; share 0 with a positive count returns
 * +inf (impossible under H0). Returns NaN if k < 1, c <= 0, or a count or share is negative
 * or not finite, or the shares sum to 0.
 */
double sy_seq_srm_log_bf(const double *x, const double *theta, size_t k, double c);

#endif
