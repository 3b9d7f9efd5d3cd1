/*
 * redis_wait.c — a command followed by WAIT (see redis_wait.h).
 *
 * Both are pipelined on the link; replies come in order, so the command's reply is
 * held (copied: hiredis frees it when its callback returns) until the WAIT's arrives.
 */
#include "stats/redis_wait.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#define SKIP_MS 1000          /* WAIT left out this long after one came back short */
#define DEFAULT_WAIT_MS 100
#define LOG_EVERY_MS 10000

/* A durable command on its way: in r's FIFO from sending until passed on. */
typedef struct sy_redis_durable_s {
  struct sy_redis_durable_s *next;
  sy_redis_reply_cb cb;
  void *data;
  redisReply *held; /* the command's reply, copied, until its WAIT answers */
  int got;          /* the command has answered (held, or NULL when out of memory) */
  uint64_t wait_id; /* the WAIT sent after it (0: none yet) */
  int direct;       /* no WAIT covers it: passed on as soon as it answers */
} durable_t;

static void pass_on(sy_redis_t *r, durable_t *d, redisReply *reply) {
  r->dur_head = d->next;
  if (r->dur_head == NULL)
    r->dur_tail = NULL;
  d->cb(r, reply, d->data);
  if (d->held != NULL)
    freeReplyObject(d->held);
  free(d);
}

static void on_wait(sy_redis_t *r, redisReply *reply, void *data);

/* WAIT after everything sent so far: it covers every command not yet covered. */
static void send_wait(sy_redis_t *r) {
  char n[16], ms[16];
  uint64_t id = ++r->wait_seq;
  snprintf(n, sizeof n, "%u", r->opts.wait_replicas);
  snprintf(ms, sizeof ms, "%u", r->opts.wait_timeout_ms ? r->opts.wait_timeout_ms : DEFAULT_WAIT_MS);
  const char *argv[] = {"WAIT", n, ms};
  size_t lens[] = {4, strlen(n), strlen(ms)};
  int ok = sy_redis_command(r, on_wait, (void *)(uintptr_t)id, 3, argv, lens) == 0;
  for (durable_t *d = r->dur_head; d != NULL; d = d->next)
    if (!d->direct && d->wait_id == 0) {
      if (ok)
        d->wait_id = id;
      else
        d->direct = 1;
    }
  if (ok) {
    r->wait_inflight = 1;
    r->waits++;
  }
}

/* The head of the FIFO is passed on while it is direct and has answered. */
static void drain_direct(sy_redis_t *r) {
  while (r->dur_head != NULL && r->dur_head->direct && r->dur_head->got)
    pass_on(r, r->dur_head, r->dur_head->held);
}

static void on_cmd(sy_redis_t *r, redisReply *reply, void *data) {
  durable_t *d = data;
  d->got = 1;
  if (reply == NULL) {
    /* the connection went: everything before d has been failed already (in order),
     * so d is the head; the caller resends (harmless: sequence numbers) */
    d->direct = 1;
  } else if ((d->held = sy_redis_reply_copy(reply)) == NULL) {
    sy_log_error("redis: out of memory holding a reply until its WAIT");
  }
  drain_direct(r);
}

static void log_short(sy_redis_t *r, const redisReply *reply) {
  uint64_t now = uv_now(r->loop);
  if (now - r->wait_logged_at < LOG_EVERY_MS && r->wait_logged_at != 0)
    return;
  r->wait_logged_at = now;
  if (reply->type == REDIS_REPLY_INTEGER)
    sy_log_warn("redis: WAIT %u: only %lld replica(s) acknowledged within %u ms; %s (%llu short "
                "so far)",
                r->opts.wait_replicas, reply->integer, r->opts.wait_timeout_ms,
                r->opts.wait_strict ? "batches are not acknowledged (redis.wait_strict): events "
                                      "wait in memory and in the spool until replicas are back"
                                    : "batches are acknowledged on the primary alone until "
                                      "replicas catch up",
                (unsigned long long)r->wait_short);
  else
    sy_log_warn("redis: WAIT refused: %.200s", reply->type == REDIS_REPLY_ERROR ? reply->str : "?");
}

