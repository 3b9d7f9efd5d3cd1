/*
 * proxy.c — one exchange: route the request to an experiment and variant,
 * rewrite it, send it upstream over a pooled connection, and stream the response
 * back to the client as its bytes arrive.
 *
 * The response body is forwarded as the upstream framed it (Content-Length,
 * chunked or close-delimited): each upstream read is parsed by llhttp only to
 * find where the head and the message end, and the body bytes of that read go to
 * the client in the same turn of the loop, as slices of the same reference-counted
 * buffer. Nothing is coalesced across reads, so SSE events reach the client as
 * the upstream sent them. Only an HTTP/1.0 client of a chunked response gets the
 * decoded body (dechunk mode), delimited by closing the connection.
 *
 * Failure rules: before any response byte went to the client, an upstream
 * failure becomes a JSON error (502, or 504 for a first-byte timeout); a reused
 * pooled connection that fails before answering is retried once on a fresh one.
 * After the head went out, a failure cuts the client connection, so a truncated
 * body is never mistaken for a complete one.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "router/http1client.h"
#include "router/log.h"
#include "router/proxy.h"
#include "router/rewrite.h"
#include "router/route.h"
#include "router/shadow.h"

static void up_connect(sy_conn_t *c);
static void up_fail(sy_conn_t *c, int status, const char *code, const char *msg);
static void up_finish(sy_conn_t *c, int reusable);
static void up_eof(sy_conn_t *c, ssize_t err);

/* ---- building the upstream request ---- */

/* The request head and body as they go upstream, in one buffer, with traceparent
 * from tr; a shadow copy says so in x-switchyard-shadow (and drops the client's). */
