/*
 * apply.c — one event into the events row and the trace row (apply.h). Requests and
 * outcomes are single upserts; feedback and shadow comparisons accumulate in JSON
 * columns, so those read the row, merge in C (jansson) and write it back.
 */
#include "warehouse/apply.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proto/event5.h"

static sy_wh_val_t txt(const char *s) {
  sy_wh_val_t v = {s != NULL ? SY_WH_TEXT : SY_WH_NULL, s, 0, 0};
  return v;
}

static sy_wh_val_t i64(int64_t i) {
  sy_wh_val_t v = {SY_WH_INT, NULL, i, 0};
  return v;
}

/* An int field's value, NULL when absent or not a number. */
static sy_wh_val_t num_i(const char *s) {
  char *end = NULL;
  long long x = s != NULL ? strtoll(s, &end, 10) : 0;
  return s != NULL && end != s && *end == '\0' ? i64(x) : txt(NULL);
}

static sy_wh_val_t num_r(const char *s) {
  char *end = NULL;
  double x = s != NULL ? strtod(s, &end) : 0;
  sy_wh_val_t v = {SY_WH_REAL, NULL, 0, x};
  return s != NULL && end != s && *end == '\0' && isfinite(x) ? v : txt(NULL);
}

static long run(sy_wh_apply_t *a, sy_wh_stmt_t st, const sy_wh_val_t *v, size_t n, char *err,
                size_t cap) {
  return a->sink->ops->exec(a->sink, st, v, n, err, cap);
}

static int request(sy_wh_apply_t *a, const sy_wh_event_t *ev, int64_t now, char *err, size_t cap) {
  const char *const *f = ev->f;
  sy_wh_val_t v[SY_WH_REQ_COUNT];
#define S(c) v[SY_WH_REQ_##c] = txt(f[SY_EF_##c]);
  S(trace_id) S(experiment) S(variant) S(variant_version) S(prompt_version) S(model_id)
  S(model_version) S(task_type) S(task_id) S(tenant_id) S(user_id) S(session_id)
  S(consent_scope) S(country)
#undef S
  v[SY_WH_REQ_config_hash] = txt(ev->config_hash);
  v[SY_WH_REQ_ts_ms] = ev->ts_ms >= 0 ? i64(ev->ts_ms) : txt(NULL);
  v[SY_WH_REQ_propensity] = num_r(f[SY_EF_propensity]);
  v[SY_WH_REQ_status] = num_i(f[SY_EF_status]);
  v[SY_WH_REQ_server_latency_ms] = num_r(f[SY_EF_server_latency_ms]);
  v[SY_WH_REQ_input_tokens] = num_i(f[SY_EF_input_tokens]);
  v[SY_WH_REQ_output_tokens] = num_i(f[SY_EF_output_tokens]);
  v[SY_WH_REQ_request_event_id] = txt(f[SY_EF_event_id]);
  v[SY_WH_REQ_updated_ms] = i64(now);
  return run(a, SY_WH_TRACE_REQUEST, v, SY_WH_REQ_COUNT, err, cap) < 0 ? -1 : 0;
}

static int outcome(sy_wh_apply_t *a, const sy_wh_event_t *ev, int64_t now, char *err, size_t cap) {
  const char *const *f = ev->f;
  const char *missing = f[SY_EF_outcome_missing];
  sy_wh_val_t v[] = {txt(f[SY_EF_trace_id]), txt(f[SY_EF_experiment]), txt(f[SY_EF_variant]),
                     txt(f[SY_EF_variant_version]), txt(f[SY_EF_tenant_id]),
                     txt(f[SY_EF_consent_scope]), txt(f[SY_EF_outcome_metric_name]),
                     num_r(f[SY_EF_outcome_metric_value]),
                     i64(missing != NULL && strcmp(missing, "true") == 0),
                     ev->ts_ms >= 0 ? i64(ev->ts_ms) : txt(NULL), i64(now)};
  return run(a, SY_WH_TRACE_OUTCOME, v, sizeof v / sizeof *v, err, cap) < 0 ? -1 : 0;
}

