/*
 * policy_split.h — the two policies that do not learn, behind the policy interface
 * (policy.h): a sticky weighted split and everything to one arm (policy_split.c).
 */
#ifndef SY_POLICY_SPLIT_H
#define SY_POLICY_SPLIT_H

#include <stddef.h>

#include "policies/policy.h"

/*
 * A split (sticky weighted A/B test, split.h) behind the interface. With a key in ctx the
 * arm is a deterministic function of the key (sy_split_choose_key); without one it is drawn
 * from rng. Either way the propensity is exactly weight / total of the active weights.
 * Totals given to update are stored but do not change the split. ids and weights are
 * copied; 1 <= n <= SY_SPLIT_MAX_VARIANTS. Returns NULL if the split is invalid (see
 * sy_split_init) or memory runs out.
 */
sy_policy_t *sy_policy_split_new(const char *salt, const char *const *ids, const double *weights,
                                 size_t n);

/*
 * Everything to one arm (`policy: fixed`, e.g. the control): propensity 1. If that arm is
 * made inactive, the lowest-numbered active arm takes its place. Returns NULL if arm >= n,
 * n is 0 or above SY_POLICY_MAX_ARMS, or memory runs out.
 */
sy_policy_t *sy_policy_fixed_new(size_t n, size_t arm);

#endif
