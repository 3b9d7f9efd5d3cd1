/*
 * test_wh_format.c — the pure parts of the warehouse readers: the dataset filter grammar
 * (warehouse/dataset_filter.h: parsing, canonical text, the parameterised SQL, times) and
 * canonical JSON (warehouse/cjson.h: key order, real formatting, escapes, indentation).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tests/unit/check.h"
#include "warehouse/cjson.h"
#include "warehouse/dataset_filter.h"

static void test_filter(void) {
  sy_ds_filter_t f, g;
  char err[256], canon[512], canon2[512], sql[1024];
  sy_whr_param_t p[SY_DS_MAX_PARAMS];
  CHECK(sy_ds_filter_parse("outcome=present, tenant=t1,experiment=chat,variant=a,since=1000,"
                           "until=2026-12-07T10:00:00.250Z",
                           &f, err, sizeof err) == 0);
  sy_ds_filter_canonical(&f, canon, sizeof canon);
  CHECK(strcmp(canon, "experiment=chat,variant=a,tenant=t1,since=1000,until=1796637600250,"
                      "outcome=present") == 0);
  CHECK(sy_ds_filter_parse(canon, &g, err, sizeof err) == 0);
  sy_ds_filter_canonical(&g, canon2, sizeof canon2);
  CHECK(strcmp(canon, canon2) == 0);
  size_t np = sy_ds_filter_sql(&f, sql, sizeof sql, p);
  CHECK(np == 5);
  CHECK(strcmp(sql, "ts_ms IS NOT NULL AND experiment = ? AND variant = ? AND tenant_id = ? AND "
                    "ts_ms >= ? AND ts_ms < ? AND outcome_value IS NOT NULL") == 0);
  CHECK(!p[0].is_int && strcmp(p[0].s, "chat") == 0);
  CHECK(!p[2].is_int && strcmp(p[2].s, "t1") == 0);
  CHECK(p[3].is_int && p[3].i == 1000 && p[4].is_int && p[4].i == 1796637600250LL);
  CHECK(sy_ds_filter_parse("", &f, err, sizeof err) == 0);
  sy_ds_filter_canonical(&f, canon, sizeof canon);
  CHECK(strcmp(canon, "outcome=any") == 0);
  CHECK(sy_ds_filter_sql(&f, sql, sizeof sql, p) == 0 && strcmp(sql, "ts_ms IS NOT NULL") == 0);
  CHECK(sy_ds_filter_parse("outcome=missing", &f, err, sizeof err) == 0);
  sy_ds_filter_sql(&f, sql, sizeof sql, p);
  CHECK(strstr(sql, "outcome_value IS NULL") != NULL);
  int64_t ms;
  CHECK(sy_ds_parse_time("1970-01-01", &ms) == 0 && ms == 0);
  CHECK(sy_ds_parse_time("2000-03-01T00:00:00Z", &ms) == 0 && ms == 951868800000LL);
  CHECK(sy_ds_parse_time("2026-12-07T10:00:00", &ms) < 0); /* no zone: refused */
  CHECK(sy_ds_parse_time("2026-13-01", &ms) < 0);
  CHECK(sy_ds_parse_time("1969-12-31", &ms) < 0); /* negative ms would not round-trip */
  CHECK(sy_ds_parse_time("2026-12-07T10:00:00.25Z", &ms) < 0);
  const char *bad[] = {"experiment=a b", "experiment='x'", "variant=a;b", "tenant=",
                       "since=1,since=2", "until=0x10", "foo=1", ",", "a=1=2"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_MSG(sy_ds_filter_parse(bad[i], &f, err, sizeof err) < 0 && err[0], "%s", bad[i]);
}

static const char *dump(sy_cjson_buf_t *b, json_t *v, int indent) {
  b->len = 0;
  CHECK(sy_cjson_dump(b, v, indent) == 0);
  json_decref(v);
  return b->p;
}

static void test_cjson(void) {
  sy_cjson_buf_t b = {0};
  CHECK(strcmp(dump(&b, json_pack("{s:f,s:f,s:f,s:f,s:f}", "b", 0.1, "a", 1.0, "c", 1e300, "d",
                                  -2.5e-7, "e", 1.0 / 3),
                    0),
               "{\"a\":1.0,\"b\":0.1,\"c\":1e+300,\"d\":-2.5e-07,\"e\":0.3333333333333333}") ==
        0);
  /* Every real reads back to itself. */
  double vals[] = {0.1, 0.2 + 0.1, 1.0 / 3, 123456789.123456789, 5e-324, 1.7976931348623157e308};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    b.len = 0;
    CHECK(sy_cjson_real(&b, vals[i]) == 0);
    CHECK_MSG(strtod(b.p, NULL) == vals[i], "%s", b.p);
  }
  b.len = 0;
  sy_cjson_real(&b, NAN);
  CHECK(strcmp(b.p, "null") == 0);
  CHECK(strcmp(dump(&b, json_pack("[i,b,n,s]", -42, 1, "q\"\\\n\t\x01\xc3\xa9"), 0),
               "[-42,true,null,\"q\\\"\\\\\\n\\t\\u0001\xc3\xa9\"]") == 0);
  CHECK(strcmp(dump(&b, json_pack("{s:{s:[i,i],s:{}},s:[]}", "z", "y", 1, 2, "x", "w"), 2),
               "{\n  \"w\": [],\n  \"z\": {\n    \"x\": {},\n    \"y\": [\n      1,\n      2\n"
               "    ]\n  }\n}") == 0);
  free(b.p);
}

int main(void) {
  test_filter();
  test_cjson();
  return CHECK_DONE();
}
