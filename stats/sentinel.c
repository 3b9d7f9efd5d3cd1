/*
 * sentinel.c — asking Redis Sentinel for the primary and watching its fail-overs
 * (see sentinel.h).
 *
 * An ask is a uv_work_t running sy_sentinel_ask_sync with a copy of the address;
 * its result is taken on the loop, and dropped if a newer ask of the link has been
 * made since (the link gives up an ask at its attempt deadline and asks again).
 *
 * The watch's connection is plain hiredis async on the loop (stats/redis_ev.c),
 * made to the numeric address of the sentinel that last answered an ask (the ask
 * resolved its name off the loop), so hiredis's own connect never resolves a name.
 * One timer serves two purposes, never at once: the deadline of the watch's connect
 * and SUBSCRIBE, and the 1 s wait before the watch asks again.
 */
#include "stats/sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>

#include "base/log.h"
#include "stats/redis_ev.h"
#include "stats/redis_sync.h"

#define REASK_MS 1000

typedef struct job_s {
  uv_work_t req;
  sy_sentinel_t *s;
  unsigned gen; /* the link's ask number; 0: the watch's own */
  sy_redis_addr_t a;
  unsigned timeout_ms, start, answered;
  int ok;
  sy_redis_hostport_t primary;
  char ip[64];
  char err[1024];
} job_t;

struct sy_sentinel_s {
  uv_loop_t *loop;
  sy_redis_addr_t a;
  unsigned timeout_ms;
  sy_sentinel_switch_cb on_switch;
  void *data;
  sy_sentinel_answer_cb answer_cb;
  void *answer_data;
  unsigned gen;       /* the link's latest ask */
  job_t *link_job;    /* the link's ask in flight, or NULL */
  unsigned jobs;      /* asks in flight */
  int own_asking;     /* the watch's own ask is in flight */
  unsigned next_start;
  uv_timer_t timer;   /* the watch's connect deadline, or its wait before asking again */
  int timer_closed;
  redisAsyncContext *sub; /* the watch's connection, or NULL */
  int subscribed;
  char sub_ip[64];
  unsigned sub_port, sub_index;
  sy_redis_hostport_t primary; /* the last primary known ("" before the first) */
  uint64_t switches;
  int closing;
  void (*closed)(void *data);
  void *closed_data;
};

static void start_job(sy_sentinel_t *s, unsigned gen);
static void subscribe(sy_sentinel_t *s);

uint64_t sy_sentinel_switches(const sy_sentinel_t *s) { return s->switches; }

static void maybe_free(sy_sentinel_t *s) {
  if (!s->closing || s->jobs > 0 || !s->timer_closed)
    return;
  if (s->closed)
    s->closed(s->closed_data);
  free(s);
}

/* A new primary: remembered, and passed on unless it is the one already known. */
static void switched(sy_sentinel_t *s, const sy_redis_hostport_t *p, const char *how) {
  if (strcmp(p->host, s->primary.host) == 0 && p->port == s->primary.port)
    return;
  sy_log_warn("redis sentinel: master '%s' is now at %s:%u (was %s:%u; %s)", s->a.master, p->host,
              p->port, s->primary.host[0] ? s->primary.host : "?", s->primary.port, how);
  s->primary = *p;
  s->switches++;
  if (s->on_switch)
    s->on_switch(s->data, p);
}

/* ---- the watch ----------------------------------------------------------------------- */

static void on_reask(uv_timer_t *t) {
  sy_sentinel_t *s = t->data;
  if (!s->closing && !s->own_asking && s->sub == NULL)
    start_job(s, 0);
}

/* The watch's connection is gone or never came: ask again (from the next sentinel)
 * after REASK_MS, and subscribe to whichever answers. */
static void watch_lost(sy_sentinel_t *s, const char *why) {
  s->sub = NULL;
  if (s->closing)
    return;
  sy_log_warn("redis sentinel %s:%u: fail-over watch lost (%s); asking the sentinels again",
              s->sub_ip, s->sub_port, why);
  s->subscribed = 0;
  s->next_start = s->sub_index + 1;
  uv_timer_start(&s->timer, on_reask, REASK_MS, 0);
}

