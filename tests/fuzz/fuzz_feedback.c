/*
 * fuzz_feedback.c — libFuzzer target for the request bodies of POST
 * /switchyard/v1/feedback and /switchyard/v1/outcome (router/api_parse.h).
 *
 * The input is read as JSON the way router/api.c reads a body (json_loadb, flags 0)
 * and checked as a feedback body and as an outcome body. The target aborts when:
 *   - jansson refuses the input and the message router/api.c sends for it (jansson's
 *     text up to sy_api_utf8_prefix) cannot be put into the JSON of the 400 response;
 *   - a refusal has an empty message, one that is not valid UTF-8 or cannot be put
 *     into the JSON of the 400 response, or, written into `why`, one that is not
 *     NUL-terminated inside it;
 *     or leaves a comment behind; or the size of `why` changes the verdict;
 *   - an accepted body is not an object, has a field the call does not take, or its
 *     result breaks api_parse.h: a trace id that is not 32 lower-case hex digits (the
 *     body's, lower-cased), or all zeros; a value that is not finite or not the
 *     body's (true/false as 1/0); client_latency_ms not NAN when absent, or not
 *     the body's finite value >= 0; an outcome without a value or with a metric that
 *     is empty, longer than 64 bytes or not the body's; a feedback type not one of
 *     sy_feedback_type_names, or not the body's; thumbs, rating or edit without a
 *     value; a defaulted value other than 1; a thumbs value outside {1, 0, -1}, an
 *     edit value below 0; a name longer than 64 bytes or not the body's, none for
 *     custom; a comment longer than 4096 bytes or not the body's;
 *   - the comment, scrubbed as router/api.c stores it (stats/privacy.h), is not
 *     NUL-terminated at its length, grows by more than a sixth, is not valid UTF-8,
 *     reports a flag sy_scrub never sets, or differs from the comment with no flag.
 * Memory problems and leaks are found by ASan/LeakSanitizer.
 * Build with libFuzzer: tests/fuzz/run; without it: meson test --suite fuzz.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "router/api_parse.h"
#include "router/config.h"
#include "stats/privacy.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);



/* The error response router/api.c builds around msg (api_error) can be built. */
static void require_response(const char *msg) {
  json_t *o = json_pack("{s:{s:s,s:s,s:s}}", "error", "message", msg, "type",
                        "invalid_request_error", "code", "invalid_body");
  REQUIRE(o != NULL);
  json_decref(o);
}

/* A refusal: see the file comment. */
static void check_refusal(const char *problem, const char *why, size_t whylen,
                          const sy_api_body_t *p) {
  REQUIRE(problem[0] != '\0' && p->comment == NULL);
  if (problem == why)
    REQUIRE(memchr(why, '\0', whylen) != NULL);
  REQUIRE(valid_utf8((const unsigned char *)problem, strlen(problem)));
  require_response(problem);
}

/* The value the body gives for `key` (number or boolean), as the parser must read it. */
static double body_number(const json_t *v) {
  return json_is_boolean(v) ? (json_is_true(v) ? 1 : 0) : json_number_value(v);
}

/* The string member `key` of b equals s. */
static int member_is(const json_t *b, const char *key, const char *s) {
  const char *v = json_string_value(json_object_get(b, key));
  return v != NULL && strcmp(v, s) == 0;
}

static void check_comment(const json_t *b, const char *comment) {
  const json_t *cm = json_object_get(b, "comment");
  REQUIRE(comment == NULL || cm != NULL); /* a comment absent from a body that has one: OOM */
  if (comment == NULL)
    return;
  size_t n = strlen(comment), outlen = 0;
  REQUIRE(n <= SY_API_COMMENT_MAX && n == json_string_length(cm) &&
          memcmp(comment, json_string_value(cm), n) == 0);
  unsigned flags = 0;
  char *out = sy_scrub(comment, n, &outlen, &flags);
  if (out == NULL)
    return; /* out of memory */
  REQUIRE(out[outlen] == '\0' && strlen(out) == outlen && outlen <= n + n / 6);
  REQUIRE(valid_utf8((const unsigned char *)out, outlen));
  REQUIRE((flags & ~(unsigned)(SY_REDACT_EMAIL | SY_REDACT_PHONE | SY_REDACT_API_KEY |
                               SY_REDACT_CARD)) == 0);
  REQUIRE(flags != 0 || (outlen == n && memcmp(out, comment, n) == 0));
  free(out);
}

