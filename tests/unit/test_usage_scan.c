/*
 * test_usage_scan.c — the streaming usage/id/model scanner (stats/usage_scan.h):
 * JSON completions and SSE streams as real backends and our mock send them, with
 * whitespace variations, nested ids, "usage" inside strings, escapes, non-integer
 * counts, truncated ids and resynchronisation at "data:" lines; every document is
 * also fed split at every position and byte by byte, and must give the same
 * results. Random and mutated buffers check that garbage never crashes and that
 * splitting never changes the result. Prints ns/byte over a 1 MB SSE stream.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stats/usage_scan.h"
#include "tests/unit/check.h"

typedef struct {
  const char *name;
  const char *doc;
  long long prompt;
  long long completion;
  const char *id;
  const char *model;
} case_t;

static void scan_whole(sy_usage_scan_t *s, const char *d, size_t n) {
  sy_usage_scan_init(s);
  sy_usage_scan_feed(s, d, n);
}

static int same_results(const sy_usage_scan_t *a, const sy_usage_scan_t *b) {
  return a->prompt_tokens == b->prompt_tokens && a->completion_tokens == b->completion_tokens &&
         strcmp(a->id, b->id) == 0 && strcmp(a->model, b->model) == 0 &&
         a->documents == b->documents;
}

/* The results are sane whatever the input: strings terminated, counts >= -1. */
static int sane(const sy_usage_scan_t *s) {
  return memchr(s->id, '\0', sizeof s->id) != NULL &&
         memchr(s->model, '\0', sizeof s->model) != NULL && s->prompt_tokens >= -1 &&
         s->completion_tokens >= -1;
}

/* Feeds d split at every position into two pieces; returns how many differ from ref. */
static size_t split_mismatches(const char *d, size_t n, const sy_usage_scan_t *ref,
                               size_t *first_bad) {
  size_t bad = 0;
  for (size_t k = 0; k <= n; k++) {
    sy_usage_scan_t s;
    sy_usage_scan_init(&s);
    sy_usage_scan_feed(&s, d, k);
    sy_usage_scan_feed(&s, NULL, 0);
    sy_usage_scan_feed(&s, d + k, n - k);
    if (!same_results(&s, ref) && bad++ == 0) *first_bad = k;
  }
  return bad;
}

static void scan_bytewise(sy_usage_scan_t *s, const char *d, size_t n) {
  sy_usage_scan_init(s);
  for (size_t i = 0; i < n; i++) sy_usage_scan_feed(s, d + i, 1);
}

static void check_case(const case_t *c) {
  size_t n = strlen(c->doc), first_bad = 0;
  sy_usage_scan_t whole, bytes;
  scan_whole(&whole, c->doc, n);
  CHECK_MSG(whole.prompt_tokens == c->prompt, "%s: prompt_tokens %lld, want %lld", c->name,
            whole.prompt_tokens, c->prompt);
  CHECK_MSG(whole.completion_tokens == c->completion, "%s: completion_tokens %lld, want %lld",
            c->name, whole.completion_tokens, c->completion);
  CHECK_MSG(strcmp(whole.id, c->id) == 0, "%s: id '%s', want '%s'", c->name, whole.id, c->id);
  CHECK_MSG(strcmp(whole.model, c->model) == 0, "%s: model '%s', want '%s'", c->name,
            whole.model, c->model);
  size_t bad = split_mismatches(c->doc, n, &whole, &first_bad);
  CHECK_MSG(bad == 0, "%s: %zu of %zu splits differ, first at %zu", c->name, bad, n + 1,
            first_bad);
  scan_bytewise(&bytes, c->doc, n);
  CHECK_MSG(same_results(&bytes, &whole), "%s: byte-by-byte differs", c->name);
}

/* ---- documents ---------------------------------------------------------- */

#define SSE_HEAD "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\"," \
                 "\"created\":1700000000,\"model\":\"gpt-4o-mini\","

