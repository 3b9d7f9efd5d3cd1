/*
 * test_wh_event.c — the warehouse's pure parts: a stream entry into named fields
 * (warehouse/event.h) in both layouts, the consent rules, the events row's JSON, RFC
 * 3339 times; and `switchyard export`'s argument checks (warehouse/export.h).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "proto/event5.h"
#include "tests/unit/check.h"
#include "warehouse/event.h"
#include "warehouse/export.h"

#define TID "0123456789abcdef0123456789abcdef"
#define UID "fedcba9876543210fedcba9876543210"

static json_t *as_json(const sy_wh_event_t *ev) {
  char *buf = NULL;
  size_t cap = 0;
  long n = sy_wh_event_json(ev, &buf, &cap);
  CHECK(n > 0);
  json_error_t e;
  json_t *j = n > 0 ? json_loadb(buf, (size_t)n, 0, &e) : NULL;
  CHECK_MSG(json_is_object(j), "not JSON: %s", buf ? buf : "");
  free(buf);
  return j;
}

static void build_feedback(sy_ev5_t *b, const char *consent, char *def, size_t cap,
                           char ref[SY_EV5_REF_LEN + 1]) {
  size_t dl = sy_ev5_ref_def(def, cap, "chat", "b", "7", "p2", "model-b", "support",
                             "0123abcd4567ef89");
  sy_ev5_ref_id(def, dl, ref);
  sy_ev5_begin(b, SY_EVT_FEEDBACK, "fb-1", "host:1", 1796677201500ull, ref);
  sy_ev5_cstr(b, SY_EF_trace_id, TID);
  sy_ev5_cstr(b, SY_EF_session_id, UID);
  sy_ev5_cstr(b, SY_EF_user_id, UID);
  sy_ev5_cstr(b, SY_EF_tenant_id, "acme");
  sy_ev5_cstr(b, SY_EF_consent_scope, consent);
  sy_ev5_cstr(b, SY_EF_feedback_type, "rating");
  sy_ev5_real(b, SY_EF_feedback_value, 4);
  sy_ev5_real(b, SY_EF_feedback_weight, 0.5);
  sy_ev5_cstr(b, SY_EF_feedback_comment, "said \"thanks\"\n| ok");
}

static void test_schema5(void) {
  const char *consents[] = {"content", "metrics", "none"};
  for (int k = 0; k < 3; k++) {
    sy_ev5_t b;
    memset(&b, 0, sizeof b);
    char def[256], ref[SY_EV5_REF_LEN + 1], id[32];
    build_feedback(&b, consents[k], def, sizeof def, ref);
    CHECK(sy_wh_ev5_ref(b.p, b.len, id, sizeof id) == SY_EV5_REF_LEN && strcmp(id, ref) == 0);
    const char *names[] = {SY_EV5_FIELD};
    const char *values[] = {b.p};
    size_t lens[] = {b.len};
    sy_wh_event_t ev;
    memset(&ev, 0, sizeof ev);
    char err[128];
    CHECK(sy_wh_event_parse(&ev, names, values, lens, 1, "1796677201600-0", def, err,
                            sizeof err) == 0);
    CHECK(ev.type == SY_EVT_FEEDBACK && ev.ts_ms == 1796677201500LL);
    CHECK(ev.f[SY_EF_trace_id] && strcmp(ev.f[SY_EF_trace_id], TID) == 0);
    CHECK(ev.f[SY_EF_event_id] && strcmp(ev.f[SY_EF_event_id], "fb-1") == 0);
    CHECK(ev.f[SY_EF_experiment] && strcmp(ev.f[SY_EF_experiment], "chat") == 0);
    CHECK(ev.f[SY_EF_variant_version] && strcmp(ev.f[SY_EF_variant_version], "7") == 0);
    CHECK(ev.config_hash && strcmp(ev.config_hash, "0123abcd4567ef89") == 0);
    CHECK(ev.f[SY_EF_feedback_comment] &&
          strcmp(ev.f[SY_EF_feedback_comment], "said \"thanks\"\n| ok") == 0);
    sy_wh_event_consent(&ev);
    json_t *j = as_json(&ev);
    int content = k == 0, none = k == 2;
    CHECK_MSG((ev.f[SY_EF_feedback_comment] != NULL) == content, "comment with %s", consents[k]);
    CHECK((json_object_get(j, "feedback_comment") != NULL) == content);
    if (content)
      CHECK(strcmp(json_string_value(json_object_get(j, "feedback_comment")),
                   "said \"thanks\"\n| ok") == 0);
    CHECK((ev.f[SY_EF_user_id] == NULL) == none && (ev.f[SY_EF_session_id] == NULL) == none);
    CHECK((json_object_get(j, "user_id") == NULL) == none);
    CHECK((json_object_get(j, "session_id") == NULL) == none);
    CHECK(strcmp(json_string_value(json_object_get(j, "feedback_weight")), "0.5") == 0);
    CHECK(strcmp(json_string_value(json_object_get(j, "event_type")), "feedback") == 0);
    json_decref(j);
    sy_wh_event_free(&ev);
    sy_ev5_free(&b);
  }
}

static void test_schema5_request_id(void) {
  sy_ev5_t b;
  memset(&b, 0, sizeof b);
  sy_ev5_begin(&b, SY_EVT_REQUEST, NULL, "host:1", 1000, "");
  sy_ev5_cstr(&b, SY_EF_trace_id, TID);
  const char *names[] = {"e"};
  const char *values[] = {b.p};
  size_t lens[] = {b.len};
  sy_wh_event_t ev;
  memset(&ev, 0, sizeof ev);
  char err[128];
  /* a request's id is its entry's; an unknown ref leaves the ref's fields out */
  CHECK(sy_wh_event_parse(&ev, names, values, lens, 1, "5-3", NULL, err, sizeof err) == 0);
  CHECK(ev.type == SY_EVT_REQUEST && ev.f[SY_EF_event_id] && !strcmp(ev.f[SY_EF_event_id], "5-3"));
  CHECK(ev.f[SY_EF_experiment] == NULL && ev.ts_ms == 1000);
  const char *bad[] = {"6|q|x"};
  size_t bl[] = {5};
  CHECK(sy_wh_event_parse(&ev, names, bad, bl, 1, "5-4", NULL, err, sizeof err) < 0);
  sy_wh_event_free(&ev);
  sy_ev5_free(&b);
}

