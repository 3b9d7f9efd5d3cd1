/*
 * upreq.c — the request as it goes upstream for a variant (upreq.h): the primary's
 * and each shadow copy's, built the same way.
 */
#include "router/upreq.h"

#include <stdlib.h>

#include "router/http1client.h"
#include "router/rewrite.h"

/* The request head and body as they go upstream, in one buffer, with traceparent
 * from tr; a shadow copy says so in x-switchyard-shadow (and drops the client's). */
/* See upreq.h. */
sy_buf_t *sy__upreq_build(sy_conn_t *c, const sy_variant_conf_t *v, const sy_trace_t *tr,
                          int shadow, const char *body, size_t body_len, int64_t declared) {
  sy_req_t *r = &c->req;
  char tp[SY_TRACEPARENT_LEN + 1];
  sy_trace_format(tr, tp);
  sy_h1_request_t rq = {
      .method = r->method,
      .target = r->head.buf + r->head.line_off,
      .target_len = r->head.line_len,
      .head = &r->head,
      .extra = v != NULL ? v->headers : NULL,
      .nextra = v != NULL ? v->nheaders : 0,
      .peer = c->peer,
      .traceparent = tp,
      .shadow = shadow,
      .body = body,
      .body_len = body_len,
      .declared = declared,
  };
  return sy_h1_build_request(&rq);
}

/* See upreq.h: the variant's rewrite of the buffered body, then the request. */
sy_buf_t *sy__upreq_for_variant(sy_conn_t *c, const sy_variant_conf_t *v, const sy_trace_t *tr,
                                int shadow, char *err, size_t errlen) {
  sy_req_t *r = &c->req;
  char *body = r->body;
  size_t body_len = r->body_len;
  char *rewritten = NULL;
  err[0] = '\0';
  if (v != NULL && sy_rewrite_needs_body(v)) {
    if (sy_rewrite_body(v, r->body ? r->body : "", r->body_len, &rewritten, &body_len, err,
                        errlen) < 0)
      return NULL;
    body = rewritten;
  }
  sy_buf_t *out = sy__upreq_build(c, v, tr, shadow, body, body_len, (int64_t)body_len);
  free(rewritten);
  return out;
}
