/*
 * upstream.c — pooled keep-alive connections to the upstream servers.
 *
 * Each server of an upstream keeps a LIFO list of idle connections (the most
 * recently used is the warmest and the least likely to have been closed by the
 * server). An idle connection keeps reading: any byte or EOF from the server
 * means it is no longer usable and it is closed at once, and a timer closes it
 * after the upstream's idle timeout. While active, the upstream leg that borrowed
 * it (`leg`, router/http1client.h: the primary exchange's or a shadow copy's) gets
 * its reads and its timer; the leg reaches the pool through sy__upstream_h1_pool
 * (upstream_h1.c).
 *
 * TLS (an https:// server): after the TCP connect the handshake runs here, on the
 * reads, under the same connect timeout; only then is the connection ready for its
 * leg, so no request byte is ever written in clear or before the server proved its
 * name. A lent connection's reads are decrypted before they reach the leg, and its
 * writes go through the pool's write op, which encrypts them (upstream_tls.c). An
 * idle TLS connection decrypts what it reads too: session tickets (TLS 1.3 sends
 * them after the handshake) are taken in, anything else closes it. Sessions are kept
 * by the upstream's TLS context, so the pool's later connections resume.
 *
 * An egress proxy (a server's `proxy`): the connection goes to the proxy, which
 * takes the server's place in the address book (its name is resolved instead), and
 * after the TCP connect a CONNECT for the server is written and the proxy's answer
 * head read (upstream_proxy.c), still CONNECTING and under the connect timeout; on a
 * 2xx the tunnel is the connection and TLS (or the leg) starts as it would on a
 * direct one. A pooled connection keeps its tunnel.
 */
#include "router/upstream.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "router/exchange.h"
#include "router/metrics.h"
#include "router/upstream_tls.h"
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
  sy_tls_free(u->tls); /* its ciphertext in flight is a copy */
  u->tls = NULL;
  free(u->tunnel);
  u->tunnel = NULL;
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
                  conf->name, s->label, s->fails, out, s->pool->nservers, conf->eject_max_percent);
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
  if (b != NULL && b->refs == 1 && b->cap == SY_UP_READ_BUF && w->nread_bufs < SY_READ_BUF_CACHE) {
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
  sy_buf_t *b = lent || u->tls != NULL || u->tunnel != NULL ? get_read_buf(u->w) : NULL;
  *buf = b != NULL ? uv_buf_init(b->data, SY_UP_READ_BUF) : uv_buf_init(sink, sizeof(sink));
}

static void tls_read(sy_upconn_t *u, ssize_t nread, const char *data);
static void tunnel_read(sy_upconn_t *u, ssize_t nread, const char *data);

/* A connection reads from connect to close, whether lent or idle: switching
 * the read callback per exchange would cost two epoll_ctl calls a request. */
