/*
 * api.c — switchyard's own HTTP API on the main listener (proto/API.md):
 *
 *   POST /switchyard/v1/feedback  {trace_id, type, value?, comment?, name?, client_latency_ms?}
 *   POST /switchyard/v1/outcome   {trace_id, metric, value}
 *   GET  /switchyard/v1/health    the Redis link and the journal's counters
 *
 * Feedback and outcomes are authenticated by an API key (Authorization: Bearer KEY
 * or x-switchyard-key), compared in constant time; the key's tenant must own the
 * trace and its trust weighs what it reports. A call reads the trace record, works
 * out the statistics it moves from the experiment's outcome config, then runs the
 * feedback script, which re-checks everything and applies it atomically and at
 * most once per (trace, type or metric). Redis away: 503 with Retry-After, nothing
 * half-applied, and the caller's retry is safe.
 */
#include "router/api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "base/log.h"
#include "proto/event5.h"
#include "proto/events.h"
#include "router/events.h"
#include "router/api_parse.h"
#include "router/conn.h"
#include "router/exchange.h"
#include "router/runtime.h"
#include "router/worker.h"
#include "stats/feedback.h"
#include "stats/privacy.h"
#include "stats/store.h"

#define API_PREFIX "/switchyard/"

enum { OP_FEEDBACK = 0, OP_OUTCOME };

struct sy_api_op_s {
  uv_timer_t retry; /* a trace not in Redis yet is looked up once more */
  int has_timer;
  int retried;
  sy_conn_t *c; /* NULL once the client has gone */
  sy_worker_t *w;
  int kind;
  const sy_apikey_conf_t *key;
  char trace_id[33];
  int fb_type;      /* feedback */
  char name[SY_API_NAME_MAX + 1]; /* custom feedback name / outcome metric */
  double value;
  int has_value;
  double client_ms; /* NAN if absent */
  char *comment;    /* NULL if absent */
};

int sy__api_is_api(const sy_req_t *r) {
  const char *t = r->head.buf + r->head.line_off;
  return r->head.line_len >= sizeof API_PREFIX - 1 &&
         memcmp(t, API_PREFIX, sizeof API_PREFIX - 1) == 0;
}

/* ---- responses ---- */

static void respond_json(sy_conn_t *c, int status, json_t *body, const char *extra_header) {
  sy_req_t *r = &c->req;
  int close = !r->keepalive || c->w->draining;
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  size_t n = text ? strlen(text) : 0;
  sy_buf_t *out = text ? sy_buf_new(512 + n) : NULL;
  if (out != NULL) {
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "%s%s\r\n",
                      status, sy_http_reason(status), n + 1, extra_header ? extra_header : "",
                      close ? "Connection: close\r\n" : "");
    if (sy_buf_append(&out, head, (size_t)hn) < 0 || sy_buf_append(&out, text, n) < 0 ||
        sy_buf_append(&out, "\n", 1) < 0) {
      sy_buf_unref(out);
      out = NULL;
    }
  }
  free(text);
  if (out == NULL) {
    sy__conn_abort(c);
    return;
  }
  sy__conn_respond(c, out, status, close);
}

