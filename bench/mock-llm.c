/*
 * mock-llm.c — a mock OpenAI-compatible LLM backend for tests, benchmarks and the
 * quickstart. One libuv loop, llhttp for requests, jansson for request bodies.
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
 * Endpoints: POST /v1/chat/completions and POST /v1/completions (same behaviour),
 * GET /health, GET /stats. Per-request overrides come from x-mock-* headers; see
 * usage() for the list. /stats counts: requests (completion requests), streams,
 * connections_accepted, connections_open (includes the connection asking),
 * http_requests (every request), errors (injected), resets.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
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

enum {
  IN_CAP = 16384,              /* per-connection input buffer */
  MAX_HEAD_BYTES = 65536,      /* request line + headers, else 431 */
  MAX_BODY_BYTES = 16 << 20,   /* else 413 */
  WBUF_MIN = 2048,             /* smallest write buffer allocated */
  WBUF_KEEP = 4,               /* write buffers kept per connection */
  MAX_MS = 3600000,            /* upper bound of any delay override */
  MAX_CHUNKS = 1000000,
};

typedef struct {
  char *p;
  size_t len, cap;
} sbuf_t;

typedef struct {
  const char *host;
  int port;
  int latency_ms, chunks, interval_ms, error_status, reset_after;
  double error_rate;
  uint64_t seed;
  const char *name;
} opts_t;

typedef struct {
  uint64_t requests, http_requests, streams, accepted, open, errors, resets;
} counters_t;

typedef struct conn_s conn_t;

typedef struct {
  uv_loop_t loop;
  opts_t opt;
  uv_tcp_t listener;
  uv_signal_t sigterm, sigint;
  llhttp_settings_t settings;
  counters_t n;
  uint64_t rng, next_id;
  conn_t *conns;        /* every connection not yet freed */
  sbuf_t payload, out;  /* scratch for formatting responses */
  sbuf_t content;       /* the JSON string "mock answer from NAME" */
  bool stopping;
} server_t;

typedef struct {
  uint32_t name_off, name_len, val_off, val_len;
} hdr_t;

typedef struct wbuf_s {
  uv_write_t req;
  conn_t *conn;
  struct wbuf_s *next;
  size_t cap, len;
  unsigned flags;
  char data[];
} wbuf_t;

enum { WB_STREAM = 1, WB_FINAL = 2 };

/* The response being produced for the current request. */
typedef struct {
  json_t *json;          /* parsed request body (owned) or NULL */
  const char *model;     /* points into json or a literal */
  size_t model_len;
  int status;            /* 200, or the status of an error JSON */
  char msg[160];         /* error message when status != 200 */
  bool stream, echo, close;
  int chunks, interval_ms, reset_after, latency_ms;
  int stage;             /* stream: 0..chunks-1 content, chunks usage, chunks+1 [DONE] */
  bool headers_sent;
  uint64_t id;
  long long created;
  int prompt_tokens;
} resp_t;

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
  sbuf_t head;           /* url, then header names and values */
  hdr_t *hdrs;
  size_t nhdrs, hdrs_cap;
  uint32_t url_len;
  sbuf_t body;
  resp_t resp;
  wbuf_t *free_wb;
  int n_free;
  size_t in_start, in_len;
  char in[IN_CAP];
};

/* ---- small buffers ------------------------------------------------------ */

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    fprintf(stderr, "mock-llm: out of memory\n");
    abort();
  }
  return q;
}

static void sb_reserve(sbuf_t *b, size_t extra) {
  if (b->len + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->len + extra) cap *= 2;
  b->p = xrealloc(b->p, cap);
  b->cap = cap;
}

static void sb_add(sbuf_t *b, const void *p, size_t n) {
  sb_reserve(b, n);
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void sb_adds(sbuf_t *b, const char *s) { sb_add(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3)))
static void sb_addf(sbuf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->p ? b->p + b->len : NULL, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= b->cap - b->len) {
    sb_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
  }
  b->len += (size_t)n;
}

/* Appends s as a quoted JSON string. s is valid UTF-8 (from jansson or --name). */
static void sb_add_jstr(sbuf_t *b, const char *s, size_t n) {
  sb_reserve(b, n + 2);
  b->p[b->len++] = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      char e[2] = {'\\', (char)ch};
      sb_add(b, e, 2);
    } else if (ch < 0x20) {
      sb_addf(b, "\\u%04x", ch);
    } else {
      sb_add(b, &s[i], 1);
    }
  }
  sb_add(b, "\"", 1);
}

