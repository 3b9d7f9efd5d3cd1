/*
 * upstream_tls.c — writes to an upstream stream, plain or through TLS, and the
 * handshake's steps (see upstream_tls.h).
 *
 * A plain write is tried at once (uv_try_write) and only what the socket did not
 * take is queued. A TLS write encrypts the whole of its bufs, gathered into as few
 * records as they fit, into one new buffer of ciphertext and writes that the same
 * way, so its completion is the ciphertext's: the caller's callback runs when the
 * socket took the encrypted bytes.
 */
#include "router/upstream_tls.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "router/buf.h"
#include "router/http.h"

/* uv_buf_t may be cast to struct iovec on Unix (uv/unix.h): sy_tls_writev takes them. */
_Static_assert(sizeof(uv_buf_t) == sizeof(struct iovec) &&
                   offsetof(uv_buf_t, base) == offsetof(struct iovec, iov_base) &&
                   offsetof(uv_buf_t, len) == offsetof(struct iovec, iov_len),
               "uv_buf_t is not an iovec");

#define MAX_BUFS 8 /* bufs of one write (a request head is written as up to 3) */

typedef struct upwrite_s {
  uv_write_t req;
  sy_upwrite_cb cb;
  void *arg;
  sy_buf_t *cipher; /* the encrypted copy, or NULL */
} upwrite_t;

static void on_written(uv_write_t *req, int status) {
  upwrite_t *w = (upwrite_t *)req;
  sy_buf_unref(w->cipher);
  if (w->cb != NULL)
    w->cb(w->arg, status);
  free(w);
}

/* Writes bufs (plaintext or ciphertext) to s; cipher, if not NULL, holds them and
 * is released when done. Returns as sy__upwrite does. */
static int write_out(uv_stream_t *s, const uv_buf_t *bufs, unsigned n, sy_buf_t *cipher,
                     sy_upwrite_cb cb, void *arg) {
  uv_buf_t left[MAX_BUFS];
  unsigned nleft = n;
  memcpy(left, bufs, n * sizeof *bufs);
  int err = sy__try_write(s, left, &nleft);
  if (err < 0 || nleft == 0) {
    sy_buf_unref(cipher);
    return err;
  }
  upwrite_t *w = malloc(sizeof *w);
  if (w == NULL) {
    sy_buf_unref(cipher);
    return UV_ENOMEM;
  }
  w->cb = cb;
  w->arg = arg;
  w->cipher = cipher;
  err = uv_write(&w->req, s, left, nleft, on_written);
  if (err < 0) {
    sy_buf_unref(cipher);
    free(w);
    return err;
  }
  return 1;
}

/* What t has for the peer, in one new buffer (NULL: nothing, or out of memory: *err). */
static sy_buf_t *drain(sy_tls_t *t, int *err) {
  size_t n = sy_tls_pending(t);
  *err = 0;
  if (n == 0)
    return NULL;
  sy_buf_t *b = sy_buf_new(n);
  if (b == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  b->len = sy_tls_drain(t, b->data, n);
  return b;
}

int sy__upwrite(uv_stream_t *s, sy_tls_t *t, const uv_buf_t *bufs, unsigned n, sy_upwrite_cb cb,
                void *arg) {
  if (n > MAX_BUFS)
    return UV_EINVAL;
  if (t == NULL)
    return write_out(s, bufs, n, NULL, cb, arg);
  /* The pieces of a request (a head with its Host line swapped, its body) go out
   * as one record, as nginx and HAProxy send theirs: a record each would cost the
   * server a decryption and an authentication per piece. */
  if (sy_tls_writev(t, (const struct iovec *)bufs, n) != SY_TLS_OK)
    return UV_EPROTO;
  int err;
  sy_buf_t *c = drain(t, &err);
  if (c == NULL)
    return err;
  uv_buf_t ub = uv_buf_init(c->data, (unsigned)c->len);
  return write_out(s, &ub, 1, c, cb, arg);
}

int sy__uptls_flush(uv_stream_t *s, sy_tls_t *t) {
  int err;
  sy_buf_t *c = drain(t, &err);
  if (c == NULL)
    return err;
  uv_buf_t ub = uv_buf_init(c->data, (unsigned)c->len);
  err = write_out(s, &ub, 1, c, NULL, NULL);
  return err < 0 ? err : 0;
}

sy_tls_status_t sy__uptls_handshake(uv_stream_t *s, sy_tls_t *t, const char *data, size_t n) {
  if (n > 0 && sy_tls_feed(t, data, n) < 0)
    return SY_TLS_ERROR;
  sy_tls_status_t st = sy_tls_handshake(t);
  /* Even a failed handshake may have an alert to send: the server learns why. */
  if (sy__uptls_flush(s, t) < 0 && st != SY_TLS_ERROR)
    return SY_TLS_ERROR;
  return st;
}
