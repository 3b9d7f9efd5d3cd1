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

/* What a connection's owner does with its requests. conn.c calls up only through
 * this table; server.c wires the proxy's exchange (proxy.h) and the worker's
 * bookkeeping into one and hands it to every connection it accepts. */
typedef struct sy_conn_ops_s {
  /* The request head is complete (inside the parser callback): 1 if the body is to
   * be streamed (the caller pauses the parser and calls stream_start outside the
   * callback); *reject_status set if the request must be refused. */
  int (*head)(sy_conn_t *c, int *reject_status);
  void (*stream_start)(sy_conn_t *c);
  /* Body bytes of a streamed request: 0, or a status to refuse it with. */
  int (*body)(sy_conn_t *c, const char *p, size_t n);
  /* The request in c->req is complete. */
  void (*start)(sy_conn_t *c);
  /* The client went away while the exchange was in progress. */
  void (*cancel)(sy_conn_t *c);
  /* The client's write queue fell below the low-water mark, or rose above the high. */
  void (*drained)(sy_conn_t *c);
  void (*backlog)(sy_conn_t *c);
  /* The exchange is over: report it, once (its record: proxy.c's sy__proxy_end). */
  void (*end)(sy_req_t *r);
  /* Frees what the exchange holds, for the next one or because the connection goes. */
  void (*reset)(sy_req_t *r);
  /* A connection is gone (drain bookkeeping). */
  void (*gone)(sy_worker_t *w);
} sy_conn_ops_t;

struct sy_conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer; /* header/body timeout while reading, idle timeout between requests */
  sy_worker_t *w;
  const sy_conn_ops_t *ops; /* the owner (set at accept) */
  sy_conn_t *next, *prev;   /* the worker's list */
  llhttp_t parser;
  sy_cstate_t state;
  unsigned handles;
  int reading;      /* uv_read_start is in effect */
  int pause_reason; /* why llhttp paused: SY_PAUSE_STREAM or SY_PAUSE_COMPLETE */
  int error_status; /* set by a parser callback that rejects the request */
  const char *error_reason;
  unsigned feed_seq;  /* counts conn_feed calls (obs-fold detection) */
  unsigned value_seq; /* feed_seq of the last header value span */
  const char *feed_start;
  int prev_feed_lf; /* the previous read ended with a line feed */
  char *pending;    /* bytes that arrived while a response was in progress */
  size_t npending;
  char peer[64];
  sy_req_t req;
};

/* Accepts a connection from `server` for w, handled by ops. */
void sy__conn_accept(sy_worker_t *w, uv_stream_t *server, const sy_conn_ops_t *ops);
/* Binds a listening socket with SO_REUSEPORT (every worker binds its own and the
 * kernel spreads connections) and listens with cb. Returns 0 or -1 with err. */
int sy__conn_listen(uv_loop_t *loop, uv_tcp_t *t, const sy_hostport_t *hp, uv_connection_cb cb,
                    void *data, char *err, size_t errlen);
/* Writes a complete response and ends the exchange; closes after it if `close`. */
void sy__conn_respond(sy_conn_t *c, sy_buf_t *resp, int status, int close);
/* Queues bytes for the client (taking one new reference to `owner`). */
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
