/*
 * redis.c — the Redis connection (see redis.h).
 *
 * hiredis owns the socket and the reply parsing; this file owns the life cycle.
 * Every command goes through sy_redis_command, which remembers it (callback, data,
 * time sent) in a FIFO: Redis answers in order, so the head is always the oldest
 * command and one timer that looks at the head enforces every command's timeout.
 * When the connection drops for any reason, hiredis calls each pending command's
 * callback with a NULL reply (we pass that on), then our disconnect callback,
 * which schedules the next attempt.
 */
#include "stats/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libuv.h>

#include "router/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define DEFAULT_MAX_PENDING 8192

struct sy_redis_cmd_s {
  sy_redis_t *r;
  sy_redis_cmd_t *next, *prev;
  sy_redis_reply_cb cb;
  void *data;
  uint64_t sent; /* loop time, ms */
};

static void connect_now(sy_redis_t *r);

static void set_error(sy_redis_t *r, const char *what, const char *detail) {
  snprintf(r->last_error, sizeof r->last_error, "%s%s%s", what, detail ? ": " : "",
           detail ? detail : "");
}

static const char *addr_label(const sy_redis_t *r, char *buf, size_t n) {
  if (r->addr.is_unix)
    snprintf(buf, n, "unix:%s", r->addr.path);
  else
    snprintf(buf, n, "%s:%u", r->addr.host, r->addr.port);
  return buf;
}

static void on_retry(uv_timer_t *t) { connect_now(t->data); }

/* The next attempt after backoff (doubling, capped, +-25% jitter so that a fleet
 * of routers does not reconnect in lockstep). */
static void schedule_retry(sy_redis_t *r) {
  if (r->state == SY_REDIS_CLOSED)
    return;
  unsigned b = r->backoff_ms < BACKOFF_MIN_MS ? BACKOFF_MIN_MS : r->backoff_ms;
  unsigned delay = b - b / 4 + (unsigned)rand() % (b / 2 + 1);
  r->backoff_ms = b * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b * 2;
  r->state = SY_REDIS_DOWN;
  uv_timer_start(&r->retry_timer, on_retry, delay, 0);
}

static void went_down(sy_redis_t *r, const char *why) {
  int was_ready = r->state == SY_REDIS_READY;
  char label[300];
  r->ac = NULL;
  if (r->state != SY_REDIS_CLOSED)
    r->state = SY_REDIS_DOWN;
  if (was_ready) {
    r->disconnects++;
    sy_log_warn("redis %s down: %s", addr_label(r, label, sizeof label), why);
    if (r->on_state)
      r->on_state(r, 0, r->state_data);
  }
  schedule_retry(r);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  sy_redis_t *r = ac->data;
  if (r == NULL || r->ac != ac)
    return;
  if (status != REDIS_OK) {
    set_error(r, "connect", ac->errstr);
    went_down(r, r->last_error); /* hiredis frees ac after this returns */
    return;
  }
  char label[300];
  r->state = SY_REDIS_READY;
  r->backoff_ms = 0;
  r->connects++;
  sy_log_info("redis %s up", addr_label(r, label, sizeof label));
  if (r->addr.password[0] != '\0') {
    if (r->addr.username[0] != '\0')
      redisAsyncCommand(r->ac, NULL, NULL, "AUTH %s %s", r->addr.username, r->addr.password);
    else
      redisAsyncCommand(r->ac, NULL, NULL, "AUTH %s", r->addr.password);
  }
  if (r->addr.db != 0)
    redisAsyncCommand(r->ac, NULL, NULL, "SELECT %u", r->addr.db);
  if (r->on_state)
    r->on_state(r, 1, r->state_data);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  sy_redis_t *r = ac->data;
  if (r == NULL || r->ac != ac)
    return; /* a context we already gave up on (reset, close) */
  set_error(r, "connection lost", status == REDIS_OK ? NULL : ac->errstr);
  went_down(r, r->last_error);
}

static void connect_now(sy_redis_t *r) {
  if (r->state == SY_REDIS_CLOSED)
    return;
  redisAsyncContext *ac = r->addr.is_unix ? redisAsyncConnectUnix(r->addr.path)
                                          : redisAsyncConnect(r->addr.host, (int)r->addr.port);
  if (ac == NULL || ac->err) {
    set_error(r, "connect", ac ? ac->errstr : "out of memory");
    if (ac)
      redisAsyncFree(ac);
    schedule_retry(r);
    return;
  }
  ac->data = r;
  if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
    redisAsyncFree(ac);
    set_error(r, "connect", "cannot attach to the loop");
    schedule_retry(r);
    return;
  }
  r->ac = ac;
  r->state = SY_REDIS_CONNECTING;
  r->head = r->tail = NULL; /* every earlier command has been failed by hiredis */
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

