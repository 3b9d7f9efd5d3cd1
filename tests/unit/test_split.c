/*
 * test_split.c — the sticky weighted split and the RNG behind random assignment.
 *
 * Shares are measured over NKEYS distinct keys and must sit within ±1% (absolute)
 * of weight/total; with 100,000 keys one standard deviation is at most 0.16%, so a
 * correct split passes with a wide margin and a biased one fails.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "policies/rng.h"
#include "policies/split.h"
#include "tests/unit/check.h"

#define NKEYS 100000
#define TOL 0.01

static const char *const IDS[] = {"a", "b", "c", "d", "e", "f"};

/* The i-th test key, e.g. "user-42". Returns its length. */
static size_t make_key(char *buf, size_t cap, int i) {
  return (size_t)snprintf(buf, cap, "user-%d", i);
}

/* Assigns every test key with s; stores the variant of key i in out[i] if out != NULL. */
static void assign_all(const sy_split_t *s, size_t *counts, unsigned char *out) {
  char key[32];
  memset(counts, 0, s->n * sizeof *counts);
  for (int i = 0; i < NKEYS; i++) {
    size_t v = sy_split_choose_key(s, key, make_key(key, sizeof key, i));
    if (v < s->n)
      counts[v]++;
    if (out)
      out[i] = (unsigned char)v;
  }
}

static void check_shares(const char *what, const sy_split_t *s, const size_t *counts,
                         size_t total) {
  for (size_t i = 0; i < s->n; i++) {
    double share = (double)counts[i] / (double)total;
    double want = s->weight[i] / s->total;
    CHECK_MSG(fabs(share - want) <= TOL, "%s: variant %zu share %.4f, want %.4f", what, i, share,
              want);
    if (s->weight[i] == 0)
      CHECK_MSG(counts[i] == 0, "%s: zero-weight variant %zu chosen %zu times", what, i,
                counts[i]);
  }
}

static void test_key_shares(void) {
  static const double w[][6] = {
      {50, 50}, {10, 90}, {20, 30, 50}, {1, 1, 1, 1, 96}, {30, 0, 70}, {0, 1}, {1, 2, 3, 4, 5, 6},
  };
  static const size_t n[] = {2, 2, 3, 5, 3, 2, 6};
  for (size_t t = 0; t < sizeof n / sizeof n[0]; t++) {
    sy_split_t s;
    size_t counts[6];
    CHECK(sy_split_init(&s, "exp-1", IDS, w[t], n[t]) == 0);
    assign_all(&s, counts, NULL);
    char what[32];
    snprintf(what, sizeof what, "key split #%zu", t);
    check_shares(what, &s, counts, NKEYS);
  }
}

static void test_sticky(void) {
  static const double w[] = {20, 30, 50};
  sy_split_t s1, s2;
  CHECK(sy_split_init(&s1, "exp-1", IDS, w, 3) == 0);
  CHECK(sy_split_init(&s2, "exp-1", IDS, w, 3) == 0);
  char key[32];
  int repeat_diff = 0, twin_diff = 0;
  for (int i = 0; i < 20000; i++) {
    size_t len = make_key(key, sizeof key, i);
    size_t v = sy_split_choose_key(&s1, key, len);
    repeat_diff += sy_split_choose_key(&s1, key, len) != v;
    twin_diff += sy_split_choose_key(&s2, key, len) != v;
  }
  CHECK(repeat_diff == 0);
  CHECK(twin_diff == 0);
  /* Keys are bytes: an empty key and a key with a NUL byte are valid and sticky. */
  CHECK(sy_split_choose_key(&s1, "", 0) == sy_split_choose_key(&s2, "", 0));
  CHECK(sy_split_choose_key(&s1, "x\0y", 3) == sy_split_choose_key(&s2, "x\0y", 3));
  CHECK(sy_split_choose_key(&s1, "", 0) < 3);
}

/* seed[i] is XXH3 of the bytes salt, NUL, id — one-shot, to check the streaming code. */
static void test_seeds(void) {
  static const double w[] = {1, 1};
  static const char *const ids[] = {"control", "treatment"};
  sy_split_t s;
  CHECK(sy_split_init(&s, "chat-2026-11", ids, w, 2) == 0);
  static const char b0[] = "chat-2026-11\0control";
  static const char b1[] = "chat-2026-11\0treatment";
  CHECK(s.seed[0] == XXH3_64bits(b0, sizeof b0 - 1));
  CHECK(s.seed[1] == XXH3_64bits(b1, sizeof b1 - 1));
  /* ("ab", "c") and ("a", "bc") must not share a seed. */
  sy_split_t t1, t2;
  const char *c[] = {"c"}, *bc[] = {"bc"};
  CHECK(sy_split_init(&t1, "ab", c, w, 1) == 0);
  CHECK(sy_split_init(&t2, "a", bc, w, 1) == 0);
  CHECK(t1.seed[0] != t2.seed[0]);
}

