/*
 * mock_reply.c — mock-llm's response bodies and request plans; see mock_reply.h.
 *
 * Everything here formats into caller-owned buffers, so the request path costs no
 * allocation beyond jansson's parse of the body (and the echo, when asked for).
 * The content string is built once per server; ids, models and token counts are
 * formatted straight into the output rather than through a jansson tree.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "mock_reply.h"

/* ---- buffers ------------------------------------------------------------ */

void *mock_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    fprintf(stderr, "mock-llm: out of memory\n");
    abort();
  }
  return q;
}

void mock_buf_reserve(mock_buf_t *b, size_t extra) {
  if (b->len + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->len + extra) cap *= 2;
  b->p = mock_xrealloc(b->p, cap);
  b->cap = cap;
}

void mock_buf_add(mock_buf_t *b, const void *p, size_t n) {
  mock_buf_reserve(b, n);
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

void mock_buf_adds(mock_buf_t *b, const char *s) { mock_buf_add(b, s, strlen(s)); }

void mock_buf_addf(mock_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->p ? b->p + b->len : NULL, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= b->cap - b->len) {
    mock_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
  }
  b->len += (size_t)n;
}

void mock_buf_add_jstr(mock_buf_t *b, const char *s, size_t n) {
  mock_buf_reserve(b, n + 2);
  b->p[b->len++] = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      char e[2] = {'\\', (char)ch};
      mock_buf_add(b, e, 2);
    } else if (ch < 0x20) {
      mock_buf_addf(b, "\\u%04x", ch);
    } else {
      mock_buf_add(b, &s[i], 1);
    }
  }
  mock_buf_add(b, "\"", 1);
}

static int buf_dump_cb(const char *p, size_t n, void *data) {
  mock_buf_add(data, p, n);
  return 0;
}

void mock_trim(const char **p, size_t *n) {
  while (*n && (**p == ' ' || **p == '\t')) (*p)++, (*n)--;
  while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t')) (*n)--;
}

/* ---- planning a completion ---------------------------------------------- */

void mock_resp_init(mock_resp_t *r, const mock_defaults_t *d, uint64_t id, size_t body_len) {
  json_decref(r->json);
  memset(r, 0, sizeof *r);
  r->status = 200;
  r->model = "mock-default";
  r->model_len = strlen(r->model);
  r->latency_ms = d->latency_ms;
  r->chunks = d->chunks;
  r->interval_ms = d->interval_ms;
  r->reset_after = d->reset_after;
  r->id = id;
  r->created = (long long)time(NULL);
  r->prompt_tokens = (int)((body_len + 3) / 4);
}

static bool parse_int(const char *p, size_t n, long lo, long hi, int *out) {
  char tmp[24];
  mock_trim(&p, &n);
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
  mock_trim(&p, &n);
  if ((n == 1 && *p == '1') || (n == 4 && !strncasecmp(p, "true", 4)) ||
      (n == 3 && !strncasecmp(p, "yes", 3)))
    return *out = true;
  if ((n == 1 && *p == '0') || (n == 5 && !strncasecmp(p, "false", 5)) ||
      (n == 2 && !strncasecmp(p, "no", 2)))
    return !(*out = false);
  return false;
}

/* Applies one x-mock-<key> header to r; false if the key or value is bad. */
static bool apply_override(mock_resp_t *r, const char *key, size_t kn, const char *v,
                           size_t vn) {
#define KEY(k) (kn == sizeof(k) - 1 && !memcmp(key, k, kn))
  if (KEY("latency-ms")) return parse_int(v, vn, 0, MOCK_MAX_MS, &r->latency_ms);
  if (KEY("chunks")) return parse_int(v, vn, 0, MOCK_MAX_CHUNKS, &r->chunks);
  if (KEY("interval-ms")) return parse_int(v, vn, 0, MOCK_MAX_MS, &r->interval_ms);
  if (KEY("reset-after")) return parse_int(v, vn, -2, MOCK_MAX_CHUNKS, &r->reset_after);
  if (KEY("status"))  /* 200 = normal answer; 4xx/5xx = error JSON */
    return parse_int(v, vn, 200, 599, &r->status) && (r->status == 200 || r->status >= 400);
  if (KEY("close")) return parse_bool(v, vn, &r->close);
  if (KEY("echo")) return parse_bool(v, vn, &r->echo);
  if (KEY("digest")) return parse_bool(v, vn, &r->digest);
  return false;
#undef KEY
}