/* Drops the oldest command that has waited too long, or a connect that hangs. */
static void on_tick(uv_timer_t *t) {
  sy_redis_t *r = t->data;
  uint64_t now = uv_now(r->loop);
  if (r->head != NULL && now - r->head->sent > r->timeout_ms)
    sy_redis_reset(r, "command timed out");
}

int sy_redis_open(sy_redis_t *r, uv_loop_t *loop, const sy_redis_addr_t *addr,
                  unsigned timeout_ms, sy_redis_state_cb on_state, void *state_data) {
  memset(r, 0, sizeof *r);
  r->loop = loop;
  r->addr = *addr;
  r->timeout_ms = timeout_ms ? timeout_ms : 2000;
  r->max_pending = DEFAULT_MAX_PENDING;
  r->on_state = on_state;
  r->state_data = state_data;
  int rc = uv_timer_init(loop, &r->retry_timer);
  if (rc == 0)
    rc = uv_timer_init(loop, &r->tick_timer);
  if (rc < 0)
    return rc;
  r->retry_timer.data = r->tick_timer.data = r;
  r->handles = 2;
  unsigned tick = r->timeout_ms / 4 < 250 ? r->timeout_ms / 4 + 1 : 250;
  uv_timer_start(&r->tick_timer, on_tick, tick, tick);
  connect_now(r);
  return 0;
}

static void unlink_cmd(sy_redis_t *r, sy_redis_cmd_t *c) {
  if (c->prev)
    c->prev->next = c->next;
  else if (r->head == c)
    r->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else if (r->tail == c)
    r->tail = c->prev;
  c->next = c->prev = NULL;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  sy_redis_cmd_t *c = privdata;
  sy_redis_t *r = c->r;
  sy_redis_reply_cb cb = c->cb;
  void *data = c->data;
  unlink_cmd(r, c);
  r->npending--;
  c->next = r->free_cmds;
  r->free_cmds = c;
  if (cb)
    cb(r, reply, data);
}

int sy_redis_command(sy_redis_t *r, sy_redis_reply_cb cb, void *data, int argc, const char **argv,
                     const size_t *argvlen) {
  if (r->state != SY_REDIS_READY || r->ac == NULL || r->npending >= r->max_pending)
    return -1;
  sy_redis_cmd_t *c = r->free_cmds;
  if (c != NULL)
    r->free_cmds = c->next;
  else if ((c = malloc(sizeof *c)) == NULL)
    return -1;
  memset(c, 0, sizeof *c);
  c->r = r;
  c->cb = cb;
  c->data = data;
  c->sent = uv_now(r->loop);
  if (redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, argvlen) != REDIS_OK) {
    c->next = r->free_cmds;
    r->free_cmds = c;
    return -1;
  }
  c->prev = r->tail;
  if (r->tail)
    r->tail->next = c;
  else
    r->head = c;
  r->tail = c;
  r->npending++;
  return 0;
}

void sy_redis_reset(sy_redis_t *r, const char *why) {
  redisAsyncContext *ac = r->ac;
  if (ac == NULL)
    return;
  if (strcmp(why, "command timed out") == 0)
    r->timeouts++;
  set_error(r, why, NULL);
  went_down(r, why); /* forgets ac first: its callbacks now fail commands only */
  redisAsyncFree(ac); /* pending commands get NULL replies (now, or when the
                         callback we may be inside returns) */
}

static void on_handle_closed(uv_handle_t *h) {
  sy_redis_t *r = h->data;
  if (--r->handles == 0) {
    sy_redis_cmd_t *c;
    while ((c = r->free_cmds) != NULL) {
      r->free_cmds = c->next;
      free(c);
    }
    if (r->on_closed)
      r->on_closed(r);
  }
}

void sy_redis_close(sy_redis_t *r, void (*on_closed)(sy_redis_t *r)) {
  if (r->state == SY_REDIS_CLOSED)
    return;
  redisAsyncContext *ac = r->ac;
  r->state = SY_REDIS_CLOSED;
  r->ac = NULL;
  r->on_closed = on_closed;
  r->on_state = NULL;
  if (ac != NULL)
    redisAsyncFree(ac);
  uv_close((uv_handle_t *)&r->retry_timer, on_handle_closed);
  uv_close((uv_handle_t *)&r->tick_timer, on_handle_closed);
}