/* Agreement between two salts must be near the chance rate sum(p_i^2). */
static void check_salts(const double *w, size_t n) {
  sy_split_t s1, s2;
  CHECK(sy_split_init(&s1, "salt-one", IDS, w, n) == 0);
  CHECK(sy_split_init(&s2, "salt-two", IDS, w, n) == 0);
  unsigned char *v1 = malloc(NKEYS), *v2 = malloc(NKEYS);
  size_t counts[6];
  assign_all(&s1, counts, v1);
  assign_all(&s2, counts, v2);
  double chance = 0;
  for (size_t i = 0; i < n; i++)
    chance += (w[i] / s1.total) * (w[i] / s1.total);
  int agree = 0;
  for (int i = 0; i < NKEYS; i++)
    agree += v1[i] == v2[i];
  double rate = (double)agree / NKEYS;
  CHECK_MSG(fabs(rate - chance) <= TOL, "salt agreement %.4f, chance %.4f", rate, chance);
  free(v1);
  free(v2);
}

static void test_salts(void) {
  static const double w2[] = {50, 50}, w3[] = {20, 30, 50};
  check_salts(w2, 2);
  check_salts(w3, 3);
}

/*
 * Changes the weights of one split from `before` to `after` and checks that keys
 * move only into variants whose share grew, out of those whose share shrank, never
 * between two variants with unchanged weights, and that the fraction moved is the
 * least possible: the total variation distance sum(max(0, p_after - p_before)).
 */
static void check_movement(const double *before, const double *after, size_t n) {
  sy_split_t s1, s2;
  CHECK(sy_split_init(&s1, "move", IDS, before, n) == 0);
  CHECK(sy_split_init(&s2, "move", IDS, after, n) == 0);
  unsigned char *v1 = malloc(NKEYS), *v2 = malloc(NKEYS);
  size_t counts[6];
  assign_all(&s1, counts, v1);
  assign_all(&s2, counts, v2);
  double minimum = 0;
  for (size_t i = 0; i < n; i++)
    minimum += fmax(0, after[i] / s2.total - before[i] / s1.total);
  int moved = 0, between_unchanged = 0, wrong_way = 0;
  for (int i = 0; i < NKEYS; i++) {
    size_t from = v1[i], to = v2[i];
    if (from == to)
      continue;
    moved++;
    between_unchanged += before[from] == after[from] && before[to] == after[to];
    wrong_way += after[to] / s2.total < before[to] / s1.total ||
                 after[from] / s2.total > before[from] / s1.total;
  }
  CHECK_MSG(between_unchanged == 0, "%d keys moved between unchanged variants", between_unchanged);
  CHECK_MSG(wrong_way == 0, "%d keys moved against the change in shares", wrong_way);
  double frac = (double)moved / NKEYS;
  CHECK_MSG(fabs(frac - minimum) <= TOL, "moved %.4f, minimum %.4f", frac, minimum);
  free(v1);
  free(v2);
}

static void test_movement(void) {
  static const double a1[] = {20, 30, 50}, a2[] = {20, 30, 70}, a3[] = {20, 30, 10};
  static const double b1[] = {50, 50}, b2[] = {40, 60};
  static const double c1[] = {25, 25, 25, 25}, c2[] = {25, 25, 0, 25};
  check_movement(a1, a2, 3);
  check_movement(a1, a3, 3);
  check_movement(b1, b2, 2);
  check_movement(c1, c2, 4); /* switching a variant off moves only its own users */
}

static void test_random(void) {
  static const double w[][5] = {{50, 50}, {10, 90}, {20, 30, 50}, {1, 1, 1, 1, 96}, {0, 30, 0, 70}};
  static const size_t n[] = {2, 2, 3, 5, 4};
  sy_rng_t rng;
  sy_rng_seed(&rng, 12345);
  for (size_t t = 0; t < sizeof n / sizeof n[0]; t++) {
    sy_split_t s;
    size_t counts[5] = {0};
    CHECK(sy_split_init(&s, "r", IDS, w[t], n[t]) == 0);
    for (int i = 0; i < NKEYS; i++) {
      size_t v = sy_split_choose_random(&s, sy_rng_next(&rng));
      if (v < s.n)
        counts[v]++;
    }
    char what[32];
    snprintf(what, sizeof what, "random split #%zu", t);
    check_shares(what, &s, counts, NKEYS);
    /* The ends of the range still land on a variant with positive weight. */
    CHECK(s.weight[sy_split_choose_random(&s, 0)] > 0);
    CHECK(s.weight[sy_split_choose_random(&s, UINT64_MAX)] > 0);
  }
}