static void test_fields(void) {
  const char *names[] = {"event_type", "trace_id", "consent_scope", "user_id", "config_hash",
                         "timestamp", "trace_id", "status"};
  const char *values[] = {"request", "t-first", "none", UID, "cfg1", "2026-12-07T21:00:01.5Z",
                          "t-last", ""};
  size_t lens[8];
  for (int i = 0; i < 8; i++)
    lens[i] = strlen(values[i]);
  sy_wh_event_t ev;
  memset(&ev, 0, sizeof ev);
  char err[128];
  CHECK(sy_wh_event_parse(&ev, names, values, lens, 8, "9-0", NULL, err, sizeof err) == 0);
  CHECK(ev.n == 8); /* 7 names (trace_id once), and event_id added */
  CHECK(ev.f[SY_EF_trace_id] && strcmp(ev.f[SY_EF_trace_id], "t-last") == 0);
  CHECK(ev.f[SY_EF_event_id] && strcmp(ev.f[SY_EF_event_id], "9-0") == 0);
  CHECK(ev.config_hash && strcmp(ev.config_hash, "cfg1") == 0);
  CHECK(ev.f[SY_EF_status] == NULL); /* empty: no value */
  CHECK(ev.ts_ms == 1796677201500LL);
  sy_wh_event_consent(&ev);
  CHECK(ev.f[SY_EF_user_id] == NULL);
  /* bytes that are not UTF-8 become U+FFFD (a database refuses them); a NUL ends a value */
  const char *n2[] = {"event_type", "tenant_id", "country"};
  const char *v2[] = {"decision", "a\x93" "b\xE2\x82", "D\xC3\xA9\0junk"};
  size_t l2[] = {8, 6, 8};
  CHECK(sy_wh_event_parse(&ev, n2, v2, l2, 3, "9-2", NULL, err, sizeof err) == 0);
  CHECK(ev.f[SY_EF_tenant_id] && !strcmp(ev.f[SY_EF_tenant_id], "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD"));
  CHECK(ev.f[SY_EF_country] && !strcmp(ev.f[SY_EF_country], "D\xC3\xA9"));
  const char *unknown[] = {"mystery"};
  CHECK(sy_wh_event_parse(&ev, names, unknown, lens, 1, "9-1", NULL, err, sizeof err) < 0);
  sy_wh_event_free(&ev);
}

static void test_times(void) {
  CHECK(sy_wh_rfc3339_ms("1970-01-01T00:00:00.000Z") == 0);
  CHECK(sy_wh_rfc3339_ms("1970-01-01T00:00:01Z") == 1000);
  CHECK(sy_wh_rfc3339_ms("1970-01-01T00:00:01.25Z") == 1250);
  CHECK(sy_wh_rfc3339_ms("2026-12-07T21:00:01.500Z") == 1796677201500LL);
  CHECK(sy_wh_rfc3339_ms("yesterday") == -1);
  CHECK(sy_wh_rfc3339_ms("2026-12-07T21:00:01+02:00") == -1);
}

