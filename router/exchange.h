/*
 * exchange.h — one exchange (a request and its response) as the proxy keeps it,
 * embedded in its client connection (conn.h). Types only.
 */
#ifndef SY_EXCHANGE_H
#define SY_EXCHANGE_H

#include <stdint.h>

#include <llhttp.h>
#include <uv.h>

#include "router/buf.h"
#include "router/http.h"
#include "router/http1client.h"
#include "router/trace.h"
#include "router/types.h"
#include "stats/usage_scan.h"

#define SY_CLIENT_HIGH_WATER (256 * 1024) /* pause the upstream above this many queued bytes */
#define SY_CLIENT_LOW_WATER (64 * 1024)
#define SY_PENDING_MAX 65536 /* pipelined bytes kept while a response is in flight */
#define SY_OUTQ 16           /* iovecs gathered into one uv_write to the client */
#define SY_QUEUE_COPY_MAX                                                                          \
  4096                           /* a write that must wait this small is copied out of             \
                                    the read buffers it points into (see conn.c) */
#define SY_STREAM_MIN_BODY 65536 /* larger bodies that nothing rewrites are streamed */

typedef enum {
  SY_RS_NONE = 0,   /* no upstream leg yet */
  SY_RS_CONNECTING, /* the upstream leg runs; nothing sent to the client yet */
  SY_RS_BODY,       /* response head sent to the client; streaming the body */
  SY_RS_DONE,
} sy_rstate_t;

/* What an exchange's events need, captured when it is routed (the request's
 * headers are gone by the time the response completes). */
typedef struct sy_evctx_s {
  int on;                                /* this exchange writes events */
  int failed;                            /* 1: the response was cut; 2: the client went away */
  unsigned char consent;                 /* 0 none, 1 metrics (default), 2 content */
  char user[33], session[33], input[33]; /* keyed hashes, "" if absent */
  char tenant[65], task[129], country[3], segment[65];
  sy_usage_scan_t usage;
} sy_evctx_t;

typedef struct sy_api_op_s sy_api_op_t;

#define SY_RETRY_MAX_TRIES 8 /* upstream tries of one request, fallback included */

/* How an exchange ended: computed once, when it ends, and handed to everything that
 * reports it (metrics, the request event, the shadow comparison), so that they all
 * report the same status, error and duration. */
typedef struct sy_exchange_end_s {
  int status;       /* the status sent to the client; 0 if none was */
  int logged;       /* the status events record: 499 when the client went away first */
  int error;        /* counted as the variant's error (5xx, no answer, a cut response) */
  int client_gone;  /* the client went away before the answer was complete */
  double ms;        /* from the request's first byte to the end */
  double ttfb_ms;   /* to the response head; < 0: none came */
  unsigned tries;   /* upstream tries made (1 unless retried; 0 if none was) */
  int retried;      /* a retry was decided (it may not have started: the client left) */
  int fallback;     /* the variant's fallback upstream gave the answer */
} sy_exchange_end_t;

/* What the request path reports as it goes, to whoever listens: the admin layer's
 * metrics (admin_metrics.c fills it; server.c wires it into the worker). The
 * exchange and the control layer call it through w->report and never name the
 * listener; a worker without one (w->report NULL) reports nothing. */
typedef struct sy_report_ops_s {
  /* An exchange of experiment r->exp ends (after sy__proxy_end computed `end`). */
  void (*exchange_end)(sy_worker_t *w, const sy_req_t *r, const sy_exchange_end_t *end);
  /* A shadow counter of (e, v) moved: field is one of shadow.c's counter names. */
  void (*shadow_count)(sy_worker_t *w, const sy_experiment_conf_t *e, const sy_variant_conf_t *v,
                       const char *field);
  /* Every events.sync_ms (stats_sync.c's timer): gauges read from the worker's link. */
  void (*tick)(sy_worker_t *w);
} sy_report_ops_t;

struct sy_req_s {
  sy_head_t head; /* request target and headers */
  char method[24];
  uint8_t http_major, http_minor;
  int keepalive; /* the client may keep the connection after this exchange */
  char *body;
  size_t body_len, body_cap;
  size_t held;        /* bytes charged to the worker's held bodies (router/bodycap.h) */
  uint64_t t_start;   /* uv_hrtime() at the first byte of the request */
  uint64_t t_first;   /* uv_hrtime() when the upstream's response head arrived, or 0 */
  int stream_body;    /* the body goes upstream as it arrives (nothing rewrites it) */
  int stream_chunked; /* ... chunk-framed, as the client sent it */
  int client_paused;  /* client reads stopped: the upstream takes the body slowly */
  uint64_t body_seen; /* streamed body bytes received so far */

  /* routing */
  sy_runtime_t *rt; /* referenced for the life of the exchange */
  int exp;          /* experiment index or -1 */
  size_t variant;
  double propensity;
  sy_uppool_t *pool;
  sy_trace_t trace;
  int api;             /* a request to switchyard's own API (/switchyard/v1/...) */
  sy_api_op_t *api_op; /* its Redis call in flight, if any */
  sy_evctx_t ev;

  /* upstream leg */
  sy_h1_leg_t *leg; /* while it runs (router/http1client.h) */
  sy_buf_t *out;    /* the request as sent upstream */
  sy_rstate_t rstate;
  sy_head_t rhead;    /* the response head, filled by the leg */
  int dechunk;        /* HTTP/1.0 client: forward decoded body, close-delimited */
  int resp_close;     /* close the client connection after this response */
  int up_paused;      /* upstream reads stopped for client backpressure */
  int status;         /* response status sent to the client */
  int ended;          /* the end has been reported (sy__proxy_end) */
  uint64_t bytes_out; /* body bytes forwarded to the client */
  uv_buf_t oq[SY_OUTQ];
  sy_buf_t *oq_owner[SY_OUTQ];
  unsigned noq;

  /* retries and fallback (proxy.c; router/retry.h) */
  sy_uppool_t *up;             /* the pool of the current try: pool, or the fallback's */
  unsigned tries;              /* upstream tries so far, all pools */
  unsigned tries_here;         /* ... on up */
  int on_fallback;             /* up is the variant's fallback upstream */
  int counted;                 /* counted in up->active (and up->retrying if retrying) */
  int retrying;                /* the request has been retried at least once */
  const void *answered[SY_RETRY_MAX_TRIES]; /* servers of up that gave an answer */
  size_t nanswered;
  char tried[SY_RETRY_MAX_TRIES][8]; /* each try's result: "503", "connect", "reset", ... */
  struct sy_retry_wait_s *wait;      /* a retry waiting out its backoff, or NULL */

  /* shadow */
  struct sy_shadow_pair_s *shadow; /* shared with its mirrored legs (shadow.c), or NULL */
};

#endif
