/*
 * usage-scan.c — single-threaded microbenchmark of the response usage scanner
 * (stats/usage_scan.h), the live code against the frozen reference it replaced
 * (tests/unit/usage_scan_ref.h), on three bodies each fed whole:
 *   json       the body bench/mock-llm returns for a non-streaming chat completion
 *              (built by mock_reply_completion, model "gpt-bench" as bench/events asks);
 *   json_long  an OpenAI chat completion whose assistant message is ~2 KB of text with
 *              escapes (\n, \", \\, \t, \u00e9, \ud83d\ude00) and raw UTF-8;
 *   sse        an OpenAI stream of 50 content chunks, a usage chunk and [DONE].
 *
 *   usage-scan [ROUNDS]
 *
 * Each round times a batch of scans (init + feed) of the old code, then of the new,
 * interleaved, so drift of the machine hits both alike. Prints per body, as the
 * median over the rounds:
 *   usage_scan_bytes_<body>=N
 *   usage_scan_ns_per_body_<body>_old=, usage_scan_ns_per_body_<body>_new=
 *   usage_scan_ns_per_byte_<body>_old=, usage_scan_ns_per_byte_<body>_new=
 *   usage_scan_speedup_<body>=old/new (median of the per-round ratios)
 * Exits 1 if the two scanners disagree on any body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/mock_reply.h"
#include "stats/usage_scan.h"
#include "tests/unit/usage_scan_ref.h"

#define MAX_ROUNDS 101

static volatile long long sink;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- bodies ------------------------------------------------------------- */

static void body_mock(mock_buf_t *out) {
  mock_defaults_t d = {.chunks = 5, .reset_after = -1};
  mock_resp_t r = {0};
  mock_req_t q = {0};
  mock_buf_t content = {0};
  static const char req[] = "{\"model\":\"gpt-bench\",\"messages\":[{\"role\":\"system\","
                            "\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":"
                            "\"Say hello.\"}]}";
  mock_resp_init(&r, &d, 123456, sizeof req - 1);
  r.created = 1700000000;
  r.model = "gpt-bench";
  r.model_len = strlen(r.model);
  mock_reply_content(&content, "mock");
  mock_reply_completion(out, &r, &q, &content);
  free(content.p);
}

static void body_long(mock_buf_t *b) {
  static const char *const pieces[] = {
      "Here is what you asked for:\\n\\n", "1. The caf\\u00e9 on the corner serves ",
      "cr\xc3\xa8me br\xc3\xbb\xc3\xa9\x65 \\u2014 try it! ", "He said \\\"hello\\\" twice. ",
      "Path: C:\\\\Users\\\\me\\\\notes.txt\\n", "\\tIndented line with a tab.\\n",
      "Emoji: \\ud83d\\ude00 and raw \xf0\x9f\x98\x80. ",
      "The quick brown fox jumps over the lazy dog, again and again, ",
      "until the paragraph is long enough to matter.\\n",
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87\xe7\xab\xa0\xe3\x82\x82. ",
  };
  mock_buf_adds(b, "{\"id\":\"chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012\",\"object\":"
                   "\"chat.completion\",\"created\":1700000000,\"model\":"
                   "\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                   "\"assistant\",\"content\":\"");
  size_t start = b->len;
  for (size_t i = 0; b->len - start < 2048; i++)
    mock_buf_adds(b, pieces[i % (sizeof pieces / sizeof pieces[0])]);
  mock_buf_adds(b, "\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                   "\"usage\":{\"prompt_tokens\":1234,\"completion_tokens\":567,"
                   "\"total_tokens\":1801,\"prompt_tokens_details\":{\"cached_tokens\":0,"
                   "\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,"
                   "\"audio_tokens\":0,\"accepted_prediction_tokens\":0,"
                   "\"rejected_prediction_tokens\":0}},\"system_fingerprint\":\"fp_50cad350e4\"}");
}

