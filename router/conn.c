/*
 * conn.c — the client leg: accept, parse requests with llhttp, enforce the
 * size and time limits, write responses, keep-alive and pipelining, close.
 *
 * A connection handles one exchange at a time. When a request is complete the
 * parser is paused at its end; bytes the client sends meanwhile (a pipelined
 * next request) are kept in `pending` and parsed once the response has been
 * queued. Reading continues while a response streams so that a client that goes
 * away is noticed at once and its upstream request cancelled.
 *
 * Timers: one per connection. A new or busy-reading connection runs the header
 * timeout (408 when it fires); an idle keep-alive connection runs the idle
 * timeout (closed silently, as clients expect); a closing one runs a last
 * deadline so that a client that never reads cannot hold the socket.
 */
#include "router/conn.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "router/bodycap.h"
#include "router/conn_tls.h"
#include "router/exchange.h"
#include "router/runtime.h"
#include "router/worker.h"


typedef struct wreq_s {
  uv_write_t req;
  unsigned n;
  sy_buf_t *owners[SY_OUTQ];
} wreq_t;

static void conn_feed(sy_conn_t *c, const char *p, size_t n);
static void conn_input(sy_conn_t *c, const char *p, size_t n);
static int write_raw(sy_conn_t *c, const uv_buf_t *bufs, sy_buf_t *const *owners, unsigned n);
static void conn_shutdown(sy_conn_t *c, int cut);
static void start_reading(sy_conn_t *c);

static const sy_limits_t *limits(sy_conn_t *c) {
  return &c->w->rt->cfg->limits;
}

static size_t max_body(sy_conn_t *c) {
  return c->ops->max_body_bytes ? c->ops->max_body_bytes : limits(c)->max_body_bytes;
}

/* The exchange is over: reported (once), its charge for a held body given back, its
 * state freed. */
static void exchange_end(sy_conn_t *c) {
  if (c->ops->end != NULL)
    c->ops->end(&c->req);
  sy__bodycap_release(c->w, &c->req.held);
  if (c->ops->reset != NULL)
    c->ops->reset(&c->req);
}

/* ---- closing ---- */

static void on_closed(uv_handle_t *h) {
  sy_conn_t *c = h->data;
  if (--c->handles > 0)
    return;
  sy_worker_t *w = c->w;
  void (*gone)(sy_worker_t *) = c->ops->gone;
  exchange_end(c);
  sy_head_free(&c->req.head);
  sy_head_free(&c->req.rhead);
  free(c->req.body);
  free(c->pending);
  sy_tls_free(c->tls);
  free(c);
  if (gone != NULL)
    gone(w);
}

void sy__conn_close(sy_conn_t *c) {
  if (c->handles == 0 || uv_is_closing((uv_handle_t *)&c->tcp))
    return;
  if (c->req.rstate != SY_RS_NONE && c->req.rstate != SY_RS_DONE)
    c->ops->cancel(c);
  c->state = SY_CS_CLOSING;
  /* Unlink now: a draining worker counts only connections still open. */
  if (c->prev != NULL)
    c->prev->next = c->next;
  else if (*c->list == c)
    *c->list = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  c->next = c->prev = NULL;
  (*c->nlist)--;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_closed);
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  sy_conn_t *c = req->data;
  free(req);
  if (!c->linger || status < 0)
    sy__conn_close(c);
}

static void on_close_deadline(uv_timer_t *t) {
  sy__conn_close(t->data);
}

/* TLS: writes what the engine had for the client (NULL: nothing). */
static void tls_flush(sy_conn_t *c, sy_buf_t *b) {
  if (b == NULL)
    return;
  uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
  write_raw(c, &ub, &b, 1);
}

/* TLS: the handshake failed (counted, logged); the client gets why, and is closed. */
static void tls_fail(sy_conn_t *c, const char *why) {
  tls_flush(c, sy__ctls_failed(c->w, c->tls, c->peer, why));
  sy__conn_close(c);
}

/* Closes after everything queued has been written (FIN, not RST). cut: the response
 * was cut short, so a TLS client gets no close_notify (that would say it is whole). */
