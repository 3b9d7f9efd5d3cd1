/*
 * upstream.c — pooled keep-alive connections to the upstream servers.
 *
 * Each server of an upstream keeps a LIFO list of idle connections (the most
 * recently used is the warmest and the least likely to have been closed by the
 * server). An idle connection keeps reading: any byte or EOF from the server
 * means it is no longer usable and it is closed at once, and a timer closes it
 * after the upstream's idle timeout. While active, the upstream leg that borrowed
 * it (`leg`, router/http1client.h: the primary exchange's or a shadow copy's) gets
 * its reads and its timer; the leg reaches the pool through sy__upstream_h1_pool.
 */
#include "router/upstream.h"

#include <string.h>

#include "base/log.h"
#include "router/exchange.h"
#include "router/worker.h"

static void on_handle_closed(uv_handle_t *h) {
  sy_upconn_t *u = h->data;
  if (--u->handles == 0)
    free(u);
}

static void idle_unlink(sy_upconn_t *u) {
  sy_upserver_t *s = u->server;
  if (u->prev != NULL)
    u->prev->next = u->next;
  else if (s != NULL && s->idle == u)
    s->idle = u->next;
  if (u->next != NULL)
    u->next->prev = u->prev;
  u->next = u->prev = NULL;
  if (s != NULL)
    s->nidle--;
}

void sy__upstream_close(sy_upconn_t *u, int reset) {
  if (u->state == SY_UP_CLOSING)
    return;
  if (u->state == SY_UP_IDLE)
    idle_unlink(u);
  u->state = SY_UP_CLOSING;
  u->leg = NULL;
  uv_timer_stop(&u->timer);
  uv_close((uv_handle_t *)&u->timer, on_handle_closed);
  if (reset && uv_is_active((uv_handle_t *)&u->tcp) && !uv_is_closing((uv_handle_t *)&u->tcp) &&
      uv_tcp_close_reset(&u->tcp, on_handle_closed) == 0)
    return;
  uv_close((uv_handle_t *)&u->tcp, on_handle_closed);
}

void sy__upstream_mark_down(sy_upserver_t *s) {
  uint64_t now = uv_now(&s->pool->w->loop);
  s->down_until = now + 5000;
}

/* How many of the pool's servers are ejected now. */
static size_t ejected_now(const sy_uppool_t *pool, uint64_t now) {
  size_t n = 0;
  for (size_t i = 0; i < pool->nservers; i++)
    n += pool->servers[i].ejected_until > now;
  return n;
}

void sy__upstream_result(sy_upserver_t *s, int status) {
  const sy_upstream_conf_t *conf = s->pool->conf;
  if (status < 500) {
    s->fails = 0;
    s->ejections = 0;
    return;
  }
  if (conf->eject_after == 0 || ++s->fails < conf->eject_after)
    return;
  uint64_t now = uv_now(&s->pool->w->loop);
  if (s->ejected_until > now)
    return; /* answers of requests sent before the ejection */
  /* Never eject past the cap: with every server failing, spreading the load beats
   * sending all of it to the last one standing. */
  size_t cap = s->pool->nservers * conf->eject_max_percent / 100;
  size_t out = ejected_now(s->pool, now);
  if (out + 1 > cap) {
    if (s->fails == conf->eject_after) /* once per run of failures, not per answer */
      sy_log_warn("upstream %s: server %s failing (%u in a row) but not ejected: %zu of %zu "
                  "already out (eject_max_percent %u)",
                  conf->name, s->label, s->fails, out, s->pool->nservers,
                  conf->eject_max_percent);
    return;
  }
  uint64_t ms = conf->eject_ms;
  for (unsigned i = 0; i < s->ejections && ms < conf->eject_max_ms; i++)
    ms *= 2;
  if (ms > conf->eject_max_ms)
    ms = conf->eject_max_ms;
  s->ejections++;
  s->fails = 0;
  s->ejected_until = now + ms;
  sy_log_warn("upstream %s: server %s ejected for %llu ms after %u failed answers in a row "
              "(ejection %u)",
              conf->name, s->label, (unsigned long long)ms, conf->eject_after, s->ejections);
}

static void on_idle_timeout(uv_timer_t *t) {
  sy__upstream_close(t->data, 0);
}

