/*
 * http1client.h — the upstream HTTP/1.1 client: the request as it goes upstream,
 * built by one pure function (no I/O) that the primary exchange (proxy.c) and the
 * shadow copies (shadow.c) share, and the header rules both directions use.
 */
#ifndef SY_HTTP1CLIENT_H
#define SY_HTTP1CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "router/buf.h"
#include "router/config.h"
#include "router/http.h"

/* ---- the request builder (pure: no I/O) ---- */

/* What goes upstream. Headers of `head` are copied except the hop-by-hop ones
 * (RFC 9110 §7.6.1, and those the Connection header names), Content-Length, Expect,
 * traceparent, those `extra` replaces (same name) and, for a shadow copy,
 * x-switchyard-shadow. */
typedef struct sy_h1_request_s {
  const char *method;
  const char *target; /* request target as the client sent it */
  size_t target_len;
  const sy_head_t *head; /* the client's headers */
  const sy_kv_t *extra;  /* added after the client's (a variant's headers) */
  size_t nextra;
  const char *peer;        /* the client's address: appended to X-Forwarded-For */
  const char *traceparent; /* sent as traceparent */
  int shadow;              /* adds x-switchyard-shadow: 1 */
  const char *body;        /* sent after the head (body_len may be 0) */
  size_t body_len;
  int64_t declared; /* Content-Length; < 0: Transfer-Encoding: chunked (a streamed body) */
} sy_h1_request_t;

/* The request head (and body) in one new buffer, or NULL when out of memory. A
 * bodiless GET or HEAD gets no Content-Length, as the client sent it. */
sy_buf_t *sy_h1_build_request(const sy_h1_request_t *rq);

/* The headers a message's Connection header names (they are hop-by-hop too); v is
 * NULL when it names none (`close` or `keep-alive` alone, the usual case). */
typedef struct sy_h1_conn_names_s {
  const char *v;
  size_t len;
} sy_h1_conn_names_t;

sy_h1_conn_names_t sy_h1_connection_names(const sy_head_t *h);
/* Whether header `name` is one of those. */
int sy_h1_named_by_connection(sy_h1_conn_names_t cn, const char *name, size_t n);
/* Appends "name: value\r\n" to *b. Returns 0, or -1 when out of memory. */
int sy_h1_append_header(sy_buf_t **b, const char *name, size_t nlen, const char *val,
                        size_t vlen);

#endif
