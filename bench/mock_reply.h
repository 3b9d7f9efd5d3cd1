/*
 * mock_reply.h — what mock-llm answers, without the HTTP around it: the JSON bodies
 * (completion, SSE event, error, stats, echo) and the plan of a completion request
 * (server defaults, then x-mock-* header overrides, then the request body).
 *
 * Pure code: no sockets, no event loop, no llhttp. mock-llm.c parses requests into
 * a mock_req_t, adds the status line, headers and chunked framing around the
 * bodies built here, and writes them. Builders write into growable buffers and
 * abort the process when memory runs out (a test tool has no better answer).
 */
#ifndef MOCK_REPLY_H
#define MOCK_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum {
  MOCK_MAX_MS = 3600000,      /* upper bound of any delay, option or override */
  MOCK_MAX_CHUNKS = 1000000,  /* upper bound of chunks and reset-after */
};

/* A growable byte buffer. Zero-initialise; the owner frees p. */
typedef struct {
  char *p;
  size_t len, cap;
} mock_buf_t;

/* A request header: offsets and lengths into mock_req_t.head. */
typedef struct {
  uint32_t name_off, name_len, val_off, val_len;
} mock_hdr_t;

/*
 * One parsed request, owned by its connection and reused for the next one. head
 * holds the URL (its first url_len bytes), then each header's name (lower-cased)
 * and value (trimmed of spaces and tabs), as hdrs[0..nhdrs) describe. method is a
 * static string ("POST"). The URL and header values may hold any octet.
 */
typedef struct {
  mock_buf_t head;
  mock_hdr_t *hdrs;
  size_t nhdrs, hdrs_cap;
  uint32_t url_len;
  mock_buf_t body;
  const char *method;
} mock_req_t;

/* Server-wide defaults of a completion, from the command line. */
typedef struct {
  int latency_ms, chunks, interval_ms, reset_after;
} mock_defaults_t;

/* What /stats reports. */
typedef struct {
  uint64_t requests, http_requests, streams, accepted, open, errors, resets;
} mock_counters_t;

/* The response planned for the current completion request, and a stream's progress. */
typedef struct {
  json_t *json;          /* parsed request body (owned) or NULL */
  const char *model;     /* points into json or a literal */
  size_t model_len;
  int status;            /* 200, or the status of an error JSON */
  char msg[160];         /* error message when status != 200 */
  bool stream, echo, close;
  bool digest;           /* x-mock-digest: add the request body's length and SHA-256 */
  int chunks, interval_ms, reset_after, latency_ms;
  int stage;             /* stream: 0..chunks-1 content, chunks usage, chunks+1 [DONE] */
  bool headers_sent;
  uint64_t id;
  long long created;
  int prompt_tokens;
} mock_resp_t;

/* ---- buffers ---- */

/* realloc that aborts the process on failure: never returns NULL. */
void *mock_xrealloc(void *p, size_t n);

/* Makes room for at least extra more bytes after b->len. */
void mock_buf_reserve(mock_buf_t *b, size_t extra);

/* Appends n bytes from p. */
void mock_buf_add(mock_buf_t *b, const void *p, size_t n);

/* Appends the NUL-terminated string s (without its NUL). */
void mock_buf_adds(mock_buf_t *b, const char *s);

/* Appends printf-style formatted text (without a NUL). */
__attribute__((format(printf, 2, 3)))
void mock_buf_addf(mock_buf_t *b, const char *fmt, ...);

/* Appends s[0..n) as a quoted JSON string; s must be valid UTF-8. */
void mock_buf_add_jstr(mock_buf_t *b, const char *s, size_t n);

/* Narrows [*p, *p + *n) to leave out leading and trailing spaces and tabs. */
void mock_trim(const char **p, size_t *n);

/* ---- planning a completion ---- */

/*
 * Resets r to the defaults d for a new request: status 200, model "mock-default",
 * the given id, created now, prompt_tokens estimated from body_len. Releases the
 * JSON of the previous request, so r must be zeroed or previously initialised.
 */
void mock_resp_init(mock_resp_t *r, const mock_defaults_t *d, uint64_t id, size_t body_len);

/*
 * Applies the request's x-mock-* headers to r. On an unknown key or a bad value
 * sets status 400 and msg and returns false. Otherwise returns true, and when an
 * x-mock-status asked for an error, sets msg for it.
 */
bool mock_resp_apply_headers(mock_resp_t *r, const mock_req_t *q);

/*
 * Parses the request body into r->json (owned by r) and takes model and stream
 * from it. Returns false with r->msg set when the body is not a JSON object or
 * those members have the wrong type; the caller sets the status.
 */
bool mock_resp_parse_body(mock_resp_t *r, const mock_req_t *q);

/* ---- bodies ---- */

/* Appends the JSON string "mock answer from NAME", the content of every answer. */
void mock_reply_content(mock_buf_t *b, const char *name);

/* Replaces b's contents with an OpenAI-style error object for status and msg. */
void mock_reply_error(mock_buf_t *b, int status, const char *msg);

/* Replaces b's contents with the /stats object for n. */
void mock_reply_stats(mock_buf_t *b, const mock_counters_t *n);

/*
 * Replaces b's contents with the chat.completion object for r, whose message is
 * content (a JSON string, from mock_reply_content); with r->echo, adds
 * "mock_echo" with q's method, path, headers and r's parsed body; with r->digest,
 * "mock_body": {"bytes": N, "sha256": HEX} of the body's bytes as they arrived.
 */
void mock_reply_completion(mock_buf_t *b, const mock_resp_t *r, const mock_req_t *q,
                           const mock_buf_t *content);

/*
 * Replaces b's contents with the SSE event ("data: ...\n\n") for r->stage: a
 * content delta before r->chunks, the usage event at r->chunks (with the echo, as
 * above). Returns false, with b empty, past the usage event: time for [DONE].
 */
bool mock_reply_event(mock_buf_t *b, const mock_resp_t *r, const mock_req_t *q);

#endif
