/*
 * test_sticky.c — sticky sessions: a session keeps its variant (and the propensity it was
 * assigned with) for its TTL, expires after it, and the table stays within its capacity,
 * evicting expired and oldest entries first. Time is a plain number passed in.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "policies/policy.h"
#include "policies/rng.h"
#include "policies/sticky.h"
#include "policies/thompson.h"
#include "tests/unit/check.h"

static size_t key_of(char *buf, size_t cap, int i) {
  return (size_t)snprintf(buf, cap, "session-%d", i);
}

static void test_keep_and_expire(void) {
  sy_sticky_t t;
  CHECK(sy_sticky_init(&t, 4096, 1000, 0, 7) == 0);
  char k[32];
  for (int i = 0; i < 1000; i++)
    sy_sticky_put(&t, k, key_of(k, sizeof k, i), 0, (size_t)(i % 5), 0.1 * (i % 5));
  int kept = 0;
  for (int i = 0; i < 1000; i++) {
    size_t arm = 99;
    double prop = -1;
    kept += sy_sticky_get(&t, k, key_of(k, sizeof k, i), 999, &arm, &prop) &&
            arm == (size_t)(i % 5) && prop == 0.1 * (i % 5);
  }
  CHECK_MSG(kept == 1000, "%d of 1000 sessions kept their arm", kept);
  CHECK(sy_sticky_get(&t, "nobody", 6, 10, NULL, NULL) == 0);
  CHECK(sy_sticky_live(&t, 999) == 1000);
  /* Fixed TTL: reading does not extend; at 1000 ms every entry is gone. */
  int alive = 0;
  for (int i = 0; i < 1000; i++)
    alive += sy_sticky_get(&t, k, key_of(k, sizeof k, i), 1000, NULL, NULL);
  CHECK(alive == 0);
  CHECK(sy_sticky_live(&t, 1000) == 0);
  /* Replacing an entry keeps one entry per key. */
  sy_sticky_put(&t, "s", 1, 5000, 1, 0.5);
  sy_sticky_put(&t, "s", 1, 5001, 2, 0.25);
  size_t arm;
  CHECK(sy_sticky_get(&t, "s", 1, 5002, &arm, NULL) == 1 && arm == 2);
  CHECK(sy_sticky_live(&t, 5002) == 1);
  sy_sticky_free(&t);
}

static void test_sliding(void) {
  sy_sticky_t t;
  CHECK(sy_sticky_init(&t, 64, 1000, 1, 7) == 0);
  sy_sticky_put(&t, "conv", 4, 0, 3, 0.4);
  /* A conversation with a turn every 900 ms outlives the TTL many times over. */
  int ok = 1;
  for (uint64_t now = 900; now <= 9000; now += 900) {
    size_t arm = 0;
    ok &= sy_sticky_get(&t, "conv", 4, now, &arm, NULL) == 1 && arm == 3;
  }
  CHECK(ok);
  /* Then silence for a whole TTL ends it. */
  CHECK(sy_sticky_get(&t, "conv", 4, 10000, NULL, NULL) == 0);
  sy_sticky_free(&t);
}

static void test_capacity(void) {
  sy_sticky_t t;
  CHECK(sy_sticky_init(&t, 1000, 60000, 0, 11) == 0);
  size_t cap = sy_sticky_capacity(&t);
  CHECK(cap >= 1000 && cap < 1000 + SY_STICKY_WAYS);
  char k[32];
  /* 10x the capacity, one per ms: the table never grows, and keeps the newest. */
  for (int i = 0; i < 10000; i++)
    sy_sticky_put(&t, k, key_of(k, sizeof k, i), (uint64_t)i, 1, 0.5);
  CHECK(sy_sticky_live(&t, 10000) <= cap);
  int recent = 0;
  for (int i = 10000 - 500; i < 10000; i++)
    recent += sy_sticky_get(&t, k, key_of(k, sizeof k, i), 10000, NULL, NULL);
  CHECK_MSG(recent >= 495, "%d of the newest 500 sessions kept", recent);

  /* Expired entries go before live ones: fill, let all expire, fill again — every entry of
   * the second generation survives even though the table was full. */
  sy_sticky_free(&t);
  CHECK(sy_sticky_init(&t, 1024, 100, 0, 12) == 0);
  for (int i = 0; i < 2000; i++)
    sy_sticky_put(&t, k, key_of(k, sizeof k, i), 0, 0, 1);
  for (int i = 0; i < 600; i++)
    sy_sticky_put(&t, k, key_of(k, sizeof k, 100000 + i), 200, 1, 1);
  int second = 0;
  for (int i = 0; i < 600; i++)
    second += sy_sticky_get(&t, k, key_of(k, sizeof k, 100000 + i), 250, NULL, NULL);
  CHECK_MSG(second == 600, "%d of 600 new sessions kept", second);
  sy_sticky_free(&t);
  CHECK(sy_sticky_init(&t, 0, 100, 0, 1) == -1);
  CHECK(sy_sticky_init(&t, 10, 0, 0, 1) == -1);
}