bool mock_resp_apply_headers(mock_resp_t *r, const mock_req_t *q) {
  for (size_t i = 0; i < q->nhdrs; i++) {
    const mock_hdr_t *h = &q->hdrs[i];
    const char *name = q->head.p + h->name_off;
    if (h->name_len <= 7 || memcmp(name, "x-mock-", 7)) continue;
    if (!apply_override(r, name + 7, h->name_len - 7, q->head.p + h->val_off, h->val_len)) {
      snprintf(r->msg, sizeof r->msg, "bad header %.*s", (int)h->name_len, name);
      r->status = 400;
      return false;
    }
  }
  if (r->status != 200)
    snprintf(r->msg, sizeof r->msg, "mock error (x-mock-status %d)", r->status);
  return true;
}

bool mock_resp_parse_body(mock_resp_t *r, const mock_req_t *q) {
  json_error_t err;
  r->json = json_loadb(q->body.p ? q->body.p : "", q->body.len, 0, &err);
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

/* ---- plain bodies ------------------------------------------------------- */

void mock_reply_content(mock_buf_t *b, const char *name) {
  char text[96];
  snprintf(text, sizeof text, "mock answer from %s", name);
  mock_buf_add_jstr(b, text, strlen(text));
}

void mock_reply_error(mock_buf_t *b, int status, const char *msg) {
  const char *type = status >= 500 ? "server_error"
                   : status == 429 ? "rate_limit_error" : "invalid_request_error";
  b->len = 0;
  mock_buf_adds(b, "{\"error\":{\"message\":");
  mock_buf_add_jstr(b, msg, strlen(msg));
  mock_buf_addf(b, ",\"type\":\"%s\",\"code\":%d}}", type, status);
}

void mock_reply_stats(mock_buf_t *b, const mock_counters_t *n) {
  b->len = 0;
  mock_buf_addf(b,
                "{\"requests\":%" PRIu64 ",\"streams\":%" PRIu64
                ",\"connections_accepted\":%" PRIu64 ",\"connections_open\":%" PRIu64
                ",\"http_requests\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"resets\":%" PRIu64 "}",
                n->requests, n->streams, n->accepted, n->open, n->http_requests, n->errors,
                n->resets);
}

/* ---- echo --------------------------------------------------------------- */

/* jansson rejects invalid UTF-8; header values may hold any octet. */
static json_t *jstring_lossy(const char *p, size_t n) {
  json_t *v = json_stringn(p, n);
  if (v) return v;
  char *tmp = mock_xrealloc(NULL, n ? n : 1);
  for (size_t i = 0; i < n; i++) tmp[i] = (unsigned char)p[i] < 0x80 ? p[i] : '?';
  v = json_stringn(tmp, n);
  free(tmp);
  return v;
}

/* The request's headers as an object; repeated names are joined with ", ". */
static json_t *echo_headers(const mock_req_t *q) {
  json_t *o = json_object();
  for (size_t i = 0; i < q->nhdrs; i++) {
    const mock_hdr_t *h = &q->hdrs[i];
    const char *name = q->head.p + h->name_off;
    json_t *v = jstring_lossy(q->head.p + h->val_off, h->val_len);
    json_t *old = json_object_getn(o, name, h->name_len);
    if (old && v) {
      mock_buf_t j = {0};
      mock_buf_add(&j, json_string_value(old), json_string_length(old));
      mock_buf_add(&j, ", ", 2);
      mock_buf_add(&j, json_string_value(v), json_string_length(v));
      json_decref(v);
      v = json_stringn(j.p, j.len);
      free(j.p);
    }
    if (v) json_object_setn_new(o, name, h->name_len, v);
  }
  return o;
}

/* Replaces the final '}' of the JSON object in b with ,"mock_echo":{...}}. */
static void add_echo(mock_buf_t *b, const mock_resp_t *r, const mock_req_t *q) {
  json_t *o = json_object();
  json_object_set(o, "body", r->json ? r->json : json_null());
  json_object_set_new(o, "headers", echo_headers(q));
  json_object_set_new(o, "method", json_string(q->method));
  json_object_set_new(o, "path", jstring_lossy(q->head.p, q->url_len));
  b->len--;
  mock_buf_adds(b, ",\"mock_echo\":");
  json_dump_callback(o, buf_dump_cb, b, JSON_COMPACT);
  mock_buf_add(b, "}", 1);
  json_decref(o);
}

/* Replaces the final '}' of the JSON object in b with ,"mock_body":{...}}: what a
 * proxy delivered, byte for byte, without echoing megabytes back. */
static void add_digest(mock_buf_t *b, const mock_req_t *q) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  if (!EVP_Digest(q->body.p ? q->body.p : "", q->body.len, md, &mdlen, EVP_sha256(), NULL))
    mdlen = 0;
  b->len--;
  mock_buf_addf(b, ",\"mock_body\":{\"bytes\":%zu,\"sha256\":\"", q->body.len);
  for (unsigned i = 0; i < mdlen; i++)
    mock_buf_addf(b, "%02x", md[i]);
  mock_buf_adds(b, "\"}}");
}