static const case_t cases[] = {
    {"json completion",
     "{\"id\":\"chatcmpl-123\",\"object\":\"chat.completion\",\"created\":1700000000,"
     "\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
     "\"assistant\",\"content\":\"Hello there\"},\"finish_reason\":\"stop\"}],\"usage\":{"
     "\"prompt_tokens\":12,\"completion_tokens\":34,\"total_tokens\":46,"
     "\"prompt_tokens_details\":{\"cached_tokens\":0}}}",
     12, 34, "chatcmpl-123", "gpt-4o-2024-08-06"},
    {"sse usage last, null before",
     SSE_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
     "\"finish_reason\":null}],\"usage\":null}\n\n"
     SSE_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],"
     "\"usage\":null}\n\n"
     SSE_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
     "\"usage\":null}\n\n"
     SSE_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,"
     "\"total_tokens\":11}}\n\n"
     "data: [DONE]\n\n",
     9, 2, "chatcmpl-abc", "gpt-4o-mini"},
    {"sse repeated usage, last wins; first model wins",
     "data: {\"id\":\"r1\",\"model\":\"m-first\",\"usage\":{\"prompt_tokens\":5,"
     "\"completion_tokens\":1}}\n\n"
     "data: {\"id\":\"r2\",\"model\":\"m-second\",\"usage\":{\"prompt_tokens\":6,"
     "\"completion_tokens\":2}}\n\n"
     "data: {\"id\":\"r3\",\"usage\":{\"completion_tokens\":7,\"prompt_tokens\":8}}\n\n"
     "data: [DONE]\n\n",
     8, 7, "r1", "m-first"},
    {"mock backend stream",
     "data: {\"id\":\"chatcmpl-mock-7\",\"object\":\"chat.completion.chunk\",\"created\":"
     "1700000000,\"model\":\"mock-default\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
     "\"assistant\",\"content\":\"tok0 \"},\"finish_reason\":null}]}\n\n"
     "data: {\"id\":\"chatcmpl-mock-7\",\"object\":\"chat.completion.chunk\",\"created\":"
     "1700000000,\"model\":\"mock-default\",\"choices\":[{\"index\":0,\"delta\":{"
     "\"content\":\"tok1 \"},\"finish_reason\":\"stop\"}]}\n\n"
     "data: {\"id\":\"chatcmpl-mock-7\",\"object\":\"chat.completion.chunk\",\"created\":"
     "1700000000,\"model\":\"mock-default\",\"choices\":[],\"usage\":{\"prompt_tokens\":"
     "25,\"completion_tokens\":2,\"total_tokens\":27}}\n\n",
     25, 2, "chatcmpl-mock-7", "mock-default"},
    {"pretty json, CRLF and tabs",
     "\r\n{\r\n  \"id\" :\t\"resp-1\" ,\r\n  \"model\"\n:\n\"llama-3\",\r\n  \"usage\" : {"
     "\r\n\t\"prompt_tokens\" :  7 ,\n\t\"completion_tokens\"\t:\t8\r\n  }\r\n}\r\n",
     7, 8, "resp-1", "llama-3"},
    {"sse without space, CRLF, comments and event lines",
     ": ping\r\n\r\nevent: message\r\ndata:{\"id\":\"x1\",\"model\":\"m\",\"usage\":null}"
     "\r\n\r\n: keep-alive {x}\r\n"
     "data:{ \"id\" : \"x2\" , \"usage\" : { \"prompt_tokens\" : 3 , "
     "\"completion_tokens\" : 4 } }\r\n\r\ndata:[DONE]\r\n\r\n",
     3, 4, "x1", "m"},
    {"nested ids before the top-level one",
     "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
     "\"tool_calls\":[{\"id\":\"call_nested\",\"type\":\"function\",\"function\":{\"name\":"
     "\"f\",\"arguments\":\"{\\\"id\\\":\\\"in-args\\\"}\"}}]}}],\"id\":\"chatcmpl-top\","
     "\"model\":\"gpt-4o\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}",
     1, 2, "chatcmpl-top", "gpt-4o"},
    {"nested ids after the top-level one",
     "{\"id\":\"chatcmpl-top\",\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":"
     "\"call_1\",\"model\":\"inner\"}]}}],\"model\":\"outer\"}",
     -1, -1, "chatcmpl-top", "outer"},
    {"only nested ids",
     "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"call_1\"}]}}],"
     "\"data\":{\"id\":\"x\",\"model\":\"y\"}}",
     -1, -1, "", ""},
    {"usage inside a string, then the real one",
     "{\"id\":\"c7\",\"model\":\"m\",\"choices\":[{\"message\":{\"content\":\"the "
     "\\\"usage\\\": {\\\"prompt_tokens\\\": 999}\"}}],\"usage\":{\"prompt_tokens\":5,"
     "\"completion_tokens\":6}}",
     5, 6, "c7", "m"},
    {"usage only inside strings",
     "{\"id\":\"c7b\",\"choices\":[{\"message\":{\"content\":\"the \\\"usage\\\": "
     "{\\\"prompt_tokens\\\": 999, \\\"completion_tokens\\\": 998}\"}}],"
     "\"note\":\"usage\",\"x\":[\"usage\",{\"prompt_tokens\":3}]}",
     -1, -1, "c7b", ""},
    {"usage text in an sse delta",
     "data: {\"id\":\"s1\",\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\":{"
     "\\\"prompt_tokens\\\":1}\"}}]}\n\n"
     "data: {\"id\":\"s1\",\"choices\":[{\"delta\":{\"content\":\"}}\\\\\"}}]}\n\n"
     "data: {\"id\":\"s1\",\"choices\":[],\"usage\":{\"prompt_tokens\":40,"
     "\"completion_tokens\":41}}\n\ndata: [DONE]\n\n",
     40, 41, "s1", ""},
    {"escaped quotes and backslashes",
     "{\"id\":\"a\\\"b\\\\c\",\"model\":\"m\\\\\",\"choices\":[{\"message\":{\"content\":"
     "\"ends with a backslash \\\\\"}},{\"message\":{\"content\":\"x\\\\\\\"}y\"}}],"
     "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":22}}",
     11, 22, "a\"b\\c", "m\\"},
    {"counts outside usage are ignored",
     "{\"id\":\"d9\",\"prompt_tokens\":50,\"choices\":[{\"usage_x\":{\"prompt_tokens\":51}}],"
     "\"meta\":{\"completion_tokens\":52},\"usage\":{\"details\":{\"prompt_tokens\":53}},"
     "\"stats\":[{\"usage\":[{\"prompt_tokens\":54}]}]}",
     -1, -1, "d9", ""},
    {"usage deeper down",
     "{\"response\":{\"data\":{\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":5}}}}",
     4, 5, "", ""},
    {"non-integer counts are ignored",
     "{\"usage\":{\"prompt_tokens\":1.5,\"completion_tokens\":-3}}"
     "{\"usage\":{\"prompt_tokens\":\"12\",\"completion_tokens\":1e3}}"
     "{\"usage\":{\"prompt_tokens\":true,\"completion_tokens\":12x}}"
     "{\"usage\":{\"prompt_tokens\":9223372036854775808,\"completion_tokens\":[1]}}",
     -1, -1, "", ""},
    {"largest and smallest counts",
     "{\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":9223372036854775807}}",
     0, LLONG_MAX, "", ""},
    {"long id is cut to 79 bytes",
     "{\"id\":\"aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffffffffffgggggggggg"
     "hhhhhhhhhhiiiiiiiiii\",\"model\":\"m\"}",
     -1, -1,
     "aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffffffffffgggggggggghhhhhhhhh", "m"},
    {"cut at a utf-8 boundary",
     "{\"id\":\"aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffffffffffgggggggggg"
     "hhhhhhhh\xc3\xa9zz\",\"model\":\"aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeee"
     "ffffffffffgggggggggghhhhhhhh\\u00e9\"}",
     -1, -1, "aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffffffffffgggggggggghhhhhhhh",
     "aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffffffffffgggggggggghhhhhhhh"},
    {"unicode escapes in keys and values",
     "{\"\\u0069d\":\"x\\u0041\\u00e9\\u20ac\\ud83d\\u0000\\/\\n\",\"mod\\u0065l\":\"\\t\","
     "\"\\u0075sage\":{\"prompt_\\u0074okens\":3,\"completion_tokens\\u0020\":4}}",
     3, -1, "xA\xc3\xa9\xe2\x82\xac?\?/\n", "\t"},
    {"resync at a new data line after a cut event",
     "data: {\"id\":\"first\",\"choices\":[{\"delta\":{\"content\":\"trunc\n\n"
     "data: {\"id\":\"second\",\"model\":\"m2\",\"usage\":{\"prompt_tokens\":1,"
     "\"completion_tokens\":2}}\n\n"
     "data: {\"usage\":{\"prompt_tokens\":[{\"a\":\"\\\n\n"
     "data: {\"usage\":{\"prompt_tokens\":3}}\n\n",
     3, 2, "first", "m2"},
    {"deep nesting is skipped and recovered from",
     "{\"id\":\"deep\",\"a\":[[[[[[[[[[{\"id\":\"no\",\"model\":\"no\",\"usage\":{"
     "\"prompt_tokens\":999}}]]]]]]]]]],\"model\":\"yes\",\"usage\":{\"prompt_tokens\":3,"
     "\"completion_tokens\":4},\"b\":[[[[[[[[[[{\"usage\":{\"prompt_tokens\":998}}]]]]]]]]]]}",
     3, 4, "deep", "yes"},
    {"error body", "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"code\":500,"
     "\"id\":\"e\"}}", -1, -1, "", ""},
    {"empty", "", -1, -1, "", ""},
    {"not json", "<html>502 Bad Gateway \"id\": \"x\" usage</html>\n", -1, -1, "", ""},
};

