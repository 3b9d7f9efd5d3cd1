/*
 * proxy.h — the objects of the request path, shared by server.c (the worker and
 * its listeners), conn.c (the client leg), upstream.c (the upstream pool) and
 * proxy.c (one exchange: route, rewrite, forward, stream back).
 *
 * Ownership, in the libuv way: a worker owns its client connections (a list) and
 * the current runtime; a runtime (one loaded config plus its upstream pools) is
 * reference-counted, so a SIGHUP reload swaps in a new one while requests in
 * flight finish on the old; a client connection embeds its current exchange; an
 * upstream connection is owned by its pool while idle and lent to one exchange
 * while active. Memory of a handle's owner is freed only in the last close
 * callback.
 */
#ifndef SY_PROXY_H
#define SY_PROXY_H

#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>
#include <llhttp.h>
#include <uv.h>

#include "policies/rng.h"
#include "policies/policy.h"
#include "policies/split.h"
#include "policies/sticky.h"
#include "router/buf.h"
#include "router/config.h"
#include "router/control_state.h"
#include "router/http.h"
#include "router/http1client.h"
#include "router/trace.h"
#include "stats/stats.h"
#include "stats/usage_scan.h"

typedef struct sy_worker_s sy_worker_t;
typedef struct sy_runtime_s sy_runtime_t;
typedef struct sy_conn_s sy_conn_t;
typedef struct sy_upconn_s sy_upconn_t;
typedef struct sy_upserver_s sy_upserver_t;
typedef struct sy_uppool_s sy_uppool_t;

#define SY_READ_BUF 65536       /* one client read; the worker has one, reused */
#define SY_UP_READ_BUF 16384    /* one upstream read: a ref-counted sy_buf_t */
#define SY_CLIENT_HIGH_WATER (256 * 1024) /* pause the upstream above this many queued bytes */
#define SY_CLIENT_LOW_WATER (64 * 1024)
#define SY_PENDING_MAX 65536    /* pipelined bytes kept while a response is in flight */
#define SY_OUTQ 16              /* iovecs gathered into one uv_write to the client */
#define SY_READ_BUF_CACHE 32    /* upstream read buffers a worker keeps for reuse */
#define SY_QUEUE_COPY_MAX 4096  /* a write that must wait this small is copied out of
                                   the read buffers it points into (see conn.c) */
#define SY_STREAM_MIN_BODY 65536 /* larger bodies that nothing rewrites are streamed */

/* ---- runtime: one loaded config and everything derived from it ---- */

struct sy_upserver_s {
  sy_uppool_t *pool;
  struct sockaddr_storage addr;
  char label[300];     /* host:port, for logs and errors */
  sy_upconn_t *idle;   /* idle keep-alive connections, most recently used first */
  unsigned nidle;
  uint64_t down_until; /* loop time (ms) before which new connects avoid this server */
  unsigned fails;      /* consecutive 5xx answers or first-byte timeouts */
  unsigned ejections;  /* ejections in a row (no success in between) */
  uint64_t ejected_until; /* loop time (ms): ejected for its answers until then */
};

struct sy_uppool_s {
  const sy_upstream_conf_t *conf;
  sy_runtime_t *rt;
  sy_upserver_t *servers;
  size_t nservers;
  size_t rr; /* round-robin cursor */
};

/* A segment's own posterior (policy: thompson with a segment_header). */
typedef struct sy_segpol_s {
  char *name;
  sy_policy_t *policy;
} sy_segpol_t;

/* What an experiment needs at request time. */
typedef struct sy_exprt_s {
  sy_policy_t *policy; /* split, fixed or thompson, experiment-wide */
  sy_sticky_t sticky;  /* thompson sessions (has_sticky) */
  int has_sticky;
  sy_segpol_t *segs;   /* segment posteriors, created as their statistics arrive */
  size_t nsegs, segcap;
  /* control state (control.c): what the gate and operators decided */
  sy_ctl_state_t ctl;      /* the last version applied (version 0: none yet) */
  sy_policy_t *override;   /* a split that replaces the policy (canary, pause, winner) */
  uint64_t gate_next_ms;   /* loop time of the gate's next look (gate_run.c) */
  struct sy_mentry_s **ment; /* per variant: its metrics entry, found at first use */
} sy_exprt_t;