static void api_error(sy_conn_t *c, int status, const char *type, const char *code,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void api_error(sy_conn_t *c, int status, const char *type, const char *code,
                      const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *b = json_pack("{s:{s:s,s:s,s:s}}", "error", "message", msg, "type", type, "code", code);
  respond_json(c, status, b, status == 503 ? "Retry-After: 1\r\n" : NULL);
}

/* ---- the rate limit per key: a token bucket in each worker, kept across reloads ---- */

typedef struct sy_keybucket_s {
  char name[72];
  double tokens;
  uint64_t last_ms;
} sy_keybucket_t;

/* Takes one call from key k's bucket. Returns 0 (allowed) or the seconds until the
 * next call would be (refused). A key that floods feedback or outcomes can skew a
 * variant's statistics (poisoning); the limit bounds how fast, trust how much. */
static double rate_take(sy_worker_t *w, const sy_apikey_conf_t *k) {
  if (k->rate_limit <= 0)
    return 0;
  uint64_t now = uv_now(&w->loop);
  sy_keybucket_t *b = NULL;
  for (size_t i = 0; i < w->nkey_buckets && b == NULL; i++)
    if (strcmp(w->key_buckets[i].name, k->name) == 0)
      b = &w->key_buckets[i];
  if (b == NULL) {
    sy_keybucket_t *grown = realloc(w->key_buckets, (w->nkey_buckets + 1) * sizeof *grown);
    if (grown == NULL)
      return 0; /* out of memory: the call is not worth refusing for it */
    w->key_buckets = grown;
    b = &grown[w->nkey_buckets++];
    snprintf(b->name, sizeof b->name, "%s", k->name);
    b->tokens = k->burst;
    b->last_ms = now;
  }
  b->tokens += (double)(now - b->last_ms) / 1000.0 * k->rate_limit;
  if (b->tokens > k->burst)
    b->tokens = k->burst;
  b->last_ms = now;
  if (b->tokens >= 1) {
    b->tokens -= 1;
    return 0;
  }
  return (1 - b->tokens) / k->rate_limit;
}

static void on_op_timer_closed(uv_handle_t *h) {
  sy_api_op_t *op = h->data;
  free(op->comment);
  free(op);
}

static void op_free(sy_api_op_t *op) {
  if (op == NULL)
    return;
  if (op->has_timer) {
    uv_close((uv_handle_t *)&op->retry, on_op_timer_closed);
    return;
  }
  free(op->comment);
  free(op);
}

/* The op's client, or NULL (it went away: the op is dropped). */
static sy_conn_t *op_conn(sy_api_op_t *op) {
  sy_conn_t *c = op->c;
  if (c != NULL)
    c->req.api_op = NULL;
  return c;
}

void sy__api_cancel(sy_conn_t *c) { sy__api_detach(&c->req); }

void sy__api_detach(sy_req_t *r) {
  if (r->api_op != NULL) {
    r->api_op->c = NULL; /* its Redis reply, when it comes, finds no connection */
    r->api_op = NULL;
  }
}

/* ---- health ---- */

static void health(sy_conn_t *c) {
  sy_stats_t *s = c->w->link;
  json_t *b = json_object();
  json_object_set_new(b, "status", json_string("ok"));
  if (s == NULL) {
    json_object_set_new(b, "redis", json_string("disabled"));
    respond_json(c, 200, b, NULL);
    return;
  }
  json_object_set_new(b, "redis", json_string(sy_stats_ready(s) ? "up" : "down"));
  json_object_set_new(b, "instance", json_string(s->instance));
  json_object_set_new(b, "router_instance", json_string(s->router_instance));
  char label[400];
  json_object_set_new(b, "redis_server", json_string(sy_redis_label(&s->redis, label, sizeof label)));
  json_object_set_new(b, "redis_connects", json_integer((json_int_t)s->redis.connects));
  json_object_set_new(b, "redis_disconnects", json_integer((json_int_t)s->redis.disconnects));
  json_object_set_new(b, "redis_down_seconds",
                      json_real((double)sy_stats_down_ms(s) / 1000.0));
  if (!sy_stats_ready(s) && sy_stats_error(s)[0] != '\0')
    json_object_set_new(b, "redis_error", json_string(sy_stats_error(s)));
  if (s->cluster != NULL) {
    char labels[16][64];
    int up[16];
    size_t n = sy_cluster_primaries(s->cluster, labels, up, 16);
    json_t *p = json_object();
    for (size_t i = 0; i < n && i < 16; i++)
      json_object_set_new(p, labels[i], json_string(up[i] ? "up" : "down"));
    sy_cluster_counters_t ck;
    sy_cluster_counters(s->cluster, &ck);
    json_object_set_new(b, "redis_cluster",
                        json_pack("{s:o,s:I,s:I,s:I,s:I,s:I,s:I}", "primaries", p, "moved",
                                  (json_int_t)ck.moved, "ask", (json_int_t)ck.ask, "refreshes",
                                  (json_int_t)ck.refreshes, "parked", (json_int_t)ck.parked,
                                  "park_expired", (json_int_t)ck.park_expired, "unreplicated",
                                  (json_int_t)ck.unreplicated));
  }
  json_object_set_new(b, "redis_timeouts", json_integer((json_int_t)s->redis.timeouts));
  if (sy_stats_events(s)) {
    sy_journal_counters_t k;
    sy_stats_journal_counters(s, &k);
    json_t *j = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "events", (json_int_t)k.events,
                          "events_acked", (json_int_t)k.events_acked, "queued_events",
                          (json_int_t)k.queued_events, "queued_bytes", (json_int_t)k.queued_bytes,
                          "spooled", (json_int_t)k.spooled, "spool_bytes",
                          (json_int_t)k.spool_bytes, "replayed", (json_int_t)k.replayed,
                          "dropped", (json_int_t)k.dropped, "batches_sent",
                          (json_int_t)k.batches_sent, "duplicates", (json_int_t)k.duplicates);
    json_object_set_new(b, "journal", j);
  }
  respond_json(c, 200, b, NULL);
}