/* With a bandit: sessions keep their arm and assigned propensity while the posterior turns
 * against it, new sessions follow the posterior, and a removed arm releases its sessions. */
static void test_with_policy(void) {
  sy_ts_conf_t c;
  sy_ts_conf_default(&c, SY_OUTCOME_BINARY);
  c.propensity_draws = 2000;
  sy_policy_t *p = sy_policy_thompson_new(&c, 2);
  sy_sticky_t t;
  CHECK(sy_sticky_init(&t, 4096, 60000, 1, 3) == 0);
  sy_rng_t rng;
  sy_rng_seed(&rng, 8);
  char k[32];
  size_t first[200];
  double prop[200];
  for (int i = 0; i < 200; i++) {
    sy_policy_ctx_t ctx = {k, key_of(k, sizeof k, i)};
    sy_choice_t ch = sy_sticky_choose(&t, p, &ctx, &rng, 0, NULL);
    first[i] = ch.arm;
    prop[i] = ch.propensity;
  }
  sy_arm_stats_t tot[2] = {{1000, 900, 0}, {1000, 100, 0}}; /* arm 0 is now far better */
  CHECK(sy_policy_update(p, tot) == 0);
  int kept = 0, hits = 0, on1 = 0;
  for (int i = 0; i < 200; i++) {
    int hit;
    sy_policy_ctx_t ctx = {k, key_of(k, sizeof k, i)};
    sy_choice_t ch = sy_sticky_choose(&t, p, &ctx, &rng, 1000, &hit);
    kept += ch.arm == first[i] && ch.propensity == prop[i];
    hits += hit;
    on1 += first[i] == 1;
  }
  CHECK(kept == 200 && hits == 200);
  CHECK(on1 > 50 && on1 < 150); /* at the prior, about half went to arm 1 */
  int new_on0 = 0;
  for (int i = 1000; i < 1200; i++) {
    sy_policy_ctx_t ctx = {k, key_of(k, sizeof k, i)};
    new_on0 += sy_sticky_choose(&t, p, &ctx, &rng, 1000, NULL).arm == 0;
  }
  CHECK(new_on0 == 200);
  /* Arm 1 removed: its sessions move, with the policy's new propensity. */
  CHECK(sy_policy_set_active(p, 1, 0) == 0);
  int moved = 1;
  for (int i = 0; i < 200; i++) {
    sy_policy_ctx_t ctx = {k, key_of(k, sizeof k, i)};
    sy_choice_t ch = sy_sticky_choose(&t, p, &ctx, &rng, 2000, NULL);
    moved &= ch.arm == 0 && (first[i] == 0 ? ch.propensity == prop[i] : ch.propensity == 1);
  }
  CHECK(moved);
  /* No key: plain choice, nothing stored. */
  size_t live = sy_sticky_live(&t, 2000);
  sy_policy_ctx_t none = {NULL, 0};
  int hit = 7;
  sy_sticky_choose(&t, p, &none, &rng, 2000, &hit);
  CHECK(hit == 0 && sy_sticky_live(&t, 2000) == live);
  sy_sticky_free(&t);
  sy_policy_destroy(p);
}

int main(void) {
  test_keep_and_expire();
  test_sliding();
  test_capacity();
  test_with_policy();
  return CHECK_DONE();
}
