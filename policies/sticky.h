/*
 * sticky.h — sticky sessions for bandits: session key -> (arm, propensity, expiry).
 *
 * A bandit's choice is random per request, which would switch an agent's multi-turn
 * conversation between prompts or models mid-session. With stickiness on, the first request
 * of a session (keyed by a configured header's value) is chosen by the policy and
 * remembered; later requests reuse that arm, and log the propensity it was assigned with,
 * until the entry expires. Entries expire `ttl_ms` after they were stored, or — in sliding
 * mode — after they were last used, so a live conversation keeps its arm.
 *
 * A pure data structure: no I/O, no clock (callers pass now_ms from a monotonic clock), one
 * allocation at init and none afterwards. The table is set-associative: a key's 64-bit
 * XXH3 hash picks two buckets of SY_STICKY_WAYS slots, the key lives in one of those 16
 * slots, and a full pair of buckets evicts an expired entry if it has one, else the entry
 * closest to expiry (the least recently stored or used). Lookups and stores cost at most 16
 * comparisons; memory is bounded by the capacity. Keys are identified by their hash alone:
 * two keys collide with probability about 2^-64 per pair, which we accept. Size the capacity
 * above the number of sessions live within one TTL, or early eviction moves sessions.
 *
 * One table per experiment (an arm index means nothing across experiments); it belongs to
 * one thread (a worker's loop), like the policy it serves.
 */
#ifndef SY_STICKY_H
#define SY_STICKY_H

#include <stddef.h>
#include <stdint.h>

#include "policies/policy.h"
#include "policies/rng.h"

#define SY_STICKY_WAYS 8

typedef struct sy_sticky_slot_s {
  uint64_t hash;       /* 0: empty */
  uint64_t expires_ms; /* live while now_ms < expires_ms */
  double propensity;   /* at assignment */
  size_t arm;
} sy_sticky_slot_t;

typedef struct sy_sticky_s {
  sy_sticky_slot_t *slots; /* nbuckets * SY_STICKY_WAYS, owned */
  size_t nbuckets;
  uint64_t ttl_ms;
  uint64_t seed;
  int sliding;
} sy_sticky_t;

/*
 * Prepares a table for at least `capacity` sessions (rounded up to whole buckets) with the
 * given TTL (> 0); sliding != 0 extends an entry's life on every hit. `seed` keys the hash.
 * Returns 0, or -1 if capacity or ttl_ms is 0, capacity exceeds 2^32, or memory runs out. Free with
 * sy_sticky_free.
 */
int sy_sticky_init(sy_sticky_t *t, size_t capacity, uint64_t ttl_ms, int sliding, uint64_t seed);

/* Frees the slots; t may be re-initialised afterwards. */
void sy_sticky_free(sy_sticky_t *t);

/* The number of sessions the table can hold. */
size_t sy_sticky_capacity(const sy_sticky_t *t);

/*
 * Looks up a session key (any bytes). If it is stored and live at now_ms, writes its arm and
 * propensity (either pointer may be NULL), extends it in sliding mode and returns 1;
 * otherwise returns 0 (an expired entry found on the way is cleared).
 */
int sy_sticky_get(sy_sticky_t *t, const void *key, size_t keylen, uint64_t now_ms, size_t *arm,
                  double *propensity);

/* Stores (or replaces) a session's arm and propensity, live until now_ms + ttl_ms, evicting
 * as described above when its buckets are full. */
void sy_sticky_put(sy_sticky_t *t, const void *key, size_t keylen, uint64_t now_ms, size_t arm,
                   double propensity);

/* The number of entries live at now_ms (a full scan: for tests and stats, not per request). */
size_t sy_sticky_live(const sy_sticky_t *t, uint64_t now_ms);

/*
 * The sticky choice for one request. Without a key in ctx, this is sy_policy_choose. With
 * one, a live entry whose arm is still active in p is reused (its stored propensity is
 * returned and *hit set to 1); otherwise the policy chooses, the choice is stored, and *hit
 * is set to 0. hit may be NULL.
 */
sy_choice_t sy_sticky_choose(sy_sticky_t *t, const sy_policy_t *p, const sy_policy_ctx_t *ctx,
                             sy_rng_t *rng, uint64_t now_ms, int *hit);

#endif