/* ---- parsing and authentication ---- */

static const sy_apikey_conf_t *authenticate(const sy_conn_t *c) {
  const sy_config_t *cfg = c->req.rt->cfg;
  size_t n;
  const char *k = sy_head_get(&c->req.head, "x-switchyard-key", &n);
  if (k == NULL) {
    k = sy_head_get(&c->req.head, "authorization", &n);
    if (k == NULL || n < 7 || strncasecmp(k, "Bearer ", 7) != 0)
      return NULL;
    k += 7;
    n -= 7;
  }
  /* Digests compared in constant time, against every key: timing tells neither which
   * key matched nor how long the secrets are. */
  unsigned char given[32], want[32];
  crypto_generichash(given, sizeof given, (const unsigned char *)k, n, NULL, 0);
  const sy_apikey_conf_t *found = NULL;
  for (size_t i = 0; i < cfg->napi_keys; i++) {
    const sy_apikey_conf_t *a = &cfg->api_keys[i];
    crypto_generichash(want, sizeof want, (const unsigned char *)a->secret, strlen(a->secret),
                       NULL, 0);
    if (sodium_memcmp(given, want, sizeof want) == 0)
      found = a;
  }
  return found;
}

/* Checks the body against the call's schema (router/api_parse.h); fills op. Returns
 * NULL or a problem. */
static const char *parse_body(sy_api_op_t *op, const json_t *b, char *why, size_t whylen) {
  sy_api_body_t p;
  const char *problem = sy_api_parse_body(op->kind == OP_FEEDBACK ? SY_API_FEEDBACK
                                                                  : SY_API_OUTCOME,
                                          b, &p, why, whylen);
  if (problem != NULL)
    return problem;
  memcpy(op->trace_id, p.trace_id, sizeof op->trace_id);
  memcpy(op->name, p.name, sizeof op->name);
  op->fb_type = p.fb_type;
  op->value = p.value;
  op->has_value = p.has_value;
  op->client_ms = p.client_ms;
  op->comment = p.comment; /* the op owns it now */
  return NULL;
}

/* ---- applying ---- */

/* How much one observation of this call moves the outcome statistics. */
typedef struct effect_s {
  double weight; /* 0: the outcome statistics do not move */
  double x;
} effect_t;

static effect_t effect_of(const sy_api_op_t *op, const sy_outcome_conf_t *o) {
  effect_t ef = {0, 0};
  double trust = op->key->trust;
  if (op->kind == OP_OUTCOME) {
    ef.weight = trust;
    ef.x = op->value;
    return ef;
  }
  for (size_t i = 0; i < o->nproxies; i++) {
    const sy_proxy_conf_t *p = &o->proxies[i];
    if (p->type != op->fb_type)
      continue;
    ef.weight = p->weight * trust;
    if (p->has_as)
      ef.x = p->as;
    else if (o->continuous)
      ef.x = op->value;
    else if (op->fb_type == SY_FB_THUMBS)
      ef.x = op->value > 0 ? 1 : 0;
    else
      ef.x = op->value < 0 ? 0 : op->value > 1 ? 1 : op->value;
  }
  return ef;
}

