/*
 * segments.c — choosing between a tenant's posterior and the experiment-wide one.
 *
 * The rule is deliberately simple (see segments.h): a segment's state is trusted once its
 * observations reach a threshold. Both policies must have the same arms, in the same order.
 */
#include "policies/segments.h"

#include <stddef.h>

/* Returns the segment once it holds min_samples observations, else global (segments.h). */
const sy_policy_t *sy_segment_pick(const sy_policy_t *global, const sy_policy_t *segment,
                                   double min_samples) {
  if (segment != NULL && sy_policy_observations(segment) >= min_samples)
    return segment;
  return global;
}

/* Chooses through the picked policy and reports which one it was (segments.h). */
sy_choice_t sy_segment_choose(const sy_policy_t *global, const sy_policy_t *segment,
                              double min_samples, const sy_policy_ctx_t *ctx, sy_rng_t *rng,
                              int *used_segment) {
  const sy_policy_t *p = sy_segment_pick(global, segment, min_samples);
  if (used_segment)
    *used_segment = p != global;
  return sy_policy_choose(p, ctx, rng);
}