static void test_propensity(void) {
  static const double w[] = {1, 0, 2.5, 6.5};
  sy_split_t s;
  CHECK(sy_split_init(&s, "p", IDS, w, 4) == 0);
  CHECK(s.total == 10);
  double sum = 0;
  for (size_t i = 0; i < 4; i++) {
    CHECK(sy_split_propensity(&s, i) == w[i] / 10);
    sum += sy_split_propensity(&s, i);
  }
  CHECK(fabs(sum - 1) < 1e-12);
  CHECK(sy_split_propensity(&s, 4) == 0);
}

static void test_init_rejects(void) {
  sy_split_t s;
  const char *ids[SY_SPLIT_MAX_VARIANTS + 1];
  double w[SY_SPLIT_MAX_VARIANTS + 1];
  char names[SY_SPLIT_MAX_VARIANTS + 1][8];
  for (int i = 0; i <= SY_SPLIT_MAX_VARIANTS; i++) {
    snprintf(names[i], sizeof names[i], "v%d", i);
    ids[i] = names[i];
    w[i] = 1;
  }
  CHECK(sy_split_init(&s, "x", ids, w, 0) == -1);
  CHECK(sy_split_init(&s, "x", ids, w, SY_SPLIT_MAX_VARIANTS + 1) == -1);
  CHECK(sy_split_init(&s, "x", ids, w, SY_SPLIT_MAX_VARIANTS) == 0);
  CHECK(sy_split_choose_key(&s, "k", 1) < SY_SPLIT_MAX_VARIANTS);
  CHECK(sy_split_init(&s, "x", ids, w, 1) == 0);
  CHECK(sy_split_choose_key(&s, "k", 1) == 0);
  static const double neg[] = {1, -1}, nan_w[] = {1, NAN}, inf_w[] = {1, INFINITY};
  static const double zero[] = {0, 0, 0}, huge[] = {1e308, 1e308};
  CHECK(sy_split_init(&s, "x", ids, neg, 2) == -1);
  CHECK(sy_split_init(&s, "x", ids, nan_w, 2) == -1);
  CHECK(sy_split_init(&s, "x", ids, inf_w, 2) == -1);
  CHECK(sy_split_init(&s, "x", ids, zero, 3) == -1);
  CHECK(sy_split_init(&s, "x", ids, huge, 2) == -1); /* the total overflows */
}

static void test_rng(void) {
  sy_rng_t a, b;
  /* Known answers from the published splitmix64 / xoshiro256** algorithms. */
  sy_rng_seed(&a, 0);
  CHECK(a.s[0] == UINT64_C(0xe220a8397b1dcdaf));
  CHECK(a.s[3] == UINT64_C(0xf88bb8a8724c81ec));
  CHECK(sy_rng_next(&a) == UINT64_C(0x99ec5f36cb75f2b4));
  CHECK(sy_rng_next(&a) == UINT64_C(0xbf6e1f784956452a));
  sy_rng_seed(&a, 7);
  sy_rng_seed(&b, 7);
  int same = 1;
  for (int i = 0; i < 1000; i++)
    same &= sy_rng_next(&a) == sy_rng_next(&b);
  CHECK(same);
  sy_rng_seed(&b, 8);
  CHECK(sy_rng_next(&a) != sy_rng_next(&b));
  double sum = 0, lo = 1, hi = 0;
  for (int i = 0; i < NKEYS; i++) {
    double u = sy_rng_uniform(&a);
    sum += u;
    lo = fmin(lo, u);
    hi = fmax(hi, u);
  }
  CHECK(lo >= 0 && hi < 1);
  CHECK_MSG(fabs(sum / NKEYS - 0.5) < 0.005, "mean %.4f", sum / NKEYS);
  sy_rng_seed_os(&a);
  sy_rng_seed_os(&b);
  CHECK(memcmp(a.s, b.s, sizeof a.s) != 0);
  CHECK((a.s[0] | a.s[1] | a.s[2] | a.s[3]) != 0);
}

int main(void) {
  test_rng();
  test_seeds();
  test_key_shares();
  test_sticky();
  test_salts();
  test_movement();
  test_random();
  test_propensity();
  test_init_rejects();
  return CHECK_DONE();
}
