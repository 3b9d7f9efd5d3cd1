/*
 * err.h — the error buffer of the "0 or -1 with a reason" convention: a function
 * that fails writes one sentence saying why into the caller's (err, errlen) and
 * returns -1. Part of base/ (uses nothing).
 */
#ifndef SY_ERR_H
#define SY_ERR_H

#include <stddef.h>

/* Formats the reason into err (if err is not NULL and errlen > 0); returns -1, so
 * that `return sy_errf(err, errlen, "...", ...);` fails a function. */
int sy_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
