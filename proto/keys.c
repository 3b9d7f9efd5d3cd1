/*
 * keys.c — the Redis key builders of keys.h: one format per key family of KEYS.md.
 */
#include "proto/keys.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

/* No name: out "" (keys.h), -1. */
static int fail(char *out, size_t n) {
  if (out != NULL && n > 0)
    out[0] = '\0';
  return -1;
}

/* Formats into out; the length, or -1 (out "") when it does not fit (keys.h). */
__attribute__((format(printf, 3, 4))) static int build(char *out, size_t n, const char *fmt,
                                                       ...) {
  if (out == NULL || n == 0)
    return fail(out, n);
  va_list ap;
  va_start(ap, fmt);
  int r = vsnprintf(out, n, fmt, ap);
  va_end(ap);
  return r < 0 || (size_t)r >= n ? fail(out, n) : r;
}

/* Builds sy:{E}:SUFFIX for the keys of E that take no other argument. */
static int exp_key(char *out, size_t n, const char *exp, const char *suffix) {
  if (exp == NULL)
    return fail(out, n);
  return build(out, n, "sy:{%s}:%s", exp, suffix);
}

/* The builders of E's keys that take no other argument: sy:{E}:SUFFIX. */
#define EXP_KEY(name, suffix)                                                                      \
  int sy_key_##name(char *out, size_t n, const char *exp) {                                        \
    return exp_key(out, n, exp, suffix);                                                           \
  }

EXP_KEY(prefix, "")
EXP_KEY(meta, "meta")
EXP_KEY(segments, "segments")
EXP_KEY(pending, "pending")
EXP_KEY(state, "state")
EXP_KEY(audit, "audit")
EXP_KEY(lease, "gate:lease")
EXP_KEY(versions, "versions")
EXP_KEY(exp_events, "events")
EXP_KEY(exp_refs, "refs")
EXP_KEY(exp_trace_slice, "tr:")

int sy_key_variant(char *out, size_t n, const char *exp, const char *var) {
  if (exp == NULL || var == NULL)
    return fail(out, n);
  return build(out, n, "sy:{%s}:v:%s", exp, var);
}

int sy_key_segment(char *out, size_t n, const char *exp, const char *var, const char *seg) {
  if (exp == NULL || var == NULL || seg == NULL)
    return fail(out, n);
  return build(out, n, "sy:{%s}:v:%s:s:%s", exp, var, seg);
}

int sy_key_applied(char *out, size_t n, const char *exp, const char *trace) {
  if (exp == NULL || trace == NULL)
    return fail(out, n);
  return build(out, n, "sy:{%s}:applied:%s", exp, trace);
}

int sy_key_trace(char *out, size_t n, const char *trace) {
  if (trace == NULL)
    return fail(out, n);
  return build(out, n, SY_KEY_TRACE_PREFIX "%s", trace);
}

static signed char hexval(unsigned char c) {
  return c >= '0' && c <= '9' ? (signed char)(c - '0')
         : c >= 'a' && c <= 'f' ? (signed char)(c - 'a' + 10)
         : c >= 'A' && c <= 'F' ? (signed char)(c - 'A' + 10) : -1;
}

/* hexval as a table: 16 (not a digit) or the digit's value */
static unsigned char hex_tab[256];
static pthread_once_t hex_once = PTHREAD_ONCE_INIT;

static void hex_init(void) {
  for (int c = 0; c < 256; c++) {
    signed char d = hexval((unsigned char)c);
    hex_tab[c] = (unsigned char)(d < 0 ? 16 : d);
  }
}

int sy_trace_bin(const char *trace, unsigned char out[16]) {
  if (trace == NULL)
    return -1;
  pthread_once(&hex_once, hex_init);
  const unsigned char *t = (const unsigned char *)trace;
  for (int i = 0; i < 16; i++) {
    unsigned hi = hex_tab[t[2 * i]];
    if (hi == 16) /* also the NUL of a short id: nothing past it is read */
      return -1;
    unsigned lo = hex_tab[t[2 * i + 1]];
    if (lo == 16)
      return -1;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  return trace[32] == '\0' ? 0 : -1;
}

int sy_key_journal(char *out, size_t n, const char *instance) {
  if (instance == NULL)
    return fail(out, n);
  return build(out, n, "sy:journal:%s", instance);
}

int sy_key_exp_journal(char *out, size_t n, const char *exp, const char *instance) {
  if (exp == NULL || instance == NULL)
    return fail(out, n);
  return build(out, n, "sy:{%s}:journal:%s", exp, instance);
}
