/*
 * mock-llm.c — a mock OpenAI-compatible LLM backend for tests, benchmarks and the
 * quickstart: the command line, the libuv loop, connections, HTTP parsing (llhttp)
 * and framing, and the timing of delayed and streamed answers. The bodies it sends
 * and the per-request plan (defaults, x-mock-* overrides, the request body) are
 * built by mock_reply.c.
 *
 * It must be fast enough to never be the bottleneck of a proxy benchmark, so the
 * request path allocates nothing per request beyond jansson's parse of the body:
 * each connection owns a fixed input buffer, reusable header/body buffers and a
 * small free list of write buffers; the server owns two scratch buffers used to
 * format responses. Every response (or, for streams, every SSE event) goes out in
 * one uv_write.
 *
 * Pipelining: the parser is paused at the end of each request (on_message_complete
 * returns HPE_PAUSED). A request answered at once lets parsing continue; a delayed
 * or streamed one leaves the rest of the input buffered until it is done, so
 * responses always leave in request order. The socket keeps being read while a
 * response is pending, so a client that goes away is noticed at once (its timers
 * are stopped and the connection freed); only a full input buffer stops reading.
 * EOF while a response is pending counts as the client going away (as a proxy
 * cancelling an upstream request does); EOF on an idle connection closes it after
 * the queued writes.
 *
 * Endpoints: POST /v1/chat/completions and POST /v1/completions (same behaviour; any
 * path ending so, e.g. Azure's /openai/deployments/D/chat/completions),
 * GET /health, GET /stats. Per-request overrides come from x-mock-* headers; see
 * usage() for the list. /stats counts: requests (completion requests), streams,
 * connections_accepted, connections_open (includes the connection asking),
 * http_requests (every request), errors (injected), resets.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <llhttp.h>
#include <uv.h>

#include "mock_opts.h"
#include "mock_reply.h"

enum {
  IN_CAP = 16384,              /* per-connection input buffer */
  MAX_HEAD_BYTES = 65536,      /* request line + headers, else 431 */
  MAX_BODY_BYTES = 64 << 20,   /* else 413 (above the router's largest default) */
  WBUF_MIN = 2048,             /* smallest write buffer allocated */
  WBUF_KEEP = 4,               /* write buffers kept per connection */
};


typedef struct conn_s conn_t;

typedef struct {
  uv_loop_t loop;
  mock_opts_t opt;
  uv_tcp_t listener;
  uv_signal_t sigterm, sigint;
  llhttp_settings_t settings;
  mock_counters_t n;
  uint64_t rng, next_id;
  conn_t *conns;            /* every connection not yet freed */
  mock_buf_t payload, out;  /* scratch for formatting responses */
  mock_buf_t content;       /* the JSON string "mock answer from NAME" */
  bool stopping;
} server_t;

typedef struct wbuf_s {
  uv_write_t req;
  conn_t *conn;
  struct wbuf_s *next;
  size_t cap, len;
  unsigned flags;
  char data[];
} wbuf_t;

enum { WB_STREAM = 1, WB_FINAL = 2 };

struct conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shut;
  llhttp_t parser;
  server_t *srv;
  conn_t *prev, *next;
  int pending_closes;
  bool closing, shutting, busy, reading, keep_alive, http10;
  int last_cb;           /* 1 after a header field piece, 2 after a value piece */
  int req_error;         /* 413/431 set by a parser callback */
  mock_req_t req;        /* the request being parsed or answered */
  mock_resp_t resp;      /* the response being produced for it */
  wbuf_t *free_wb;
  int n_free;
  size_t in_start, in_len;
  char in[IN_CAP];
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static const char *reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 408: return "Request Timeout";
  case 413: return "Payload Too Large";
  case 422: return "Unprocessable Entity";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Status";
  }
}

/* ---- connection lifetime ------------------------------------------------ */

static void conn_free(conn_t *c) {
  server_t *s = c->srv;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  json_decref(c->resp.json);
  while (c->free_wb) {
    wbuf_t *w = c->free_wb;
    c->free_wb = w->next;
    free(w);
  }
  free(c->req.head.p);
  free(c->req.body.p);
  free(c->req.hdrs);
  free(c);
}

