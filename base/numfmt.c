/*
 * numfmt.c — decimal formatting for the event path (see numfmt.h).
 */
#include "base/numfmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* "00".."99": two digits a division (the event path formats 13-digit timestamps). */
static const char digits2[201] = "0001020304050607080910111213141516171819"
                                 "2021222324252627282930313233343536373839"
                                 "4041424344454647484950515253545556575859"
                                 "6061626364656667686970717273747576777879"
                                 "8081828384858687888990919293949596979899";

size_t sy_fmt_u64(char *out, uint64_t v) {
  size_t n = 1;
  for (uint64_t t = v; t >= 10; t /= 10)
    n++;
  char *o = out + n;
  while (v >= 100) {
    unsigned d = (unsigned)(v % 100) * 2;
    v /= 100;
    *--o = digits2[d + 1];
    *--o = digits2[d];
  }
  if (v >= 10) {
    *--o = digits2[v * 2 + 1];
    *--o = digits2[v * 2];
  } else {
    *--o = (char)('0' + v);
  }
  return n;
}

size_t sy_fmt_i64(char *out, int64_t v) {
  if (v >= 0)
    return sy_fmt_u64(out, (uint64_t)v);
  out[0] = '-';
  return 1 + sy_fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
}

static size_t via_printf(char *out, double v) {
  char t[SY_NUMFMT_MAX];
  int n = snprintf(t, sizeof t, "%.6g", v);
  n = n < 0 ? 0 : n >= (int)sizeof t ? (int)sizeof t - 1 : n;
  memcpy(out, t, (size_t)n);
  return (size_t)n;
}

static const double pow10_tab[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10};

size_t sy_fmt_g6(char *out, double v) {
  double a = fabs(v);
  if (a < 1e15 && v == floor(v))
    return sy_fmt_i64(out, (int64_t)v);
  if (!(a >= 1e-4 && a < 1e15)) /* tiny, huge, NaN, infinite: the exponent form */
    return via_printf(out, v);
  /* a = m * 10^(e - 5) with 100000 <= m < 1000000 (m rounded to an integer); e by
   * comparison with the powers of ten (log10 costs more than the rest together) */
  static const double p10[] = {1e-4, 1e-3, 1e-2, 1e-1, 1e0,  1e1,  1e2,  1e3,  1e4, 1e5,
                               1e6,  1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14};
  int e = -4;
  while (e < 14 && a >= p10[e + 5])
    e++;
  double scaled = e <= 5 ? a * pow10_tab[5 - e] : a / pow10_tab[e - 5];
  double frac = scaled - floor(scaled);
  if (fabs(frac - 0.5) < 1e-6) /* (nearly) halfway: the scaling's rounding error could */
    return via_printf(out, v); /* decide it; printf rounds the exact binary value */
  uint64_t m = (uint64_t)llround(scaled);
  if (m >= 1000000) { /* rounding carried into a new digit: 999999.5 -> 1000000 */
    m /= 10;
    e++;
  } else if (m < 100000) { /* log10 landed just below a power of ten */
    m = (uint64_t)llround(scaled * 10);
    e--;
  }
  if (e >= 6) /* 1e6 <= a < 1e15: the six digits, then zeros (printf would use 1e+06) */
    return sy_fmt_i64(out, (int64_t)(v < 0 ? -1 : 1) * (int64_t)(m * (uint64_t)pow10_tab[e - 5]));
  char d[6];
  for (int i = 5; i >= 0; i--, m /= 10)
    d[i] = (char)('0' + m % 10);
  int last = 5; /* the last significant digit kept */
  while (last > 0 && d[last] == '0')
    last--;
  size_t n = 0;
  if (v < 0)
    out[n++] = '-';
  if (e < 0) { /* 0.000ddd */
    out[n++] = '0';
    out[n++] = '.';
    for (int i = -1; i > e; i--)
      out[n++] = '0';
    for (int i = 0; i <= last; i++)
      out[n++] = d[i];
    return n;
  }
  for (int i = 0; i <= e; i++) /* e + 1 digits before the point */
    out[n++] = d[i];
  if (last > e) {
    out[n++] = '.';
    for (int i = e + 1; i <= last; i++)
      out[n++] = d[i];
  }
  return n;
}