static void conn_shutdown(sy_conn_t *c, int cut) {
  if (c->state == SY_CS_CLOSING)
    return;
  if (c->tls != NULL && sy_tls_ready(c->tls) && !cut) {
    sy_tls_shutdown(c->tls); /* close_notify: the client learns the close is no cut */
    tls_flush(c, sy__ctls_out(c->tls));
  }
  c->state = SY_CS_CLOSING;
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (req == NULL) {
    sy__conn_close(c);
    return;
  }
  req->data = c;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
    free(req);
    sy__conn_close(c);
    return;
  }
  /* Keep reading: an EOF or error then closes at once. */
  uv_timer_start(&c->timer, on_close_deadline, 5000, 0);
}

void sy__conn_abort(sy_conn_t *c) {
  c->ops->cancel(c);
  exchange_end(c);
  conn_shutdown(c, 1);
}

void sy__conn_close_if_idle(sy_conn_t *c) {
  if (c->state == SY_CS_IDLE && c->npending == 0)
    sy__conn_close(c);
}

/* ---- writing ---- */

static void on_write(uv_write_t *req, int status) {
  wreq_t *wr = (wreq_t *)req;
  sy_conn_t *c = req->handle->data;
  for (unsigned i = 0; i < wr->n; i++)
    sy_buf_unref(wr->owners[i]);
  free(wr);
  if (status < 0) {
    if (status != UV_ECANCELED)
      sy__conn_close(c); /* the client is gone; cancels the upstream leg */
    return;
  }
  if (c->req.up_paused && c->ops->drained != NULL &&
      uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < SY_CLIENT_LOW_WATER)
    c->ops->drained(c);
}

int sy__conn_write(sy_conn_t *c, const uv_buf_t *bufs, sy_buf_t *const *owners, unsigned n) {
  if (c->tls == NULL || c->state == SY_CS_CLOSING)
    return write_raw(c, bufs, owners, n);
  sy_buf_t *sealed = sy__ctls_seal(c->tls, bufs, owners, n);
  if (sealed == NULL) {
    sy__conn_close(c);
    return -1;
  }
  uv_buf_t ub = uv_buf_init(sealed->data, (unsigned)sealed->len);
  return write_raw(c, &ub, &sealed, 1);
}

/* Writes bytes as they are (a TLS connection's: ciphertext). */
static int write_raw(sy_conn_t *c, const uv_buf_t *bufs, sy_buf_t *const *owners, unsigned n) {
  uv_stream_t *s = (uv_stream_t *)&c->tcp;
  if (c->state == SY_CS_CLOSING || uv_is_closing((uv_handle_t *)s)) {
    for (unsigned i = 0; i < n; i++)
      sy_buf_unref(owners[i]);
    return -1;
  }
  uv_buf_t left[SY_OUTQ];
  unsigned nleft = n;
  memcpy(left, bufs, n * sizeof(*bufs));
  int r = sy__try_write(s, left, &nleft);
  size_t queued = 0;
  for (unsigned i = 0; i < nleft; i++)
    queued += left[i].len;
  sy_buf_t *copy = NULL;
  if (r == 0 && nleft > 0 && queued <= SY_QUEUE_COPY_MAX && (copy = sy_buf_new(queued)) != NULL) {
    /* A small write left waiting (an SSE event for a slow client) would pin
     * whole read buffers: queue a right-sized copy instead. */
    for (unsigned i = 0; i < nleft; i++) {
      memcpy(copy->data + copy->len, left[i].base, left[i].len);
      copy->len += left[i].len;
    }
    for (unsigned i = 0; i < n; i++)
      sy_buf_unref(owners[i]);
    left[0] = uv_buf_init(copy->data, (unsigned)copy->len);
    nleft = 1;
    owners = &copy;
    n = 1;
  }
  if (r == 0 && nleft > 0) {
    wreq_t *wr = malloc(sizeof(*wr));
    if (wr != NULL) {
      wr->n = n;
      memcpy(wr->owners, owners, n * sizeof(*owners));
      if (uv_write(&wr->req, s, left, nleft, on_write) == 0) {
        if (c->ops->backlog != NULL)
          c->ops->backlog(c);
        return 0;
      }
      free(wr);
    }
    r = -1;
  }
  for (unsigned i = 0; i < n; i++)
    sy_buf_unref(owners[i]);
  if (r < 0) {
    sy__conn_close(c); /* the client is gone; cancels the upstream leg */
    return -1;
  }
  return 0;
}

