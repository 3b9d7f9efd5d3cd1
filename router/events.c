/*
 * events.c — what an exchange writes to the journal (stats/journal.h): the trace
 * record when it is routed, the request event and the per-variant counters when it
 * ends. Field names are the contract's (proto/events.def), keys are proto/KEYS.md.
 *
 * Request headers a client may send to describe the request (all optional):
 *   x-switchyard-user, x-switchyard-session   ids, stored only as keyed hashes
 *   x-switchyard-tenant                       tenant (feedback keys of other tenants get 403)
 *   x-switchyard-task-id                      the task instance
 *   x-switchyard-country                      ISO 3166-1 alpha-2
 *   x-switchyard-consent                      none | metrics (default) | content
 * With consent none, the pseudonymous ids and the input hash are not stored either.
 */
#include "router/events.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/numfmt.h"
#include "proto/event5.h"
#include "proto/events.h"
#include "proto/keys.h"
#include "proto/latency.h"
#include "router/exchange.h"
#include "router/runtime.h"
#include "router/upstream.h"
#include "router/worker.h"
#include "stats/privacy.h"
#include "stats/store.h"

static const char *const consent_names[] = {"none", "metrics", "content"};

/* Copies a header value that is short printable ASCII; "" otherwise. */
static void copy_header(const sy_head_t *h, const char *name, char *out, size_t cap) {
  size_t n;
  const char *v = sy_head_get(h, name, &n);
  out[0] = '\0';
  if (v == NULL || n == 0 || n >= cap)
    return;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f || v[i] == '|')
      return;
  memcpy(out, v, n);
  out[n] = '\0';
}

static void hash_header(sy_worker_t *w, const sy_head_t *h, const char *name, char out[33]) {
  size_t n;
  const char *v = sy_head_get(h, name, &n);
  out[0] = '\0';
  if (v != NULL && n > 0)
    sy_keyed_hash_hex(&w->link->hash_key, v, n, out);
}

static void capture(sy_worker_t *w, sy_req_t *r, const sy_experiment_conf_t *e) {
  sy_evctx_t *ev = &r->ev;
  size_t n;
  const char *cs = sy_head_get(&r->head, "x-switchyard-consent", &n);
  ev->consent = 1;
  for (unsigned char i = 0; cs != NULL && i < 3; i++)
    if (sy_token_eq(cs, n, consent_names[i]))
      ev->consent = i;
  if (ev->consent > 0) {
    hash_header(w, &r->head, "x-switchyard-user", ev->user);
    hash_header(w, &r->head, "x-switchyard-session", ev->session);
  }
  copy_header(&r->head, "x-switchyard-tenant", ev->tenant, sizeof ev->tenant);
  copy_header(&r->head, "x-switchyard-task-id", ev->task, sizeof ev->task);
  char c[3];
  copy_header(&r->head, "x-switchyard-country", c, sizeof c);
  if (strlen(c) == 2 && isalpha((unsigned char)c[0]) && isalpha((unsigned char)c[1])) {
    ev->country[0] = (char)toupper((unsigned char)c[0]);
    ev->country[1] = (char)toupper((unsigned char)c[1]);
  }
  if (e->thompson.segment_header != NULL)
    copy_header(&r->head, e->thompson.segment_header, ev->segment, sizeof ev->segment);
  sy_usage_scan_init(&ev->usage);
}

/* The trace record lives for the window plus a grace of min(window, 1 h), so a
 * call that is a little late gets 410 rather than 404 (proto/KEYS.md). */
static unsigned trace_ttl(const sy_outcome_conf_t *o) {
  return o->window_s + (o->window_s < 3600 ? o->window_s : 3600);
}

uint64_t sy__events_trace_back_ms(const sy_experiment_conf_t *e, size_t n) {
  unsigned most = 3600;
  for (size_t i = 0; i < n; i++) {
    unsigned t = trace_ttl(&e[i].outcome);
    most = t > most ? t : most;
  }
  return (uint64_t)most * 1000 + 120000; /* and the clocks of routers and Redis apart */
}