static void on_conn_close(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->pending_closes == 0) conn_free(c);
}

/* Closes both handles; reset sends an RST instead of a FIN. Idempotent. */
static void conn_close(conn_t *c, bool reset) {
  if (c->closing) return;
  c->closing = true;
  c->busy = false;
  c->srv->n.open--;
  if (!reset || uv_tcp_close_reset(&c->tcp, on_conn_close) != 0)
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
  uv_close((uv_handle_t *)&c->timer, on_conn_close);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_close(req->data, false);
}

/* Graceful close: FIN after the queued writes, then close. No more requests. */
static void conn_shutdown(conn_t *c) {
  if (c->closing || c->shutting) return;
  c->shutting = true;
  c->shut.data = c;
  if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
    conn_close(c, false);
}

static wbuf_t *wbuf_get(conn_t *c, size_t need) {
  wbuf_t *w = c->free_wb;
  if (w) {
    c->free_wb = w->next;
    c->n_free--;
    if (w->cap >= need) return w;
    free(w);
  }
  size_t cap = need < WBUF_MIN ? WBUF_MIN : need;
  w = mock_xrealloc(NULL, sizeof *w + cap);
  w->cap = cap;
  return w;
}

static void wbuf_put(conn_t *c, wbuf_t *w) {
  if (c->closing || c->n_free >= WBUF_KEEP) {
    free(w);
    return;
  }
  w->next = c->free_wb;
  c->free_wb = w;
  c->n_free++;
}

static void stream_after_write(conn_t *c, bool final);

static void on_write(uv_write_t *req, int status) {
  wbuf_t *w = req->data;
  conn_t *c = w->conn;
  unsigned flags = w->flags;
  wbuf_put(c, w);
  if (status < 0) {
    conn_close(c, false);
    return;
  }
  if (!c->closing && (flags & WB_STREAM)) stream_after_write(c, flags & WB_FINAL);
}

/* Sends the server's `out` scratch buffer in one uv_write. */
static void write_out(conn_t *c, unsigned flags) {
  mock_buf_t *out = &c->srv->out;
  wbuf_t *w = wbuf_get(c, out->len);
  memcpy(w->data, out->p, out->len);
  w->len = out->len;
  w->conn = c;
  w->flags = flags;
  w->req.data = w;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
    wbuf_put(c, w);
    conn_close(c, false);
  }
}

/* ---- plain responses ---------------------------------------------------- */

static void add_status_and_common(conn_t *c, int status, bool close) {
  server_t *s = c->srv;
  mock_buf_addf(&s->out, "HTTP/1.1 %d %s\r\nx-mock-name: %s\r\n", status, reason(status),
                s->opt.name);
  /* A simulated quality for drivers and tests: the chance that an answer of this
   * backend resolves the task (the driver draws the outcome, the mock only says). */
  if (s->opt.outcome_rate)
    mock_buf_addf(&s->out, "x-mock-outcome-rate: %s\r\n", s->opt.outcome_rate);
  if (close) mock_buf_adds(&s->out, "Connection: close\r\n");
  else if (c->http10) mock_buf_adds(&s->out, "Connection: keep-alive\r\n");
}

/* Sends the `payload` scratch buffer as a complete JSON response, with a
 * Retry-After header when retry_after is not NULL. */
static void send_payload_ra(conn_t *c, int status, bool close, const char *retry_after) {
  server_t *s = c->srv;
  close = close || !c->keep_alive;
  s->out.len = 0;
  add_status_and_common(c, status, close);
  if (retry_after != NULL)
    mock_buf_addf(&s->out, "Retry-After: %s\r\n", retry_after);
  mock_buf_addf(&s->out, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                s->payload.len);
  mock_buf_add(&s->out, s->payload.p, s->payload.len);
  write_out(c, 0);
  if (close) conn_shutdown(c);
}

static void send_payload(conn_t *c, int status, bool close) {
  send_payload_ra(c, status, close, NULL);
}

