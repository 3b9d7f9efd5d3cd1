/*
 * test_llm_text.c — output text extraction and comparison (router/llm_text.c):
 * chat and completion objects, content parts, SSE streams (split events, [DONE],
 * usage-only chunks, garbage lines, CRLF), bodies that are not LLM answers, the
 * bounded capture, character counts, and the Jaccard similarity of word sets.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "router/llm_text.h"
#include "tests/unit/check.h"

/* Extracts from a NUL-terminated body; returns the text (caller frees) or NULL. */
static char *text_of(const char *body) {
  char *out = NULL;
  size_t n = 0;
  if (sy_llm_text_extract(body, strlen(body), &out, &n) < 0)
    return NULL;
  CHECK(out != NULL && strlen(out) == n);
  return out;
}

static void expect_text(const char *body, const char *want) {
  char *got = text_of(body);
  CHECK_MSG(got != NULL && strcmp(got, want) == 0, "body %s:\n  got  %s\n  want %s", body,
            got ? got : "(none)", want);
  free(got);
}

static void expect_none(const char *body) {
  char *got = text_of(body);
  CHECK_MSG(got == NULL, "body %s: got text %s, wanted none", body, got);
  free(got);
}

static void test_objects(void) {
  expect_text("{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
              "\"content\":\"Hello, world\"}}]}",
              "Hello, world");
  expect_text("  \n{\"choices\":[{\"text\":\"completion text\"}]}", "completion text");
  expect_text("{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[]}}]}", "");
  expect_text("{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"a \"},"
              "{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"b\"}]}}]}",
              "a b");
  expect_text("{\"choices\":[{\"message\":{\"content\":\"\\u00e9t\\u00e9 \\\"q\\\"\"}},"
              "{\"message\":{\"content\":\"second\"}}]}",
              "\xc3\xa9t\xc3\xa9 \"q\"");
  expect_none("{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}");
  expect_none("{\"choices\":[]}");
  expect_none("{\"choices\":[{\"message\":{\"content\":\"cut");
  expect_none("{\"choices\":[{\"message\":{\"content\":5}}]}");
  expect_none("");
  expect_none("not json at all");
  expect_none("[1,2,3]");
}

static void test_sse(void) {
  const char *stream =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"tok0 "
      "\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok1 \"}}]}\n\n"
      ": a comment\n"
      "event: message\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"
      "data: [DONE]\n\n";
  expect_text(stream, "tok0 tok1 ");
  expect_text("data:{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n"
              "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\r\n",
              "ab");
  expect_text("data: {\"choices\":[{\"text\":\"x\"}]}\n\ndata: {broken\n\n"
              "data: {\"choices\":[{\"text\":\"y\"}]}",
              "xy");
  /* A stream cut inside its last event keeps the events that arrived whole. */
  expect_text("data: {\"choices\":[{\"delta\":{\"content\":\"whole\"}}]}\n\n"
              "data: {\"choices\":[{\"delta\":{\"cont",
              "whole");
  /* Only a role, or only usage: an answer with no text. */
  expect_text("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: [DONE]\n\n", "");
  expect_none("data: [DONE]\n\n");
  expect_none("event: ping\n\n: nothing\n");
}

static void test_capture(void) {
  sy_llm_capture_t c;
  sy_llm_capture_init(&c, 10);
  sy_llm_capture_add(&c, "hello", 5);
  sy_llm_capture_add(&c, NULL, 0);
  CHECK(c.len == 5 && !c.truncated && memcmp(c.buf, "hello", 5) == 0);
  sy_llm_capture_add(&c, " world!", 7);
  CHECK(c.len == 10 && c.truncated && memcmp(c.buf, "hello worl", 10) == 0);
  sy_llm_capture_add(&c, "more", 4);
  CHECK(c.len == 10);
  sy_llm_capture_free(&c);
  CHECK(c.buf == NULL && c.len == 0 && !c.truncated && c.max == 10);

  /* Growth across many small pieces up to the real cap. */
  sy_llm_capture_init(&c, SY_LLM_CAPTURE_MAX);
  char piece[1000];
  memset(piece, 'x', sizeof piece);
  for (int i = 0; i < 300; i++)
    sy_llm_capture_add(&c, piece, sizeof piece);
  CHECK(c.len == SY_LLM_CAPTURE_MAX && c.truncated && c.cap == SY_LLM_CAPTURE_MAX);
  sy_llm_capture_free(&c);
}

static double sim(const char *a, const char *b) {
  return sy_llm_text_similarity(a, strlen(a), b, strlen(b));
}

static void test_similarity(void) {
  CHECK(sim("mock answer from a", "mock answer from a") == 1);
  /* {mock, answer, from, a} vs {mock, answer, from, b}: 3 shared of 5. */
  CHECK(fabs(sim("mock answer from a", "mock answer from b") - 0.6) < 1e-12);
  CHECK(sim("Hello, WORLD!", "hello world") == 1); /* case and punctuation do not count */
  CHECK(sim("the the the cat", "cat the") == 1);   /* sets, not bags */
  CHECK(sim("alpha beta", "gamma delta") == 0);
  CHECK(sim("", "") == 1 && sim("...", "!!") == 1);
  CHECK(sim("", "word") == 0 && sim("word", "") == 0);
  CHECK(fabs(sim("caf\xc3\xa9 ouvert", "caf\xc3\xa9 ferm\xc3\xa9") - 1.0 / 3) < 1e-12);
  CHECK(fabs(sim("a1 b2 c3 d4", "a1 b2") - 0.5) < 1e-12);
}

static void test_chars(void) {
  CHECK(sy_llm_text_chars("", 0) == 0);
  CHECK(sy_llm_text_chars("abc", 3) == 3);
  CHECK(sy_llm_text_chars("\xc3\xa9t\xc3\xa9", 5) == 3);
  CHECK(sy_llm_text_chars("\xe2\x82\xac\xf0\x9f\x98\x80", 7) == 2);
  CHECK(sy_llm_text_chars("\xff\x80", 2) == 1); /* a stray continuation byte is not counted */
}

int main(void) {
  test_objects();
  test_sse();
  test_capture();
  test_similarity();
  test_chars();
  return CHECK_DONE();
}
