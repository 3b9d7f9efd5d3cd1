/*
 * http1client.c — one upstream HTTP/1.1 exchange (see http1client.h): the request
 * builder, and the leg that connects through the pool, writes, parses the
 * response and ends, once, through leg_fail or leg_finish.
 *
 * The response is parsed one read at a time. llhttp is paused at the end of the
 * head (the owner gets it before any body byte) and at the end of the message
 * (what follows in the read decides whether the connection can be reused). Body
 * bytes reach the owner twice over, as slices of the read's buffer: de-chunked
 * (on_body, during the parse) and as framed (on_raw, after it), so an owner can
 * forward either without copying.
 *
 * Timers: with a deadline, one timer from connect to the end; without, the
 * first-byte clock runs from the whole request written to the first response
 * byte, then the idle clock restarts at each read. The pool's connect timeout
 * covers the time before.
 */
#include "router/http1client.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct sy_h1_leg_s {
  const sy_h1_ops_t *ops;
  void *data;
  const sy_h1_pool_ops_t *pool_ops;
  void *pool;
  sy_h1_opts_t opts;
  sy_h1_req_state_t req;
  sy_h1_resp_state_t resp;
  sy_h1_body_t body;
  sy_h1_link_t link;       /* the connection held (link.conn NULL: none) */
  const void *last_server; /* the server of the last connection, avoided by a connect retry */
  const void *avoid[SY_H1_MAX_AVOID + 1]; /* the owner's, then last_server */
  size_t navoid;                          /* the owner's */
  const char *label;       /* its host:port, for errors */
  unsigned attempts;       /* connections asked for */
  sy_buf_t *out;           /* the request (its head, for a streamed body) */
  sy_buf_t *pending;       /* streamed body bytes that arrived while connecting */
  int body_done;           /* the owner gave the whole streamed body */
  int throttled;           /* on_flow(1) was said last */
  int paused;              /* reads stopped by the owner */
  int paused_at;           /* llhttp paused at 1: the head's end, 2: the message's end */
  unsigned in_callback;    /* the leg's own entry points on the stack */
  unsigned writes;         /* uv_write requests in flight */
  int ended;               /* the owner was told (or cancelled): free when nothing runs */
  char tls_err[400];       /* the last connection's TLS or egress proxy failure ("": none) */
  sy_h1_errkind_t err_kind; /* ... which: SY_H1_ETLS or SY_H1_EPROXY */
  sy_buf_t *rbuf;          /* the read being parsed */
  sy_head_t *head;         /* the response head, or NULL: not kept */
  llhttp_t parser;
};

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

int sy_h1_append_header(sy_buf_t **b, const char *name, size_t nlen, const char *val, size_t vlen) {
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
      (rq->shadow && sy_token_eq(name, n, "x-switchyard-shadow")) ||
      (rq->drop_authorization && sy_token_eq(name, n, "authorization")))
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
            sy_buf_append(&b, rq->target, rq->target_len) || sy_buf_appends(&b, " HTTP/1.1\r\n") ||
            append_client_headers(&b, rq, &have_xff);
  for (size_t i = 0; !err && i < rq->nextra; i++)
    err = sy_h1_append_header(&b, rq->extra[i].name, strlen(rq->extra[i].name), rq->extra[i].value,
                              strlen(rq->extra[i].value));
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

/* ---- the leg's life ---- */

static void leg_connect(sy_h1_leg_t *leg);
static void leg_fail(sy_h1_leg_t *leg, sy_h1_errkind_t kind, int uverr);

sy_h1_leg_t *sy_h1_leg_new(const sy_h1_ops_t *ops, void *data, const sy_h1_pool_ops_t *pool_ops,
                           void *pool, const sy_h1_opts_t *opts, sy_head_t *head) {
  sy_h1_leg_t *leg = calloc(1, sizeof *leg);
  if (leg == NULL)
    return NULL;
  leg->ops = ops;
  leg->data = data;
  leg->pool_ops = pool_ops;
  leg->pool = pool;
  leg->opts = *opts;
  for (size_t i = 0; opts->avoid != NULL && i < opts->navoid && i < SY_H1_MAX_AVOID; i++)
    leg->avoid[leg->navoid++] = opts->avoid[i];
  leg->opts.avoid = NULL; /* copied: the owner's array need not outlive this call */
  leg->opts.navoid = 0;
  leg->head = head;
  leg->label = "?";
  return leg;
}