static sy_buf_t *build_upstream_request(sy_conn_t *c, const sy_variant_conf_t *v,
                                        const sy_trace_t *tr, int shadow, const char *body,
                                        size_t body_len, int64_t declared) {
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

/* ---- routing ---- */

/* The variant for this request and the probability with which it was chosen. */
static sy_choice_t choose_variant(sy_conn_t *c, const sy_experiment_conf_t *e, sy_exprt_t *x) {
  sy_req_t *r = &c->req;
  sy_policy_ctx_t ctx = {NULL, 0};
  if (e->sticky_header != NULL) {
    size_t klen;
    const char *key = sy_head_get(&r->head, e->sticky_header, &klen);
    if (key != NULL && klen > 0) {
      ctx.key = key;
      ctx.keylen = klen;
    }
  }
  if (x->override != NULL) /* the control state's allocation (canary, pause, winner) */
    return sy_policy_choose(x->override, &ctx, &c->w->rng);
  if (e->policy != SY_POLICY_THOMPSON)
    return sy_policy_choose(x->policy, &ctx, &c->w->rng);
  const sy_policy_t *p = x->policy;
  if (e->thompson.segment_header != NULL) {
    size_t slen;
    const char *seg = sy_head_get(&r->head, e->thompson.segment_header, &slen);
    if (seg != NULL)
      p = sy__runtime_policy_for(r->rt, (size_t)r->exp, seg, slen);
  }
  if (x->has_sticky && ctx.key != NULL)
    return sy_sticky_choose(&x->sticky, p, &ctx, &c->w->rng, uv_now(&c->w->loop), NULL);
  return sy_policy_choose(p, &ctx, &c->w->rng);
}

static void reply_error(sy_conn_t *c, int status, const char *type, const char *code,
                        const char *msg) {
  sy_req_t *r = &c->req;
  int close = !r->keepalive || c->w->draining;
  sy_buf_t *resp = sy_http_error(status, type, code, msg, r->trace.trace_id, !close);
  if (resp == NULL) {
    sy__conn_abort(c);
    return;
  }
  sy__conn_respond(c, resp, status, close);
}

static const sy_variant_conf_t *variant_of(const sy_req_t *r) {
  return r->exp >= 0 ? &r->rt->cfg->experiments[r->exp].variants[r->variant] : NULL;
}

/* Picks the experiment, the variant and its propensity, and the upstream pool
 * (left NULL when nothing routes the request: a 404 once it is read). */
static void route_request(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  sy_worker_t *w = c->w;
  r->rt = sy__runtime_ref(w->rt);
  const sy_config_t *cfg = r->rt->cfg;
  w->requests++;

  size_t tplen = 0;
  const char *tp = sy_head_get(&r->head, "traceparent", &tplen);
  sy_trace_init(&r->trace, tp, tplen, &w->rng);

  r->api = sy__api_is_api(r);
  r->exp = r->api ? -1
                  : sy_route_match(cfg, r->method, r->head.buf + r->head.line_off,
                                   r->head.line_len, &r->head);
  if (r->exp >= 0) {
    const sy_experiment_conf_t *e = &cfg->experiments[r->exp];
    sy_choice_t ch = choose_variant(c, e, &r->rt->exps[r->exp]);
    r->variant = ch.arm;
    r->propensity = ch.propensity;
    r->pool = &r->rt->pools[e->variants[r->variant].upstream];
    sy__events_routed(w, r);
  } else if (r->api) {
    return;
  } else if (cfg->default_kind == SY_DEFAULT_PASS) {
    r->pool = &r->rt->pools[cfg->default_upstream];
  }
}

int sy__proxy_head(sy_conn_t *c, int *reject_status) {
  sy_req_t *r = &c->req;
  llhttp_t *p = &c->parser;
  route_request(c);
  const sy_variant_conf_t *v = variant_of(r);
  int chunked = (p->flags & F_CHUNKED) != 0;
  int sized = (p->flags & F_CONTENT_LENGTH) != 0;
  /* Small bodies are buffered even when nothing rewrites them: it costs little
   * and lets a request on a stale pooled connection be retried. */
  if (r->pool == NULL || (v != NULL && sy_rewrite_needs_body(v)) ||
      !(chunked || (sized && p->content_length > SY_STREAM_MIN_BODY)))
    return 0;
  if (sized && p->content_length > r->rt->cfg->limits.max_stream_body_bytes) {
    *reject_status = 413;
    return 0;
  }
  r->stream_body = 1;
  r->stream_chunked = chunked;
  r->out = build_upstream_request(c, v, &r->trace, 0, NULL, 0,
                                  chunked ? -1 : (int64_t)p->content_length);
  if (r->out == NULL) {
    *reject_status = 500;
    return 0;
  }
  return 1;
}

void sy__proxy_stream_start(sy_conn_t *c) {
  sy__shadow_skip_streamed(c); /* a streamed body is not kept: nothing to mirror */
  up_connect(c);
}

/* See proxy.h: the variant's rewrite of the buffered body, then the request. */
sy_buf_t *sy__proxy_build_request(sy_conn_t *c, const sy_variant_conf_t *v,
                                  const sy_trace_t *tr, int shadow, char *err, size_t errlen) {
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
  sy_buf_t *out = build_upstream_request(c, v, tr, shadow, body, body_len, (int64_t)body_len);
  free(rewritten);
  return out;
}

void sy__proxy_start(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (r->stream_body) {
    sy__proxy_body_done(c);
    return;
  }
  if (r->api) {
    sy__api_start(c);
    return;
  }
  if (r->pool == NULL) {
    reply_error(c, 404, "invalid_request_error", "not_found",
                "no route for this request (no experiment matches and there is no default route)");
    return;
  }
  char err[160];
  sy__events_input(c->w, r, r->body, r->body_len);
  r->body_done = 1;
  r->out = sy__proxy_build_request(c, variant_of(r), &r->trace, 0, err, sizeof(err));
  if (r->out == NULL && err[0] != '\0') {
    reply_error(c, 400, "invalid_request_error", "invalid_body", err);
    return;
  }
  if (r->out == NULL) {
    reply_error(c, 500, "server_error", "internal_error", "out of memory");
    return;
  }
  /* Shadow copies are decided and built now, while the request is whole, and sent
   * once the primary is on its way: up_connect may end the exchange (and reset r)
   * before it returns, and the pair outlives r. */
  sy_shadow_pair_t *shadow = sy__shadow_prepare(c);
  up_connect(c);
  if (shadow != NULL)
    sy__shadow_launch(shadow);
}

/* ---- the upstream leg ---- */

static void on_up_ready(sy_upconn_t *u, int status);

static void up_connect(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  r->attempts++;
  r->rstate = SY_RS_CONNECTING;
  sy_upconn_t *u = sy__upstream_acquire(r->pool, r->last_server, c, on_up_ready);
  if (u == NULL) {
    up_fail(c, 502, "upstream_connect_failed", "cannot open a connection to the upstream");
    return;
  }
  r->up = u;
  r->last_server = u->server;
  if (u->state == SY_UP_ACTIVE)
    on_up_ready(u, 0);
}

static void on_up_timeout(uv_timer_t *t);

static void start_timer(sy_conn_t *c, unsigned ms) {
  sy_upconn_t *u = c->req.up;
  uv_timer_start(&u->timer, on_up_timeout, ms, 0);
}

typedef struct up_wreq_s {
  uv_write_t req;
  unsigned n;
  sy_buf_t *owners[4];
} up_wreq_t;

static void on_up_write(uv_write_t *req, int status) {
  up_wreq_t *wr = (up_wreq_t *)req;
  sy_upconn_t *u = req->handle->data;
  for (unsigned i = 0; i < wr->n; i++)
    sy_buf_unref(wr->owners[i]);
  free(wr);
  /* A failed write shows up as a read error or EOF; here only flow control. */
  sy_conn_t *c = status == 0 ? u->owner : NULL;
  if (c != NULL && c->req.up == u && c->req.client_paused &&
      uv_stream_get_write_queue_size((uv_stream_t *)&u->tcp) < SY_CLIENT_LOW_WATER) {
    c->req.client_paused = 0;
    sy__conn_resume_reading(c);
  }
}

/* Writes bufs upstream, taking over one reference to each owner. */
static int up_write(sy_conn_t *c, const uv_buf_t *bufs, sy_buf_t *const *owners, unsigned n) {
  sy_req_t *r = &c->req;
  uv_stream_t *s = (uv_stream_t *)&r->up->tcp;
  uv_buf_t left[4];
  unsigned nleft = n;
  memcpy(left, bufs, n * sizeof(*bufs));
  int err = sy__try_write(s, left, &nleft);
  if (err == 0 && nleft > 0) {
    up_wreq_t *wr = malloc(sizeof(*wr));
    err = -1;
    if (wr != NULL) {
      wr->n = n;
      memcpy(wr->owners, owners, n * sizeof(*owners));
      if (uv_write(&wr->req, s, left, nleft, on_up_write) == 0) {
        if (!r->client_paused && !r->body_done &&
            uv_stream_get_write_queue_size(s) > SY_CLIENT_HIGH_WATER) {
          r->client_paused = 1; /* the upstream reads slower than the client sends */
          sy__conn_pause_reading(c);
        }
        return 0;
      }
      free(wr);
    }
  }
  for (unsigned i = 0; i < n; i++)
    sy_buf_unref(owners[i]);
  /* A write the upstream refused shows up as a read error or EOF too. */
  return err < 0 ? -1 : 0;
}

/* Streamed body bytes as they go upstream: a copy (the client read buffer is
 * reused), chunk-framed if the client sent the body chunked. */
static int up_write_body(sy_conn_t *c, const char *p, size_t n) {
  sy_req_t *r = &c->req;
  char frame[24];
  size_t flen = r->stream_chunked ? (size_t)snprintf(frame, sizeof(frame), "%zx\r\n", n) : 0;
  sy_buf_t *b = sy_buf_new(flen + n + 2);
  if (b == NULL)
    return -1;
  memcpy(b->data, frame, flen);
  memcpy(b->data + flen, p, n);
  b->len = flen + n;
  if (r->stream_chunked) {
    memcpy(b->data + b->len, "\r\n", 2);
    b->len += 2;
  }
  uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
  return up_write(c, &ub, &b, 1);
}

/* The whole request is upstream: now the first-byte clock runs. */
static void up_request_sent(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (r->stream_chunked) {
    static const char last[] = "0\r\n\r\n";
    sy_buf_t *b = sy_buf_new(5);
    if (b != NULL) {
      memcpy(b->data, last, 5);
      b->len = 5;
      uv_buf_t ub = uv_buf_init(b->data, 5);
      up_write(c, &ub, &b, 1);
    }
  }
  if (r->rstate == SY_RS_WAITING)
    start_timer(c, r->pool->conf->first_byte_timeout_ms);
}

int sy__proxy_body(sy_conn_t *c, const char *p, size_t n) {
  sy_req_t *r = &c->req;
  r->body_seen += n;
  if (r->body_seen > r->rt->cfg->limits.max_stream_body_bytes)
    return 413;
  if (r->head_sent)
    return up_write_body(c, p, n) < 0 ? 502 : 0;
  /* Not connected yet: hold the bytes, and stop reading if they pile up. */
  if (r->body_len + n > r->body_cap) {
    size_t cap = r->body_cap ? r->body_cap : 16384;
    while (cap < r->body_len + n)
      cap *= 2;
    char *nb = realloc(r->body, cap);
    if (nb == NULL)
      return 500;
    r->body = nb;
    r->body_cap = cap;
  }
  memcpy(r->body + r->body_len, p, n);
  r->body_len += n;
  if (r->body_len > SY_CLIENT_HIGH_WATER && !r->client_paused) {
    r->client_paused = 1;
    sy__conn_pause_reading(c);
  }
  return 0;
}

void sy__proxy_body_done(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  r->body_done = 1;
  if (r->head_sent)
    up_request_sent(c);
}

static void on_up_ready(sy_upconn_t *u, int status) {
  sy_conn_t *c = u->owner;
  sy_req_t *r = &c->req;
  if (status < 0) {
    r->up = NULL; /* the pool closes it */
    if (r->attempts < r->pool->nservers && r->attempts < 3) {
      up_connect(c); /* another server, if the upstream has one */
      return;
    }
    up_fail(c, 502, "upstream_connect_failed", "cannot connect to the upstream");
    return;
  }
  r->rstate = SY_RS_WAITING;
  llhttp_init(&r->rparser, HTTP_RESPONSE, &c->w->resp_settings);
  r->rparser.data = c;
  sy_head_reset(&r->rhead);
  sy_buf_t *out = sy_buf_ref(r->out);
  uv_buf_t ub = uv_buf_init(out->data, (unsigned)out->len);
  if (up_write(c, &ub, &out, 1) < 0) {
    /* A pooled connection the server had closed fails here, at once: up_eof
     * retries it on a fresh one when that is safe, as it does for an EOF. */
    up_eof(c, UV_EPIPE);
    return;
  }
  r->head_sent = 1;
  if (r->stream_body && r->body_len > 0) {
    /* What arrived while connecting. */
    int err = up_write_body(c, r->body, r->body_len);
    r->body_len = 0;
    if (err < 0) {
      up_fail(c, 502, "upstream_write_failed", "cannot write to the upstream");
      return;
    }
    if (r->client_paused &&
        uv_stream_get_write_queue_size((uv_stream_t *)&u->tcp) < SY_CLIENT_LOW_WATER) {
      r->client_paused = 0;
      sy__conn_resume_reading(c);
    }
  }
  if (r->body_done)
    up_request_sent(c);
}

/* Drops the upstream connection: back to the pool if reusable, else closed. */
static void up_detach(sy_conn_t *c, int reusable) {
  sy_req_t *r = &c->req;
  sy_upconn_t *u = r->up;
  if (u == NULL)
    return;
  r->up = NULL;
  if (reusable)
    sy__upstream_release(u);
  else
    sy__upstream_close(u, 0);
}

static void oq_flush(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (r->noq == 0)
    return;
  sy__conn_write(c, r->oq, r->oq_owner, r->noq);
  r->noq = 0;
}

static void oq_push(sy_conn_t *c, sy_buf_t *owner, const char *p, size_t n) {
  sy_req_t *r = &c->req;
  if (n == 0)
    return;
  if (r->noq == SY_OUTQ)
    oq_flush(c);
  r->oq[r->noq] = uv_buf_init((char *)p, (unsigned)n);
  r->oq_owner[r->noq] = owner;
  r->noq++;
}

static void up_fail(sy_conn_t *c, int status, const char *code, const char *msg) {
  sy_req_t *r = &c->req;
  up_detach(c, 0);
  c->w->errors++;
  if (r->rstate == SY_RS_BODY) {
    /* The head is out: cut the connection so the client sees an aborted body. */
    sy_log_warn("upstream response cut (%s) after %" PRIu64 " body bytes", code, r->bytes_out);
    r->ev.failed = 1;
    oq_flush(c);
    r->rstate = SY_RS_DONE;
    sy__conn_abort(c);
    return;
  }
  r->rstate = SY_RS_DONE;
  reply_error(c, status, status == 504 ? "timeout_error" : "upstream_error", code, msg);
}

static void on_up_timeout(uv_timer_t *t) {
  sy_upconn_t *u = t->data;
  sy_conn_t *c = u->owner;
  if (c == NULL)
    return;
  if (c->req.rstate == SY_RS_BODY || c->req.rstate == SY_RS_HEAD) {
    up_fail(c, 504, "upstream_idle_timeout", "the upstream stopped sending mid-response");
  } else {
    if (u->server != NULL)
      sy__upstream_result(u->server, 504);
    up_fail(c, 504, "upstream_timeout", "the upstream did not answer in time");
  }
}

/* ---- response head to the client ---- */

static int skip_response_header(sy_h1_conn_names_t cn, const char *name, size_t n) {
  if (sy_http_hop_by_hop(name, n))
    return !sy_token_eq(name, n, "transfer-encoding"); /* the body keeps its framing */
  return sy_h1_named_by_connection(cn, name, n);
}

static sy_buf_t *build_client_head(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  sy_head_t *h = &r->rhead;
  int status = llhttp_get_status_code(&r->rparser);
  sy_buf_t *b = sy_buf_new(h->len + 512);
  if (b == NULL)
    return NULL;
  char line[64];
  int n = snprintf(line, sizeof(line), "HTTP/1.%d %d ", r->http_minor ? 1 : 0, status);
  int err = sy_buf_append(&b, line, (size_t)n) ||
            sy_buf_append(&b, h->buf + h->line_off, h->line_len) || sy_buf_append(&b, "\r\n", 2);
  sy_h1_conn_names_t cn = sy_h1_connection_names(h);
  for (size_t i = 0; !err && i < h->nhdrs; i++) {
    const sy_hdr_t *hd = &h->hdrs[i];
    const char *name = h->buf + hd->name_off;
    if (skip_response_header(cn, name, hd->name_len))
      continue;
    if (r->dechunk && sy_token_eq(name, hd->name_len, "transfer-encoding"))
      continue;
    err = sy_h1_append_header(&b, name, hd->name_len, h->buf + hd->val_off, hd->val_len);
  }
  if (!err)
    err = sy_h1_append_header(&b, "x-switchyard-trace-id", 21, r->trace.trace_id, SY_TRACE_ID_HEX);
  if (!err && r->exp >= 0) {
    const sy_experiment_conf_t *e = &r->rt->cfg->experiments[r->exp];
    err = sy_h1_append_header(&b, "x-switchyard-experiment", 23, e->id, strlen(e->id)) ||
          sy_h1_append_header(&b, "x-switchyard-variant", 20, e->variants[r->variant].id,
                        strlen(e->variants[r->variant].id));
  }
  if (!err && r->resp_close)
    err = sy_buf_appends(&b, "Connection: close\r\n");
  else if (!err && r->http_minor == 0)
    err = sy_buf_appends(&b, "Connection: keep-alive\r\n");
  if (!err)
    err = sy_buf_append(&b, "\r\n", 2);
  if (err) {
    sy_buf_unref(b);
    return NULL;
  }
  return b;
}

/* The response head is complete: decide the framing towards the client. */
static int on_response_head(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  llhttp_t *p = &r->rparser;
  int status = llhttp_get_status_code(p);
  int chunked = (p->flags & F_CHUNKED) != 0;
  int needs_eof = llhttp_message_needs_eof(p);
  if (strcmp(r->method, "HEAD") == 0)
    p->flags |= F_SKIPBODY;
  r->dechunk = chunked && r->http_minor == 0;
  r->resp_close = !r->keepalive || c->w->draining || r->dechunk ||
                  (needs_eof && strcmp(r->method, "HEAD") != 0);
  sy_buf_t *head = build_client_head(c);
  if (head == NULL)
    return -1;
  r->status = status;
  r->rstate = SY_RS_BODY;
  oq_push(c, head, head->data, head->len);
  /* oq_push took our only reference as the queue's owner reference. */
  return 0;
}

/* ---- response parsing ---- */

static int rp_on_status(llhttp_t *p, const char *at, size_t n) {
  sy_conn_t *c = p->data;
  return sy_head_line(&c->req.rhead, at, n) ? -1 : 0;
}
static int rp_on_field(llhttp_t *p, const char *at, size_t n) {
  sy_conn_t *c = p->data;
  return sy_head_field(&c->req.rhead, at, n) ? -1 : 0;
}
static int rp_on_value(llhttp_t *p, const char *at, size_t n) {
  sy_conn_t *c = p->data;
  return sy_head_value(&c->req.rhead, at, n) ? -1 : 0;
}
static int rp_on_done(llhttp_t *p) {
  sy_conn_t *c = p->data;
  return sy_head_done(&c->req.rhead) ? -1 : 0;
}
static int rp_on_message_begin(llhttp_t *p) {
  sy_conn_t *c = p->data;
  sy_head_reset(&c->req.rhead);
  return 0;
}
static int rp_on_headers_complete(llhttp_t *p) {
  sy_conn_t *c = p->data;
  int status = llhttp_get_status_code(p);
  if (status >= 100 && status < 200) {
    /* Interim responses (e.g. 103) are not forwarded: we sent no Expect. */
    c->req.rpaused_at = 0;
    return 0;
  }
  if (c->req.t_first == 0)
    c->req.t_first = uv_hrtime();
  if (c->req.up != NULL && c->req.up->server != NULL)
    sy__upstream_result(c->req.up->server, status);
  c->req.rpaused_at = 1;
  return HPE_PAUSED;
}
static int rp_on_body(llhttp_t *p, const char *at, size_t n) {
  sy_conn_t *c = p->data;
  sy_req_t *r = &c->req;
  if (r->dechunk && r->rbuf != NULL) {
    oq_push(c, sy_buf_ref(r->rbuf), at, n);
  }
  sy__events_body(r, at, n);
  if (r->shadow != NULL)
    sy__shadow_primary_body(r->shadow, at, n);
  return 0;
}
static int rp_on_message_complete(llhttp_t *p) {
  sy_conn_t *c = p->data;
  int status = llhttp_get_status_code(p);
  if (status >= 100 && status < 200)
    return 0;
  c->req.rpaused_at = 2;
  return HPE_PAUSED;
}

void sy__proxy_init_settings(llhttp_settings_t *s) {
  llhttp_settings_init(s);
  s->on_message_begin = rp_on_message_begin;
  s->on_status = rp_on_status;
  s->on_status_complete = rp_on_done;
  s->on_header_field = rp_on_field;
  s->on_header_field_complete = rp_on_done;
  s->on_header_value = rp_on_value;
  s->on_header_value_complete = rp_on_done;
  s->on_headers_complete = rp_on_headers_complete;
  s->on_body = rp_on_body;
  s->on_message_complete = rp_on_message_complete;
}

/* Forwards raw body bytes [p, p+n) of the current read (non-dechunk mode). */
static void forward_raw(sy_conn_t *c, const char *p, size_t n) {
  sy_req_t *r = &c->req;
  if (n == 0 || r->dechunk)
    return;
  if (strcmp(r->method, "HEAD") == 0)
    return;
  r->bytes_out += n;
  oq_push(c, sy_buf_ref(r->rbuf), p, n);
}

/* Parses one upstream read. Returns 1 when the exchange ended inside it. */
static int up_feed(sy_conn_t *c, const char *p, size_t n) {
  sy_req_t *r = &c->req;
  int resumed = 0;
  /* After the head, run the parser once more even with no bytes left: a
   * bodiless response completes without further input. */
  while (n > 0 || resumed) {
    resumed = 0;
    int in_body = r->rstate == SY_RS_BODY;
    r->rpaused_at = 0;
    llhttp_errno_t e = llhttp_execute(&r->rparser, p, n);
    if (e == HPE_OK) {
      if (in_body)
        forward_raw(c, p, n);
      return 0;
    }
    if (e != HPE_PAUSED) {
      sy_log_warn("upstream %s: bad response: %s", r->last_server ? r->last_server->label : "?",
                  llhttp_get_error_reason(&r->rparser));
      up_fail(c, 502, "upstream_protocol_error", "the upstream sent an invalid response");
      return 1;
    }
    const char *pos = llhttp_get_error_pos(&r->rparser);
    size_t used = (size_t)(pos - p);
    if (r->rpaused_at == 1) {
      if (on_response_head(c) < 0) {
        up_fail(c, 502, "internal_error", "out of memory");
        return 1;
      }
      llhttp_resume(&r->rparser);
      resumed = 1;
    } else {
      if (in_body)
        forward_raw(c, p, used);
      /* Bytes after the message end mean the connection cannot be reused. */
      up_finish(c, used == n && llhttp_should_keep_alive(&r->rparser));
      return 1;
    }
    p += used;
    n -= used;
  }
  return 0;
}

/* The response is complete and queued: release the upstream, end the exchange. */
static void up_finish(sy_conn_t *c, int reusable) {
  sy_req_t *r = &c->req;
  if (!r->body_done)
    reusable = 0; /* the upstream answered before the streamed body ended */
  oq_flush(c);
  up_detach(c, reusable);
  r->rstate = SY_RS_DONE;
  sy__conn_exchange_done(c);
}

static void up_eof(sy_conn_t *c, ssize_t err) {
  sy_req_t *r = &c->req;
  if (r->rstate == SY_RS_WAITING && r->up != NULL && r->up->uses > 0 && r->attempts < 2 &&
      !r->stream_body && r->rhead.len == 0) {
    /* A pooled connection the server had closed: retry once on a fresh one. */
    up_detach(c, 0);
    r->last_server = NULL;
    up_connect(c);
    return;
  }
  if (err == UV_EOF && r->rstate == SY_RS_BODY && llhttp_message_needs_eof(&r->rparser)) {
    llhttp_finish(&r->rparser); /* close-delimited body: EOF is its end */
    up_finish(c, 0);
    return;
  }
  up_fail(c, 502, "upstream_closed",
          err == UV_EOF ? "the upstream closed the connection before the response was complete"
                        : "the upstream connection failed");
}

void sy__proxy_up_read(sy_upconn_t *u, ssize_t nread, sy_buf_t *b) {
  sy_conn_t *c = u->owner;
  if (nread == 0 || c->req.up != u || c->req.rstate < SY_RS_WAITING) {
    /* Nothing read, or bytes before the request went out: the latter can only
     * be the server giving up on the connection, which its EOF will tell. */
    sy_buf_unref(b);
    if (nread < 0 && c->req.up == u && c->req.rstate < SY_RS_WAITING)
      up_eof(c, nread);
    return;
  }
  sy_req_t *r = &c->req;
  if (nread < 0 || b == NULL) {
    sy_buf_unref(b);
    up_eof(c, nread < 0 ? nread : UV_ENOBUFS);
    return;
  }
  if (r->rstate == SY_RS_WAITING)
    r->rstate = SY_RS_HEAD;
  start_timer(c, r->pool->conf->idle_timeout_ms);
  b->len = (size_t)nread;
  r->rbuf = b;
  sy_worker_t *w = c->w;
  int ended = up_feed(c, b->data, (size_t)nread);
  if (!ended) {
    r->rbuf = NULL;
    oq_flush(c);
  }
  sy__worker_put_read_buf(w, b);
}

void sy__proxy_client_drained(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (!r->up_paused || r->up == NULL)
    return;
  r->up_paused = 0;
  sy__upstream_resume(r->up);
  start_timer(c, r->pool->conf->idle_timeout_ms);
}

/* Called by conn.c after each write to the client is queued. */
void sy__proxy_client_backlog(sy_conn_t *c);
void sy__proxy_client_backlog(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (r->up_paused || r->up == NULL || r->rstate != SY_RS_BODY)
    return;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > SY_CLIENT_HIGH_WATER) {
    r->up_paused = 1;
    sy__upstream_pause(r->up);
    uv_timer_stop(&r->up->timer);
  }
}

