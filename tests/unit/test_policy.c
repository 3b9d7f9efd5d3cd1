/*
 * test_policy.c — the policy interface with the split and fixed policies behind it.
 *
 * The split's shares must sit within ±1% of weight/total over 100,000 draws, with and
 * without stickiness keys, and every choice must carry the exact propensity weight/total.
 * Deactivating an arm must renormalise the propensities and move only that arm's keys.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "policies/policy.h"
#include "policies/policy_split.h"
#include "policies/rng.h"
#include "tests/unit/check.h"

#define NDRAWS 100000

static const char *const IDS[] = {"control", "a", "b", "c"};
static const double W[] = {10, 20, 30, 40};

static double prop_sum(const sy_policy_t *p) {
  double s = 0;
  for (size_t i = 0; i < p->narms; i++)
    s += sy_policy_propensity(p, i);
  return s;
}

/* Chooses NDRAWS times (keyed "user-<i>" if keyed); returns how many choices reported a
 * propensity other than the arm's cached one, and fills counts. */
static int draw_all(const sy_policy_t *p, int keyed, size_t *counts, unsigned char *arms) {
  sy_rng_t rng;
  sy_rng_seed(&rng, 2024);
  memset(counts, 0, p->narms * sizeof *counts);
  int bad = 0;
  for (int i = 0; i < NDRAWS; i++) {
    char key[32];
    int len = snprintf(key, sizeof key, "user-%d", i);
    sy_policy_ctx_t ctx = {keyed ? key : NULL, (size_t)len};
    sy_choice_t c = sy_policy_choose(p, &ctx, &rng);
    bad += c.arm >= p->narms || c.propensity != sy_policy_propensity(p, c.arm);
    if (c.arm < p->narms)
      counts[c.arm]++;
    if (arms)
      arms[i] = (unsigned char)c.arm;
  }
  return bad;
}

static void check_split_shares(const char *what, const sy_policy_t *p, const size_t *counts) {
  for (size_t i = 0; i < p->narms; i++) {
    double share = (double)counts[i] / NDRAWS;
    CHECK_MSG(fabs(share - sy_policy_propensity(p, i)) <= 0.01, "%s: arm %zu share %.4f want %.4f",
              what, i, share, sy_policy_propensity(p, i));
  }
}

static void test_split(void) {
  sy_policy_t *p = sy_policy_split_new("exp", IDS, W, 4);
  CHECK(p != NULL && strcmp(sy_policy_name(p), "split") == 0);
  for (size_t i = 0; i < 4; i++)
    CHECK(sy_policy_propensity(p, i) == W[i] / 100);
  CHECK(fabs(prop_sum(p) - 1) < 1e-12);
  size_t counts[4];
  CHECK(draw_all(p, 0, counts, NULL) == 0);
  check_split_shares("random", p, counts);
  CHECK(draw_all(p, 1, counts, NULL) == 0);
  check_split_shares("keyed", p, counts);

  /* Keys are sticky: the same key, the same arm, whatever the rng. */
  sy_rng_t r1, r2;
  sy_rng_seed(&r1, 1);
  sy_rng_seed(&r2, 2);
  sy_policy_ctx_t ctx = {"session-9", 9};
  CHECK(sy_policy_choose(p, &ctx, &r1).arm == sy_policy_choose(p, &ctx, &r2).arm);
  sy_policy_destroy(p);
}

/* Turning arm 2 off: it gets nothing, the others renormalise, and only its keys move. */
static void test_split_inactive(void) {
  sy_policy_t *p = sy_policy_split_new("exp", IDS, W, 4);
  static unsigned char before[NDRAWS], after[NDRAWS];
  size_t counts[4];
  draw_all(p, 1, counts, before);
  CHECK(sy_policy_set_active(p, 2, 0) == 0);
  CHECK(!sy_policy_arm_active(p, 2) && sy_policy_arm_active(p, 1));
  CHECK(sy_policy_propensity(p, 2) == 0);
  CHECK(fabs(sy_policy_propensity(p, 3) - 40.0 / 70) < 1e-12);
  CHECK(fabs(prop_sum(p) - 1) < 1e-12);
  CHECK(draw_all(p, 1, counts, after) == 0);
  CHECK(counts[2] == 0);
  check_split_shares("arm 2 off", p, counts);
  int wrong = 0;
  for (int i = 0; i < NDRAWS; i++)
    wrong += before[i] != after[i] && before[i] != 2;
  CHECK_MSG(wrong == 0, "%d keys moved that were not on arm 2", wrong);
  /* Back on: the original assignment returns. */
  CHECK(sy_policy_set_active(p, 2, 1) == 0);
  draw_all(p, 1, counts, after);
  CHECK(memcmp(before, after, NDRAWS) == 0);
  /* Totals are accepted (and kept) but do not move a split. */
  sy_arm_stats_t tot[4] = {{10, 1, 0}, {10, 9, 0}, {0, 0, 0}, {5, 2, 0}};
  CHECK(sy_policy_update(p, tot) == 0);
  CHECK(sy_policy_propensity(p, 0) == 0.1 && sy_policy_observations(p) == 25);
  sy_policy_destroy(p);

  /* An arm whose weight is the only one left cannot go. */
  static const double w[] = {0, 5};
  p = sy_policy_split_new("exp", IDS, w, 2);
  CHECK(sy_policy_set_active(p, 1, 0) == -1);
  CHECK(sy_policy_propensity(p, 1) == 1);
  sy_policy_destroy(p);
  static const double zero[] = {0, 0};
  CHECK(sy_policy_split_new("exp", IDS, zero, 2) == NULL);
}

static void test_fixed(void) {
  sy_policy_t *p = sy_policy_fixed_new(3, 1);
  CHECK(p != NULL && strcmp(sy_policy_name(p), "fixed") == 0);
  sy_rng_t rng;
  sy_rng_seed(&rng, 3);
  int other = 0;
  for (int i = 0; i < 1000; i++) {
    sy_choice_t c = sy_policy_choose(p, NULL, &rng);
    other += c.arm != 1 || c.propensity != 1;
  }
  CHECK(other == 0);
  CHECK(fabs(prop_sum(p) - 1) < 1e-12);
  CHECK(sy_policy_set_active(p, 1, 0) == 0);
  CHECK(sy_policy_choose(p, NULL, &rng).arm == 0 && sy_policy_propensity(p, 0) == 1);
  CHECK(sy_policy_set_active(p, 0, 0) == 0);
  CHECK(sy_policy_choose(p, NULL, &rng).arm == 2);
  CHECK(sy_policy_set_active(p, 2, 0) == -1);
  sy_policy_destroy(p);
  CHECK(sy_policy_fixed_new(3, 3) == NULL);
  sy_policy_destroy(NULL);
}

int main(void) {
  test_split();
  test_split_inactive();
  test_fixed();
  return CHECK_DONE();
}