/* The row's accumulated columns: feedback, feedback_n, feedback_comment, shadow,
 * consent_scope (copies; NULL where the row has none). */
typedef struct {
  json_t *feedback, *shadow;
  long long feedback_n;
  char *comment, *consent;
} extras_t;

static int extras_get(sy_wh_apply_t *a, const sy_wh_event_t *ev, extras_t *x, char *err,
                      size_t cap) {
  memset(x, 0, sizeof *x);
  sy_wh_val_t k[] = {txt(ev->f[SY_EF_trace_id]), txt(ev->f[SY_EF_experiment])};
  sy_wh_row_t row;
  int rc = a->sink->ops->query(a->sink, SY_WH_TRACE_EXTRAS, k, 2, &row, err, cap);
  if (rc < 0)
    return -1;
  if (rc == 1 && row.ncols >= 5) {
    x->feedback = row.col[0] ? json_loads(row.col[0], 0, NULL) : NULL;
    x->feedback_n = row.col[1] ? atoll(row.col[1]) : 0;
    x->comment = row.col[2] ? strdup(row.col[2]) : NULL;
    x->shadow = row.col[3] ? json_loads(row.col[3], 0, NULL) : NULL;
    x->consent = row.col[4] ? strdup(row.col[4]) : NULL;
  }
  if (!json_is_object(x->feedback))
    json_decref(x->feedback), x->feedback = json_object();
  if (!json_is_array(x->shadow))
    json_decref(x->shadow), x->shadow = json_array();
  return 0;
}

static void extras_free(extras_t *x) {
  json_decref(x->feedback);
  json_decref(x->shadow);
  free(x->comment);
  free(x->consent);
}

static double real_or(const char *s, double dflt) {
  sy_wh_val_t v = num_r(s);
  return v.type == SY_WH_REAL ? v.r : dflt;
}

static int feedback(sy_wh_apply_t *a, const sy_wh_event_t *ev, int64_t now, char *err,
                    size_t cap) {
  const char *const *f = ev->f;
  extras_t x;
  if (extras_get(a, ev, &x, err, cap) < 0)
    return -1;
  const char *type = f[SY_EF_feedback_type] ? f[SY_EF_feedback_type] : "unknown";
  json_t *t = json_object_get(x.feedback, type);
  if (!json_is_object(t)) {
    t = json_pack("{s:I,s:f,s:f,s:n}", "n", (json_int_t)0, "sum", 0.0, "weight", 0.0, "last");
    json_object_set_new(x.feedback, type, t);
  }
  sy_wh_val_t val = num_r(f[SY_EF_feedback_value]);
  json_object_set_new(t, "n", json_integer(json_integer_value(json_object_get(t, "n")) + 1));
  if (val.type == SY_WH_REAL) {
    json_object_set_new(t, "sum", json_real(json_number_value(json_object_get(t, "sum")) + val.r));
    json_object_set_new(t, "last", json_real(val.r));
  }
  json_object_set_new(t, "weight", json_real(json_number_value(json_object_get(t, "weight")) +
                                             real_or(f[SY_EF_feedback_weight], 1.0)));
  /* content only where both the feedback and the request (when it is known) allow it */
  const char *comment = f[SY_EF_feedback_comment] ? f[SY_EF_feedback_comment] : x.comment;
  if (x.consent != NULL && strcmp(x.consent, "content") != 0)
    comment = NULL;
  char *fb = json_dumps(x.feedback, JSON_COMPACT | JSON_SORT_KEYS);
  sy_wh_val_t v[] = {txt(f[SY_EF_trace_id]), txt(f[SY_EF_experiment]), txt(f[SY_EF_variant]),
                     txt(f[SY_EF_variant_version]), txt(f[SY_EF_tenant_id]),
                     txt(f[SY_EF_consent_scope]), txt(fb), i64(x.feedback_n + 1), txt(comment),
                     i64(now)};
  long rc = fb != NULL ? run(a, SY_WH_TRACE_FEEDBACK, v, sizeof v / sizeof *v, err, cap)
                       : (snprintf(err, cap, "out of memory"), -1);
  free(fb);
  extras_free(&x);
  return rc < 0 ? -1 : 0;
}

