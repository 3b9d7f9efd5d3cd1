/*
 * redis.c — the Redis connection (see redis.h).
 *
 * hiredis owns the socket and the reply parsing; this file owns the life cycle:
 *
 *   DOWN --retry timer--> RESOLVING --uv_getaddrinfo--> CONNECTING --connect cb-->
 *   HANDSHAKE --AUTH/SELECT/PING answered--> READY
 *
 * Every state but DOWN and READY has a deadline (opts.connect_timeout_ms from the
 * attempt's start), checked by one tick timer, so an attempt that neither succeeds
 * nor fails — a SYN into the void, a peer that accepts and never answers, a
 * resolver that hangs — is abandoned and retried after backoff. Nothing depends on
 * hiredis or the kernel reporting a failure.
 *
 * Every command goes through send_cmd, which remembers it (callback, data, time
 * sent) in a FIFO: Redis answers in order, so the head is always the oldest command
 * and the same tick enforces every command's timeout. An idle READY link is PINGed
 * so that a vanished peer is noticed without traffic. When the connection drops for
 * any reason, hiredis calls each pending command's callback with a NULL reply (we
 * pass that on), then our disconnect callback, which schedules the next attempt.
 *
 * The libuv adapter is stats/redis_ev.c's. With a Sentinel setup (addr.nsentinels)
 * every attempt starts in ASKING: stats/sentinel.c asks the sentinels for the
 * primary's address off the loop, the handshake ends with ROLE (a replica is
 * refused), and a +switch-master from the sentinels' channel ends the link at once.
 */
#include "stats/redis.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "stats/redis_ev.h"
#include "stats/sentinel.h"

#define BACKOFF_MIN_MS 100
#define DEFAULT_TIMEOUT_MS 2000
#define DEFAULT_BACKOFF_MAX_MS 2000
#define DEFAULT_PING_MS 1000
#define DEFAULT_MAX_PENDING 8192
#define LOG_REPEAT_MS 60000 /* the same attempt error is logged at most this often */

struct sy_redis_cmd_s {
  sy_redis_t *r;
  sy_redis_cmd_t *next, *prev;
  sy_redis_reply_cb cb;
  void *data;
  uint64_t sent; /* loop time, ms */
};

/* One uv_getaddrinfo in flight. It outlives an abandoned attempt (a running
 * resolution cannot be stopped): r->resolving then points elsewhere and the result
 * is dropped. Counted in r->handles so that close waits for it. */
typedef struct sy_redis_resolve_s {
  uv_getaddrinfo_t req;
  sy_redis_t *r;
} resolve_t;

static void start_attempt(sy_redis_t *r);
static void log_attempt_error(sy_redis_t *r, int level, const char *what);

static void set_error(sy_redis_t *r, const char *what, const char *detail) {
  snprintf(r->last_error, sizeof r->last_error, "%s%s%s", what, detail ? ": " : "",
           detail ? detail : "");
}

const char *sy_redis_label(const sy_redis_t *r, char *buf, size_t n) {
  if (r->addr.is_unix)
    snprintf(buf, n, "unix:%s", r->addr.path);
  else if (r->addr.nsentinels > 0 && r->addr.host[0] == '\0')
    snprintf(buf, n, "master '%s' (not located yet)", r->addr.master);
  else if (r->addr.nsentinels > 0)
    snprintf(buf, n, "%s:%u (master '%s')", r->addr.host, r->addr.port, r->addr.master);
  else if (strchr(r->addr.host, ':') != NULL)
    snprintf(buf, n, "[%s]:%u", r->addr.host, r->addr.port);
  else
    snprintf(buf, n, "%s:%u", r->addr.host, r->addr.port);
  return buf;
}

uint64_t sy_redis_switches(const sy_redis_t *r) { return r->switches; }

uint64_t sy_redis_down_ms(const sy_redis_t *r) {
  if (r->state == SY_REDIS_READY || r->down_since == 0)
    return 0;
  return uv_now(r->loop) - r->down_since;
}

