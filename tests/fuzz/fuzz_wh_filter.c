/*
 * fuzz_wh_filter.c — libFuzzer target for the parsers of the warehouse readers: the
 * dataset filter grammar (warehouse/dataset_filter.c), the target policy specs of
 * `evaluate` (policies/ope.c) and canonical JSON strings (warehouse/cjson.c).
 *
 * The input, as a NUL-terminated string, is parsed as a filter and as a policy over the
 * variants a, b, c. The target aborts when:
 *   - an accepted filter's canonical text does not parse, or parses to another canonical
 *     text (the manifest relies on the round trip);
 *   - its SQL holds a quote, or not exactly as many `?` as parameters (no value may reach
 *     the SQL text);
 *   - an accepted split/uniform/always policy's shares are negative, not finite, or do not
 *     sum to 1;
 *   - the input, written as a canonical JSON string, does not read back (with jansson) as
 *     the same bytes, when it is valid UTF-8.
 * Fuzz it with tests/fuzz/run; meson runs the checked-in corpus (suite `fuzz`).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policies/ope.h"
#include "tests/fuzz/fuzz_check.h"
#include "warehouse/cjson.h"
#include "warehouse/dataset_filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_filter(const char *s) {
  sy_ds_filter_t f, g;
  char err[256], c1[1024], c2[1024], sql[1024];
  if (sy_ds_filter_parse(s, &f, err, sizeof err) < 0) {
    REQUIRE(err[0] != 0);
    return;
  }
  sy_ds_filter_canonical(&f, c1, sizeof c1);
  REQUIRE(sy_ds_filter_parse(c1, &g, err, sizeof err) == 0);
  sy_ds_filter_canonical(&g, c2, sizeof c2);
  REQUIRE(strcmp(c1, c2) == 0);
  sy_whr_param_t p[SY_DS_MAX_PARAMS];
  size_t np = sy_ds_filter_sql(&f, sql, sizeof sql, p), q = 0;
  REQUIRE(strpbrk(sql, "'\"") == NULL);
  for (const char *c = sql; *c; c++)
    q += *c == '?';
  REQUIRE(q == np);
}

static void check_policy(const char *s) {
  static const char *const names[] = {"a", "b", "c"};
  sy_ope_target_t t;
  char err[256];
  if (sy_ope_target_parse(s, names, 3, &t, err, sizeof err) < 0) {
    REQUIRE(err[0] != 0);
    return;
  }
  if (t.kind == SY_OPE_GREEDY)
    return;
  double sum = 0;
  for (size_t a = 0; a < t.narms; a++) {
    REQUIRE(isfinite(t.pi[a]) && t.pi[a] >= 0);
    sum += t.pi[a];
  }
  REQUIRE(fabs(sum - 1) < 1e-9);
}

static void check_string(const char *s, size_t n) {
  json_t *in = json_stringn(s, n); /* NULL unless valid UTF-8 */
  if (in == NULL)
    return;
  sy_cjson_buf_t b = {0};
  REQUIRE(sy_cjson_dump(&b, in, 0) == 0);
  json_t *back = json_loads(b.p, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  REQUIRE(back != NULL && json_is_string(back) && json_string_length(back) == n &&
          memcmp(json_string_value(back), s, n) == 0);
  json_decref(back);
  json_decref(in);
  free(b.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s == NULL)
    return 0;
  memcpy(s, data, size);
  s[size] = 0;
  check_filter(s);
  check_policy(s);
  check_string(s, size);
  free(s);
  return 0;
}
