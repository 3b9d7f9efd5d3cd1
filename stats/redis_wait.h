/*
 * redis_wait.h — writes that count as done only once a replica has them, for a
 * primary that can fail over (Redis Sentinel): the command, then WAIT.
 *
 * Redis replicates asynchronously: a primary that acknowledged a write and died
 * before its replica received it loses that write in the fail-over. The journal
 * (stats/journal.c) forgets a batch once acknowledged, so such a loss would be an
 * event lost for good. With redis.wait_replicas = N > 0 every journal batch is
 * followed by `WAIT N wait_timeout_ms`, pipelined, and the batch's reply is passed on
 * only when the WAIT has answered: a batch is acknowledged once N replicas have it.
 * WAIT blocks the connection until it answers, so one is in the pipeline at a time:
 * it covers every durable command sent before it, and the ones sent while it is
 * pending are covered by the next, sent as soon as it answers. A full pipeline of
 * batches thus costs one replication round trip, not one per batch.
 *
 * When the WAIT comes back short (fewer replicas than N within the timeout: no
 * replica is up, the one left was just promoted), the batch is acknowledged anyway
 * (it is on the primary, as without WAIT), the shortfall is counted and logged, and
 * WAIT is left out for the next second: WAIT blocks the connection for its timeout,
 * so with no replica to wait for, every batch would otherwise cost the full timeout
 * and the commands behind it would queue. A durable write is therefore "on N
 * replicas, or on the primary while it has fewer than N": the same promise as the
 * primary's own `min-replicas-to-write`, which is the way to refuse writes instead.
 */
#ifndef SY_REDIS_WAIT_H
#define SY_REDIS_WAIT_H

#include <stddef.h>

#include "stats/redis.h"

/* As sy_redis_command, followed by WAIT r->opts.wait_replicas when that is not 0
 * (see above); cb gets the command's own reply (or NULL if the connection went
 * before both answers came). Returns 0 (cb will be called exactly once) or -1 (cb
 * is not called). */
int sy_redis_command_durable(sy_redis_t *r, sy_redis_reply_cb cb, void *data, int argc,
                             const char **argv, const size_t *argvlen);
/* The same for a command already written in RESP (sy_redis_formatted). */
int sy_redis_formatted_durable(sy_redis_t *r, sy_redis_reply_cb cb, void *data, const char *resp,
                               size_t len);

#endif
