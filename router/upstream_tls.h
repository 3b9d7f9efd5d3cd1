/*
 * upstream_tls.h — writing to an upstream connection's stream, in plaintext or
 * through its TLS engine (router/tls.h), and advancing a TLS handshake with bytes
 * read from it. The pool (upstream.c) uses these for its write op, its handshake
 * and its reads; this module knows streams and engines, not pools or legs.
 *
 * Errors: negative libuv codes; a TLS failure as SY_TLS_ERROR (sy_tls_error says
 * why).
 */
#ifndef SY_UPSTREAM_TLS_H
#define SY_UPSTREAM_TLS_H

#include <uv.h>

#include "router/tls.h"

/* A write is done (status 0) or failed. */
typedef void (*sy_upwrite_cb)(void *arg, int status);

/* Writes bufs to s, encrypted by t first if t is not NULL (the ciphertext is a
 * copy: then the bufs' memory is free to go at once). Returns 0 when everything
 * was taken now (cb is not called), 1 when cb(arg, status) follows, or a negative
 * libuv error (cb is not called). cb may be NULL. */
int sy__upwrite(uv_stream_t *s, sy_tls_t *t, const uv_buf_t *bufs, unsigned n, sy_upwrite_cb cb,
                void *arg);
/* Writes what t has waiting for the peer (handshake records, alerts, key updates).
 * Returns 0 or a negative libuv error. */
int sy__uptls_flush(uv_stream_t *s, sy_tls_t *t);
/* Feeds n ciphertext bytes read from s (none: just starts) to t's handshake and
 * sends what it answers. Returns SY_TLS_OK once the handshake is complete,
 * SY_TLS_WANT while it waits for the server, SY_TLS_ERROR (sy_tls_error says why,
 * including a failed write). */
sy_tls_status_t sy__uptls_handshake(uv_stream_t *s, sy_tls_t *t, const char *data, size_t n);

#endif
