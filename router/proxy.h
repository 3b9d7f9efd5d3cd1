/*
 * proxy.h — one exchange: route the request, choose its variant, rewrite it,
 * send it upstream (router/http1client.h) and stream the response back (proxy.c).
 */
#ifndef SY_PROXY_H
#define SY_PROXY_H

#include <stddef.h>

#include "router/config.h"
#include "router/conn.h"
#include "router/exchange.h"
#include "router/trace.h"
#include "router/types.h"

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
/* The client's write queue rose above the high-water mark: pause the upstream. */
void sy__proxy_client_backlog(sy_conn_t *c);
/* The client went away: stop the upstream leg (its connection is closed, not pooled). */
void sy__proxy_cancel(sy_conn_t *c);
/* The client's write queue drained below the low-water mark. */
void sy__proxy_client_drained(sy_conn_t *c);
/* The exchange is over: computes its end record once and reports it to the metrics,
 * the request event and the shadow comparison. Later calls do nothing. */
void sy__proxy_end(sy_req_t *r);
/* Frees what the exchange holds (runtime reference, buffers) and resets it; reports
 * nothing (call sy__proxy_end first). */
void sy__req_reset(sy_req_t *r);

#endif