/* The counters a request moves in its variant's hash (proto/KEYS.md), as journal row
 * fields: the fixed ones, then the latency buckets. */
enum {
  C_REQUESTS = 0,
  C_ERRORS,
  C_RETRIED,
  C_FALLBACKS,
  C_LAT_SUM,
  C_TOKENS_IN,
  C_TOKENS_OUT,
  C_TOKENS_N,
  C_TOKENS_SQ,
  C_LAT0,
  C_COUNT = C_LAT0 + SY_LAT_BUCKETS
};
static const char *req_fields[C_COUNT] = {"requests",   "errors",    "retried",
                                          "fallbacks",  "lat_ms_sum", "tokens_in",
                                          "tokens_out", "tokens_n",  "tokens_out_sq"};
static pthread_once_t req_fields_once = PTHREAD_ONCE_INIT;

static void init_req_fields(void) {
  for (size_t i = 0; i < SY_LAT_BUCKETS; i++)
    req_fields[C_LAT0 + i] = sy_lat_fields[i];
}

/* The bandit gate's sample-ratio counters (policies/gate.h, proto/KEYS.md). */
enum { A_P_SUM = 0, A_P_SUM_SQ, A_ASSIGNED, A_P_OWN, A_COUNT };
static const char *const assign_fields[A_COUNT] = {"p_sum", "p_sum_sq", "assigned", "p_own"};

/* For every variant the propensity the drawing policy gave it (and its square); for the
 * variant drawn, one assignment and its propensity. Written with the trace record, so
 * one batch holds both sides of the comparison for each request. */
static void count_assignment(sy_journal_t *j, const sy_experiment_conf_t *e, const sy_req_t *r,
                             const sy_policy_t *policy) {
  if (policy == NULL || e->gate.mode != SY_GATE_BANDIT)
    return;
  for (size_t k = 0; k < e->nvariants && k < policy->narms; k++) {
    double q = sy_policy_propensity(policy, k);
    if (!(q > 0) && k != r->variant)
      continue;
    sy_journal_row_t *row = sy_journal_row(j, e->variants[k].stats_key, assign_fields, A_COUNT);
    if (row == NULL) {
      sy_journal_incr(j, e->variants[k].stats_key, "p_sum", q);
      sy_journal_incr(j, e->variants[k].stats_key, "p_sum_sq", q * q);
      if (k == r->variant) {
        sy_journal_incr(j, e->variants[k].stats_key, "assigned", 1);
        sy_journal_incr(j, e->variants[k].stats_key, "p_own", q);
      }
      continue;
    }
    sy_journal_row_add(row, A_P_SUM, q);
    sy_journal_row_add(row, A_P_SUM_SQ, q * q);
    if (k == r->variant) {
      sy_journal_row_add(row, A_ASSIGNED, 1);
      sy_journal_row_add(row, A_P_OWN, q);
    }
  }
}

/* Appends s percent-escaped as proto/event5.h escapes strings. */
static size_t put_esc(char *o, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0;
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '%' || c == '|' || c == ',' || c < 0x20 || c == 0x7f) {
      o[n++] = '%';
      o[n++] = hex[c >> 4];
      o[n++] = hex[c & 15];
    } else {
      o[n++] = (char)c;
    }
  }
  return n;
}

/* The trace record's value (proto/KEYS.md "Trace records"):
 * REF|T_MS|WINDOW_S|PROPENSITY|SEGMENT|TENANT|CONSENT (0 none, 1 metrics, 2 content). */
