/*
 * sentinel.h — the Redis Sentinel side of the data link (stats/redis.c), for
 * `redis: {sentinels: [...], master: NAME}`:
 *
 *   - asking: before each connection attempt the link asks the sentinels, in turn,
 *     for the primary's address (SENTINEL get-master-addr-by-name NAME). The asking
 *     is blocking hiredis (stats/redis_sync.c) on libuv's thread pool, never on the
 *     loop; every connect and reply there has the link's connect timeout;
 *   - watching: one hiredis async connection on the loop, subscribed to
 *     `+switch-master` on the sentinel that last answered. A switch of NAME is passed
 *     to the link at once. When that connection drops (or cannot be made in time),
 *     the watch asks the sentinels again after 1 s, starting with the next one, and
 *     subscribes to whichever answers; if the primary it is told differs from the
 *     last one known, that too is a switch (one may have been missed meanwhile).
 *
 * Error convention: 0 / -1; the errors of an ask are one line naming redis.master
 * and each sentinel asked with what it said.
 */
#ifndef SY_SENTINEL_H
#define SY_SENTINEL_H

#include <stdint.h>

#include <uv.h>

#include "stats/redis_url.h"

typedef struct sy_sentinel_s sy_sentinel_t;

/* An ask's answer: ok = 1 with the primary, or ok = 0 with err. */
typedef void (*sy_sentinel_answer_cb)(void *data, int ok, const sy_redis_hostport_t *primary,
                                      const char *err);
/* The sentinels have moved the master to *primary. */
typedef void (*sy_sentinel_switch_cb)(void *data, const sy_redis_hostport_t *primary);

/* A watch of a's sentinels (a->nsentinels > 0), with timeout_ms for each connect
 * and reply. on_switch (with data) is called on every switch of a->master. Nothing
 * is asked or watched before the first sy_sentinel_ask. Returns NULL when out of
 * memory or the loop refuses a timer. */
sy_sentinel_t *sy_sentinel_new(uv_loop_t *loop, const sy_redis_addr_t *a, unsigned timeout_ms,
                               sy_sentinel_switch_cb on_switch, void *data);
/* Asks the sentinels for the primary, off the loop. cb(data, ...) is called once,
 * later, unless a newer ask or sy_sentinel_close comes first (then never). Returns 0,
 * or -1 (out of memory, thread pool refused) and cb is not called. */
int sy_sentinel_ask(sy_sentinel_t *s, sy_sentinel_answer_cb cb, void *data);
/* Switches seen so far (for metrics and tests). */
uint64_t sy_sentinel_switches(const sy_sentinel_t *s);
/* Stops watching; no callback is called any more. closed(data) runs once every
 * handle and every ask in flight has finished; s is then freed. */
void sy_sentinel_close(sy_sentinel_t *s, void (*closed)(void *data), void *data);

#endif
