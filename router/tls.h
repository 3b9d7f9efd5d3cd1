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
 * The same engine serves the client-facing listener (sy_tls_server_ctx_new,
 * sy_tls_accept): the context holds the certificate chain and key (read when it is
 * made), TLS 1.2 minimum, and picks ALPN http/1.1 when the client offers it. A
 * context is reference-counted: each connection holds one reference, so a reload
 * may drop the context it replaces while connections made from it live on.
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
#include <sys/uio.h>

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

/* The listener's side: certificate chain and key (PEM files, read when the context
 * is made), the lowest version accepted. */
typedef struct sy_tls_server_conf_s {
  const char *cert_file; /* the chain, leaf first */
  const char *key_file;  /* its private key */
  int tls13_only;        /* 1: TLS 1.3 minimum; default TLS 1.2 */
} sy_tls_server_conf_t;

/* Makes a context (reads the CA bundle and the client certificate now). Returns
 * NULL with a reason in err (which names the file). */
sy_tls_ctx_t *sy_tls_ctx_new(const sy_tls_conf_t *conf, char *err, size_t errlen);
/* Makes a server context (reads the certificate chain and the key now; they must
 * match). Returns NULL with a reason in err that names the file ("certificate",
 * "key" or "does not match"). */
sy_tls_ctx_t *sy_tls_server_ctx_new(const sy_tls_server_conf_t *conf, char *err, size_t errlen);
/* Takes one more reference to ctx; returns ctx. */
sy_tls_ctx_t *sy_tls_ctx_ref(sy_tls_ctx_t *ctx);
/* Drops the caller's reference to ctx (NULL allowed); the context is freed with the
 * last connection made from it. */
void sy_tls_ctx_free(sy_tls_ctx_t *ctx);
/* Handshakes completed with ctx, and how many of them resumed a session. */
void sy_tls_ctx_counts(const sy_tls_ctx_t *ctx, uint64_t *handshakes, uint64_t *resumed);

/* A client connection to `host` (a name: SNI and the certificate's name; an IP
 * address: the certificate's IP, no SNI). Returns NULL when out of memory. */
sy_tls_t *sy_tls_new(sy_tls_ctx_t *ctx, const char *host);
/* A server connection (the listener's) from a server context. Returns NULL when out
 * of memory. */
sy_tls_t *sy_tls_accept(sy_tls_ctx_t *ctx);
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
/* Encrypts the n slices of iov in order, as sy_tls_write would their concatenation,
 * in as few records as it can: consecutive slices are gathered while they fit one
 * record (16 KB of plaintext), so a head written in pieces and its body cost the
 * peer one record to open, not one per piece. OK or ERROR. (libuv's uv_buf_t may be
 * cast to struct iovec on Unix.) */
sy_tls_status_t sy_tls_writev(sy_tls_t *t, const struct iovec *iov, unsigned n);
/* Bytes waiting to be sent to the peer. */
size_t sy_tls_pending(const sy_tls_t *t);
/* Moves up to cap waiting bytes into buf; returns how many. */
size_t sy_tls_drain(sy_tls_t *t, void *buf, size_t cap);
/* Why the last call failed (a sentence), or "" if nothing failed. */
const char *sy_tls_error(const sy_tls_t *t);
/* Queues a close_notify alert (then drain): the peer learns the close is not a cut.
 * Does nothing before the handshake completed. */
void sy_tls_shutdown(sy_tls_t *t);
/* Whether the handshake is complete. */
int sy_tls_ready(const sy_tls_t *t);
/* Whether the last failure was a peer that does not speak TLS (plain HTTP sent to a
 * TLS port, or a TLS client at a plain server). */
int sy_tls_not_tls(const sy_tls_t *t);
/* The serial number of the certificate a server context presents, as hex, into buf
 * ("" if none). For logs. */
void sy_tls_ctx_serial(const sy_tls_ctx_t *ctx, char *buf, size_t cap);
/* Whether the handshake resumed an earlier session. */
int sy_tls_resumed(const sy_tls_t *t);
/* The ALPN protocol agreed, into buf ("" if none). Returns its length. */
size_t sy_tls_alpn(const sy_tls_t *t, char *buf, size_t cap);

#endif