static void send_error(conn_t *c, int status, const char *msg, bool close) {
  mock_reply_error(&c->srv->payload, status, msg);
  send_payload_ra(c, status, close, c->srv->opt.retry_after);
}

static void send_stats(conn_t *c) {
  mock_reply_stats(&c->srv->payload, &c->srv->n);
  send_payload(c, 200, false);
}

/* ---- completions and streams -------------------------------------------- */

static void send_completion(conn_t *c) {
  server_t *s = c->srv;
  mock_reply_completion(&s->payload, &c->resp, &c->req, &s->content);
  send_payload(c, 200, c->resp.close);
}

static void stream_headers(conn_t *c) {
  mock_resp_t *r = &c->resp;
  add_status_and_common(c, 200, r->close || !c->keep_alive);
  mock_buf_adds(&c->srv->out, "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
  r->headers_sent = true;
}

static bool at_reset_point(const mock_resp_t *r) {
  return r->reset_after >= 0 && r->reset_after <= r->chunks && r->stage == r->reset_after;
}

/* Writes the next piece of a stream: one SSE event per HTTP chunk per uv_write. */
static void stream_step(conn_t *c) {
  server_t *s = c->srv;
  mock_resp_t *r = &c->resp;
  if (at_reset_point(r) && r->headers_sent) {
    s->n.resets++;
    conn_close(c, true);
    return;
  }
  s->out.len = 0;
  if (!r->headers_sent) stream_headers(c);
  unsigned flags = WB_STREAM;
  if (!at_reset_point(r)) {
    if (mock_reply_event(&s->payload, r, &c->req)) {
      mock_buf_addf(&s->out, "%zx\r\n", s->payload.len);
      mock_buf_add(&s->out, s->payload.p, s->payload.len);
      mock_buf_adds(&s->out, "\r\n");
    } else {
      mock_buf_adds(&s->out, "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n");
      flags |= WB_FINAL;
    }
    r->stage++;
  }
  write_out(c, flags);
}

static void resp_clear(conn_t *c) {
  json_decref(c->resp.json);
  c->resp.json = NULL;
  c->busy = false;
}

static void process_input(conn_t *c);
static void conn_read_start(conn_t *c);

/* Parses whatever was buffered while a response was pending; reads again. */
static void conn_resume(conn_t *c) {
  if (c->closing || c->shutting) return;
  process_input(c);
  if (!c->reading && !c->busy && !c->closing && !c->shutting) conn_read_start(c);
}

static void on_stream_timer(uv_timer_t *t) { stream_step(t->data); }

static void stream_after_write(conn_t *c, bool final) {
  mock_resp_t *r = &c->resp;
  if (final) {
    bool close = r->close || !c->keep_alive;
    resp_clear(c);
    if (close) conn_shutdown(c);
    else conn_resume(c);
    return;
  }
  bool content_next = r->stage > 0 && r->stage < r->chunks && !at_reset_point(r);
  if (content_next && r->interval_ms > 0)
    uv_timer_start(&c->timer, on_stream_timer, (uint64_t)r->interval_ms, 0);
  else
    stream_step(c);
}

/* Sends the planned response (after any latency). Streams leave c->busy set. */
static void resp_start(conn_t *c) {
  mock_resp_t *r = &c->resp;
  if (r->reset_after == -2) { /* a reset before any response byte */
    c->srv->n.resets++;
    resp_clear(c);
    conn_close(c, true);
    return;
  }
  if (r->status != 200) {
    send_error(c, r->status, r->msg, r->close);
    resp_clear(c);
  } else if (!r->stream) {
    send_completion(c);
    resp_clear(c);
  } else {
    c->srv->n.streams++;
    c->busy = true;
    stream_step(c);
  }
}

static void on_latency(uv_timer_t *t) {
  conn_t *c = t->data;
  c->busy = false;
  resp_start(c);
  if (!c->busy) conn_resume(c);
}

/* ---- dispatch ----------------------------------------------------------- */

static void handle_completion(conn_t *c) {
  server_t *s = c->srv;
  mock_resp_t *r = &c->resp;
  s->n.requests++;
  mock_resp_init(r, &s->opt.dflt, ++s->next_id, c->req.body.len);
  if (!mock_resp_apply_headers(r, &c->req)) {
    /* status 400 and msg already set */
  } else if (r->status != 200) {
    s->n.errors++;
  } else if (s->opt.error_rate > 0 &&
             (double)(rng_next(&s->rng) >> 11) * 0x1.0p-53 < s->opt.error_rate) {
    s->n.errors++;
    r->status = s->opt.error_status;
    snprintf(r->msg, sizeof r->msg, "mock error (error rate)");
  } else if (!mock_resp_parse_body(r, &c->req)) {
    r->status = 400;
  }
  if (r->latency_ms > 0) {
    c->busy = true;
    uv_timer_start(&c->timer, on_latency, (uint64_t)r->latency_ms, 0);
    return;
  }
  resp_start(c);
}

static bool path_is(const mock_req_t *q, const char *path) {
  size_t n = q->url_len;
  const char *mark = memchr(q->head.p, '?', n);
  if (mark) n = (size_t)(mark - q->head.p);
  return n == strlen(path) && !memcmp(q->head.p, path, n);
}

/* Whether the path (before any query) ends with suffix: Azure OpenAI's
 * /openai/deployments/D/chat/completions is a chat completion too. */
static bool path_ends(const mock_req_t *q, const char *suffix) {
  size_t n = q->url_len, sl = strlen(suffix);
  const char *mark = memchr(q->head.p, '?', n);
  if (mark) n = (size_t)(mark - q->head.p);
  return n >= sl && !memcmp(q->head.p + n - sl, suffix, sl);
}

/* Answers one complete request; may leave c->busy set for a delayed response. */
static void handle_request(conn_t *c) {
  server_t *s = c->srv;
  const mock_req_t *q = &c->req;
  int method = llhttp_get_method(&c->parser);
  s->n.http_requests++;
  c->req.method = llhttp_method_name(method);
  c->keep_alive = llhttp_should_keep_alive(&c->parser);
  c->http10 = c->parser.http_major == 1 && c->parser.http_minor == 0;
  if (method == HTTP_POST &&
      (path_ends(q, "/chat/completions") || path_ends(q, "/completions"))) {
    handle_completion(c);
  } else if (method == HTTP_GET && path_is(q, "/health")) {
    s->payload.len = 0;
    mock_buf_adds(&s->payload, "{\"status\":\"ok\"}");
    send_payload(c, 200, false);
  } else if (method == HTTP_GET && path_is(q, "/stats")) {
    send_stats(c);
  } else {
    send_error(c, 404, "no such endpoint", false);
  }
}

/* ---- llhttp callbacks --------------------------------------------------- */

static int on_message_begin(llhttp_t *p) {
  conn_t *c = p->data;
  c->req.head.len = 0;
  c->req.body.len = 0;
  c->req.nhdrs = 0;
  c->req.url_len = 0;
  c->last_cb = 0;
  c->req_error = 0;
  return 0;
}

static bool head_add(conn_t *c, const char *at, size_t n, bool lower) {
  mock_buf_t *head = &c->req.head;
  if (head->len + n > MAX_HEAD_BYTES) {
    c->req_error = 431;
    return false;
  }
  mock_buf_reserve(head, n);
  char *d = head->p + head->len;
  if (lower) {
    for (size_t i = 0; i < n; i++)
      d[i] = (at[i] >= 'A' && at[i] <= 'Z') ? (char)(at[i] + 32) : at[i];
  } else {
    memcpy(d, at, n);
  }
  head->len += n;
  return true;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  conn_t *c = p->data;
  if (!head_add(c, at, n, false)) return HPE_USER;
  c->req.url_len += (uint32_t)n;
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  conn_t *c = p->data;
  mock_req_t *q = &c->req;
  if (c->last_cb != 1) {
    if (q->nhdrs == q->hdrs_cap) {
      q->hdrs_cap = q->hdrs_cap ? q->hdrs_cap * 2 : 32;
      q->hdrs = mock_xrealloc(q->hdrs, q->hdrs_cap * sizeof *q->hdrs);
    }
    mock_hdr_t *h = &q->hdrs[q->nhdrs++];
    h->name_off = (uint32_t)q->head.len;
    h->name_len = h->val_len = 0;
    h->val_off = h->name_off;
    c->last_cb = 1;
  }
  if (!head_add(c, at, n, true)) return HPE_USER;
  q->hdrs[q->nhdrs - 1].name_len += (uint32_t)n;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  conn_t *c = p->data;
  mock_hdr_t *h = &c->req.hdrs[c->req.nhdrs - 1];
  if (c->last_cb != 2) {
    h->val_off = (uint32_t)c->req.head.len;
    c->last_cb = 2;
  }
  if (!head_add(c, at, n, false)) return HPE_USER;
  h->val_len += (uint32_t)n;
  return 0;
}

static int on_header_value_complete(llhttp_t *p) {
  mock_req_t *q = &((conn_t *)p->data)->req;
  mock_hdr_t *h = &q->hdrs[q->nhdrs - 1];
  const char *v = q->head.p + h->val_off;
  size_t n = h->val_len;
  mock_trim(&v, &n);
  h->val_off = (uint32_t)(v - q->head.p);
  h->val_len = (uint32_t)n;
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  conn_t *c = p->data;
  const mock_req_t *q = &c->req;
  if (p->content_length == 0 && !(p->flags & F_CHUNKED)) return 0;
  for (size_t i = 0; i < q->nhdrs; i++) {
    const mock_hdr_t *h = &q->hdrs[i];
    if (h->name_len == 6 && !memcmp(q->head.p + h->name_off, "expect", 6) &&
        h->val_len == 12 && !strncasecmp(q->head.p + h->val_off, "100-continue", 12)) {
      mock_buf_t *out = &c->srv->out;
      out->len = 0;
      mock_buf_adds(out, "HTTP/1.1 100 Continue\r\n\r\n");
      write_out(c, 0);
    }
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  conn_t *c = p->data;
  if (c->req.body.len + n > MAX_BODY_BYTES) {
    c->req_error = 413;
    return HPE_USER;
  }
  mock_buf_add(&c->req.body, at, n);
  return 0;
}

static int on_message_complete(llhttp_t *p) { return HPE_PAUSED; }

static void init_settings(llhttp_settings_t *st) {
  llhttp_settings_init(st);
  st->on_message_begin = on_message_begin;
  st->on_url = on_url;
  st->on_header_field = on_header_field;
  st->on_header_value = on_header_value;
  st->on_header_value_complete = on_header_value_complete;
  st->on_headers_complete = on_headers_complete;
  st->on_body = on_body;
  st->on_message_complete = on_message_complete;
}

/* ---- reading ------------------------------------------------------------ */

static void parse_failed(conn_t *c, llhttp_errno_t e) {
  int status = c->req_error ? c->req_error : 400;
  const char *msg = status == 431 ? "request headers too large"
                  : status == 413 ? "request body too large"
                  : e == HPE_PAUSED_UPGRADE ? "upgrade not supported"
                  : llhttp_get_error_reason(&c->parser);
  c->keep_alive = false;
  c->http10 = false;
  send_error(c, status, msg ? msg : "bad request", true);
}

static void process_input(conn_t *c) {
  while (c->in_start < c->in_len && !c->busy && !c->shutting && !c->closing) {
    const char *p = c->in + c->in_start;
    llhttp_errno_t e = llhttp_execute(&c->parser, p, c->in_len - c->in_start);
    if (e == HPE_OK) {
      c->in_start = c->in_len;
    } else if (e == HPE_PAUSED) {
      c->in_start += (size_t)(llhttp_get_error_pos(&c->parser) - p);
      handle_request(c);
      llhttp_resume(&c->parser);
    } else {
      parse_failed(c, e);
    }
  }
  if (c->in_start == c->in_len || c->shutting) c->in_start = c->in_len = 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  conn_t *c = h->data;
  if (c->in_start > 0) {
    memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
    c->in_len -= c->in_start;
    c->in_start = 0;
  }
  buf->base = c->in + c->in_len;
  buf->len = IN_CAP - c->in_len;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = st->data;
  if (n > 0) {
    c->in_len += (size_t)n;
    if (c->shutting) c->in_start = c->in_len = 0;
    else if (!c->busy) process_input(c);
  } else if (n == UV_ENOBUFS) {
    uv_read_stop(st);
    c->reading = false;
  } else if (n == UV_EOF && !c->busy) {
    c->reading = false;
    conn_shutdown(c);
  } else if (n < 0) {
    conn_close(c, false);
  }
}

static void conn_read_start(conn_t *c) {
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = true;
  else conn_close(c, false);
}

/* ---- server ------------------------------------------------------------- */

static void on_connection(uv_stream_t *l, int status) {
  server_t *s = l->data;
  if (status < 0 || s->stopping) return;
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->srv = s;
  c->tcp.data = c->timer.data = c;
  c->pending_closes = 2;
  uv_tcp_init(&s->loop, &c->tcp);
  uv_timer_init(&s->loop, &c->timer);
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->n.open++;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c, false);
    return;
  }
  s->n.accepted++;
  uv_tcp_nodelay(&c->tcp, 1);
  llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
  c->parser.data = c;
  conn_read_start(c);
}

