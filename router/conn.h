/*
 * conn.h — the client leg: a connection to a client, its HTTP/1.1 request
 * parsing, limits, timers, keep-alive, pipelining and writes (conn.c).
 */
#ifndef SY_CONN_H
#define SY_CONN_H

#include <llhttp.h>
#include <uv.h>

#include "router/buf.h"
#include "router/config.h"
#include "router/exchange.h"
#include "router/types.h"

enum { SY_PAUSE_STREAM = 1, SY_PAUSE_COMPLETE = 2 };

typedef enum {
  SY_CS_IDLE = 0, /* between requests */
  SY_CS_READING,  /* a request is arriving */
  SY_CS_PROXYING, /* the request is complete; its response is in progress */
  SY_CS_CLOSING,
} sy_cstate_t;

/* What a connection's owner does with its requests, and how its listener differs
 * from the proxy's. conn.c calls up only through this table; server.c wires the
 * proxy's exchange (proxy.h) and the worker's bookkeeping into one, admin.c the
 * admin API's routes. Ops marked optional may be NULL; settings left 0 take the
 * proxy's values (the config's limits). */
typedef struct sy_conn_ops_s {
  /* The request head is complete (inside the parser callback): 1 if the body is to
   * be streamed (the caller pauses the parser and calls stream_start outside the
   * callback); *reject_status set if the request must be refused (c->error_reason
   * may then say why, for the response's message). */
  int (*head)(sy_conn_t *c, int *reject_status);
  /* Optional if head never returns 1: a streamed body starts, and its bytes (0, or
   * a status to refuse the request with). */
  void (*stream_start)(sy_conn_t *c);
  int (*body)(sy_conn_t *c, const char *p, size_t n);
  /* The request in c->req is complete. The owner answers with sy__conn_respond, now
   * or later (then it sets c->req.rstate to SY_RS_CONNECTING meanwhile, so that a
   * client going away is reported through cancel). */
  void (*start)(sy_conn_t *c);
  /* The client went away while the exchange was in progress. */
  void (*cancel)(sy_conn_t *c);
  /* Optional: the client's write queue fell below the low-water mark, or rose above
   * the high. */
  void (*drained)(sy_conn_t *c);
  void (*backlog)(sy_conn_t *c);
  /* Optional: the exchange is over; report it, once (proxy.c's sy__proxy_end). */
  void (*end)(sy_req_t *r);
  /* Optional: frees what the exchange holds (it is over, or the connection is being
   * freed). */
  void (*reset)(sy_req_t *r);
  /* Optional: a connection is gone (drain bookkeeping). */
  void (*gone)(sy_worker_t *w);
  /* Optional: the response to a request conn.c refuses (a parse error, a limit, the
   * request timeout), with conn.c's message for it; NULL or its NULL result:
   * switchyard's JSON error (sy_http_error). */
  sy_buf_t *(*refusal)(sy_conn_t *c, int status, const char *message);

  /* Settings of the listener. */
  size_t max_conns;      /* open connections at most; when full, the oldest one that has
                            not sent a complete request is closed to make room for a new
                            one (or else the new one is). 0: limits.max_connections or
                            the descriptor limit, refusing new ones with a 503 */
  unsigned deadline_ms;  /* the request must be complete this long after accept. 0:
                            limits.header_timeout_ms from each request's first byte */
  size_t max_body_bytes; /* 0: limits.max_body_bytes */
} sy_conn_ops_t;

struct sy_conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer; /* header/body timeout while reading, idle timeout between requests */
  sy_worker_t *w;
  const sy_conn_ops_t *ops; /* the owner (set at accept) */
  sy_conn_t *next, *prev;   /* the list it was accepted into (w->conns for the proxy) */
  sy_conn_t **list;
  size_t *nlist;            /* that list's count */
  void *data;               /* the owner's, for its own state (admin.c: a job in flight) */
  llhttp_t parser;
  sy_cstate_t state;
  unsigned handles;
  int reading;      /* uv_read_start is in effect */
  int pause_reason; /* why llhttp paused: SY_PAUSE_STREAM or SY_PAUSE_COMPLETE */
  int error_status; /* set by a parser callback that rejects the request */
  int linger;       /* a refused request's body may still be coming: closing waits for
                       the client's EOF (or the close deadline), reading and dropping it,
                       so that the client gets the response rather than a reset */
  const char *error_reason;
  unsigned feed_seq;  /* counts conn_feed calls (obs-fold detection) */
  unsigned value_seq; /* feed_seq of the last header value span */
  const char *feed_start;
  int prev_feed_lf; /* the previous read ended with a line feed */
  char *pending;    /* bytes that arrived while a response was in progress */
  size_t npending;
  char peer[64];
  struct sy_tls_s *tls; /* a TLS listener's connection: its session (conn_tls.c) */
  sy_req_t req;
};

/* Accepts a connection from `server` for w, handled by ops, into the worker's list
 * of proxy connections (w->conns, w->nconns: the connection cap and the drain count
 * them). tls: the listener's TLS context (the connection takes a reference), or
 * NULL for plain HTTP. */
void sy__conn_accept(sy_worker_t *w, uv_stream_t *server, const sy_conn_ops_t *ops,
                     struct sy_tls_ctx_s *tls);
/* The same into another list (head and count, both owned by the caller, e.g. the
 * worker's admin connections), which the proxy's cap and drain do not see. */
void sy__conn_accept_into(sy_worker_t *w, uv_stream_t *server, const sy_conn_ops_t *ops,
                          sy_conn_t **list, size_t *nlist);
/* Writes a complete response and ends the exchange; closes after it if `close`. */
void sy__conn_respond(sy_conn_t *c, sy_buf_t *resp, int status, int close);
/* Queues bytes for the client (taking one new reference to `owner`); a TLS
 * connection's are encrypted now. */
int sy__conn_write(sy_conn_t *c, const uv_buf_t *bufs, sy_buf_t *const *owners, unsigned n);
/* The response has been queued in full: keep the connection for the next request
 * or close it once written. */
void sy__conn_exchange_done(sy_conn_t *c);
/* Ends the connection abruptly (the client sees a cut response). */
void sy__conn_abort(sy_conn_t *c);
/* Closes an idle connection (drain); no-op for a busy one. */
void sy__conn_close_if_idle(sy_conn_t *c);
void sy__conn_close(sy_conn_t *c);
/* Flow control of the client's request body (streamed uploads). */
void sy__conn_pause_reading(sy_conn_t *c);
void sy__conn_resume_reading(sy_conn_t *c);

#endif
