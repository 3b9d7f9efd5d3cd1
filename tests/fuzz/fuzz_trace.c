/*
 * fuzz_trace.c — libFuzzer target for traceparent parsing (router/trace.h).
 *
 * The input is a traceparent header value. The target aborts when:
 *   - a success leaves a trace id that is not 32 lower-case hex digits, all zeros,
 *     or not the digits at offset 3 of the value (blanks trimmed), or flags other
 *     than the two hex digits at offset 53; or the value does not have the shape
 *     the spec asks: version not ff, '-' at 2, 35 and 52, a span id not all zeros,
 *     exactly 55 bytes for version 00 and a '-' after them for longer values of
 *     later versions;
 *   - surrounding the value with spaces and tabs changes the result;
 *   - sy_trace_init does not take the trace id and flags of a valid value (and
 *     mark it from_client), or takes them from an invalid one, or leaves a trace
 *     or span id that is not lower-case hex of the right length, or all zeros;
 *   - the header sy_trace_format writes does not parse back to the same trace id
 *     and flags.
 * Build with libFuzzer: tests/fuzz/run; without it: meson test --suite fuzz.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policies/rng.h"
#include "router/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_lower_hex(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
      return 0;
  return 1;
}

static int hex2(const char *p) {
  int v = 0;
  for (int i = 0; i < 2; i++)
    v = v * 16 + (p[i] <= '9' ? p[i] - '0' : p[i] - 'a' + 10);
  return v;
}

/* Checks a successful parse of in[0, n) against the traceparent grammar. */
static void check_success(const char *in, size_t n, const char *id, uint8_t flags) {
  while (n > 0 && (*in == ' ' || *in == '\t')) {
    in++;
    n--;
  }
  while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\t'))
    n--;
  if (strlen(id) != SY_TRACE_ID_HEX || !is_lower_hex(id, SY_TRACE_ID_HEX) ||
      strspn(id, "0") == SY_TRACE_ID_HEX)
    abort();
  if (n < SY_TRACEPARENT_LEN || memcmp(in + 3, id, SY_TRACE_ID_HEX) != 0 ||
      !is_lower_hex(in + 53, 2) || hex2(in + 53) != flags)
    abort();
  if (!is_lower_hex(in, 2) || memcmp(in, "ff", 2) == 0 || in[2] != '-' || in[35] != '-' ||
      in[52] != '-' || !is_lower_hex(in + 36, SY_SPAN_ID_HEX) ||
      strspn(in + 36, "0") >= SY_SPAN_ID_HEX)
    abort();
  if (memcmp(in, "00", 2) == 0 ? n != SY_TRACEPARENT_LEN
                               : n > SY_TRACEPARENT_LEN && in[SY_TRACEPARENT_LEN] != '-')
    abort();
}

/* Parses the input again between blanks; the result must not change. */
static void check_blanks(const char *in, size_t n, int rc, const char *id, uint8_t flags) {
  char *padded = malloc(n + 4);
  if (padded == NULL)
    return;
  memcpy(padded, " \t", 2);
  memcpy(padded + 2, in, n);
  memcpy(padded + 2 + n, "\t ", 2);
  char id2[SY_TRACE_ID_HEX + 1];
  uint8_t flags2 = 0;
  int rc2 = sy_traceparent_parse(padded, n + 4, id2, &flags2);
  if (rc2 != rc || (rc == 0 && (strcmp(id2, id) != 0 || flags2 != flags)))
    abort();
  free(padded);
}

/* sy_trace_init on the input, then format and parse back. */
static void check_init_format(const char *in, size_t n, int rc, const char *id, uint8_t flags) {
  sy_rng_t rng;
  sy_rng_seed(&rng, n);
  sy_trace_t t;
  sy_trace_init(&t, in, n, &rng);
  if (t.from_client != (rc == 0) || (rc == 0 && (strcmp(t.trace_id, id) != 0 || t.flags != flags)))
    abort();
  if (strlen(t.trace_id) != SY_TRACE_ID_HEX || !is_lower_hex(t.trace_id, SY_TRACE_ID_HEX) ||
      strspn(t.trace_id, "0") == SY_TRACE_ID_HEX || strlen(t.span_id) != SY_SPAN_ID_HEX ||
      !is_lower_hex(t.span_id, SY_SPAN_ID_HEX) || strspn(t.span_id, "0") == SY_SPAN_ID_HEX)
    abort();
  char out[SY_TRACEPARENT_LEN + 1];
  sy_trace_format(&t, out);
  char id2[SY_TRACE_ID_HEX + 1];
  uint8_t flags2 = 0;
  if (strlen(out) != SY_TRACEPARENT_LEN ||
      sy_traceparent_parse(out, SY_TRACEPARENT_LEN, id2, &flags2) != 0 ||
      strcmp(id2, t.trace_id) != 0 || flags2 != t.flags || memcmp(out + 36, t.span_id, 16) != 0)
    abort();
}

/* libFuzzer entry point: see the file comment. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  char id[SY_TRACE_ID_HEX + 1] = "";
  uint8_t flags = 0;
  int rc = sy_traceparent_parse(in, size, id, &flags);
  if (rc != 0 && rc != -1)
    abort();
  if (rc == 0)
    check_success(in, size, id, flags);
  check_blanks(in, size, rc, id, flags);
  check_init_format(in, size, rc, id, flags);
  return 0;
}
