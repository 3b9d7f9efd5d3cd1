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
#include <stdio.h>
#include <string.h>

#include "proto/events.h"
#include "proto/keys.h"
#include "proto/latency.h"
#include "router/exchange.h"
#include "router/runtime.h"
#include "router/upstream.h"
#include "router/worker.h"
#include "stats/privacy.h"

#define F(f) (sy_event_fields[SY_EF_##f].name)

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

/* The bandit gate's sample-ratio counters (policies/gate.h, proto/KEYS.md): for every
 * variant the propensity the drawing policy gave it (and its square); for the variant
 * drawn, one assignment and its propensity. Written with the trace record, so one batch
 * holds both sides of the comparison for each request. */
static void count_assignment(sy_journal_t *j, const sy_experiment_conf_t *e, const sy_req_t *r,
                             const sy_policy_t *policy) {
  if (policy == NULL || e->gate.mode != SY_GATE_BANDIT)
    return;
  char key[160];
  for (size_t k = 0; k < e->nvariants && k < policy->narms; k++) {
    double q = sy_policy_propensity(policy, k);
    if (!(q > 0) && k != r->variant)
      continue;
    sy_key_variant(key, sizeof key, e->id, e->variants[k].id);
    sy_journal_incr(j, key, "p_sum", q);
    sy_journal_incr(j, key, "p_sum_sq", q * q);
    if (k == r->variant) {
      sy_journal_incr(j, key, "assigned", 1);
      sy_journal_incr(j, key, "p_own", q);
    }
  }
}

void sy__events_routed(sy_worker_t *w, sy_req_t *r, const sy_policy_t *policy) {
  if (w->link == NULL || w->link->journal == NULL || r->exp < 0)
    return;
  sy_journal_t *j = w->link->journal;
  const sy_experiment_conf_t *e = &r->rt->cfg->experiments[r->exp];
  const sy_variant_conf_t *v = &e->variants[r->variant];
  r->ev.on = 1;
  capture(w, r, e);

  char key[160], num[40];
  uint64_t now = sy_stats_now_ms();
  sy_key_trace(key, sizeof key, r->trace.trace_id);
  sy_journal_record(j, key, trace_ttl(&e->outcome));
  sy_journal_field_str(j, "e", e->id);
  sy_journal_field_str(j, "v", v->id);
  sy_journal_field_str(j, "ver", v->version);
  sy_journal_field_str(j, "tn", r->ev.tenant);
  snprintf(num, sizeof num, "%llu", (unsigned long long)now);
  sy_journal_field_str(j, "t", num);
  sy_journal_field_real(j, "p", r->propensity);
  sy_journal_field_str(j, "s", r->ev.segment);
  sy_journal_field_str(j, "cs", consent_names[r->ev.consent]);
  sy_journal_field_int(j, "w", e->outcome.window_s);
  sy_journal_record_end(j);
  count_assignment(j, e, r, policy);
  if (!e->outcome.continuous && e->outcome.missing == SY_MISSING_FAILURE) {
    char member[200];
    sy_key_pending(key, sizeof key, e->id);
    snprintf(member, sizeof member, "%s|%s|%s", r->trace.trace_id, v->id, r->ev.segment);
    sy_journal_zadd(j, key, (double)(now + (uint64_t)e->outcome.window_s * 1000), member);
  }
}

void sy__events_input(sy_worker_t *w, sy_req_t *r, const char *body, size_t n) {
  if (r->ev.on && r->ev.consent > 0 && n > 0)
    sy_keyed_hash_hex(&w->link->hash_key, body, n, r->ev.input);
}

static void str_field(sy_journal_t *j, const char *name, const char *value) {
  if (value != NULL && value[0] != '\0')
    sy_journal_field_str(j, name, value);
}

void sy__events_envelope(sy_journal_t *j, const char *trace_id, const sy_evctx_t *ev,
                         const sy_experiment_conf_t *e) {
  unsigned consent = ev->consent < 3 ? ev->consent : 1;
  sy_journal_field_str(j, F(trace_id), trace_id);
  str_field(j, F(session_id), ev->session);
  str_field(j, F(user_id), ev->user);
  str_field(j, F(tenant_id), ev->tenant);
  sy_journal_field_str(j, F(task_type), e->id);
  str_field(j, F(task_id), ev->task);
  str_field(j, F(country), ev->country);
  sy_journal_field_str(j, F(consent_scope), consent_names[consent]);
  sy_journal_field_str(j, F(redaction_flags), ev->consent == 0 ? "[\"ids\"]" : "[]");
  sy_journal_field_str(j, F(experiment), e->id);
}