static size_t trace_value(char *o, const sy_variant_conf_t *v, uint64_t now, unsigned window_s,
                          double p, const sy_evctx_t *ev) {
  size_t n = 0;
  memcpy(o, v->ref, strlen(v->ref));
  n += strlen(v->ref);
  o[n++] = '|';
  n += sy_fmt_u64(o + n, now);
  o[n++] = '|';
  n += sy_fmt_u64(o + n, window_s);
  o[n++] = '|';
  n += sy_fmt_g6(o + n, p);
  o[n++] = '|';
  n += put_esc(o + n, ev->segment);
  o[n++] = '|';
  n += put_esc(o + n, ev->tenant);
  o[n++] = '|';
  o[n++] = (char)('0' + (ev->consent < 3 ? ev->consent : 1));
  return n;
}

void sy__events_routed(sy_worker_t *w, sy_req_t *r, const sy_policy_t *policy) {
  if (w->link == NULL || r->exp < 0)
    return;
  const sy_experiment_conf_t *e = &r->rt->cfg->experiments[r->exp];
  sy_journal_t *j = sy_stats_journal(w->link, e->id);
  if (j == NULL)
    return;
  const sy_variant_conf_t *v = &e->variants[r->variant];
  r->ev.on = 1;
  capture(w, r, e);

  uint64_t now = sy_stats_now_ms();
  unsigned char tid[16];
  /* sizes: ref 12, two numbers, propensity, segment and tenant escaped (3 x 64 each) */
  char val[12 + 3 * SY_NUMFMT_MAX + 2 * 3 * 65 + 16];
  if (sy_trace_bin(r->trace.trace_id, tid) == 0) {
    sy_journal_ref(j, v->ref, v->ref_def);
    size_t n = trace_value(val, v, now, e->outcome.window_s, r->propensity, &r->ev);
    sy_journal_trace(j, tid, now, trace_ttl(&e->outcome), val, n);
  }
  count_assignment(j, e, r, policy);
  if (!e->outcome.continuous && e->outcome.missing == SY_MISSING_FAILURE) {
    char key[160], member[200];
    sy_key_pending(key, sizeof key, e->id);
    snprintf(member, sizeof member, "%s|%s|%s", r->trace.trace_id, v->id, r->ev.segment);
    sy_journal_zadd(j, key, (double)(now + (uint64_t)e->outcome.window_s * 1000), member);
  }
}

void sy__events_input(sy_worker_t *w, sy_req_t *r, const char *body, size_t n) {
  if (r->ev.on && r->ev.consent > 0 && n > 0)
    sy_body_hash_hex(&w->link->hash_key, body, n, r->ev.input);
}

void sy__events_envelope(sy_ev5_t *b, const char *trace_id, const sy_evctx_t *ev) {
  unsigned consent = ev->consent < 3 ? ev->consent : 1;
  static const char *const ids[] = {"ids"};
  sy_ev5_cstr(b, SY_EF_trace_id, trace_id);
  sy_ev5_cstr(b, SY_EF_session_id, ev->session);
  sy_ev5_cstr(b, SY_EF_user_id, ev->user);
  sy_ev5_cstr(b, SY_EF_tenant_id, ev->tenant);
  sy_ev5_cstr(b, SY_EF_task_id, ev->task);
  sy_ev5_cstr(b, SY_EF_country, ev->country);
  sy_ev5_cstr(b, SY_EF_consent_scope, consent_names[consent]);
  sy_ev5_list(b, SY_EF_redaction_flags, ids, ev->consent == 0 ? 1 : 0);
}

/* upstream_statuses of a retried request: each try's result (sy_req_t.tried). */
static void tries_list(sy_ev5_t *b, const sy_req_t *r) {
  const char *items[SY_RETRY_MAX_TRIES];
  size_t n = 0;
  for (unsigned i = 0; i < r->tries && i < SY_RETRY_MAX_TRIES; i++)
    items[n++] = r->tried[i];
  sy_ev5_list(b, SY_EF_upstream_statuses, items, n);
}