/* ---- garbage ------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* Pieces that steer random text into the scanner's interesting states. */
static const char *const tokens[] = {
    "{", "}", "[", "]", "\"", ":", ",", "\\", "\\\"", "\\u00", "\\ud83d", " ", "\n", "\r\n",
    "data:", "data: ", "\"id\"", "\"model\"", "\"usage\"", "\"prompt_tokens\"",
    "\"completion_tokens\"", "null", "12", "-", ".", "e", "9999999999999999999", "\xc3",
    "\xff", "a", "\"x\"",
};

static size_t random_buffer(uint64_t *rng, char *buf, size_t cap) {
  size_t n = 0, want = rng_next(rng) % cap;
  int raw = rng_next(rng) % 4 == 0;
  while (n < want) {
    if (raw) {
      buf[n++] = (char)(rng_next(rng) & 0xFF);
      continue;
    }
    const char *t = tokens[rng_next(rng) % (sizeof tokens / sizeof tokens[0])];
    size_t len = strlen(t);
    if (n + len > want) break;
    memcpy(buf + n, t, len);
    n += len;
  }
  return n;
}

/* Whole, byte by byte, and in three random pieces: same results, all sane. */
static int garbage_consistent(uint64_t *rng, const char *buf, size_t n) {
  sy_usage_scan_t whole, bytes, parts;
  scan_whole(&whole, buf, n);
  scan_bytewise(&bytes, buf, n);
  size_t a = n ? rng_next(rng) % (n + 1) : 0;
  size_t b = a + (n - a ? rng_next(rng) % (n - a + 1) : 0);
  sy_usage_scan_init(&parts);
  sy_usage_scan_feed(&parts, buf, a);
  sy_usage_scan_feed(&parts, buf + a, b - a);
  sy_usage_scan_feed(&parts, buf + b, n - b);
  return sane(&whole) && same_results(&whole, &bytes) && same_results(&whole, &parts);
}