void sy__events_done(sy_worker_t *w, sy_req_t *r, const sy_exchange_end_t *end) {
  if (!r->ev.on || w->link == NULL || w->link->journal == NULL)
    return;
  r->ev.on = 0;
  sy_journal_t *j = w->link->journal;
  const sy_experiment_conf_t *e = &r->rt->cfg->experiments[r->exp];
  const sy_variant_conf_t *v = &e->variants[r->variant];
  const sy_evctx_t *ev = &r->ev;
  int status = end->logged, error = end->error;
  double ms = end->ms;
  char ts[32];
  sy_stats_timestamp(w->link, ts);

  sy_journal_event(j, "request", w->link->router_instance, ts);
  sy__events_envelope(j, r->trace.trace_id, ev, e);
  sy_journal_field_str(j, F(variant), v->id);
  sy_journal_field_str(j, F(variant_version), v->version);
  sy_journal_field_real(j, F(propensity), r->propensity);
  str_field(j, F(prompt_version), v->prompt_version);
  str_field(j, F(model_id), v->model);
  str_field(j, F(model_version), ev->usage.model);
  str_field(j, F(input_hash), ev->input);
  str_field(j, F(output_id), ev->usage.id);
  sy_journal_field_int(j, F(status), status);
  if (ev->usage.completion_tokens >= 0)
    sy_journal_field_int(j, F(output_tokens), ev->usage.completion_tokens);
  if (ev->usage.prompt_tokens >= 0)
    sy_journal_field_int(j, F(input_tokens), ev->usage.prompt_tokens);
  sy_journal_field_real(j, F(server_latency_ms), ms);
  if (ev->usage.documents > 0)
    sy_journal_field_int(j, F(output_chunks), ev->usage.documents);
  int retried = r->retrying || r->on_fallback; /* a retry was decided (it may not have started) */
  if (retried) {
    /* ["503","200"]: each try's result (SY_RETRY_MAX_TRIES of at most 7 characters) */
    char list[SY_RETRY_MAX_TRIES * 12 + 4];
    size_t n = 0;
    list[n++] = '[';
    for (unsigned i = 0; i < r->tries && i < SY_RETRY_MAX_TRIES; i++)
      n += (size_t)snprintf(list + n, sizeof list - n, "%s\"%s\"", i ? "," : "", r->tried[i]);
    snprintf(list + n, sizeof list - n, "]");
    str_field(j, F(upstream), r->up != NULL ? r->up->conf->name : NULL);
    sy_journal_field_int(j, F(upstream_attempts), r->tries);
    sy_journal_field_str(j, F(upstream_statuses), list);
    sy_journal_field_str(j, F(fallback), r->on_fallback ? "true" : "false");
  }
  sy_journal_event_end(j);

  char key[160];
  sy_key_variant(key, sizeof key, e->id, v->id);
  sy_journal_incr(j, key, "requests", 1);
  if (error)
    sy_journal_incr(j, key, "errors", 1);
  if (retried)
    sy_journal_incr(j, key, "retried", 1);
  if (r->on_fallback)
    sy_journal_incr(j, key, "fallbacks", 1);
  sy_journal_incr(j, key, sy_lat_fields[sy_lat_bucket(ms)], 1);
  sy_journal_incr(j, key, "lat_ms_sum", ms);
  if (ev->usage.prompt_tokens > 0)
    sy_journal_incr(j, key, "tokens_in", (double)ev->usage.prompt_tokens);
  if (ev->usage.completion_tokens >= 0) {
    double t = (double)ev->usage.completion_tokens;
    sy_journal_incr(j, key, "tokens_out", t);
    sy_journal_incr(j, key, "tokens_n", 1);
    sy_journal_incr(j, key, "tokens_out_sq", t * t);
  }
}