static void up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  sy_upconn_t *u = s->data;
  sy_buf_t *b = buf->base != NULL && buf->base != sink ? sy_buf_of(buf->base) : NULL;
  if (u->tunnel != NULL) {
    tunnel_read(u, nread, buf->base);
    put_read_buf(u->w, b);
    return;
  }
  if (u->tls != NULL) {
    tls_read(u, nread, buf->base);
    put_read_buf(u->w, b);
    return;
  }
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
      s->pool->w->draining || u->addr_gen != s->addr_gen) {
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

/* ---- names ---- */

typedef struct sy_upresolve_s {
  uv_getaddrinfo_t req;
  sy_upserver_t *s; /* NULL once the server's runtime has gone */
} sy_upresolve_t;

static int same_set(const sy_upserver_t *s, const struct sockaddr_storage *a, unsigned n) {
  if (n != s->naddrs)
    return 0;
  for (unsigned i = 0; i < n; i++)
    if (memcmp(&s->addrs[i], &a[i], sizeof a[i]) != 0)
      return 0;
  return 1;
}

/* Up to SY_UP_MAX_ADDRS distinct TCP addresses of ai, with port. Returns how many. */
static unsigned collect(const struct addrinfo *ai, uint16_t port, struct sockaddr_storage *out) {
  unsigned n = 0;
  for (const struct addrinfo *p = ai; p != NULL && n < SY_UP_MAX_ADDRS; p = p->ai_next) {
    if (p->ai_family != AF_INET && p->ai_family != AF_INET6)
      continue;
    struct sockaddr_storage a;
    memset(&a, 0, sizeof a);
    memcpy(&a, p->ai_addr, p->ai_addrlen);
    if (a.ss_family == AF_INET)
      ((struct sockaddr_in *)&a)->sin_port = htons(port);
    else
      ((struct sockaddr_in6 *)&a)->sin6_port = htons(port);
    int dup = 0;
    for (unsigned i = 0; i < n && !dup; i++)
      dup = memcmp(&out[i], &a, sizeof a) == 0;
    if (!dup)
      out[n++] = a;
  }
  return n;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai) {
  sy_upresolve_t *q = req->data;
  sy_upserver_t *s = q->s;
  free(q);
  if (s == NULL) { /* the runtime went away meanwhile */
    uv_freeaddrinfo(ai);
    return;
  }
  s->resolving = NULL;
  s->resolve_at = uv_now(&s->pool->w->loop) + s->pool->conf->resolve_interval_ms;
  struct sockaddr_storage got[SY_UP_MAX_ADDRS];
  unsigned n = status == 0 ? collect(ai, s->dial_port, got) : 0;
  uv_freeaddrinfo(ai);
  if (n == 0) {
    if (!s->resolve_failing)
      sy_log_warn("upstream %s: cannot resolve %s: %s; keeping its last %u address(es)", s->label,
                  s->dial_host, status < 0 ? uv_strerror(status) : "no address", s->naddrs);
    s->resolve_failing = 1;
    return;
  }
  if (s->resolve_failing)
    sy_log_info("upstream %s: %s resolves again", s->label, s->dial_host);
  s->resolve_failing = 0;
  if (same_set(s, got, n))
    return;
  char first[INET6_ADDRSTRLEN] = "?";
  if (got[0].ss_family == AF_INET)
    uv_ip4_name((struct sockaddr_in *)&got[0], first, sizeof first);
  else
    uv_ip6_name((struct sockaddr_in6 *)&got[0], first, sizeof first);
  if (s->naddrs > 0)
    sy_log_info("upstream %s: %s now has %u address(es), first %s", s->label, s->dial_host, n,
                first);
  memcpy(s->addrs, got, n * sizeof got[0]);
  s->naddrs = n;
  s->next = 0;
  /* Connections to the old addresses retire: the idle ones now, the busy ones when
   * their exchange ends (sy__upstream_release). */
  s->addr_gen++;
  while (s->idle != NULL)
    sy__upstream_close(s->idle, 0);
}

void sy__upstream_resolve(sy_upserver_t *s) {
  if (!s->is_name || s->resolving != NULL)
    return;
  sy_upresolve_t *q = calloc(1, sizeof *q);
  if (q == NULL)
    return;
  q->s = s;
  q->req.data = q;
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (uv_getaddrinfo(&s->pool->w->loop, &q->req, on_resolved, s->dial_host, NULL, &hints) < 0) {
    free(q);
    return;
  }
  s->resolving = q;
}

void sy__upstream_server_names(sy_upserver_t *s) {
  const sy_upstream_conf_t *c = s->pool->conf;
  const sy_hostport_t *hp = s->hp;
  unsigned char ip[16];
  int numeric = inet_pton(AF_INET, hp->host, ip) == 1 || inet_pton(AF_INET6, hp->host, ip) == 1;
  const char *name = hp->tls && c->tls.server_name != NULL ? c->tls.server_name : hp->host;
  s->proxy = hp->proxy;
  s->dial_host = hp->proxy != NULL ? hp->proxy->host : hp->host;
  s->dial_port = hp->proxy != NULL ? hp->proxy->port : hp->port;
  s->tls_name = hp->tls ? name : NULL;
  sy_host_mode_t mode = c->host_mode;
  if (mode == SY_HOST_AUTO)
    mode = !numeric || name != hp->host ? SY_HOST_SERVER : SY_HOST_CLIENT;
  s->host[0] = '\0';
  if (mode == SY_HOST_LITERAL) {
    snprintf(s->host, sizeof s->host, "%s", c->host_literal);
  } else if (mode == SY_HOST_SERVER) {
    int v6 = strchr(name, ':') != NULL;
    char port[8] = ""; /* the scheme's default port is left out */
    if (hp->port != (hp->tls ? 443 : 80))
      snprintf(port, sizeof port, ":%u", (unsigned)hp->port);
    snprintf(s->host, sizeof s->host, "%s%s%s%s", v6 ? "[" : "", name, v6 ? "]" : "", port);
  }
}

int sy__upstream_server_init(sy_upserver_t *s, int may_block, char *err, size_t errlen) {
  struct sockaddr_storage a;
  memset(&a, 0, sizeof a);
  if (uv_ip4_addr(s->dial_host, s->dial_port, (struct sockaddr_in *)&a) == 0 ||
      uv_ip6_addr(s->dial_host, s->dial_port, (struct sockaddr_in6 *)&a) == 0) {
    s->addrs[0] = a;
    s->naddrs = 1;
    return 0;
  }
  s->is_name = 1;
  if (!may_block) {
    sy__upstream_resolve(s);
    return 0;
  }
  /* Before the worker's loop runs: nothing waits on it. */
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int r = getaddrinfo(s->dial_host, NULL, &hints, &ai);
  s->naddrs = r == 0 ? collect(ai, s->dial_port, s->addrs) : 0;
  if (ai != NULL)
    freeaddrinfo(ai);
  if (s->naddrs == 0) {
    snprintf(err, errlen, "cannot resolve %s %s:%u: %s",
             s->proxy != NULL ? "the egress proxy" : "upstream server", s->dial_host,
             (unsigned)s->dial_port, r != 0 ? gai_strerror(r) : "no address");
    return -1;
  }
  s->resolve_at = uv_now(&s->pool->w->loop) + s->pool->conf->resolve_interval_ms;
  return 0;
}

void sy__upstream_server_free(sy_upserver_t *s) {
  if (s->resolving != NULL) {
    s->resolving->s = NULL;
    uv_cancel((uv_req_t *)&s->resolving->req);
    s->resolving = NULL;
  }
}

/* A connect to s failed: the next attempt tries its next address, and a name is
 * resolved again before it (it may have moved). */
static void connect_failed(sy_upserver_t *s) {
  sy__upstream_mark_down(s);
  if (s->naddrs > 0)
    s->next = (s->next + 1) % s->naddrs;
  if (s->is_name)
    s->resolve_at = 0;
}

/* ---- TLS ---- */

/* A TLS (counted) or egress proxy failure of server s: logged at most once a minute
 * per upstream (with how many went unlogged meanwhile). */
static void conn_problem(sy_upserver_t *s, const char *why, int tls) {
  sy_uppool_t *p = s->pool;
  sy_mupstream_t *m = tls ? sy_metrics_upstream(p->w->mslot, p->conf->name) : NULL;
  if (m != NULL)
    m->tls_errors++;
  uint64_t now = uv_now(&p->w->loop);
  if (p->tls_logged_at != 0 && now - p->tls_logged_at < 60000) {
    p->tls_unlogged++;
    return;
  }
  if (p->tls_unlogged > 0)
    sy_log_warn("upstream %s: server %s: %s (%u more failures since the last one logged)",
                p->conf->name, s->label, why, p->tls_unlogged);
  else
    sy_log_warn("upstream %s: server %s: %s", p->conf->name, s->label, why);
  p->tls_logged_at = now > 0 ? now : 1;
  p->tls_unlogged = 0;
}

static void connect_failed(sy_upserver_t *s);

/* Making the connection failed in its TLS handshake (tls) or at the egress proxy:
 * logged, the leg told why (msg), the connection closed. */
static void setup_failed(sy_upconn_t *u, int status, const char *msg, int tls) {
  conn_problem(u->server, msg, tls);
  connect_failed(u->server);
  sy_h1_leg_t *leg = u->leg;
  u->leg = NULL;
  if (leg != NULL && tls)
    sy_h1_leg_tls_failed(leg, status, msg);
  else if (leg != NULL)
    sy_h1_leg_proxy_failed(leg, status, msg);
  sy__upstream_close(u, 0);
}

/* The handshake failed, or stalled (status UV_ETIMEDOUT): the leg is told why and
 * the connection closed. */
static void handshake_failed(sy_upconn_t *u, int status, const char *why) {
  char msg[400];
  if (why == NULL || why[0] == '\0')
    why = "TLS handshake failed";
  snprintf(msg, sizeof msg, "%s", why);
  setup_failed(u, status, msg, 1);
}

/* An end on a TLS connection (EOF, close_notify, an error): a lent connection's
 * leg hears of it; an idle one is closed. */
static void tls_end(sy_upconn_t *u, int err) {
  if (u->state == SY_UP_ACTIVE && u->leg != NULL)
    sy_h1_leg_read(u->leg, err, NULL);
  else
    sy__upstream_close(u, 0);
}

/* Hands what the engine decrypts to the leg, one buffer at a time, until it needs
 * more ciphertext; plaintext while idle closes the connection. */
static void tls_deliver(sy_upconn_t *u) {
  while (u->tls != NULL) { /* NULL once closed, maybe by the leg */
    sy_buf_t *pb = get_read_buf(u->w);
    if (pb == NULL) {
      tls_end(u, UV_ENOBUFS);
      return;
    }
    size_t got = 0;
    sy_tls_status_t st = sy_tls_read(u->tls, pb->data, SY_UP_READ_BUF, &got);
    if (st == SY_TLS_OK && u->state == SY_UP_ACTIVE && u->leg != NULL) {
      sy_h1_leg_read(u->leg, (ssize_t)got, pb);
      put_read_buf(u->w, pb);
      continue;
    }
    put_read_buf(u->w, pb);
    if (st == SY_TLS_WANT)
      break;
    if (st == SY_TLS_ERROR)
      conn_problem(u->server, sy_tls_error(u->tls), 1);
    tls_end(u, st == SY_TLS_CLOSED ? UV_EOF : UV_EPROTO);
    return;
  }
  if (u->tls != NULL && sy__uptls_flush((uv_stream_t *)&u->tcp, u->tls) < 0)
    tls_end(u, UV_EPIPE);
}

/* The handshake is complete: the connection is lent ready. */
static void handshake_done(sy_upconn_t *u) {
  uv_timer_stop(&u->timer);
  u->state = SY_UP_ACTIVE;
  sy_mupstream_t *m = sy_metrics_upstream(u->w->mslot, u->server->pool->conf->name);
  if (m != NULL) {
    m->tls_handshakes++;
    m->tls_resumed += sy_tls_resumed(u->tls) != 0;
  }
  if (u->leg != NULL)
    sy_h1_leg_ready(u->leg, 0);
  if (u->state != SY_UP_CLOSING)
    tls_deliver(u); /* records that came with the handshake's last (a session ticket) */
}

static void handshake_step(sy_upconn_t *u, const char *data, size_t n) {
  sy_tls_status_t st = sy__uptls_handshake((uv_stream_t *)&u->tcp, u->tls, data, n);
  if (st == SY_TLS_OK)
    handshake_done(u);
  else if (st == SY_TLS_ERROR)
    handshake_failed(u, UV_EPROTO, sy_tls_error(u->tls));
}

static void tls_read(sy_upconn_t *u, ssize_t nread, const char *data) {
  if (nread == 0)
    return;
  if (u->state == SY_UP_CONNECTING) {
    if (nread > 0) {
      handshake_step(u, data, (size_t)nread);
      return;
    }
    char why[400];
    snprintf(why, sizeof why, "the server closed the connection during the TLS handshake (%s: %s)",
             u->server->tls_name, uv_strerror((int)nread));
    handshake_failed(u, (int)nread, why);
    return;
  }
  if (nread < 0) {
    tls_end(u, (int)nread);
    return;
  }
  if (sy_tls_feed(u->tls, data, (size_t)nread) < 0) {
    tls_end(u, UV_ENOMEM);
    return;
  }
  tls_deliver(u);
}

/* TCP is up to an https:// server: the handshake starts (the connect timer runs on). */
static void tls_start(sy_upconn_t *u) {
  u->tls = sy_tls_new(u->server->pool->conf->tls_ctx, u->server->tls_name);
  if (u->tls == NULL) {
    handshake_failed(u, UV_ENOMEM, "out of memory for a TLS connection");
    return;
  }
  sy__upstream_resume(u);
  handshake_step(u, NULL, 0);
}

/* ---- egress proxy: the CONNECT tunnel (upstream_proxy.c reads its answer) ---- */

static void tunnel_done(sy_upconn_t *u);

/* The tunnel could not be made: `what` happened, `why` says more. The leg is told
 * (status UV_EACCES for a 4xx answer: not retried) and the connection closed. */
static void proxy_failed(sy_upconn_t *u, int status, const char *what, const char *why) {
  const sy_upserver_t *s = u->server;
  char msg[400];
  snprintf(msg, sizeof msg, "%s%s%s to CONNECT %s (proxy %s:%u, from %s)", what,
           why[0] != '\0' ? " " : "", why, s->label, s->proxy->host, (unsigned)s->proxy->port,
           s->proxy->origin);
  setup_failed(u, status, msg, 0);
}

static void unref_written(void *arg, int status) {
  (void)status; /* a failed write shows as a failed read */
  sy_buf_unref(arg);
}

/* TCP is up to the proxy: CONNECT goes out (the connect timer runs on). */
static void tunnel_start(sy_upconn_t *u) {
  const sy_upserver_t *s = u->server;
  sy_buf_t *rq = sy__uptunnel_request(s->hp->host, s->hp->port, s->proxy->auth);
  u->tunnel = rq != NULL ? malloc(sizeof *u->tunnel) : NULL;
  if (u->tunnel == NULL) {
    sy_buf_unref(rq);
    proxy_failed(u, UV_ENOMEM, "out of memory", "");
    return;
  }
  u->tunnel->len = 0;
  uv_buf_t b = uv_buf_init(rq->data, (unsigned)rq->len);
  int err = sy__upwrite((uv_stream_t *)&u->tcp, NULL, &b, 1, unref_written, rq);
  if (err != 1) /* 1: queued, unref_written frees it */
    sy_buf_unref(rq);
  if (err < 0) {
    proxy_failed(u, err, "cannot write to egress proxy:", uv_strerror(err));
    return;
  }
  sy__upstream_resume(u);
}

static void tunnel_read(sy_upconn_t *u, ssize_t nread, const char *data) {
  if (nread == 0)
    return;
  if (nread < 0) {
    proxy_failed(u, (int)nread, "egress proxy closed the connection before answering",
                 uv_strerror((int)nread));
    return;
  }
  char why[200];
  int status;
  sy_tunnel_status_t st =
      sy__uptunnel_feed(u->tunnel, data, (size_t)nread, &status, why, sizeof why);
  if (st == SY_TUNNEL_WANT)
    return;
  if (st != SY_TUNNEL_UP) {
    proxy_failed(u, st == SY_TUNNEL_REFUSED ? UV_EACCES : UV_EPROTO, "egress proxy", why);
    return;
  }
  free(u->tunnel);
  u->tunnel = NULL;
  tunnel_done(u);
}

static void on_connect(uv_connect_t *req, int status) {
  sy_upconn_t *u = req->data;
  if (u->state != SY_UP_CONNECTING)
    return; /* timed out or cancelled meanwhile; already reported */
  sy_h1_leg_t *leg = u->leg;
  if (status < 0 || (u->server->tls_name == NULL && u->server->proxy == NULL))
    uv_timer_stop(&u->timer); /* TLS, a tunnel: it covers the handshake and CONNECT too */
  if (status < 0 && u->server->proxy != NULL) {
    proxy_failed(u, status, "cannot connect to egress proxy", uv_strerror(status));
    return;
  }
  if (status < 0) {
    sy_log_warn("upstream %s: connect failed: %s", u->server->label, uv_strerror(status));
    connect_failed(u->server);
    if (leg != NULL)
      sy_h1_leg_ready(leg, status);
    sy__upstream_close(u, 0);
    return;
  }
  uv_tcp_nodelay(&u->tcp, 1);
  if (u->server->proxy != NULL) {
    tunnel_start(u);
    return;
  }
  tunnel_done(u);
}

/* TCP (and the tunnel, through a proxy) is up: TLS starts, or the leg has it. */
static void tunnel_done(sy_upconn_t *u) {
  sy_h1_leg_t *leg = u->leg;
  if (u->server->tls_name != NULL) {
    tls_start(u);
    return;
  }
  uv_timer_stop(&u->timer);
  u->state = SY_UP_ACTIVE;
  sy__upstream_resume(u);
  if (leg != NULL)
    sy_h1_leg_ready(leg, 0);
}

static void on_connect_timeout(uv_timer_t *t) {
  sy_upconn_t *u = t->data;
  if (u->tls == NULL && u->server->proxy != NULL) {
    char ms[64];
    snprintf(ms, sizeof ms, "within %u ms", u->server->pool->conf->connect_timeout_ms);
    proxy_failed(u, UV_ETIMEDOUT,
                 u->tunnel != NULL ? "egress proxy did not answer CONNECT"
                                   : "cannot connect to egress proxy",
                 ms);
    return;
  }
  if (u->tls != NULL) {
    char why[400];
    snprintf(why, sizeof why, "TLS handshake with %s did not finish within %u ms",
             u->server->tls_name, u->server->pool->conf->connect_timeout_ms);
    handshake_failed(u, UV_ETIMEDOUT, why);
    return;
  }
  sy_h1_leg_t *leg = u->leg;
  sy_log_warn("upstream %s: connect timed out", u->server->label);
  connect_failed(u->server);
  if (leg != NULL)
    sy_h1_leg_ready(leg, UV_ETIMEDOUT);
  sy__upstream_close(u, 0);
}

static int avoided(const sy_upserver_t *s, const void *const *avoid, size_t navoid) {
  for (size_t i = 0; i < navoid; i++)
    if (avoid[i] == s)
      return 1;
  return 0;
}

static sy_upserver_t *pick_server(sy_uppool_t *pool, const void *const *avoid, size_t navoid) {
  uint64_t now = uv_now(&pool->w->loop);
  sy_upserver_t *fallback = NULL;
  for (size_t i = 0; i < pool->nservers; i++) {
    sy_upserver_t *s = &pool->servers[(pool->rr + i) % pool->nservers];
    if (avoided(s, avoid, navoid))
      continue;
    if (s->down_until > now || s->ejected_until > now) {
      if (fallback == NULL)
        fallback = s;
      continue;
    }
    pool->rr = (pool->rr + i + 1) % pool->nservers;
    return s;
  }
  /* Every server is marked down or avoided: try one anyway; it may be back. */
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

sy_upconn_t *sy__upstream_acquire(sy_uppool_t *pool, const void *const *avoid, size_t navoid,
                                  sy_h1_leg_t *leg,
                                  int *err) {
  sy_upserver_t *s = pick_server(pool, avoid, navoid);
  if (s->is_name && s->resolving == NULL && uv_now(&pool->w->loop) >= s->resolve_at)
    sy__upstream_resolve(s); /* in the background: this connect uses the last good set */
  sy_upconn_t *u = take_idle(s);
  if (u != NULL) {
    u->leg = leg;
    return u;
  }
  if (s->naddrs == 0) {
    sy_log_warn("upstream %s: no address yet (its name is being resolved)", s->label);
    sy__upstream_mark_down(s);
    *err = UV_EAI_NONAME;
    return NULL;
  }
  *err = UV_ENOMEM;
  u = calloc(1, sizeof(*u));
  if (u == NULL)
    return NULL;
  sy_worker_t *w = pool->w;
  u->w = w;
  u->server = s;
  u->addr_gen = s->addr_gen;
  u->leg = leg;
  u->state = SY_UP_CONNECTING;
  uv_tcp_init(&w->loop, &u->tcp);
  uv_timer_init(&w->loop, &u->timer);
  u->tcp.data = u->timer.data = u->creq.data = u;
  u->handles = 2;
  const struct sockaddr *sa = (const struct sockaddr *)&s->addrs[s->next % s->naddrs];
  int r = uv_tcp_connect(&u->creq, &u->tcp, sa, on_connect);
  if (r < 0) {
    *err = r;
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