static void leg_free(sy_h1_leg_t *leg) {
  sy_buf_unref(leg->out);
  sy_buf_unref(leg->pending);
  free(leg);
}

/* The guard: every entry point that may call the owner runs between enter and
 * leave, and a leg that ended meanwhile is freed only once the outermost one
 * returns and its writes are done (h2o's disposed flag, hiredis's IN_CALLBACK). */
static void leg_enter(sy_h1_leg_t *leg) {
  leg->in_callback++;
}

static void leg_leave(sy_h1_leg_t *leg) {
  if (--leg->in_callback == 0 && leg->ended && leg->writes == 0)
    leg_free(leg);
}

/* Gives the connection back to the pool (reusable) or closes it. */
static void leg_drop(sy_h1_leg_t *leg, int reusable, int reset) {
  void *conn = leg->link.conn;
  if (conn == NULL)
    return;
  leg->link.conn = NULL;
  if (reusable)
    leg->pool_ops->release(conn);
  else
    leg->pool_ops->close(conn, reset);
}

static void leg_ended(sy_h1_leg_t *leg) {
  leg->req = SY_H1_REQ_DONE;
  leg->resp = SY_H1_RESP_DONE;
  leg->ended = 1;
}

/* The response is complete: the connection goes back to the pool if the whole
 * request went out and nothing else came, and the owner is told. */
static void leg_finish(sy_h1_leg_t *leg, int reusable) {
  if (leg->req != SY_H1_REQ_SENT)
    reusable = 0; /* the upstream answered before the streamed body ended */
  leg_drop(leg, reusable, 0);
  leg_ended(leg);
  leg->ops->on_complete(leg, leg->data);
}

/* A reused connection the server had closed before it saw the request: the
 * request, kept whole, goes again on a fresh one (once). */
static int stale_retry(sy_h1_leg_t *leg) {
  if (leg->link.conn == NULL || leg->link.uses == 0 || leg->attempts >= 2 ||
      leg->body != SY_H1_BODY_WHOLE)
    return 0;
  leg_drop(leg, 0, 0);
  leg->last_server = NULL;
  leg_connect(leg);
  return 1;
}

/* The one error path: what a failure means depends on how far the response got. */
static void leg_fail(sy_h1_leg_t *leg, sy_h1_errkind_t kind, int uverr) {
  if (leg->ended)
    return;
  sy_h1_error_t err = {kind, leg->resp, uverr, NULL, leg->label, NULL};
  if (kind == SY_H1_EPROTO)
    err.reason = llhttp_get_error_reason(&leg->parser);
  if (kind == SY_H1_ETLS || kind == SY_H1_EPROXY)
    err.detail = leg->tls_err;
  switch (leg->resp) {
  case SY_H1_RESP_WAITING:
    if (kind == SY_H1_ECLOSED && stale_retry(leg))
      return;
    if (kind == SY_H1_ETIMEDOUT && leg->opts.deadline == 0 && leg->opts.health &&
        leg->link.conn != NULL)
      leg->pool_ops->result(leg->link.conn, 504); /* a first-byte timeout counts as a 5xx */
    break;
  case SY_H1_RESP_HEAD:
  case SY_H1_RESP_BODY:
    if (kind == SY_H1_ECLOSED && uverr == UV_EOF && leg->resp == SY_H1_RESP_BODY &&
        llhttp_message_needs_eof(&leg->parser)) {
      llhttp_finish(&leg->parser); /* a close-delimited body: EOF is its end */
      leg_finish(leg, 0);
      return;
    }
    break;
  case SY_H1_RESP_NONE:
  case SY_H1_RESP_DONE: break;
  }
  leg_drop(leg, 0, leg->opts.reset_on_error);
  leg_ended(leg);
  leg->ops->on_error(leg, leg->data, &err);
}

/* ---- writing the request ---- */

typedef struct wreq_s {
  sy_h1_leg_t *leg;
  sy_buf_t *buf, *buf2; /* what the bufs written point into */
} wreq_t;

static int connected(const sy_h1_leg_t *leg) {
  return leg->req == SY_H1_REQ_BODY || leg->req == SY_H1_REQ_SENT;
}

/* Request bytes not yet taken by the socket: held while connecting, then queued. */
static size_t queued(const sy_h1_leg_t *leg) {
  if (!connected(leg))
    return leg->pending != NULL ? leg->pending->len : 0;
  return uv_stream_get_write_queue_size(leg->link.stream);
}

