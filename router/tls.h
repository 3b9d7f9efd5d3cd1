/*
 * tls.h — TLS for connections to upstreams (OpenSSL 3), as an engine that does no
 * I/O: the caller moves ciphertext between its socket and the engine (memory BIOs),
 * so a handshake never blocks an event loop and the same code serves any transport.
 *
 *   ctx = sy_tls_ctx_new(&conf)      one per upstream: CAs, client cert, versions,
 *                                    ALPN http/1.1, resumable sessions per host
 *   t = sy_tls_new(ctx, "api.example.com")   one per connection: SNI and the name
 *                                    the certificate must carry
 *   loop: sy_tls_feed(t, bytes read from the socket)
 *         sy_tls_handshake(t) / sy_tls_read(t) / sy_tls_write(t)
 *         sy_tls_drain(t, buf) -> bytes to write to the socket
 *
 * Verification is on by default, against the system's CA bundle (loaded once, when
 * the context is made: no file is read during a handshake) or conf.ca_file; the
 * peer's certificate must name the host (or IP address) given to sy_tls_new. TLS 1.2
 * is the minimum. A session the server hands out is kept per host name and offered
 * by the next connection to that host, so pooled connections after the first resume.
 *
 * Error convention (net layer): SY_TLS_* codes; the reason of a failure is a short
 * sentence from sy_tls_error ("unknown CA: unable to get local issuer certificate",
 * "certificate expired", "certificate is for another name", "the server does not
 * speak TLS"), fit for a log line and a 502 body.
 */
#ifndef SY_TLS_H
#define SY_TLS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sy_tls_conf_s {
  const char *ca_file;   /* PEM bundle; NULL: the system's (OpenSSL's default file) */
  const char *cert_file; /* client certificate chain (mTLS); NULL: none */
  const char *key_file;  /* its private key; with cert_file */
  int insecure;          /* 1: no verification at all (tests, labs); default 0 */
  int tls13_only;        /* 1: TLS 1.3 minimum; default TLS 1.2 */
} sy_tls_conf_t;

typedef struct sy_tls_ctx_s sy_tls_ctx_t;
typedef struct sy_tls_s sy_tls_t;

typedef enum {
  SY_TLS_OK = 0,     /* done (handshake complete, bytes read or written) */
  SY_TLS_WANT = 1,   /* needs more bytes from the peer (feed, then call again) */
  SY_TLS_CLOSED = 2, /* the peer closed the TLS session (close_notify) */
  SY_TLS_ERROR = -1  /* failed: sy_tls_error says why; the connection is unusable */
} sy_tls_status_t;

/* Makes a context (reads the CA bundle and the client certificate now). Returns
 * NULL with a reason in err (which names the file). */
sy_tls_ctx_t *sy_tls_ctx_new(const sy_tls_conf_t *conf, char *err, size_t errlen);
/* Frees ctx; connections made from it must have been freed first. */
void sy_tls_ctx_free(sy_tls_ctx_t *ctx);
/* Handshakes completed with ctx, and how many of them resumed a session. */
void sy_tls_ctx_counts(const sy_tls_ctx_t *ctx, uint64_t *handshakes, uint64_t *resumed);

/* A client connection to `host` (a name: SNI and the certificate's name; an IP
 * address: the certificate's IP, no SNI). Returns NULL when out of memory. */
sy_tls_t *sy_tls_new(sy_tls_ctx_t *ctx, const char *host);
/* Frees t (keeping nothing of its secrets but the resumable session in ctx). */
void sy_tls_free(sy_tls_t *t);

/* Ciphertext received from the peer. Returns 0, or -1 when out of memory. */
int sy_tls_feed(sy_tls_t *t, const void *data, size_t len);
/* Advances the handshake: OK once complete, WANT while it needs the peer, ERROR. */
sy_tls_status_t sy_tls_handshake(sy_tls_t *t);
/* Decrypts into out (up to cap bytes): OK with *got > 0, WANT (nothing decrypted
 * yet: feed more), CLOSED, or ERROR. Call again while it returns OK: more may be
 * buffered. */
sy_tls_status_t sy_tls_read(sy_tls_t *t, void *out, size_t cap, size_t *got);
/* Encrypts all of data (after the handshake). OK or ERROR; the ciphertext waits in
 * the engine until sy_tls_drain. */
sy_tls_status_t sy_tls_write(sy_tls_t *t, const void *data, size_t len);
/* Bytes waiting to be sent to the peer. */
size_t sy_tls_pending(const sy_tls_t *t);
/* Moves up to cap waiting bytes into buf; returns how many. */
size_t sy_tls_drain(sy_tls_t *t, void *buf, size_t cap);
/* Why the last call failed (a sentence), or "" if nothing failed. */
const char *sy_tls_error(const sy_tls_t *t);
/* Whether the handshake resumed an earlier session. */
int sy_tls_resumed(const sy_tls_t *t);
/* The ALPN protocol agreed, into buf ("" if none). Returns its length. */
size_t sy_tls_alpn(const sy_tls_t *t, char *buf, size_t cap);

#endif
