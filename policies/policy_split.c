/*
 * policy_split.c — the split and fixed policies behind the policy interface.
 *
 * The split wraps sy_split_t (split.h): weighted rendezvous hashing for requests with a
 * stickiness key, a cumulative-weight draw for the rest. Both choose arm i with probability
 * w_i / sum(w) exactly, so the propensity is known in closed form. Deactivating an arm sets
 * its weight in the wrapped split to 0; since each arm's rendezvous score depends only on its
 * own seed and weight, only that arm's keys move. The fixed policy sends everything to one
 * arm with propensity 1.
 */
#include "policies/policy_split.h"
#include "policies/split.h"

#include <stdlib.h>

typedef struct split_policy_s {
  sy_policy_t base;
  sy_split_t split;                      /* weights of inactive arms set to 0 */
  double weight0[SY_SPLIT_MAX_VARIANTS]; /* the configured weights */
} split_policy_t;

static sy_choice_t split_choose(const sy_policy_t *p, const sy_policy_ctx_t *ctx, sy_rng_t *rng) {
  const split_policy_t *sp = (const split_policy_t *)p;
  size_t arm;
  if (ctx != NULL && ctx->key != NULL)
    arm = sy_split_choose_key(&sp->split, ctx->key, ctx->keylen);
  else
    arm = sy_split_choose_random(&sp->split, sy_rng_next(rng));
  return (sy_choice_t){arm, p->prop[arm]};
}

/* Applies the active set to the weights; refuses a set whose remaining weights are all 0. */
static int split_update(sy_policy_t *p, const sy_arm_stats_t *totals, const unsigned char *active) {
  split_policy_t *sp = (split_policy_t *)p;
  double w[SY_SPLIT_MAX_VARIANTS], total = 0;
  for (size_t i = 0; i < p->narms; i++) {
    w[i] = active[i] ? sp->weight0[i] : 0.0;
    total += w[i];
  }
  if (!(total > 0) || sy__policy_store(p, totals, active, 0) < 0)
    return -1;
  for (size_t i = 0; i < p->narms; i++) {
    sp->split.weight[i] = w[i];
    p->prop[i] = w[i] / total;
  }
  sp->split.total = total;
  return 0;
}

static void split_destroy(sy_policy_t *p) {
  sy__policy_free(p);
}

static const sy_policy_vtable_t split_vtable = {
    .name = "split", .choose = split_choose, .update = split_update, .destroy = split_destroy};

/* Builds a split policy over copies of ids' seeds and the weights (policy.h). */
sy_policy_t *sy_policy_split_new(const char *salt, const char *const *ids, const double *weights,
                                 size_t n) {
  sy_split_t s;
  if (sy_split_init(&s, salt, ids, weights, n) < 0)
    return NULL;
  split_policy_t *sp = (split_policy_t *)sy__policy_alloc(sizeof *sp, &split_vtable, n);
  if (sp == NULL)
    return NULL;
  sp->split = s;
  for (size_t i = 0; i < n; i++) {
    sp->weight0[i] = weights[i];
    sp->base.prop[i] = sy_split_propensity(&s, i);
  }
  return &sp->base;
}

typedef struct fixed_policy_s {
  sy_policy_t base;
  size_t arm;     /* the configured arm */
  size_t current; /* arm, or the lowest active arm while arm is inactive */
} fixed_policy_t;

static sy_choice_t fixed_choose(const sy_policy_t *p, const sy_policy_ctx_t *ctx, sy_rng_t *rng) {
  const fixed_policy_t *fp = (const fixed_policy_t *)p;
  return (sy_choice_t){fp->current, 1.0};
}

static int fixed_update(sy_policy_t *p, const sy_arm_stats_t *totals, const unsigned char *active) {
  fixed_policy_t *fp = (fixed_policy_t *)p;
  if (sy__policy_store(p, totals, active, 0) < 0)
    return -1;
  fp->current = fp->arm;
  if (!p->active[fp->current])
    for (fp->current = 0; !p->active[fp->current]; fp->current++)
      ; /* terminates: store guarantees one active arm */
  for (size_t i = 0; i < p->narms; i++)
    p->prop[i] = i == fp->current ? 1.0 : 0.0;
  return 0;
}

static void fixed_destroy(sy_policy_t *p) {
  sy__policy_free(p);
}

static const sy_policy_vtable_t fixed_vtable = {
    .name = "fixed", .choose = fixed_choose, .update = fixed_update, .destroy = fixed_destroy};

/* Builds a policy that always chooses `arm` (policy.h). */
sy_policy_t *sy_policy_fixed_new(size_t n, size_t arm) {
  if (arm >= n)
    return NULL;
  fixed_policy_t *fp = (fixed_policy_t *)sy__policy_alloc(sizeof *fp, &fixed_vtable, n);
  if (fp == NULL)
    return NULL;
  fp->arm = fp->current = arm;
  fp->base.prop[arm] = 1.0;
  return &fp->base;
}