/* Tells the owner of a streamed body to stop or go on, as the queue grows or drains. */
static void flow(sy_h1_leg_t *leg) {
  if (leg->ended || leg->ops->on_flow == NULL)
    return;
  if (!leg->throttled && !leg->body_done && queued(leg) > SY_H1_HIGH_WATER) {
    leg->throttled = 1;
    leg->ops->on_flow(leg, leg->data, 1);
  } else if (leg->throttled && connected(leg) && queued(leg) < SY_H1_LOW_WATER) {
    leg->throttled = 0;
    leg->ops->on_flow(leg, leg->data, 0);
  }
}

static void on_write(void *arg, int status) {
  wreq_t *wr = arg;
  sy_h1_leg_t *leg = wr->leg;
  sy_buf_unref(wr->buf);
  sy_buf_unref(wr->buf2);
  free(wr);
  leg_enter(leg);
  leg->writes--;
  /* A failed write shows up as a read error or EOF; here only flow control. */
  if (status == 0 && leg->throttled)
    flow(leg);
  leg_leave(leg);
}

/* Writes n bufs upstream through the pool, taking over the references b and b2
 * (NULL: none) that they point into. Returns 0, or -1 if the connection refused
 * them. */
static int leg_writev(sy_h1_leg_t *leg, const uv_buf_t *bufs, unsigned n, sy_buf_t *b,
                      sy_buf_t *b2) {
  wreq_t *wr = malloc(sizeof *wr);
  int r = -1;
  if (wr != NULL) {
    wr->leg = leg;
    wr->buf = b;
    wr->buf2 = b2;
    r = leg->pool_ops->write(leg->link.conn, bufs, n, on_write, wr);
    if (r == 1) {
      leg->writes++;
      return 0;
    }
    free(wr);
  }
  sy_buf_unref(b);
  sy_buf_unref(b2);
  return r < 0 ? -1 : 0;
}

/* Writes b upstream, taking over its reference. Returns 0, or -1 if the
 * connection refused it. */
static int leg_write(sy_h1_leg_t *leg, sy_buf_t *b) {
  uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
  return leg_writev(leg, &ub, 1, b, NULL);
}

/* Where the request head's Host line starts and ends in out (both at the end of
 * the request line when the client sent none). */
static void find_host_line(const sy_buf_t *out, size_t *start, size_t *end) {
  const char *p = out->data, *stop = p + out->len;
  const char *line = memchr(p, '\n', out->len);
  *start = *end = line != NULL ? (size_t)(line + 1 - p) : out->len;
  for (const char *l = line ? line + 1 : stop; l < stop && *l != '\r' && *l != '\n';) {
    const char *nl = memchr(l, '\n', (size_t)(stop - l));
    const char *next = nl != NULL ? nl + 1 : stop;
    if (next - l > 5 && strncasecmp(l, "host:", 5) == 0) {
      *start = (size_t)(l - p);
      *end = (size_t)(next - p);
      return;
    }
    l = next;
  }
}

/* The request (or its head) as it goes out: with the Host header the server wants,
 * if it wants one, in place of the client's. */
static int write_request(sy_h1_leg_t *leg) {
  if (leg->link.host == NULL)
    return leg_write(leg, sy_buf_ref(leg->out));
  size_t hs, he;
  find_host_line(leg->out, &hs, &he);
  size_t hlen = strlen(leg->link.host);
  sy_buf_t *h = sy_buf_new(hlen + 8);
  if (h == NULL)
    return -1;
  memcpy(h->data, "Host: ", 6);
  memcpy(h->data + 6, leg->link.host, hlen);
  memcpy(h->data + 6 + hlen, "\r\n", 2);
  h->len = hlen + 8;
  uv_buf_t ub[3] = {uv_buf_init(leg->out->data, (unsigned)hs),
                    uv_buf_init(h->data, (unsigned)h->len),
                    uv_buf_init(leg->out->data + he, (unsigned)(leg->out->len - he))};
  return leg_writev(leg, ub, 3, sy_buf_ref(leg->out), h);
}