void sy__events_done(sy_worker_t *w, sy_req_t *r, const sy_exchange_end_t *end) {
  if (!r->ev.on || w->link == NULL)
    return;
  r->ev.on = 0;
  sy_stats_t *s = w->link;
  const sy_experiment_conf_t *e = &r->rt->cfg->experiments[r->exp];
  sy_journal_t *j = sy_stats_journal(s, e->id);
  if (j == NULL)
    return;
  const sy_variant_conf_t *v = &e->variants[r->variant];
  const sy_evctx_t *ev = &r->ev;
  double ms = end->ms;
  int retried = r->retrying || r->on_fallback; /* a retry was decided (it may not have started) */

  sy_ev5_t *b = &s->ev5;
  sy_journal_ref(j, v->ref, v->ref_def);
  sy_ev5_begin(b, SY_EVT_REQUEST, NULL, s->router_instance,
               sy_stats_now_ms(), v->ref);
  sy__events_envelope(b, r->trace.trace_id, ev);
  sy_ev5_real(b, SY_EF_propensity, r->propensity);
  sy_ev5_cstr(b, SY_EF_model_version, ev->usage.model);
  sy_ev5_cstr(b, SY_EF_input_hash, ev->input);
  sy_ev5_cstr(b, SY_EF_output_id, ev->usage.id);
  sy_ev5_int(b, SY_EF_status, end->logged);
  if (ev->usage.completion_tokens >= 0)
    sy_ev5_int(b, SY_EF_output_tokens, ev->usage.completion_tokens);
  if (ev->usage.prompt_tokens >= 0)
    sy_ev5_int(b, SY_EF_input_tokens, ev->usage.prompt_tokens);
  sy_ev5_real(b, SY_EF_server_latency_ms, ms);
  if (ev->usage.documents > 0)
    sy_ev5_int(b, SY_EF_output_chunks, ev->usage.documents);
  if (retried) {
    sy_ev5_cstr(b, SY_EF_upstream, r->up != NULL ? r->up->conf->name : NULL);
    sy_ev5_int(b, SY_EF_upstream_attempts, r->tries);
    tries_list(b, r);
    sy_ev5_bool(b, SY_EF_fallback, r->on_fallback);
  }
  if (!b->oom)
    sy_journal_event5(j, b->p, b->len);

  pthread_once(&req_fields_once, init_req_fields);
  double add[C_COUNT] = {0};
  int has[C_COUNT] = {0};
  add[C_REQUESTS] = 1, has[C_REQUESTS] = 1;
  add[C_ERRORS] = 1, has[C_ERRORS] = end->error;
  add[C_RETRIED] = 1, has[C_RETRIED] = retried;
  add[C_FALLBACKS] = 1, has[C_FALLBACKS] = r->on_fallback;
  add[C_LAT_SUM] = ms, has[C_LAT_SUM] = 1;
  add[C_LAT0 + sy_lat_bucket(ms)] = 1, has[C_LAT0 + sy_lat_bucket(ms)] = 1;
  if (ev->usage.prompt_tokens > 0)
    add[C_TOKENS_IN] = (double)ev->usage.prompt_tokens, has[C_TOKENS_IN] = 1;
  if (ev->usage.completion_tokens >= 0) {
    double t = (double)ev->usage.completion_tokens;
    add[C_TOKENS_OUT] = t, has[C_TOKENS_OUT] = 1;
    add[C_TOKENS_N] = 1, has[C_TOKENS_N] = 1;
    add[C_TOKENS_SQ] = t * t, has[C_TOKENS_SQ] = 1;
  }
  sy_journal_row_t *row = sy_journal_row(j, v->stats_key, req_fields, C_COUNT);
  for (size_t i = 0; i < C_COUNT; i++) {
    if (!has[i])
      continue;
    if (row != NULL)
      sy_journal_row_add(row, i, add[i]);
    else
      sy_journal_incr(j, v->stats_key, req_fields[i], add[i]);
  }
}
