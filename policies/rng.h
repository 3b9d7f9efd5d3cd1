/*
 * rng.h — a small, fast, seedable generator (xoshiro256**) for policies and ids.
 * Not for secrets. Each event loop owns its own sy_rng_t: no shared state.
 */
#ifndef SY_RNG_H
#define SY_RNG_H

#include <stdint.h>

typedef struct sy_rng_s {
  uint64_t s[4];
} sy_rng_t;

/* Seeds from a 64-bit value (expanded with splitmix64). */
void sy_rng_seed(sy_rng_t *r, uint64_t seed);

/* Seeds from the operating system (getrandom); falls back to time and pid. */
void sy_rng_seed_os(sy_rng_t *r);

uint64_t sy_rng_next(sy_rng_t *r);

/* Uniform double in [0, 1). */
double sy_rng_uniform(sy_rng_t *r);

#endif