/* Streamed body bytes as they go upstream: a copy, chunk-framed if asked. */
static int write_body_now(sy_h1_leg_t *leg, const char *p, size_t n) {
  int chunked = leg->body == SY_H1_BODY_CHUNKED;
  char frame[24];
  size_t flen = chunked ? (size_t)snprintf(frame, sizeof(frame), "%zx\r\n", n) : 0;
  sy_buf_t *b = sy_buf_new(flen + n + 2);
  if (b == NULL)
    return -1;
  memcpy(b->data, frame, flen);
  memcpy(b->data + flen, p, n);
  b->len = flen + n;
  if (chunked) {
    memcpy(b->data + b->len, "\r\n", 2);
    b->len += 2;
  }
  return leg_write(leg, b);
}

/* The whole request is upstream: now the first-byte clock runs. */
static void request_sent(sy_h1_leg_t *leg) {
  if (leg->body == SY_H1_BODY_CHUNKED) {
    sy_buf_t *b = sy_buf_new(5);
    if (b != NULL) {
      memcpy(b->data, "0\r\n\r\n", 5);
      b->len = 5;
      leg_write(leg, b);
    }
  }
  leg->req = SY_H1_REQ_SENT;
  if (leg->resp == SY_H1_RESP_WAITING && leg->opts.deadline == 0)
    leg->pool_ops->arm(leg->link.conn, leg->opts.first_byte_ms);
}

static const llhttp_settings_t parser_settings;

/* The connection is ready: the request goes out. */
static void leg_send(sy_h1_leg_t *leg) {
  leg->resp = SY_H1_RESP_WAITING;
  llhttp_init(&leg->parser, HTTP_RESPONSE, &parser_settings);
  leg->parser.data = leg;
  if (leg->head != NULL)
    sy_head_reset(leg->head);
  if (leg->opts.deadline != 0) {
    uint64_t now = uv_now(leg->link.stream->loop);
    if (now >= leg->opts.deadline) {
      leg_fail(leg, SY_H1_ETIMEDOUT, UV_ETIMEDOUT);
      return;
    }
    leg->pool_ops->arm(leg->link.conn, leg->opts.deadline - now);
  }
  if (write_request(leg) < 0) {
    /* A pooled connection the server had closed fails here, at once: retried on
     * a fresh one when that is safe, as for an EOF. */
    leg_fail(leg, SY_H1_ECLOSED, UV_EPIPE);
    return;
  }
  if (leg->body == SY_H1_BODY_WHOLE) {
    request_sent(leg);
    return;
  }
  leg->req = SY_H1_REQ_BODY;
  if (leg->pending != NULL && leg->pending->len > 0) {
    sy_buf_t *held = leg->pending; /* what arrived while connecting */
    leg->pending = NULL;
    int err = write_body_now(leg, held->data, held->len);
    sy_buf_unref(held);
    if (err < 0) {
      leg_fail(leg, SY_H1_EWRITE, UV_EIO);
      return;
    }
    flow(leg);
    if (leg->ended)
      return;
  }
  if (leg->body_done)
    request_sent(leg);
}

static void leg_connect(sy_h1_leg_t *leg) {
  leg->attempts++;
  leg->tls_err[0] = '\0'; /* the last connection's failure is the one reported */
  leg->req = SY_H1_REQ_CONNECTING;
  leg->resp = SY_H1_RESP_NONE;
  size_t n = leg->navoid;
  if (leg->last_server != NULL)
    leg->avoid[n++] = leg->last_server;
  int ready = leg->pool_ops->acquire(leg->pool, leg->avoid, n, leg, &leg->link);
  if (ready < 0) {
    leg->link.conn = NULL;
    leg_fail(leg, SY_H1_ENOCONN, ready);
    return;
  }
  leg->last_server = leg->link.server;
  leg->label = leg->link.label;
  if (ready)
    leg_send(leg);
}

const void *sy_h1_leg_server(const sy_h1_leg_t *leg) { return leg->last_server; }

void sy_h1_leg_start(sy_h1_leg_t *leg, sy_buf_t *req, sy_h1_body_t body) {
  leg->out = sy_buf_ref(req);
  leg->body = body;
  leg_enter(leg);
  leg_connect(leg);
  leg_leave(leg);
}

void sy_h1_leg_ready(sy_h1_leg_t *leg, int status) {
  leg_enter(leg);
  if (status == 0) {
    leg_send(leg);
  } else {
    leg->link.conn = NULL; /* the pool closes it */
    if (leg->attempts < leg->opts.max_connects)
      leg_connect(leg); /* another server, if the pool has one */
    else
      leg_fail(leg, leg->tls_err[0] != '\0' ? leg->err_kind : SY_H1_ECONNECT, status);
  }
  leg_leave(leg);
}