/* ---- commands -------------------------------------------------------------------------- */

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
  const redisReply *rep = reply;
  unlink_cmd(r, c);
  r->npending--;
  c->next = r->free_cmds;
  r->free_cmds = c;
  /* A primary turned replica (a fail-over it missed, or a DNS name now pointing at a
   * replica): every write will be refused. Reconnect (asking the sentinels again). */
  int readonly = rep != NULL && rep->type == REDIS_REPLY_ERROR && rep->str != NULL &&
                 strstr(rep->str, "READONLY") != NULL;
  if (cb)
    cb(r, reply, data);
  if (readonly && r->ac == ac && r->state == SY_REDIS_READY) {
    log_attempt_error(r, 1, "the server is a replica now (READONLY); reconnecting");
    sy_redis_reset(r, "the server is a replica now (READONLY)");
  }
}

/* Writes a command on the current connection, whatever the state: argv with lengths,
 * or (argv NULL) `resp`, resplen bytes already in RESP. */
static int send_cmd(sy_redis_t *r, sy_redis_reply_cb cb, void *data, int argc, const char **argv,
                    const size_t *argvlen, const char *resp, size_t resplen) {
  if (r->ac == NULL || r->npending >= r->max_pending)
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
  int rc = argv != NULL ? redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, argvlen)
                        : redisAsyncFormattedCommand(r->ac, on_reply, c, resp, resplen);
  if (rc != REDIS_OK) {
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
  r->last_sent = c->sent;
  return 0;
}

int sy_redis_command(sy_redis_t *r, sy_redis_reply_cb cb, void *data, int argc, const char **argv,
                     const size_t *argvlen) {
  if (r->state != SY_REDIS_READY)
    return -1;
  return send_cmd(r, cb, data, argc, argv, argvlen, NULL, 0);
}

int sy_redis_formatted(sy_redis_t *r, sy_redis_reply_cb cb, void *data, const char *resp,
                       size_t len) {
  if (r->state != SY_REDIS_READY)
    return -1;
  return send_cmd(r, cb, data, 0, NULL, NULL, resp, len);
}

/* ---- going down, and the next attempt ---------------------------------------------- */

static void on_retry(uv_timer_t *t) { start_attempt(t->data); }

/* The next attempt after backoff: doubling from BACKOFF_MIN_MS, +-25% jitter so that
 * a fleet of routers does not reconnect in lockstep, and never more than the cap. */
static void schedule_retry(sy_redis_t *r) {
  if (r->state == SY_REDIS_CLOSED)
    return;
  unsigned cap = r->opts.backoff_max_ms;
  unsigned b = r->backoff_ms < BACKOFF_MIN_MS ? BACKOFF_MIN_MS : r->backoff_ms;
  if (b > cap)
    b = cap;
  unsigned delay = b - b / 4 + (unsigned)rand() % (b / 2 + 1);
  if (delay > cap)
    delay = cap;
  r->backoff_ms = b * 2 > cap ? cap : b * 2;
  r->state = SY_REDIS_DOWN;
  uv_timer_start(&r->retry_timer, on_retry, delay, 0);
}

/* Logs an attempt's error unless the same one was logged in the last minute:
 * a wrong password retried every two seconds is one line, not a flood. */
static void log_attempt_error(sy_redis_t *r, int level, const char *what) {
  uint64_t now = uv_now(r->loop);
  if (strcmp(r->logged_error, what) == 0 && now - r->logged_at < LOG_REPEAT_MS)
    return;
  snprintf(r->logged_error, sizeof r->logged_error, "%s", what);
  r->logged_at = now;
  char label[300];
  sy_redis_label(r, label, sizeof label);
  if (level == 2)
    sy_log_error("redis %s: %s (retrying every %u ms at most)", label, what,
                 r->opts.backoff_max_ms);
  else if (level == 1)
    sy_log_warn("redis %s: %s (retrying every %u ms at most)", label, what,
                r->opts.backoff_max_ms);
  else
    sy_log_info("redis %s: %s; retrying", label, what);
}

/* The link or the attempt is over: forget the context (its callbacks now only fail
 * commands), tell the owner if the link was up, and schedule the next attempt. */
