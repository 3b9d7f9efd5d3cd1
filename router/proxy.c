/*
 * proxy.c — one exchange: route the request to an experiment and variant,
 * rewrite it, send it upstream as an upstream leg (router/http1client.c: pooled
 * connection, request, response parsing), and stream the response back to the
 * client as its bytes arrive.
 *
 * The response body is forwarded as the upstream framed it (Content-Length,
 * chunked or close-delimited): the leg hands over the body bytes of each upstream
 * read, and they go to the client in the same turn of the loop, as slices of the
 * same reference-counted buffer. Nothing is coalesced across reads, so SSE events
 * reach the client as the upstream sent them. Only an HTTP/1.0 client of a chunked
 * response gets the decoded body (dechunk mode), delimited by closing the
 * connection.
 *
 * Failure rules: before any response byte went to the client, an upstream
 * failure becomes a JSON error (502, or 504 for a first-byte timeout); a reused
 * pooled connection that fails before answering is retried once on a fresh one
 * (by the leg). After the head went out, a failure cuts the client connection, so
 * a truncated body is never mistaken for a complete one.
 */
#include "router/proxy.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "router/api.h"
#include "router/bodycap.h"
#include "router/conn.h"
#include "router/events.h"
#include "router/exchange.h"
#include "router/proxy_retry.h"
#include "router/retry.h"
#include "router/rewrite.h"
#include "router/route.h"
#include "router/runtime.h"
#include "router/upreq.h"
#include "router/shadow.h"
#include "router/upstream.h"
#include "router/upstream_h1.h"
#include "router/worker.h"

static void up_start(sy_conn_t *c);
static void up_fail(sy_conn_t *c, int status, const char *code, const char *msg);

/* ---- building the upstream request ---- */


/* ---- routing ---- */

/* The variant for this request and the probability with which it was chosen; *drew is
 * the policy whose random draw chose it (NULL when a key decided it: sticky, or hashed). */
static sy_choice_t choose_variant(sy_conn_t *c, const sy_experiment_conf_t *e, sy_exprt_t *x,
                                  const sy_policy_t **drew) {
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
  /* a split given a key hashes it: that choice is no random draw */
  const sy_policy_t *split = x->override != NULL ? x->override : x->policy;
  *drew = ctx.key == NULL ? split : NULL;
  if (x->override != NULL) /* the control state's allocation (canary, pause, winner) */
    return sy_policy_choose(x->override, &ctx, &c->w->rng);
  if (e->policy != SY_POLICY_THOMPSON)
    return sy_policy_choose(x->policy, &ctx, &c->w->rng);
  *drew = NULL;
  const sy_policy_t *p = x->policy;
  if (e->thompson.segment_header != NULL) {
    size_t slen;
    const char *seg = sy_head_get(&r->head, e->thompson.segment_header, &slen);
    if (seg != NULL)
      p = sy__runtime_policy_for(r->rt, (size_t)r->exp, seg, slen);
  }
  if (x->has_sticky && ctx.key != NULL)
    return sy_sticky_choose(&x->sticky, p, &ctx, &c->w->rng, uv_now(&c->w->loop), NULL);
  return sy_policy_choose(*drew = p, &ctx, &c->w->rng);
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
    const sy_policy_t *drew;
    sy_choice_t ch = choose_variant(c, e, &r->rt->exps[r->exp], &drew);
    r->variant = ch.arm;
    r->propensity = ch.propensity;
    r->pool = &r->rt->pools[e->variants[r->variant].upstream];
    sy__events_routed(w, r, drew);
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
  r->out = sy__upreq_build(c, v, &r->trace, 0, NULL, 0,
                                  chunked ? -1 : (int64_t)p->content_length);
  if (r->out == NULL) {
    *reject_status = 500;
    return 0;
  }
  return 1;
}

void sy__proxy_stream_start(sy_conn_t *c) {
  sy__shadow_skip_streamed(c); /* a streamed body is not kept: nothing to mirror */
  up_start(c);
}


/* The upstream request (and the shadow copies) are built: the client's body is no
 * longer read, so a large one is freed now rather than when the exchange ends, and
 * the exchange's charge becomes the request it sends (router/bodycap.h). */
static void release_body(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (r->body_cap > SY_STREAM_MIN_BODY) {
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
  }
  if (r->held > 0) /* a request without a body charges nothing */
    sy__bodycap_set(c->w, &r->held, r->out->len);
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
  r->out = sy__upreq_for_variant(c, variant_of(r), &r->trace, 0, err, sizeof(err));
  if (r->out == NULL && err[0] != '\0') {
    reply_error(c, 400, "invalid_request_error", "invalid_body", err);
    return;
  }
  if (r->out == NULL) {
    reply_error(c, 500, "server_error", "internal_error", "out of memory");
    return;
  }
  /* Shadow copies are decided and built now, while the request is whole, and sent
   * once the primary is on its way: up_start may end the exchange (and reset r)
   * before it returns, and the pair outlives r. */
  sy_shadow_pair_t *shadow = sy__shadow_prepare(c);
  release_body(c);
  up_start(c);
  if (shadow != NULL)
    sy__shadow_launch(shadow);
}

