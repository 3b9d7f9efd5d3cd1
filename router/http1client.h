/*
 * http1client.h — one upstream HTTP/1.1 exchange (a *leg*): take a connection from
 * a pool, write the request (whole, or its head and then a streamed body), parse
 * the response with llhttp and hand it to the leg's owner, give the connection back
 * for keep-alive or close it. The primary exchange (proxy.c) and the shadow copies
 * (shadow.c) are both legs; this module names neither.
 *
 * Calls go two ways, each through a table this header defines:
 *   - up, to the owner: sy_h1_ops_t (head, body bytes, completion, error, flow);
 *   - down, to the connection pool: sy_h1_pool_ops_t (router/upstream.c implements
 *     it), which in turn calls sy_h1_leg_ready, sy_h1_leg_read and sy_h1_leg_timeout
 *     for the connection it lent.
 *
 * A leg has two states, one per side (h2o's http1client does the same): the
 * request side (connecting, sending a streamed body, sent) and the response side
 * (waiting, head, body). Every failure goes through one error path, which looks at
 * the response side's state to decide what the failure means: a reused connection
 * that the server had closed is retried once on a fresh one, an EOF ends a
 * close-delimited body, anything else is reported to the owner.
 *
 * Ownership: the owner creates a leg (sy_h1_leg_new) and then never frees it. The
 * leg frees itself after it told the owner it ended (on_complete or on_error, its
 * last call to the owner) or after sy_h1_leg_cancel; while its own code is on the
 * stack (in_callback) or writes of it are in flight, the free waits. The owner must
 * forget its pointer in on_complete, on_error and when it cancels.
 *
 * Errors: functions return 0 or a negative libuv error; a leg's failures reach the
 * owner as a sy_h1_error_t.
 */
#ifndef SY_HTTP1CLIENT_H
#define SY_HTTP1CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>
#include <uv.h>

#include "router/buf.h"
#include "router/config.h"
#include "router/http.h"

#define SY_H1_HIGH_WATER (256 * 1024) /* request bytes queued before the owner is told to stop */
#define SY_H1_LOW_WATER (64 * 1024)   /* ... and to go on again */

#define SY_H1_MAX_AVOID 8 /* servers a leg can be told to avoid */

typedef struct sy_h1_leg_s sy_h1_leg_t;

/* ---- the request builder (pure: no I/O) ---- */

/* What goes upstream. Headers of `head` are copied except the hop-by-hop ones
 * (RFC 9110 §7.6.1, and those the Connection header names), Content-Length, Expect,
 * traceparent, those `extra` replaces (same name), Authorization when
 * drop_authorization and, for a shadow copy, x-switchyard-shadow. */
typedef struct sy_h1_request_s {
  const char *method;
  const char *target; /* request target as the client sent it */
  size_t target_len;
  const sy_head_t *head; /* the client's headers */
  const sy_kv_t *extra;  /* added after the client's (a variant's headers) */
  size_t nextra;
  const char *peer;        /* the client's address: appended to X-Forwarded-For */
  const char *traceparent; /* sent as traceparent */
  int shadow;              /* adds x-switchyard-shadow: 1 */
  const char *body;        /* sent after the head (body_len may be 0) */
  size_t body_len;
  int64_t declared; /* Content-Length; < 0: Transfer-Encoding: chunked (a streamed body) */
  int drop_authorization; /* the client's Authorization is left out (authorization: drop) */
} sy_h1_request_t;

/* The request head (and body) in one new buffer, or NULL when out of memory. A
 * bodiless GET or HEAD gets no Content-Length, as the client sent it. */
sy_buf_t *sy_h1_build_request(const sy_h1_request_t *rq);

/* The headers a message's Connection header names (they are hop-by-hop too); v is
 * NULL when it names none (`close` or `keep-alive` alone, the usual case). */
typedef struct sy_h1_conn_names_s {
  const char *v;
  size_t len;
} sy_h1_conn_names_t;

sy_h1_conn_names_t sy_h1_connection_names(const sy_head_t *h);
/* Whether header `name` is one of those. */
int sy_h1_named_by_connection(sy_h1_conn_names_t cn, const char *name, size_t n);
/* Appends "name: value\r\n" to *b. Returns 0, or -1 when out of memory. */
int sy_h1_append_header(sy_buf_t **b, const char *name, size_t nlen, const char *val, size_t vlen);

/* ---- the leg ---- */

typedef enum {
  SY_H1_REQ_IDLE = 0,   /* not started */
  SY_H1_REQ_CONNECTING, /* waiting for a connection from the pool */
  SY_H1_REQ_BODY,       /* head written; a streamed body goes out as the owner gives it */
  SY_H1_REQ_SENT,       /* the whole request is written (or queued) */
  SY_H1_REQ_DONE,       /* the leg ended */
} sy_h1_req_state_t;