static void went_down(sy_redis_t *r) {
  int was_ready = r->state == SY_REDIS_READY;
  r->ac = NULL;
  r->handshake_left = 0;
  if (r->state == SY_REDIS_CLOSED)
    return;
  r->state = SY_REDIS_DOWN;
  if (was_ready) {
    r->disconnects++;
    r->down_since = uv_now(r->loop);
    if (r->down_since == 0)
      r->down_since = 1;
    r->attempts = 0;
    r->logged_error[0] = '\0';
    if (r->on_state)
      r->on_state(r, 0, r->state_data);
  }
  schedule_retry(r);
}

/* Ends the current connection or attempt now (pending commands fail). */
static void drop_link(sy_redis_t *r) {
  redisAsyncContext *ac = r->ac;
  went_down(r);
  if (ac != NULL)
    redisAsyncFree(ac); /* pending commands get NULL replies (now, or when the callback
                           we may be inside returns) */
}

void sy_redis_reset(sy_redis_t *r, const char *why) {
  if (r->ac == NULL)
    return;
  if (strcmp(why, "command timed out") == 0)
    r->timeouts++;
  set_error(r, why, NULL);
  drop_link(r);
}

/* ---- the handshake ------------------------------------------------------------------ */

static void became_ready(sy_redis_t *r) {
  r->state = SY_REDIS_READY;
  if (!r->wait_penalty) /* a strict WAIT came back short: keep backing off until one does not */
    r->backoff_ms = 0;
  r->connects++;
  if (r->down_since != 0) {
    r->last_outage_ms = uv_now(r->loop) - r->down_since;
    r->down_total_ms += r->last_outage_ms;
    r->down_since = 0;
  }
  r->attempts = 0;
  r->logged_error[0] = '\0';
  r->last_error[0] = '\0';
  if (r->on_state)
    r->on_state(r, 1, r->state_data);
}

/* A reply of the handshake; data is the attempt's connection. */
static void on_handshake(sy_redis_t *r, redisReply *reply, void *data) {
  if (r->state != SY_REDIS_HANDSHAKE || data != r->ac || reply == NULL)
    return; /* an attempt given up on; or the connection went (on_disconnect) */
  if (reply->type == REDIS_REPLY_ERROR) {
    const char *e = reply->str;
    char what[200];
    int level = 1;
    if (strncmp(e, "LOADING", 7) == 0) {
      snprintf(what, sizeof what, "still loading its data set");
      level = 0;
    } else if (strncmp(e, "WRONGPASS", 9) == 0 || strncmp(e, "NOAUTH", 6) == 0 ||
               strstr(e, "password") != NULL || strstr(e, "AUTH") != NULL) {
      snprintf(what, sizeof what, "authentication failed: %.150s", e);
      level = 2;
    } else {
      snprintf(what, sizeof what, "handshake refused: %.150s", e);
    }
    set_error(r, what, NULL);
    log_attempt_error(r, level, what);
    drop_link(r);
    return;
  }
  if (--r->handshake_left == 0)
    became_ready(r);
}

/* ROLE, with a Sentinel setup: the server the sentinels named must be a master; a
 * replica (the sentinels' answer was stale, or a fail-over is under way) is dropped
 * and the sentinels are asked again after a short backoff. */
static void on_role(sy_redis_t *r, redisReply *reply, void *data) {
  if (r->state != SY_REDIS_HANDSHAKE || data != r->ac || reply == NULL)
    return;
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
      reply->element[0]->type == REDIS_REPLY_STRING &&
      strcmp(reply->element[0]->str, "master") != 0) {
    char what[200];
    snprintf(what, sizeof what, "not the primary of '%.100s' (ROLE %.20s); asking the sentinels again",
             r->addr.master, reply->element[0]->str);
    set_error(r, what, NULL);
    log_attempt_error(r, 1, what);
    drop_link(r);
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOPERM", 6) == 0) {
    /* an ACL user without ROLE: the sentinels' word is taken, and a -READONLY reply
     * would still end the link */
    log_attempt_error(r, 1, "ROLE not permitted (NOPERM): cannot check it is the primary");
    if (--r->handshake_left == 0)
      became_ready(r);
    return;
  }
  on_handshake(r, reply, data); /* "master", or an error to report as the handshake's */
}