static void server_stop(server_t *s) {
  if (s->stopping) return;
  s->stopping = true;
  uv_close((uv_handle_t *)&s->listener, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  for (conn_t *c = s->conns; c; c = c->next) conn_close(c, false);
}

static void on_signal(uv_signal_t *h, int signum) { server_stop(h->data); }

static int server_listen(server_t *s) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
  struct addrinfo *ai = NULL;
  char port[16];
  snprintf(port, sizeof port, "%d", s->opt.port);
  int rc = getaddrinfo(s->opt.host, port, &hints, &ai);
  if (rc != 0) {
    fprintf(stderr, "mock-llm: %s: %s\n", s->opt.host, gai_strerror(rc));
    return -1;
  }
  rc = uv_tcp_bind(&s->listener, ai->ai_addr, 0);
  freeaddrinfo(ai);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
  if (rc != 0) {
    fprintf(stderr, "mock-llm: listen on %s:%d: %s\n", s->opt.host, s->opt.port,
            uv_strerror(rc));
    return -1;
  }
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
  int bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
  bool v6 = strchr(s->opt.host, ':') != NULL;
  printf("listening on %s%s%s:%d\n", v6 ? "[" : "", s->opt.host, v6 ? "]" : "", bound);
  fflush(stdout);
  return 0;
}

