/*
 * redis_ev.c — the libuv adapter of hiredis's async API (see redis_ev.h), moved
 * here from redis.c so that the Sentinel watch uses the same one.
 */
#include "stats/redis_ev.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>

typedef struct ev_s {
  redisAsyncContext *ac; /* NULL once hiredis has let go (cleanup) */
  uv_poll_t poll;
  int events;
} ev_t;

static void ev_poll_cb(uv_poll_t *h, int status, int events) {
  ev_t *e = h->data;
  if (e->ac == NULL)
    return;
  if (status < 0) {
    /* libuv has stopped the handle (POLLERR): a refused connect, a reset. Let
     * hiredis find out and tear down: a connect in progress reads SO_ERROR in its
     * write handler, an established connection gets the error from read(). If it
     * finds nothing, the handle stays stopped and the deadlines end the link. */
    if (e->ac->c.flags & REDIS_CONNECTED)
      redisAsyncHandleRead(e->ac);
    else
      redisAsyncHandleWrite(e->ac);
    return;
  }
  if (events & UV_READABLE)
    redisAsyncHandleRead(e->ac);
  if (e->ac != NULL && (events & UV_WRITABLE))
    redisAsyncHandleWrite(e->ac);
}

static void ev_update(ev_t *e) {
  if (e->events)
    uv_poll_start(&e->poll, e->events, ev_poll_cb);
  else
    uv_poll_stop(&e->poll);
}

static void ev_add_read(void *p) {
  ((ev_t *)p)->events |= UV_READABLE;
  ev_update(p);
}
static void ev_del_read(void *p) {
  ((ev_t *)p)->events &= ~UV_READABLE;
  ev_update(p);
}
static void ev_add_write(void *p) {
  ((ev_t *)p)->events |= UV_WRITABLE;
  ev_update(p);
}
static void ev_del_write(void *p) {
  ((ev_t *)p)->events &= ~UV_WRITABLE;
  ev_update(p);
}

static void ev_closed(uv_handle_t *h) { free(h->data); }

static void ev_cleanup(void *p) {
  ev_t *e = p;
  e->ac = NULL;
  uv_close((uv_handle_t *)&e->poll, ev_closed);
}

int sy_redis_ev_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  ev_t *e = calloc(1, sizeof *e);
  if (e == NULL)
    return -1;
  if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
    free(e);
    return -1;
  }
  e->ac = ac;
  e->poll.data = e;
  ac->ev.data = e;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  return 0;
}

void sy_redis_ev_keepalive(int fd) {
  int on = 1, idle = 5, intvl = 2, cnt = 3;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}
