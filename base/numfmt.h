/*
 * numfmt.h — numbers as decimal text without printf: the event path formats several
 * numbers per request, and snprintf's format parsing and locale handling cost more than
 * the rest of an event together. Part of base/ (uses nothing).
 *
 * Each function writes at most SY_NUMFMT_MAX bytes (no terminating NUL) and returns
 * how many it wrote.
 */
#ifndef SY_NUMFMT_H
#define SY_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

#define SY_NUMFMT_MAX 32

size_t sy_fmt_u64(char *out, uint64_t v);
size_t sy_fmt_i64(char *out, int64_t v);
/* Six significant digits, trailing zeros dropped, no exponent between 1e-4 and 1e15
 * (as printf's %.6g for those; exponent form, via snprintf, outside them and for
 * NaN and infinities). Integers below 1e15 are written exactly. */
size_t sy_fmt_g6(char *out, double v);

#endif
