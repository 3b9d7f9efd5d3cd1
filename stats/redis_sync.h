/*
 * redis_sync.h — a synchronous Redis connection, for the one-shot commands (status,
 * history, promote...) and the admin API's jobs, which run on libuv's thread pool:
 * never on an event loop. Every connect and every reply has a timeout.
 *
 * Error convention (stats/): a call that fails returns NULL or -1 and leaves one line
 * saying why in r->err ("cannot connect to Redis at 10.0.0.9:6379: Connection
 * refused", "redis: no answer in time (timeout)", "redis: WRONGTYPE ..."); nothing is
 * printed, so a CLI prints it and the admin API answers it. The text never holds a
 * password.
 */
#ifndef SY_REDIS_SYNC_H
#define SY_REDIS_SYNC_H

#include <stdarg.h>
#include <stddef.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "stats/redis_url.h"

typedef struct sy_rsync_s {
  redisContext *c; /* NULL until connected */
  char err[512];   /* why the last call failed */
  sy_redis_addr_t addr; /* where c is connected (a cluster redirection moves it) */
  unsigned timeout_ms;
} sy_rsync_t;

/* Connects (and AUTH, SELECT) with timeout_ms for the connect and for each reply.
 * With a Sentinel setup (a->nsentinels > 0) the sentinels are asked for the
 * primary first (sy_sentinel_ask_sync) and the server found must say ROLE master
 * (asked again, up to 3 times 300 ms apart, while a fail-over settles).
 * Returns 0, or -1 with r->err (r->c is then NULL). On Redis Cluster, any node will
 * do: sy_rsync_command and sy_rsync_argv follow MOVED and ASK replies (connecting to
 * the node named, with the same credentials); a pipeline (sy_rsync_get_reply) does
 * not, so its commands should be about the slot of the command before it. */
int sy_rsync_connect(sy_rsync_t *r, const sy_redis_addr_t *a, unsigned timeout_ms);
/* Blocking (a CLI, or libuv's thread pool): asks a's sentinels, in turn from index
 * start (mod a->nsentinels), for the primary of a->master (SENTINEL
 * get-master-addr-by-name), with timeout_ms for each connect and each reply.
 * Returns 0 with *primary, *answered (the index of the sentinel that answered) and
 * sentinel_ip (its numeric address, for a later subscription; size >= 64), or -1 with
 * a line in err naming redis.master and every sentinel asked with its answer. */
int sy_sentinel_ask_sync(const sy_redis_addr_t *a, unsigned timeout_ms, unsigned start,
                         sy_redis_hostport_t *primary, unsigned *answered, char *sentinel_ip,
                         char *err, size_t errlen);
/* Closes the connection (r can be connected again). */
void sy_rsync_close(sy_rsync_t *r);
/* A command's reply (free it with freeReplyObject), or NULL with r->err on a
 * connection failure, a timeout or an error reply. */
redisReply *sy_rsync_command(sy_rsync_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
redisReply *sy_rsync_vcommand(sy_rsync_t *r, const char *fmt, va_list ap);
redisReply *sy_rsync_argv(sy_rsync_t *r, int argc, const char **argv, const size_t *lens);
/* Reads one reply of a pipeline (redisAppendCommand on r->c); as sy_rsync_command. */
redisReply *sy_rsync_get_reply(sy_rsync_t *r);
/* An HGETALL reply as a JSON object {field: value} (string pairs only; an empty
 * object for any other reply), or NULL when out of memory. For async replies too. */
json_t *sy_redis_hash_json(const redisReply *r);
/* Sets r->err from fmt; returns -1 (for `return sy_rsync_fail(...)`). */
int sy_rsync_fail(sy_rsync_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
