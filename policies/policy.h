/*
 * policy.h — the policy interface: choose an arm (variant) and say with what probability.
 *
 * A policy is a pure function of its state (weights, or posteriors derived from counts), the
 * request context and a random number generator. It does no I/O, reads no clock and allocates
 * nothing after it is created. Every choice comes with its propensity: the probability with
 * which this policy, in this state, chooses that arm. The router logs it on every event, so
 * that off-policy evaluation and unbiased gating are possible later.
 *
 * The interface is a const table of function pointers (h2o / nginx style). Concrete policies:
 * split and fixed (below), Thompson sampling (thompson.h). A policy object embeds
 * sy_policy_t as its first member; callers use only the sy_policy_* functions.
 *
 * State comes in through update(), as the arms' sufficient statistics given as ABSOLUTE
 * TOTALS (binary outcome: n, successes; continuous: n, sum x, sum x^2), not increments: the
 * stats layer sums the counts of every router instance (in Redis) and sets them here as they
 * are. sy_policy_add() is the convenience for callers that hold increments. Counts are
 * doubles, so trust-weighted (fractional) observations work.
 *
 * Cost model: choose() is cheap (Thompson sampling: one posterior draw per active arm) and
 * never recomputes propensities; update() does the expensive work (posterior parameters and,
 * for Thompson sampling, the Monte Carlo estimate of each arm's propensity) and skips it when
 * neither the totals nor the active set changed. The router holds one policy per experiment
 * (and per segment, see segments.h), calls choose() per request and update() when the stats
 * layer refreshes its counts.
 *
 * Ownership: a constructor returns a policy that the caller owns and must release with
 * sy_policy_destroy(); the policy owns all of its arrays. choose() takes the policy as const
 * and keeps all of its randomness in the caller's rng, so one policy serves any number of
 * requests on one thread; update(), add() and set_active() must not run concurrently with
 * choose() on the same policy (one event loop per worker: no locks needed).
 */
#ifndef SY_POLICY_H
#define SY_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "policies/rng.h"

/* The most arms one policy may have (a bound for stack scratch space in update paths). */
#define SY_POLICY_MAX_ARMS 256

/*
 * One arm's sufficient statistics, as running totals over every observation so far.
 * Binary outcome: n = observations, sum = successes (0 <= sum <= n); sumsq is ignored.
 * Continuous outcome: n, sum = sum of x, sumsq = sum of x^2. When a Thompson policy models
 * the log of a positive metric (sy_ts_conf_t.log_scale), sum and sumsq are sum of ln x and
 * sum of (ln x)^2: the caller takes the logs, the policy never sees raw values.
 */
typedef struct sy_arm_stats_s {
  double n;
  double sum;
  double sumsq;
} sy_arm_stats_t;

/* What a policy may look at in a request. Thompson sampling ignores the key (stickiness for
 * bandits lives in sticky.h); split hashes it for a deterministic assignment. */
typedef struct sy_policy_ctx_s {
  const void *key; /* stickiness key bytes (e.g. a header's value); NULL: none */
  size_t keylen;
} sy_policy_ctx_t;

/* A choice: the arm, and the probability with which the policy chooses it in this state. */
typedef struct sy_choice_s {
  size_t arm;
  double propensity;
} sy_choice_t;

typedef struct sy_policy_s sy_policy_t;

typedef struct sy_policy_vtable_s {
  const char *name; /* "split", "fixed", "thompson" */
  /* Chooses an arm among the active ones. Allocates nothing; draws only from rng. */
  sy_choice_t (*choose)(const sy_policy_t *p, const sy_policy_ctx_t *ctx, sy_rng_t *rng);
  /* Sets the totals (narms entries) and the active set (narms flags); recomputes the cached
   * state. Either may alias p->stats / p->active. Returns 0, or -1 (state unchanged) if a
   * total is invalid or the active set is empty or unusable. */
  int (*update)(sy_policy_t *p, const sy_arm_stats_t *totals, const unsigned char *active);
  /* Frees the policy and everything it owns. */
  void (*destroy)(sy_policy_t *p);
} sy_policy_vtable_t;

/* The part shared by every policy. Read-only for callers. */
struct sy_policy_s {
  const sy_policy_vtable_t *vt;
  size_t narms;
  size_t nactive;
  unsigned char *active; /* narms flags: 1 = may be chosen; all 1 at creation */
  sy_arm_stats_t *stats; /* narms totals from the last successful update; zero at creation */
  double *prop;          /* narms propensities of the current state (0 for inactive arms) */
};

/* Chooses an arm for one request: {arm, propensity}. Never fails; arm is always active. */
static inline sy_choice_t sy_policy_choose(const sy_policy_t *p, const sy_policy_ctx_t *ctx,
                                           sy_rng_t *rng) {
  return p->vt->choose(p, ctx, rng);
}

/*
 * Sets every arm's totals (an array of p->narms) and recomputes the policy's state.
 * Returns 0, or -1 and leaves the policy unchanged if a total is negative or not finite, or
 * (binary outcome) successes exceed n.
 */
int sy_policy_update(sy_policy_t *p, const sy_arm_stats_t *totals);

/* Adds increments (an array of p->narms) to the current totals, then updates as above. */
int sy_policy_add(sy_policy_t *p, const sy_arm_stats_t *increments);

/*
 * Marks an arm active (on != 0) or inactive (e.g. removed by the gate) and recomputes the
 * propensities. An inactive arm is never chosen and has propensity 0; its totals are kept.
 * Returns 0, or -1 (nothing changed) if arm is out of range, if this would leave no arm
 * active, or if the remaining arms cannot be chosen (a split whose remaining weights are 0).
 */
int sy_policy_set_active(sy_policy_t *p, size_t arm, int on);

/* The propensity of arm in the current state; 0 if inactive or out of range. The
 * propensities of all arms sum to 1. */
double sy_policy_propensity(const sy_policy_t *p, size_t arm);

/* 1 if arm exists and is active, else 0. */
int sy_policy_arm_active(const sy_policy_t *p, size_t arm);

/* The number of observations behind the current state: the sum of n over all arms. */
double sy_policy_observations(const sy_policy_t *p);

/* The policy's name ("split", "fixed", "thompson"). */
static inline const char *sy_policy_name(const sy_policy_t *p) {
  return p->vt->name;
}

/* Frees p and everything it owns. NULL is allowed. */
void sy_policy_destroy(sy_policy_t *p);

/* ---- for implementations (policy.c) ---- */

/* Allocates a policy of `size` bytes (>= sizeof(sy_policy_t)) with its shared arrays for
 * narms arms, all arms active. Returns NULL if narms is 0 or too large, or on ENOMEM. */
sy_policy_t *sy__policy_alloc(size_t size, const sy_policy_vtable_t *vt, size_t narms);

/* Frees the shared arrays and p itself. */
void sy__policy_free(sy_policy_t *p);

/*
 * Validates totals (binary: 0 <= sum <= n) and the active set (at least one arm), then
 * stores both in p (aliasing allowed). Returns 1 if the stored state changed, 0 if it was
 * already identical, -1 (nothing stored) if invalid.
 */
int sy__policy_store(sy_policy_t *p, const sy_arm_stats_t *totals, const unsigned char *active,
                     int binary);

#endif