static void start_handshake(sy_redis_t *r) {
  const char *argv[3];
  size_t lens[3];
  int argc = 0;
  r->state = SY_REDIS_HANDSHAKE;
  r->handshake_left = 0;
  void *tag = r->ac;
  if (r->addr.password[0] != '\0') {
    argv[argc++] = "AUTH";
    if (r->addr.username[0] != '\0')
      argv[argc++] = r->addr.username;
    argv[argc++] = r->addr.password;
    for (int i = 0; i < argc; i++)
      lens[i] = strlen(argv[i]);
    if (send_cmd(r, on_handshake, tag, argc, argv, lens, NULL, 0) == 0)
      r->handshake_left++;
  }
  if (r->addr.db != 0) {
    char db[16];
    snprintf(db, sizeof db, "%u", r->addr.db);
    argv[0] = "SELECT", lens[0] = 6;
    argv[1] = db, lens[1] = strlen(db);
    if (send_cmd(r, on_handshake, tag, 2, argv, lens, NULL, 0) == 0)
      r->handshake_left++;
  }
  if (r->addr.nsentinels > 0) {
    argv[0] = "ROLE", lens[0] = 4;
    if (send_cmd(r, on_role, tag, 1, argv, lens, NULL, 0) == 0)
      r->handshake_left++;
  }
  /* PING last: a Redis still loading its data answers it -LOADING. */
  argv[0] = "PING", lens[0] = 4;
  if (send_cmd(r, on_handshake, tag, 1, argv, lens, NULL, 0) == 0)
    r->handshake_left++;
  else {
    set_error(r, "handshake", "cannot send");
    drop_link(r);
  }
}

/* ---- connecting ----------------------------------------------------------------------- */

static void attempt_failed(sy_redis_t *r) {
  if (r->naddrs > 0)
    r->next_addr = (r->next_addr + 1) % r->naddrs; /* every address gets its turn */
  went_down(r);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  sy_redis_t *r = ac->data;
  if (r == NULL || r->ac != ac)
    return;
  if (status != REDIS_OK) {
    set_error(r, "connect", ac->errstr);
    attempt_failed(r); /* hiredis frees ac after this returns */
    return;
  }
  if (!r->addr.is_unix)
    sy_redis_ev_keepalive(ac->c.fd);
  start_handshake(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  sy_redis_t *r = ac->data;
  if (r == NULL || r->ac != ac)
    return; /* a context we already gave up on (reset, close) */
  set_error(r, "connection lost", status == REDIS_OK ? NULL : ac->errstr);
  if (r->state == SY_REDIS_READY)
    went_down(r);
  else
    attempt_failed(r);
}

/* Connects to the unix path, or to the TCP address next in turn. */
static void connect_peer(sy_redis_t *r) {
  redisAsyncContext *ac;
  if (r->addr.is_unix) {
    ac = redisAsyncConnectUnix(r->addr.path);
  } else {
    const struct sockaddr_storage *sa = &r->addrs[r->next_addr % r->naddrs];
    const void *in = sa->ss_family == AF_INET6
                         ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    inet_ntop(sa->ss_family, in, r->peer, sizeof r->peer);
    /* A numeric address: hiredis's getaddrinfo does not block on it. */
    ac = redisAsyncConnect(r->peer, (int)r->addr.port);
  }
  if (ac == NULL || ac->err) {
    set_error(r, "connect", ac ? ac->errstr : "out of memory");
    if (ac)
      redisAsyncFree(ac);
    attempt_failed(r);
    return;
  }
  ac->data = r;
  if (sy_redis_ev_attach(ac, r->loop) < 0) {
    redisAsyncFree(ac);
    set_error(r, "connect", "cannot attach to the loop");
    attempt_failed(r);
    return;
  }
  r->ac = ac;
  r->state = SY_REDIS_CONNECTING;
  r->head = r->tail = NULL; /* every earlier command has been failed by hiredis */
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr *b) {
  if (a->ss_family != b->sa_family)
    return 0;
  if (b->sa_family == AF_INET)
    return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                  &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr)) == 0;
  return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

