/*
 * argv.h — a Redis command's arguments, built up one at a time (strings copied,
 * numbers formatted with full precision), for sy_redis_command's argc/argv/lens.
 *
 * Error convention (stats/): a builder that ran out of memory remembers it; every
 * later add is a no-op and sy_argv_ok says so once, before the command is sent.
 */
#ifndef SY_ARGV_H
#define SY_ARGV_H

#include <stddef.h>

typedef struct sy_argv_s {
  char **v;
  size_t *l;
  size_t n, cap;
  int oom;
} sy_argv_t;

void sy_argv_init(sy_argv_t *a);
void sy_argv_free(sy_argv_t *a);
/* Appends a copy of s (NULL: ""). */
void sy_argv_add(sy_argv_t *a, const char *s);
/* Appends a copy of s[0..n) (binary: it may hold NULs). */
void sy_argv_addn(sy_argv_t *a, const char *s, size_t n);
/* Appends x as "%.17g" (round-trips a double exactly). */
void sy_argv_num(sy_argv_t *a, double x);
/* Appends a "name", value pair. */
void sy_argv_pair(sy_argv_t *a, const char *name, const char *value);
void sy_argv_pair_num(sy_argv_t *a, const char *name, double x);
/* Appends every argument of b. */
void sy_argv_append(sy_argv_t *a, const sy_argv_t *b);
/* 1 if every add succeeded. */
int sy_argv_ok(const sy_argv_t *a);

#endif
