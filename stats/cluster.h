/*
 * cluster.h — a Redis Cluster client built on redis.h's async links (hiredis 0.14
 * has no cluster support): one sy_redis_t per node, the slot map (16384 slots ->
 * primary) read with CLUSTER SLOTS from any node that is up, and commands routed by
 * the hash slot of a key the caller names.
 *
 * The slot map is read at start, again on a MOVED reply, when a node's link goes
 * down, and every SY_CLUSTER_REFRESH_MS. Replies are handled here, not by callers:
 *
 *   MOVED slot host:port   the slot is that node's now: the map is updated, a full
 *                          refresh is asked for, and the command is sent there;
 *   ASK slot host:port     the slot is being migrated: ASKING + the command go to
 *                          that node, once; the map does not change;
 *   NOSCRIPT               an EVALSHA of a script registered with
 *                          sy_cluster_script: SCRIPT LOAD on that node, then the
 *                          command again (once);
 *   TRYAGAIN, CLUSTERDOWN, MASTERDOWN, LOADING, READONLY, and a script whose fence
 *   (stats/scripts.h SY_LUA_FENCE) was refused because its slot is migrating
 *                          a fail-over or a migration in progress: the command waits
 *                          (parked) and is sent again when the map or a link changes,
 *                          for at most park_ms; then its callback gets NULL.
 *
 * A command whose link drops after it was written gets NULL (it may have been
 * applied): callers whose commands are idempotent (journal batches, feedback) send
 * again. A command flagged SY_CLUSTER_DURABLE is followed, once answered, by
 * `WAIT wait_replicas wait_ms` on the same node, and its callback runs after that
 * (with a copy of the first reply): a write acknowledged to the caller has reached a
 * replica, so a fail-over does not lose it (unless WAIT timed out: counted in
 * `unreplicated`, and with wait_strict answered NULL, as not acknowledged).
 *
 * Error convention (stats/): 0 / -1.
 */
#ifndef SY_CLUSTER_H
#define SY_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "stats/redis.h"

#define SY_CLUSTER_SLOTS 16384
#define SY_CLUSTER_MAX_NODES 64
#define SY_CLUSTER_REFRESH_MS 10000
#define SY_CLUSTER_DURABLE 1u

typedef struct sy_cluster_s sy_cluster_t;

/* Something changed that may let waiting work go: the slot map was read, or a
 * node's link came up. */
typedef void (*sy_cluster_change_cb)(sy_cluster_t *c, void *data);

typedef struct sy_cluster_opts_s {
  sy_redis_opts_t redis;  /* for every node's link */
  unsigned park_ms;       /* how long a command waits out a fail-over; 0: 5000 */
  unsigned wait_replicas; /* SY_CLUSTER_DURABLE: WAIT for this many replicas; 0: none */
  unsigned wait_ms;       /* ... for at most this long; 0: 200 */
  int wait_strict;        /* a short WAIT: the commands get NULL (not acknowledged) */
  char username[128];     /* every node's AUTH ("" for none) */
  char password[256];
} sy_cluster_opts_t;

typedef struct sy_cluster_counters_s {
  uint64_t moved, ask, noscript, parked, refreshes, unreplicated, park_expired;
} sy_cluster_counters_t;

/* The hash slot of a key (CRC16/XMODEM of the key, or of the first non-empty {tag}). */
unsigned sy_keyslot(const char *key, size_t len);

/* Parses "host:port" ("[v6]:port" too) into host (n bytes) and *port. Returns 0, or
 * -1 when it is not that shape or the port is not 1..65535. Pure. */
int sy_cluster_parse_seed(const char *seed, char *host, size_t n, unsigned *port);

/* Starts a client: connects to the seeds and reads the slot map. Returns NULL with
 * err (a malformed seed, out of memory). */
sy_cluster_t *sy_cluster_new(uv_loop_t *loop, const char *const *seeds, size_t nseeds,
                             const sy_cluster_opts_t *opts, sy_cluster_change_cb on_change,
                             void *data, char *err, size_t errlen);
/* Registers a script body so that NOSCRIPT is answered by loading it; writes its
 * SHA1 (40 hex digits and NUL) to sha. The body must outlive the client. */
void sy_cluster_script(sy_cluster_t *c, const char *body, char sha[41]);
/* Sends a command to the primary of key's slot. Returns 0 (cb runs exactly once,
 * with the node's link as r) or -1 (out of memory, or closing; cb not called). A
 * command that cannot be sent now (no map yet, the node's link down) waits up to
 * park_ms. */
int sy_cluster_command(sy_cluster_t *c, const char *key, size_t keylen, unsigned flags,
                       sy_redis_reply_cb cb, void *data, int argc, const char **argv,
                       const size_t *lens);
/* Whether key's slot has a primary whose link is up now. */
int sy_cluster_ready_for(const sy_cluster_t *c, const char *key, size_t keylen);
/* Whether the map is read and every primary in it is up. */
int sy_cluster_ready(const sy_cluster_t *c);
/* Milliseconds since the cluster was last fully ready (0 while it is). */
uint64_t sy_cluster_down_ms(const sy_cluster_t *c);
/* Why it is not ready, for health output ("" when it is). */
const char *sy_cluster_error(const sy_cluster_t *c);
/* Primaries in the map; fills up to n "host:port" labels into labels (each 64 bytes)
 * with their link state (1 up). */
size_t sy_cluster_primaries(const sy_cluster_t *c, char (*labels)[64], int *up, size_t n);
void sy_cluster_counters(const sy_cluster_t *c, sy_cluster_counters_t *out);
/* Asks for the slot map again (coalesced). */
void sy_cluster_refresh(sy_cluster_t *c);
/* Closes every link; waiting commands get NULL; done runs once all is closed and
 * the client is freed. */
void sy_cluster_close(sy_cluster_t *c, void (*done)(void *data), void *data);

#endif
