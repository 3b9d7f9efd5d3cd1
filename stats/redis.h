/*
 * redis.h — switchyard's Redis connection: hiredis's async API on the worker's
 * libuv loop, with the things a proxy on the request path needs and hiredis 0.14
 * does not give:
 *
 *   - name resolution off the loop (uv_getaddrinfo, again before every attempt, so a
 *     Redis that comes back on the same name with a new address is found); every
 *     address of the name is tried in turn;
 *   - a deadline on each attempt: connecting and the handshake (AUTH, SELECT, PING)
 *     must finish within connect_timeout_ms, or the attempt is abandoned;
 *   - a handshake that is answered before the link counts as up: a wrong password or
 *     a Redis still loading its data set (-LOADING) is an error line and a retry with
 *     backoff, never a busy loop;
 *   - reconnection with doubling, jittered backoff, never longer than backoff_max_ms;
 *   - per-command timeouts (a command unanswered for timeout_ms drops the connection,
 *     so every pending command fails fast instead of hanging), an idle PING so that a
 *     peer that vanished without a RST is noticed with no traffic, and TCP keepalive;
 *   - a bound on the commands in flight.
 *
 * With a Sentinel setup (addr.nsentinels > 0, stats/sentinel.h) each attempt first
 * asks the sentinels for the primary (off the loop), the handshake ends with ROLE
 * (a server that is not a master is dropped and the sentinels asked again after a
 * short backoff), a -READONLY reply ends the link, and a fail-over announced by the
 * sentinels (+switch-master) ends it at once and reconnects without backoff.
 *
 * Commands are pipelined: each is written as soon as the socket takes it, replies
 * come back in order. Nothing here blocks the loop. While the link is not READY,
 * sy_redis_command refuses at once (returns -1); callers decide whether to queue
 * (stats/journal.c) or to answer "unavailable" (the feedback API).
 *
 * Error convention: 0 / -1, or a libuv code from sy_redis_open.
 */
#ifndef SY_REDIS_H
#define SY_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

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

/* DOWN (waiting for the next attempt) -> [ASKING the sentinels ->] RESOLVING ->
 * CONNECTING -> HANDSHAKE -> READY; any failure goes back to DOWN. CLOSED is final. */
typedef enum {
  SY_REDIS_DOWN = 0,
  SY_REDIS_ASKING,
  SY_REDIS_RESOLVING,
  SY_REDIS_CONNECTING,
  SY_REDIS_HANDSHAKE,
  SY_REDIS_READY,
  SY_REDIS_CLOSED
} sy_redis_state_t;

typedef struct sy_redis_opts_s {
  unsigned timeout_ms;         /* per command; 0: 2000 */
  unsigned connect_timeout_ms; /* resolve + connect + handshake; 0: timeout_ms */
  unsigned backoff_max_ms;     /* the longest wait between attempts; 0: 2000 */
  unsigned ping_ms;            /* an idle link is PINGed this often; 0: 1000 */
  unsigned wait_replicas;      /* sy_redis_command_durable: WAIT for this many replicas */
  unsigned wait_timeout_ms;    /* ... at most this long; 0: 100 */
  int wait_strict;             /* a short WAIT fails the commands (else: they pass) */
} sy_redis_opts_t;

struct sy_redis_resolve_s;
struct sy_sentinel_s;

typedef struct sy_redis_cmd_s sy_redis_cmd_t;

struct sy_redis_s {
  uv_loop_t *loop;
  sy_redis_addr_t addr;
  redisAsyncContext *ac;
  sy_redis_state_t state;
  uv_timer_t retry_timer; /* the next attempt after backoff */
  uv_timer_t tick_timer;  /* deadlines: commands, attempts, idle PING */
  sy_redis_opts_t opts;
  unsigned backoff_ms;
  unsigned max_pending;
  sy_redis_cmd_t *head, *tail; /* commands in flight, oldest first */
  sy_redis_cmd_t *free_cmds;
  unsigned npending;
  unsigned handles;              /* timers and resolutions still to finish */
  struct sy_redis_resolve_s *resolving; /* the resolution in flight, or NULL */
  struct sockaddr_storage addrs[8]; /* the name's addresses, from the last resolution */
  unsigned naddrs, next_addr;
  char peer[64];                 /* the numeric address of the current attempt */
  unsigned handshake_left;       /* handshake replies still to come */
  uint64_t attempt_started;      /* loop ms */
  uint64_t last_sent;            /* loop ms of the last command written */
  uint64_t down_since;           /* loop ms the link went down (or opened); 0 when up */
  uint64_t last_outage_ms;       /* how long the last outage lasted (set when back up) */
  uint64_t down_total_ms;        /* every finished outage, added up */
  unsigned attempts;             /* attempts in the current outage */
  sy_redis_state_cb on_state;
  void *state_data;
  void (*on_closed)(sy_redis_t *r);
  struct sy_sentinel_s *sentinel; /* with addr.nsentinels: the asking and the watch */
  uint64_t connects, disconnects, timeouts, switches;
  uint64_t waits, wait_short;     /* WAITs sent and come back short (stats/redis_wait.c) */
  uint64_t wait_skip_until, wait_logged_at;
  struct sy_redis_durable_s *dur_head, *dur_tail; /* durable commands not yet passed on */
  int wait_inflight;              /* a WAIT is in the pipeline */
  uint64_t wait_seq;              /* the last WAIT's number */
  int wait_penalty;               /* the link was reset for a short WAIT (wait_strict) */
  char last_error[256];
  char logged_error[256];        /* the attempt error last logged (not repeated) */
  uint64_t logged_at;
};

/* Starts connecting to addr (and keeps reconnecting until closed). on_state is
 * called on every transition to READY (up = 1) and out of it (up = 0). Returns 0,
 * or a libuv error. */
int sy_redis_open(sy_redis_t *r, uv_loop_t *loop, const sy_redis_addr_t *addr,
                  const sy_redis_opts_t *opts, sy_redis_state_cb on_state, void *state_data);
static inline int sy_redis_ready(const sy_redis_t *r) { return r->state == SY_REDIS_READY; }
/* Milliseconds the link has been down now (0 while it is up). */
uint64_t sy_redis_down_ms(const sy_redis_t *r);
/* Master switches followed so far (Redis Sentinel; 0 otherwise). */
uint64_t sy_redis_switches(const sy_redis_t *r);
/* "host:port" or "unix:/path", for logs. */
const char *sy_redis_label(const sy_redis_t *r, char *buf, size_t n);
/* Sends a command (argv with lengths). Returns 0 (cb will be called exactly once)
 * or -1 when not connected or too many commands are in flight (cb is not called). */
int sy_redis_command(sy_redis_t *r, sy_redis_reply_cb cb, void *data, int argc, const char **argv,
                     const size_t *argvlen);
/* As sy_redis_command, for a command the caller has already written in RESP (len
 * bytes at resp, copied before the call returns). */
int sy_redis_formatted(sy_redis_t *r, sy_redis_reply_cb cb, void *data, const char *resp,
                       size_t len);
/* A deep copy of a reply that freeReplyObject frees (calloc'd reply, str and element
 * array), for a reply kept past its callback; NULL when out of memory. */
redisReply *sy_redis_reply_copy(const redisReply *r);
/* Drops the connection now (pending commands fail) and reconnects after backoff. */
void sy_redis_reset(sy_redis_t *r, const char *why);
/* Closes for good; pending commands fail; on_closed (may be NULL) runs once every
 * handle is closed, after which r may be freed. */
void sy_redis_close(sy_redis_t *r, void (*on_closed)(sy_redis_t *r));

#endif