static void drop_sub(sy_sentinel_t *s, const char *why) {
  redisAsyncContext *ac = s->sub;
  if (ac == NULL)
    return;
  ac->data = NULL; /* its callbacks now do nothing */
  redisAsyncFree(ac);
  watch_lost(s, why);
}

static void on_deadline(uv_timer_t *t) {
  sy_sentinel_t *s = t->data;
  if (s->sub != NULL && !s->subscribed)
    drop_sub(s, "no answer in time");
}

/* "NAME OLD-IP OLD-PORT NEW-IP NEW-PORT" on +switch-master. */
static void on_switch_msg(sy_sentinel_t *s, const char *msg) {
  char name[128], oip[256], nip[256];
  unsigned oport, nport;
  if (sscanf(msg, "%127s %255s %u %255s %u", name, oip, &oport, nip, &nport) != 5)
    return;
  if (strcmp(name, s->a.master) != 0 || nport == 0 || nport > 65535)
    return;
  sy_redis_hostport_t p;
  snprintf(p.host, sizeof p.host, "%s", nip);
  p.port = nport;
  switched(s, &p, "+switch-master");
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  sy_sentinel_t *s = ac->data;
  redisReply *r = reply;
  (void)privdata;
  if (s == NULL || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
      r->element[0]->type != REDIS_REPLY_STRING)
    return;
  if (strcmp(r->element[0]->str, "subscribe") == 0) {
    s->subscribed = 1;
    uv_timer_stop(&s->timer);
    sy_log_info("redis sentinel %s:%u: watching fail-overs of master '%s'", s->sub_ip,
                s->sub_port, s->a.master);
  } else if (strcmp(r->element[0]->str, "message") == 0 &&
             r->element[2]->type == REDIS_REPLY_STRING) {
    on_switch_msg(s, r->element[2]->str);
  }
}

static void on_auth_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  sy_sentinel_t *s = ac->data;
  redisReply *r = reply;
  (void)privdata;
  if (s != NULL && r != NULL && r->type == REDIS_REPLY_ERROR)
    sy_log_error("redis sentinel %s:%u: AUTH refused (redis.sentinel_password_env): %.200s",
                 s->sub_ip, s->sub_port, r->str);
}

static void on_sub_connect(const redisAsyncContext *ac, int status) {
  sy_sentinel_t *s = ac->data;
  if (s == NULL || s->sub != ac)
    return;
  if (status != REDIS_OK) {
    watch_lost(s, ac->errstr); /* hiredis frees ac after this returns */
    return;
  }
  sy_redis_ev_keepalive(ac->c.fd);
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status) {
  sy_sentinel_t *s = ac->data;
  if (s == NULL || s->sub != ac)
    return;
  watch_lost(s, status == REDIS_OK ? "closed" : ac->errstr);
}

static void subscribe(sy_sentinel_t *s) {
  redisAsyncContext *ac = redisAsyncConnect(s->sub_ip, (int)s->sub_port);
  if (ac == NULL || ac->err || sy_redis_ev_attach(ac, s->loop) < 0) {
    if (ac != NULL)
      redisAsyncFree(ac);
    watch_lost(s, "cannot connect");
    return;
  }
  ac->data = s;
  s->sub = ac;
  s->subscribed = 0;
  redisAsyncSetConnectCallback(ac, on_sub_connect);
  redisAsyncSetDisconnectCallback(ac, on_sub_disconnect);
  if (s->a.sentinel_password[0] != '\0')
    redisAsyncCommand(ac, on_auth_reply, NULL, "AUTH %s", s->a.sentinel_password);
  redisAsyncCommand(ac, on_sub_reply, NULL, "SUBSCRIBE +switch-master");
  uv_timer_start(&s->timer, on_deadline, s->timeout_ms, 0);
}

/* ---- asking -------------------------------------------------------------------------- */

static void job_work(uv_work_t *req) {
  job_t *j = req->data;
  j->ok = sy_sentinel_ask_sync(&j->a, j->timeout_ms, j->start, &j->primary, &j->answered, j->ip,
                               j->err, sizeof j->err) == 0;
}

