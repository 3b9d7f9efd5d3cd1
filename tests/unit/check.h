/*
 * check.h — the unit tests' only framework: CHECK counts, never aborts, and
 * CHECK_DONE() prints "N checks, M failed" and returns the exit status.
 */
#ifndef SY_CHECK_H
#define SY_CHECK_H

#include <stdio.h>

static int sy_checks_run;
static int sy_checks_failed;

#define CHECK(cond)                                                          \
  do {                                                                       \
    sy_checks_run++;                                                         \
    if (!(cond)) {                                                           \
      sy_checks_failed++;                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                        \
  } while (0)

#define CHECK_MSG(cond, ...)                                                 \
  do {                                                                       \
    sy_checks_run++;                                                         \
    if (!(cond)) {                                                           \
      sy_checks_failed++;                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                          \
      fputc('\n', stderr);                                                   \
    }                                                                        \
  } while (0)

#define CHECK_DONE()                                                         \
  (printf("%d checks, %d failed\n", sy_checks_run, sy_checks_failed),        \
   (sy_checks_failed == 0 && sy_checks_run > 0) ? 0 : 1)

#endif
