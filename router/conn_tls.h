/*
 * conn_tls.h — TLS on a client connection of a TLS listener: the steps between the
 * socket and the TLS engine (tls.h) that conn.c takes, knowing nothing of the
 * connection itself. Ciphertext read from the socket goes in (sy__ctls_in), which
 * advances the handshake and hands each decrypted piece to the caller; a write's
 * slices are encrypted at write time into one buffer of ciphertext (sy__ctls_seal);
 * what the engine owes the client (handshake messages, tickets, alerts) comes out
 * in order with the next sealed write or through sy__ctls_out.
 */
#ifndef SY_CONN_TLS_H
#define SY_CONN_TLS_H

#include <uv.h>

#include "router/buf.h"
#include "router/tls.h"
#include "router/types.h"

/* Decrypted bytes from the client (valid during the call). */
typedef void (*sy__ctls_plain_cb)(void *arg, const char *p, size_t n);

/* Feeds ciphertext, advances the handshake, and hands everything it decrypts to cb
 * before returning. Returns SY_TLS_WANT (all taken: send sy__ctls_out), SY_TLS_CLOSED
 * (the client's close_notify: its end of stream), or SY_TLS_ERROR (sy_tls_error says
 * why; sy_tls_ready tells a failed handshake from a failure after it). */
sy_tls_status_t sy__ctls_in(sy_tls_t *t, const char *p, size_t n, sy__ctls_plain_cb cb,
                            void *arg);
/* What the engine has for the client, in a new buffer; NULL if nothing. */
sy_buf_t *sy__ctls_out(sy_tls_t *t);
/* Encrypts the slices into one new buffer (after anything the engine still owed),
 * releasing the caller's references to owners. NULL: the handshake is not done, a
 * TLS error, or out of memory (the connection is then unusable). */
sy_buf_t *sy__ctls_seal(sy_tls_t *t, const uv_buf_t *bufs, sy_buf_t *const *owners, unsigned n);
/* A handshake of w's listener failed (or timed out) for `why`: counts it
 * (switchyard_listener_tls_errors_total) and logs it at most once a minute. Returns
 * what to send before closing: a plain 400 to a plain HTTP client, else the alert
 * the engine made (or NULL). */
sy_buf_t *sy__ctls_failed(sy_worker_t *w, sy_tls_t *t, const char *peer, const char *why);

#endif