static void handle_done(sy_redis_t *r);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai) {
  resolve_t *res = req->data;
  sy_redis_t *r = res->r;
  int current = r->resolving == res;
  free(res);
  if (current)
    r->resolving = NULL;
  if (!current || r->state != SY_REDIS_RESOLVING) {
    uv_freeaddrinfo(ai); /* abandoned (deadline) or closed */
    handle_done(r);
    return;
  }
  handle_done(r);
  if (status < 0 || ai == NULL) {
    char what[200];
    snprintf(what, sizeof what, "cannot resolve %.100s: %s%s", r->addr.host,
             status < 0 ? uv_strerror(status) : "no address",
             r->naddrs ? "; trying its last known addresses" : "");
    set_error(r, what, NULL);
    log_attempt_error(r, 1, what);
    uv_freeaddrinfo(ai);
    if (r->naddrs > 0)
      connect_peer(r); /* the last good set */
    else
      attempt_failed(r);
    return;
  }
  struct sockaddr_storage got[8];
  unsigned n = 0;
  for (struct addrinfo *p = ai; p != NULL && n < 8; p = p->ai_next) {
    if (p->ai_family != AF_INET && p->ai_family != AF_INET6)
      continue;
    int dup = 0;
    for (unsigned i = 0; i < n && !dup; i++)
      dup = same_addr(&got[i], p->ai_addr);
    if (!dup) {
      memset(&got[n], 0, sizeof got[n]);
      memcpy(&got[n++], p->ai_addr, p->ai_addrlen);
    }
  }
  uv_freeaddrinfo(ai);
  if (n == 0) {
    set_error(r, "resolve", "no IPv4 or IPv6 address");
    attempt_failed(r);
    return;
  }
  int changed = n != r->naddrs;
  for (unsigned i = 0; i < n && !changed; i++)
    changed = !same_addr(&r->addrs[i], (const struct sockaddr *)&got[i]);
  if (changed) {
    memcpy(r->addrs, got, n * sizeof got[0]);
    r->naddrs = n;
    r->next_addr = 0;
  }
  connect_peer(r);
}

/* Resolve the name again (a Redis restarted elsewhere under the same name is
 * found), then connect. */
static void resolve_and_connect(sy_redis_t *r) {
  if (r->addr.is_unix) {
    connect_peer(r);
    return;
  }
  struct in6_addr a6;
  struct in_addr a4;
  struct sockaddr_storage sa;
  memset(&sa, 0, sizeof sa);
  if (inet_pton(AF_INET, r->addr.host, &a4) == 1) {
    sa.ss_family = AF_INET;
    ((struct sockaddr_in *)&sa)->sin_addr = a4;
  } else if (inet_pton(AF_INET6, r->addr.host, &a6) == 1) {
    sa.ss_family = AF_INET6;
    ((struct sockaddr_in6 *)&sa)->sin6_addr = a6;
  }
  if (sa.ss_family != 0) { /* numeric: nothing to resolve */
    r->addrs[0] = sa;
    r->naddrs = 1;
    r->next_addr = 0;
    connect_peer(r);
    return;
  }
  resolve_t *res = calloc(1, sizeof *res);
  if (res == NULL) {
    set_error(r, "resolve", "out of memory");
    attempt_failed(r);
    return;
  }
  res->r = r;
  res->req.data = res;
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(r->loop, &res->req, on_resolved, r->addr.host, NULL, &hints);
  if (rc < 0) {
    free(res);
    set_error(r, "resolve", uv_strerror(rc));
    attempt_failed(r);
    return;
  }
  r->handles++;
  r->resolving = res;
  r->state = SY_REDIS_RESOLVING;
}

/* ---- Sentinel ------------------------------------------------------------------------ */

/* The sentinels' answer to this attempt's ask. */
static void on_asked(void *data, int ok, const sy_redis_hostport_t *p, const char *err) {
  sy_redis_t *r = data;
  if (r->state != SY_REDIS_ASKING)
    return; /* given up on (deadline) */
  if (!ok) {
    set_error(r, err, NULL);
    log_attempt_error(r, 2, err);
    attempt_failed(r);
    return;
  }
  if (strcmp(p->host, r->addr.host) != 0 || p->port != r->addr.port) {
    if (r->addr.host[0] != '\0')
      r->switches++; /* counted once, however the link learnt of it */
    sy_log_info("redis sentinel: master '%s' is at %s:%u", r->addr.master, p->host, p->port);
    snprintf(r->addr.host, sizeof r->addr.host, "%s", p->host);
    r->addr.port = p->port;
    r->naddrs = 0; /* a new name: resolve it afresh */
  }
  r->attempt_started = uv_now(r->loop); /* the connect's own deadline */
  resolve_and_connect(r);
}

