/*
 * test_thompson.c — Thompson sampling: closed-form posteriors, Monte Carlo propensities
 * against numerical integration, propensities that sum to 1 and match the observed shares,
 * the exploration floor, top-two sampling, and learning on clear two-arm problems.
 *
 * Random streams are seeded with fixed values; every check is a property with a tolerance
 * about four standard errors wide, never an exact sequence. A cached propensity is a Monte
 * Carlo estimate from 10,000 draws (sd <= 0.005) and an observed share over 100,000 choices
 * has sd <= 0.0016, so shares are compared with propensities to within 0.02; shares whose
 * propensity is exact (the floor) are held to 0.005.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>

#include "policies/policy.h"
#include "policies/rng.h"
#include "policies/thompson.h"
#include "tests/unit/check.h"

#define MAXK 8
#define DRAWS 100000

static int close_rel(double a, double b, double tol) {
  return fabs(a - b) <= tol * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* ---- closed forms ---- */

static void test_beta_closed_form(void) {
  sy_arm_stats_t s = {10, 4, 0};
  sy_beta_post_t b = sy_beta_posterior((sy_beta_post_t){2, 3}, &s);
  CHECK(b.alpha == 6 && b.beta == 9);
  sy_arm_stats_t none = {0, 0, 0};
  b = sy_beta_posterior((sy_beta_post_t){1, 1}, &none);
  CHECK(b.alpha == 1 && b.beta == 1);
  /* Fractional (trust-weighted) counts are just numbers. */
  sy_arm_stats_t w = {2.5, 0.5, 0};
  b = sy_beta_posterior((sy_beta_post_t){1, 1}, &w);
  CHECK(b.alpha == 1.5 && b.beta == 3);
}

/* The textbook one-observation NIG update, applied n times, must equal the batch formula. */
static sy_nig_t nig_one(sy_nig_t q, double x) {
  double k1 = q.kappa + 1;
  return (sy_nig_t){(q.kappa * q.mu + x) / k1, k1, q.alpha + 0.5,
                    q.beta + q.kappa * (x - q.mu) * (x - q.mu) / (2 * k1)};
}

static void test_nig_closed_form(void) {
  /* By hand: prior (0, 1, 1, 1), data {1, 2, 3}: xbar 2, SS 2, kappa 4, mu 1.5, alpha 2.5,
   * beta = 1 + 1 + 1*3*(2-0)^2/(2*4) = 3.5. */
  sy_arm_stats_t s = {3, 6, 14};
  sy_nig_t q = sy_nig_posterior((sy_nig_t){0, 1, 1, 1}, &s);
  CHECK(close_rel(q.mu, 1.5, 1e-12) && close_rel(q.kappa, 4, 1e-12));
  CHECK(close_rel(q.alpha, 2.5, 1e-12) && close_rel(q.beta, 3.5, 1e-12));

  sy_rng_t r;
  gsl_rng g;
  sy_rng_seed(&r, 99);
  sy_gsl_rng_bind(&g, &r);
  sy_nig_t prior = {3, 0.5, 2, 4}, seq = prior;
  sy_arm_stats_t tot = {0, 0, 0};
  for (int i = 0; i < 200; i++) {
    double x = 5 + gsl_ran_gaussian(&g, 2);
    seq = nig_one(seq, x);
    tot.n += 1;
    tot.sum += x;
    tot.sumsq += x * x;
  }
  q = sy_nig_posterior(prior, &tot);
  CHECK_MSG(close_rel(q.mu, seq.mu, 1e-9), "mu %g vs %g", q.mu, seq.mu);
  CHECK_MSG(close_rel(q.kappa, seq.kappa, 1e-9), "kappa %g vs %g", q.kappa, seq.kappa);
  CHECK_MSG(close_rel(q.alpha, seq.alpha, 1e-9), "alpha %g vs %g", q.alpha, seq.alpha);
  CHECK_MSG(close_rel(q.beta, seq.beta, 1e-9), "beta %g vs %g", q.beta, seq.beta);
  sy_arm_stats_t none = {0, 0, 0};
  q = sy_nig_posterior(prior, &none);
  CHECK(q.mu == prior.mu && q.kappa == prior.kappa && q.beta == prior.beta);
}

/* ---- propensities against numerical integration ---- */

typedef struct marg_s {
  int beta; /* 1: Beta(a, b); 0: Student t (nu = a, location m, scale b) */
  double a, b, m;
} marg_t;