static void on_applied(sy_redis_t *r, redisReply *reply, void *data);

static const char *hget(const redisReply *h, const char *field) {
  for (size_t i = 0; h != NULL && i + 1 < h->elements; i += 2)
    if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, field) == 0 &&
        h->element[i + 1]->type == REDIS_REPLY_STRING)
      return h->element[i + 1]->str;
  return NULL;
}

/* The feedback or outcome event in schema 5's compact form (proto/event5.h), for a
 * trace whose record names its ref. */
static void compact_event(sy_api_op_t *op, const sy_experiment_conf_t *e, const redisReply *rec,
                          const char *ref, const char *event_id, unsigned flags,
                          const char *comment, sy_argv_t *ev) {
  sy_stats_t *s = op->w->link;
  const sy_outcome_conf_t *o = &e->outcome;
  const char *tn = hget(rec, "tn"), *cs = hget(rec, "cs");
  const char *fbname = sy_feedback_type_names[op->fb_type < 0 ? 0 : op->fb_type];
  const char *names[8];
  size_t nnames = 0;
  for (unsigned bit = 0; bit < 32 && nnames < 8; bit++) {
    const char *nm = (flags >> bit) & 1 ? sy_redaction_name(1u << bit) : NULL;
    if (nm != NULL)
      names[nnames++] = nm;
  }
  sy_ev5_t *b = &s->ev5;
  sy_ev5_begin(b, op->kind == OP_OUTCOME ? SY_EVT_OUTCOME : SY_EVT_FEEDBACK, event_id,
               s->router_instance, sy_stats_now_ms(), ref);
  sy_ev5_cstr(b, SY_EF_trace_id, op->trace_id);
  sy_ev5_cstr(b, SY_EF_tenant_id, tn);
  sy_ev5_cstr(b, SY_EF_consent_scope, cs);
  sy_ev5_list(b, SY_EF_redaction_flags, names, nnames);
  if (!isnan(op->client_ms))
    sy_ev5_real(b, SY_EF_client_latency_ms, op->client_ms);
  if (op->kind == OP_OUTCOME) {
    sy_ev5_cstr(b, SY_EF_outcome_metric_name, o->metric);
    sy_ev5_real(b, SY_EF_outcome_metric_value, op->value);
  } else {
    sy_ev5_cstr(b, SY_EF_feedback_type, op->fb_type == SY_FB_CUSTOM ? op->name : fbname);
    sy_ev5_real(b, SY_EF_feedback_value, op->value);
    sy_ev5_real(b, SY_EF_feedback_weight, op->key->trust);
    sy_ev5_cstr(b, SY_EF_feedback_comment, comment);
  }
  sy_argv_add(ev, SY_EV5_FIELD);
  sy_argv_addn(ev, b->p, b->oom ? 0 : b->len);
}

/* The same event field by field (schema 4's layout, schema_version 5), for a trace
 * record written by a schema 4 router (it has no ref). */