static void test_garbage(void) {
  uint64_t rng = 0x9E3779B97F4A7C15ull;
  char buf[1024];
  int bad = 0;
  for (int i = 0; i < 10000; i++) {
    size_t n = random_buffer(&rng, buf, sizeof buf);
    if (!garbage_consistent(&rng, buf, n)) bad++;
  }
  CHECK_MSG(bad == 0, "%d random buffers gave unsplittable or insane results", bad);
}

/* Each document with a few bytes overwritten, dropped or repeated. */
static void test_mutations(void) {
  uint64_t rng = 12345;
  char buf[2048];
  int bad = 0;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    size_t n0 = strlen(cases[c].doc);
    if (n0 == 0 || n0 > sizeof buf / 2) continue;
    for (int i = 0; i < 200; i++) {
      size_t n = n0;
      memcpy(buf, cases[c].doc, n);
      for (int m = 1 + (int)(rng_next(&rng) % 4); m > 0; m--) {
        size_t at = rng_next(&rng) % n;
        switch (rng_next(&rng) % 3) {
        case 0: buf[at] = (char)(rng_next(&rng) & 0xFF); break;
        case 1: if (n > 1) memmove(buf + at, buf + at + 1, --n - at); break;
        default: if (n < sizeof buf) memmove(buf + at + 1, buf + at, n++ - at); break;
        }
      }
      if (!garbage_consistent(&rng, buf, n)) bad++;
    }
  }
  CHECK_MSG(bad == 0, "%d mutated documents gave unsplittable or insane results", bad);
}

