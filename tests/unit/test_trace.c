/*
 * test_trace.c — traceparent parsing and the ids switchyard generates.
 */
#include <string.h>

#include "router/trace.h"
#include "tests/unit/check.h"

static int parse(const char *v, char *id, uint8_t *flags) {
  return sy_traceparent_parse(v, strlen(v), id, flags);
}

static void test_parse(void) {
  char id[33];
  uint8_t flags = 0;
  CHECK(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", id, &flags) == 0);
  CHECK(strcmp(id, "4bf92f3577b34da6a3ce929d0e0e4736") == 0);
  CHECK(flags == 1);
  CHECK(parse("  00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 ", id, &flags) == 0);
  CHECK(flags == 0);
  /* A future version may append fields after a dash. */
  CHECK(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", id, &flags) == 0);
  /* Rejected: upper case, all-zero ids, version ff, wrong lengths, trailing data on 00. */
  CHECK(parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", id, &flags) < 0);
  CHECK(parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01", id, &flags) < 0);
  CHECK(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", id, &flags) < 0);
  CHECK(parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", id, &flags) < 0);
  CHECK(parse("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", id, &flags) < 0);
  CHECK(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", id, &flags) < 0);
  CHECK(parse("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", id, &flags) < 0);
  CHECK(parse("", id, &flags) < 0);
}

static int is_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strchr("0123456789abcdef", s[i]))
      return 0;
  return s[n] == '\0';
}

static void test_init_and_format(void) {
  sy_rng_t rng;
  sy_rng_seed(&rng, 42);
  sy_trace_t t;
  const char *in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  sy_trace_init(&t, in, strlen(in), &rng);
  CHECK(t.from_client == 1);
  CHECK(strcmp(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736") == 0);
  CHECK(is_hex(t.span_id, 16));
  CHECK(strcmp(t.span_id, "00f067aa0ba902b7") != 0); /* our own span, not the parent's */
  char out[SY_TRACEPARENT_LEN + 1];
  sy_trace_format(&t, out);
  CHECK(strlen(out) == SY_TRACEPARENT_LEN);
  CHECK(strncmp(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0);
  CHECK(strcmp(out + 52, "-01") == 0);
  /* What we format, we parse back. */
  char id[33];
  uint8_t flags;
  CHECK(sy_traceparent_parse(out, strlen(out), id, &flags) == 0 && flags == 1);

  /* Without (or with an invalid) traceparent: a fresh, valid, distinct id. */
  sy_trace_t a, b;
  sy_trace_init(&a, NULL, 0, &rng);
  sy_trace_init(&b, "garbage", 7, &rng);
  CHECK(a.from_client == 0 && b.from_client == 0);
  CHECK(is_hex(a.trace_id, 32) && is_hex(b.trace_id, 32));
  CHECK(strcmp(a.trace_id, b.trace_id) != 0);
  sy_trace_format(&a, out);
  CHECK(sy_traceparent_parse(out, strlen(out), id, &flags) == 0 && strcmp(id, a.trace_id) == 0);

  /* 10,000 generated ids: no duplicate among consecutive pairs, all valid hex. */
  char prev[33] = "";
  int ok = 1;
  for (int i = 0; i < 10000; i++) {
    sy_trace_init(&a, NULL, 0, &rng);
    ok &= is_hex(a.trace_id, 32) && strcmp(prev, a.trace_id) != 0;
    memcpy(prev, a.trace_id, 33);
  }
  CHECK(ok);
}

int main(void) {
  test_parse();
  test_init_and_format();
  return CHECK_DONE();
}