static double marg_pdf(const marg_t *d, double x) {
  if (d->beta)
    return gsl_ran_beta_pdf(x, d->a, d->b);
  return gsl_ran_tdist_pdf((x - d->m) / d->b, d->a) / d->b;
}

static double marg_cdf(const marg_t *d, double x) {
  if (d->beta)
    return gsl_cdf_beta_P(x, d->a, d->b);
  return gsl_cdf_tdist_P((x - d->m) / d->b, d->a);
}

/* P(arm i has the largest value) = integral of pdf_i(x) prod_{j != i} cdf_j(x), by Simpson. */
static double p_max(const marg_t *d, size_t k, size_t i, double lo, double hi) {
  const int n = 20000;
  double h = (hi - lo) / n, sum = 0;
  for (int s = 0; s <= n; s++) {
    double x = lo + s * h, f = marg_pdf(&d[i], x);
    for (size_t j = 0; j < k; j++)
      if (j != i)
        f *= marg_cdf(&d[j], x);
    sum += f * (s == 0 || s == n ? 1 : (s % 2 ? 4 : 2));
  }
  return sum * h / 3;
}

static void test_mc_binary(void) {
  sy_ts_conf_t c;
  sy_ts_conf_default(&c, SY_OUTCOME_BINARY);
  sy_policy_t *p = sy_policy_thompson_new(&c, 3);
  sy_arm_stats_t tot[3] = {{12, 4, 0}, {11, 6, 0}, {20, 9, 0}};
  CHECK(sy_policy_update(p, tot) == 0);
  marg_t d[3];
  for (int i = 0; i < 3; i++)
    d[i] = (marg_t){1, 1 + tot[i].sum, 1 + tot[i].n - tot[i].sum, 0};
  for (size_t i = 0; i < 3; i++) {
    double exact = p_max(d, 3, i, 0, 1), mc = sy_thompson_argmax_prob(p, i);
    CHECK_MSG(fabs(mc - exact) < 0.02, "beta arm %zu: mc %.4f exact %.4f", i, mc, exact);
    CHECK(sy_policy_propensity(p, i) == mc); /* no floor, no top-two */
  }
  sy_policy_destroy(p);
}

static void test_mc_continuous(void) {
  sy_ts_conf_t c;
  sy_ts_conf_default(&c, SY_OUTCOME_CONTINUOUS);
  c.nig_prior = (sy_nig_t){0, 0.1, 2, 2};
  c.minimise = 1;
  sy_policy_t *p = sy_policy_thompson_new(&c, 3);
  /* (n, sum x, sum x^2): means about 1.0, 1.2, 0.9 with different spreads. */
  sy_arm_stats_t tot[3] = {{10, 10, 14}, {8, 9.6, 13.5}, {6, 5.4, 9}};
  CHECK(sy_policy_update(p, tot) == 0);
  /* Minimising mu is maximising -mu: the marginal of -mu is t(2 alpha_n, -mu_n, scale). */
  marg_t d[3];
  for (int i = 0; i < 3; i++) {
    sy_nig_t q = sy_nig_posterior(c.nig_prior, &tot[i]);
    d[i] = (marg_t){0, 2 * q.alpha, sqrt(q.beta / (q.alpha * q.kappa)), -q.mu};
  }
  double sum = 0;
  for (size_t i = 0; i < 3; i++) {
    double exact = p_max(d, 3, i, -12, 10), mc = sy_thompson_argmax_prob(p, i);
    sum += exact;
    CHECK_MSG(fabs(mc - exact) < 0.02, "nig arm %zu: mc %.4f exact %.4f", i, mc, exact);
  }
  CHECK_MSG(fabs(sum - 1) < 1e-3, "integrals sum to %.5f", sum); /* the quadrature is sound */
  sy_policy_destroy(p);
}

/* ---- propensities: sum to 1, and match what choose() actually does ---- */

static double prop_sum(const sy_policy_t *p) {
  double s = 0;
  for (size_t i = 0; i < p->narms; i++)
    s += sy_policy_propensity(p, i);
  return s;
}

/* Chooses DRAWS times; checks every choice is active and reports its cached propensity, and
 * that each arm's share is within tol of its propensity. */