struct sy_runtime_s {
  unsigned refs;
  unsigned generation;
  sy_worker_t *w;
  sy_config_t *cfg;
  sy_uppool_t *pools; /* one per cfg->upstreams */
  sy_exprt_t *exps;   /* one per cfg->experiments */
};

/* Builds a runtime for cfg (taking ownership of it): resolves upstream addresses
 * and prepares the splits. Returns NULL and writes err on failure (cfg is then
 * freed). */
sy_runtime_t *sy__runtime_new(sy_worker_t *w, sy_config_t *cfg, char *err, size_t errlen);
static inline sy_runtime_t *sy__runtime_ref(sy_runtime_t *rt) {
  rt->refs++;
  return rt;
}
/* Drops a reference; the last one closes the idle pooled connections and frees. */
void sy__runtime_unref(sy_runtime_t *rt);
/* Moves the sticky sessions of experiments that kept their id and variants from
 * `old` to `rt` (a reload must not switch a conversation's variant). */
void sy__runtime_adopt_sessions(sy_runtime_t *rt, sy_runtime_t *old);
/* Sets the sufficient statistics of thompson experiments from a snapshot
 *   {"experiments": {ID: {"variants": {VID: {"n", "sum", "sumsq"}},
 *                         "segments": {NAME: {VID: {...}}}}}}
 * (absolute totals; binary: sum = successes). Returns the number of experiments
 * updated; problems are logged, and an experiment with bad numbers keeps its state. */
int sy__runtime_apply_stats(sy_runtime_t *rt, const json_t *snapshot);
/* The policy that chooses for a request of experiment i: the segment's when it
 * has enough observations, else the experiment-wide one. */
const sy_policy_t *sy__runtime_policy_for(const sy_runtime_t *rt, size_t i, const char *seg,
                                          size_t seglen);

/* ---- upstream connections ---- */

typedef enum { SY_UP_CONNECTING = 0, SY_UP_ACTIVE, SY_UP_IDLE, SY_UP_CLOSING } sy_upstate_t;

struct sy_upconn_s {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t creq;
  sy_worker_t *w;
  sy_upserver_t *server;
  sy_upconn_t *next, *prev; /* idle list */
  sy_h1_leg_t *leg;         /* the upstream leg using it (router/http1client.h) */
  sy_upstate_t state;
  unsigned handles; /* open handles; freed when the last close callback runs */
  unsigned uses;    /* exchanges served (0 while on its first) */
};

/* Picks a server of the pool (round robin, skipping servers marked down unless
 * all are) other than `avoid`, and returns an idle connection to it (state ACTIVE,
 * ready now: sy_h1_leg_ready is not called) or a new one (state CONNECTING:
 * sy_h1_leg_ready is called later), lent to leg. Returns NULL only when out of
 * memory or handles cannot be made. */
sy_upconn_t *sy__upstream_acquire(sy_uppool_t *pool, const sy_upserver_t *avoid, sy_h1_leg_t *leg);
/* The pool as upstream legs use it: sy_h1_pool_ops_t over the functions here, for
 * a pool passed as a sy_uppool_t. */
extern const sy_h1_pool_ops_t sy__upstream_h1_pool;
/* Gives an active connection back to its server's idle list (or closes it if
 * the list is full or the runtime is going away). */
void sy__upstream_release(sy_upconn_t *u);
/* Closes a connection in any state, with a TCP reset if `reset`. The owner is
 * forgotten at once; callbacks for it never run again. */
void sy__upstream_close(sy_upconn_t *u, int reset);
/* Stops / restarts reading (client backpressure). A connection otherwise reads
 * all the time; while lent, what it reads goes to sy_h1_leg_read. */
void sy__upstream_pause(sy_upconn_t *u);
void sy__upstream_resume(sy_upconn_t *u);
/* Marks a server down for a while after a connect failure. */
void sy__upstream_mark_down(sy_upserver_t *s);
/* What server s answered: an HTTP status, or 504 for a first-byte timeout. Counts
 * consecutive failures and ejects the server after conf->eject_after of them. */
