/*
 * fuzz_llm_text.c — libFuzzer target for the output text extraction and comparison
 * of shadow traffic (router/llm_text.h).
 *
 * The target aborts when:
 *   - an extracted text is not NUL-terminated at its length, holds a NUL, or is
 *     longer than the body (escapes and framing only ever shrink it);
 *   - a body captured in pieces (the first byte of the input picks the piece size)
 *     differs from the body, or, under a cap, is not its prefix with `truncated` set
 *     exactly when bytes were dropped; a capture that kept everything extracts the
 *     same text as the whole body;
 *   - the similarity of two texts (the two halves of the input and of the extracted
 *     text) leaves [0, 1], is not symmetric, or a text is not 1 to itself;
 *   - a character count exceeds the byte count.
 * Build with libFuzzer: clang -fsanitize=fuzzer,address,undefined with
 * router/llm_text.c and -ljansson; without it: meson test --suite fuzz.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/llm_text.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void check_similarity(const char *a, size_t an, const char *b, size_t bn) {
  double ab = sy_llm_text_similarity(a, an, b, bn);
  double ba = sy_llm_text_similarity(b, bn, a, an);
  REQUIRE(ab >= 0 && ab <= 1 && ab == ba);
  REQUIRE(sy_llm_text_similarity(a, an, a, an) == 1);
  REQUIRE(sy_llm_text_chars(a, an) <= an);
}

/* Extracts; checks the text's shape. Returns it (caller frees) or NULL. */
static char *extract(const char *body, size_t n, size_t *len) {
  char *out = NULL;
  if (sy_llm_text_extract(body, n, &out, len) < 0) {
    REQUIRE(out == NULL);
    return NULL;
  }
  REQUIRE(out != NULL && out[*len] == '\0' && strlen(out) == *len && *len <= n);
  return out;
}

/* Captures body in pieces of `piece` bytes under cap `max`; checks the result. */
static void check_capture(const char *body, size_t n, size_t piece, size_t max, const char *text,
                          size_t tlen) {
  sy_llm_capture_t c;
  sy_llm_capture_init(&c, max);
  for (size_t off = 0; off < n; off += piece)
    sy_llm_capture_add(&c, body + off, n - off < piece ? n - off : piece);
  size_t kept = n < max ? n : max;
  REQUIRE(c.len == kept && c.truncated == (n > max));
  REQUIRE(kept == 0 || memcmp(c.buf, body, kept) == 0);
  if (!c.truncated) {
    size_t len2 = 0;
    char *t2 = extract(c.buf, c.len, &len2);
    REQUIRE((t2 == NULL) == (text == NULL));
    REQUIRE(t2 == NULL || (len2 == tlen && memcmp(t2, text, tlen) == 0));
    free(t2);
  }
  sy_llm_capture_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *body = size > 0 ? (const char *)data : ""; /* libFuzzer may pass NULL */
  size_t tlen = 0;
  char *text = extract(body, size, &tlen);
  size_t piece = size > 0 ? (size_t)data[0] % 17 + 1 : 1;
  check_capture(body, size, piece, SY_LLM_CAPTURE_MAX, text, tlen);
  check_capture(body, size, piece, size / 2, text, tlen);
  check_similarity(body, size / 2, body + size / 2, size - size / 2);
  if (text != NULL)
    check_similarity(text, tlen / 2, text + tlen / 2, tlen - tlen / 2);
  free(text);
  return 0;
}