static int sb_dump_cb(const char *p, size_t n, void *data) {
  sb_add(data, p, n);
  return 0;
}

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
  free(c->head.p);
  free(c->body.p);
  free(c->hdrs);
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
  w = xrealloc(NULL, sizeof *w + cap);
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
  sbuf_t *out = &c->srv->out;
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
  sb_addf(&s->out, "HTTP/1.1 %d %s\r\nx-mock-name: %s\r\n", status, reason(status),
          s->opt.name);
  if (close) sb_adds(&s->out, "Connection: close\r\n");
  else if (c->http10) sb_adds(&s->out, "Connection: keep-alive\r\n");
}

/* Sends the `payload` scratch buffer as a complete JSON response. */
static void send_payload(conn_t *c, int status, bool close) {
  server_t *s = c->srv;
  close = close || !c->keep_alive;
  s->out.len = 0;
  add_status_and_common(c, status, close);
  sb_addf(&s->out, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
          s->payload.len);
  sb_add(&s->out, s->payload.p, s->payload.len);
  write_out(c, 0);
  if (close) conn_shutdown(c);
}

static void add_error_json(sbuf_t *b, int status, const char *msg) {
  const char *type = status >= 500 ? "server_error"
                   : status == 429 ? "rate_limit_error" : "invalid_request_error";
  b->len = 0;
  sb_adds(b, "{\"error\":{\"message\":");
  sb_add_jstr(b, msg, strlen(msg));
  sb_addf(b, ",\"type\":\"%s\",\"code\":%d}}", type, status);
}

static void send_error(conn_t *c, int status, const char *msg, bool close) {
  add_error_json(&c->srv->payload, status, msg);
  send_payload(c, status, close);
}

static void send_stats(conn_t *c) {
  server_t *s = c->srv;
  s->payload.len = 0;
  sb_addf(&s->payload,
          "{\"requests\":%" PRIu64 ",\"streams\":%" PRIu64
          ",\"connections_accepted\":%" PRIu64 ",\"connections_open\":%" PRIu64
          ",\"http_requests\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"resets\":%" PRIu64 "}",
          s->n.requests, s->n.streams, s->n.accepted, s->n.open, s->n.http_requests,
          s->n.errors, s->n.resets);
  send_payload(c, 200, false);
}

/* ---- echo --------------------------------------------------------------- */

/* jansson rejects invalid UTF-8; header values may hold any octet. */
static json_t *jstring_lossy(const char *p, size_t n) {
  json_t *v = json_stringn(p, n);
  if (v) return v;
  char *tmp = xrealloc(NULL, n ? n : 1);
  for (size_t i = 0; i < n; i++) tmp[i] = (unsigned char)p[i] < 0x80 ? p[i] : '?';
  v = json_stringn(tmp, n);
  free(tmp);
  return v;
}

static json_t *echo_headers(const conn_t *c) {
  json_t *o = json_object();
  for (size_t i = 0; i < c->nhdrs; i++) {
    const hdr_t *h = &c->hdrs[i];
    const char *name = c->head.p + h->name_off;
    json_t *v = jstring_lossy(c->head.p + h->val_off, h->val_len);
    json_t *old = json_object_getn(o, name, h->name_len);
    if (old && v) {
      sbuf_t j = {0};
      sb_add(&j, json_string_value(old), json_string_length(old));
      sb_add(&j, ", ", 2);
      sb_add(&j, json_string_value(v), json_string_length(v));
      json_decref(v);
      v = json_stringn(j.p, j.len);
      free(j.p);
    }
    if (v) json_object_setn_new(o, name, h->name_len, v);
  }
  return o;
}

/* Replaces the final '}' of the JSON object in b with ,"mock_echo":{...}}. */
static void add_echo(conn_t *c, sbuf_t *b) {
  json_t *o = json_object();
  json_object_set(o, "body", c->resp.json ? c->resp.json : json_null());
  json_object_set_new(o, "headers", echo_headers(c));
  json_object_set_new(o, "method",
                      json_string(llhttp_method_name(llhttp_get_method(&c->parser))));
  json_object_set_new(o, "path", jstring_lossy(c->head.p, c->url_len));
  b->len--;
  sb_adds(b, ",\"mock_echo\":");
  json_dump_callback(o, sb_dump_cb, b, JSON_COMPACT);
  sb_add(b, "}", 1);
  json_decref(o);
}

