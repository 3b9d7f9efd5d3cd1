/*
 * split.h — sticky weighted splits (pure: no I/O, no allocation after init).
 *
 * Assignment uses weighted rendezvous hashing: for a key k every variant i draws
 * u_i = H(salt, id_i, k) in (0,1) and scores -ln(u_i)/w_i, an Exp(w_i) variate;
 * the smallest score wins. Hence P(i) = w_i / sum(w) exactly, the same key always
 * lands on the same variant, and changing one variant's weight moves users only
 * between that variant and the others — never between two variants whose
 * weights stayed the same — which is the least movement any scheme can achieve.
 */
#ifndef SY_SPLIT_H
#define SY_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#define SY_SPLIT_MAX_VARIANTS 64

typedef struct sy_split_s {
  size_t n;
  double total;                          /* sum of weights, > 0 */
  double weight[SY_SPLIT_MAX_VARIANTS];  /* >= 0 */
  uint64_t seed[SY_SPLIT_MAX_VARIANTS];  /* H(salt, variant id) */
} sy_split_t;

/*
 * Prepares a split over n variants (1 <= n <= SY_SPLIT_MAX_VARIANTS) with the given
 * ids and weights. Returns 0, or -1 if n is out of range, a weight is negative or
 * not finite, or all weights are zero.
 */
int sy_split_init(sy_split_t *s, const char *salt, const char *const *ids, const double *weights,
                  size_t n);

/* The variant for a stickiness key (any bytes). Deterministic. */
size_t sy_split_choose_key(const sy_split_t *s, const void *key, size_t keylen);

/* The variant for a request without a key: `rnd` is a uniform 64-bit random number. */
size_t sy_split_choose_random(const sy_split_t *s, uint64_t rnd);

/* The probability with which variant i is chosen: weight[i] / total. */
double sy_split_propensity(const sy_split_t *s, size_t i);

#endif