/* ---- the client's write queue ---- */

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

/* ---- the upstream leg: started here, heard from through leg_ops ---- */

static const sy_h1_ops_t leg_ops;

static void up_start(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (r->up == NULL)
    r->up = r->pool;
  if (!r->counted) {
    r->up->active++;
    r->counted = 1;
  }
  r->tries++;
  r->tries_here++;
  const sy_upstream_conf_t *uc = r->up->conf;
  sy_h1_opts_t o = {
      .first_byte_ms = uc->first_byte_timeout_ms,
      .idle_ms = uc->idle_timeout_ms,
      /* a failed connect tries another server, if the upstream has one */
      .max_connects = r->up->nservers < 3 ? (unsigned)r->up->nservers : 3,
      .health = 1,
      .head_request = strcmp(r->method, "HEAD") == 0,
      .avoid = r->answered, /* a retry after an answer goes to another server */
      .navoid = r->nanswered,
  };
  r->rstate = SY_RS_CONNECTING;
  r->leg = sy_h1_leg_new(&leg_ops, c, &sy__upstream_h1_pool, r->up, &o, &r->rhead);
  if (r->leg == NULL) {
    up_fail(c, 502, "upstream_connect_failed", "cannot open a connection to the upstream");
    return;
  }
  sy_h1_body_t body = !r->stream_body    ? SY_H1_BODY_WHOLE
                      : r->stream_chunked ? SY_H1_BODY_CHUNKED
                                          : SY_H1_BODY_STREAM;
  sy_h1_leg_start(r->leg, r->out, body); /* may end the exchange before it returns */
}

int sy__proxy_body(sy_conn_t *c, const char *p, size_t n) {
  sy_req_t *r = &c->req;
  r->body_seen += n;
  if (r->body_seen > r->rt->cfg->limits.max_stream_body_bytes)
    return 413;
  if (r->leg == NULL)
    return 502;
  int err = sy_h1_leg_write_body(r->leg, p, n);
  return err == 0 ? 0 : err == UV_ENOMEM ? 500 : 502;
}

void sy__proxy_body_done(sy_conn_t *c) {
  if (c->req.leg != NULL)
    sy_h1_leg_body_done(c->req.leg);
}

/* The upstream takes the streamed body slowly (stop), or caught up (go on). */
static void leg_on_flow(sy_h1_leg_t *leg, void *data, int stop) {
  sy_conn_t *c = data;
  sy_req_t *r = &c->req;
  (void)leg;
  if (stop && !r->client_paused) {
    r->client_paused = 1;
    sy__conn_pause_reading(c);
  } else if (!stop && r->client_paused) {
    r->client_paused = 0;
    sy__conn_resume_reading(c);
  }
}

