/*
 * http.h — HTTP/1.1 helpers shared by the client and upstream legs: a compact
 * header store filled from llhttp callbacks, hop-by-hop rules, and switchyard's
 * own error responses (OpenAI-style JSON bodies).
 */
#ifndef SY_HTTP_H
#define SY_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "router/buf.h"

typedef struct sy_hdr_s {
  uint32_t name_off, name_len, val_off, val_len;
} sy_hdr_t;

/*
 * The start line's variable part (URL or status text) and the headers of one
 * message, stored by offset in one growing buffer: llhttp may deliver a token in
 * several pieces, and offsets survive the buffer's reallocation.
 */
typedef struct sy_head_s {
  char *buf;
  size_t len, cap;
  size_t limit; /* total bytes allowed; beyond it appends fail */
  sy_hdr_t *hdrs;
  size_t nhdrs, hcap;
  uint32_t line_off, line_len; /* URL (requests) or reason phrase (responses) */
  int last;                    /* 0: nothing yet, 1: in a field, 2: in a value */
} sy_head_t;

void sy_head_init(sy_head_t *h, size_t limit);
/* Forgets the contents, keeps the memory for the next message. */
void sy_head_reset(sy_head_t *h);
void sy_head_free(sy_head_t *h);

/* Appenders for llhttp's on_url/on_status, on_header_field, on_header_value.
 * Each returns 0, or -1 if the limit would be passed or memory ran out. */
int sy_head_line(sy_head_t *h, const char *p, size_t n);
int sy_head_field(sy_head_t *h, const char *p, size_t n);
int sy_head_value(sy_head_t *h, const char *p, size_t n);

/* Ends the token being appended (on_url_complete, on_status_complete,
 * on_header_field_complete, on_header_value_complete): NUL-terminates it. */
int sy_head_done(sy_head_t *h);

/* Value of the first header named `lname` (ASCII, lower case), or NULL. */
const char *sy_head_get(const sy_head_t *h, const char *lname, size_t *len);

static inline const char *sy_head_name(const sy_head_t *h, size_t i) {
  return h->buf + h->hdrs[i].name_off;
}
static inline const char *sy_head_val(const sy_head_t *h, size_t i) {
  return h->buf + h->hdrs[i].val_off;
}

/* Case-insensitive comparison of a token with a lower-case literal. */
int sy_token_eq(const char *p, size_t n, const char *lower);

/* True for headers that describe one connection, not the message (RFC 9110 §7.6.1). */
int sy_http_hop_by_hop(const char *name, size_t n);

/* True if `name` is one of the comma-separated tokens of `list` (a Connection
 * header value): such headers are hop-by-hop too and must not be forwarded. */
int sy_http_listed_in(const char *list, size_t len, const char *name, size_t n);

/* The standard reason phrase of a status code ("Unknown" if none). */
const char *sy_http_reason(int status);

/*
 * A complete error response: status line, Content-Type: application/json,
 * Content-Length, the trace id header (if trace_id is not NULL), Connection: close
 * unless keepalive, and the body
 *   {"error":{"message":MESSAGE,"type":TYPE,"code":CODE}}
 * Returns a new buffer (one reference) or NULL when out of memory.
 */
sy_buf_t *sy_http_error(int status, const char *type, const char *code, const char *message,
                        const char *trace_id, int keepalive);
/* The same with `Retry-After: retry_after_s` (none if 0). */
sy_buf_t *sy_http_error_retry(int status, const char *type, const char *code, const char *message,
                              const char *trace_id, int keepalive, unsigned retry_after_s);

/* Appends n bytes to *bp, growing it (only while it has a single reference).
 * Returns 0, or -1 when out of memory (then *bp is unchanged). */
int sy_buf_append(sy_buf_t **bp, const char *p, size_t n);
int sy_buf_appends(sy_buf_t **bp, const char *s);

/*
 * Writes what it can of bufs[0..*n) right now (uv_try_write) when nothing is queued
 * on the stream. On return *n is the number of buffers still to write, moved to
 * the front of bufs (the first possibly advanced). Returns 0, or a libuv
 * error if the stream failed. A write done here costs no write request, no
 * callback and, unlike uv_write, no epoll_ctl to re-arm the stream.
 */
int sy__try_write(uv_stream_t *s, uv_buf_t *bufs, unsigned *n);

#endif