typedef enum {
  SY_H1_RESP_NONE = 0, /* no connection yet */
  SY_H1_RESP_WAITING,  /* connected, request going out; no response byte yet */
  SY_H1_RESP_HEAD,     /* reading the response head */
  SY_H1_RESP_BODY,     /* the owner has the head; reading the body */
  SY_H1_RESP_DONE,     /* complete, failed or cancelled */
} sy_h1_resp_state_t;

typedef enum {
  SY_H1_BODY_WHOLE = 0, /* the request buffer holds the whole request */
  SY_H1_BODY_STREAM,    /* the body follows (sy_h1_leg_write_body), as it is */
  SY_H1_BODY_CHUNKED,   /* the body follows, chunk-framed by the leg */
} sy_h1_body_t;

typedef enum {
  SY_H1_ENOCONN = 1, /* the pool could not make a connection (no memory, no handle) */
  SY_H1_ECONNECT,    /* connecting failed on every server tried (uverr) */
  SY_H1_ETIMEDOUT,   /* first byte or idle gap (state says which), or the deadline */
  SY_H1_ECLOSED,     /* EOF (uverr UV_EOF) or a socket error before the response ended */
  SY_H1_EPROTO,      /* not a valid HTTP/1.x response (reason) */
  SY_H1_EWRITE,      /* the streamed body's first bytes could not be written */
  SY_H1_EOWNER,      /* the owner's on_head refused the head */
  SY_H1_ETLS,        /* the TLS handshake failed or stalled on every server tried (detail
                        says why; uverr UV_ETIMEDOUT if it stalled) */
  SY_H1_EPROXY,      /* the egress proxy refused the tunnel or did not answer, on every
                        server tried (detail says why; uverr UV_EACCES for a 4xx answer,
                        UV_ETIMEDOUT if it stalled) */
} sy_h1_errkind_t;

typedef struct sy_h1_error_s {
  sy_h1_errkind_t kind;
  sy_h1_resp_state_t state; /* the response side when it failed */
  int uverr;                /* a libuv error, or 0 */
  const char *reason;       /* llhttp's reason (EPROTO), else NULL */
  const char *label;        /* the server's host:port, or "?" */
  const char *detail;       /* ETLS, EPROXY: a sentence naming the problem, else NULL */
} sy_h1_error_t;

/* The owner's callbacks; `data` is the owner's pointer given to sy_h1_leg_new. Those
 * marked optional may be NULL. Inside any of them the owner may call
 * sy_h1_leg_pause/resume, or sy_h1_leg_cancel (then no further callback comes). */
typedef struct sy_h1_ops_s {
  /* The final response head (1xx are skipped): status, the parser (flags: framing),
   * the head itself in the sy_head_t given to sy_h1_leg_new. Returns 0, or -1 to
   * fail the leg with SY_H1_EOWNER. */
  int (*on_head)(sy_h1_leg_t *leg, void *data, int status, const llhttp_t *parser);
  /* De-chunked body bytes, a slice of buf (take a reference to keep it). */
  void (*on_body)(sy_h1_leg_t *leg, void *data, sy_buf_t *buf, const char *p, size_t n);
  /* Optional: the body bytes of one read as the upstream framed them (chunked
   * framing kept), once per read that reached the body (n may be 0). */
  void (*on_raw)(sy_h1_leg_t *leg, void *data, sy_buf_t *buf, const char *p, size_t n);
  /* Optional: one read has been delivered and the response goes on. */
  void (*on_read_done)(sy_h1_leg_t *leg, void *data);
  /* The response is complete; the connection is back in the pool or closed. */
  void (*on_complete)(sy_h1_leg_t *leg, void *data);
  /* The leg failed; its connection is closed. */
  void (*on_error)(sy_h1_leg_t *leg, void *data, const sy_h1_error_t *err);
  /* Optional, streamed bodies: stop (1) or go on (0) giving body bytes. */
  void (*on_flow)(sy_h1_leg_t *leg, void *data, int stop);
} sy_h1_ops_t;

/* A connection as the pool lends it to a leg. */
typedef struct sy_h1_link_s {
  void *conn;          /* the pool's object; NULL: none held */
  const void *server;  /* which server it goes to (a connect retry avoids it) */
  const char *label;   /* host:port */
  uv_stream_t *stream; /* for its loop and write queue size only: writes go through
                          the pool's write op (a TLS connection encrypts them) */
  const char *host;    /* the Host header the server wants (its name), or NULL: the
                          client's goes on as it came */
  unsigned uses;       /* exchanges it served before (0: a fresh connection) */
} sy_h1_link_t;

/* A write through the pool is done (status 0) or failed. */
typedef void (*sy_h1_write_cb)(void *arg, int status);

/* The pool, as a leg uses it (router/upstream.c). `pool` and `conn` are the pool's
 * own objects. While a leg holds a connection, the pool passes its reads to
 * sy_h1_leg_read and its timer to sy_h1_leg_timeout. */
