/*
 * http1client.c — the upstream HTTP/1.1 client (see http1client.h): the request
 * builder.
 */
#include "router/http1client.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- the request builder ---- */

sy_h1_conn_names_t sy_h1_connection_names(const sy_head_t *h) {
  sy_h1_conn_names_t cn;
  cn.v = sy_head_get(h, "connection", &cn.len);
  if (cn.v != NULL &&
      (sy_token_eq(cn.v, cn.len, "keep-alive") || sy_token_eq(cn.v, cn.len, "close")))
    cn.v = NULL;
  return cn;
}

int sy_h1_named_by_connection(sy_h1_conn_names_t cn, const char *name, size_t n) {
  return cn.v != NULL && sy_http_listed_in(cn.v, cn.len, name, n);
}

int sy_h1_append_header(sy_buf_t **b, const char *name, size_t nlen, const char *val,
                        size_t vlen) {
  return sy_buf_append(b, name, nlen) || sy_buf_append(b, ": ", 2) || sy_buf_append(b, val, vlen) ||
                 sy_buf_append(b, "\r\n", 2)
             ? -1
             : 0;
}

static int is_skipped_request_header(const sy_h1_request_t *rq, sy_h1_conn_names_t cn,
                                     const char *name, size_t n) {
  if (sy_http_hop_by_hop(name, n) || sy_token_eq(name, n, "content-length") ||
      sy_token_eq(name, n, "expect") || sy_token_eq(name, n, "traceparent") ||
      sy_h1_named_by_connection(cn, name, n) ||
      (rq->shadow && sy_token_eq(name, n, "x-switchyard-shadow")))
    return 1;
  /* An extra header replaces the client's of the same name. */
  for (size_t i = 0; i < rq->nextra; i++)
    if (strlen(rq->extra[i].name) == n && strncasecmp(rq->extra[i].name, name, n) == 0)
      return 1;
  return 0;
}

/* The client's headers as they go on, X-Forwarded-For with the client appended;
 * *have_xff says whether the client sent one. */
static int append_client_headers(sy_buf_t **b, const sy_h1_request_t *rq, int *have_xff) {
  const sy_head_t *h = rq->head;
  sy_h1_conn_names_t cn = sy_h1_connection_names(h);
  int err = 0;
  for (size_t i = 0; !err && i < h->nhdrs; i++) {
    const sy_hdr_t *hd = &h->hdrs[i];
    const char *name = h->buf + hd->name_off;
    if (is_skipped_request_header(rq, cn, name, hd->name_len))
      continue;
    if (sy_token_eq(name, hd->name_len, "x-forwarded-for")) {
      *have_xff = 1;
      err = sy_buf_append(b, name, hd->name_len) || sy_buf_append(b, ": ", 2) ||
            sy_buf_append(b, h->buf + hd->val_off, hd->val_len) || sy_buf_append(b, ", ", 2) ||
            sy_buf_appends(b, rq->peer) || sy_buf_append(b, "\r\n", 2);
      continue;
    }
    err = sy_h1_append_header(b, name, hd->name_len, h->buf + hd->val_off, hd->val_len);
  }
  return err;
}

sy_buf_t *sy_h1_build_request(const sy_h1_request_t *rq) {
  sy_buf_t *b = sy_buf_new(rq->head->len + rq->body_len + 512);
  if (b == NULL)
    return NULL;
  char cl[48];
  int have_xff = 0;
  int err = sy_buf_appends(&b, rq->method) || sy_buf_append(&b, " ", 1) ||
            sy_buf_append(&b, rq->target, rq->target_len) ||
            sy_buf_appends(&b, " HTTP/1.1\r\n") || append_client_headers(&b, rq, &have_xff);
  for (size_t i = 0; !err && i < rq->nextra; i++)
    err = sy_h1_append_header(&b, rq->extra[i].name, strlen(rq->extra[i].name),
                              rq->extra[i].value, strlen(rq->extra[i].value));
  if (!err)
    err = sy_h1_append_header(&b, "traceparent", 11, rq->traceparent, strlen(rq->traceparent));
  if (!err && rq->shadow)
    err = sy_buf_appends(&b, "x-switchyard-shadow: 1\r\n");
  if (!err && !have_xff)
    err = sy_h1_append_header(&b, "X-Forwarded-For", 15, rq->peer, strlen(rq->peer));
  int n = rq->declared < 0
              ? snprintf(cl, sizeof(cl), "Transfer-Encoding: chunked\r\n\r\n")
              : snprintf(cl, sizeof(cl), "Content-Length: %" PRId64 "\r\n\r\n", rq->declared);
  if (!err && rq->declared == 0 &&
      (strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0))
    err = sy_buf_append(&b, "\r\n", 2);
  else if (!err)
    err = sy_buf_append(&b, cl, (size_t)n);
  if (!err && rq->body_len > 0)
    err = sy_buf_append(&b, rq->body, rq->body_len);
  if (err) {
    sy_buf_unref(b);
    return NULL;
  }
  return b;
}