static void check_shares(const char *what, const sy_policy_t *p, uint64_t seed, double tol) {
  sy_rng_t rng;
  sy_rng_seed(&rng, seed);
  size_t counts[MAXK] = {0};
  int bad = 0;
  for (int d = 0; d < DRAWS; d++) {
    sy_choice_t ch = sy_policy_choose(p, NULL, &rng);
    bad += ch.arm >= p->narms || !sy_policy_arm_active(p, ch.arm) ||
           ch.propensity != sy_policy_propensity(p, ch.arm);
    if (ch.arm < p->narms)
      counts[ch.arm]++;
  }
  CHECK_MSG(bad == 0, "%s: %d bad choices", what, bad);
  for (size_t i = 0; i < p->narms; i++) {
    double share = (double)counts[i] / DRAWS, want = sy_policy_propensity(p, i);
    CHECK_MSG(fabs(share - want) < tol, "%s: arm %zu share %.4f propensity %.4f", what, i, share,
              want);
  }
}

static const sy_arm_stats_t BIN4[4] = {{40, 10, 0}, {50, 20, 0}, {45, 19, 0}, {30, 8, 0}};

static sy_policy_t *binary_policy(double floor, int top_two, size_t k) {
  sy_ts_conf_t c;
  sy_ts_conf_default(&c, SY_OUTCOME_BINARY);
  c.floor = floor;
  c.top_two = top_two;
  sy_policy_t *p = sy_policy_thompson_new(&c, k);
  if (p != NULL && k == 4)
    sy_policy_update(p, BIN4);
  return p;
}

static void test_sum_and_shares(void) {
  struct {
    const char *what;
    double floor;
    int top_two;
  } cases[] = {{"plain", 0, 0}, {"floor", 0.1, 0}, {"top-two", 0, 1}, {"floor+top-two", 0.05, 1}};
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    sy_policy_t *p = binary_policy(cases[t].floor, cases[t].top_two, 4);
    CHECK(p != NULL);
    CHECK_MSG(fabs(prop_sum(p) - 1) < 1e-9, "%s: sum %.12f", cases[t].what, prop_sum(p));
    check_shares(cases[t].what, p, 1000 + t, 0.02);
    /* An inactive arm: propensity 0, never chosen, the rest still sum to 1. */
    CHECK(sy_policy_set_active(p, 1, 0) == 0);
    CHECK(sy_policy_propensity(p, 1) == 0);
    CHECK(fabs(prop_sum(p) - 1) < 1e-9);
    check_shares(cases[t].what, p, 2000 + t, 0.02);
    sy_policy_destroy(p);
  }
  /* At the prior, arms are exchangeable. */
  sy_policy_t *p = binary_policy(0, 0, 5);
  CHECK(fabs(prop_sum(p) - 1) < 1e-9);
  for (size_t i = 0; i < 5; i++)
    CHECK_MSG(fabs(sy_policy_propensity(p, i) - 0.2) < 0.02, "prior arm %zu %.4f", i,
              sy_policy_propensity(p, i));
  sy_policy_destroy(p);
}

/* The estimate is a function of the state: same totals, same propensities, any history. */
static void test_deterministic_cache(void) {
  sy_policy_t *a = binary_policy(0, 0, 4), *b = binary_policy(0, 0, 4);
  sy_arm_stats_t other[4] = {{5, 1, 0}, {5, 4, 0}, {5, 2, 0}, {5, 3, 0}};
  CHECK(sy_policy_update(b, other) == 0);
  CHECK(sy_policy_update(b, BIN4) == 0);
  sy_rng_t rng;
  sy_rng_seed(&rng, 5);
  for (int i = 0; i < 1000; i++)
    sy_policy_choose(a, NULL, &rng); /* choosing never touches the cache */
  int same = 1;
  for (size_t i = 0; i < 4; i++)
    same &= sy_policy_propensity(a, i) == sy_policy_propensity(b, i);
  CHECK(same);
  sy_policy_destroy(a);
  sy_policy_destroy(b);
}

/* ---- floor and top-two ---- */

