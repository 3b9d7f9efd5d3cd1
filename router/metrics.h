/*
 * metrics.h — the router's Prometheus metrics, shared by its worker processes.
 *
 * With `workers > 1` any worker may answer a scrape, yet Prometheus wants one
 * consistent series per target. So the counters live in one shared memory table
 * (mmap MAP_SHARED, created before the workers are forked): each worker owns a slot
 * and only it writes there (no locks: 64-bit aligned stores), and whichever worker
 * serves /metrics sums every slot. A restarted worker keeps its slot's counters and
 * adds to them (its journal's own totals on top of the slot's earlier ones), so the
 * sums never go down: Prometheus would take any drop for a reset to zero and count
 * the surviving workers' totals again.
 *
 * Per (experiment, variant): responses by status class, errors, duration and time to
 * first byte histograms, shadow copies sent, dropped and skipped. Per worker: the
 * journal's counters and whether Redis is up. Per upstream: TLS handshakes, resumed
 * sessions and TLS errors. Gauges of the control state (stage,
 * status, traffic share) come from the serving worker's runtime at scrape time.
 */
#ifndef SY_METRICS_H
#define SY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/latency.h"

#define SY_M_ENTRIES 512 /* (experiment, variant) pairs per worker */
#define SY_M_ID 65

typedef struct sy_mentry_s {
  char exp[SY_M_ID], var[SY_M_ID]; /* exp[0] == '\0': free */
  uint64_t code[5];                /* 1xx-2xx, 3xx, 4xx, 5xx, none (cut before a status) */
  uint64_t errors;
  uint64_t retried, fallbacks; /* responses after more than one try; from the fallback */
  uint64_t dur[SY_LAT_BUCKETS], dur_sum_us;
  uint64_t ttfb[SY_LAT_BUCKETS], ttfb_sum_us;
  uint64_t shadow_sent, shadow_errors, shadow_dropped_inflight, shadow_dropped_budget,
      shadow_skipped;
} sy_mentry_t;

#define SY_M_UPSTREAMS 64 /* upstreams with TLS counters per worker */

/* Per upstream (with https:// servers): TLS handshakes completed, how many of them
 * resumed a session, and TLS failures (handshake refused or stalled, or a TLS error
 * on an open connection). */
typedef struct sy_mupstream_s {
  char name[SY_M_ID]; /* name[0] == '\0': free */
  uint64_t tls_handshakes, tls_resumed, tls_errors;
} sy_mupstream_t;

typedef struct sy_mslot_s {
  uint64_t pid; /* 0: no worker */
  uint64_t events_queued, events_spooled, events_replayed, events_dropped;
  /* the totals of the slot's earlier processes (a restarted worker adds to them) */
  uint64_t spooled_base, replayed_base, dropped_base;
  uint64_t redis_up;
  uint64_t redis_down_ms; /* the current outage (0 while up) */
  uint64_t held_body[2];  /* request bodies held now (bytes), requests refused over the
                             cap (router/bodycap.h writes both) */
  uint64_t nentries;
  sy_mentry_t e[SY_M_ENTRIES];
  uint64_t nupstreams;
  sy_mupstream_t up[SY_M_UPSTREAMS];
  uint64_t listener_tls_errors; /* TLS handshakes refused or timed out on the listener */
  /* Redis Sentinel: master switches followed, and WAITs come back short
   * (redis.wait_replicas); with the totals of the slot's earlier processes */
  uint64_t redis_switches, redis_wait_short, switches_base, wait_short_base;
} sy_mslot_t;

typedef struct sy_metrics_s {
  unsigned nslots;
  sy_mslot_t *slots; /* shared mapping */
} sy_metrics_t;

/* Maps a table for n workers (shared with the processes forked later). Returns 0 or
 * -1 (errno set). */
int sy_metrics_create(sy_metrics_t *m, unsigned n);
void sy_metrics_destroy(sy_metrics_t *m);

/* Worker i's slot, marked with the caller's pid; counters kept, gauges cleared. */
sy_mslot_t *sy_metrics_attach(sy_metrics_t *m, unsigned i);

/* The slot's entry for (exp, var), created if missing; NULL when the slot is full. */
sy_mentry_t *sy_metrics_entry(sy_mslot_t *s, const char *exp, const char *var);

/* The slot's entry for upstream `name`, created if missing; NULL when the slot is
 * full (or s is NULL). */
sy_mupstream_t *sy_metrics_upstream(sy_mslot_t *s, const char *name);

/* A response of entry e: status (0: none sent), whether it failed, its duration and
 * time to first byte in seconds (ttfb < 0: no byte came). */
void sy_metrics_response(sy_mentry_t *e, int status, int error, double dur_s, double ttfb_s);

/* A growable text buffer for the exposition. */
typedef struct sy_mtext_s {
  char *p;
  size_t len, cap;
  int oom;
} sy_mtext_t;

void sy_mtext_printf(sy_mtext_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends the summed counters of every slot in the Prometheus text format (version
 * 0.0.4) to t: the per-variant families and the per-process ones. */
void sy_metrics_render(const sy_metrics_t *m, sy_mtext_t *t);

#endif
