/*
 * upstream_h1.c — the pool as an upstream leg sees it: router/http1client.h's
 * sy_h1_pool_ops_t over the pool's functions (upstream.h), for a pool passed as a
 * sy_uppool_t and a connection as a sy_upconn_t (see upstream_h1.h).
 */
#include "router/upstream_h1.h"

#include "router/upstream.h"
#include "router/upstream_tls.h"

static int h1_acquire(void *pool, const void *const *avoid, size_t navoid, sy_h1_leg_t *leg,
                      sy_h1_link_t *link) {
  int err = 0;
  sy_upconn_t *u = sy__upstream_acquire(pool, avoid, navoid, leg, &err);
  if (u == NULL)
    return err < 0 ? err : UV_ENOMEM;
  link->conn = u;
  link->server = u->server;
  link->label = u->server->label;
  link->stream = (uv_stream_t *)&u->tcp;
  link->host = u->server->host[0] != '\0' ? u->server->host : NULL;
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

static int h1_write(void *conn, const uv_buf_t *bufs, unsigned n, sy_h1_write_cb cb, void *arg) {
  sy_upconn_t *u = conn;
  if (u->state != SY_UP_ACTIVE)
    return UV_EPIPE;
  return sy__upwrite((uv_stream_t *)&u->tcp, u->tls, bufs, n, cb, arg);
}

const sy_h1_pool_ops_t sy__upstream_h1_pool = {
    h1_acquire, h1_release, h1_close, h1_pause, h1_resume, h1_arm, h1_disarm, h1_result, h1_write,
};
