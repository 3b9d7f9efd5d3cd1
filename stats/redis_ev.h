/*
 * redis_ev.h — hiredis's async API on a libuv loop: the adapter that plugs a
 * redisAsyncContext's socket into a uv_poll_t. Shared by the data link
 * (stats/redis.c) and the Sentinel watch (stats/sentinel.c).
 *
 * It is our own, not hiredis 0.14's adapters/libuv.h: that one returns early when
 * the poll reports an error status, and libuv reports a refused non-blocking TCP
 * connect exactly that way (POLLERR), so hiredis never learned that its connect had
 * failed and the link stayed in "connecting" for ever.
 *
 * Error convention: 0 / -1.
 */
#ifndef SY_REDIS_EV_H
#define SY_REDIS_EV_H

#include <hiredis/async.h>
#include <uv.h>

/* Attaches ac to loop (hiredis then frees the adapter through its cleanup hook when
 * ac is freed). Returns 0, or -1 (out of memory, bad fd): ac is untouched and the
 * caller frees it. */
int sy_redis_ev_attach(redisAsyncContext *ac, uv_loop_t *loop);

/* TCP keepalive on fd (idle 5 s, then 3 probes 2 s apart): a peer that vanished
 * without a RST is noticed even with no traffic. */
void sy_redis_ev_keepalive(int fd);

#endif