void sy__upstream_result(sy_upserver_t *s, int status);

/* ---- one exchange (request and its response), embedded in the client conn ---- */

typedef enum {
  SY_RS_NONE = 0,   /* no upstream leg yet */
  SY_RS_CONNECTING, /* the upstream leg runs; nothing sent to the client yet */
  SY_RS_BODY,       /* response head sent to the client; streaming the body */
  SY_RS_DONE,
} sy_rstate_t;

/* What an exchange's events need, captured when it is routed (the request's
 * headers are gone by the time the response completes). */
typedef struct sy_evctx_s {
  int on;               /* this exchange writes events */
  int failed;           /* 1: the response was cut; 2: the client went away */
  unsigned char consent;/* 0 none, 1 metrics (default), 2 content */
  char user[33], session[33], input[33]; /* keyed hashes, "" if absent */
  char tenant[65], task[129], country[3], segment[65];
  sy_usage_scan_t usage;
} sy_evctx_t;

typedef struct sy_api_op_s sy_api_op_t;

typedef struct sy_req_s {
  sy_head_t head; /* request target and headers */
  char method[24];
  uint8_t http_major, http_minor;
  int keepalive;  /* the client may keep the connection after this exchange */
  char *body;
  size_t body_len, body_cap;
  uint64_t t_start; /* uv_hrtime() at the first byte of the request */
  uint64_t t_first; /* uv_hrtime() when the upstream's response head arrived, or 0 */
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
  int api;           /* a request to switchyard's own API (/switchyard/v1/...) */
  sy_api_op_t *api_op; /* its Redis call in flight, if any */
  sy_evctx_t ev;

  /* upstream leg */
  sy_h1_leg_t *leg; /* while it runs (router/http1client.h) */
  sy_buf_t *out;    /* the request as sent upstream */
  sy_rstate_t rstate;
  sy_head_t rhead;  /* the response head, filled by the leg */
  int dechunk;        /* HTTP/1.0 client: forward decoded body, close-delimited */
  int resp_close;     /* close the client connection after this response */
  int up_paused;      /* upstream reads stopped for client backpressure */
  int status;         /* response status sent to the client */
  uint64_t bytes_out; /* body bytes forwarded to the client */
  uv_buf_t oq[SY_OUTQ];
  sy_buf_t *oq_owner[SY_OUTQ];
  unsigned noq;

  /* shadow */
  struct sy_shadow_pair_s *shadow; /* shared with its mirrored legs (shadow.c), or NULL */
} sy_req_t;

/* ---- client connections ---- */

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
  int reading;           /* uv_read_start is in effect */
  int pause_reason;      /* why llhttp paused: SY_PAUSE_STREAM or SY_PAUSE_COMPLETE */
  int error_status;      /* set by a parser callback that rejects the request */
  const char *error_reason;
  unsigned feed_seq;     /* counts conn_feed calls (obs-fold detection) */
  unsigned value_seq;    /* feed_seq of the last header value span */
  const char *feed_start;
  int prev_feed_lf;      /* the previous read ended with a line feed */
  char *pending;         /* bytes that arrived while a response was in progress */
  size_t npending;
  char peer[64];
  sy_req_t req;
};

/* conn.c */
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

/* proxy.c */
/* The request head is complete (called inside the parser callback): routes it
 * and decides whether its body is streamed. Returns 1 if the caller must pause
 * the parser and call sy__proxy_stream_start outside the callback; sets
 * *reject_status (413, 500) if the request must be refused. */
int sy__proxy_head(sy_conn_t *c, int *reject_status);
void sy__proxy_stream_start(sy_conn_t *c);
/* Body bytes of a streamed request (inside on_body). Returns 0 or a status to
 * refuse the request with. */