static void on_wait(sy_redis_t *r, redisReply *reply, void *data) {
  uint64_t id = (uint64_t)(uintptr_t)data;
  r->wait_inflight = 0; /* commands sent from the callbacks below get a WAIT of their own */
  int short_ = reply != NULL && (reply->type != REDIS_REPLY_INTEGER ||
                                 reply->integer < (long long)r->opts.wait_replicas);
  if (short_) {
    r->wait_short++;
    log_short(r, reply);
    if (r->opts.wait_strict) {
      /* not acknowledged: the covered commands fail (the journal resends them, from
       * the spool if need be), and the link starts again after backoff */
      while (r->dur_head != NULL && r->dur_head->wait_id == id)
        pass_on(r, r->dur_head, NULL);
      for (durable_t *d = r->dur_head; d != NULL; d = d->next)
        d->direct = 1;
      char why[160];
      snprintf(why, sizeof why, "redis.wait_replicas: fewer than %u replica(s) acknowledged "
               "within %u ms (wait_strict)", r->opts.wait_replicas, r->opts.wait_timeout_ms);
      r->wait_penalty = 1;
      sy_redis_reset(r, why);
      return;
    }
    r->wait_skip_until = uv_now(r->loop) + SKIP_MS;
  } else if (reply != NULL && r->wait_penalty) {
    r->wait_penalty = 0;
    r->backoff_ms = 0;
  }
  if (reply == NULL || short_)
    for (durable_t *d = r->dur_head; d != NULL; d = d->next)
      if (d->wait_id != id)
        d->direct = 1; /* the connection went, or no WAIT for a while: as they answer */
  /* The commands this WAIT covers have all answered (they came before it): pass
   * them on, with NULL if the connection went before the WAIT answered. */
  while (r->dur_head != NULL && r->dur_head->wait_id == id)
    pass_on(r, r->dur_head, reply != NULL ? r->dur_head->held : NULL);
  drain_direct(r);
  int uncovered = 0;
  for (durable_t *d = r->dur_head; d != NULL && !uncovered; d = d->next)
    uncovered = !d->direct && d->wait_id == 0;
  if (uncovered && !r->wait_inflight)
    send_wait(r); /* the commands sent while this WAIT was in the pipeline */
}

/* Sends argv (or, argv NULL, the RESP at resp) as sy_redis_command or _formatted. */
static int send_either(sy_redis_t *r, sy_redis_reply_cb cb, void *data, int argc,
                       const char **argv, const size_t *argvlen, const char *resp, size_t len) {
  return argv != NULL ? sy_redis_command(r, cb, data, argc, argv, argvlen)
                      : sy_redis_formatted(r, cb, data, resp, len);
}

static int durable(sy_redis_t *r, sy_redis_reply_cb cb, void *data, int argc, const char **argv,
                   const size_t *argvlen, const char *resp, size_t len) {
  if (r->opts.wait_replicas == 0 ||
      (uv_now(r->loop) < r->wait_skip_until && r->dur_head == NULL))
    return send_either(r, cb, data, argc, argv, argvlen, resp, len);
  durable_t *d = calloc(1, sizeof *d);
  if (d == NULL)
    return -1;
  d->cb = cb;
  d->data = data;
  if (send_either(r, on_cmd, d, argc, argv, argvlen, resp, len) < 0) {
    free(d);
    return -1;
  }
  if (r->dur_tail != NULL)
    r->dur_tail->next = d;
  else
    r->dur_head = d;
  r->dur_tail = d;
  if (uv_now(r->loop) < r->wait_skip_until)
    d->direct = 1; /* behind commands still held: in order, but without a WAIT */
  else if (!r->wait_inflight)
    send_wait(r);
  /* else: covered by the WAIT sent when the one in the pipeline answers */
  return 0;
}

int sy_redis_command_durable(sy_redis_t *r, sy_redis_reply_cb cb, void *data, int argc,
                             const char **argv, const size_t *argvlen) {
  return durable(r, cb, data, argc, argv, argvlen, NULL, 0);
}

int sy_redis_formatted_durable(sy_redis_t *r, sy_redis_reply_cb cb, void *data, const char *resp,
                               size_t len) {
  return durable(r, cb, data, 0, NULL, NULL, resp, len);
}
