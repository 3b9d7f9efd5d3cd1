#include "stats/argv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sy_argv_init(sy_argv_t *a) { memset(a, 0, sizeof(*a)); }

void sy_argv_free(sy_argv_t *a) {
  for (size_t i = 0; i < a->n; i++)
    free(a->v[i]);
  free(a->v);
  free(a->l);
  memset(a, 0, sizeof(*a));
}

static void add_n(sy_argv_t *a, const char *s, size_t len) {
  if (a->oom)
    return;
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 32;
    char **v = realloc(a->v, cap * sizeof *v);
    if (v != NULL)
      a->v = v;
    size_t *l = v != NULL ? realloc(a->l, cap * sizeof *l) : NULL;
    if (l == NULL) {
      a->oom = 1;
      return;
    }
    a->l = l;
    a->cap = cap;
  }
  char *c = malloc(len + 1);
  if (c == NULL) {
    a->oom = 1;
    return;
  }
  memcpy(c, s, len);
  c[len] = '\0';
  a->v[a->n] = c;
  a->l[a->n] = len;
  a->n++;
}

void sy_argv_add(sy_argv_t *a, const char *s) {
  s = s != NULL ? s : "";
  add_n(a, s, strlen(s));
}

void sy_argv_addn(sy_argv_t *a, const char *s, size_t n) { add_n(a, s, n); }

void sy_argv_num(sy_argv_t *a, double x) {
  char num[40];
  int n = snprintf(num, sizeof num, "%.17g", x);
  add_n(a, num, (size_t)n);
}

void sy_argv_pair(sy_argv_t *a, const char *name, const char *value) {
  sy_argv_add(a, name);
  sy_argv_add(a, value);
}

void sy_argv_pair_num(sy_argv_t *a, const char *name, double x) {
  sy_argv_add(a, name);
  sy_argv_num(a, x);
}

void sy_argv_append(sy_argv_t *a, const sy_argv_t *b) {
  if (b->oom)
    a->oom = 1;
  for (size_t i = 0; i < b->n; i++)
    add_n(a, b->v[i], b->l[i]);
}

int sy_argv_ok(const sy_argv_t *a) { return !a->oom; }