static void up_fail(sy_conn_t *c, int status, const char *code, const char *msg) {
  sy_req_t *r = &c->req;
  r->leg = NULL; /* it closed its connection and frees itself */
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

/* What a failed try was, for the retry policy (an SY_RETRY_* bit, 0: not retried)
 * and the event's list. */
static unsigned failure_kind(const sy_h1_error_t *e, const char **name) {
  *name = "error";
  switch (e->kind) {
  case SY_H1_ENOCONN:
  case SY_H1_ECONNECT:
    *name = "connect";
    return SY_RETRY_CONNECT;
  case SY_H1_ECLOSED:
    *name = "reset";
    return e->state <= SY_H1_RESP_WAITING ? SY_RETRY_RESET : 0;
  case SY_H1_ETIMEDOUT:
    *name = "timeout";
    if (e->state == SY_H1_RESP_NONE) {
      *name = "connect";
      return SY_RETRY_CONNECT;
    }
    return e->state == SY_H1_RESP_WAITING ? SY_RETRY_TIMEOUT : 0;
  case SY_H1_ETLS:
    /* A handshake that stalled is a connect that timed out (nothing was sent); a
     * server that failed to prove its name is not asked again. */
    *name = "connect";
    return e->uverr == UV_ETIMEDOUT ? SY_RETRY_CONNECT : 0;
  case SY_H1_EPROXY:
    /* The proxy could not reach the server, or stalled: a connect failure. Its 4xx
     * (407: credentials, 403: not allowed) will not change on another try. */
    *name = "connect";
    return e->uverr == UV_EACCES ? 0 : SY_RETRY_CONNECT;
  default:
    return 0;
  }
}

static void leg_on_error(sy_h1_leg_t *leg, void *data, const sy_h1_error_t *e) {
  sy_conn_t *c = data;
  sy_req_t *r = &c->req;
  const char *name;
  unsigned why = failure_kind(e, &name);
  int target = why != 0 ? sy__retry_target(c, why, 0, NULL, -1) : SY_TRY_NONE;
  if (target != SY_TRY_NONE) {
    r->leg = NULL; /* it closed its connection and frees itself */
    if (sy__retry_go(c, target, name, NULL, -1, up_start) == 0) {
      sy_log_debug("upstream %s: %s; retrying%s", e->label, name,
                   target == SY_TRY_FALLBACK ? " on the fallback" : "");
      return;
    }
  }
  sy__retry_note(r, name);
  (void)leg;
  switch (e->kind) {
  case SY_H1_ENOCONN:
    up_fail(c, 502, "upstream_connect_failed", "cannot open a connection to the upstream");
    break;
  case SY_H1_ECONNECT:
    up_fail(c, 502, "upstream_connect_failed", "cannot connect to the upstream");
    break;
  case SY_H1_ETIMEDOUT:
    if (e->state == SY_H1_RESP_HEAD || e->state == SY_H1_RESP_BODY)
      up_fail(c, 504, "upstream_idle_timeout", "the upstream stopped sending mid-response");
    else
      up_fail(c, 504, "upstream_timeout", "the upstream did not answer in time");
    break;
  case SY_H1_ECLOSED:
    up_fail(c, 502, "upstream_closed",
            e->uverr == UV_EOF
                ? "the upstream closed the connection before the response was complete"
                : "the upstream connection failed");
    break;
  case SY_H1_EPROTO:
    sy_log_warn("upstream %s: bad response: %s", e->label, e->reason);
    up_fail(c, 502, "upstream_protocol_error", "the upstream sent an invalid response");
    break;
  case SY_H1_EWRITE:
    up_fail(c, 502, "upstream_write_failed", "cannot write to the upstream");
    break;
  case SY_H1_EOWNER:
    up_fail(c, 502, "internal_error", "out of memory");
    break;
  case SY_H1_ETLS: /* a stalled handshake too: connect_timeout_ms covers it (502) */
    up_fail(c, 502, "upstream_tls_error", e->detail);
    break;
  case SY_H1_EPROXY:
    up_fail(c, 502, "egress_proxy_error", e->detail);
    break;
  }
}

/* ---- response head to the client ---- */

static int skip_response_header(sy_h1_conn_names_t cn, const char *name, size_t n) {
  if (sy_http_hop_by_hop(name, n))
    return !sy_token_eq(name, n, "transfer-encoding"); /* the body keeps its framing */
  return sy_h1_named_by_connection(cn, name, n);
}

static sy_buf_t *build_client_head(sy_conn_t *c, int status) {
  sy_req_t *r = &c->req;
  sy_head_t *h = &r->rhead;
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
static int leg_on_head(sy_h1_leg_t *leg, void *data, int status, const llhttp_t *p) {
  sy_conn_t *c = data;
  sy_req_t *r = &c->req;
  char st[8];
  snprintf(st, sizeof st, "%d", status);
  if (r->up != NULL && sy_retry_status_listed(&r->up->conf->retry, status)) {
    const void *server = sy_h1_leg_server(leg);
    size_t ralen;
    const char *ra = sy_head_get(&r->rhead, "retry-after", &ralen);
    int64_t ra_ms = ra != NULL ? sy_retry_after_ms(ra, ralen, time(NULL)) : -1;
    int target = sy__retry_target(c, 0, status, server, ra_ms);
    if (target != SY_TRY_NONE) {
      r->leg = NULL;
      sy_h1_leg_cancel(leg); /* the answer is dropped: no further callback */
      if (sy__retry_go(c, target, st, server, ra_ms, up_start) < 0)
        up_fail(c, 502, "internal_error", "out of memory");
      return 0;
    }
  }
  sy__retry_note(r, st);
  if (r->t_first == 0)
    r->t_first = uv_hrtime();
  int chunked = (p->flags & F_CHUNKED) != 0;
  int needs_eof = llhttp_message_needs_eof(p);
  r->dechunk = chunked && r->http_minor == 0;
  r->resp_close = !r->keepalive || c->w->draining || r->dechunk ||
                  (needs_eof && strcmp(r->method, "HEAD") != 0);
  sy_buf_t *head = build_client_head(c, status);
  if (head == NULL)
    return -1;
  r->status = status;
  r->rstate = SY_RS_BODY;
  oq_push(c, head, head->data, head->len);
  /* oq_push took our only reference as the queue's owner reference. */
  return 0;
}

/* De-chunked body bytes: forwarded in dechunk mode; usage and the shadow's copy. */
static void leg_on_body(sy_h1_leg_t *leg, void *data, sy_buf_t *buf, const char *p, size_t n) {
  sy_conn_t *c = data;
  sy_req_t *r = &c->req;
  (void)leg;
  if (r->dechunk)
    oq_push(c, sy_buf_ref(buf), p, n);
  sy__events_body(r, p, n);
  if (r->shadow != NULL)
    sy__shadow_primary_body(r->shadow, p, n);
}

/* Body bytes of one read as the upstream framed them (non-dechunk mode). */
static void leg_on_raw(sy_h1_leg_t *leg, void *data, sy_buf_t *buf, const char *p, size_t n) {
  sy_conn_t *c = data;
  sy_req_t *r = &c->req;
  (void)leg;
  if (n == 0 || r->dechunk || strcmp(r->method, "HEAD") == 0)
    return;
  r->bytes_out += n;
  oq_push(c, sy_buf_ref(buf), p, n);
}

static void leg_on_read_done(sy_h1_leg_t *leg, void *data) {
  (void)leg;
  oq_flush(data);
}

/* The response is complete and queued: end the exchange. */
static void leg_on_complete(sy_h1_leg_t *leg, void *data) {
  sy_conn_t *c = data;
  (void)leg;
  c->req.leg = NULL;
  oq_flush(c);
  c->req.rstate = SY_RS_DONE;
  sy__conn_exchange_done(c);
}

static const sy_h1_ops_t leg_ops = {
    .on_head = leg_on_head,
    .on_body = leg_on_body,
    .on_raw = leg_on_raw,
    .on_read_done = leg_on_read_done,
    .on_complete = leg_on_complete,
    .on_error = leg_on_error,
    .on_flow = leg_on_flow,
};

void sy__proxy_client_drained(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (!r->up_paused || r->leg == NULL)
    return;
  r->up_paused = 0;
  sy_h1_leg_resume(r->leg);
}

/* Called by conn.c after each write to the client is queued. */
void sy__proxy_client_backlog(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (r->up_paused || r->leg == NULL || r->rstate != SY_RS_BODY)
    return;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > SY_CLIENT_HIGH_WATER) {
    r->up_paused = 1;
    sy_h1_leg_pause(r->leg);
  }
}

void sy__proxy_cancel(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (r->rstate != SY_RS_DONE && r->ev.failed == 0)
    r->ev.failed = 2;
  sy__retry_drop(r);
  sy__api_cancel(c);
  for (unsigned i = 0; i < r->noq; i++)
    sy_buf_unref(r->oq_owner[i]);
  r->noq = 0;
  if (r->leg != NULL) {
    sy_h1_leg_t *leg = r->leg;
    r->leg = NULL;
    sy_h1_leg_cancel(leg);
  }
  r->rstate = SY_RS_DONE;
}

void sy__proxy_end(sy_req_t *r) {
  if (r->ended || r->rt == NULL)
    return;
  r->ended = 1;
  if (r->leg != NULL) { /* not expected: the exchange ends with its leg */
    sy_h1_leg_cancel(r->leg);
    r->leg = NULL;
  }
  uint64_t now = uv_hrtime();
  sy_exchange_end_t end;
  end.status = r->status;
  end.client_gone = r->ev.failed == 2;
  end.logged = end.client_gone && r->status == 0 ? 499 : r->status;
  end.error = end.logged >= 500 || end.logged == 0 || r->ev.failed == 1;
  end.ms = r->t_start != 0 ? (double)(now - r->t_start) / 1e6 : 0;
  end.ttfb_ms = r->t_first != 0 ? (double)(r->t_first - r->t_start) / 1e6 : -1;
  end.tries = r->tries;
  end.retried = r->retrying;
  end.fallback = r->on_fallback;
  sy_worker_t *w = r->rt->w;
  if (r->exp >= 0 && r->t_start != 0 && w->report != NULL)
    w->report->exchange_end(w, r, &end);
  if (r->ev.on)
    sy__events_done(w, r, &end);
  if (r->shadow != NULL) /* after the request event: its shadows follow it in the stream */
    sy__shadow_primary_done(w, r, &end);
  sy__retry_drop(r);
  sy__retry_uncount(r);
}

void sy__req_reset(sy_req_t *r) {
  sy__api_detach(r); /* a feedback call waiting for Redis must not write into a freed conn */
  sy__retry_drop(r);
  sy__retry_uncount(r); /* before the runtime (and its pools) may go */
  if (r->leg != NULL) { /* ended without sy__proxy_end: nothing is reported */
    sy_h1_leg_cancel(r->leg);
    r->leg = NULL;
  }
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