static void test_floor(void) {
  /* Arm 2 dominates: without a floor the others would almost never be chosen. */
  sy_arm_stats_t tot[4] = {{2000, 400, 0}, {2000, 800, 0}, {2000, 1600, 0}, {2000, 1000, 0}};
  sy_ts_conf_t c;
  sy_ts_conf_default(&c, SY_OUTCOME_BINARY);
  c.floor = 0.05;
  sy_policy_t *p = sy_policy_thompson_new(&c, 4);
  CHECK(sy_policy_update(p, tot) == 0);
  for (size_t i = 0; i < 4; i++)
    CHECK_MSG(sy_policy_propensity(p, i) >= 0.05 - 1e-12, "arm %zu %.4f", i,
              sy_policy_propensity(p, i));
  CHECK(fabs(sy_policy_propensity(p, 0) - 0.05) < 1e-9); /* pi_0 is 0: exactly the floor */
  CHECK(fabs(sy_policy_propensity(p, 2) - 0.85) < 1e-9);
  check_shares("floor 0.05", p, 77, 0.005);
  /* With one arm inactive the floor still holds for the three left. */
  CHECK(sy_policy_set_active(p, 3, 0) == 0);
  for (size_t i = 0; i < 3; i++)
    CHECK(sy_policy_propensity(p, i) >= 0.05 - 1e-12);
  check_shares("floor 0.05, arm 3 off", p, 78, 0.005);
  sy_policy_destroy(p);
  c.floor = 0.3; /* 4 x 0.3 > 1 */
  CHECK(sy_policy_thompson_new(&c, 4) == NULL);
}

static void test_top_two(void) {
  sy_arm_stats_t tot[3] = {{300, 90, 0}, {300, 120, 0}, {300, 110, 0}};
  sy_ts_conf_t c;
  sy_ts_conf_default(&c, SY_OUTCOME_BINARY);
  c.top_two = 1;
  c.top_two_beta = 0.6;
  sy_policy_t *p = sy_policy_thompson_new(&c, 3);
  CHECK(sy_policy_update(p, tot) == 0);
  double pi[3];
  for (size_t i = 0; i < 3; i++)
    pi[i] = sy_thompson_argmax_prob(p, i);
  for (size_t i = 0; i < 3; i++) {
    double ch = 0;
    for (size_t j = 0; j < 3; j++)
      if (j != i)
        ch += pi[j] * pi[i] / (1 - pi[j]);
    double want = 0.6 * pi[i] + 0.4 * ch;
    CHECK_MSG(fabs(sy_policy_propensity(p, i) - want) < 1e-12, "arm %zu %.6f vs %.6f", i,
              sy_policy_propensity(p, i), want);
  }
  check_shares("top-two beta 0.6", p, 91, 0.02);
  /* Top-two shifts mass from the leader to the challengers. */
  CHECK(sy_policy_propensity(p, 1) < pi[1]);
  sy_policy_destroy(p);

  /* A near-certain leader: plain TS gives it ~all; top-two gives it about beta. */
  sy_arm_stats_t sure[2] = {{5000, 1000, 0}, {5000, 4000, 0}};
  c.top_two_beta = 0.5;
  p = sy_policy_thompson_new(&c, 2);
  CHECK(sy_policy_update(p, sure) == 0);
  CHECK(sy_thompson_argmax_prob(p, 1) == 1);
  CHECK(fabs(sy_policy_propensity(p, 0) - 0.5) < 1e-12);
  check_shares("top-two, certain leader", p, 92, 0.005);
  sy_policy_destroy(p);
}

/* ---- learning ---- */

typedef double (*outcome_fn)(size_t arm, const gsl_rng *g);

static double bern_04_06(size_t arm, const gsl_rng *g) {
  return gsl_rng_uniform(g) < (arm == 1 ? 0.6 : 0.4);
}

static double normal_1_13(size_t arm, const gsl_rng *g) {
  return (arm == 1 ? 1.3 : 1.0) + gsl_ran_gaussian(g, 1.0);
}

/* Latency in ms, log-normal, medians 200 and 300: arm 0 is better when minimising. The
 * policy receives logs. */
static double log_latency(size_t arm, const gsl_rng *g) {
  return log(arm == 0 ? 200 : 300) + gsl_ran_gaussian(g, 0.5);
}

/* Runs 20,000 pulls, updating the totals every 20 pulls; returns how many of the last 1,000
 * pulls went to `best`. */
static int bandit_run(const sy_ts_conf_t *c, outcome_fn f, size_t best, uint64_t seed) {
  sy_policy_t *p = sy_policy_thompson_new(c, 2);
  sy_rng_t rng, env;
  gsl_rng g;
  sy_rng_seed(&rng, seed);
  sy_rng_seed(&env, seed ^ 0xabcdef);
  sy_gsl_rng_bind(&g, &env);
  sy_arm_stats_t tot[2] = {{0, 0, 0}, {0, 0, 0}};
  int good = 0;
  for (int t = 0; t < 20000; t++) {
    sy_choice_t ch = sy_policy_choose(p, NULL, &rng);
    double x = f(ch.arm, &g);
    tot[ch.arm].n += 1;
    tot[ch.arm].sum += x;
    tot[ch.arm].sumsq += x * x;
    if (t % 20 == 19)
      sy_policy_update(p, tot);
    good += t >= 19000 && ch.arm == best;
  }
  sy_policy_destroy(p);
  return good;
}