typedef struct sy_h1_pool_ops_s {
  /* Lends leg a connection to a server not among avoid[0..navoid) (if there is
   * another) and fills link. Returns 1 if it is ready now, 0 if sy_h1_leg_ready
   * follows, or a negative libuv error. */
  int (*acquire)(void *pool, const void *const *avoid, size_t navoid, sy_h1_leg_t *leg,
                 sy_h1_link_t *link);
  void (*release)(void *conn);          /* back to the idle list (keep-alive) */
  void (*close)(void *conn, int reset); /* closed, with a TCP reset if `reset` */
  void (*pause)(void *conn);            /* stop reading */
  void (*resume)(void *conn);
  void (*arm)(void *conn, uint64_t ms); /* sy_h1_leg_timeout in ms (replacing any) */
  void (*disarm)(void *conn);
  void (*result)(void *conn, int status); /* passive health: what the server answered */
  /* Writes bufs (encrypted on a TLS connection). Returns 0 when they are all taken
   * now (cb is not called), 1 when cb(arg, status) follows (the bufs' memory must
   * live until then), or a negative libuv error. */
  int (*write)(void *conn, const uv_buf_t *bufs, unsigned n, sy_h1_write_cb cb, void *arg);
} sy_h1_pool_ops_t;

typedef struct sy_h1_opts_s {
  uint64_t first_byte_ms; /* whole request written to the first response byte */
  uint64_t idle_ms;       /* between two response reads */
  uint64_t deadline;      /* loop time (ms) by which the exchange ends, from connect;
                             0: first_byte_ms and idle_ms apply instead */
  unsigned max_connects;  /* servers tried when connecting fails (at least 1) */
  int health;             /* report answers and first-byte timeouts (pool ops result) */
  int reset_on_error;     /* close a failed connection with a TCP reset */
  int head_request;       /* a HEAD request: its response has no body */
  const void *const *avoid; /* servers (the pool's objects) not to use while the pool has
                               another: the owner's retry after answers (copied) */
  size_t navoid;            /* at most SY_H1_MAX_AVOID */
} sy_h1_opts_t;

/* A new leg (IDLE), or NULL when out of memory. `head`, if not NULL, receives the
 * response head (the owner's; reset for each response). */
sy_h1_leg_t *sy_h1_leg_new(const sy_h1_ops_t *ops, void *data, const sy_h1_pool_ops_t *pool_ops,
                           void *pool, const sy_h1_opts_t *opts, sy_head_t *head);

/* Starts the exchange with request `req` (the leg takes a reference, kept for a
 * retry): connects and writes it. A WHOLE request on a reused connection that
 * turns out closed is sent once more on a fresh one. May call on_error before it
 * returns. */
void sy_h1_leg_start(sy_h1_leg_t *leg, sy_buf_t *req, sy_h1_body_t body);

/* Streamed body bytes (copied): written now, or held while connecting. Returns 0,
 * UV_ENOMEM if they could not be held, or another negative error if the
 * connection refused them. on_flow(1) says when to stop giving more. */
int sy_h1_leg_write_body(sy_h1_leg_t *leg, const char *p, size_t n);
/* The streamed body is complete (chunked: the last chunk is written). */
void sy_h1_leg_body_done(sy_h1_leg_t *leg);

/* Stops / restarts reading the response (the owner's backpressure); stopping
 * also stops the idle clock, restarting starts it again. */
void sy_h1_leg_pause(sy_h1_leg_t *leg);
void sy_h1_leg_resume(sy_h1_leg_t *leg);

/* The server (the pool's object) of the leg's latest connection, or NULL if it has
 * had none: what the owner avoids when it retries elsewhere. */
const void *sy_h1_leg_server(const sy_h1_leg_t *leg);

/* Ends the leg at once, without another callback: its connection is closed with a
 * TCP reset. */
void sy_h1_leg_cancel(sy_h1_leg_t *leg);

/* For the pool: the connection lent to leg is ready (status 0) or could not be
 * made (status < 0: the pool closes it after this returns). */
void sy_h1_leg_ready(sy_h1_leg_t *leg, int status);
/* For the pool: making the connection failed in its TLS handshake (status: libuv's
 * error, UV_ETIMEDOUT if it stalled); `why` names the problem (copied). As
 * sy_h1_leg_ready with status < 0, except that the leg's final error is SY_H1_ETLS. */
void sy_h1_leg_tls_failed(sy_h1_leg_t *leg, int status, const char *why);
/* For the pool: making the connection failed at the egress proxy (it refused the
 * CONNECT, closed, or did not answer); as sy_h1_leg_tls_failed, with SY_H1_EPROXY. */
void sy_h1_leg_proxy_failed(sy_h1_leg_t *leg, int status, const char *why);
/* For the pool: a read on the lent connection (plaintext, for TLS), as libuv gives it; b is the
 * buffer read into (NULL if none; the caller keeps its reference). */
void sy_h1_leg_read(sy_h1_leg_t *leg, ssize_t nread, sy_buf_t *b);
/* For the pool: the timer armed through pool ops arm fired. */
void sy_h1_leg_timeout(sy_h1_leg_t *leg);

#endif
