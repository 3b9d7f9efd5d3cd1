/*
 * upreq.c — the request as it goes upstream for a variant (upreq.h): the primary's
 * and each shadow copy's, built the same way.
 */
#include "router/upreq.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/runtime.h"
#include "router/upstream.h"

#include "router/http1client.h"
#include "router/rewrite.h"

/* The request head and body as they go upstream, in one buffer, with traceparent
 * from tr; a shadow copy says so in x-switchyard-shadow (and drops the client's). */
/* See upreq.h. */
/* The headers added for v on its upstream: the upstream's (credentials), then the
 * variant's, a variant's header replacing the upstream's of the same name. With
 * authorization: passthrough, the upstream's Authorization is left out when the
 * client sent its own. Returns how many went into out (at most cap). */
static size_t added_headers(const sy_req_t *r, const sy_variant_conf_t *v, sy_kv_t *out,
                            size_t cap) {
  size_t n = 0;
  const sy_upstream_conf_t *u = NULL;
  if (v != NULL)
    u = &r->rt->cfg->upstreams[v->upstream];
  else if (r->pool != NULL)
    u = r->pool->conf;
  for (size_t i = 0; u != NULL && i < u->nheaders && n < cap; i++) {
    const sy_kv_t *h = &u->headers[i];
    int skip = 0;
    for (size_t j = 0; v != NULL && j < v->nheaders && !skip; j++)
      skip = strcasecmp(v->headers[j].name, h->name) == 0;
    size_t len;
    if (!skip && u->auth_passthrough && strcasecmp(h->name, "authorization") == 0)
      skip = sy_head_get(&r->head, "authorization", &len) != NULL;
    if (!skip)
      out[n++] = *h;
  }
  for (size_t j = 0; v != NULL && j < v->nheaders && n < cap; j++)
    out[n++] = v->headers[j];
  return n;
}

sy_buf_t *sy__upreq_build(sy_conn_t *c, const sy_variant_conf_t *v, const sy_trace_t *tr,
                          int shadow, const char *body, size_t body_len, int64_t declared) {
  sy_req_t *r = &c->req;
  char tp[SY_TRACEPARENT_LEN + 1];
  sy_trace_format(tr, tp);
  sy_kv_t extra[SY_UPREQ_MAX_HEADERS];
  size_t nextra = added_headers(r, v, extra, SY_UPREQ_MAX_HEADERS);
  sy_h1_request_t rq = {
      .method = r->method,
      .target = r->head.buf + r->head.line_off,
      .target_len = r->head.line_len,
      .head = &r->head,
      .extra = extra,
      .nextra = nextra,
      .peer = c->peer,
      .traceparent = tp,
      .shadow = shadow,
      .body = body,
      .body_len = body_len,
      .declared = declared,
  };
  return sy_h1_build_request(&rq);
}

/* Where a rewrite goes: behind the request head, in the one buffer sent upstream. */
typedef struct {
  sy_conn_t *c;
  const sy_variant_conf_t *v;
  const sy_trace_t *tr;
  int shadow;
  int asked; /* the rewrite asked for its room: any failure after is memory */
  sy_buf_t *out;
} room_t;

static char *room_for(void *ctx, size_t n) {
  room_t *rm = ctx;
  rm->asked = 1;
  sy_buf_t *head = sy__upreq_build(rm->c, rm->v, rm->tr, rm->shadow, NULL, 0, (int64_t)n);
  if (head == NULL)
    return NULL;
  rm->out = sy_buf_new(head->len + n);
  if (rm->out != NULL) {
    memcpy(rm->out->data, head->data, head->len);
    rm->out->len = head->len + n;
  }
  size_t hlen = head->len;
  sy_buf_unref(head);
  return rm->out != NULL ? rm->out->data + hlen : NULL;
}

/* See upreq.h: the variant's rewrite of the buffered body, then the request. The
 * rewrite is written straight into the request's buffer: a body of tens of MB is
 * held twice at most (the client's and the upstream's), never three times. */
sy_buf_t *sy__upreq_for_variant(sy_conn_t *c, const sy_variant_conf_t *v, const sy_trace_t *tr,
                                int shadow, char *err, size_t errlen) {
  sy_req_t *r = &c->req;
  return sy__upreq_for_body(c, v, tr, shadow, r->body, r->body_len, err, errlen);
}

sy_buf_t *sy__upreq_for_body(sy_conn_t *c, const sy_variant_conf_t *v, const sy_trace_t *tr,
                             int shadow, const char *body, size_t body_len, char *err,
                             size_t errlen) {
  err[0] = '\0';
  if (v == NULL || !sy_rewrite_needs_body(v))
    return sy__upreq_build(c, v, tr, shadow, body, body_len, (int64_t)body_len);
  room_t rm = {c, v, tr, shadow, 0, NULL};
  size_t n;
  if (sy_rewrite_body_to(v, body ? body : "", body_len, room_for, &rm, &n, err, errlen) < 0) {
    if (rm.asked) /* not the body's fault: out of memory */
      err[0] = '\0';
    sy_buf_unref(rm.out);
    return NULL;
  }
  return rm.out;
}
