/*
 * segments.h — per-tenant posteriors that fall back to the experiment-wide one while thin.
 *
 * With segments on, the stats layer keeps totals per (experiment, tenant) as well as per
 * experiment, and the router holds one policy for each: the experiment-wide policy fed the
 * totals over all tenants, and a segment policy fed one tenant's totals. A segment's own
 * posterior is used only once it rests on at least min_samples observations (summed over
 * its arms); before that its few counts would make choices noisy, so the experiment-wide
 * posterior decides. Pure: this only picks which state to use.
 */
#ifndef SY_SEGMENTS_H
#define SY_SEGMENTS_H

#include "policies/policy.h"

/*
 * Returns segment if it is non-NULL and sy_policy_observations(segment) >= min_samples,
 * else global. Both policies stay owned by the caller.
 */
const sy_policy_t *sy_segment_pick(const sy_policy_t *global, const sy_policy_t *segment,
                                   double min_samples);

/*
 * The segment choice for one request: chooses through the policy sy_segment_pick selects.
 * Sets *used_segment (if not NULL) to 1 when the segment's posterior decided, else 0, so
 * the event can record which state the propensity belongs to.
 */
sy_choice_t sy_segment_choose(const sy_policy_t *global, const sy_policy_t *segment,
                              double min_samples, const sy_policy_ctx_t *ctx, sy_rng_t *rng,
                              int *used_segment);

#endif
