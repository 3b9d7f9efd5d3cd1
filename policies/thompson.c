/*
 * thompson.c — Thompson sampling (Beta–Bernoulli and Normal–inverse-gamma) with an
 * exploration floor, optional top-two sampling, and Monte Carlo propensities.
 *
 * update() turns the totals into posterior parameters once, in the form the samplers want
 * (gamma shape and scale, 1/sqrt(kappa)), estimates each arm's probability of being the
 * argmax and caches the resulting propensities; choose() only draws. GSL's samplers take a
 * gsl_rng; sy_gsl_rng_bind wraps the caller's xoshiro256** state in one on the stack, so
 * choosing allocates nothing and all randomness stays in the caller's generator.
 */
#include "policies/thompson.h"

#include <math.h>
#include <stdlib.h>

#include <gsl/gsl_randist.h>

/* Fresh joint draws tried for a top-two challenger before falling back to the cached pi. */
#define TOP_TWO_TRIES 8

/* One arm's posterior, ready to sample. */
typedef struct ts_arm_s {
  double shape; /* Beta: alpha. NIG: alpha_n, the precision's gamma shape */
  double scale; /* Beta: beta.  NIG: 1/beta_n, the precision's gamma scale */
  double mu;    /* NIG: mu_n */
  double sd1;   /* NIG: 1/sqrt(kappa_n): sd of mu per unit sigma */
} ts_arm_t;

typedef struct ts_policy_s {
  sy_policy_t base;
  sy_ts_conf_t conf;
  double sign;       /* +1 maximise, -1 minimise */
  double floor_mass; /* nactive * floor: the uniform share of the mixture */
  size_t *act;       /* indices of the active arms, base.nactive of them */
  ts_arm_t *post;    /* narms posteriors */
  double *win;       /* narms: P(argmax), estimated; 0 for inactive arms */
} ts_policy_t;

/* ---- GSL adapter ---- */

static void gsl_sy_set(void *state, unsigned long seed) {
  sy_rng_seed(state, seed);
}

static unsigned long gsl_sy_get(void *state) {
  return (unsigned long)(sy_rng_next(state) >> 32);
}

static double gsl_sy_get_double(void *state) {
  return sy_rng_uniform(state);
}

static const gsl_rng_type gsl_sy_type = {
    .name = "sy_xoshiro256starstar",
    .max = 0xffffffffUL, /* get() returns the top 32 bits of a 64-bit output */
    .min = 0,
    .size = sizeof(sy_rng_t),
    .set = gsl_sy_set,
    .get = gsl_sy_get,
    .get_double = gsl_sy_get_double,
};

/* Points g at r through the adapter type (thompson.h). */
void sy_gsl_rng_bind(gsl_rng *g, sy_rng_t *r) {
  g->type = &gsl_sy_type;
  g->state = r;
}

/* ---- posteriors ---- */

/* Returns Beta(a0 + s, b0 + n - s) (thompson.h). */
sy_beta_post_t sy_beta_posterior(sy_beta_post_t prior, const sy_arm_stats_t *s) {
  return (sy_beta_post_t){prior.alpha + s->sum, prior.beta + s->n - s->sum};
}

/* Returns the conjugate NIG update of prior by (n, S1, S2) (thompson.h). */
sy_nig_t sy_nig_posterior(sy_nig_t prior, const sy_arm_stats_t *s) {
  if (!(s->n > 0))
    return prior;
  double xbar = s->sum / s->n;
  double ss = s->sumsq - s->sum * xbar; /* sum (x - xbar)^2; rounding can make it < 0 */
  if (ss < 0)
    ss = 0;
  double kn = prior.kappa + s->n;
  double d = xbar - prior.mu;
  return (sy_nig_t){(prior.kappa * prior.mu + s->sum) / kn, kn, prior.alpha + s->n / 2,
                    prior.beta + ss / 2 + prior.kappa * s->n * d * d / (2 * kn)};
}

/* Recomputes the sampler parameters of every arm from the stored totals. */
static void refresh_posteriors(ts_policy_t *p) {
  for (size_t i = 0; i < p->base.narms; i++) {
    ts_arm_t *a = &p->post[i];
    if (p->conf.outcome == SY_OUTCOME_BINARY) {
      sy_beta_post_t b = sy_beta_posterior(p->conf.beta_prior, &p->base.stats[i]);
      *a = (ts_arm_t){b.alpha, b.beta, 0, 0};
    } else {
      sy_nig_t q = sy_nig_posterior(p->conf.nig_prior, &p->base.stats[i]);
      *a = (ts_arm_t){q.alpha, 1 / q.beta, q.mu, 1 / sqrt(q.kappa)};
    }
  }
}

/* ---- sampling ---- */

/* One posterior draw of arm i's value, signed so that larger is better. */
static double draw_value(const ts_policy_t *p, size_t i, const gsl_rng *g) {
  const ts_arm_t *a = &p->post[i];
  if (p->conf.outcome == SY_OUTCOME_BINARY)
    return p->sign * gsl_ran_beta(g, a->shape, a->scale);
  double var = 1 / gsl_ran_gamma(g, a->shape, a->scale);
  double mu = a->mu + gsl_ran_gaussian(g, sqrt(var) * a->sd1);
  return p->sign * (p->conf.log_scale ? mu + 0.5 * var : mu);
}

