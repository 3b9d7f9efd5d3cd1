/*
 * admin.c — the admin API, on its own listener (config `admin:`, 127.0.0.1:9090 by
 * default), apart from the traffic listeners so that it can stay on loopback or a
 * management network while the proxy faces clients.
 *
 *   GET  /dashboard                           the live dashboard (no data in it: no token)
 *   GET  /healthz                             the worker's loop answers
 *   GET  /readyz                              config loaded, and Redis up or the spool writable
 *   GET  /metrics                             Prometheus text format (metrics.h)
 *   GET  /api/experiments                     this router's experiments, as `status --json`
 *   GET  /api/experiments/{id}                one, with its audit log
 *   POST /api/experiments/{id}/promote        {"variant", "reason"?, "by"?}
 *   POST /api/experiments/{id}/rollback       {"variant"?, "reason"?, "by"?}
 *   POST /api/experiments/{id}/pause|resume   {"reason"?, "by"?}
 *
 * Everything but /dashboard needs `Authorization: Bearer TOKEN`, compared in constant
 * time (BLAKE2b of both sides, then sodium_memcmp) and never logged.
 *
 * The experiment calls read and change Redis with the very code of `switchyard
 * status`, `history` and the operator commands (status.c, ctl.c): synchronous
 * hiredis on a thread of libuv's pool (uv_queue_work), so the worker's loop never
 * waits on Redis and the API and the CLI cannot disagree. At most ADMIN_MAX_JOBS run
 * at once per worker; more get 503.
 *
 * The HTTP server is the proxy listener's (conn.c), with the admin's ops table:
 * its own list of at most ADMIN_MAX_CONNS connections (the oldest idle one makes
 * room for a new one), the whole request within ADMIN_TIMEOUT_MS of the connection,
 * and one request per connection, closed after its response. A job answers later
 * through sy__conn_respond; a client that goes away meanwhile detaches it.
 */
#include "router/admin.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <llhttp.h>
#include <sodium.h>

#include "base/log.h"
#include "router/admin_metrics.h"
#include "router/cli_redis.h"
#include "router/conn.h"
#include "router/listen.h"
#include "router/ctl.h"
#include "router/exchange.h"
#include "router/http.h"
#include "router/metrics.h"
#include "router/runtime.h"
#include "router/status.h"
#include "router/worker.h"
#include "stats/stats.h"
#include "stats/store.h"

#include "dashboard_html.h"

#define ADMIN_MAX_URL 1024
#define ADMIN_MAX_AUTH 512
#define ADMIN_MAX_BODY 16384
#define ADMIN_MAX_CONNS 64
#define ADMIN_MAX_JOBS 4
#define ADMIN_TIMEOUT_MS 5000
#define AUDIT_LIMIT 50

#ifndef SY_VERSION
#define SY_VERSION "0.1.0"
#endif

typedef struct admin_job_s admin_job_t;

enum { JOB_LIST, JOB_GET, JOB_CHANGE };

/* What a guardrail is checked against, copied from the config for the thread. */
typedef struct exp_limits_s {
  char *id, *control;
  int gated;
  double latency_p95_ratio, error_rate_delta, tokens_ratio; /* 0: off */
} exp_limits_t;

struct admin_job_s {
  uv_work_t req;
  sy_worker_t *w;
  sy_conn_t *c; /* NULL once the connection is gone */
  int kind;
  sy_redis_addr_t addr;
  exp_limits_t *lims;
  size_t nlims;
  json_t *router; /* GET /api/experiments: this router's facts */
  char exp[160], cmd[16];
  char *variant, *reason, *by;
  /* result */
  int status;
  char *body;
};

/* ---- responses ---- */

/* One response, closing the connection after it; NULL when out of memory. */
static sy_buf_t *response(int status, const char *type, const char *body, size_t len,
                          const char *extra) {
  const char *head_fmt = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                         "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                         "Connection: close\r\n%s\r\n";
  const char *reason = sy_http_reason(status);
  int hn = snprintf(NULL, 0, head_fmt, status, reason, type, len, extra ? extra : "");
  sy_buf_t *b = sy_buf_new((size_t)hn + 1 + len);
  if (b == NULL)
    return NULL;
  snprintf(b->data, (size_t)hn + 1, head_fmt, status, reason, type, len, extra ? extra : "");
  memcpy(b->data + hn, body, len);
  b->len = (size_t)hn + len;
  return b;
}