static void write_literal(sy_conn_t *c, const char *s) {
  sy_buf_t *b = sy_buf_new(strlen(s));
  if (b == NULL)
    return;
  memcpy(b->data, s, strlen(s));
  b->len = strlen(s);
  uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
  sy__conn_write(c, &ub, &b, 1);
}

/* ---- timers ---- */

/* The response to a request refused here: the owner's, or switchyard's JSON error. */
static sy_buf_t *refusal(sy_conn_t *c, int status, const char *type, const char *code,
                         const char *msg) {
  sy_buf_t *resp = c->ops->refusal != NULL ? c->ops->refusal(c, status, msg) : NULL;
  /* 503: a limit of the moment (held bodies); the client may try again */
  return resp != NULL ? resp : sy_http_error_retry(status, type, code, msg, NULL, 0, status == 503);
}

/* Refuses the request being read with `resp` and closes after it. With a
 * streamed upload the upstream leg may be running: it is cancelled, and if the
 * response head already went out the connection is cut instead. */
static void conn_fail(sy_conn_t *c, sy_buf_t *resp, int status) {
  sy_req_t *r = &c->req;
  if (resp == NULL || r->rstate == SY_RS_BODY) {
    sy_buf_unref(resp);
    sy__conn_abort(c);
    return;
  }
  if (r->rstate != SY_RS_NONE && r->rstate != SY_RS_DONE)
    c->ops->cancel(c);
  c->linger = 1;
  if (!c->reading)
    start_reading(c);
  sy__conn_respond(c, resp, status, 1);
}

static void on_header_timeout(uv_timer_t *t) {
  sy_conn_t *c = t->data;
  if (c->state != SY_CS_IDLE && c->state != SY_CS_READING)
    return;
  if (c->tls != NULL && !sy_tls_ready(c->tls)) {
    tls_fail(c, "the TLS handshake did not complete within limits.header_timeout_ms");
    return;
  }
  sy_buf_t *resp = refusal(c, 408, "invalid_request_error", "request_timeout",
                           "the request was not received in time");
  conn_fail(c, resp, 408);
}

static void on_idle_timeout(uv_timer_t *t) {
  sy__conn_close(t->data);
}

/* ---- the exchange boundary ---- */

static void on_pending(uv_timer_t *t) {
  sy_conn_t *c = t->data;
  if (c->state != SY_CS_IDLE || c->npending == 0)
    return;
  /* Parse from a private copy: conn_feed may refill c->pending. */
  size_t n = c->npending;
  char *p = c->pending;
  c->pending = NULL;
  c->npending = 0;
  conn_feed(c, p, n);
  free(p);
}

void sy__conn_exchange_done(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (c->state == SY_CS_CLOSING)
    return;
  int close = r->resp_close || !r->keepalive || c->w->draining;
  exchange_end(c);
  if (close) {
    conn_shutdown(c, 0);
    return;
  }
  c->state = SY_CS_IDLE;
  llhttp_resume(&c->parser);
  if (!c->reading)
    start_reading(c);
  if (c->npending > 0)
    uv_timer_start(&c->timer, on_pending, 0, 0);
  else
    uv_timer_start(&c->timer, on_idle_timeout, limits(c)->idle_timeout_ms, 0);
}

void sy__conn_respond(sy_conn_t *c, sy_buf_t *resp, int status, int close) {
  sy_req_t *r = &c->req;
  r->status = status;
  r->resp_close = close;
  if (status >= 500)
    c->w->errors++;
  uv_buf_t ub = uv_buf_init(resp->data, (unsigned)resp->len);
  sy__conn_write(c, &ub, &resp, 1);
  sy__conn_exchange_done(c);
}

/* ---- request parsing ---- */

static int reject(sy_conn_t *c, int status) {
  c->error_status = status;
  return -1;
}

static int reject_why(sy_conn_t *c, int status, const char *why) {
  c->error_reason = why;
  return reject(c, status);
}