void sy_h1_leg_tls_failed(sy_h1_leg_t *leg, int status, const char *why) {
  snprintf(leg->tls_err, sizeof leg->tls_err, "%s", why);
  leg->err_kind = SY_H1_ETLS;
  sy_h1_leg_ready(leg, status < 0 ? status : UV_EPROTO);
}

void sy_h1_leg_proxy_failed(sy_h1_leg_t *leg, int status, const char *why) {
  snprintf(leg->tls_err, sizeof leg->tls_err, "%s", why);
  leg->err_kind = SY_H1_EPROXY;
  sy_h1_leg_ready(leg, status < 0 ? status : UV_EPROTO);
}

int sy_h1_leg_write_body(sy_h1_leg_t *leg, const char *p, size_t n) {
  if (leg->ended || leg->req == SY_H1_REQ_SENT)
    return UV_EPIPE;
  int err = 0;
  leg_enter(leg);
  if (leg->req == SY_H1_REQ_BODY) {
    err = write_body_now(leg, p, n) < 0 ? UV_EIO : 0;
  } else {
    /* Not connected yet: hold the bytes. */
    if (leg->pending == NULL && (leg->pending = sy_buf_new(16384)) == NULL)
      err = UV_ENOMEM;
    else if (sy_buf_append(&leg->pending, p, n) < 0)
      err = UV_ENOMEM;
  }
  if (err == 0)
    flow(leg);
  leg_leave(leg);
  return err;
}

void sy_h1_leg_body_done(sy_h1_leg_t *leg) {
  leg->body_done = 1;
  if (leg->req == SY_H1_REQ_BODY)
    request_sent(leg);
}

void sy_h1_leg_pause(sy_h1_leg_t *leg) {
  if (leg->paused || leg->link.conn == NULL)
    return;
  leg->paused = 1;
  leg->pool_ops->pause(leg->link.conn);
  leg->pool_ops->disarm(leg->link.conn);
}

void sy_h1_leg_resume(sy_h1_leg_t *leg) {
  if (!leg->paused || leg->link.conn == NULL)
    return;
  leg->paused = 0;
  leg->pool_ops->resume(leg->link.conn);
  if (leg->opts.deadline == 0)
    leg->pool_ops->arm(leg->link.conn, leg->opts.idle_ms);
}

void sy_h1_leg_cancel(sy_h1_leg_t *leg) {
  if (leg->ended)
    return;
  leg_drop(leg, 0, 1);
  leg_ended(leg);
  if (leg->in_callback == 0 && leg->writes == 0)
    leg_free(leg);
}

void sy_h1_leg_timeout(sy_h1_leg_t *leg) {
  leg_enter(leg);
  leg_fail(leg, SY_H1_ETIMEDOUT, UV_ETIMEDOUT);
  leg_leave(leg);
}

/* ---- reading the response ---- */

static int rp_on_message_begin(llhttp_t *p) {
  sy_h1_leg_t *leg = p->data;
  if (leg->head != NULL)
    sy_head_reset(leg->head);
  return 0;
}
static int rp_on_status(llhttp_t *p, const char *at, size_t n) {
  sy_h1_leg_t *leg = p->data;
  return leg->head != NULL && sy_head_line(leg->head, at, n) ? -1 : 0;
}
static int rp_on_field(llhttp_t *p, const char *at, size_t n) {
  sy_h1_leg_t *leg = p->data;
  return leg->head != NULL && sy_head_field(leg->head, at, n) ? -1 : 0;
}
static int rp_on_value(llhttp_t *p, const char *at, size_t n) {
  sy_h1_leg_t *leg = p->data;
  return leg->head != NULL && sy_head_value(leg->head, at, n) ? -1 : 0;
}
static int rp_on_done(llhttp_t *p) {
  sy_h1_leg_t *leg = p->data;
  return leg->head != NULL && sy_head_done(leg->head) ? -1 : 0;
}

static int interim(int status) {
  return status >= 100 && status < 200; /* e.g. 103; we sent no Expect */
}

static int rp_on_headers_complete(llhttp_t *p) {
  sy_h1_leg_t *leg = p->data;
  int status = llhttp_get_status_code(p);
  if (interim(status))
    return 0;
  if (leg->opts.health && leg->link.conn != NULL)
    leg->pool_ops->result(leg->link.conn, status);
  leg->paused_at = 1;
  return HPE_PAUSED;
}