static int parse(const char *line, sy_wh_opts_t *o, char *err, size_t cap) {
  static char buf[512];
  char *argv[32];
  int argc = 0;
  snprintf(buf, sizeof buf, "%s", line);
  for (char *s = NULL, *t = strtok_r(buf, " ", &s); t && argc < 32; t = strtok_r(NULL, " ", &s))
    argv[argc++] = t;
  return sy_wh_export_parse(argc, argv, o, err, cap);
}

static void test_args(void) {
  sy_wh_opts_t o;
  char err[256];
  CHECK(parse("--config c.yaml --to sqlite:/x.db --once --retain 30d --tenant acme", &o, err,
              sizeof err) == 0);
  CHECK(o.once && !o.follow && o.retain_ms == 30LL * 86400000 && !strcmp(o.tenant, "acme"));
  CHECK(o.batch == 1000 && !strcmp(o.group, "sy-export") && o.nstreams == 0);
  CHECK(parse("--config=c.yaml --to=postgresql://h/db --follow --stream a --stream b "
              "--retain 12h --batch 50", &o, err, sizeof err) == 0);
  CHECK(o.follow && o.nstreams == 2 && o.retain_ms == 12LL * 3600000 && o.batch == 50);
  struct { const char *line, *flag; } bad[] = {
      {"--config c --once", "--to"},
      {"--config c --to mysql://u:pw@h --once", "--to"},
      {"--config c --to sqlite: --once", "--to"},
      {"--config c --to sqlite:x --once --follow", "--once"},
      {"--config c --to sqlite:x", "--follow"},
      {"--config c --to sqlite:x --once --retain 30", "--retain"},
      {"--config c --to sqlite:x --once --retain -1d", "--retain"},
      {"--config c --to sqlite:x --once --batch 0", "--batch"},
      {"--config c --to sqlite:x --once --lag-every x", "--lag-every"},
      {"--to sqlite:x --once", "--config"},
      {"--config c --to sqlite:x --once --bogus", "--bogus"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = '\0';
    CHECK_MSG(parse(bad[i].line, &o, err, sizeof err) < 0 && strstr(err, bad[i].flag),
              "'%s': '%s'", bad[i].line, err);
    CHECK(strstr(err, "pw") == NULL);
  }
  CHECK(parse("--help", &o, err, sizeof err) == 1);
}

/* The streams and refs hashes, one server and Redis Cluster (sy_wh_export_keys). */
static void test_keys(void) {
  sy_wh_opts_t o;
  char err[256];
  const char *exps[] = {"chat", "search"};
  CHECK(parse("--config c --to sqlite:x --once", &o, err, sizeof err) == 0);
  CHECK(sy_wh_export_keys(&o, 0, "sy:events", exps, 2, err, sizeof err) == 0);
  CHECK(!o.cluster && o.nstreams == 1 && !strcmp(o.streams[0], "sy:events") &&
        !strcmp(o.refs[0], "sy:refs"));
  CHECK(parse("--config c --to sqlite:x --once", &o, err, sizeof err) == 0);
  CHECK(sy_wh_export_keys(&o, 1, "sy:events", exps, 2, err, sizeof err) == 0);
  CHECK(o.cluster && o.nstreams == 2 && !strcmp(o.streams[0], "sy:{chat}:events") &&
        !strcmp(o.streams[1], "sy:{search}:events") && !strcmp(o.refs[0], "sy:{chat}:refs") &&
        !strcmp(o.refs[1], "sy:{search}:refs"));
  /* an explicit --stream wins, and names its own refs */
  CHECK(parse("--config c --to sqlite:x --once --stream sy:{search}:events", &o, err,
              sizeof err) == 0);
  CHECK(sy_wh_export_keys(&o, 1, "sy:events", exps, 2, err, sizeof err) == 0);
  CHECK(o.nstreams == 1 && !strcmp(o.refs[0], "sy:{search}:refs"));
  const char *bad[] = {"sy:events", "sy:{}:events", "sy:{a}:eventsx", "x:{a}:events",
                       "sy:{a{b}:events"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char line[128];
    snprintf(line, sizeof line, "--config c --to sqlite:x --once --stream %s", bad[i]);
    CHECK(parse(line, &o, err, sizeof err) == 0);
    err[0] = '\0';
    CHECK_MSG(sy_wh_export_keys(&o, 1, "sy:events", exps, 2, err, sizeof err) < 0 &&
                  strstr(err, "--stream") && strstr(err, bad[i]),
              "%s: '%s'", bad[i], err);
  }
  CHECK(parse("--config c --to sqlite:x --once", &o, err, sizeof err) == 0);
  CHECK(sy_wh_export_keys(&o, 1, "sy:events", exps, 0, err, sizeof err) < 0 &&
        strstr(err, "redis.cluster"));
}

int main(void) {
  test_keys();
  test_schema5();
  test_schema5_request_id();
  test_fields();
  test_times();
  test_args();
  return CHECK_DONE();
}