/* ---- timing (printed, never asserted) ----------------------------------- */

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static size_t build_stream(char *buf, size_t cap) {
  size_t n = 0;
  for (int i = 0; n + 512 < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n,
                          "data: {\"id\":\"chatcmpl-9xYzAbCdEf123\",\"object\":"
                          "\"chat.completion.chunk\",\"created\":1700000000,\"model\":"
                          "\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\","
                          "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" word%d\"},"
                          "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
                          i);
  n += (size_t)snprintf(buf + n, cap - n,
                        "data: {\"id\":\"chatcmpl-9xYzAbCdEf123\",\"choices\":[],\"usage\":{"
                        "\"prompt_tokens\":321,\"completion_tokens\":4567}}\n\ndata: [DONE]\n\n");
  return n;
}

static void test_timing(void) {
  size_t cap = 1 << 20;
  char *buf = malloc(cap);
  CHECK(buf != NULL);
  if (!buf) return;
  size_t n = build_stream(buf, cap), piece = 4096;
  double best = 1e30;
  sy_usage_scan_t s;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = now_ns();
    sy_usage_scan_init(&s);
    for (size_t off = 0; off < n; off += piece)
      sy_usage_scan_feed(&s, buf + off, n - off < piece ? n - off : piece);
    double t = now_ns() - t0;
    if (t < best) best = t;
  }
  CHECK(s.prompt_tokens == 321 && s.completion_tokens == 4567);
  CHECK(strcmp(s.id, "chatcmpl-9xYzAbCdEf123") == 0);
  printf("usage_scan_bytes=%zu usage_scan_ns_per_byte=%.3f usage_scan_mb_per_s=%.0f\n", n,
         best / (double)n, (double)n / best * 1e3);
  free(buf);
}

/* Documents: one per JSON body or SSE data event; a cut stream counts what arrived. */
static void test_documents(void) {
  static const struct {
    const char *doc;
    long long want;
  } doc_cases[] = {
      {"{\"id\":\"x\",\"usage\":{\"prompt_tokens\":3}}", 1},
      {"data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"{x}\"}}]}\n\n"
       "data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"y\"}}]}\n\n"
       "data: {\"id\":\"a\",\"usage\":{\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
       3},
      {"data: {\"id\":\"a\",\"choices\":[]}\n\ndata: {\"id\":\"a\",\"choi", 2}, /* cut */
      {"", 0},
      {"data: [DONE]\n\n", 0},
  };
  for (size_t i = 0; i < sizeof doc_cases / sizeof doc_cases[0]; i++) {
    sy_usage_scan_t s, b;
    size_t n = strlen(doc_cases[i].doc), first_bad = 0;
    scan_whole(&s, doc_cases[i].doc, n);
    CHECK_MSG(s.documents == doc_cases[i].want, "documents case %zu: %lld, want %lld", i, s.documents,
              doc_cases[i].want);
    CHECK_MSG(split_mismatches(doc_cases[i].doc, n, &s, &first_bad) == 0,
              "documents case %zu: a split changes the count (first at %zu)", i, first_bad);
    scan_bytewise(&b, doc_cases[i].doc, n);
    CHECK_MSG(same_results(&s, &b), "documents case %zu: bytewise differs", i);
  }
}

int main(void) {
  test_documents();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i]);
  test_garbage();
  test_mutations();
  test_timing();
  return CHECK_DONE();
}
