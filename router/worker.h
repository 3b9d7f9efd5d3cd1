/*
 * worker.h — the worker: one process, one libuv loop, and what the loop owns.
 *
 * Ownership, in the libuv way: a worker owns its client connections (a list) and
 * the current runtime; a runtime (one loaded config plus its upstream pools) is
 * reference-counted, so a SIGHUP reload swaps in a new one while requests in
 * flight finish on the old. Memory of a handle's owner is freed only in the last
 * close callback. Types only: server.c runs the worker (server.h).
 */
#ifndef SY_WORKER_H
#define SY_WORKER_H

#include <stdint.h>

#include <jansson.h>
#include <llhttp.h>
#include <uv.h>

#include "policies/rng.h"
#include "router/buf.h"
#include "router/types.h"
#include "stats/stats.h"

#define SY_READ_BUF 65536    /* one client read; the worker has one, reused */
#define SY_READ_BUF_CACHE 32 /* upstream read buffers a worker keeps for reuse */

struct sy_worker_s {
  uv_loop_t loop;
  const char *config_path;
  sy_runtime_t *rt; /* current */
  unsigned generation;
  uv_tcp_t *listeners;
  size_t nlisteners;
  uv_signal_t sig_term, sig_int, sig_hup;
  uv_timer_t drain_timer;
  sy_runtime_t *next_rt;  /* a reloaded runtime waiting for its server names (server.c) */
  uint64_t next_since;    /* loop time it was made */
  uv_timer_t next_timer;  /* polls it */
  sy_conn_t *conns;
  size_t nconns;
  size_t fd_conn_cap;      /* client connections the fd limit allows (server.c) */
  uint64_t refused_conns;  /* refused over the connection cap */
  uint64_t refused_log_ms; /* when that was last logged */
  struct sy_tls_ctx_s **listen_tls; /* per listener: its TLS context now (a reference),
                                       or NULL for a plain one (server.c) */
  char **listen_addr;               /* per listener: "host:port" as bound */
  uint64_t tls_errors;              /* failed handshakes on the listeners (conn_tls.c) */
  uint64_t tls_error_log_ms;        /* when one was last logged */
  int draining;
  sy_rng_t rng;
  llhttp_settings_t req_settings;
  uv_fs_poll_t stats_poll; /* watches cfg->stats_file */
  int stats_polling;
  uv_timer_t stats_recheck; /* one more load, after the poll has its first stat */
  char *stats_path; /* the file being watched */
  json_t *stats;    /* the last snapshot read, applied again after a reload */
  uint64_t requests, errors;
  /* request bodies held in memory (bodycap.c) */
  size_t held_body_bytes;     /* charged now */
  uint64_t held_body_refused; /* requests refused with 503 over limits.held_body_bytes */
  uint64_t *held_pub;         /* both, published where /metrics reads them (the shared
                                 table's slot, set by server.c), or NULL */
  sy_stats_t *link;      /* Redis link (NULL with redis.enabled: false) */
  uv_timer_t sync_timer; /* posterior refresh and sweep (stats_sync.c) */
  uv_timer_t stop_timer; /* shutdown: waits for the journal to be acknowledged */
  uint64_t stop_deadline;
  uint64_t api_seq;         /* feedback / outcome event ids */
  uv_timer_t control_timer; /* polls the control state (control.c) */
  json_t *control;          /* the last state read per experiment id: {field: value} */
  uv_timer_t gate_timer;    /* the gate's decider (gate_run.c) */
  /* admin API and metrics (admin.c, metrics.h) */
  uv_tcp_t admin_listener;
  int admin_open;
  sy_conn_t *admin_conns; /* the admin listener's connections (conn.c), apart from conns */
  size_t admin_nconns;
  struct sy_keybucket_s *key_buckets; /* the feedback API's rate limit per key (api.c) */
  size_t nkey_buckets;
  unsigned admin_jobs;          /* thread-pool jobs in flight */
  const struct sy_report_ops_s *report; /* the request path's listener (exchange.h), or NULL */
  struct sy_metrics_s *metrics; /* the table shared by the workers */
  struct sy_mslot_s *mslot;     /* this worker's slot */
  uint64_t started_ms;
  /* shadow */
  struct sy_shadow_state_s *shadow;       /* legs in flight and per-variant bounds (shadow.c) */
  sy_buf_t *read_bufs[SY_READ_BUF_CACHE]; /* upstream read buffers to reuse */
  unsigned nread_bufs;
  char read_buf[SY_READ_BUF];
};

#endif