static void body_sse(mock_buf_t *b) {
  static const char head[] = "data: {\"id\":\"chatcmpl-9xYzAbCdEf123\",\"object\":"
                             "\"chat.completion.chunk\",\"created\":1700000000,\"model\":"
                             "\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",";
  for (int i = 0; i < 50; i++)
    mock_buf_addf(b, "%s\"choices\":[{\"index\":0,\"delta\":{%s\"content\":\" word%d\"},"
                  "\"logprobs\":null,\"finish_reason\":%s}],\"usage\":null}\n\n", head,
                  i == 0 ? "\"role\":\"assistant\"," : "", i, i == 49 ? "\"stop\"" : "null");
  mock_buf_addf(b, "%s\"choices\":[],\"usage\":{\"prompt_tokens\":321,"
                "\"completion_tokens\":50,\"total_tokens\":371}}\n\ndata: [DONE]\n\n", head);
}

/* ---- timing ------------------------------------------------------------- */

static double time_new(const char *p, size_t n, int iters) {
  sy_usage_scan_t s;
  double t0 = now_ns();
  for (int i = 0; i < iters; i++) {
    sy_usage_scan_init(&s);
    sy_usage_scan_feed(&s, p, n);
    sink += s.completion_tokens;
  }
  return (now_ns() - t0) / iters;
}

static double time_old(const char *p, size_t n, int iters) {
  ref_usage_scan_t s;
  double t0 = now_ns();
  for (int i = 0; i < iters; i++) {
    ref_usage_scan_init(&s);
    ref_usage_scan_feed(&s, p, n);
    sink += s.completion_tokens;
  }
  return (now_ns() - t0) / iters;
}

static int agree(const char *name, const char *p, size_t n) {
  sy_usage_scan_t a;
  ref_usage_scan_t b;
  sy_usage_scan_init(&a);
  sy_usage_scan_feed(&a, p, n);
  ref_usage_scan_init(&b);
  ref_usage_scan_feed(&b, p, n);
  if (a.prompt_tokens == b.prompt_tokens && a.completion_tokens == b.completion_tokens &&
      strcmp(a.id, b.id) == 0 && strcmp(a.model, b.model) == 0 && a.documents == b.documents &&
      a.prompt_tokens >= 0 && a.completion_tokens >= 0)
    return 1;
  fprintf(stderr, "usage-scan: %s: old and new disagree (or found no usage)\n", name);
  return 0;
}

static void run(const char *name, const char *p, size_t n, int rounds) {
  double old_ns[MAX_ROUNDS], new_ns[MAX_ROUNDS], ratio[MAX_ROUNDS];
  int iters = (int)(4e6 / (double)n) + 1; /* ~2-8 ms a batch at 0.5-2 ns a byte */
  time_old(p, n, iters / 4 + 1);          /* warm up */
  time_new(p, n, iters / 4 + 1);
  for (int r = 0; r < rounds; r++) {
    old_ns[r] = time_old(p, n, iters);
    new_ns[r] = time_new(p, n, iters);
    ratio[r] = old_ns[r] / new_ns[r];
  }
  double o = median(old_ns, rounds), w = median(new_ns, rounds);
  printf("usage_scan_bytes_%s=%zu\n", name, n);
  printf("usage_scan_ns_per_body_%s_old=%.1f\n", name, o);
  printf("usage_scan_ns_per_body_%s_new=%.1f\n", name, w);
  printf("usage_scan_ns_per_byte_%s_old=%.3f\n", name, o / (double)n);
  printf("usage_scan_ns_per_byte_%s_new=%.3f\n", name, w / (double)n);
  printf("usage_scan_speedup_%s=%.2f\n", name, median(ratio, rounds));
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 11;
  if (rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "usage: usage-scan [ROUNDS (1..%d)]\n", MAX_ROUNDS);
    return 2;
  }
  mock_buf_t json = {0}, json_long = {0}, sse = {0};
  body_mock(&json);
  body_long(&json_long);
  body_sse(&sse);
  int ok = agree("json", json.p, json.len) & agree("json_long", json_long.p, json_long.len) &
           agree("sse", sse.p, sse.len);
  run("json", json.p, json.len, rounds);
  run("json_long", json_long.p, json_long.len, rounds);
  run("sse", sse.p, sse.len, rounds);
  free(json.p);
  free(json_long.p);
  free(sse.p);
  return ok ? 0 : 1;
}