static void named_event(sy_api_op_t *op, const sy_experiment_conf_t *e, const redisReply *rec,
                        const char *event_id, const char *redaction, const char *comment,
                        sy_argv_t *ev) {
  sy_stats_t *s = op->w->link;
  const sy_outcome_conf_t *o = &e->outcome;
  const char *v = hget(rec, "v"), *cs = hget(rec, "cs");
  const char *tn = hget(rec, "tn"), *ver = hget(rec, "ver");
  const char *fbname = sy_feedback_type_names[op->fb_type < 0 ? 0 : op->fb_type];
  char ts[32];
  sy_stats_timestamp(s, ts);
  sy_argv_pair(ev, "event_id", event_id);
  sy_argv_pair(ev, "event_type", op->kind == OP_OUTCOME ? "outcome" : "feedback");
  sy_argv_pair_num(ev, "schema_version", SY_EVENT_SCHEMA_VERSION);
  sy_argv_pair(ev, "router_instance", s->router_instance);
  sy_argv_pair(ev, "timestamp", ts);
  sy_argv_pair(ev, "trace_id", op->trace_id);
  if (tn != NULL && tn[0] != '\0')
    sy_argv_pair(ev, "tenant_id", tn);
  sy_argv_pair(ev, "task_type", e->id);
  if (cs != NULL)
    sy_argv_pair(ev, "consent_scope", cs);
  sy_argv_pair(ev, "redaction_flags", redaction);
  sy_argv_pair(ev, "experiment", e->id);
  sy_argv_pair(ev, "variant", v);
  if (ver != NULL)
    sy_argv_pair(ev, "variant_version", ver);
  if (!isnan(op->client_ms))
    sy_argv_pair_num(ev, "client_latency_ms", op->client_ms);
  if (op->kind == OP_OUTCOME) {
    sy_argv_pair(ev, "outcome_metric_name", o->metric);
    sy_argv_pair_num(ev, "outcome_metric_value", op->value);
  } else {
    sy_argv_pair(ev, "feedback_type", op->fb_type == SY_FB_CUSTOM ? op->name : fbname);
    sy_argv_pair_num(ev, "feedback_value", op->value);
    sy_argv_pair_num(ev, "feedback_weight", op->key->trust);
    if (comment != NULL)
      sy_argv_pair(ev, "feedback_comment", comment);
  }
}

/* Builds and sends the feedback script call for a trace record that passed the
 * router's checks (the script checks again, atomically). */