int sy__proxy_body(sy_conn_t *c, const char *p, size_t n);
/* The streamed request's message is complete. */
void sy__proxy_body_done(sy_conn_t *c);
/* The request in c->req is complete: route it and start the upstream leg. */
void sy__proxy_start(sy_conn_t *c);
/* The client went away: stop the upstream leg (its connection is closed, not pooled). */
void sy__proxy_cancel(sy_conn_t *c);
/* The client's write queue drained below the low-water mark. */
void sy__proxy_client_drained(sy_conn_t *c);
/* Frees what the exchange holds (runtime reference, buffers) and resets it. */
void sy__req_reset(sy_req_t *r);
/* shadow: the request in c->req (buffered) as it goes upstream for variant v: the
 * variant's body rewrite and headers, `traceparent` from tr; with `shadow`, the
 * header x-switchyard-shadow: 1 replaces any the client sent. Returns a new buffer,
 * or NULL with a reason in err (a body the rewrite refuses: 400) or err "" (out of
 * memory). */
sy_buf_t *sy__proxy_build_request(sy_conn_t *c, const sy_variant_conf_t *v,
                                  const sy_trace_t *tr, int shadow, char *err, size_t errlen);

/* ---- the worker: one process, one loop ---- */

struct sy_worker_s {
  uv_loop_t loop;
  const char *config_path;
  sy_runtime_t *rt; /* current */
  unsigned generation;
  uv_tcp_t *listeners;
  size_t nlisteners;
  uv_signal_t sig_term, sig_int, sig_hup;
  uv_timer_t drain_timer;
  sy_conn_t *conns;
  size_t nconns;
  size_t fd_conn_cap;       /* client connections the fd limit allows (server.c) */
  uint64_t refused_conns;   /* refused over the connection cap */
  uint64_t refused_log_ms;  /* when that was last logged */
  int draining;
  sy_rng_t rng;
  llhttp_settings_t req_settings;
  uv_fs_poll_t stats_poll; /* watches cfg->stats_file */
  int stats_polling;
  char *stats_path;        /* the file being watched */
  json_t *stats;           /* the last snapshot read, applied again after a reload */
  uint64_t requests, errors;
  sy_stats_t *link;        /* Redis link (NULL with redis.enabled: false) */
  uv_timer_t sync_timer;   /* posterior refresh and sweep (stats_sync.c) */
  uv_timer_t stop_timer;   /* shutdown: waits for the journal to be acknowledged */
  uint64_t stop_deadline;
  uint64_t api_seq;        /* feedback / outcome event ids */
  uv_timer_t control_timer; /* polls the control state (control.c) */
  json_t *control;          /* the last state read per experiment id: {field: value} */
  uv_timer_t gate_timer;    /* the gate's decider (gate_run.c) */
  /* admin API and metrics (admin.c, metrics.h) */
  uv_tcp_t admin_listener;
  int admin_open;
  struct sy_admin_conn_s *admin_conns;
  size_t admin_nconns;
  struct sy_keybucket_s *key_buckets; /* the feedback API's rate limit per key (api.c) */
  size_t nkey_buckets;
  unsigned admin_jobs; /* thread-pool jobs in flight */
  struct sy_metrics_s *metrics; /* the table shared by the workers */
  struct sy_mslot_s *mslot;     /* this worker's slot */
  uint64_t started_ms;
  /* shadow */
  struct sy_shadow_state_s *shadow; /* legs in flight and per-variant bounds (shadow.c) */
  sy_buf_t *read_bufs[SY_READ_BUF_CACHE]; /* upstream read buffers to reuse */
  unsigned nread_bufs;
  char read_buf[SY_READ_BUF];
};

/* stats_file.c */
/* Starts, moves or stops watching rt->cfg->stats_file, and applies what it holds. */
void sy__stats_file_configure(sy_worker_t *w);
void sy__stats_file_stop(sy_worker_t *w);

/* events.c: the events of an exchange */
/* The request has been routed to an experiment: captures what its events need
 * and writes the trace record (and, for missing: failure, the pending trial). */
void sy__events_routed(sy_worker_t *w, sy_req_t *r);
/* Response body bytes (de-chunked), for usage and ids. */
static inline void sy__events_body(sy_req_t *r, const char *p, size_t n) {
  if (r->ev.on)
    sy_usage_scan_feed(&r->ev.usage, p, n);
}
/* The request body as buffered: its keyed hash is the input_hash. */
void sy__events_input(sy_worker_t *w, sy_req_t *r, const char *body, size_t n);
/* The exchange is over: the request event and its counters. */
void sy__events_done(sy_worker_t *w, sy_req_t *r);

