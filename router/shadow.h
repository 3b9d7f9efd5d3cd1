/*
 * shadow.h — shadow traffic: mirrored copies of a request, rewritten for the
 * experiment's shadow variants, sent after the primary is on its way, read in full,
 * measured, compared with the primary's answer and recorded as `shadow` events of
 * the same trace (router/shadow.c).
 *
 * Objects: a *leg* is one mirrored exchange (its own pooled upstream connection,
 * response parser, body capture; the connection's timer bounds the exchange); a
 * *pair* is shared, reference-counted, by the primary exchange and its legs: it
 * holds what the events need from the primary (the trace, the envelope, the
 * primary's status, latency, tokens and captured body), because the client
 * connection's sy_req_t is reused for its next request. A leg that ends before its
 * primary waits on the pair; whichever of the two ends last writes the event.
 *
 * Nothing here is on the client's path: a shadow never delays, fails or pauses the
 * primary. Legs are bounded per variant and worker (max_inflight), by a token
 * budget per minute and by a timeout; what is dropped or skipped is counted.
 */
#ifndef SY_SHADOW_H
#define SY_SHADOW_H

#include "router/conn.h"
#include "router/exchange.h"
#include "router/types.h"

typedef struct sy_shadow_pair_s sy_shadow_pair_t;
typedef struct sy_shadow_leg_s sy_shadow_leg_t;

/*
 * The buffered request in c->req has been routed to an experiment variant and its
 * primary leg is about to start: decides which shadow variants get a copy (their
 * fraction, the skip rules, the bounds), counts what is skipped or dropped, builds
 * the copies, and attaches a pair to c->req.shadow. Returns the pair, with a
 * reference for the caller to hand to sy__shadow_launch, or NULL if nothing is
 * mirrored.
 */
sy_shadow_pair_t *sy__shadow_prepare(sy_conn_t *c);

/* Starts the legs sy__shadow_prepare built (call it after the primary's upstream
 * leg has started) and drops the caller's reference to p. */
void sy__shadow_launch(sy_shadow_pair_t *p);

/* A request whose body is streamed upstream is never mirrored (its body is not
 * kept): counts it as skipped for the shadow variants it would have gone to. */
void sy__shadow_skip_streamed(sy_conn_t *c);

/* De-chunked response body bytes of the primary, captured (bounded) for the
 * comparison. */
void sy__shadow_primary_body(sy_shadow_pair_t *p, const char *at, size_t n);

/* The primary exchange in r is over (called from sy__req_reset): records its
 * outcome in the pair, writes the events of legs that already ended, and detaches
 * the pair from r. */
void sy__shadow_primary_done(sy_worker_t *w, sy_req_t *r, const sy_exchange_end_t *end);

/* Worker shutdown (all client connections are gone): cancels the legs in flight,
 * recording them as errors, and frees the worker's shadow state. */
void sy__shadow_stop(sy_worker_t *w);

#endif