static int shadow(sy_wh_apply_t *a, const sy_wh_event_t *ev, int64_t now, char *err, size_t cap) {
  const char *const *f = ev->f;
  extras_t x;
  if (extras_get(a, ev, &x, err, cap) < 0)
    return -1;
  json_t *c = json_object();
  sy_wh_val_t st = num_i(f[SY_EF_status]), tok = num_i(f[SY_EF_output_tokens]);
  sy_wh_val_t lat = num_r(f[SY_EF_server_latency_ms]), sim = num_r(f[SY_EF_similarity]);
  const char *em = f[SY_EF_exact_match];
  json_object_set_new(c, "variant", f[SY_EF_variant] ? json_string(f[SY_EF_variant]) : json_null());
  json_object_set_new(c, "status", st.type == SY_WH_INT ? json_integer(st.i) : json_null());
  json_object_set_new(c, "latency_ms", lat.type == SY_WH_REAL ? json_real(lat.r) : json_null());
  json_object_set_new(c, "exact_match", em ? json_boolean(strcmp(em, "true") == 0) : json_null());
  json_object_set_new(c, "similarity", sim.type == SY_WH_REAL ? json_real(sim.r) : json_null());
  json_object_set_new(c, "output_tokens", tok.type == SY_WH_INT ? json_integer(tok.i) : json_null());
  json_array_append_new(x.shadow, c);
  char *sh = json_dumps(x.shadow, JSON_COMPACT | JSON_PRESERVE_ORDER);
  /* a row the shadow creates is the primary's: its variant is primary_variant */
  sy_wh_val_t v[] = {txt(f[SY_EF_trace_id]), txt(f[SY_EF_experiment]),
                     txt(f[SY_EF_primary_variant]), txt(f[SY_EF_tenant_id]),
                     txt(f[SY_EF_consent_scope]), txt(sh), i64(now)};
  long rc = sh != NULL ? run(a, SY_WH_TRACE_SHADOW, v, sizeof v / sizeof *v, err, cap)
                       : (snprintf(err, cap, "out of memory"), -1);
  free(sh);
  extras_free(&x);
  return rc < 0 ? -1 : 0;
}

int sy_wh_apply(sy_wh_apply_t *a, const char *stream, const char *entry_id,
                const sy_wh_event_t *ev, int64_t now_ms, char *err, size_t cap) {
  const char *const *f = ev->f;
  if (sy_wh_event_json(ev, &a->json, &a->jcap) < 0) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  sy_wh_val_t v[] = {txt(stream), txt(entry_id), txt(f[SY_EF_event_id]),
                     txt(f[SY_EF_event_type]), txt(f[SY_EF_trace_id]), txt(f[SY_EF_experiment]),
                     txt(f[SY_EF_variant]), ev->ts_ms >= 0 ? i64(ev->ts_ms) : txt(NULL),
                     txt(a->json)};
  long n = run(a, SY_WH_EVENT_INSERT, v, sizeof v / sizeof *v, err, cap);
  if (n <= 0)
    return n < 0 ? -1 : 0;
  /* a trace row needs its key; decisions (and keyless events) stay in events only */
  if (f[SY_EF_trace_id] == NULL || f[SY_EF_experiment] == NULL)
    return 1;
  int rc = 0;
  switch (ev->type) {
  case SY_EVT_REQUEST: rc = request(a, ev, now_ms, err, cap); break;
  case SY_EVT_OUTCOME: rc = outcome(a, ev, now_ms, err, cap); break;
  case SY_EVT_FEEDBACK: rc = feedback(a, ev, now_ms, err, cap); break;
  case SY_EVT_SHADOW: rc = shadow(a, ev, now_ms, err, cap); break;
  default: break;
  }
  return rc < 0 ? -1 : 1;
}

void sy_wh_apply_free(sy_wh_apply_t *a) {
  free(a->json);
  a->json = NULL;
  a->jcap = 0;
}
