/*
 * sticky.c — the bounded session table behind sticky bandit assignments (see sticky.h).
 *
 * Two-choice set-associative hashing: the low and high 32 bits of a key's hash each pick a
 * bucket (by multiply-shift, so any bucket count works) and the key may sit in any of the
 * 2 x SY_STICKY_WAYS slots. Giving every key two buckets keeps the load even, so a table
 * filled close to its capacity evicts few live entries, while a lookup stays a scan of two
 * short arrays with no pointers, tombstones or resizing.
 */
#include "policies/sticky.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

/* Prepares the table; see sticky.h. The capacity cap keeps bucket numbers below 2^29, so
 * the multiply-shift in buckets() cannot overflow. */
int sy_sticky_init(sy_sticky_t *t, size_t capacity, uint64_t ttl_ms, int sliding, uint64_t seed) {
  memset(t, 0, sizeof *t);
  if (capacity == 0 || ttl_ms == 0 || capacity > ((size_t)1 << 32))
    return -1;
  t->nbuckets = (capacity + SY_STICKY_WAYS - 1) / SY_STICKY_WAYS;
  t->slots = calloc(t->nbuckets * SY_STICKY_WAYS, sizeof *t->slots);
  if (t->slots == NULL)
    return -1;
  t->ttl_ms = ttl_ms;
  t->sliding = sliding != 0;
  t->seed = seed;
  return 0;
}

/* Frees the slots and clears t (sticky.h). */
void sy_sticky_free(sy_sticky_t *t) {
  free(t->slots);
  memset(t, 0, sizeof *t);
}

/* Returns the number of slots (sticky.h). */
size_t sy_sticky_capacity(const sy_sticky_t *t) {
  return t->nbuckets * SY_STICKY_WAYS;
}

/* The key's hash; 0 marks an empty slot, so it is remapped. */
static uint64_t key_hash(const sy_sticky_t *t, const void *key, size_t keylen) {
  uint64_t h = XXH3_64bits_withSeed(key, keylen, t->seed);
  return h ? h : 1;
}

/* The key's two buckets, as pointers to their first slots. */
static void buckets(const sy_sticky_t *t, uint64_t h, sy_sticky_slot_t *b[2]) {
  uint64_t n = t->nbuckets;
  b[0] = t->slots + (size_t)(((h & 0xffffffffu) * n) >> 32) * SY_STICKY_WAYS;
  b[1] = t->slots + (size_t)(((h >> 32) * n) >> 32) * SY_STICKY_WAYS;
}

/* The slot holding h in its buckets, or NULL. */
static sy_sticky_slot_t *find(const sy_sticky_t *t, uint64_t h) {
  sy_sticky_slot_t *b[2];
  buckets(t, h, b);
  for (int k = 0; k < 2; k++)
    for (int w = 0; w < SY_STICKY_WAYS; w++)
      if (b[k][w].hash == h)
        return &b[k][w];
  return NULL;
}

/* Looks up a live entry and extends it in sliding mode (sticky.h). */
int sy_sticky_get(sy_sticky_t *t, const void *key, size_t keylen, uint64_t now_ms, size_t *arm,
                  double *propensity) {
  sy_sticky_slot_t *s = find(t, key_hash(t, key, keylen));
  if (s == NULL)
    return 0;
  if (now_ms >= s->expires_ms) {
    s->hash = 0;
    return 0;
  }
  if (t->sliding)
    s->expires_ms = now_ms + t->ttl_ms;
  if (arm)
    *arm = s->arm;
  if (propensity)
    *propensity = s->propensity;
  return 1;
}

/*
 * The slot for a new key h. A free slot (empty or expired) in whichever of the two buckets
 * has more of them — choosing the emptier bucket is what keeps the load even — else the
 * live entry closest to expiry.
 */
static sy_sticky_slot_t *victim(const sy_sticky_t *t, uint64_t h, uint64_t now_ms) {
  sy_sticky_slot_t *b[2], *free_slot[2] = {NULL, NULL}, *oldest = NULL;
  int nfree[2] = {0, 0};
  buckets(t, h, b);
  for (int k = 0; k < 2; k++)
    for (int w = 0; w < SY_STICKY_WAYS; w++) {
      sy_sticky_slot_t *s = &b[k][w];
      if (s->hash == 0 || now_ms >= s->expires_ms) {
        nfree[k]++;
        free_slot[k] = s;
      } else if (oldest == NULL || s->expires_ms < oldest->expires_ms) {
        oldest = s;
      }
    }
  if (nfree[0] + nfree[1] == 0)
    return oldest;
  return nfree[1] > nfree[0] ? free_slot[1] : free_slot[0];
}

/* Stores or replaces the entry for key (sticky.h). */
void sy_sticky_put(sy_sticky_t *t, const void *key, size_t keylen, uint64_t now_ms, size_t arm,
                   double propensity) {
  uint64_t h = key_hash(t, key, keylen);
  sy_sticky_slot_t *s = find(t, h);
  if (s == NULL)
    s = victim(t, h, now_ms);
  *s = (sy_sticky_slot_t){h, now_ms + t->ttl_ms, propensity, arm};
}

/* Counts the live entries by a full scan (sticky.h). */
size_t sy_sticky_live(const sy_sticky_t *t, uint64_t now_ms) {
  size_t live = 0, n = sy_sticky_capacity(t);
  for (size_t i = 0; i < n; i++)
    live += t->slots[i].hash != 0 && now_ms < t->slots[i].expires_ms;
  return live;
}

/* Reuses a live, still-active assignment or chooses and stores a new one (sticky.h). */
sy_choice_t sy_sticky_choose(sy_sticky_t *t, const sy_policy_t *p, const sy_policy_ctx_t *ctx,
                             sy_rng_t *rng, uint64_t now_ms, int *hit) {
  if (hit)
    *hit = 0;
  if (ctx == NULL || ctx->key == NULL)
    return sy_policy_choose(p, ctx, rng);
  sy_choice_t c;
  if (sy_sticky_get(t, ctx->key, ctx->keylen, now_ms, &c.arm, &c.propensity) &&
      sy_policy_arm_active(p, c.arm)) {
    if (hit)
      *hit = 1;
    return c;
  }
  c = sy_policy_choose(p, ctx, rng);
  sy_sticky_put(t, ctx->key, ctx->keylen, now_ms, c.arm, c.propensity);
  return c;
}
