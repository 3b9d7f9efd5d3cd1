/*
 * test_jcount.c — unit tests of stats/jcount.c, the journal's per-batch counter sums:
 * increments of one (key, field) add up, rows add by position and report only the
 * fields touched, draining yields every counter once (rows first) and empties both
 * tables, the "nearly full" signals come at their bounds, and names that do not fit
 * are refused rather than truncated.
 */
#include "stats/jcount.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

typedef struct seen_s {
  char names[1024][64];
  double sums[1024];
  int n;
} seen_t;

static void collect(void *data, const char *key, const char *field, double sum) {
  seen_t *s = data;
  if (s->n < 1024) {
    snprintf(s->names[s->n], sizeof s->names[0], "%s|%s", key, field);
    s->sums[s->n++] = sum;
  }
}

static double sum_of(const seen_t *s, const char *name, int *count) {
  double v = 0;
  *count = 0;
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->names[i], name) == 0)
      v += s->sums[i], (*count)++;
  return v;
}

static void test_sums_and_rows(void) {
  static sy__jcount_t t; /* large: not on the stack */
  static const char *const fields[] = {"requests", "errors", "lat_ms_sum"};
  static seen_t s;
  CHECK(sy__jcount_empty(&t));
  CHECK(sy__jcount_add(&t, "sy:{chat}:v:a", "fb:thumbs:n", 1) == 0);
  CHECK(sy__jcount_add(&t, "sy:{chat}:v:a", "fb:thumbs:n", 2.5) == 0);
  CHECK(sy__jcount_add(&t, "sy:{chat}:v:b", "fb:thumbs:n", 1) == 0);
  sy__jrow_t *ra = sy__jcount_row(&t, "sy:{chat}:v:a", fields, 3);
  CHECK(ra != NULL && sy__jcount_row(&t, "sy:{chat}:v:a", fields, 3) == ra);
  sy__jrow_add(ra, 0, 1);
  sy__jrow_add(ra, 0, 1);
  sy__jrow_add(ra, 2, 12.25);
  sy__jrow_add(ra, 3, 99); /* out of range: nothing */
  sy__jrow_add(NULL, 0, 1);
  CHECK(!sy__jcount_empty(&t));
  sy__jcount_drain(&t, collect, &s);
  CHECK(sy__jcount_empty(&t));
  int c;
  CHECK(sum_of(&s, "sy:{chat}:v:a|fb:thumbs:n", &c) == 3.5 && c == 1);
  CHECK(sum_of(&s, "sy:{chat}:v:b|fb:thumbs:n", &c) == 1 && c == 1);
  CHECK(sum_of(&s, "sy:{chat}:v:a|requests", &c) == 2 && c == 1);
  CHECK(sum_of(&s, "sy:{chat}:v:a|lat_ms_sum", &c) == 12.25 && c == 1);
  CHECK(sum_of(&s, "sy:{chat}:v:a|errors", &c) == 0 && c == 0); /* never touched */
  CHECK_MSG(s.n == 4 && strncmp(s.names[0], "sy:{chat}:v:a|", 14) == 0 &&
                strstr(s.names[2], "fb:thumbs") != NULL,
            "drained %d counters, rows first: %s, %s", s.n, s.names[0], s.names[2]);

  /* after a drain, a row starts from zero again */
  s.n = 0;
  ra = sy__jcount_row(&t, "sy:{chat}:v:a", fields, 3);
  sy__jrow_add(ra, 1, 1);
  sy__jcount_drain(&t, collect, &s);
  CHECK(s.n == 1 && strcmp(s.names[0], "sy:{chat}:v:a|errors") == 0 && s.sums[0] == 1);
  sy__jcount_free(&t);
}

static void test_bounds(void) {
  static sy__jcount_t t;
  static const char *const fields[] = {"x"};
  char key[64], big[600];
  int full = -1;
  for (int i = 0; i < SY__JCOUNT_MAX && full != 1; i++) {
    snprintf(key, sizeof key, "k%d", i);
    full = sy__jcount_add(&t, key, "f", 1);
    CHECK_MSG(full == (i == SY__JCOUNT_MAX - 1 ? 1 : 0), "add %d said %d", i, full);
  }
  CHECK(t.nsums == SY__JCOUNT_MAX);
  for (int i = 0; i < SY__JROW_MAX; i++) {
    CHECK(!sy__jcount_rows_full(&t));
    snprintf(key, sizeof key, "row%d", i);
    CHECK(sy__jcount_row(&t, key, fields, 1) != NULL);
  }
  CHECK(sy__jcount_rows_full(&t));
  memset(big, 'k', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  CHECK(sy__jcount_add(&t, big, "f", 1) == -1);                       /* too long */
  CHECK(sy__jcount_row(&t, "r", fields, SY__JROW_FIELDS + 1) == NULL); /* too wide */
  static seen_t s;
  sy__jcount_drain(&t, collect, &s);
  CHECK(s.n == SY__JCOUNT_MAX && sy__jcount_empty(&t)); /* rows untouched: nothing */
  sy__jcount_free(&t);
}

int main(void) {
  test_sums_and_rows();
  test_bounds();
  return CHECK_DONE();
}
