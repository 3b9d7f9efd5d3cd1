/*
 * stats.h — a worker's link to Redis: the connection (redis.h), the journal of
 * events and counters (journal.h), this process's identity in events, and the
 * keyed hash for pseudonymous ids. The router (router/events.c, feedback.c,
 * stats_sync.c) builds on it; nothing here knows about HTTP.
 */
#ifndef SY_STATS_H
#define SY_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "proto/event5.h"
#include "stats/cluster.h"
#include "stats/journal.h"
#include "stats/privacy.h"
#include "stats/redis.h"

typedef struct sy_stats_s sy_stats_t;

/* What a worker's link needs to know (the router fills it from its config). */
typedef struct sy_stats_conf_s {
  const char *redis_url;   /* NULL: the embedded server's socket in data_dir */
  const char *data_dir;    /* the spool is DATA_DIR/spool */
  sy_redis_opts_t redis;   /* timeouts and backoff */
  const char *hash_key;    /* NULL: a random key of this process (warned) */
  int events;              /* 0: no journal (events.enabled: false) */
  const char *stream;      /* the events stream */
  unsigned long maxlen;    /* its approximate cap */
  unsigned batch_max, flush_ms;
  size_t queue_bytes, spool_bytes;
  const sy_redis_addr_t *addr; /* when not NULL, where Redis is (a Sentinel setup, say),
                                  instead of redis_url */
  /* Redis Cluster (redis.cluster): seed nodes "host:port"; 0 seeds: not a cluster.
   * redis.wait_replicas / wait_timeout_ms apply to each primary; addr gives the
   * nodes' username and password */
  const char *const *cluster;
  size_t ncluster;
} sy_stats_conf_t;

/* Cluster mode: the journal of one experiment (stats/store.c). */
typedef struct sy_exp_journal_s {
  char *exp;
  sy_journal_t *j;
} sy_exp_journal_t;

/* Called when the connection comes up (after the journal has been told). */
typedef void (*sy_stats_up_cb)(sy_stats_t *s, void *data);

struct sy_stats_s {
  uv_loop_t *loop;
  sy_redis_t redis;
  sy_journal_t *journal;     /* NULL with events.enabled: false, and in cluster mode */
  /* cluster mode (stats/store.h): the client, one journal per experiment, the
   * experiments served (feedback looks for a trace in each) */
  sy_cluster_t *cluster;
  sy_exp_journal_t *xj;
  size_t nxj, xjcap;
  char **exps;
  size_t nexps;
  int events, cluster_was_ready;
  char *data_dir;
  sy_journal_conf_t jconf; /* what each experiment's journal is made from */
  void (*cluster_closed)(sy_stats_t *s);
  sy_hash_key_t hash_key;
  char instance[40];         /* random per start: journal key, event ids */
  char router_instance[128]; /* host:pid, the events' router_instance */
  char *stream;
  char maxlen[24];
  sy_stats_up_cb on_up;
  void *up_data;
  void (*closed)(sy_stats_t *s);
  unsigned closing; /* handles still to close */
  /* after an outage: the backlog that waited, until it has been replayed */
  uv_timer_t back_timer;
  int back_pending;
  uint64_t back_at, back_waiting, back_acked0, back_dropped0;
  sy_ev5_t ev5;           /* the event being built (router/events.c, shadow.c, api.c) */
  uint64_t trace_back_ms; /* how far back a trace record is looked for: the longest
                             attribution window and its grace (the router sets it) */
  /* the RFC 3339 time of the current second, reused within it */
  uint64_t ts_sec;
  char ts_prefix[24];
};

/* Connects (in the background) and opens the journal. Returns 0 or -1 with err. */
int sy_stats_open(sy_stats_t *s, uv_loop_t *loop, const sy_stats_conf_t *cfg, char *err,
                  size_t errlen);
/* Moves unacknowledged events to the spool, closes the connection; `done` runs when
 * every handle is closed (s may then be freed). */
void sy_stats_close(sy_stats_t *s, void (*done)(sy_stats_t *s));
/* The current time, RFC 3339 UTC with milliseconds ("2026-11-24T06:40:00.123Z"). */
void sy_stats_timestamp(sy_stats_t *s, char out[32]);
/* Milliseconds since the epoch. */
uint64_t sy_stats_now_ms(void);

#endif