/* An upstream read buffer: a recycled one if the worker keeps one. */
static sy_buf_t *get_read_buf(sy_worker_t *w) {
  if (w->nread_bufs > 0) {
    sy_buf_t *b = w->read_bufs[--w->nread_bufs];
    b->refs = 1;
    b->len = 0;
    return b;
  }
  return sy_buf_new(SY_UP_READ_BUF);
}

/* Drops a reference to an upstream read buffer; the last one recycles it. */
static void put_read_buf(sy_worker_t *w, sy_buf_t *b) {
  /* Most responses are written to the client within the read that brought
   * them, so the buffer comes back unshared and serves the next read. */
  if (b != NULL && b->refs == 1 && b->cap == SY_UP_READ_BUF &&
      w->nread_bufs < SY_READ_BUF_CACHE) {
    w->read_bufs[w->nread_bufs++] = b;
    return;
  }
  sy_buf_unref(b);
}

/* Bytes read on a connection nobody is using are never looked at. */
static char sink[64];

static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  sy_upconn_t *u = h->data;
  (void)suggested;
  int lent = u->state == SY_UP_ACTIVE && u->leg != NULL;
  sy_buf_t *b = lent ? get_read_buf(u->w) : NULL;
  *buf = b != NULL ? uv_buf_init(b->data, SY_UP_READ_BUF) : uv_buf_init(sink, sizeof(sink));
}

/* A connection reads from connect to close, whether lent or idle: switching
 * the read callback per exchange would cost two epoll_ctl calls a request. */
static void up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  sy_upconn_t *u = s->data;
  sy_buf_t *b = buf->base != NULL && buf->base != sink ? sy_buf_of(buf->base) : NULL;
  if (u->state == SY_UP_ACTIVE && u->leg != NULL) {
    sy_h1_leg_read(u->leg, nread, b);
    put_read_buf(u->w, b);
    return;
  }
  sy_buf_unref(b);
  /* Data or EOF on an idle connection: the server closed it or misbehaves. */
  if (nread != 0 && u->state == SY_UP_IDLE)
    sy__upstream_close(u, 0);
}

void sy__upstream_pause(sy_upconn_t *u) {
  uv_read_stop((uv_stream_t *)&u->tcp);
}

void sy__upstream_resume(sy_upconn_t *u) {
  uv_read_start((uv_stream_t *)&u->tcp, up_alloc, up_read);
}

void sy__upstream_release(sy_upconn_t *u) {
  sy_upserver_t *s = u->server;
  u->leg = NULL;
  uv_timer_stop(&u->timer);
  if (u->state != SY_UP_ACTIVE || s == NULL || s->nidle >= s->pool->conf->pool_size ||
      s->pool->w->draining) {
    sy__upstream_close(u, 0);
    return;
  }
  u->state = SY_UP_IDLE;
  u->uses++;
  u->prev = NULL;
  u->next = s->idle;
  if (s->idle != NULL)
    s->idle->prev = u;
  s->idle = u;
  s->nidle++;
  sy__upstream_resume(u); /* reading again if paused for backpressure */
  uv_timer_start(&u->timer, on_idle_timeout, s->pool->conf->idle_timeout_ms, 0);
}

static void on_connect(uv_connect_t *req, int status) {
  sy_upconn_t *u = req->data;
  if (u->state != SY_UP_CONNECTING)
    return; /* timed out or cancelled meanwhile; already reported */
  uv_timer_stop(&u->timer);
  sy_h1_leg_t *leg = u->leg;
  if (status < 0) {
    sy_log_warn("upstream %s: connect failed: %s", u->server->label, uv_strerror(status));
    sy__upstream_mark_down(u->server);
    if (leg != NULL)
      sy_h1_leg_ready(leg, status);
    sy__upstream_close(u, 0);
    return;
  }
  uv_tcp_nodelay(&u->tcp, 1);
  u->state = SY_UP_ACTIVE;
  sy__upstream_resume(u);
  if (leg != NULL)
    sy_h1_leg_ready(leg, 0);
}

static void on_connect_timeout(uv_timer_t *t) {
  sy_upconn_t *u = t->data;
  sy_h1_leg_t *leg = u->leg;
  sy_log_warn("upstream %s: connect timed out", u->server->label);
  sy__upstream_mark_down(u->server);
  if (leg != NULL)
    sy_h1_leg_ready(leg, UV_ETIMEDOUT);
  sy__upstream_close(u, 0);
}