/* The sentinels moved the master: whatever the link is doing with the old one ends
 * now, and the next attempt (asking again) starts at once, without backoff. */
static void on_switch(void *data, const sy_redis_hostport_t *p) {
  sy_redis_t *r = data;
  if (r->state == SY_REDIS_CLOSED || r->state == SY_REDIS_ASKING)
    return; /* an ask under way gets the new answer or fails over by itself */
  if (r->state == SY_REDIS_READY && strcmp(p->host, r->addr.host) == 0 && p->port == r->addr.port)
    return; /* already there */
  sy_log_warn("redis: following the fail-over of '%s' to %s:%u (%llu events' batches in flight "
              "are resent there; the spool covers the gap)",
              r->addr.master, p->host, p->port, (unsigned long long)r->npending);
  set_error(r, "the sentinels switched the master", NULL);
  if (r->state == SY_REDIS_RESOLVING)
    r->resolving = NULL; /* its result, when it comes, is dropped */
  if (r->ac != NULL)
    drop_link(r); /* went_down schedules a retry; replaced just below */
  else
    went_down(r);
  uv_timer_start(&r->retry_timer, on_retry, 0, 0);
}

/* One attempt: with a Sentinel setup, ask where the primary is first. */
static void start_attempt(sy_redis_t *r) {
  if (r->state == SY_REDIS_CLOSED)
    return;
  r->attempts++;
  r->attempt_started = uv_now(r->loop);
  if (r->sentinel != NULL) {
    r->state = SY_REDIS_ASKING;
    if (sy_sentinel_ask(r->sentinel, on_asked, r) < 0) {
      set_error(r, "sentinel", "cannot start asking (out of memory)");
      attempt_failed(r);
    }
    return;
  }
  resolve_and_connect(r);
}

/* Every deadline: an attempt that has taken too long, the oldest command unanswered
 * too long, and the idle PING. */
static void on_tick(uv_timer_t *t) {
  sy_redis_t *r = t->data;
  uint64_t now = uv_now(r->loop);
  switch (r->state) {
  case SY_REDIS_ASKING:
    /* each sentinel may take a connect and a reply */
    if (now - r->attempt_started >=
        (uint64_t)r->opts.connect_timeout_ms * (2 * r->addr.nsentinels + 1)) {
      set_error(r, "the sentinels did not answer in time", NULL);
      log_attempt_error(r, 1, r->last_error);
      r->timeouts++;
      attempt_failed(r);
    }
    break;
  case SY_REDIS_RESOLVING:
  case SY_REDIS_CONNECTING:
  case SY_REDIS_HANDSHAKE:
    if (now - r->attempt_started >= r->opts.connect_timeout_ms) {
      static const char *const what[] = {"", "", "resolving timed out", "connect timed out",
                                         "no answer to the handshake (timed out)"};
      set_error(r, what[r->state], NULL);
      r->timeouts++;
      if (r->state == SY_REDIS_RESOLVING) {
        r->resolving = NULL; /* its result, when it comes, is dropped */
        attempt_failed(r);
      } else {
        if (r->state == SY_REDIS_HANDSHAKE)
          log_attempt_error(r, 1, what[r->state]);
        drop_link(r);
      }
    }
    break;
  case SY_REDIS_READY:
    if (r->head != NULL && now - r->head->sent > r->opts.timeout_ms) {
      sy_redis_reset(r, "command timed out");
    } else if (r->head == NULL && now - r->last_sent >= r->opts.ping_ms) {
      const char *argv[] = {"PING"};
      size_t lens[] = {4};
      send_cmd(r, NULL, NULL, 1, argv, lens, NULL, 0);
    }
    break;
  default:
    break;
  }
}

/* ---- life cycle ------------------------------------------------------------------------ */