static int on_message_begin(llhttp_t *p) {
  sy_conn_t *c = p->data;
  sy_req_t *r = &c->req;
  c->state = SY_CS_READING;
  c->error_status = 0;
  c->error_reason = NULL;
  r->head.limit = limits(c)->max_header_bytes;
  r->t_start = uv_hrtime();
  if (c->ops->deadline_ms == 0) /* else the deadline set at accept runs on */
    uv_timer_start(&c->timer, on_header_timeout, limits(c)->header_timeout_ms, 0);
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  sy_conn_t *c = p->data;
  return sy_head_line(&c->req.head, at, n) ? reject(c, 431) : 0;
}
static int on_field(llhttp_t *p, const char *at, size_t n) {
  sy_conn_t *c = p->data;
  return sy_head_field(&c->req.head, at, n) ? reject(c, 431) : 0;
}
static int on_value(llhttp_t *p, const char *at, size_t n) {
  sy_conn_t *c = p->data;
  /* llhttp accepts obs-fold (a value continued on the next line) and hands
   * the continuation over as a second span of the same value. RFC 9112 lets a
   * proxy reject it, and forwarding it invites smuggling. Within one read a
   * second span can only be a fold; at the start of a read, a span that follows
   * a line feed is one. */
  int continued = c->req.head.last == 2;
  if (continued && (c->value_seq == c->feed_seq || (at == c->feed_start && c->prev_feed_lf)))
    return reject_why(c, 400, "obsolete line folding (obs-fold) in a header");
  c->value_seq = c->feed_seq;
  return sy_head_value(&c->req.head, at, n) ? reject(c, 431) : 0;
}
static int on_token_done(llhttp_t *p) {
  sy_conn_t *c = p->data;
  return sy_head_done(&c->req.head) ? reject(c, 431) : 0;
}

