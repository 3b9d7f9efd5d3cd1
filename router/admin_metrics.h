/*
 * admin_metrics.h — the metrics' hooks into the request path and the gauges read
 * from the runtime (admin_metrics.c; the shared table is metrics.h).
 */
#ifndef SY_ADMIN_METRICS_H
#define SY_ADMIN_METRICS_H

#include "router/config.h"
#include "router/exchange.h"
#include "router/types.h"

/* The three below as the request path's report table (router/exchange.h). */
extern const sy_report_ops_t sy__metrics_report;

/* An exchange of experiment r->exp ends: its status, error, duration and TTFB. */
void sy__metrics_done(sy_worker_t *w, const sy_req_t *r, const sy_exchange_end_t *end);
/* A shadow counter of (e, v): field is one of shadow.c's counter names. */
void sy__metrics_shadow(sy_worker_t *w, const sy_experiment_conf_t *e, const sy_variant_conf_t *v,
                        const char *field);

/* Copies this worker's journal counters and Redis state into its slot. */
void sy__metrics_refresh(sy_worker_t *w);
struct sy_mtext_s;
/* Appends the gauges read from this worker's runtime: share, stage, status. */
void sy__metrics_render_state(sy_worker_t *w, struct sy_mtext_s *t);

#endif
