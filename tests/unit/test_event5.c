/*
 * test_event5.c — schema 5's compact events (proto/event5.h) and the number formatting
 * under them (base/numfmt.h): every field round-trips through the builder and the
 * decoder as schema 4 wrote it, escapes survive, slots follow events.def, and the
 * printf-free numbers agree with printf.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/numfmt.h"
#include "proto/event5.h"
#include "tests/unit/check.h"

typedef struct got_s {
  char names[64][40];
  char values[64][512];
  int n;
} got_t;

static void collect(void *data, const char *name, const char *value) {
  got_t *g = data;
  if (g->n >= 64)
    return;
  snprintf(g->names[g->n], sizeof g->names[0], "%s", name);
  snprintf(g->values[g->n], sizeof g->values[0], "%s", value);
  g->n++;
}

static const char *get(const got_t *g, const char *name) {
  for (int i = 0; i < g->n; i++)
    if (strcmp(g->names[i], name) == 0)
      return g->values[i];
  return NULL;
}

static void check_field(const got_t *g, const char *name, const char *want) {
  const char *v = get(g, name);
  CHECK_MSG(v != NULL && strcmp(v, want) == 0, "%s: got '%s', want '%s'", name, v ? v : "(none)",
            want);
}

static void test_numbers(void) {
  char out[SY_NUMFMT_MAX + 1], ref[64];
  CHECK(sy_fmt_u64(out, 0) == 1 && memcmp(out, "0", 1) == 0);
  size_t n = sy_fmt_u64(out, 18446744073709551615ull);
  out[n] = '\0';
  CHECK_MSG(strcmp(out, "18446744073709551615") == 0, "u64 max %s", out);
  for (uint64_t v = 1, i = 0; i < 64; i++, v = v * 3 + i) { /* every length, and %llu */
    n = sy_fmt_u64(out, v);
    out[n] = '\0';
    snprintf(ref, sizeof ref, "%llu", (unsigned long long)v);
    CHECK_MSG(strcmp(out, ref) == 0, "u64 %s, printf %s", out, ref);
    n = sy_fmt_u64(out, v - 1);
    out[n] = '\0';
    snprintf(ref, sizeof ref, "%llu", (unsigned long long)(v - 1));
    CHECK_MSG(strcmp(out, ref) == 0, "u64 %s, printf %s", out, ref);
  }
  n = sy_fmt_i64(out, -9223372036854775807ll - 1);
  out[n] = '\0';
  CHECK_MSG(strcmp(out, "-9223372036854775808") == 0, "i64 min %s", out);
  /* %.6g for 1e-4 <= |x| < 1e6 (and integers): the same text */
  unsigned long long seed = 88172645463325252ull;
  int mismatches = 0;
  for (int i = 0; i < 200000; i++) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    double mant = (double)(seed >> 11) / 9007199254740992.0; /* [0, 1) */
    int e = (int)((seed >> 3) % 11) - 4;                    /* 1e-4 .. 1e6 */
    double x = mant * pow(10, e) * ((seed & 1) ? -1 : 1);
    if (i % 7 == 0)
      x = floor(x * 1000) / 1000; /* short decimals, as latencies are */
    if (fabs(x) >= 1e6 || (x != 0 && fabs(x) < 1e-4))
      continue;
    n = sy_fmt_g6(out, x);
    out[n] = '\0';
    snprintf(ref, sizeof ref, "%.6g", x);
    if (strcmp(out, ref) != 0 && mismatches++ < 5)
      CHECK_MSG(0, "g6(%.17g) = %s, printf %s", x, out, ref);
  }
  CHECK_MSG(mismatches == 0, "%d values format unlike printf's %%.6g", mismatches);
  n = sy_fmt_g6(out, 1234567.5);
  out[n] = '\0';
  CHECK_MSG(strcmp(out, "1234570") == 0, "1234567.5 -> %s", out);
  n = sy_fmt_g6(out, 1e-7);
  out[n] = '\0';
  CHECK_MSG(strcmp(out, "1e-07") == 0, "1e-7 -> %s", out);
  n = sy_fmt_g6(out, NAN);
  out[n] = '\0';
  CHECK_MSG(strcmp(out, "nan") == 0 || strcmp(out, "-nan") == 0, "nan -> %s", out);
  n = sy_fmt_g6(out, 0.9999996);
  out[n] = '\0';
  CHECK_MSG(strcmp(out, "1") == 0, "0.9999996 -> %s", out);
}

