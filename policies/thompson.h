/*
 * thompson.h — Thompson sampling behind the policy interface (policy.h).
 *
 * Two outcome models, both conjugate, both fed sufficient statistics only:
 *   - binary: Beta–Bernoulli. Prior Beta(a0, b0); with n observations and s successes the
 *     posterior is Beta(a0 + s, b0 + n - s). choose() draws with gsl_ran_beta.
 *   - continuous: Normal–inverse-gamma. x ~ N(mu, sigma^2) with mu | sigma^2 ~
 *     N(mu0, sigma^2 / kappa0) and sigma^2 ~ InvGamma(alpha0, beta0). With n, S1 = sum x,
 *     S2 = sum x^2, xbar = S1/n and SS = S2 - S1^2/n:
 *        kappa_n = kappa0 + n            mu_n   = (kappa0 mu0 + S1) / kappa_n
 *        alpha_n = alpha0 + n/2          beta_n = beta0 + SS/2 + kappa0 n (xbar - mu0)^2
 *                                                              / (2 kappa_n)
 *     choose() draws 1/sigma^2 with gsl_ran_gamma and then mu with gsl_ran_gaussian, and
 *     compares the arms on mu. The direction may be minimise (latency, cost).
 *     With log_scale the metric is positive and modelled as log-normal: the caller supplies
 *     n, sum of ln x and sum of (ln x)^2 (the totals of the logs), the posterior above is on
 *     ln x, and arms are compared on the log-normal mean E[x] = exp(mu + sigma^2/2), i.e. on
 *     mu + sigma^2/2 (exp is monotone, so it is never evaluated).
 *
 * Choosing: an active arm is drawn with its cached propensity (below), so the propensity
 * logged with a choice is exactly the probability it was made with (the bandit gate's
 * inverse-propensity tests and sample-ratio check, policies/gate.h, rely on it). That is
 * Thompson sampling up to the Monte Carlo error of the estimate: with probability K*floor
 * (K = active arms) an active arm uniformly, otherwise the argmax of one posterior draw per
 * active arm (or, in top-two mode (Russo 2016), the argmax with probability top_two_beta,
 * else the argmax of fresh draws that differs from it). So every active arm keeps a share of
 * at least `floor`. With propensity_draws = 0 (no estimate) the draws are made directly.
 *
 * Propensities: pi_i = P(arm i is the argmax of one posterior draw) is estimated by Monte
 * Carlo with `propensity_draws` joint draws in update() — only when the totals or the active
 * set changed — from a generator reseeded with `mc_seed` each time, so the estimate is a
 * deterministic function of the state (every router instance with the same totals logs the
 * same propensities). The cached propensity of arm i is then
 *     q_i = pi_i                                            (plain)
 *     q_i = beta pi_i + (1-beta) sum_{j != i} pi_j pi_i / (1 - pi_j)   (top-two)
 *     propensity_i = floor + (1 - K floor) q_i
 * and they sum to 1 over the active arms. Cost of an update: propensity_draws x K posterior
 * draws (about 3 ms for K = 10, 26 ms for K = 100, with 10,000 draws). choose() never
 * recomputes them.
 */
#ifndef SY_THOMPSON_H
#define SY_THOMPSON_H

#include <stddef.h>
#include <stdint.h>

#include <gsl/gsl_rng.h>

#include "policies/policy.h"
#include "policies/rng.h"

typedef enum {
  SY_OUTCOME_BINARY = 0,
  SY_OUTCOME_CONTINUOUS,
} sy_outcome_t;

/* Beta posterior parameters. */
typedef struct sy_beta_post_s {
  double alpha;
  double beta;
} sy_beta_post_t;

/* Normal–inverse-gamma parameters (a prior or a posterior). */
typedef struct sy_nig_s {
  double mu;
  double kappa;
  double alpha;
  double beta;
} sy_nig_t;

typedef struct sy_ts_conf_s {
  sy_outcome_t outcome;
  sy_beta_post_t beta_prior; /* binary prior, both > 0; default Beta(1, 1) */
  sy_nig_t nig_prior;        /* continuous prior, kappa, alpha, beta > 0;
                                default mu 0, kappa 0.01, alpha 1, beta 1 — set it on the
                                metric's scale (or its log's) when you know that scale */
  int minimise;              /* 1: smaller is better (either outcome); default 0 */
  int log_scale;             /* continuous only: totals are of ln x; compare E[x] */
  double floor;              /* each active arm's minimum share, 0 <= floor * K <= 1 */
  int top_two;               /* 1: top-two Thompson sampling */
  double top_two_beta;       /* in (0, 1); default 0.5 */
  unsigned propensity_draws; /* Monte Carlo draws per update; default 10,000. 0 skips the
                                estimate (simulations only): propensities are then NaN */
  uint64_t mc_seed;          /* seed of the Monte Carlo generator; default 1 */
} sy_ts_conf_t;

/* Fills c with the defaults above for the given outcome. */
void sy_ts_conf_default(sy_ts_conf_t *c, sy_outcome_t outcome);

/*
 * Creates a Thompson sampling policy over narms arms (1 <= narms <= SY_POLICY_MAX_ARMS), all
 * active, every arm at its prior (propensities already estimated). The caller owns the result
 * (sy_policy_destroy). Returns NULL if the configuration is invalid (a prior parameter not
 * positive and finite, floor * narms > 1, top_two_beta outside (0, 1)) or memory runs out.
 */
sy_policy_t *sy_policy_thompson_new(const sy_ts_conf_t *c, size_t narms);

/* Beta posterior for prior (a0, b0) and totals s (n, successes). */
sy_beta_post_t sy_beta_posterior(sy_beta_post_t prior, const sy_arm_stats_t *s);

/* Normal–inverse-gamma posterior for prior and totals s (n, sum x, sum x^2), as above.
 * SS is clamped at 0 against rounding. */
sy_nig_t sy_nig_posterior(sy_nig_t prior, const sy_arm_stats_t *s);

/* The cached Monte Carlo estimate of P(arm is the posterior argmax) for a Thompson policy,
 * before floor and top-two are applied; 0 for an inactive arm or a non-Thompson policy. */
double sy_thompson_argmax_prob(const sy_policy_t *p, size_t arm);

/*
 * Makes g a GSL generator that draws from r (xoshiro256**), without allocating: g->state
 * points at r, so g is valid while r is. Lets GSL's distributions use our generator.
 */
void sy_gsl_rng_bind(gsl_rng *g, sy_rng_t *r);

#endif
