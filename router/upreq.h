/*
 * upreq.h — the request as it goes upstream for a variant: the client's request in
 * c->req, the variant's body rewrite and headers, a traceparent, framed by
 * router/http1client.h's builder. The primary exchange (proxy.c) and the shadow
 * copies (shadow.c) build theirs here.
 */
#ifndef SY_UPREQ_H
#define SY_UPREQ_H

#include <stddef.h>
#include <stdint.h>

#include "router/buf.h"
#include "router/config.h"
#include "router/conn.h"
#include "router/trace.h"

#define SY_UPREQ_MAX_HEADERS 128 /* an upstream's headers and a variant's, together */

/* The request in c->req with `body` (body_len bytes; declared: the Content-Length,
 * < 0 for a chunked streamed body) for variant v (NULL: the client's request as it
 * is), with tr as traceparent; with `shadow`, x-switchyard-shadow: 1. A new buffer,
 * or NULL when out of memory. */
sy_buf_t *sy__upreq_build(sy_conn_t *c, const sy_variant_conf_t *v, const sy_trace_t *tr,
                          int shadow, const char *body, size_t body_len, int64_t declared);

/* The buffered request in c->req as it goes upstream for variant v: the variant's
 * body rewrite and headers, `traceparent` from tr; with `shadow`, the header
 * x-switchyard-shadow: 1 replaces any the client sent. Returns a new buffer, or NULL
 * with a reason in err (a body the rewrite refuses: 400) or err "" (out of memory). */
sy_buf_t *sy__upreq_for_variant(sy_conn_t *c, const sy_variant_conf_t *v, const sy_trace_t *tr,
                                int shadow, char *err, size_t errlen);
/* The same from a body of the caller's (a fallback's request, rebuilt from the body
 * the primary request carries once the client's copy is freed). */
sy_buf_t *sy__upreq_for_body(sy_conn_t *c, const sy_variant_conf_t *v, const sy_trace_t *tr,
                             int shadow, const char *body, size_t body_len, char *err,
                             size_t errlen);

#endif
