/*
 * usage_scan.h — an incremental scanner that picks the token usage, the response
 * id and the model out of an OpenAI-compatible response body while it streams
 * through the proxy.
 *
 * The body is fed in whatever pieces the HTTP parser hands over (a piece may end
 * inside a key, a number, a string or an escape); all state lives in the fixed-size
 * struct, so feeding a body whole or split anywhere gives the same results. It
 * handles both a single JSON object (application/json) and an SSE stream
 * (text/event-stream) of `data: {json}` events: bytes outside a JSON object are
 * separator text, and a line that begins with `data:` always starts a new document,
 * which resynchronises the scanner after a truncated or malformed event. (An SSE
 * event whose JSON spans several `data:` lines is therefore not understood; no
 * LLM backend we know of sends one.)
 *
 * It is a tolerant tokenizer, not a validator: it never fails, never allocates,
 * does no I/O and keeps no pointer into the caller's buffers. Garbage is skipped;
 * it can at worst produce wrong numbers for a body that is not JSON.
 */
#ifndef SY_USAGE_SCAN_H
#define SY_USAGE_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* Size of the id and model buffers, NUL included. */
#define SY_USAGE_STR_MAX 80
/* Objects and arrays nested deeper than this are skipped (depth still counted). */
#define SY_USAGE_MAX_DEPTH 8
/* Longest key remembered; longer keys are "some other key". */
#define SY_USAGE_KEY_MAX 24

typedef struct sy_usage_scan_s {
  /* ---- private state: use the functions below ---- */
  uint64_t num;                        /* digits of a usage number being read */
  uint32_t depth;                      /* open objects and arrays */
  uint32_t cp;                         /* \uXXXX code point being read */
  uint8_t mode;                        /* lexical mode (text, string, escape, ...) */
  uint8_t sink;                        /* where string bytes go (none, key, id, model) */
  uint8_t pos;                         /* place in the current container */
  uint8_t line;                        /* progress matching "data:" at a line start */
  uint8_t num_key;                     /* which count the number is for */
  uint8_t num_ok;                      /* 0 once the number is not a plain integer */
  uint8_t hex_n;                       /* hex digits of \uXXXX read */
  uint8_t klen;                        /* bytes in kbuf; SY_USAGE_KEY_MAX + 1 = too long */
  uint8_t id_len, model_len;           /* bytes in id / model */
  uint8_t flags;                       /* id / model taken, id / model full */
  uint8_t kind[SY_USAGE_MAX_DEPTH];    /* per level: object? value of "usage"? */
  uint8_t key[SY_USAGE_MAX_DEPTH];     /* per level: class of the current member's key */
  char kbuf[SY_USAGE_KEY_MAX];         /* the key being read */

  /* ---- results: read them at any time; they only ever get filled in ---- */
  long long prompt_tokens;     /* -1 until seen */
  long long completion_tokens; /* -1 until seen */
  /*
   * The first "id" string value seen as a top-level member of a JSON object, ""
   * if none. Simple escapes and \uXXXX (BMP, not surrogates or NUL, which become
   * '?') are decoded; a value longer than 79 bytes is cut at a UTF-8 character
   * boundary and stays NUL-terminated. Filled in progressively as bytes arrive.
   */
  char id[SY_USAGE_STR_MAX];
  char model[SY_USAGE_STR_MAX]; /* the first top-level "model" string value; as id */
  /*
   * Top-level JSON objects begun: 1 for a JSON body, one per `data: {...}` event of an
   * SSE stream (`data: [DONE]` is not one). For a stream cut before its final usage
   * chunk, the chunks that did arrive are the only measure of what was produced.
   */
  long long documents;
} sy_usage_scan_t;

/* Prepares *s for a new body: no results yet (counts -1, strings ""). */
void sy_usage_scan_init(sy_usage_scan_t *s);

/*
 * Feeds the next n bytes of the de-chunked body (p may be NULL when n is 0).
 * Never fails; garbage is skipped.
 *
 * prompt_tokens and completion_tokens take the values of those members of an
 * object that is the value of a "usage" member (at any depth up to
 * SY_USAGE_MAX_DEPTH); the last value seen wins, since SSE streams may repeat
 * usage. Only non-negative integers that fit a long long count: "usage": null,
 * strings, fractions, exponents and negative numbers are ignored. A number is
 * taken when the byte after it arrives (a JSON number always has one: ',' or '}').
 */
void sy_usage_scan_feed(sy_usage_scan_t *s, const char *p, size_t n);

#endif