/* One joint draw over the active arms; returns the arm with the best value. */
static size_t draw_argmax(const ts_policy_t *p, const gsl_rng *g) {
  size_t best = p->act[0];
  double best_v = -INFINITY;
  for (size_t k = 0; k < p->base.nactive; k++) {
    size_t i = p->act[k];
    double v = draw_value(p, i, g);
    if (v > best_v) {
      best = i;
      best_v = v;
    }
  }
  return best;
}

/* A uniformly random active arm other than `skip` (skip may be none: narms). */
static size_t uniform_other(const ts_policy_t *p, size_t skip, sy_rng_t *rng) {
  size_t n = p->base.nactive - (skip < p->base.narms);
  size_t k = (size_t)(sy_rng_uniform(rng) * (double)n);
  for (size_t m = 0; m < p->base.nactive; m++) {
    size_t i = p->act[m];
    if (i != skip && k-- == 0)
      return i;
  }
  return p->act[0]; /* not reached: k < n */
}

/*
 * A top-two challenger drawn from the cached pi conditioned on "not `first`": what fresh
 * draws converge to, used when TOP_TWO_TRIES draws all returned `first` again. If pi puts no
 * mass outside `first`, the challenger is uniform (as the propensity formula assumes).
 */
static size_t cached_challenger(const ts_policy_t *p, size_t first, sy_rng_t *rng) {
  double mass = 0;
  for (size_t k = 0; k < p->base.nactive; k++)
    mass += p->act[k] == first ? 0 : p->win[p->act[k]];
  if (!(mass > 0))
    return uniform_other(p, first, rng);
  double u = sy_rng_uniform(rng) * mass, cum = 0;
  size_t last = first;
  for (size_t k = 0; k < p->base.nactive; k++) {
    size_t j = p->act[k];
    if (j == first || !(p->win[j] > 0))
      continue;
    cum += p->win[j];
    last = j;
    if (u < cum)
      return j;
  }
  return last; /* rounding only */
}

/* Top-two Thompson sampling (Russo 2016): the leader with probability beta, else a
 * challenger, the argmax of fresh draws that is not the leader. */
static size_t top_two_choose(const ts_policy_t *p, const gsl_rng *g, sy_rng_t *rng) {
  size_t first = draw_argmax(p, g);
  if (sy_rng_uniform(rng) < p->conf.top_two_beta)
    return first;
  for (int t = 0; t < TOP_TWO_TRIES; t++) {
    size_t j = draw_argmax(p, g);
    if (j != first)
      return j;
  }
  return cached_challenger(p, first, rng);
}

/* An active arm drawn with probability prop[i] (inverse CDF; rounding falls on the last). */
static size_t draw_cached(const ts_policy_t *p, sy_rng_t *rng) {
  double u = sy_rng_uniform(rng), cum = 0;
  size_t last = p->act[0];
  for (size_t k = 0; k < p->base.nactive; k++) {
    last = p->act[k];
    cum += p->base.prop[last];
    if (u < cum)
      break;
  }
  return last;
}

/* With cached propensities the arm is drawn from them, so that the propensity logged is the
 * probability the arm was chosen with, exactly: the bandit gate's inverse-propensity tests
 * and its sample-ratio check (policies/gate.h) assume it. Drawing fresh posterior samples
 * instead would choose with the true pi, which the Monte Carlo estimate misses by up to
 * ~0.005 (10,000 draws), persistently (it is a function of the state): enough to bias the
 * weights by a few percent and, over 10^5 requests, to fail an exact sample-ratio check. */
static sy_choice_t ts_choose(const sy_policy_t *bp, const sy_policy_ctx_t *ctx, sy_rng_t *rng) {
  const ts_policy_t *p = (const ts_policy_t *)bp;
  size_t arm;
  if (bp->nactive > 1 && p->conf.propensity_draws > 0) {
    arm = draw_cached(p, rng);
  } else if (bp->nactive == 1) {
    arm = p->act[0];
  } else if (p->floor_mass > 0 && sy_rng_uniform(rng) < p->floor_mass) {
    arm = uniform_other(p, bp->narms, rng);
  } else {
    gsl_rng g;
    sy_gsl_rng_bind(&g, rng);
    arm = p->conf.top_two ? top_two_choose(p, &g, rng) : draw_argmax(p, &g);
  }
  return (sy_choice_t){arm, bp->prop[arm]};
}

/* ---- propensities ---- */

/* Estimates win[i] = P(i is the argmax) from propensity_draws joint draws. The generator is
 * reseeded every time, so the estimate depends on the state alone. */