static void check_feedback(const json_t *b, const sy_api_body_t *p) {
  static const char *const keys[] = {"trace_id", "type", "value", "comment", "name",
                                     "client_latency_ms"};
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)b, k, v) {
    int known = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
      known |= strcmp(k, keys[i]) == 0;
    REQUIRE(known);
  }
  REQUIRE(p->fb_type >= 0 && p->fb_type < SY_FB_NTYPES);
  REQUIRE(member_is(b, "type", sy_feedback_type_names[p->fb_type]));
  if (p->fb_type == SY_FB_THUMBS || p->fb_type == SY_FB_RATING || p->fb_type == SY_FB_EDIT)
    REQUIRE(p->has_value);
  if (!p->has_value)
    REQUIRE(p->value == 1);
  if (p->fb_type == SY_FB_THUMBS)
    REQUIRE(p->value == 1 || p->value == 0 || p->value == -1);
  if (p->fb_type == SY_FB_EDIT)
    REQUIRE(p->value >= 0);
  REQUIRE(strlen(p->name) <= SY_API_NAME_MAX);
  if (json_object_get(b, "name") != NULL)
    REQUIRE(member_is(b, "name", p->name));
  else
    REQUIRE(p->name[0] == '\0' && p->fb_type != SY_FB_CUSTOM);
  check_comment(b, p->comment);
}

static void check_outcome(const json_t *b, const sy_api_body_t *p) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)b, k, v) {
    REQUIRE(strcmp(k, "trace_id") == 0 || strcmp(k, "metric") == 0 || strcmp(k, "value") == 0 ||
            strcmp(k, "client_latency_ms") == 0);
  }
  REQUIRE(p->has_value && p->fb_type == -1 && p->comment == NULL);
  size_t n = strlen(p->name);
  REQUIRE(n > 0 && n <= SY_API_NAME_MAX && member_is(b, "metric", p->name));
}

/* What every accepted body shares: trace id, value, client latency. */
static void check_common(const json_t *b, const sy_api_body_t *p) {
  REQUIRE(json_is_object(b));
  const char *tid = json_string_value(json_object_get(b, "trace_id"));
  REQUIRE(tid != NULL && strlen(tid) == 32 && memchr(p->trace_id, '\0', 33) == p->trace_id + 32);
  int nonzero = 0;
  for (int i = 0; i < 32; i++) {
    char c = p->trace_id[i], want = tid[i];
    if (want >= 'A' && want <= 'F')
      want = (char)(want - 'A' + 'a');
    REQUIRE(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) && c == want);
    nonzero |= c != '0';
  }
  REQUIRE(nonzero);
  REQUIRE(isfinite(p->value));
  const json_t *v = json_object_get(b, "value");
  REQUIRE(p->has_value == (v != NULL));
  if (v != NULL)
    REQUIRE(p->value == body_number(v));
  const json_t *cl = json_object_get(b, "client_latency_ms");
  if (cl == NULL)
    REQUIRE(isnan(p->client_ms));
  else
    REQUIRE(isfinite(p->client_ms) && p->client_ms >= 0 && p->client_ms == body_number(cl));
}

static void run(sy_api_kind_t kind, const json_t *b) {
  sy_api_body_t p, q;
  char why[200], small[8];
  const char *problem = sy_api_parse_body(kind, b, &p, why, sizeof why);
  const char *again = sy_api_parse_body(kind, b, &q, small, sizeof small);
  REQUIRE((problem == NULL) == (again == NULL));
  if (problem != NULL) {
    check_refusal(problem, why, sizeof why, &p);
    check_refusal(again, small, sizeof small, &q);
    return;
  }
  sy_api_body_free(&q);
  check_common(b, &p);
  if (kind == SY_API_OUTCOME)
    check_outcome(b, &p);
  else
    check_feedback(b, &p);
  sy_api_body_free(&p);
  REQUIRE(p.comment == NULL);
}

/* libFuzzer entry point: see the file comment. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_error_t je;
  json_t *b = json_loadb(size > 0 ? (const char *)data : "", size, 0, &je);
  if (b == NULL) { /* the message of router/api.c's 400 response, as it builds it */
    int n = sy_api_utf8_prefix(je.text);
    REQUIRE(n >= 0 && (size_t)n <= strlen(je.text));
    char msg[512];
    snprintf(msg, sizeof msg, "the body is not JSON: %.*s", n, je.text);
    require_response(msg);
  }
  run(SY_API_FEEDBACK, b);
  run(SY_API_OUTCOME, b);
  json_decref(b);
  return 0;
}
