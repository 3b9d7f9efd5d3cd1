/*
 * llm_text.h — the output text of an LLM response, and a cheap comparison of two.
 *
 * Shadow traffic (router/shadow.c) compares a shadow variant's answer with the
 * primary's. Both bodies are captured as they arrive, de-chunked and bounded
 * (sy_llm_capture_t); when both are complete, the output text is extracted from
 * each — an OpenAI chat or completion object, or an SSE stream of chunks — and the
 * two texts are compared: exactly, and by the Jaccard similarity of their word sets.
 *
 * Pure code: no I/O, no event loop. It allocates only what it returns (or owns, for
 * a capture), and never fails on any input bytes: what it cannot read is reported.
 */
#ifndef SY_LLM_TEXT_H
#define SY_LLM_TEXT_H

#include <stddef.h>

/* The most of a response body kept for the comparison. */
#define SY_LLM_CAPTURE_MAX (256 * 1024)

/* A bounded copy of a body as it arrives. */
typedef struct sy_llm_capture_s {
  char *buf;
  size_t len, cap;
  size_t max;    /* bytes kept at most */
  int truncated; /* bytes were dropped (beyond max, or memory ran out) */
} sy_llm_capture_t;

/* Prepares an empty capture that keeps at most `max` bytes (allocates nothing yet). */
void sy_llm_capture_init(sy_llm_capture_t *c, size_t max);
/* Appends p[0, n): what does not fit under max (or in memory) is dropped and the
 * capture marked truncated. */
void sy_llm_capture_add(sy_llm_capture_t *c, const char *p, size_t n);
/* Frees the buffer; the capture is empty again (same max). */
void sy_llm_capture_free(sy_llm_capture_t *c);

/*
 * Extracts the output text of a response body:
 *   a JSON object: choices[0].message.content (a string, or an array of parts whose
 *     "text" strings are joined; null counts as empty: e.g. a tool call), else
 *     choices[0].text (completions);
 *   otherwise an SSE stream: every `data:` line holding a JSON object contributes its
 *     choices[0].delta.content, else choices[0].text; `[DONE]` and lines that are
 *     not JSON are skipped (so a stream cut short yields its complete events).
 * Returns 0 and stores a new NUL-terminated string (the caller frees it) in *out and
 * its length in *outlen; returns -1 if the body holds no such object (not an LLM
 * response, an error body, a truncated JSON object) or memory ran out.
 */
int sy_llm_text_extract(const char *body, size_t len, char **out, size_t *outlen);

/* Characters of s[0, n) as UTF-8 code points: every byte but continuation bytes
 * (10xxxxxx) starts one, so invalid text still gets a count, never more than n. */
size_t sy_llm_text_chars(const char *s, size_t n);

/*
 * Jaccard similarity |A ∩ B| / |A ∪ B| of the word sets of a and b, in [0, 1]. A
 * word is a maximal run of ASCII letters and digits and non-ASCII bytes (so UTF-8
 * letters stay inside words), compared lower-cased (ASCII) by a 64-bit hash. Two
 * texts without words are identical (1); one without words is 0 from the other.
 * Returns -1 when memory runs out.
 */
double sy_llm_text_similarity(const char *a, size_t an, const char *b, size_t bn);

#endif
