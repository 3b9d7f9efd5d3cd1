/*
 * trace.c — traceparent parsing and id generation (see trace.h).
 */
#include "router/trace.h"

#include <stdio.h>
#include <string.h>

static int is_lower_hex(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
      return 0;
  return 1;
}

static int all_zero(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != '0')
      return 0;
  return 1;
}

static int hexval(char c) {
  return c <= '9' ? c - '0' : c - 'a' + 10;
}

int sy_traceparent_parse(const char *v, size_t len, char trace_id[SY_TRACE_ID_HEX + 1],
                         uint8_t *flags) {
  /* Leading/trailing optional whitespace is allowed around header values. */
  while (len > 0 && (*v == ' ' || *v == '\t')) {
    v++;
    len--;
  }
  while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
    len--;
  if (len < SY_TRACEPARENT_LEN)
    return -1;
  if (!is_lower_hex(v, 2) || (v[0] == 'f' && v[1] == 'f'))
    return -1;
  int version00 = v[0] == '0' && v[1] == '0';
  if (version00 && len != SY_TRACEPARENT_LEN)
    return -1;
  if (!version00 && len > SY_TRACEPARENT_LEN && v[SY_TRACEPARENT_LEN] != '-')
    return -1;
  if (v[2] != '-' || v[35] != '-' || v[52] != '-')
    return -1;
  if (!is_lower_hex(v + 3, 32) || !is_lower_hex(v + 36, 16) || !is_lower_hex(v + 53, 2))
    return -1;
  if (all_zero(v + 3, 32) || all_zero(v + 36, 16))
    return -1;
  memcpy(trace_id, v + 3, 32);
  trace_id[32] = '\0';
  *flags = (uint8_t)(hexval(v[53]) * 16 + hexval(v[54]));
  return 0;
}

void sy_random_hex(char *out, size_t nbytes, sy_rng_t *rng) {
  static const char digits[] = "0123456789abcdef";
  uint64_t r = 0;
  for (size_t i = 0; i < nbytes; i++) {
    if (i % 8 == 0)
      r = sy_rng_next(rng);
    unsigned byte = (unsigned)(r & 0xff);
    r >>= 8;
    out[2 * i] = digits[byte >> 4];
    out[2 * i + 1] = digits[byte & 15];
  }
  out[2 * nbytes] = '\0';
}

void sy_trace_init(sy_trace_t *t, const char *traceparent, size_t len, sy_rng_t *rng) {
  t->from_client = 0;
  if (traceparent != NULL && sy_traceparent_parse(traceparent, len, t->trace_id, &t->flags) == 0) {
    t->from_client = 1;
  } else {
    do
      sy_random_hex(t->trace_id, 16, rng);
    while (all_zero(t->trace_id, 32));
    t->flags = 0x01; /* sampled: switchyard records every request */
  }
  do
    sy_random_hex(t->span_id, 8, rng);
  while (all_zero(t->span_id, 16));
}

void sy_trace_format(const sy_trace_t *t, char out[SY_TRACEPARENT_LEN + 1]) {
  snprintf(out, SY_TRACEPARENT_LEN + 1, "00-%s-%s-%02x", t->trace_id, t->span_id, t->flags);
}
