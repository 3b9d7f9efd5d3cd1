/*
 * conn.h — the client leg: a connection to a client, its HTTP/1.1 request
 * parsing, limits, timers, keep-alive, pipelining and writes (conn.c).
 */
#ifndef SY_CONN_H
#define SY_CONN_H

#include <llhttp.h>
#include <uv.h>

#include "router/buf.h"
#include "router/exchange.h"
#include "router/types.h"

enum { SY_PAUSE_STREAM = 1, SY_PAUSE_COMPLETE = 2 };

typedef enum {
  SY_CS_IDLE = 0, /* between requests */
  SY_CS_READING,  /* a request is arriving */
  SY_CS_PROXYING, /* the request is complete; its response is in progress */
  SY_CS_CLOSING,
} sy_cstate_t;

struct sy_conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer; /* header/body timeout while reading, idle timeout between requests */
  sy_worker_t *w;
  sy_conn_t *next, *prev; /* the worker's list */
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

void sy__conn_accept(sy_worker_t *w, uv_stream_t *server);
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