static void estimate_win(ts_policy_t *p) {
  size_t n = p->base.narms;
  for (size_t i = 0; i < n; i++)
    p->win[i] = 0;
  if (p->base.nactive == 1) {
    p->win[p->act[0]] = 1;
    return;
  }
  if (p->conf.propensity_draws == 0) {
    for (size_t k = 0; k < p->base.nactive; k++)
      p->win[p->act[k]] = NAN;
    return;
  }
  sy_rng_t r;
  gsl_rng g;
  sy_rng_seed(&r, p->conf.mc_seed);
  sy_gsl_rng_bind(&g, &r);
  for (unsigned d = 0; d < p->conf.propensity_draws; d++)
    p->win[draw_argmax(p, &g)] += 1;
  for (size_t i = 0; i < n; i++)
    p->win[i] /= p->conf.propensity_draws;
}

/* The top-two choice probability of active arm i given pi (thompson.h). A leader j with
 * pi_j = 1 leaves the challenger uniform over the other active arms. */
static double top_two_prob(const ts_policy_t *p, size_t i) {
  size_t n = p->base.nactive;
  if (n == 1)
    return 1;
  double challenger = 0;
  for (size_t k = 0; k < n; k++) {
    size_t j = p->act[k];
    if (j == i)
      continue;
    challenger += p->win[j] >= 1 ? 1.0 / (double)(n - 1) : p->win[j] * p->win[i] / (1 - p->win[j]);
  }
  return p->conf.top_two_beta * p->win[i] + (1 - p->conf.top_two_beta) * challenger;
}

/* Rebuilds everything derived from the stored state: active list, posteriors, win, prop. */
static void refresh(ts_policy_t *p) {
  sy_policy_t *b = &p->base;
  size_t k = 0;
  for (size_t i = 0; i < b->narms; i++)
    if (b->active[i])
      p->act[k++] = i;
  p->floor_mass = fmin(1.0, p->conf.floor * (double)b->nactive);
  refresh_posteriors(p);
  estimate_win(p);
  for (size_t i = 0; i < b->narms; i++) {
    double q = p->conf.top_two ? top_two_prob(p, i) : p->win[i];
    b->prop[i] = b->active[i] ? p->conf.floor + (1 - p->floor_mass) * q : 0.0;
  }
}

static int ts_update(sy_policy_t *bp, const sy_arm_stats_t *totals, const unsigned char *active) {
  ts_policy_t *p = (ts_policy_t *)bp;
  int changed = sy__policy_store(bp, totals, active, p->conf.outcome == SY_OUTCOME_BINARY);
  if (changed < 0)
    return -1;
  if (changed)
    refresh(p);
  return 0;
}

static void ts_destroy(sy_policy_t *bp) {
  ts_policy_t *p = (ts_policy_t *)bp;
  free(p->act);
  free(p->post);
  free(p->win);
  sy__policy_free(bp);
}

static const sy_policy_vtable_t ts_vtable = {
    .name = "thompson", .choose = ts_choose, .update = ts_update, .destroy = ts_destroy};

/* ---- construction ---- */

/* Fills c with the documented defaults (thompson.h). */
void sy_ts_conf_default(sy_ts_conf_t *c, sy_outcome_t outcome) {
  *c = (sy_ts_conf_t){
      .outcome = outcome,
      .beta_prior = {1, 1},
      .nig_prior = {0, 0.01, 1, 1},
      .top_two_beta = 0.5,
      .propensity_draws = 10000,
      .mc_seed = 1,
  };
}

static int positive(double x) {
  return isfinite(x) && x > 0;
}

/* 1 if c is usable for narms arms. */
static int valid_conf(const sy_ts_conf_t *c, size_t narms) {
  if (c->outcome == SY_OUTCOME_BINARY) {
    if (!positive(c->beta_prior.alpha) || !positive(c->beta_prior.beta) || c->log_scale)
      return 0;
  } else if (c->outcome == SY_OUTCOME_CONTINUOUS) {
    const sy_nig_t *q = &c->nig_prior;
    if (!isfinite(q->mu) || !positive(q->kappa) || !positive(q->alpha) || !positive(q->beta))
      return 0;
  } else {
    return 0;
  }
  if (!isfinite(c->floor) || c->floor < 0 || c->floor * (double)narms > 1 + 1e-12)
    return 0;
  return !c->top_two || (c->top_two_beta > 0 && c->top_two_beta < 1);
}

/* Allocates and initialises a Thompson policy at its prior (thompson.h). */
sy_policy_t *sy_policy_thompson_new(const sy_ts_conf_t *c, size_t narms) {
  if (!valid_conf(c, narms))
    return NULL;
  ts_policy_t *p = (ts_policy_t *)sy__policy_alloc(sizeof *p, &ts_vtable, narms);
  if (p == NULL)
    return NULL;
  p->conf = *c;
  p->sign = c->minimise ? -1 : 1;
  p->act = malloc(narms * sizeof *p->act);
  p->post = malloc(narms * sizeof *p->post);
  p->win = malloc(narms * sizeof *p->win);
  if (p->act == NULL || p->post == NULL || p->win == NULL) {
    ts_destroy(&p->base);
    return NULL;
  }
  refresh(p);
  return &p->base;
}

/* Returns the cached pi of arm (thompson.h). */
double sy_thompson_argmax_prob(const sy_policy_t *p, size_t arm) {
  if (p->vt != &ts_vtable || arm >= p->narms)
    return 0;
  return ((const ts_policy_t *)p)->win[arm];
}