static int on_headers_complete(llhttp_t *p) {
  sy_conn_t *c = p->data;
  sy_req_t *r = &c->req;
  snprintf(r->method, sizeof(r->method), "%s", llhttp_method_name(llhttp_get_method(p)));
  r->http_major = llhttp_get_http_major(p);
  r->http_minor = llhttp_get_http_minor(p);
  if (r->http_major != 1)
    return reject(c, 505);
  if (llhttp_get_upgrade(p) || llhttp_get_method(p) == HTTP_CONNECT)
    return reject(c, 501);
  int refuse = 0;
  int stream = c->ops->head(c, &refuse);
  if (refuse)
    return reject(c, refuse);
  size_t max = max_body(c);
  if (!stream && (p->flags & F_CONTENT_LENGTH) && p->content_length > max)
    return reject(c, 413);
  /* A declared body is charged whole now: one that cannot fit is refused before it is
   * sent, and one accepted cannot be cut later for want of room. */
  if (!stream && (p->flags & F_CONTENT_LENGTH) && p->content_length > 0 &&
      sy__bodycap_take(c->w, &r->held, p->content_length) < 0)
    return reject(c, 503);
  if (!stream && (p->flags & F_CONTENT_LENGTH) && p->content_length > 0 &&
      r->body_cap < p->content_length) {
    char *nb = realloc(r->body, p->content_length);
    if (nb == NULL)
      return reject(c, 500);
    r->body = nb;
    r->body_cap = p->content_length;
  }
  size_t elen;
  const char *expect = sy_head_get(&r->head, "expect", &elen);
  if (expect != NULL && sy_token_eq(expect, elen, "100-continue") &&
      ((p->flags & F_CHUNKED) || p->content_length > 0))
    write_literal(c, "HTTP/1.1 100 Continue\r\n\r\n");
  if (stream) {
    /* The upstream leg starts now, outside this callback (see conn_feed). */
    c->pause_reason = SY_PAUSE_STREAM;
    return HPE_PAUSED;
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  sy_conn_t *c = p->data;
  sy_req_t *r = &c->req;
  if (r->stream_body) {
    /* A streamed body may take long; what must not is a pause between reads. */
    uv_timer_start(&c->timer, on_header_timeout, limits(c)->header_timeout_ms, 0);
    int refuse = c->ops->body(c, at, n);
    return refuse ? reject(c, refuse) : 0;
  }
  if (r->body_len + n > max_body(c))
    return reject(c, 413);
  if (!(p->flags & F_CONTENT_LENGTH) && sy__bodycap_take(c->w, &r->held, n) < 0)
    return reject(c, 503); /* a chunked body: charged as it arrives */
  if (r->body_len + n > r->body_cap) {
    size_t cap = r->body_cap ? r->body_cap : 4096;
    while (cap < r->body_len + n)
      cap *= 2;
    char *nb = realloc(r->body, cap);
    if (nb == NULL)
      return reject(c, 500);
    r->body = nb;
    r->body_cap = cap;
  }
  memcpy(r->body + r->body_len, at, n);
  r->body_len += n;
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  sy_conn_t *c = p->data;
  c->req.keepalive = llhttp_should_keep_alive(p);
  c->pause_reason = SY_PAUSE_COMPLETE;
  return HPE_PAUSED;
}

static void init_settings(llhttp_settings_t *s) {
  llhttp_settings_init(s);
  s->on_message_begin = on_message_begin;
  s->on_url = on_url;
  s->on_url_complete = on_token_done;
  s->on_header_field = on_field;
  s->on_header_field_complete = on_token_done;
  s->on_header_value = on_value;
  s->on_header_value_complete = on_token_done;
  s->on_headers_complete = on_headers_complete;
  s->on_body = on_body;
  s->on_message_complete = on_message_complete;
}

static void keep_pending(sy_conn_t *c, const char *p, size_t n) {
  if (n == 0)
    return;
  if (c->npending + n > SY_PENDING_MAX) {
    /* A client pipelining this much is not waiting for answers: stop reading
     * until the current response is done. The bytes of this read are still all
     * kept (at most SY_READ_BUF over the cap): they were taken off the socket, and
     * dropping any would splice the request stream (a later request then parsed
     * as garbage: see test_pipelined_over_pending_cap in tests/integration). */
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
  char *np = realloc(c->pending, c->npending + n);
  if (np == NULL) {
    /* Dropping bytes would splice the request stream: give up on the client. */
    sy__conn_close(c);
    return;
  }
  memcpy(np + c->npending, p, n);
  c->pending = np;
  c->npending += n;
}

static void reply_parse_error(sy_conn_t *c, llhttp_errno_t e) {
  int status = c->error_status ? c->error_status : 400;
  const char *code = status == 413   ? "payload_too_large"
                     : status == 431 ? "header_fields_too_large"
                     : status == 505 ? "http_version_not_supported"
                     : status == 501 ? "not_implemented"
                     : status == 502 ? "upstream_write_failed"
                     : status == 500 ? "internal_error"
                     : status == 503 ? "held_body_limit"
                                     : "bad_request";
  char msg[200];
  if (status == 400)
    snprintf(msg, sizeof(msg), "malformed HTTP request: %s",
             c->error_reason ? c->error_reason : llhttp_get_error_reason(&c->parser));
  else if (c->error_reason != NULL) /* an owner's refusal from its head op */
    snprintf(msg, sizeof(msg), "%s", c->error_reason);
  else if (status == 413)
    snprintf(msg, sizeof(msg), "request body larger than %zu bytes", max_body(c));
  else if (status == 503)
    snprintf(msg, sizeof(msg),
             "this worker holds as many request bodies as limits.held_body_bytes (%zu bytes) "
             "allows; retry shortly",
             limits(c)->held_body_bytes);
  else if (status == 431)
    snprintf(msg, sizeof(msg), "request head larger than %zu bytes", limits(c)->max_header_bytes);
  else
    snprintf(msg, sizeof(msg), "%s", sy_http_reason(status));
  (void)e;
  sy_buf_t *resp =
      refusal(c, status,
              status == 503  ? "overloaded_error"
              : status >= 500 ? "server_error"
                              : "invalid_request_error",
              code, msg);
  c->state = SY_CS_READING;
  conn_fail(c, resp, status);
}

static void conn_parse(sy_conn_t *c, const char *p, size_t n);

static void conn_feed(sy_conn_t *c, const char *p, size_t n) {
  c->feed_seq++;
  c->feed_start = p;
  conn_parse(c, p, n);
  /* For the next feed's obs-fold check; c lives at least until the next loop turn. */
  c->prev_feed_lf = n > 0 && p[n - 1] == '\n';
}

static void conn_parse(sy_conn_t *c, const char *p, size_t n) {
  for (;;) {
    llhttp_errno_t e = llhttp_execute(&c->parser, p, n);
    if (e == HPE_OK)
      return;
    if (e != HPE_PAUSED) {
      reply_parse_error(c, e);
      return;
    }
    const char *pos = llhttp_get_error_pos(&c->parser);
    n -= (size_t)(pos - p);
    p = pos;
    if (c->pause_reason == SY_PAUSE_STREAM) {
      /* A streamed body: start the upstream leg, then parse on. */
      c->ops->stream_start(c);
      if (c->state == SY_CS_CLOSING)
        return;
      llhttp_resume(&c->parser);
      continue;
    }
    /* The request is complete; what follows is the next one. */
    keep_pending(c, p, n);
    if (c->state == SY_CS_CLOSING)
      return;
    uv_timer_stop(&c->timer);
    c->state = SY_CS_PROXYING;
    c->ops->start(c);
    return;
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  sy_conn_t *c = h->data;
  (void)suggested;
  /* Every read is consumed (copied or parsed) before the callback returns, so
   * one buffer per worker serves every client connection. */
  *buf = uv_buf_init(c->w->read_buf, SY_READ_BUF);
}

static void tls_plain(void *arg, const char *p, size_t n) {
  conn_input(arg, p, n);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  sy_conn_t *c = s->data;
  if (nread == 0)
    return;
  if (nread < 0) {
    if (c->state == SY_CS_PROXYING)
      sy_log_debug("client %s went away mid-exchange: %s", c->peer, uv_strerror((int)nread));
    sy__conn_close(c);
    return;
  }
  if (c->tls == NULL) {
    conn_input(c, buf->base, (size_t)nread);
    return;
  }
  if (c->state == SY_CS_CLOSING)
    return;
  sy_tls_status_t st = sy__ctls_in(c->tls, buf->base, (size_t)nread, tls_plain, c);
  if (st == SY_TLS_ERROR && !sy_tls_ready(c->tls)) {
    tls_fail(c, sy_tls_error(c->tls));
    return;
  }
  tls_flush(c, sy__ctls_out(c->tls));
  if (st != SY_TLS_WANT) /* the client's close_notify (its EOF), or a TLS error */
    sy__conn_close(c);
}

/* Bytes from the client, as read or decrypted. */
static void conn_input(sy_conn_t *c, const char *p, size_t n) {
  switch (c->state) {
  case SY_CS_IDLE:
    if (c->npending > 0) {
      /* Pipelined bytes from before are still waiting for on_pending: new bytes go
       * behind them, or requests would be parsed out of order (a read can come
       * between sy__conn_exchange_done and its zero-delay on_pending timer). */
      keep_pending(c, p, n);
      break;
    }
    conn_feed(c, p, n);
    break;
  case SY_CS_READING:
    conn_feed(c, p, n);
    break;
  case SY_CS_PROXYING:
    keep_pending(c, p, n);
    break;
  case SY_CS_CLOSING:
    break; /* draining what the client still sends until our FIN is out */
  }
}

static void start_reading(sy_conn_t *c) {
  c->reading = 1;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

void sy__conn_pause_reading(sy_conn_t *c) {
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

void sy__conn_resume_reading(sy_conn_t *c) {
  if (!c->reading && c->state != SY_CS_CLOSING)
    start_reading(c);
}

/* Whether a new client connection would pass the cap (limits.max_connections, else
 * what the file descriptor limit allows); logs it at most every 10 s. */
static int over_cap(sy_worker_t *w) {
  size_t cap = w->rt->cfg->limits.max_connections;
  if (cap == 0)
    cap = w->fd_conn_cap;
  if (cap == 0 || w->nconns < cap)
    return 0;
  w->refused_conns++;
  uint64_t now = uv_now(&w->loop);
  if (w->refused_log_ms == 0 || now - w->refused_log_ms >= 10000) {
    w->refused_log_ms = now;
    sy_log_warn("connection limit reached: %zu client connections open (limits.max_connections, "
                "or half the file descriptor limit); refusing new ones with 503 (%llu so far)",
                w->nconns, (unsigned long long)w->refused_conns);
  }
  return 1;
}

/* Makes room in a listener with its own cap (ops->max_conns) for one more
 * connection: closes the oldest one that has not sent a complete request. Returns
 * 0, or -1 if every connection has (the new one is then turned away). Connections
 * that hold a slot and say nothing must not lock the others out. */
static int make_room(sy_conn_t *list, size_t n, size_t max) {
  if (n < max)
    return 0;
  sy_conn_t *victim = NULL;
  for (sy_conn_t *o = list; o != NULL; o = o->next)
    if (o->state == SY_CS_IDLE || o->state == SY_CS_READING)
      victim = o; /* the list is newest first: the last match is the oldest */
  if (victim == NULL)
    return -1;
  sy__conn_close(victim);
  return 0;
}

/* A connection never taken into the worker's list: its only handle is closed. */
static void free_unaccepted(uv_handle_t *h) { free(h->data); }

static void accept_into(sy_worker_t *w, uv_stream_t *server, const sy_conn_ops_t *ops,
                        sy_conn_t **list, size_t *nlist, sy_tls_ctx_t *tls);

void sy__conn_accept(sy_worker_t *w, uv_stream_t *server, const sy_conn_ops_t *ops,
                     sy_tls_ctx_t *tls) {
  accept_into(w, server, ops, &w->conns, &w->nconns, tls);
}

void sy__conn_accept_into(sy_worker_t *w, uv_stream_t *server, const sy_conn_ops_t *ops,
                          sy_conn_t **list, size_t *nlist) {
  accept_into(w, server, ops, list, nlist, NULL);
}

static void accept_into(sy_worker_t *w, uv_stream_t *server, const sy_conn_ops_t *ops,
                        sy_conn_t **list, size_t *nlist, sy_tls_ctx_t *tls) {
  sy_conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    sy_log_error("out of memory accepting a connection");
    return;
  }
  c->w = w;
  c->ops = ops;
  uv_tcp_init(&w->loop, &c->tcp);
  c->tcp.data = c;
  c->handles = 1;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
      (ops->max_conns > 0 && make_room(*list, *nlist, ops->max_conns) < 0)) {
    c->handles = 0;
    uv_close((uv_handle_t *)&c->tcp, free_unaccepted);
    return;
  }
  if (ops->max_conns == 0 && over_cap(w)) {
    /* Over the cap a connection gets a short 503 and is closed: better than taking
     * it and failing later for want of a descriptor for its upstream leg. */
    static const char busy[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        "{\"error\":{\"message\":\"too many connections\",\"type\":\"overloaded_error\","
        "\"code\":\"too_many_connections\"}}";
    uv_buf_t b = uv_buf_init((char *)busy, sizeof busy - 1);
    if (tls == NULL) /* (a TLS client could not read it before a handshake) */
      uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    c->handles = 0;
    uv_close((uv_handle_t *)&c->tcp, free_unaccepted);
    return;
  }
  uv_timer_init(&w->loop, &c->timer);
  c->timer.data = c;
  c->handles = 2;
  c->list = list;
  c->nlist = nlist;
  c->next = *list;
  if (*list != NULL)
    (*list)->prev = c;
  *list = c;
  (*nlist)++;

  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET)
      uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof(c->peer));
    else if (ss.ss_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof(c->peer));
  }
  if (c->peer[0] == '\0')
    snprintf(c->peer, sizeof(c->peer), "unknown");
  uv_tcp_nodelay(&c->tcp, 1);

  llhttp_init(&c->parser, HTTP_REQUEST, &w->req_settings);
  c->parser.data = c;
  sy_head_init(&c->req.head, limits(c)->max_header_bytes);
  sy_head_init(&c->req.rhead, 65536);
  c->req.exp = -1;
  c->state = SY_CS_IDLE;
  if (tls != NULL && (c->tls = sy_tls_accept(tls)) == NULL) {
    sy__conn_close(c);
    return;
  }
  start_reading(c);
  uv_timer_start(&c->timer, on_header_timeout,
                 ops->deadline_ms ? ops->deadline_ms : limits(c)->header_timeout_ms, 0);
}

void sy__conn_settings(llhttp_settings_t *s);
void sy__conn_settings(llhttp_settings_t *s) {
  init_settings(s);
}
