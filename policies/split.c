/*
 * split.c — sticky weighted splits by weighted rendezvous hashing.
 *
 * Each variant i has a seed H(salt || 0 || id_i), computed once at init. For a key
 * k, h_i = XXH3_64(k, seed_i) gives a uniform u_i in (0,1), and -ln(u_i)/w_i is an
 * exponential variate of rate w_i; the minimum of independent exponentials falls
 * on i with probability w_i / sum(w). Because each variant's score depends only on
 * its own seed and weight, changing one weight can only move keys to or from that
 * variant. Choosing costs one hash and one log per variant and allocates nothing.
 */
#include "policies/split.h"

#include <math.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: no allocation */
#include <xxhash.h>

/*
 * H(salt || 0 || id): the NUL byte separates the two strings, so that different
 * (salt, id) pairs never hash the same bytes.
 */
static uint64_t variant_seed(const char *salt, const char *id) {
  XXH3_state_t st;
  static const unsigned char sep = 0;
  XXH3_INITSTATE(&st);
  XXH3_64bits_reset(&st);
  XXH3_64bits_update(&st, salt, strlen(salt));
  XXH3_64bits_update(&st, &sep, 1);
  XXH3_64bits_update(&st, id, strlen(id));
  return XXH3_64bits_digest(&st);
}

/* Checks n and the weights; returns their sum, or -1 if they are unusable. */
static double checked_total(const double *weights, size_t n) {
  if (n < 1 || n > SY_SPLIT_MAX_VARIANTS)
    return -1;
  double total = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(weights[i]) || weights[i] < 0)
      return -1;
    total += weights[i];
  }
  return (total > 0 && isfinite(total)) ? total : -1;
}

/* Fills *s for the given variants; returns 0, or -1 (and leaves *s unset) if invalid. */
int sy_split_init(sy_split_t *s, const char *salt, const char *const *ids, const double *weights,
                  size_t n) {
  double total = checked_total(weights, n);
  if (total < 0 || ids == NULL)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (ids[i] == NULL)
      return -1;
  memset(s, 0, sizeof *s);
  s->n = n;
  s->total = total;
  for (size_t i = 0; i < n; i++) {
    s->weight[i] = weights[i];
    s->seed[i] = variant_seed(salt ? salt : "", ids[i]);
  }
  return 0;
}

/* u in (0,1) from a 64-bit hash: the top 53 bits, centred in their interval. */
static double hash_to_unit(uint64_t h) {
  return ((double)(h >> 11) + 0.5) * 0x1.0p-53;
}

/* Returns the index with the smallest score -ln(u_i)/w_i; zero weights never win. */
size_t sy_split_choose_key(const sy_split_t *s, const void *key, size_t keylen) {
  size_t best = s->n;
  double best_score = INFINITY;
  for (size_t i = 0; i < s->n; i++) {
    if (!(s->weight[i] > 0))
      continue;
    double u = hash_to_unit(XXH3_64bits_withSeed(key, keylen, s->seed[i]));
    double score = -log(u) / s->weight[i];
    /* best == s->n: the first positive weight wins even if its score overflowed. */
    if (best == s->n || score < best_score) {
      best = i;
      best_score = score;
    }
  }
  return best;
}

/* Returns the variant whose cumulative-weight interval holds rnd's uniform value. */
size_t sy_split_choose_random(const sy_split_t *s, uint64_t rnd) {
  double x = (double)(rnd >> 11) * 0x1.0p-53 * s->total;
  double cum = 0;
  size_t last = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (!(s->weight[i] > 0))
      continue;
    cum += s->weight[i];
    if (x < cum)
      return i;
    last = i;
  }
  /* Only rounding in the running sum gets here; the last positive weight takes it. */
  return last;
}

/* Returns weight[i] / total, or 0 if i is out of range. */
double sy_split_propensity(const sy_split_t *s, size_t i) {
  return i < s->n ? s->weight[i] / s->total : 0.0;
}
