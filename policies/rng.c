/*
 * rng.c — xoshiro256** seeded through splitmix64.
 *
 * xoshiro256** is small (32 bytes of state), fast and passes the usual
 * statistical batteries; splitmix64 turns one 64-bit seed into four well-mixed
 * state words, so that nearby seeds (0, 1, 2, ...) still give unrelated streams
 * and the state is never all zero. Not for secrets.
 */
#include "policies/rng.h"

#include <errno.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

/* One splitmix64 step: advances *x and returns the mixed output. */
static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* Expands `seed` into the four state words with splitmix64 (see rng.h). */
void sy_rng_seed(sy_rng_t *r, uint64_t seed) {
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64(&seed);
}

/* Fills buf with len bytes from getrandom(2); returns 0, or -1 if it cannot. */
static int os_random(void *buf, size_t len) {
  unsigned char *p = buf;
  while (len > 0) {
    ssize_t got = getrandom(p, len, 0);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += got;
    len -= (size_t)got;
  }
  return 0;
}

/* A seed from the clock and the process id, for when getrandom is unavailable. */
static uint64_t fallback_seed(void) {
  struct timespec ts = {0, 0};
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t x = (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
  uint64_t mix = x ^ rotl((uint64_t)getpid(), 32);
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return mix ^ splitmix64(&x) ^ ((uint64_t)ts.tv_nsec << 16);
}

/* Seeds from getrandom(2); falls back to the clock and pid if it fails. */
void sy_rng_seed_os(sy_rng_t *r) {
  if (os_random(r->s, sizeof r->s) == 0 && (r->s[0] | r->s[1] | r->s[2] | r->s[3]) != 0)
    return;
  /* The all-zero state is a fixed point of xoshiro; splitmix64 never yields it. */
  sy_rng_seed(r, fallback_seed());
}

/* Returns the next 64-bit output and advances the state (xoshiro256**). */
uint64_t sy_rng_next(sy_rng_t *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* Returns a uniform double in [0, 1) and advances the state by one step. */
double sy_rng_uniform(sy_rng_t *r) {
  /* The top 53 bits fill a double's mantissa exactly: multiples of 2^-53 in [0, 1). */
  return (double)(sy_rng_next(r) >> 11) * 0x1.0p-53;
}