static void server_init(server_t *s) {
  init_settings(&s->settings);
  s->rng = s->opt.seed ? s->opt.seed : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
  s->rng = (s->rng ^ 0x9E3779B97F4A7C15ULL) | 1;
  mock_reply_content(&s->content, s->opt.name);
  uv_tcp_init(&s->loop, &s->listener);
  s->listener.data = s;
  uv_signal_init(&s->loop, &s->sigterm);
  uv_signal_init(&s->loop, &s->sigint);
  s->sigterm.data = s->sigint.data = s;
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_signal_start(&s->sigint, on_signal, SIGINT);
}

/* Runs the mock until SIGTERM or SIGINT; exit status 0 on a clean stop. */
int main(int argc, char **argv) {
  server_t *s = calloc(1, sizeof *s);
  if (!s || mock_parse_args(&s->opt, argc, argv) != 0) {
    free(s);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&s->loop);
  server_init(s);
  bool listening = server_listen(s) == 0;
  if (!listening) server_stop(s);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&s->loop);
  if (rc != 0) fprintf(stderr, "mock-llm: uv_loop_close: %s\n", uv_strerror(rc));
  free(s->payload.p);
  free(s->out.p);
  free(s->content.p);
  free(s);
  if (!listening) return 1;
  return rc == 0 ? 0 : 1;
}