/* ---- completions -------------------------------------------------------- */

static void add_id_model(mock_buf_t *b, const mock_resp_t *r, const char *object) {
  mock_buf_addf(b, "{\"id\":\"chatcmpl-mock-%" PRIu64 "\",\"object\":\"%s\",\"created\":%lld,"
                "\"model\":", r->id, object, r->created);
  mock_buf_add_jstr(b, r->model, r->model_len);
}

static void add_usage(mock_buf_t *b, const mock_resp_t *r) {
  mock_buf_addf(b, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                "\"total_tokens\":%d}}", r->prompt_tokens, r->chunks,
                r->prompt_tokens + r->chunks);
}

void mock_reply_completion(mock_buf_t *b, const mock_resp_t *r, const mock_req_t *q,
                           const mock_buf_t *content) {
  b->len = 0;
  add_id_model(b, r, "chat.completion");
  mock_buf_adds(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
  mock_buf_add(b, content->p, content->len);
  mock_buf_adds(b, "},\"finish_reason\":\"stop\"}],");
  add_usage(b, r);
  if (r->echo) add_echo(b, r, q);
  if (r->digest) add_digest(b, q);
}

bool mock_reply_event(mock_buf_t *b, const mock_resp_t *r, const mock_req_t *q) {
  b->len = 0;
  if (r->stage > r->chunks) return false;
  mock_buf_adds(b, "data: ");
  add_id_model(b, r, "chat.completion.chunk");
  if (r->stage < r->chunks) {
    mock_buf_addf(b, ",\"choices\":[{\"index\":0,\"delta\":{%s\"content\":\"tok%d \"},"
                  "\"finish_reason\":%s}]}", r->stage == 0 ? "\"role\":\"assistant\"," : "",
                  r->stage, r->stage == r->chunks - 1 ? "\"stop\"" : "null");
  } else {
    mock_buf_adds(b, ",\"choices\":[],");
    add_usage(b, r);
    if (r->echo) add_echo(b, r, q);
  }
  mock_buf_adds(b, "\n\n");
  return true;
}