static sy_upserver_t *pick_server(sy_uppool_t *pool, const sy_upserver_t *avoid) {
  uint64_t now = uv_now(&pool->w->loop);
  sy_upserver_t *fallback = NULL;
  for (size_t i = 0; i < pool->nservers; i++) {
    sy_upserver_t *s = &pool->servers[(pool->rr + i) % pool->nservers];
    if (s == avoid && pool->nservers > 1)
      continue;
    if (s->down_until > now || s->ejected_until > now) {
      if (fallback == NULL)
        fallback = s;
      continue;
    }
    pool->rr = (pool->rr + i + 1) % pool->nservers;
    return s;
  }
  /* Every server is marked down (or avoided): try one anyway; it may be back. */
  if (fallback == NULL)
    fallback = &pool->servers[pool->rr % pool->nservers];
  pool->rr = (pool->rr + 1) % pool->nservers;
  return fallback;
}

static sy_upconn_t *take_idle(sy_upserver_t *s) {
  sy_upconn_t *u = s->idle;
  if (u == NULL)
    return NULL;
  idle_unlink(u);
  uv_timer_stop(&u->timer);
  u->state = SY_UP_ACTIVE;
  return u;
}

sy_upconn_t *sy__upstream_acquire(sy_uppool_t *pool, const sy_upserver_t *avoid, sy_h1_leg_t *leg) {
  sy_upserver_t *s = pick_server(pool, avoid);
  sy_upconn_t *u = take_idle(s);
  if (u != NULL) {
    u->leg = leg;
    return u;
  }
  u = calloc(1, sizeof(*u));
  if (u == NULL)
    return NULL;
  sy_worker_t *w = pool->w;
  u->w = w;
  u->server = s;
  u->leg = leg;
  u->state = SY_UP_CONNECTING;
  uv_tcp_init(&w->loop, &u->tcp);
  uv_timer_init(&w->loop, &u->timer);
  u->tcp.data = u->timer.data = u->creq.data = u;
  u->handles = 2;
  int r = uv_tcp_connect(&u->creq, &u->tcp, (const struct sockaddr *)&s->addr, on_connect);
  if (r < 0) {
    /* Reported through the callback on the next loop turn would be nicer, but a
     * synchronous failure (e.g. EMFILE) is rare: report it at once. */
    sy_log_warn("upstream %s: connect failed: %s", s->label, uv_strerror(r));
    u->leg = NULL;
    sy__upstream_close(u, 0);
    return NULL;
  }
  uv_timer_start(&u->timer, on_connect_timeout, pool->conf->connect_timeout_ms, 0);
  return u;
}

/* ---- the pool as an upstream leg sees it (router/http1client.h) ---- */

static int h1_acquire(void *pool, const void *avoid, sy_h1_leg_t *leg, sy_h1_link_t *link) {
  sy_upconn_t *u = sy__upstream_acquire(pool, avoid, leg);
  if (u == NULL)
    return UV_ENOMEM;
  link->conn = u;
  link->server = u->server;
  link->label = u->server->label;
  link->stream = (uv_stream_t *)&u->tcp;
  link->uses = u->uses;
  return u->state == SY_UP_ACTIVE; /* an idle connection is ready now */
}

static void h1_release(void *conn) {
  sy__upstream_release(conn);
}

static void h1_close(void *conn, int reset) {
  sy__upstream_close(conn, reset);
}

static void h1_pause(void *conn) {
  sy__upstream_pause(conn);
}

static void h1_resume(void *conn) {
  sy__upstream_resume(conn);
}

static void on_leg_timer(uv_timer_t *t) {
  sy_upconn_t *u = t->data;
  if (u->leg != NULL)
    sy_h1_leg_timeout(u->leg);
}

static void h1_arm(void *conn, uint64_t ms) {
  sy_upconn_t *u = conn;
  uv_timer_start(&u->timer, on_leg_timer, ms, 0);
}

static void h1_disarm(void *conn) {
  sy_upconn_t *u = conn;
  uv_timer_stop(&u->timer);
}

static void h1_result(void *conn, int status) {
  sy_upconn_t *u = conn;
  if (u->server != NULL)
    sy__upstream_result(u->server, status);
}

const sy_h1_pool_ops_t sy__upstream_h1_pool = {
    h1_acquire, h1_release, h1_close, h1_pause, h1_resume, h1_arm, h1_disarm, h1_result,
};