static int apply(sy_api_op_t *op, const sy_experiment_conf_t *e, const redisReply *rec,
                 char *why, size_t whylen) {
  sy_stats_t *s = op->w->link;
  const sy_outcome_conf_t *o = &e->outcome;
  const char *v = hget(rec, "v"), *seg = hget(rec, "s"), *cs = hget(rec, "cs");
  seg = seg ? seg : "";
  if (op->kind == OP_OUTCOME) {
    if (strcmp(op->name, o->metric) != 0) {
      snprintf(why, whylen, "experiment %s's outcome metric is '%s', not '%s'", e->id, o->metric,
               op->name);
      return 400;
    }
    if (!o->continuous && op->value != 0 && op->value != 1) {
      snprintf(why, whylen, "%s is a binary metric: value must be 0, 1, true or false", o->metric);
      return 400;
    }
  }
  effect_t ef = effect_of(op, o);
  const char *fbname = sy_feedback_type_names[op->fb_type < 0 ? 0 : op->fb_type];
  char f_applied[100], pend[200], event_id[80], f1[96], f2[96];
  if (op->kind == OP_OUTCOME)
    snprintf(f_applied, sizeof f_applied, "out:%s", o->metric);
  else if (op->fb_type == SY_FB_CUSTOM)
    snprintf(f_applied, sizeof f_applied, "fb:custom:%s", op->name);
  else
    snprintf(f_applied, sizeof f_applied, "fb:%s", fbname);
  pend[0] = '\0';
  if (op->kind == OP_OUTCOME && !o->continuous && o->missing == SY_MISSING_FAILURE)
    snprintf(pend, sizeof pend, "%s|%s|%s", op->trace_id, v, seg);
  snprintf(event_id, sizeof event_id, "%s-a%llu", s->instance,
           (unsigned long long)++op->w->api_seq);

  /* What it moves: 1 = also in the segment's statistics. */
  sy_fb_add_t adds[10];
  size_t k = 0;
  if (op->kind == OP_OUTCOME) {
    adds[k++] = (sy_fb_add_t){"outcomes", 1, 1};
  } else {
    /* custom feedback is counted under its own name, apart from the built-in types */
    const char *pre = op->fb_type == SY_FB_CUSTOM ? "custom:" : "";
    const char *tname = op->fb_type == SY_FB_CUSTOM ? op->name : fbname;
    snprintf(f1, sizeof f1, "fb:%s%s:n", pre, tname);
    snprintf(f2, sizeof f2, "fb:%s%s:sum", pre, tname);
    adds[k++] = (sy_fb_add_t){f1, op->key->trust, 0};
    adds[k++] = (sy_fb_add_t){f2, op->key->trust * op->value, 0};
  }
  if (ef.weight > 0) {
    adds[k++] = (sy_fb_add_t){"n", ef.weight, 1};
    adds[k++] = (sy_fb_add_t){"sum", ef.weight * ef.x, 1};
    adds[k++] = (sy_fb_add_t){"sumsq", ef.weight * ef.x * ef.x, 1};
    /* Inverse-propensity sums for the gate (policies/gate.h): its Hajek estimate
     * stays unbiased when the allocation moves (canary ramps, bandits). */
    const char *ps = hget(rec, "p");
    double p = ps != NULL ? strtod(ps, NULL) : 0;
    if (p > 0 && p <= 1) {
      double iw = ef.weight / p, iw2 = iw * iw;
      adds[k++] = (sy_fb_add_t){"iw", iw, 0};
      adds[k++] = (sy_fb_add_t){"iwy", iw * ef.x, 0};
      adds[k++] = (sy_fb_add_t){"iw2", iw2, 0};
      adds[k++] = (sy_fb_add_t){"iw2y", iw2 * ef.x, 0};
      adds[k++] = (sy_fb_add_t){"iw2y2", iw2 * ef.x * ef.x, 0};
    }
  }

  /* The event. */
  unsigned flags = 0;
  char *comment = NULL;
  if (op->comment != NULL) {
    if (cs != NULL && strcmp(cs, "content") == 0)
      comment = sy_scrub(op->comment, strlen(op->comment), NULL, &flags);
    else
      flags |= SY_REDACT_COMMENT;
  }
  char redaction[SY_REDACTION_JSON_MAX];
  sy_redaction_json(flags, redaction, sizeof redaction);
  sy_argv_t ev;
  sy_argv_init(&ev);
  const char *ref = hget(rec, "ref");
  if (ref != NULL && ref[0] != '\0')
    compact_event(op, e, rec, ref, event_id, flags, comment, &ev);
  else /* a trace routed by a schema 4 router: no ref, the event field by field */
    named_event(op, e, rec, event_id, redaction, comment, &ev);
  sy_fb_apply_t fa = {
      .trace_id = op->trace_id,
      .experiment = e->id,
      .variant = v,
      .segment = seg,
      .tenant = op->key->tenant,
      .applied = f_applied,
      .pending = pend,
      .event_id = event_id,
      .adds = adds,
      .nadds = k,
      .event = &ev,
  };
  int rc = sy_stats_feedback_apply(s, &fa, on_applied, op);
  free(comment);
  sy_argv_free(&ev);
  if (rc < 0) {
    snprintf(why, whylen, "the statistics store is unavailable; retry");
    return 503;
  }
  return 0;
}

static const sy_experiment_conf_t *experiment_named(const sy_config_t *cfg, const char *id) {
  for (size_t i = 0; id != NULL && i < cfg->nexperiments; i++)
    if (strcmp(cfg->experiments[i].id, id) == 0)
      return &cfg->experiments[i];
  return NULL;
}

static void on_trace(sy_redis_t *r, redisReply *reply, void *data);

/* Reads the op's trace record; -1 if Redis cannot take it now. */
static int lookup(sy_api_op_t *op) {
  const sy_config_t *cfg = op->c->req.rt->cfg;
  op->w->link->trace_back_ms = sy__events_trace_back_ms(cfg->experiments, cfg->nexperiments);
  return sy_stats_trace_get(op->w->link, op->trace_id, on_trace, op);
}