/* api.c: POST /switchyard/v1/feedback, /outcome; GET /switchyard/v1/health */
int sy__api_is_api(const sy_req_t *r);
void sy__api_start(sy_conn_t *c);
void sy__api_cancel(sy_conn_t *c);

/* stats_sync.c: the worker's Redis link */
/* Opens the link if the config asks for Redis; starts the sync timer. */
int sy__sync_open(sy_worker_t *w, char *err, size_t errlen);
/* Refreshes posteriors and sweeps now (also on each sync timer tick). */
void sy__sync_now(sy_worker_t *w);
/* Flushes the journal and waits (up to a deadline) for Redis to acknowledge it,
 * then closes the link; `done` is called after. */
void sy__sync_close(sy_worker_t *w, void (*done)(sy_worker_t *w));

/* control.c: the control state (router/control_state.h) in every router */
/* Starts the poll timer (the link polls while Redis is up). */
void sy__control_open(sy_worker_t *w);
/* Redis came up, or the config was reloaded: creates missing state, polls now. */
void sy__control_sync(sy_worker_t *w);
/* Applies the states last read to the current runtime (after a reload). */
void sy__control_reapply(sy_worker_t *w);
void sy__control_close(sy_worker_t *w);
/* The policy that routes experiment i now: the control state's override, if any. */
static inline const sy_policy_t *sy__control_policy(const sy_runtime_t *rt, size_t i) {
  return rt->exps[i].override != NULL ? rt->exps[i].override : rt->exps[i].policy;
}

/* gate_run.c: the gate's decider (one router per experiment holds the lease) */
void sy__gate_open(sy_worker_t *w);
void sy__gate_close(sy_worker_t *w);

/* metrics.c's hooks into the request path (admin.c) */
/* An exchange of experiment r->exp ends: its status, error, duration and TTFB. */
void sy__metrics_done(sy_worker_t *w, sy_req_t *r);
/* A shadow counter of (e, v): field is one of shadow.c's counter names. */
void sy__metrics_shadow(sy_worker_t *w, const sy_experiment_conf_t *e, const sy_variant_conf_t *v,
                        const char *field);

/* Copies this worker's journal counters and Redis state into its slot. */
void sy__metrics_refresh(sy_worker_t *w);
struct sy_mtext_s;
/* Appends the gauges read from this worker's runtime: share, stage, status. */
void sy__metrics_render_state(sy_worker_t *w, struct sy_mtext_s *t);

/* admin.c: the admin API on its own listener (config admin:) */
/* Opens the admin listener if the config has one. Returns 0 or -1 with err. */
int sy__admin_open(sy_worker_t *w, char *err, size_t errlen);
/* Stops accepting and closes admin connections (drain). */
void sy__admin_close(sy_worker_t *w);

/* server.c */
/* Binds a listening socket with SO_REUSEPORT (every worker binds its own and the
 * kernel spreads connections) and listens with cb. Returns 0 or -1 with err. */
int sy__listen(sy_worker_t *w, uv_tcp_t *t, const sy_hostport_t *hp, uv_connection_cb cb,
               char *err, size_t errlen);
/* An upstream read buffer: a recycled one if the worker has one. */
sy_buf_t *sy__worker_get_read_buf(sy_worker_t *w);
/* Drops a reference to an upstream read buffer; the last one recycles it. */
void sy__worker_put_read_buf(sy_worker_t *w, sy_buf_t *b);
/* Runs one worker until it is told to stop; returns the process exit status: 0, 1
 * (it could not start), or 3 when its event loop still held handles at the end (a
 * bug: each is logged). */
struct sy_metrics_s;
/* m: the metrics table shared by the workers (metrics.h); the worker writes slot
 * `index` of it. */
int sy_worker_run(const char *config_path, sy_config_t *cfg, struct sy_metrics_s *m,
                  unsigned index);
/* The connection count fell (drain bookkeeping). */
void sy__worker_conn_gone(sy_worker_t *w);

#endif