static void test_request_round_trip(void) {
  sy_ev5_t b = {0};
  char def[512], ref[SY_EV5_REF_LEN + 1];
  size_t dl = sy_ev5_ref_def(def, sizeof def, "chat", "b|x", "v2", "p%1", "gpt,4", "chat",
                             "0123456789abcdef");
  CHECK(dl > 0 && strstr(def, "b%7Cx") != NULL && strstr(def, "p%251") != NULL &&
        strstr(def, "gpt%2C4") != NULL);
  sy_ev5_ref_id(def, dl, ref);
  CHECK(strlen(ref) == SY_EV5_REF_LEN);
  char ref2[SY_EV5_REF_LEN + 1];
  sy_ev5_ref_id(def, dl - 1, ref2);
  CHECK(strcmp(ref, ref2) != 0);

  static const char *const ids[] = {"ids"};
  static const char *const tries[] = {"503", "reset", "200"};
  sy_ev5_begin(&b, SY_EVT_REQUEST, "abcd-17", "host:1", 1796668891906ull, ref);
  CHECK(sy_ev5_cstr(&b, SY_EF_trace_id, "0af7651916cd43dd8448eb211c80319c") == 0);
  CHECK(sy_ev5_cstr(&b, SY_EF_user_id, "~ABCDEFGHIJKLMNOPQRSTUV") == 0); /* looks packed */
  CHECK(sy_ev5_cstr(&b, SY_EF_tenant_id, "acme|eu") == 0);
  CHECK(sy_ev5_cstr(&b, SY_EF_consent_scope, "none") == 0);
  CHECK(sy_ev5_list(&b, SY_EF_redaction_flags, ids, 1) == 0);
  CHECK(sy_ev5_cstr(&b, SY_EF_experiment, "chat") == -1); /* folded into the ref */
  CHECK(sy_ev5_real(&b, SY_EF_propensity, 0.25) == 0);
  CHECK(sy_ev5_cstr(&b, SY_EF_output_id, "chatcmpl-\n1%") == 0);
  CHECK(sy_ev5_int(&b, SY_EF_status, 200) == 0);
  CHECK(sy_ev5_real(&b, SY_EF_server_latency_ms, 12.3456789) == 0);
  CHECK(sy_ev5_cstr(&b, SY_EF_input_hash, "late") == -1); /* out of order: refused */
  CHECK(sy_ev5_cstr(&b, SY_EF_feedback_type, "thumbs") == -1); /* not a request field */
  CHECK(sy_ev5_int(&b, SY_EF_upstream_attempts, 3) == 0);
  CHECK(sy_ev5_list(&b, SY_EF_upstream_statuses, tries, 3) == 0);
  CHECK(sy_ev5_bool(&b, SY_EF_fallback, 1) == 0);
  CHECK(!b.oom && memchr(b.p, '\n', b.len) == NULL);
  CHECK_MSG(memmem(b.p, b.len, "|0|", 3) != NULL, "consent none is not its digit: %.*s",
            (int)b.len, b.p);

  got_t g = {0};
  int n = sy_ev5_decode(b.p, b.len, NULL, def, collect, &g);
  CHECK_MSG(n == g.n && n > 0, "decode returned %d for %d fields", n, g.n);
  check_field(&g, "event_id", "abcd-17");
  check_field(&g, "event_type", "request");
  check_field(&g, "schema_version", "5");
  check_field(&g, "router_instance", "host:1");
  check_field(&g, "timestamp", "2026-12-07T18:41:31.906Z");
  check_field(&g, "trace_id", "0af7651916cd43dd8448eb211c80319c");
  check_field(&g, "tenant_id", "acme|eu");
  check_field(&g, "user_id", "~ABCDEFGHIJKLMNOPQRSTUV");
  CHECK_MSG(memmem(b.p, b.len, "0af7651916cd43dd8448eb211c80319c", 32) == NULL,
            "the trace id is not packed: %.*s", (int)b.len, b.p);
  check_field(&g, "consent_scope", "none");
  check_field(&g, "redaction_flags", "[\"ids\"]");
  check_field(&g, "experiment", "chat");
  check_field(&g, "task_type", "chat");
  check_field(&g, "variant", "b|x");
  check_field(&g, "variant_version", "v2");
  check_field(&g, "prompt_version", "p%1");
  check_field(&g, "model_id", "gpt,4");
  check_field(&g, "config_hash", "0123456789abcdef");
  check_field(&g, "propensity", "0.25");
  check_field(&g, "output_id", "chatcmpl-\n1%");
  check_field(&g, "status", "200");
  check_field(&g, "server_latency_ms", "12.3457");
  check_field(&g, "upstream_attempts", "3");
  check_field(&g, "upstream_statuses", "[\"503\",\"reset\",\"200\"]");
  check_field(&g, "fallback", "true");
  CHECK(get(&g, "input_hash") == NULL && get(&g, "session_id") == NULL);
  CHECK(get(&g, "feedback_type") == NULL);

  /* a feedback event does not carry the request's own ref fields; without its own id,
   * the entry's */
  sy_ev5_begin(&b, SY_EVT_FEEDBACK, NULL, "host:1", 0, ref);
  CHECK(sy_ev5_cstr(&b, SY_EF_trace_id, "0af7651916cd43dd8448eb211c80319c") == 0);
  CHECK(sy_ev5_cstr(&b, SY_EF_feedback_type, "thumbs") == 0);
  CHECK(sy_ev5_real(&b, SY_EF_feedback_value, -1) == 0);
  memset(&g, 0, sizeof g);
  CHECK(sy_ev5_decode(b.p, b.len, "1-0", def, collect, &g) > 0);
  check_field(&g, "event_id", "1-0");
  check_field(&g, "event_type", "feedback");
  check_field(&g, "variant_version", "v2");
  check_field(&g, "feedback_value", "-1");
  check_field(&g, "timestamp", "1970-01-01T00:00:00.000Z");
  check_field(&g, "config_hash", "0123456789abcdef");
  CHECK(get(&g, "model_id") == NULL && get(&g, "prompt_version") == NULL);

  /* a ref written before config_hash existed (six parts): no config_hash, the rest kept */
  char old[512];
  memcpy(old, def, dl);
  *strrchr(old, '|') = '\0';
  memset(&g, 0, sizeof g);
  CHECK(sy_ev5_decode(b.p, b.len, "1-0", old, collect, &g) > 0);
  check_field(&g, "variant_version", "v2");
  CHECK(get(&g, "config_hash") == NULL);

  /* not schema 5 */
  CHECK(sy_ev5_decode("4|q|x|y|0|r", 11, NULL, NULL, collect, &g) == -1);
  CHECK(sy_ev5_decode("5|z|x|y|0|r", 11, NULL, NULL, collect, &g) == -1);
  CHECK(sy_ev5_decode("5|q", 3, NULL, NULL, collect, &g) == -1);
  sy_ev5_free(&b);
}

static void test_slots(void) {
  /* slots follow events.def's order, start after the head, and skip folded fields */
  int last = SY_EV5_HEAD - 1;
  for (int f = 0; f < SY_EF_COUNT; f++) {
    int s = sy_ev5_slot(SY_EVT_REQUEST, (sy_event_field_t)f);
    if (s < 0)
      continue;
    CHECK_MSG(s == last + 1, "field %s at slot %d after %d", sy_event_fields[f].name, s, last);
    last = s;
  }
  CHECK(sy_ev5_slot(SY_EVT_REQUEST, SY_EF_trace_id) == SY_EV5_HEAD);
  CHECK(sy_ev5_slot(SY_EVT_REQUEST, SY_EF_variant) == -1);
  CHECK(sy_ev5_slot(SY_EVT_SHADOW, SY_EF_similarity) > 0);
  CHECK(sy_ev5_slot(SY_EVT_REQUEST, SY_EF_similarity) == -1);
}

int main(void) {
  test_numbers();
  test_request_round_trip();
  test_slots();
  return CHECK_DONE();
}