static void on_retry(uv_timer_t *t) {
  sy_api_op_t *op = t->data;
  sy_conn_t *c = op->c;
  if (c == NULL) {
    op_free(op);
    return;
  }
  if (lookup(op) < 0) {
    op_conn(op);
    op_free(op);
    api_error(c, 503, "unavailable", "stats_unavailable",
              "the statistics store is unavailable; retry");
  }
}

/* Looks the trace up again after twice the batch delay. */
static int lookup_later(sy_api_op_t *op) {
  op->retried = 1;
  if (uv_timer_init(&op->w->loop, &op->retry) < 0)
    return -1;
  op->has_timer = 1;
  op->retry.data = op;
  return uv_timer_start(&op->retry, on_retry, 2 * op->c->req.rt->cfg->events.flush_ms + 20, 0);
}

static void on_trace(sy_redis_t *r, redisReply *reply, void *data) {
  sy_api_op_t *op = data;
  sy_conn_t *c = op_conn(op);
  char why[300];
  if (c == NULL) {
    op_free(op);
    return;
  }
  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
    op_free(op);
    api_error(c, 503, "unavailable", "stats_unavailable",
              "the statistics store is unavailable; retry");
    return;
  }
  if (reply->elements == 0 && !op->retried && lookup_later(op) == 0) {
    c->req.api_op = op; /* a request answered a moment ago: its trace record may still
                           be in a router's batch (events.flush_ms) */
    return;
  }
  if (reply->elements == 0) {
    op_free(op);
    api_error(c, 404, "invalid_request_error", "unknown_trace",
              "unknown trace_id: never routed to an experiment, or long past its window");
    return;
  }
  const char *tn = hget(reply, "tn"), *t = hget(reply, "t"), *w = hget(reply, "w");
  const sy_experiment_conf_t *e = experiment_named(c->req.rt->cfg, hget(reply, "e"));
  if (e == NULL || t == NULL || w == NULL || hget(reply, "v") == NULL) {
    op_free(op);
    api_error(c, 404, "invalid_request_error", "unknown_experiment",
              "the trace's experiment is not in the running config");
    return;
  }
  if (tn != NULL && tn[0] != '\0' && strcmp(tn, op->key->tenant) != 0) {
    const char *mine = op->key->tenant; /* the config's, not the op's */
    op_free(op);
    api_error(c, 403, "permission_error", "wrong_tenant",
              "this key's tenant (%s) does not own the trace", mine);
    return;
  }
  if (sy_stats_now_ms() > strtoull(t, NULL, 10) + strtoull(w, NULL, 10) * 1000) {
    op_free(op);
    api_error(c, 410, "invalid_request_error", "window_closed",
              "the trace's attribution window (%s s) has closed", w);
    return;
  }
  int st = apply(op, e, reply, why, sizeof why);
  if (st == 0) {
    c->req.api_op = op; /* waits for on_applied */
    return;
  }
  op_free(op);
  if (st == 400)
    api_error(c, 400, "invalid_request_error", "invalid_value", "%s", why);
  else if (st == 503)
    api_error(c, 503, "unavailable", "stats_unavailable", "%s", why);
  else
    api_error(c, 500, "server_error", "internal_error", "out of memory");
}

static void on_applied(sy_redis_t *r, redisReply *reply, void *data) {
  sy_api_op_t *op = data;
  sy_conn_t *c = op_conn(op);
  int kind = op->kind;
  op_free(op);
  if (c == NULL)
    return;
  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
      reply->element[0]->type != REDIS_REPLY_STRING) {
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
      sy_log_error("feedback script: %s", reply->str);
    api_error(c, 503, "unavailable", "stats_unavailable",
              "the statistics store is unavailable; retry");
    return;
  }
  const char *code = reply->element[0]->str;
  const char *arg1 = reply->elements > 1 && reply->element[1]->type == REDIS_REPLY_STRING
                         ? reply->element[1]->str
                         : "";
  if (strcmp(code, "OK") == 0 || strcmp(code, "DUP") == 0) {
    int dup = code[0] == 'D';
    json_t *b = json_pack("{s:b,s:b,s:s}", "applied", !dup, "duplicate", dup, "kind",
                          kind == OP_OUTCOME ? "outcome" : "feedback");
    if (dup)
      json_object_set_new(b, "first_event_id", json_string(arg1));
    respond_json(c, 200, b, NULL);
  } else if (strcmp(code, "404") == 0) {
    api_error(c, 404, "invalid_request_error", "unknown_trace", "unknown trace_id");
  } else if (strcmp(code, "410") == 0) {
    api_error(c, 410, "invalid_request_error", "window_closed",
              "the trace's attribution window has closed");
  } else {
    api_error(c, 403, "permission_error", "wrong_tenant", "this key's tenant does not own the trace");
  }
}