static int rp_on_body(llhttp_t *p, const char *at, size_t n) {
  sy_h1_leg_t *leg = p->data;
  if (leg->ended)
    return -1; /* cancelled inside a callback: no more of it */
  leg->ops->on_body(leg, leg->data, leg->rbuf, at, n);
  return 0;
}

static int rp_on_message_complete(llhttp_t *p) {
  sy_h1_leg_t *leg = p->data;
  if (interim(llhttp_get_status_code(p)))
    return 0;
  leg->paused_at = 2;
  return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = rp_on_message_begin,
    .on_status = rp_on_status,
    .on_status_complete = rp_on_done,
    .on_header_field = rp_on_field,
    .on_header_field_complete = rp_on_done,
    .on_header_value = rp_on_value,
    .on_header_value_complete = rp_on_done,
    .on_headers_complete = rp_on_headers_complete,
    .on_body = rp_on_body,
    .on_message_complete = rp_on_message_complete,
};

/* The head is complete: the owner takes it, and the body may follow. */
static int leg_head(sy_h1_leg_t *leg) {
  if (leg->opts.head_request)
    leg->parser.flags |= F_SKIPBODY;
  if (leg->ops->on_head(leg, leg->data, llhttp_get_status_code(&leg->parser), &leg->parser) < 0)
    return -1;
  if (!leg->ended)
    leg->resp = SY_H1_RESP_BODY;
  return 0;
}

static void deliver_raw(sy_h1_leg_t *leg, const char *p, size_t n) {
  if (leg->ops->on_raw != NULL && !leg->ended)
    leg->ops->on_raw(leg, leg->data, leg->rbuf, p, n);
}

/* Parses one read. */
static void leg_feed(sy_h1_leg_t *leg, const char *p, size_t n) {
  int resumed = 0;
  /* After the head, run the parser once more even with no bytes left: a
   * bodiless response completes without further input. */
  while ((n > 0 || resumed) && !leg->ended) {
    resumed = 0;
    int in_body = leg->resp == SY_H1_RESP_BODY;
    leg->paused_at = 0;
    llhttp_errno_t e = llhttp_execute(&leg->parser, p, n);
    if (leg->ended)
      return;
    if (e == HPE_OK) {
      if (in_body)
        deliver_raw(leg, p, n);
      return;
    }
    if (e != HPE_PAUSED) {
      leg_fail(leg, SY_H1_EPROTO, 0);
      return;
    }
    size_t used = (size_t)(llhttp_get_error_pos(&leg->parser) - p);
    if (leg->paused_at == 2) {
      if (in_body)
        deliver_raw(leg, p, used);
      /* Bytes after the message end mean the connection cannot be reused. */
      if (!leg->ended)
        leg_finish(leg, used == n && llhttp_should_keep_alive(&leg->parser));
      return;
    }
    if (leg_head(leg) < 0) {
      leg_fail(leg, SY_H1_EOWNER, UV_ENOMEM);
      return;
    }
    llhttp_resume(&leg->parser);
    resumed = 1;
    p += used;
    n -= used;
  }
}

void sy_h1_leg_read(sy_h1_leg_t *leg, ssize_t nread, sy_buf_t *b) {
  if (nread == 0 || leg->ended)
    return;
  leg_enter(leg);
  if (leg->resp < SY_H1_RESP_WAITING) {
    /* Bytes before the request went out can only be the server giving up on
     * the connection, which its EOF tells. */
    if (nread < 0)
      leg_fail(leg, SY_H1_ECLOSED, (int)nread);
  } else if (nread < 0 || b == NULL) {
    leg_fail(leg, SY_H1_ECLOSED, nread < 0 ? (int)nread : UV_ENOBUFS);
  } else {
    if (leg->resp == SY_H1_RESP_WAITING)
      leg->resp = SY_H1_RESP_HEAD;
    if (leg->opts.deadline == 0)
      leg->pool_ops->arm(leg->link.conn, leg->opts.idle_ms);
    b->len = (size_t)nread;
    leg->rbuf = b;
    leg_feed(leg, b->data, (size_t)nread);
    leg->rbuf = NULL;
    if (!leg->ended && leg->ops->on_read_done != NULL)
      leg->ops->on_read_done(leg, leg->data);
  }
  leg_leave(leg);
}