/* Sends b (built for status; NULL: out of memory) as the answer to c's request and
 * closes the connection after it. */
static void send_response(sy_conn_t *c, sy_buf_t *b, int status) {
  if (b == NULL)
    sy__conn_close(c);
  else
    sy__conn_respond(c, b, status, 1);
}

static void respond(sy_conn_t *c, int status, const char *type, const char *body, size_t len,
                    const char *extra) {
  if (c->state == SY_CS_PROXYING) /* else answered already, or closing */
    send_response(c, response(status, type, body, len, extra), status);
}

/* A JSON error body in the proxy's (OpenAI's) shape: {"error": {"message", "type"}}. */
static char *error_json(const char *message, const char *type) {
  json_t *o = json_pack("{s:{s:s,s:s}}", "error", "message", message, "type", type);
  if (o == NULL) /* a message that is not UTF-8 (it may quote the request) */
    o = json_pack("{s:{s:s,s:s}}", "error", "message", "(the message was not valid UTF-8)", "type",
                  type);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

static sy_buf_t *error_response(int status, const char *type, const char *msg) {
  char *body = error_json(msg, type);
  const char *extra = status == 401 ? "WWW-Authenticate: Bearer realm=\"switchyard\"\r\n" : NULL;
  sy_buf_t *b =
      response(status, "application/json", body ? body : "{}", body ? strlen(body) : 2, extra);
  free(body);
  return b;
}

static void respond_error(sy_conn_t *c, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void respond_error(sy_conn_t *c, int status, const char *type, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (c->state == SY_CS_PROXYING)
    send_response(c, error_response(status, type, msg), status);
}

static void respond_json(sy_conn_t *c, int status, json_t *o) {
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
  if (s == NULL) {
    respond_error(c, 500, "internal_error", "out of memory");
    return;
  }
  respond(c, status, "application/json", s, strlen(s), NULL);
  free(s);
}

/* ---- the thread-pool jobs ---- */

static json_t *jget(json_t *o, const char *k) {
  return json_object_get(o, k);
}

static double jnum_or_nan(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *guard(double value, double limit) {
  json_t *g = json_object();
  json_object_set_new(g, "value", isfinite(value) ? json_real(value) : json_null());
  json_object_set_new(g, "limit", limit > 0 ? json_real(limit) : json_null());
  return g;
}

/* Adds to each candidate its observed guardrail figures against the control, beside
 * the configured limits (the gate's sequential tests decide; these are the raw
 * ratios a person reads). */
static void add_guardrails(json_t *exp, const exp_limits_t *l) {
  json_t *vars = jget(exp, "variants"), *ctl = NULL, *v;
  size_t i;
  json_array_foreach(vars, i, v) {
    if (l != NULL && strcmp(json_string_value(jget(v, "id")) ?: "", l->control) == 0)
      ctl = v;
  }
  json_array_foreach(vars, i, v) {
    if (v == ctl || ctl == NULL || l == NULL) {
      json_object_set_new(v, "guardrails", json_null());
      continue;
    }
    double cr = jnum_or_nan(ctl, "requests"), vr = jnum_or_nan(v, "requests");
    double lat = jnum_or_nan(v, "latency_p95_ms") / jnum_or_nan(ctl, "latency_p95_ms");
    double err =
        vr > 0 && cr > 0 ? jnum_or_nan(v, "errors") / vr - jnum_or_nan(ctl, "errors") / cr : NAN;
    double tok = vr > 0 && cr > 0
                     ? (jnum_or_nan(v, "tokens_out") / vr) / (jnum_or_nan(ctl, "tokens_out") / cr)
                     : NAN;
    json_t *g = json_object();
    json_object_set_new(g, "latency_p95_ratio", guard(lat, l->gated ? l->latency_p95_ratio : 0));
    json_object_set_new(g, "error_rate_delta", guard(err, l->gated ? l->error_rate_delta : 0));
    json_object_set_new(g, "tokens_ratio", guard(tok, l->gated ? l->tokens_ratio : 0));
    /* the variant's own rate (not against the control): read, not yet acted on */
    json_object_set_new(g, "fallback_rate", guard(vr > 0 ? jnum_or_nan(v, "fallbacks") / vr : NAN, 0));
    json_object_set_new(v, "guardrails", g);
  }
}

static const exp_limits_t *limits_of(const admin_job_t *j, const char *id) {
  for (size_t i = 0; i < j->nlims; i++)
    if (strcmp(j->lims[i].id, id) == 0)
      return &j->lims[i];
  return NULL;
}

static void job_result(admin_job_t *j, int status, json_t *o) {
  j->status = status;
  j->body = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
  json_decref(o);
}

static void job_error(admin_job_t *j, int status, const char *type, const char *msg) {
  j->status = status;
  j->body = error_json(msg[0] ? msg : "failed", type);
}

/* One experiment as `status --json` shows it, with guardrails; NULL if Redis has
 * none (*redis_failed set when the reason was Redis itself). */
static json_t *load_one(admin_job_t *j, sy_rsync_t *rc, const char *id, int *redis_failed) {
  json_t *arr = NULL;
  *redis_failed = 0;
  int st = sy_status_collect(rc, id, &arr);
  if (st < 0) {
    *redis_failed = st == -1; /* -2: Redis has no such experiment */
    return NULL;
  }
  json_t *e = json_incref(json_array_get(arr, 0));
  json_decref(arr);
  if (e != NULL)
    add_guardrails(e, limits_of(j, id));
  return e;
}

static void job_list(admin_job_t *j, sy_rsync_t *rc, char *err) {
  json_t *arr = json_array();
  for (size_t i = 0; i < j->nlims; i++) {
    int failed;
    json_t *e = load_one(j, rc, j->lims[i].id, &failed);
    if (failed) {
      json_decref(arr);
      job_error(j, 503, "redis_unavailable", err);
      return;
    }
    if (e != NULL) /* not in Redis yet: no router has synced it */
      json_array_append_new(arr, e);
  }
  json_t *o = json_object();
  json_object_set(o, "router", j->router);
  json_object_set_new(o, "experiments", arr);
  job_result(j, 200, o);
}

static void job_get(admin_job_t *j, sy_rsync_t *rc, char *err) {
  int failed;
  json_t *e = load_one(j, rc, j->exp, &failed);
  if (e == NULL) {
    if (failed)
      job_error(j, 503, "redis_unavailable", err);
    else
      job_error(j, 404, "not_found", err);
    return;
  }
  json_t *audit = NULL;
  int st = sy_ctl_history(rc, j->exp, AUDIT_LIMIT, &audit);
  if (st != SY_CTL_DONE) {
    json_decref(e);
    job_error(j, st == SY_CTL_UNKNOWN ? 404 : 503,
              st == SY_CTL_UNKNOWN ? "not_found" : "redis_unavailable", err);
    return;
  }
  job_result(j, 200, json_pack("{s:o,s:o}", "experiment", e, "audit", audit));
}

static void job_change(admin_job_t *j, sy_rsync_t *rc, char *err) {
  sy_ctl_req_t q = {j->cmd, j->exp, j->variant, j->reason, j->by};
  char msg[400];
  long long version = 0;
  int st = sy_ctl_apply(rc, &q, msg, sizeof msg, &version);
  switch (st) {
  case SY_CTL_DONE:
    job_result(j, 200,
               json_pack("{s:s,s:s,s:I}", "result", "done", "message", msg, "state_version",
                         (json_int_t)version));
    break;
  case SY_CTL_NOOP:
    job_result(j, 200, json_pack("{s:s,s:s}", "result", "noop", "message", msg));
    break;
  case SY_CTL_UNKNOWN: job_error(j, 404, "not_found", err); break;
  case SY_CTL_REFUSED: job_error(j, 409, "conflict", err); break;
  default: job_error(j, 503, "redis_unavailable", err);
  }
}

static void job_work(uv_work_t *req) {
  admin_job_t *j = req->data;
  sy_rsync_t conn = {0};
  if (sy_rsync_connect(&conn, &j->addr, SY_CLI_TIMEOUT_MS) < 0) {
    job_error(j, 503, "redis_unavailable", conn.err);
  } else {
    /* each job's failure is in conn.err, which the jobs pass on as err */
    if (j->kind == JOB_LIST)
      job_list(j, &conn, conn.err);
    else if (j->kind == JOB_GET)
      job_get(j, &conn, conn.err);
    else
      job_change(j, &conn, conn.err);
    sy_rsync_close(&conn);
  }
}

static void job_free(admin_job_t *j) {
  for (size_t i = 0; i < j->nlims; i++) {
    free(j->lims[i].id);
    free(j->lims[i].control);
  }
  free(j->lims);
  json_decref(j->router);
  free(j->variant);
  free(j->reason);
  free(j->by);
  free(j->body);
  free(j);
}

static void job_done(uv_work_t *req, int status) {
  admin_job_t *j = req->data;
  j->w->admin_jobs--;
  sy_conn_t *c = j->c;
  if (c != NULL) {
    c->data = NULL;
    c->req.rstate = SY_RS_DONE;
    if (status < 0 || j->body == NULL)
      respond_error(c, 500, "internal_error", "the request could not be completed");
    else
      respond(c, j->status, "application/json", j->body, strlen(j->body), NULL);
  }
  if (j->kind == JOB_CHANGE) /* logged even when the client has gone: it was applied */
    sy_log_info("admin: %s %s%s%s by %s: %d%s", j->cmd, j->exp, j->variant ? " " : "",
                j->variant ? j->variant : "", j->by, j->status,
                c == NULL ? " (the client had gone)" : "");
  job_free(j);
}

/* A job for c on the thread pool, with what it needs copied from the runtime. */
static admin_job_t *job_new(sy_conn_t *c, int kind) {
  sy_worker_t *w = c->w;
  const sy_config_t *cfg = w->rt->cfg;
  char err[300];
  if (w->link == NULL || !cfg->redis.enabled) {
    respond_error(c, 503, "redis_unavailable", "this router has no Redis (redis.enabled: false)");
    return NULL;
  }
  if (w->admin_jobs >= ADMIN_MAX_JOBS) {
    respond_error(c, 503, "busy", "too many admin requests in progress; try again");
    return NULL;
  }
  admin_job_t *j = calloc(1, sizeof *j);
  if (j == NULL) {
    respond_error(c, 500, "internal_error", "out of memory");
    return NULL;
  }
  j->w = w;
  j->c = c;
  j->kind = kind;
  j->req.data = j;
  if (sy_config_redis_addr(cfg, &j->addr, err, sizeof err) < 0) {
    respond_error(c, 500, "internal_error", "%s", err);
    job_free(j);
    return NULL;
  }
  j->lims = calloc(cfg->nexperiments ? cfg->nexperiments : 1, sizeof *j->lims);
  for (size_t i = 0; j->lims != NULL && i < cfg->nexperiments; i++) {
    const sy_experiment_conf_t *e = &cfg->experiments[i];
    exp_limits_t *l = &j->lims[j->nlims++];
    l->id = strdup(e->id);
    l->control = strdup(e->variants[e->control].id);
    l->gated = e->gate.mode != SY_GATE_OFF;
    l->latency_p95_ratio = e->gate.latency_p95_ratio;
    l->error_rate_delta = e->gate.error_rate_delta;
    l->tokens_ratio = e->gate.tokens_ratio;
    if (l->id == NULL || l->control == NULL) {
      respond_error(c, 500, "internal_error", "out of memory");
      job_free(j);
      return NULL;
    }
  }
  return j;
}

static void job_start(sy_conn_t *c, admin_job_t *j) {
  if (uv_queue_work(&c->w->loop, &j->req, job_work, job_done) != 0) {
    respond_error(c, 500, "internal_error", "could not start the request");
    job_free(j);
    return;
  }
  c->w->admin_jobs++;
  c->data = j;
  c->req.rstate = SY_RS_CONNECTING; /* a client going away is reported: admin_cancel */
}

/* ---- routes ---- */

/* The request's Authorization headers: how many, and their bytes in all. */
static unsigned auth_headers(const sy_head_t *h, size_t *bytes) {
  unsigned k = 0;
  *bytes = 0;
  for (size_t i = 0; i < h->nhdrs; i++)
    if (sy_token_eq(sy_head_name(h, i), h->hdrs[i].name_len, "authorization")) {
      k++;
      *bytes += h->hdrs[i].val_len;
    }
  return k;
}

static int authorized(const sy_conn_t *c, const char *token) {
  size_t n = 0;
  const char *a = sy_head_get(&c->req.head, "authorization", &n);
  if (token == NULL || a == NULL || n < 7 || strncasecmp(a, "Bearer ", 7) != 0)
    return 0;
  a += 7;
  n -= 7;
  while (n > 0 && *a == ' ') {
    a++;
    n--;
  }
  while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t'))
    n--;
  /* Digests of both sides, compared in constant time: neither the token's bytes nor
   * its length leak through timing. */
  unsigned char h1[32], h2[32];
  crypto_generichash(h1, sizeof h1, (const unsigned char *)a, n, NULL, 0);
  crypto_generichash(h2, sizeof h2, (const unsigned char *)token, strlen(token), NULL, 0);
  return sodium_memcmp(h1, h2, sizeof h1) == 0;
}

static void route_ready(sy_conn_t *c) {
  sy_worker_t *w = c->w;
  int loaded = w->rt != NULL && !w->draining;
  int redis_on = w->link != NULL;
  int redis_up = redis_on && sy_stats_ready(w->link);
  int spool = redis_on && sy_stats_events(w->link) && sy_stats_spool_ok(w->link);
  int ready = loaded && (!redis_on || redis_up || spool);
  json_t *o = json_pack("{s:b,s:s,s:s,s:s}", "ready", ready, "config",
                        loaded ? "loaded" : "draining", "redis",
                        !redis_on  ? "disabled"
                        : redis_up ? "up"
                                   : "down",
                        "spool", spool ? "writable" : "unavailable");
  respond_json(c, ready ? 200 : 503, o);
  json_decref(o);
}

static void route_metrics(sy_conn_t *c) {
  sy_worker_t *w = c->w;
  sy__metrics_refresh(w);
  sy_mtext_t t = {0};
  sy_metrics_render(w->metrics, &t);
  sy__metrics_render_state(w, &t);
  if (t.oom || t.p == NULL) {
    free(t.p);
    respond_error(c, 500, "internal_error", "out of memory");
    return;
  }
  respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", t.p, t.len, NULL);
  free(t.p);
}

static json_t *router_facts(sy_worker_t *w) {
  const char *inst = w->link != NULL ? w->link->router_instance : "";
  const char *redis = w->link == NULL           ? "disabled"
                      : sy_stats_ready(w->link) ? "up"
                                                : "down";
  double up = (double)(uv_now(&w->loop) - w->started_ms) / 1000.0;
  return json_pack("{s:s,s:s,s:f,s:s}", "instance", inst, "redis", redis, "uptime_s", up, "version",
                   SY_VERSION);
}

/* Takes the string member k of the request body, at most max bytes; 0 absent or ok,
 * -1 refused (answered). */
static int body_str(sy_conn_t *c, json_t *o, const char *k, size_t max, char **out) {
  json_t *v = json_object_get(o, k);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
    respond_error(c, 400, "invalid_request_error",
                  "'%s' must be a non-empty string of at most %zu bytes", k, max);
    return -1;
  }
  *out = strdup(json_string_value(v));
  if (*out == NULL) {
    respond_error(c, 500, "internal_error", "out of memory");
    return -1;
  }
  return 0;
}

static void route_change(sy_conn_t *c, const char *id, const char *cmd) {
  json_t *body = NULL;
  if (c->req.body_len > 0) {
    json_error_t je;
    body = json_loadb(c->req.body, c->req.body_len, 0, &je);
    if (!json_is_object(body)) {
      json_decref(body);
      respond_error(c, 400, "invalid_request_error", "the body must be a JSON object: %s",
                    je.text[0] ? je.text : "not an object");
      return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
      if (strcmp(k, "variant") != 0 && strcmp(k, "reason") != 0 && strcmp(k, "by") != 0) {
        respond_error(c, 400, "invalid_request_error",
                      "unknown field '%s' (expected variant, reason, by)", k);
        json_decref(body);
        return;
      }
    }
  }
  admin_job_t *j = job_new(c, JOB_CHANGE);
  if (j == NULL) {
    json_decref(body);
    return;
  }
  char *by = NULL;
  snprintf(j->exp, sizeof j->exp, "%s", id);
  snprintf(j->cmd, sizeof j->cmd, "%s", cmd);
  int bad = body != NULL && (body_str(c, body, "variant", 128, &j->variant) < 0 ||
                             body_str(c, body, "reason", 1000, &j->reason) < 0 ||
                             body_str(c, body, "by", 100, &by) < 0);
  json_decref(body);
  if (!bad && strcmp(cmd, "promote") == 0 && j->variant == NULL) {
    respond_error(c, 400, "invalid_request_error", "promote needs {\"variant\": ID}");
    bad = 1;
  }
  if (!bad && j->variant != NULL && (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0)) {
    respond_error(c, 400, "invalid_request_error", "%s takes no variant", cmd);
    bad = 1;
  }
  size_t n = strlen(by ? by : "api") + strlen(c->peer) + 16;
  j->by = bad ? NULL : malloc(n);
  if (j->by != NULL)
    snprintf(j->by, n, "admin:%s@%s", by ? by : "api", c->peer);
  free(by);
  if (bad || j->by == NULL) {
    if (!bad)
      respond_error(c, 500, "internal_error", "out of memory");
    job_free(j);
    return;
  }
  job_start(c, j);
}

/* An experiment id from the path: [A-Za-z0-9_.-], as the config allows. */
static int valid_id(const char *s, size_t n) {
  if (n == 0 || n >= 128)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
      return 0;
  return 1;
}

static void route_api(sy_conn_t *c, const char *method, const char *path) {
  const char *rest = path + strlen("/api/experiments");
  if (*rest == '\0' || strcmp(rest, "/") == 0) {
    if (strcmp(method, "GET") != 0) {
      respond_error(c, 405, "invalid_request_error", "use GET");
      return;
    }
    admin_job_t *j = job_new(c, JOB_LIST);
    if (j != NULL && (j->router = router_facts(c->w)) != NULL) {
      job_start(c, j);
    } else if (j != NULL) {
      job_free(j);
      respond_error(c, 500, "internal_error", "out of memory");
    }
    return;
  }
  if (*rest != '/') {
    respond_error(c, 404, "not_found", "no such endpoint: %s", path);
    return;
  }
  rest++;
  const char *slash = strchr(rest, '/');
  size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
  if (!valid_id(rest, idlen)) {
    respond_error(c, 400, "invalid_request_error", "bad experiment id in the path");
    return;
  }
  char id[128];
  memcpy(id, rest, idlen);
  id[idlen] = '\0';
  if (slash == NULL) {
    if (strcmp(method, "GET") != 0) {
      respond_error(c, 405, "invalid_request_error", "use GET");
      return;
    }
    admin_job_t *j = job_new(c, JOB_GET);
    if (j != NULL) {
      snprintf(j->exp, sizeof j->exp, "%s", id);
      job_start(c, j);
    }
    return;
  }
  const char *cmd = slash + 1;
  if (strcmp(cmd, "promote") != 0 && strcmp(cmd, "rollback") != 0 && strcmp(cmd, "pause") != 0 &&
      strcmp(cmd, "resume") != 0) {
    respond_error(c, 404, "not_found", "no such action '%s' (promote, rollback, pause, resume)",
                  cmd);
    return;
  }
  if (strcmp(method, "POST") != 0) {
    respond_error(c, 405, "invalid_request_error", "use POST");
    return;
  }
  route_change(c, id, cmd);
}

/* The start op: answers the complete request in c->req, now or from a job. */
static void dispatch(sy_conn_t *c) {
  const char *method = c->req.method;
  char path[ADMIN_MAX_URL]; /* admin_head refused longer ones */
  snprintf(path, sizeof path, "%.*s", (int)c->req.head.line_len,
           c->req.head.buf + c->req.head.line_off);
  char *q = strchr(path, '?');
  if (q != NULL)
    *q = '\0';
  int get = strcmp(method, "GET") == 0;
  if (strcmp(path, "/dashboard") == 0 || strcmp(path, "/dashboard/") == 0) {
    if (!get) {
      respond_error(c, 405, "invalid_request_error", "use GET");
      return;
    }
    respond(c, 200, "text/html; charset=utf-8", sy_dashboard_html, sizeof sy_dashboard_html - 1,
            "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; img-src data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
            "Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n");
    return;
  }
  if (strcmp(path, "/") == 0 && get) {
    respond(c, 302, "text/plain", "", 0, "Location: /dashboard\r\n");
    return;
  }
  const sy_config_t *cfg = c->w->rt != NULL ? c->w->rt->cfg : NULL;
  size_t auth_bytes;
  if (auth_headers(&c->req.head, &auth_bytes) > 1) {
    respond_error(c, 400, "invalid_request_error", "more than one Authorization header");
    return;
  }
  if (!authorized(c, cfg != NULL ? cfg->admin.token : NULL)) {
    respond_error(c, 401, "unauthorized",
                  "missing or wrong token: send Authorization: Bearer TOKEN (admin.token_env)");
    return;
  }
  if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
      strcmp(path, "/metrics") == 0) {
    if (!get) {
      respond_error(c, 405, "invalid_request_error", "use GET");
      return;
    }
    if (path[1] == 'h') {
      respond(c, 200, "application/json", "{\"status\":\"ok\"}", 15, NULL);
    } else if (path[1] == 'r') {
      route_ready(c);
    } else {
      route_metrics(c);
    }
    return;
  }
  if (strncmp(path, "/api/experiments", 16) == 0) {
    route_api(c, method, path);
    return;
  }
  respond_error(c, 404, "not_found", "no such endpoint: %s", path);
}

/* ---- the connections: conn.c's, with these ops ---- */

/* The head op: refuses what the admin API never takes (no body is streamed). */
static int admin_head(sy_conn_t *c, int *reject_status) {
  size_t auth_bytes;
  auth_headers(&c->req.head, &auth_bytes);
  if (c->req.head.line_len >= ADMIN_MAX_URL) {
    c->error_reason = "the URL is too long";
    *reject_status = 414;
  } else if (auth_bytes >= ADMIN_MAX_AUTH) {
    c->error_reason = "the Authorization header is too long";
    *reject_status = 431;
  }
  return 0;
}

/* The client went away: its job, if any, finishes on its own and frees itself. */
static void admin_cancel(sy_conn_t *c) {
  admin_job_t *j = c->data;
  if (j != NULL)
    j->c = NULL;
  c->data = NULL;
  c->req.rstate = SY_RS_DONE;
}

/* A request conn.c refuses is answered in the admin API's own shape and words. */
static sy_buf_t *admin_refusal(sy_conn_t *c, int status, const char *message) {
  char msg[200];
  if (status == 400 && c->error_reason == NULL)
    snprintf(msg, sizeof msg, "bad HTTP request: %s",
             llhttp_errno_name(llhttp_get_errno(&c->parser)));
  else if (status == 408)
    snprintf(msg, sizeof msg, "the request did not arrive in time");
  else if (status == 413)
    snprintf(msg, sizeof msg, "the body is larger than %d bytes", ADMIN_MAX_BODY);
  else
    snprintf(msg, sizeof msg, "%s", message);
  return error_response(status, status >= 500 ? "internal_error" : "invalid_request_error", msg);
}

static const sy_conn_ops_t admin_conn_ops = {
    .head = admin_head,
    .start = dispatch,
    .cancel = admin_cancel,
    .refusal = admin_refusal,
    .max_conns = ADMIN_MAX_CONNS,
    .deadline_ms = ADMIN_TIMEOUT_MS,
    .max_body_bytes = ADMIN_MAX_BODY,
};

/* Admin connections go to their own list: the proxy's cap and drain do not see them. */
static void on_admin_connection(uv_stream_t *server, int status) {
  sy_worker_t *w = server->data;
  if (status < 0)
    return;
  sy__conn_accept_into(w, server, &admin_conn_ops, &w->admin_conns, &w->admin_nconns);
}

int sy__admin_open(sy_worker_t *w, char *err, size_t errlen) {
  const sy_admin_conf_t *a = &w->rt->cfg->admin;
  w->started_ms = uv_now(&w->loop);
  if (!a->on)
    return 0;
  if (sodium_init() < 0) {
    snprintf(err, errlen, "admin: libsodium failed to initialise");
    return -1;
  }
  if (sy__listen_open(&w->loop, &w->admin_listener, &a->listen, on_admin_connection, w, err, errlen) < 0)
    return -1;
  w->admin_open = 1;
  sy_log_info("admin API listening on %s:%u", a->listen.host, (unsigned)a->listen.port);
  return 0;
}

void sy__admin_close(sy_worker_t *w) {
  if (w->admin_open) {
    w->admin_open = 0;
    uv_close((uv_handle_t *)&w->admin_listener, NULL);
  }
  /* A connection whose change is being applied gets its answer (the job keeps the
   * loop alive until then); every other one is closed now. */
  sy_conn_t *c = w->admin_conns;
  while (c != NULL) {
    sy_conn_t *next = c->next;
    if (c->data == NULL)
      sy__conn_close(c);
    c = next;
  }
}
