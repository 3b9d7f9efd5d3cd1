/*
 * api_parse.h — the request bodies of switchyard's own feedback API (proto/API.md):
 *
 *   POST /switchyard/v1/feedback  {trace_id, type, value?, comment?, name?, client_latency_ms?}
 *   POST /switchyard/v1/outcome   {trace_id, metric, value, client_latency_ms?}
 *
 * checked against their schema and turned into plain C data. Pure: no I/O, no event
 * loop, no global state; the only allocation is the comment's copy. The caller
 * (router/api.c) reads the body with jansson, authenticates, and looks the trace up.
 */
#ifndef SY_API_PARSE_H
#define SY_API_PARSE_H

#include <stddef.h>

#include <jansson.h>

/* Which call the body belongs to. */
typedef enum { SY_API_FEEDBACK = 0, SY_API_OUTCOME } sy_api_kind_t;

/* Longest custom feedback name / outcome metric name, in bytes (NUL not included). */
#define SY_API_NAME_MAX 64
/* Longest feedback comment, in bytes. */
#define SY_API_COMMENT_MAX 4096

typedef struct sy_api_body_s {
  char trace_id[33];              /* 32 lower-case hex digits, not all zeros, and a NUL */
  int fb_type;                    /* feedback: SY_FB_* (router/config.h); outcome: -1 */
  char name[SY_API_NAME_MAX + 1]; /* custom feedback name / outcome metric; "" if none */
  double value;                   /* finite; true/false are 1/0 */
  int has_value;                  /* the body had "value" */
  double client_ms;               /* client_latency_ms: finite and >= 0, or NAN if absent */
  char *comment;                  /* feedback comment (malloc'd, raw: not scrubbed), or NULL */
} sy_api_body_t;

/*
 * Checks body (any JSON value; NULL is "not an object") against the schema of the
 * call `kind` and fills *out. Returns NULL on success, or a one-line message for a
 * 400: a static string, or why (whylen bytes, NUL-terminated, truncated to fit) for
 * messages that name a field or a type. On failure *out holds nothing to free.
 *
 * Accepted, as proto/API.md says:
 *   - only the call's own fields (an unknown one is refused by name);
 *   - trace_id: a string of 32 hex digits, either case, not all zeros (stored
 *     lower-case);
 *   - value and client_latency_ms: a finite number, or true/false (1/0);
 *     client_latency_ms >= 0;
 *   - outcome: metric a non-empty string of at most SY_API_NAME_MAX bytes, and a value;
 *   - feedback: type one of sy_feedback_type_names; thumbs, rating and edit need a
 *     value, the others default it to 1 (the event happened); a thumbs value is 1, 0
 *     or -1, an edit value >= 0; name a string of at most SY_API_NAME_MAX bytes,
 *     required by custom; comment a string of at most SY_API_COMMENT_MAX bytes. The
 *     comment is copied as it is: the caller scrubs it (stats/privacy.h) or drops
 *     it, as the trace's consent scope says. If that copy runs out of memory the
 *     comment is left out (comment NULL) and the body is still accepted.
 */
const char *sy_api_parse_body(sy_api_kind_t kind, const json_t *body, sy_api_body_t *out,
                              char *why, size_t whylen);

/* Frees what a successful sy_api_parse_body left in *b (the comment); b may be NULL. */
void sy_api_body_free(sy_api_body_t *b);

/*
 * The length of the longest prefix of the NUL-terminated s that is valid UTF-8 (no
 * overlong forms, surrogates or code points past U+10FFFF: what jansson accepts).
 * For jansson's error text (json_error_t.text), which quotes the input near the
 * error and may cut a character in two: json_pack refuses such a string, and the
 * 400 response that should carry it would not be sent.
 */
int sy_api_utf8_prefix(const char *s);

#endif