void sy__proxy_cancel(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (r->rstate != SY_RS_DONE && r->ev.failed == 0)
    r->ev.failed = 2;
  sy__api_cancel(c);
  for (unsigned i = 0; i < r->noq; i++)
    sy_buf_unref(r->oq_owner[i]);
  r->noq = 0;
  if (r->up != NULL) {
    sy_upconn_t *u = r->up;
    r->up = NULL;
    sy__upstream_close(u, 1);
  }
  r->rstate = SY_RS_DONE;
}

void sy__req_reset(sy_req_t *r) {
  if (r->rt != NULL && r->exp >= 0 && r->t_start != 0)
    sy__metrics_done(r->rt->w, r);
  if (r->ev.on && r->rt != NULL)
    sy__events_done(r->rt->w, r);
  if (r->shadow != NULL) /* after the request event: its shadows follow it in the stream */
    sy__shadow_primary_done(r->rt->w, r);
  sy_buf_unref(r->out);
  sy__runtime_unref(r->rt);
  /* Everything but the buffers kept for the next exchange starts at zero. */
  sy_head_t head = r->head, rhead = r->rhead;
  char *body = r->body;
  size_t body_cap = r->body_cap;
  if (body_cap > 65536) {
    free(body); /* a large upload's buffer is not kept for small requests */
    body = NULL;
    body_cap = 0;
  }
  sy_head_reset(&head);
  sy_head_reset(&rhead);
  memset(r, 0, sizeof(*r));
  r->head = head;
  r->rhead = rhead;
  r->body = body;
  r->body_cap = body_cap;
  r->exp = -1;
}