/* ---- completions -------------------------------------------------------- */

static void add_id_model(server_t *s, sbuf_t *b, const resp_t *r, const char *object) {
  sb_addf(b, "{\"id\":\"chatcmpl-mock-%" PRIu64 "\",\"object\":\"%s\",\"created\":%lld,"
          "\"model\":", r->id, object, r->created);
  sb_add_jstr(b, r->model, r->model_len);
}

static void add_usage(sbuf_t *b, const resp_t *r) {
  sb_addf(b, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
          "\"total_tokens\":%d}}", r->prompt_tokens, r->chunks,
          r->prompt_tokens + r->chunks);
}

static void send_completion(conn_t *c) {
  server_t *s = c->srv;
  resp_t *r = &c->resp;
  sbuf_t *b = &s->payload;
  b->len = 0;
  add_id_model(s, b, r, "chat.completion");
  sb_adds(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
  sb_add(b, s->content.p, s->content.len);
  sb_adds(b, "},\"finish_reason\":\"stop\"}],");
  add_usage(b, r);
  if (r->echo) add_echo(c, b);
  send_payload(c, 200, r->close);
}

/* Formats the SSE event for the current stage into payload; returns false at [DONE]. */
static bool stream_event(conn_t *c) {
  server_t *s = c->srv;
  resp_t *r = &c->resp;
  sbuf_t *b = &s->payload;
  b->len = 0;
  if (r->stage > r->chunks) return false;
  sb_adds(b, "data: ");
  add_id_model(s, b, r, "chat.completion.chunk");
  if (r->stage < r->chunks) {
    sb_addf(b, ",\"choices\":[{\"index\":0,\"delta\":{%s\"content\":\"tok%d \"},"
            "\"finish_reason\":%s}]}", r->stage == 0 ? "\"role\":\"assistant\"," : "",
            r->stage, r->stage == r->chunks - 1 ? "\"stop\"" : "null");
  } else {
    sb_adds(b, ",\"choices\":[],");
    add_usage(b, r);
    if (r->echo) add_echo(c, b);
  }
  sb_adds(b, "\n\n");
  return true;
}

static void stream_headers(conn_t *c) {
  resp_t *r = &c->resp;
  add_status_and_common(c, 200, r->close || !c->keep_alive);
  sb_adds(&c->srv->out, "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
          "Transfer-Encoding: chunked\r\n\r\n");
  r->headers_sent = true;
}

static bool at_reset_point(const resp_t *r) {
  return r->reset_after >= 0 && r->reset_after <= r->chunks && r->stage == r->reset_after;
}

/* Writes the next piece of a stream: one SSE event per HTTP chunk per uv_write. */
static void stream_step(conn_t *c) {
  server_t *s = c->srv;
  resp_t *r = &c->resp;
  if (at_reset_point(r) && r->headers_sent) {
    s->n.resets++;
    conn_close(c, true);
    return;
  }
  s->out.len = 0;
  if (!r->headers_sent) stream_headers(c);
  unsigned flags = WB_STREAM;
  if (!at_reset_point(r)) {
    if (stream_event(c)) {
      sb_addf(&s->out, "%zx\r\n", s->payload.len);
      sb_add(&s->out, s->payload.p, s->payload.len);
      sb_adds(&s->out, "\r\n");
    } else {
      sb_adds(&s->out, "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n");
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
  resp_t *r = &c->resp;
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
  resp_t *r = &c->resp;
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

/* ---- planning a completion ---------------------------------------------- */

static void trim(const char **p, size_t *n) {
  while (*n && (**p == ' ' || **p == '\t')) (*p)++, (*n)--;
  while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t')) (*n)--;
}

static bool parse_int(const char *p, size_t n, long lo, long hi, int *out) {
  char tmp[24];
  trim(&p, &n);
  if (n == 0 || n >= sizeof tmp) return false;
  memcpy(tmp, p, n);
  tmp[n] = '\0';
  char *end;
  errno = 0;
  long v = strtol(tmp, &end, 10);
  if (errno || *end || v < lo || v > hi) return false;
  *out = (int)v;
  return true;
}

static bool parse_bool(const char *p, size_t n, bool *out) {
  trim(&p, &n);
  if ((n == 1 && *p == '1') || (n == 4 && !strncasecmp(p, "true", 4)) ||
      (n == 3 && !strncasecmp(p, "yes", 3)))
    return *out = true;
  if ((n == 1 && *p == '0') || (n == 5 && !strncasecmp(p, "false", 5)) ||
      (n == 2 && !strncasecmp(p, "no", 2)))
    return !(*out = false);
  return false;
}

/* Applies one x-mock-<key> header to r; false if the key or value is bad. */
static bool apply_override(resp_t *r, const char *key, size_t kn, const char *v, size_t vn) {
#define KEY(k) (kn == sizeof(k) - 1 && !memcmp(key, k, kn))
  if (KEY("latency-ms")) return parse_int(v, vn, 0, MAX_MS, &r->latency_ms);
  if (KEY("chunks")) return parse_int(v, vn, 0, MAX_CHUNKS, &r->chunks);
  if (KEY("interval-ms")) return parse_int(v, vn, 0, MAX_MS, &r->interval_ms);
  if (KEY("reset-after")) return parse_int(v, vn, -1, MAX_CHUNKS, &r->reset_after);
  if (KEY("status"))  /* 200 = normal answer; 4xx/5xx = error JSON */
    return parse_int(v, vn, 200, 599, &r->status) && (r->status == 200 || r->status >= 400);
  if (KEY("close")) return parse_bool(v, vn, &r->close);
  if (KEY("echo")) return parse_bool(v, vn, &r->echo);
  return false;
#undef KEY
}

static bool apply_overrides(conn_t *c) {
  resp_t *r = &c->resp;
  for (size_t i = 0; i < c->nhdrs; i++) {
    const hdr_t *h = &c->hdrs[i];
    const char *name = c->head.p + h->name_off;
    if (h->name_len <= 7 || memcmp(name, "x-mock-", 7)) continue;
    if (!apply_override(r, name + 7, h->name_len - 7, c->head.p + h->val_off, h->val_len)) {
      snprintf(r->msg, sizeof r->msg, "bad header %.*s", (int)h->name_len, name);
      r->status = 400;
      return false;
    }
  }
  if (r->status != 200)
    snprintf(r->msg, sizeof r->msg, "mock error (x-mock-status %d)", r->status);
  return true;
}

static bool parse_body(conn_t *c) {
  resp_t *r = &c->resp;
  json_error_t err;
  r->json = json_loadb(c->body.p ? c->body.p : "", c->body.len, 0, &err);
  if (!r->json || !json_is_object(r->json)) {
    snprintf(r->msg, sizeof r->msg, "request body must be a JSON object%s%.100s",
             r->json ? "" : ": ", r->json ? "" : err.text);
    return false;
  }
  json_t *m = json_object_get(r->json, "model");
  json_t *st = json_object_get(r->json, "stream");
  if (m && !json_is_string(m)) {
    snprintf(r->msg, sizeof r->msg, "'model' must be a string");
    return false;
  }
  if (st && !json_is_boolean(st) && !json_is_null(st)) {
    snprintf(r->msg, sizeof r->msg, "'stream' must be a boolean");
    return false;
  }
  if (m) {
    r->model = json_string_value(m);
    r->model_len = json_string_length(m);
  }
  r->stream = json_is_true(st);
  return true;
}

static void plan_defaults(conn_t *c) {
  server_t *s = c->srv;
  resp_t *r = &c->resp;
  json_decref(r->json);
  memset(r, 0, sizeof *r);
  r->status = 200;
  r->model = "mock-default";
  r->model_len = strlen(r->model);
  r->latency_ms = s->opt.latency_ms;
  r->chunks = s->opt.chunks;
  r->interval_ms = s->opt.interval_ms;
  r->reset_after = s->opt.reset_after;
  r->id = ++s->next_id;
  r->created = (long long)time(NULL);
  r->prompt_tokens = (int)((c->body.len + 3) / 4);
}

static void handle_completion(conn_t *c) {
  server_t *s = c->srv;
  resp_t *r = &c->resp;
  s->n.requests++;
  plan_defaults(c);
  if (!apply_overrides(c)) {
    /* status 400 and msg already set */
  } else if (r->status != 200) {
    s->n.errors++;
  } else if (s->opt.error_rate > 0 &&
             (double)(rng_next(&s->rng) >> 11) * 0x1.0p-53 < s->opt.error_rate) {
    s->n.errors++;
    r->status = s->opt.error_status;
    snprintf(r->msg, sizeof r->msg, "mock error (error rate)");
  } else if (!parse_body(c)) {
    r->status = 400;
  }
  if (r->latency_ms > 0) {
    c->busy = true;
    uv_timer_start(&c->timer, on_latency, (uint64_t)r->latency_ms, 0);
    return;
  }
  resp_start(c);
}

static bool path_is(const conn_t *c, const char *path) {
  size_t n = c->url_len;
  const char *q = memchr(c->head.p, '?', n);
  if (q) n = (size_t)(q - c->head.p);
  return n == strlen(path) && !memcmp(c->head.p, path, n);
}

/* Answers one complete request; may leave c->busy set for a delayed response. */
static void handle_request(conn_t *c) {
  server_t *s = c->srv;
  int method = llhttp_get_method(&c->parser);
  s->n.http_requests++;
  c->keep_alive = llhttp_should_keep_alive(&c->parser);
  c->http10 = c->parser.http_major == 1 && c->parser.http_minor == 0;
  if (method == HTTP_POST &&
      (path_is(c, "/v1/chat/completions") || path_is(c, "/v1/completions"))) {
    handle_completion(c);
  } else if (method == HTTP_GET && path_is(c, "/health")) {
    s->payload.len = 0;
    sb_adds(&s->payload, "{\"status\":\"ok\"}");
    send_payload(c, 200, false);
  } else if (method == HTTP_GET && path_is(c, "/stats")) {
    send_stats(c);
  } else {
    send_error(c, 404, "no such endpoint", false);
  }
}

/* ---- llhttp callbacks --------------------------------------------------- */

static int on_message_begin(llhttp_t *p) {
  conn_t *c = p->data;
  c->head.len = 0;
  c->body.len = 0;
  c->nhdrs = 0;
  c->url_len = 0;
  c->last_cb = 0;
  c->req_error = 0;
  return 0;
}

static bool head_add(conn_t *c, const char *at, size_t n, bool lower) {
  if (c->head.len + n > MAX_HEAD_BYTES) {
    c->req_error = 431;
    return false;
  }
  sb_reserve(&c->head, n);
  char *d = c->head.p + c->head.len;
  if (lower) {
    for (size_t i = 0; i < n; i++)
      d[i] = (at[i] >= 'A' && at[i] <= 'Z') ? (char)(at[i] + 32) : at[i];
  } else {
    memcpy(d, at, n);
  }
  c->head.len += n;
  return true;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  conn_t *c = p->data;
  if (!head_add(c, at, n, false)) return HPE_USER;
  c->url_len += (uint32_t)n;
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  conn_t *c = p->data;
  if (c->last_cb != 1) {
    if (c->nhdrs == c->hdrs_cap) {
      c->hdrs_cap = c->hdrs_cap ? c->hdrs_cap * 2 : 32;
      c->hdrs = xrealloc(c->hdrs, c->hdrs_cap * sizeof *c->hdrs);
    }
    hdr_t *h = &c->hdrs[c->nhdrs++];
    h->name_off = (uint32_t)c->head.len;
    h->name_len = h->val_len = 0;
    h->val_off = h->name_off;
    c->last_cb = 1;
  }
  if (!head_add(c, at, n, true)) return HPE_USER;
  c->hdrs[c->nhdrs - 1].name_len += (uint32_t)n;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  conn_t *c = p->data;
  hdr_t *h = &c->hdrs[c->nhdrs - 1];
  if (c->last_cb != 2) {
    h->val_off = (uint32_t)c->head.len;
    c->last_cb = 2;
  }
  if (!head_add(c, at, n, false)) return HPE_USER;
  h->val_len += (uint32_t)n;
  return 0;
}

static int on_header_value_complete(llhttp_t *p) {
  conn_t *c = p->data;
  hdr_t *h = &c->hdrs[c->nhdrs - 1];
  const char *v = c->head.p + h->val_off;
  size_t n = h->val_len;
  trim(&v, &n);
  h->val_off = (uint32_t)(v - c->head.p);
  h->val_len = (uint32_t)n;
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  conn_t *c = p->data;
  if (p->content_length == 0 && !(p->flags & F_CHUNKED)) return 0;
  for (size_t i = 0; i < c->nhdrs; i++) {
    const hdr_t *h = &c->hdrs[i];
    if (h->name_len == 6 && !memcmp(c->head.p + h->name_off, "expect", 6) &&
        h->val_len == 12 && !strncasecmp(c->head.p + h->val_off, "100-continue", 12)) {
      sbuf_t *out = &c->srv->out;
      out->len = 0;
      sb_adds(out, "HTTP/1.1 100 Continue\r\n\r\n");
      write_out(c, 0);
    }
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  conn_t *c = p->data;
  if (c->body.len + n > MAX_BODY_BYTES) {
    c->req_error = 413;
    return HPE_USER;
  }
  sb_add(&c->body, at, n);
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

/* ---- command line ------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
    "usage: mock-llm --port N [--host 127.0.0.1] [--latency-ms N] [--chunks N]\n"
    "                [--interval-ms N] [--error-rate P] [--error-status N]\n"
    "                [--reset-after K] [--seed S] [--name NAME]\n"
    "endpoints: POST /v1/chat/completions, POST /v1/completions, GET /health, GET /stats\n"
    "per-request headers: x-mock-latency-ms, x-mock-chunks, x-mock-interval-ms,\n"
    "  x-mock-status, x-mock-reset-after, x-mock-close: 1, x-mock-echo: 1\n");
}

static bool opt_long(const char *arg, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  if (errno || end == arg || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

static bool valid_name(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > 64) return false;
  for (size_t i = 0; i < len; i++)
    if (n[i] < 0x21 || n[i] > 0x7e) return false;
  return true;
}

static bool parse_opt(opts_t *o, int ch, const char *arg) {
  long v;
  char *end;
  switch (ch) {
  case 'p': return opt_long(arg, 0, 65535, &v) && ((o->port = (int)v), true);
  case 'H': o->host = arg; return true;
  case 'l': return opt_long(arg, 0, MAX_MS, &v) && ((o->latency_ms = (int)v), true);
  case 'c': return opt_long(arg, 0, MAX_CHUNKS, &v) && ((o->chunks = (int)v), true);
  case 'i': return opt_long(arg, 0, MAX_MS, &v) && ((o->interval_ms = (int)v), true);
  case 's': return opt_long(arg, 400, 599, &v) && ((o->error_status = (int)v), true);
  case 'r': return opt_long(arg, -1, MAX_CHUNKS, &v) && ((o->reset_after = (int)v), true);
  case 'S': return opt_long(arg, 0, LONG_MAX, &v) && ((o->seed = (uint64_t)v), true);
  case 'n': o->name = arg; return valid_name(arg);
  case 'e':
    o->error_rate = strtod(arg, &end);
    return end != arg && !*end && o->error_rate >= 0 && o->error_rate <= 1;
  default: return false;
  }
}

static int parse_args(opts_t *o, int argc, char **argv) {
  static const struct option longs[] = {
    {"port", 1, NULL, 'p'}, {"host", 1, NULL, 'H'}, {"latency-ms", 1, NULL, 'l'},
    {"chunks", 1, NULL, 'c'}, {"interval-ms", 1, NULL, 'i'}, {"error-rate", 1, NULL, 'e'},
    {"error-status", 1, NULL, 's'}, {"reset-after", 1, NULL, 'r'}, {"seed", 1, NULL, 'S'},
    {"name", 1, NULL, 'n'}, {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};
  *o = (opts_t){.host = "127.0.0.1", .port = -1, .chunks = 5, .error_status = 500,
                .reset_after = -1, .name = "mock"};
  int ch, idx = 0;
  while ((ch = getopt_long(argc, argv, "", longs, &idx)) != -1) {
    if (ch == 'h') {
      usage(stdout);
      exit(0);
    }
    if (ch == '?' || !parse_opt(o, ch, optarg)) {
      if (ch != '?') fprintf(stderr, "mock-llm: bad value for --%s: %s\n",
                             longs[idx].name, optarg);
      usage(stderr);
      return -1;
    }
  }
  if (optind < argc || o->port < 0) {
    fprintf(stderr, "mock-llm: %s\n", o->port < 0 ? "--port is required" : "stray argument");
    usage(stderr);
    return -1;
  }
  return 0;
}

static void server_init(server_t *s) {
  init_settings(&s->settings);
  s->rng = s->opt.seed ? s->opt.seed : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
  s->rng = (s->rng ^ 0x9E3779B97F4A7C15ULL) | 1;
  char text[96];
  snprintf(text, sizeof text, "mock answer from %s", s->opt.name);
  sb_add_jstr(&s->content, text, strlen(text));
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
  if (!s || parse_args(&s->opt, argc, argv) != 0) {
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