static void job_done(uv_work_t *req, int status) {
  job_t *j = req->data;
  sy_sentinel_t *s = j->s;
  s->jobs--;
  if (j->gen == 0)
    s->own_asking = 0;
  if (s->link_job == j)
    s->link_job = NULL;
  if (s->closing) {
    free(j);
    maybe_free(s);
    return;
  }
  if (status < 0) {
    j->ok = 0;
    snprintf(j->err, sizeof j->err, "redis.master '%s': asking the sentinels was cancelled",
             s->a.master);
  }
  if (j->ok) {
    s->next_start = j->answered;
    if (s->sub == NULL && j->ip[0] != '\0') {
      snprintf(s->sub_ip, sizeof s->sub_ip, "%s", j->ip);
      s->sub_port = s->a.sentinels[j->answered].port;
      s->sub_index = j->answered;
      uv_timer_stop(&s->timer);
      subscribe(s);
    }
    if (j->gen == 0 && s->primary.host[0] != '\0')
      switched(s, &j->primary, "found by asking again");
    else
      s->primary = j->primary;
  } else if (j->gen == 0) {
    sy_log_error("redis sentinel: %s", j->err);
    s->next_start++;
    if (s->sub == NULL)
      uv_timer_start(&s->timer, on_reask, REASK_MS, 0);
  }
  if (j->gen != 0 && j->gen == s->gen && s->answer_cb != NULL) {
    sy_sentinel_answer_cb cb = s->answer_cb;
    s->answer_cb = NULL;
    cb(s->answer_data, j->ok, &j->primary, j->err);
  }
  free(j);
}

static void start_job(sy_sentinel_t *s, unsigned gen) {
  job_t *j = calloc(1, sizeof *j);
  if (j == NULL)
    return;
  j->req.data = j;
  j->s = s;
  j->gen = gen;
  j->a = s->a;
  j->timeout_ms = s->timeout_ms;
  j->start = s->next_start % s->a.nsentinels;
  if (uv_queue_work(s->loop, &j->req, job_work, job_done) != 0) {
    free(j);
    return;
  }
  s->jobs++;
  if (gen == 0)
    s->own_asking = 1;
  else
    s->link_job = j;
}

int sy_sentinel_ask(sy_sentinel_t *s, sy_sentinel_answer_cb cb, void *data) {
  if (s->closing)
    return -1;
  if (++s->gen == 0)
    s->gen = 1;
  if (s->link_job != NULL) {
    /* an ask given up on is still running (a sentinel slow to answer): its answer,
     * when it comes, is this one's, rather than a second thread blocked the same way */
    s->link_job->gen = s->gen;
    s->answer_cb = cb;
    s->answer_data = data;
    return 0;
  }
  unsigned jobs = s->jobs;
  start_job(s, s->gen);
  if (s->jobs == jobs)
    return -1;
  s->answer_cb = cb;
  s->answer_data = data;
  return 0;
}

/* ---- life cycle ---------------------------------------------------------------------- */

sy_sentinel_t *sy_sentinel_new(uv_loop_t *loop, const sy_redis_addr_t *a, unsigned timeout_ms,
                               sy_sentinel_switch_cb on_switch, void *data) {
  sy_sentinel_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->loop = loop;
  s->a = *a;
  s->timeout_ms = timeout_ms;
  s->on_switch = on_switch;
  s->data = data;
  if (uv_timer_init(loop, &s->timer) != 0) {
    free(s);
    return NULL;
  }
  s->timer.data = s;
  return s;
}

static void on_timer_closed(uv_handle_t *h) {
  sy_sentinel_t *s = h->data;
  s->timer_closed = 1;
  maybe_free(s);
}

void sy_sentinel_close(sy_sentinel_t *s, void (*closed)(void *data), void *data) {
  if (s->closing)
    return;
  s->closing = 1;
  s->closed = closed;
  s->closed_data = data;
  s->answer_cb = NULL;
  s->on_switch = NULL;
  if (s->sub != NULL) {
    redisAsyncContext *ac = s->sub;
    s->sub = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
  }
  uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}
