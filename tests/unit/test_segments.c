/*
 * test_segments.c — a tenant's posterior decides only once it holds min_samples
 * observations; until then the experiment-wide posterior does.
 */
#include <stdio.h>

#include "policies/policy.h"
#include "policies/rng.h"
#include "policies/segments.h"
#include "policies/thompson.h"
#include "tests/unit/check.h"

/* How many of 1,000 choices went to arm 1, and whether the segment decided each time. */
static int count_arm1(const sy_policy_t *global, const sy_policy_t *seg, double min,
                      int *all_segment, int *none_segment) {
  sy_rng_t rng;
  sy_rng_seed(&rng, 4);
  int n1 = 0, used_sum = 0;
  for (int i = 0; i < 1000; i++) {
    int used;
    sy_choice_t c = sy_segment_choose(global, seg, min, NULL, &rng, &used);
    n1 += c.arm == 1;
    used_sum += used;
  }
  *all_segment = used_sum == 1000;
  *none_segment = used_sum == 0;
  return n1;
}

static void test_fallback(void) {
  sy_ts_conf_t c;
  sy_ts_conf_default(&c, SY_OUTCOME_BINARY);
  c.propensity_draws = 2000;
  sy_policy_t *global = sy_policy_thompson_new(&c, 2);
  sy_policy_t *seg = sy_policy_thompson_new(&c, 2);
  sy_arm_stats_t g[2] = {{5000, 3000, 0}, {5000, 2000, 0}}; /* everyone: arm 0 */
  sy_arm_stats_t thin[2] = {{20, 2, 0}, {20, 18, 0}};       /* this tenant: arm 1 */
  sy_arm_stats_t thick[2] = {{200, 20, 0}, {200, 180, 0}};
  CHECK(sy_policy_update(global, g) == 0);
  CHECK(sy_policy_update(seg, thin) == 0);

  CHECK(sy_segment_pick(global, NULL, 100) == global);
  CHECK(sy_segment_pick(global, seg, 100) == global); /* 40 < 100 */
  CHECK(sy_segment_pick(global, seg, 40) == seg);     /* the threshold is inclusive */
  int all, none;
  int n1 = count_arm1(global, seg, 100, &all, &none);
  CHECK_MSG(n1 == 0 && none, "thin segment: %d on arm 1", n1);
  CHECK(sy_policy_update(seg, thick) == 0);
  CHECK(sy_segment_pick(global, seg, 100) == seg);
  n1 = count_arm1(global, seg, 100, &all, &none);
  CHECK_MSG(n1 == 1000 && all, "thick segment: %d on arm 1", n1);
  sy_policy_destroy(global);
  sy_policy_destroy(seg);
}

int main(void) {
  test_fallback();
  return CHECK_DONE();
}