static void test_learning(void) {
  sy_ts_conf_t bin, cont, lat;
  sy_ts_conf_default(&bin, SY_OUTCOME_BINARY);
  sy_ts_conf_default(&cont, SY_OUTCOME_CONTINUOUS);
  sy_ts_conf_default(&lat, SY_OUTCOME_CONTINUOUS);
  bin.propensity_draws = cont.propensity_draws = lat.propensity_draws = 1000;
  lat.minimise = 1;
  lat.log_scale = 1;
  for (uint64_t seed = 1; seed <= 3; seed++) {
    int g1 = bandit_run(&bin, bern_04_06, 1, seed);
    int g2 = bandit_run(&cont, normal_1_13, 1, seed);
    int g3 = bandit_run(&lat, log_latency, 0, seed);
    CHECK_MSG(g1 >= 950, "binary seed %d: %d/1000 on the better arm", (int)seed, g1);
    CHECK_MSG(g2 >= 950, "normal seed %d: %d/1000 on the better arm", (int)seed, g2);
    CHECK_MSG(g3 >= 950, "log latency seed %d: %d/1000 on the better arm", (int)seed, g3);
  }
}

/* ---- validation ---- */

static void test_rejects(void) {
  sy_ts_conf_t c;
  sy_ts_conf_default(&c, SY_OUTCOME_BINARY);
  sy_policy_t *p = sy_policy_thompson_new(&c, 2);
  CHECK(p != NULL && strcmp(sy_policy_name(p), "thompson") == 0);
  sy_arm_stats_t good[2] = {{10, 3, 0}, {10, 7, 0}};
  sy_arm_stats_t over[2] = {{10, 11, 0}, {10, 7, 0}};
  sy_arm_stats_t neg[2] = {{-1, 0, 0}, {10, 7, 0}};
  sy_arm_stats_t nan_s[2] = {{10, NAN, 0}, {10, 7, 0}};
  CHECK(sy_policy_update(p, good) == 0);
  double before = sy_policy_propensity(p, 1);
  CHECK(sy_policy_update(p, over) == -1);
  CHECK(sy_policy_update(p, neg) == -1);
  CHECK(sy_policy_update(p, nan_s) == -1);
  CHECK(sy_policy_propensity(p, 1) == before && p->stats[0].sum == 3);
  /* Increments add to the totals. */
  sy_arm_stats_t inc[2] = {{5, 5, 0}, {0, 0, 0}};
  CHECK(sy_policy_add(p, inc) == 0);
  CHECK(p->stats[0].n == 15 && p->stats[0].sum == 8 && p->stats[1].n == 10);
  CHECK(sy_policy_observations(p) == 25);
  /* The last active arm stays. */
  CHECK(sy_policy_set_active(p, 0, 0) == 0);
  CHECK(sy_policy_set_active(p, 1, 0) == -1);
  CHECK(sy_policy_propensity(p, 1) == 1);
  CHECK(sy_policy_set_active(p, 2, 0) == -1);
  sy_policy_destroy(p);

  sy_ts_conf_t bad = c;
  bad.beta_prior.alpha = 0;
  CHECK(sy_policy_thompson_new(&bad, 2) == NULL);
  bad = c;
  bad.log_scale = 1; /* binary outcomes have no log */
  CHECK(sy_policy_thompson_new(&bad, 2) == NULL);
  bad = c;
  bad.top_two = 1;
  bad.top_two_beta = 1;
  CHECK(sy_policy_thompson_new(&bad, 2) == NULL);
  CHECK(sy_policy_thompson_new(&c, 0) == NULL);
  CHECK(sy_policy_thompson_new(&c, SY_POLICY_MAX_ARMS + 1) == NULL);
  sy_ts_conf_default(&bad, SY_OUTCOME_CONTINUOUS);
  bad.nig_prior.kappa = -1;
  CHECK(sy_policy_thompson_new(&bad, 2) == NULL);
}

int main(void) {
  test_beta_closed_form();
  test_nig_closed_form();
  test_mc_binary();
  test_mc_continuous();
  test_sum_and_shares();
  test_deterministic_cache();
  test_floor();
  test_top_two();
  test_learning();
  test_rejects();
  return CHECK_DONE();
}
