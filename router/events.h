/*
 * events.h — the events of an exchange: its trace record, request event and
 * counters (events.c).
 */
#ifndef SY_ROUTER_EVENTS_H
#define SY_ROUTER_EVENTS_H

#include <stddef.h>

#include "policies/policy.h"
#include "proto/event5.h"
#include "router/exchange.h"
#include "router/types.h"
#include "router/config.h"
#include "stats/journal.h"
#include "stats/usage_scan.h"

/* The request has been routed to an experiment: captures what its events need
 * and writes the trace record (and, for missing: failure, the pending trial). policy
 * is the one that drew the variant (NULL when no random draw did, e.g. a sticky key):
 * for a bandit gate its propensities feed the sample-ratio counters (proto/KEYS.md). */
void sy__events_routed(sy_worker_t *w, sy_req_t *r, const sy_policy_t *policy);
/* Response body bytes (de-chunked), for usage and ids. */
static inline void sy__events_body(sy_req_t *r, const char *p, size_t n) {
  if (r->ev.on)
    sy_usage_scan_feed(&r->ev.usage, p, n);
}
/* The request body as buffered: its keyed hash is the input_hash. */
void sy__events_input(sy_worker_t *w, sy_req_t *r, const char *body, size_t n);
/* The fields every event of a trace starts with (proto/EVENTS.md), into a schema 5
 * event begun with sy_ev5_begin: trace, session, user, tenant, task, country, consent
 * and redaction (experiment and task type are in the event's ref). */
void sy__events_envelope(sy_ev5_t *b, const char *trace_id, const sy_evctx_t *ev);
/* How far back a trace record may be (the longest window of experiments e[0..n) and
 * its grace, plus clock skew): how far back the feedback API and the sweep look (ms). */
uint64_t sy__events_trace_back_ms(const sy_experiment_conf_t *e, size_t n);
/* The exchange is over: the request event and its counters. */
void sy__events_done(sy_worker_t *w, sy_req_t *r, const sy_exchange_end_t *end);

#endif
