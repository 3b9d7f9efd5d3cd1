/*
 * redis.h — switchyard's Redis connection: hiredis's async API on the worker's
 * libuv loop, with the things a proxy on the request path needs and hiredis 0.14
 * does not give: connection states, reconnection with capped, jittered backoff,
 * per-command timeouts (a command unanswered for timeout_ms drops the connection,
 * so every pending command fails fast instead of hanging), and a bound on the
 * commands in flight. Commands are pipelined: each is written as soon as the
 * socket takes it, replies come back in order.
 *
 * Nothing here blocks the loop. While the connection is down, sy_redis_command
 * refuses at once (returns -1); callers decide whether to queue (stats/journal.c)
 * or to answer "unavailable" (the feedback API).
 */
#ifndef SY_REDIS_H
#define SY_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "stats/redis_url.h"

typedef struct sy_redis_s sy_redis_t;

/* A command's reply; reply is NULL when the command failed without one
 * (connection lost, timed out, or the client closed). It is freed after the call. */
typedef void (*sy_redis_reply_cb)(sy_redis_t *r, redisReply *reply, void *data);
/* The connection became ready (up = 1: connected, handshake sent) or went down. */
typedef void (*sy_redis_state_cb)(sy_redis_t *r, int up, void *data);

typedef enum { SY_REDIS_DOWN = 0, SY_REDIS_CONNECTING, SY_REDIS_READY, SY_REDIS_CLOSED } sy_redis_state_t;

typedef struct sy_redis_cmd_s sy_redis_cmd_t;

struct sy_redis_s {
  uv_loop_t *loop;
  sy_redis_addr_t addr;
  redisAsyncContext *ac;
  sy_redis_state_t state;
  uv_timer_t retry_timer; /* reconnect after backoff */
  uv_timer_t tick_timer;  /* command timeouts */
  unsigned timeout_ms;
  unsigned backoff_ms;
  unsigned max_pending;
  sy_redis_cmd_t *head, *tail; /* commands in flight, oldest first */
  sy_redis_cmd_t *free_cmds;
  unsigned npending;
  unsigned handles;
  sy_redis_state_cb on_state;
  void *state_data;
  void (*on_closed)(sy_redis_t *r);
  uint64_t connects, disconnects, timeouts;
  char last_error[160];
};

/* Starts connecting to addr (and keeps reconnecting until closed). timeout_ms is
 * the per-command timeout. on_state is called on every transition up or down.
 * Returns 0, or a libuv error. */
int sy_redis_open(sy_redis_t *r, uv_loop_t *loop, const sy_redis_addr_t *addr,
                  unsigned timeout_ms, sy_redis_state_cb on_state, void *state_data);
static inline int sy_redis_ready(const sy_redis_t *r) { return r->state == SY_REDIS_READY; }
/* Sends a command (argv with lengths). Returns 0 (cb will be called exactly once)
 * or -1 when not connected or too many commands are in flight (cb is not called). */
int sy_redis_command(sy_redis_t *r, sy_redis_reply_cb cb, void *data, int argc, const char **argv,
                     const size_t *argvlen);
/* Drops the connection now (pending commands fail) and reconnects after backoff. */
void sy_redis_reset(sy_redis_t *r, const char *why);
/* Closes for good; pending commands fail; on_closed (may be NULL) runs once every
 * handle is closed, after which r may be freed. */
void sy_redis_close(sy_redis_t *r, void (*on_closed)(sy_redis_t *r));

#endif
