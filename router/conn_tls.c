/*
 * conn_tls.c — TLS on a client connection of a TLS listener (see conn_tls.h).
 *
 * The engine does no I/O: conn.c hands each read's ciphertext here and writes what
 * comes back. Everything decrypted from one read is handed over before returning,
 * so nothing waits inside the engine while reading is paused. The engine's own
 * output stays queued in it, in order, until the next sealed write or
 * sy__ctls_out takes it: a response written while a read is being decrypted
 * therefore follows the handshake's last messages on the wire, as it must.
 */
#include "router/conn_tls.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "router/metrics.h"
#include "router/worker.h"

/* uv_buf_t may be cast to struct iovec on Unix (uv/unix.h): sy_tls_writev takes them. */
_Static_assert(sizeof(uv_buf_t) == sizeof(struct iovec) &&
                   offsetof(uv_buf_t, base) == offsetof(struct iovec, iov_base) &&
                   offsetof(uv_buf_t, len) == offsetof(struct iovec, iov_len),
               "uv_buf_t is not an iovec");

#define PLAIN_CHUNK 16384 /* one TLS record's plaintext at most */
#define LOG_EVERY_MS 60000

sy_tls_status_t sy__ctls_in(sy_tls_t *t, const char *p, size_t n, sy__ctls_plain_cb cb,
                            void *arg) {
  if (sy_tls_feed(t, p, n) < 0)
    return SY_TLS_ERROR;
  sy_tls_status_t st = sy_tls_handshake(t);
  if (st != SY_TLS_OK)
    return st;
  /* The handshake is done: the same read may carry the first request already. */
  char plain[PLAIN_CHUNK];
  for (;;) {
    size_t got = 0;
    st = sy_tls_read(t, plain, sizeof plain, &got);
    if (st != SY_TLS_OK)
      return st;
    cb(arg, plain, got);
  }
}

sy_buf_t *sy__ctls_out(sy_tls_t *t) {
  size_t n = sy_tls_pending(t);
  sy_buf_t *b = n > 0 ? sy_buf_new(n) : NULL;
  if (b != NULL)
    b->len = sy_tls_drain(t, b->data, n);
  return b;
}

sy_buf_t *sy__ctls_seal(sy_tls_t *t, const uv_buf_t *bufs, sy_buf_t *const *owners, unsigned n) {
  /* A head and its body (or an SSE event's pieces) in one record: one record's
   * overhead, and one packet, instead of one per slice. */
  int ok = sy_tls_ready(t) && sy_tls_writev(t, (const struct iovec *)bufs, n) == SY_TLS_OK;
  for (unsigned i = 0; i < n; i++)
    sy_buf_unref(owners[i]);
  size_t pending = ok ? sy_tls_pending(t) : 0;
  sy_buf_t *b = ok ? sy_buf_new(pending) : NULL;
  if (b != NULL)
    b->len = sy_tls_drain(t, b->data, pending);
  return b;
}

sy_buf_t *sy__ctls_failed(sy_worker_t *w, sy_tls_t *t, const char *peer, const char *why) {
  w->tls_errors++;
  if (w->mslot != NULL)
    w->mslot->listener_tls_errors++;
  uint64_t now = uv_now(&w->loop);
  if (w->tls_error_log_ms == 0 || now - w->tls_error_log_ms >= LOG_EVERY_MS) {
    w->tls_error_log_ms = now;
    sy_log_warn("TLS listener: connection from %s closed: %s (%llu failed handshakes so far; "
                "logged at most once a minute)",
                peer, why, (unsigned long long)w->tls_errors);
  }
  if (!sy_tls_not_tls(t))
    return sy__ctls_out(t); /* the alert, if the engine made one: the client learns why */
  /* Plain HTTP at the TLS port: a plain answer says what went wrong (as Go's and
   * nginx's servers do), instead of an alert the client cannot read. */
  static const char resp[] =
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 44\r\n"
      "Connection: close\r\n\r\nThis port speaks TLS: use https:// instead.\n";
  sy_buf_t *b = sy_buf_new(sizeof resp - 1);
  if (b != NULL) {
    memcpy(b->data, resp, sizeof resp - 1);
    b->len = sizeof resp - 1;
  }
  return b;
}