/* ---- dispatch ---- */

static int target_is(const sy_req_t *r, const char *path) {
  size_t n = strlen(path);
  const char *t = r->head.buf + r->head.line_off;
  return r->head.line_len >= n && memcmp(t, path, n) == 0 &&
         (r->head.line_len == n || t[n] == '?');
}

void sy__api_start(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  int kind = target_is(r, "/switchyard/v1/feedback")  ? OP_FEEDBACK
             : target_is(r, "/switchyard/v1/outcome") ? OP_OUTCOME
                                                      : -1;
  if (target_is(r, "/switchyard/v1/health")) {
    if (strcmp(r->method, "GET") != 0)
      api_error(c, 405, "invalid_request_error", "method_not_allowed", "use GET");
    else
      health(c);
    return;
  }
  if (kind < 0) {
    api_error(c, 404, "invalid_request_error", "not_found",
              "no such API: POST /switchyard/v1/feedback, POST /switchyard/v1/outcome, GET "
              "/switchyard/v1/health");
    return;
  }
  if (strcmp(r->method, "POST") != 0) {
    api_error(c, 405, "invalid_request_error", "method_not_allowed", "use POST");
    return;
  }
  const sy_apikey_conf_t *key = authenticate(c);
  if (key == NULL) {
    api_error(c, 401, "authentication_error", "invalid_api_key",
              r->rt->cfg->napi_keys == 0
                  ? "no api_keys are configured, so the feedback API is closed"
                  : "missing or unknown API key (Authorization: Bearer KEY)");
    return;
  }
  double wait_s = rate_take(c->w, key);
  if (wait_s > 0) {
    char retry[48], msg[200];
    snprintf(retry, sizeof retry, "Retry-After: %.0f\r\n", ceil(wait_s));
    snprintf(msg, sizeof msg, "key '%s' is over its rate limit (%g calls/s, burst %g); retry in "
             "%.2f s", key->name, key->rate_limit, key->burst, wait_s);
    json_t *b = json_pack("{s:{s:s,s:s,s:s}}", "error", "message", msg, "type", "rate_limit_error",
                          "code", "rate_limited");
    respond_json(c, 429, b, retry);
    return;
  }
  json_error_t jerr;
  json_t *body = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
  if (body == NULL) {
    api_error(c, 400, "invalid_request_error", "invalid_json", "the body is not JSON: %.*s",
              sy_api_utf8_prefix(jerr.text), jerr.text);
    return;
  }
  sy_api_op_t *op = calloc(1, sizeof *op);
  char why[200];
  if (op != NULL)
    op->kind = kind;
  const char *problem = op ? parse_body(op, body, why, sizeof why) : "out of memory";
  json_decref(body);
  if (problem != NULL) {
    op_free(op);
    api_error(c, 400, "invalid_request_error", "invalid_body", "%s", problem);
    return;
  }
  op->c = c;
  op->w = c->w;
  op->kind = kind;
  op->key = key;
  sy_stats_t *s = c->w->link;
  if (s != NULL)
    sy_stats_flush(s); /* our own recent trace records go first */
  if (s == NULL || lookup(op) < 0) {
    op_free(op);
    api_error(c, 503, "unavailable", "stats_unavailable",
              s == NULL ? "Redis is disabled in this config (redis.enabled: false)"
                        : "the statistics store is unavailable; retry");
    return;
  }
  r->api_op = op;
}