int sy_redis_open(sy_redis_t *r, uv_loop_t *loop, const sy_redis_addr_t *addr,
                  const sy_redis_opts_t *opts, sy_redis_state_cb on_state, void *state_data) {
  memset(r, 0, sizeof *r);
  r->loop = loop;
  r->addr = *addr;
  if (opts != NULL)
    r->opts = *opts;
  if (r->opts.timeout_ms == 0)
    r->opts.timeout_ms = DEFAULT_TIMEOUT_MS;
  if (r->opts.connect_timeout_ms == 0)
    r->opts.connect_timeout_ms = r->opts.timeout_ms;
  if (r->opts.backoff_max_ms == 0)
    r->opts.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
  if (r->opts.backoff_max_ms < BACKOFF_MIN_MS)
    r->opts.backoff_max_ms = BACKOFF_MIN_MS;
  if (r->opts.ping_ms == 0)
    r->opts.ping_ms = DEFAULT_PING_MS;
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
  if (addr->nsentinels > 0) {
    r->addr.host[0] = '\0'; /* not known until the sentinels say */
    r->addr.port = 0;
    r->sentinel = sy_sentinel_new(loop, addr, r->opts.connect_timeout_ms, on_switch, r);
    if (r->sentinel == NULL) {
      uv_close((uv_handle_t *)&r->retry_timer, NULL);
      uv_close((uv_handle_t *)&r->tick_timer, NULL);
      return UV_ENOMEM;
    }
  }
  unsigned shortest =
      r->opts.timeout_ms < r->opts.connect_timeout_ms ? r->opts.timeout_ms : r->opts.connect_timeout_ms;
  unsigned tick = shortest / 4 < 250 ? shortest / 4 + 1 : 250;
  uv_timer_start(&r->tick_timer, on_tick, tick, tick);
  r->down_since = uv_now(loop);
  if (r->down_since == 0)
    r->down_since = 1;
  start_attempt(r);
  return 0;
}

static void handle_done(sy_redis_t *r) {
  if (--r->handles > 0)
    return;
  sy_redis_cmd_t *c;
  while ((c = r->free_cmds) != NULL) {
    r->free_cmds = c->next;
    free(c);
  }
  if (r->on_closed)
    r->on_closed(r);
}

static void on_handle_closed(uv_handle_t *h) { handle_done(h->data); }
static void on_sentinel_closed(void *data) { handle_done(data); }

void sy_redis_close(sy_redis_t *r, void (*on_closed)(sy_redis_t *r)) {
  if (r->state == SY_REDIS_CLOSED)
    return;
  redisAsyncContext *ac = r->ac;
  r->state = SY_REDIS_CLOSED;
  r->ac = NULL;
  r->on_closed = on_closed;
  r->on_state = NULL;
  if (r->resolving != NULL) {
    uv_cancel((uv_req_t *)&r->resolving->req); /* if it has not started; else it ends */
    r->resolving = NULL;
  }
  if (ac != NULL)
    redisAsyncFree(ac);
  if (r->sentinel != NULL) {
    r->handles++;
    sy_sentinel_close(r->sentinel, on_sentinel_closed, r);
    r->sentinel = NULL;
  }
  uv_close((uv_handle_t *)&r->retry_timer, on_handle_closed);
  uv_close((uv_handle_t *)&r->tick_timer, on_handle_closed);
}

/* See redis.h. */
redisReply *sy_redis_reply_copy(const redisReply *r) {
  redisReply *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->type = r->type;
  c->integer = r->integer;
  if (r->str != NULL) {
    c->str = malloc(r->len + 1);
    if (c->str == NULL) {
      free(c);
      return NULL;
    }
    memcpy(c->str, r->str, r->len);
    c->str[r->len] = '\0';
    c->len = r->len;
  }
  if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
    c->element = calloc(r->elements, sizeof *c->element);
    for (size_t i = 0; c->element != NULL && i < r->elements; i++) {
      c->element[i] = sy_redis_reply_copy(r->element[i]);
      if (c->element[i] == NULL)
        break;
      c->elements = i + 1;
    }
    if (c->elements != r->elements) {
      freeReplyObject(c);
      return NULL;
    }
  }
  return c;
}
