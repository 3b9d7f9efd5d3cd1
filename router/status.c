/*
 * status.c — `switchyard status [EXP] [--json]`: reads Redis (proto/KEYS.md) with
 * hiredis's synchronous API and prints, per variant of each experiment, the totals and
 * the summary statistics of stats/summary.h, as an aligned text table or as JSON. The
 * latency p50/p95 are policies/lathist.h's sy_lat_quantile, the gate's own: what an
 * operator reads here (and through the admin API and the dashboard, which serve this
 * JSON) is what the gate's latency guardrail compares.
 *
 * It is a one-shot command, not part of the router's event loop: it connects, reads
 * `sy:experiments`, each `sy:{E}:meta` and the variant hashes (pipelined, one round
 * trip per experiment), prints and exits. It never writes to Redis.
 */
#include "router/status.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "policies/lathist.h"
#include "proto/keys.h"
#include "router/cli_redis.h"
#include "router/config.h"
#include "stats/redis_url.h"
#include "stats/summary.h"

#define PBEST_DRAWS 20000u
#define PBEST_SEED 1ul

static const char usage_status[] =
    "usage: switchyard status [EXP] [--json] [--config FILE | --redis URL]\n"
    "\n"
    "Prints what Redis holds for each experiment (or only EXP): per variant the\n"
    "requests, errors, outcomes, n (weighted observations), the outcome mean with a\n"
    "95% interval (binary: Beta posterior; continuous: t interval), P(best) (Monte\n"
    "Carlo over the posteriors), the policy's current traffic share and latency\n"
    "p50/p95. `-` marks a value that is not known yet.\n"
    "\n"
    "options:\n"
    "  --json            print JSON instead of tables (null for unknown values)\n"
    "  --config FILE     find Redis through FILE's redis section: its url, its\n"
    "                    sentinels (asked for the primary), else the embedded\n"
    "                    server's socket DATA_DIR/redis.sock\n"
    "  --redis URL       redis://[[user]:password@]host[:port][/db] or unix:///path\n"
    "  --help            this text\n"
    "Without --config or --redis the URL comes from $SWITCHYARD_REDIS_URL.\n"
    "\n"
    "examples:\n"
    "  switchyard status --config deploy/examples/minimal.yaml\n"
    "  switchyard status chat --json --redis redis://127.0.0.1:6379/0\n";

typedef struct status_opts_s {
  const char *exp;
  const char *config;
  const char *redis;
  int json;
} status_opts_t;

/* What the report shows of one experiment. Strings are owned (NULL: not in meta). */
typedef struct exp_view_s {
  char *id;
  char *policy, *metric, *type, *direction, *control, *variants;
  size_t k;
  char **vnames;       /* full variant ids (keys); vs[i].id may be a truncated copy */
  sy_varstats_t *vs;
  sy_interval_t *iv;
  double *pbest;
  int continuous, minimise;
  json_t *state; /* sy:{E}:state as {field: value} (empty: none yet) */
} exp_view_t;

/* ---- arguments and where Redis is ---- */

/* 0: run; 1: --help; -1: bad arguments (already reported). */
static int parse_args(int argc, char **argv, status_opts_t *o) {
  memset(o, 0, sizeof(*o));
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
      return 1;
    if (strcmp(a, "--json") == 0)
      o->json = 1;
    else if (strcmp(a, "--config") == 0 && i + 1 < argc)
      o->config = argv[++i];
    else if (strncmp(a, "--config=", 9) == 0)
      o->config = a + 9;
    else if (strcmp(a, "--redis") == 0 && i + 1 < argc)
      o->redis = argv[++i];
    else if (strncmp(a, "--redis=", 8) == 0)
      o->redis = a + 8;
    else if (a[0] != '-' && a[0] != '\0' && !o->exp)
      o->exp = a;
    else if ((strcmp(a, "--config") == 0 || strcmp(a, "--redis") == 0) && i + 1 == argc) {
      fprintf(stderr, "switchyard status: %s needs a value\n\n", a);
      return -1;
    } else {
      fprintf(stderr, "switchyard status: unexpected argument '%s'\n\n", a);
      return -1;
    }
  }
  if (o->config && o->redis) {
    fprintf(stderr, "switchyard status: give --config or --redis, not both\n\n");
    return -1;
  }
  return 0;
}

static int resolve_addr(const status_opts_t *o, sy_redis_addr_t *addr, unsigned *timeout_ms) {
  return sy_cli_redis_addr("status", o->redis, o->config, addr, timeout_ms);
}


/* ---- reading one experiment ---- */

static void view_free(exp_view_t *e) {
  json_decref(e->state);
  free(e->id);
  free(e->policy);
  free(e->metric);
  free(e->type);
  free(e->direction);
  free(e->control);
  free(e->variants);
  for (size_t i = 0; i < e->k; i++)
    free(e->vnames[i]);
  free(e->vnames);
  free(e->vs);
  free(e->iv);
  free(e->pbest);
  memset(e, 0, sizeof(*e));
}

/* Field/value pairs of an HGETALL reply: element 2i is a field, 2i+1 its value. */
static const char *pair_str(const redisReply *r, size_t i) {
  const redisReply *el = r->element[i];
  return el->type == REDIS_REPLY_STRING ? el->str : NULL;
}

static void set_meta_field(exp_view_t *e, const char *f, const char *v) {
  static const char *const names[] = {"policy", "metric", "type", "direction", "control",
                                      "variants"};
  char **slots[] = {&e->policy, &e->metric, &e->type, &e->direction, &e->control, &e->variants};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (strcmp(f, names[i]) == 0) {
      free(*slots[i]);
      *slots[i] = strdup(v);
    }
  }
}

/* Splits e->variants (comma-separated, config order) into e->vnames and sizes the arrays. */
static int split_variants(exp_view_t *e) {
  size_t cap = 1;
  for (const char *p = e->variants ? e->variants : ""; *p; p++)
    cap += *p == ',';
  e->vnames = calloc(cap, sizeof(char *));
  e->vs = calloc(cap, sizeof(sy_varstats_t));
  e->iv = calloc(cap, sizeof(sy_interval_t));
  e->pbest = calloc(cap, sizeof(double));
  if (!e->vnames || !e->vs || !e->iv || !e->pbest)
    return -1;
  const char *p = e->variants ? e->variants : "";
  while (*p) {
    size_t len = strcspn(p, ",");
    if (len > 0) {
      e->vnames[e->k] = strndup(p, len);
      if (!e->vnames[e->k])
        return -1;
      snprintf(e->vs[e->k].id, sizeof(e->vs[e->k].id), "%s", e->vnames[e->k]);
      e->vs[e->k].share = -1;
      e->k++;
    }
    p += len + (p[len] == ',');
  }
  return 0;
}

/* share:V of the meta hash into the variant V. */
static void apply_shares(exp_view_t *e, const redisReply *meta) {
  for (size_t i = 0; i + 1 < meta->elements; i += 2) {
    const char *f = pair_str(meta, i), *v = pair_str(meta, i + 1);
    if (!f || !v || strncmp(f, "share:", 6) != 0)
      continue;
    char *end;
    double s = strtod(v, &end);
    for (size_t j = 0; j < e->k && *end == '\0' && isfinite(s); j++)
      if (strcmp(e->vnames[j], f + 6) == 0)
        e->vs[j].share = s;
  }
}

/* Reads sy:{E}:meta into e. Returns 1 found, 0 no such hash, -1 error (reported). An id
 * too long for a key name is not in Redis: no router serves it (config ids are short). */
static int load_meta(sy_rsync_t *c, exp_view_t *e) {
  char key[SY_KEY_MAX];
  if (sy_key_meta(key, sizeof key, e->id) < 0)
    return split_variants(e) < 0 ? -1 : 0;
  redisReply *r = sy_rsync_command(c, "HGETALL %s", key);
  if (!r)
    return -1;
  int found = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
  for (size_t i = 0; found && i + 1 < r->elements; i += 2) {
    const char *f = pair_str(r, i), *v = pair_str(r, i + 1);
    if (f && v)
      set_meta_field(e, f, v);
  }
  int rc = split_variants(e);
  if (rc == 0)
    apply_shares(e, r);
  freeReplyObject(r);
  if (rc < 0) {
    return sy_rsync_fail(c, "out of memory");
  }
  e->continuous = e->type && strcmp(e->type, "continuous") == 0;
  e->minimise = e->direction && strcmp(e->direction, "minimize") == 0;
  return found;
}

static int fill_varstats(sy_varstats_t *v, const redisReply *r) {
  double share = v->share;
  size_t np = r->type == REDIS_REPLY_ARRAY ? r->elements / 2 : 0;
  const char **f = calloc(np + 1, sizeof(char *)), **val = calloc(np + 1, sizeof(char *));
  if (!f || !val) {
    free(f);
    free(val);
    return -1;
  }
  for (size_t i = 0; i < np; i++) {
    f[i] = pair_str(r, 2 * i);
    val[i] = pair_str(r, 2 * i + 1);
  }
  sy_varstats_from_hash(v, f, val, np);
  v->share = share;
  free(f);
  free(val);
  return 0;
}

/* Reads every sy:{E}:v:V in one pipelined round trip. */
static int load_variants(sy_rsync_t *c, exp_view_t *e) {
  char key[SY_KEY_MAX];
  for (size_t i = 0; i < e->k; i++) {
    if (sy_key_variant(key, sizeof key, e->id, e->vnames[i]) < 0) {
      return sy_rsync_fail(c, "%s: variant id too long: %.64s...", e->id, e->vnames[i]);
    }
    if (redisAppendCommand(c->c, "HGETALL %s", key) != REDIS_OK)
      return sy_rsync_fail(c, "out of memory");
  }
  int rc = 0;
  for (size_t i = 0; i < e->k; i++) {
    redisReply *r = sy_rsync_get_reply(c);
    if (r == NULL) {
      if (c->c->err)
        return -1; /* the connection failed: no further reply comes */
      rc = -1;     /* an error reply (in c->err); read the others */
      continue;
    }
    if (rc == 0 && fill_varstats(&e->vs[i], r) < 0)
      rc = sy_rsync_fail(c, "out of memory");
    freeReplyObject(r);
  }
  return rc;
}

/* Interval per variant; P(best) only once some variant has outcome data (otherwise it
   would merely restate the prior, 1/k each, which reads like a finding). A variant without
   observations shows no mean: sy_outcome_interval would give the binary prior (0.5), which
   is not a measurement. Its P(best) still comes from the prior, so they sum to 1. */
static void compute(exp_view_t *e) {
  double total_n = 0;
  for (size_t i = 0; i < e->k; i++) {
    e->iv[i] = sy_outcome_interval(&e->vs[i], e->continuous);
    if (!(e->vs[i].n > 0))
      e->iv[i].mean = e->iv[i].lo = e->iv[i].hi = NAN;
    total_n += e->vs[i].n > 0 ? e->vs[i].n : 0;
    e->pbest[i] = NAN;
  }
  if (total_n > 0)
    sy_prob_best(e->vs, e->k, e->continuous, e->minimise, PBEST_DRAWS, PBEST_SEED, e->pbest);
}

/* The control state (proto/KEYS.md sy:{E}:state). Returns 0 or -1 (reported). */
static int load_state(sy_rsync_t *c, exp_view_t *e) {
  char key[SY_KEY_MAX];
  if (sy_key_state(key, sizeof key, e->id) < 0) /* no such experiment: see load_meta */
    return (e->state = json_object()) ? 0 : -1;
  redisReply *r = sy_rsync_command(c, "HGETALL %s", key);
  if (!r)
    return -1;
  e->state = json_object();
  for (size_t j = 0; e->state && j + 1 < r->elements; j += 2)
    if (r->element[j]->type == REDIS_REPLY_STRING && r->element[j + 1]->type == REDIS_REPLY_STRING)
      json_object_set_new(e->state, r->element[j]->str, json_string(r->element[j + 1]->str));
  freeReplyObject(r);
  return e->state ? 0 : -1;
}

static const char *state_field(const exp_view_t *e, const char *f) {
  return json_string_value(json_object_get(e->state, f));
}

/* A variant's stage, "live" when the state does not say. */
static const char *stage_of(const exp_view_t *e, size_t i, char *step, size_t steplen) {
  char f[160];
  snprintf(f, sizeof f, "v:%s", e->vnames[i]);
  const char *st = state_field(e, f);
  snprintf(f, sizeof f, "step:%s", e->vnames[i]);
  const char *sp = state_field(e, f);
  snprintf(step, steplen, "%s", st && strcmp(st, "canary") == 0 && sp ? sp : "");
  return st ? st : "live";
}

/* Loads experiment `id` into e. Returns 1 found, 0 no meta hash, -1 error (reported). */
static int load_experiment(sy_rsync_t *c, const char *id, exp_view_t *e) {
  memset(e, 0, sizeof(*e));
  e->id = strdup(id);
  if (!e->id)
    return -1;
  int found = load_meta(c, e);
  if (found < 0 || load_variants(c, e) < 0 || load_state(c, e) < 0)
    return -1;
  compute(e);
  return found;
}

/* ---- text output ---- */

enum { COL_VARIANT, COL_STAGE, COL_REQ, COL_ERR, COL_FB, COL_OUT, COL_N, COL_MEAN, COL_PBEST, COL_SHARE,
       COL_P50, COL_P95, NCOLS };
#define CELL 96

static const char *const col_titles[NCOLS] = {
    "variant", "stage", "requests", "errors", "fallbacks", "outcomes", "n", "mean [95% interval]",
    "P(best)", "share", "p50 ms", "p95 ms",
};

static void fmt_count(char *b, double x) {
  if (!isfinite(x))
    snprintf(b, CELL, "-");
  else if (x == floor(x))
    snprintf(b, CELL, "%.0f", x);
  else
    snprintf(b, CELL, "%.1f", x);
}

static void fmt_stat(char *b, size_t len, double x) {
  if (!isfinite(x))
    snprintf(b, len, "-");
  else if (fabs(x) >= 1e4)
    snprintf(b, len, "%.0f", x);
  else
    snprintf(b, len, "%.4g", x);
}

static void fmt_prob(char *b, double x) {
  if (!isfinite(x) || x < 0)
    snprintf(b, CELL, "-");
  else
    snprintf(b, CELL, "%.3f", x);
}

static void fmt_ms(char *b, double x) {
  if (!isfinite(x))
    snprintf(b, CELL, "-");
  else
    snprintf(b, CELL, x >= 10 ? "%.0f" : "%.1f", x);
}

static void fmt_row(const exp_view_t *e, size_t i, char row[NCOLS][CELL]) {
  const sy_varstats_t *v = &e->vs[i];
  int is_control = e->control && strcmp(e->control, e->vnames[i]) == 0;
  snprintf(row[COL_VARIANT], CELL, "%.80s%s", v->id, is_control ? " (control)" : "");
  char step[16];
  const char *stage = stage_of(e, i, step, sizeof step);
  snprintf(row[COL_STAGE], CELL, "%s%s%s", stage, step[0] ? " " : "", step);
  fmt_count(row[COL_REQ], v->requests);
  fmt_count(row[COL_ERR], v->errors);
  if (v->requests > 0) {
    size_t used = strlen(row[COL_ERR]);
    snprintf(row[COL_ERR] + used, CELL - used, " (%.1f%%)", 100 * v->errors / v->requests);
  }
  fmt_count(row[COL_FB], v->fallbacks);
  if (v->requests > 0 && v->fallbacks > 0) {
    size_t used = strlen(row[COL_FB]);
    snprintf(row[COL_FB] + used, CELL - used, " (%.1f%%)", 100 * v->fallbacks / v->requests);
  }
  fmt_count(row[COL_OUT], v->outcomes);
  fmt_count(row[COL_N], v->n);
  char m[24], lo[24], hi[24];
  fmt_stat(m, sizeof(m), e->iv[i].mean);
  fmt_stat(lo, sizeof(lo), e->iv[i].lo);
  fmt_stat(hi, sizeof(hi), e->iv[i].hi);
  if (isfinite(e->iv[i].mean))
    snprintf(row[COL_MEAN], CELL, "%s [%s, %s]", m, lo, hi);
  else
    snprintf(row[COL_MEAN], CELL, "-");
  fmt_prob(row[COL_PBEST], e->pbest[i]);
  fmt_prob(row[COL_SHARE], v->share);
  fmt_ms(row[COL_P50], sy_lat_quantile(v->lat, 0.5));
  fmt_ms(row[COL_P95], sy_lat_quantile(v->lat, 0.95));
}

/* Text columns are left-aligned, numbers right-aligned; two spaces between columns. */
static void print_row(const char row[NCOLS][CELL], const size_t *w) {
  for (int c = 0; c < NCOLS; c++) {
    int width = (int)w[c];
    if (c == COL_VARIANT || c == COL_STAGE || c == COL_MEAN)
      width = -width;
    printf("  %*s", width, row[c]);
  }
  fputc('\n', stdout);
}

static void print_header(const exp_view_t *e) {
  const char *dir = !e->direction ? "-" : e->minimise ? "lower is better" : "higher is better";
  printf("experiment %s: policy %s, metric %s (%s, %s), control %s\n", e->id,
         e->policy ? e->policy : "-", e->metric ? e->metric : "-", e->type ? e->type : "-", dir,
         e->control ? e->control : "-");
  const char *st = state_field(e, "status"), *win = state_field(e, "winner");
  const char *mode = state_field(e, "mode"), *ver = state_field(e, "version");
  if (st)
    printf("  state: %s%s%s, gate %s (version %s; `switchyard history %s` for why)\n", st,
           win && win[0] ? ", winner " : "", win && win[0] ? win : "", mode ? mode : "off",
           ver ? ver : "-", e->id);
}

static int print_text(const exp_view_t *e) {
  print_header(e);
  if (e->k == 0) {
    char key[SY_KEY_MAX];
    sy_key_meta(key, sizeof key, e->id);
    printf("  no variants listed in %s\n", key);
    return 0;
  }
  char(*rows)[NCOLS][CELL] = calloc(e->k + 1, sizeof(*rows));
  if (!rows) {
    sy_cli_err("status", "out of memory");
    return -1;
  }
  size_t w[NCOLS] = {0};
  for (int c = 0; c < NCOLS; c++)
    snprintf(rows[0][c], CELL, "%s", col_titles[c]);
  for (size_t i = 0; i < e->k; i++)
    fmt_row(e, i, rows[i + 1]);
  for (size_t i = 0; i <= e->k; i++)
    for (int c = 0; c < NCOLS; c++)
      if (strlen(rows[i][c]) > w[c])
        w[c] = strlen(rows[i][c]);
  for (size_t i = 0; i <= e->k; i++)
    print_row((const char(*)[CELL])rows[i], w);
  free(rows);
  return 0;
}

/* ---- JSON output ---- */

static json_t *jnum(double x) {
  return isfinite(x) ? json_real(x) : json_null();
}

/* Counts are integral in Redis unless weighted: print 12, not 12.0. */
static json_t *jcount(double x) {
  if (isfinite(x) && x == floor(x) && fabs(x) < 9007199254740992.0)
    return json_integer((json_int_t)x);
  return jnum(x);
}

static json_t *jstr(const char *s) {
  json_t *j = s ? json_string(s) : NULL;
  return j ? j : json_null();
}

static json_t *variant_json(const exp_view_t *e, size_t i) {
  const sy_varstats_t *v = &e->vs[i];
  json_t *o = json_object();
  json_object_set_new(o, "id", jstr(e->vnames[i]));
  char step[16];
  json_object_set_new(o, "stage", json_string(stage_of(e, i, step, sizeof step)));
  json_object_set_new(o, "step", step[0] ? json_integer(atoi(step)) : json_null());
  json_object_set_new(o, "requests", jcount(v->requests));
  json_object_set_new(o, "errors", jcount(v->errors));
  json_object_set_new(o, "retried", jcount(v->retried));
  json_object_set_new(o, "fallbacks", jcount(v->fallbacks));
  json_object_set_new(o, "fallback_rate",
                      v->requests > 0 ? jnum(v->fallbacks / v->requests) : json_null());
  json_object_set_new(o, "outcomes", jcount(v->outcomes));
  json_object_set_new(o, "n", jcount(v->n));
  json_object_set_new(o, "mean", jnum(e->iv[i].mean));
  json_object_set_new(o, "lo", jnum(e->iv[i].lo));
  json_object_set_new(o, "hi", jnum(e->iv[i].hi));
  json_object_set_new(o, "p_best", jnum(e->pbest[i]));
  json_object_set_new(o, "share", v->share >= 0 ? jnum(v->share) : json_null());
  json_object_set_new(o, "latency_p50_ms", jnum(sy_lat_quantile(v->lat, 0.5)));
  json_object_set_new(o, "latency_p95_ms", jnum(sy_lat_quantile(v->lat, 0.95)));
  json_object_set_new(o, "tokens_in", jcount(v->tokens_in));
  json_object_set_new(o, "tokens_out", jcount(v->tokens_out));
  return o;
}

static json_t *experiment_json(const exp_view_t *e) {
  json_t *o = json_object(), *vars = json_array();
  json_object_set_new(o, "id", jstr(e->id));
  json_object_set_new(o, "policy", jstr(e->policy));
  json_object_set_new(o, "metric", jstr(e->metric));
  json_object_set_new(o, "type", jstr(e->type));
  json_object_set_new(o, "direction", jstr(e->direction));
  json_object_set_new(o, "control", jstr(e->control));
  const char *win = state_field(e, "winner"), *ver = state_field(e, "version");
  json_object_set_new(o, "status", jstr(state_field(e, "status")));
  json_object_set_new(o, "gate", jstr(state_field(e, "mode")));
  json_object_set_new(o, "winner", win && win[0] ? json_string(win) : json_null());
  json_object_set_new(o, "state_version", ver ? json_integer(atoll(ver)) : json_null());
  for (size_t i = 0; i < e->k; i++)
    json_array_append_new(vars, variant_json(e, i));
  json_object_set_new(o, "variants", vars);
  return o;
}

/* ---- the command ---- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids to report, sorted (owned strings), or NULL after a message. */
static char **experiment_ids(sy_rsync_t *c, const char *only, size_t *count) {
  *count = 0;
  if (only) {
    char **ids = calloc(1, sizeof(char *));
    if (ids && (ids[0] = strdup(only)))
      *count = 1;
    return ids;
  }
  redisReply *r = sy_rsync_command(c, "SMEMBERS " SY_KEY_EXPERIMENTS);
  if (!r)
    return NULL;
  char **ids = calloc(r->elements + 1, sizeof(char *));
  for (size_t i = 0; ids && i < r->elements; i++)
    if (r->element[i]->type == REDIS_REPLY_STRING && (ids[*count] = strdup(r->element[i]->str)))
      (*count)++;
  freeReplyObject(r);
  if (ids)
    qsort(ids, *count, sizeof(char *), cmp_str);
  return ids;
}

/* Loads and prints (or adds to `arr`) each experiment. Returns the exit status. */
static int report(sy_rsync_t *c, char **ids, size_t n, const status_opts_t *o, json_t *arr) {
  for (size_t i = 0; i < n; i++) {
    exp_view_t e;
    int found = load_experiment(c, ids[i], &e);
    if (found == 0 && o->exp)
      sy_rsync_fail(c, "no experiment '%s' in Redis", ids[i]);
    if (found < 0 || (found == 0 && o->exp)) {
      view_free(&e);
      return 1;
    }
    int rc = 0;
    if (arr)
      json_array_append_new(arr, experiment_json(&e));
    else
      rc = print_text(&e) < 0 || (i + 1 < n && putchar('\n') == EOF);
    view_free(&e);
    if (rc)
      return 1;
  }
  if (!arr && n == 0)
    printf("no experiments in Redis (" SY_KEY_EXPERIMENTS " is empty)\n");
  return 0;
}

int sy_status_collect(sy_rsync_t *c, const char *only, json_t **out) {
  *out = NULL;
  size_t n = 0;
  char **ids = experiment_ids(c, only, &n);
  if (ids == NULL)
    return -1;
  json_t *arr = json_array();
  int rc = arr != NULL ? 0 : -1;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    exp_view_t e;
    int found = load_experiment(c, ids[i], &e);
    if (found < 0) {
      rc = -1; /* Redis failed (an error reply included) or out of memory: reported */
    } else if (found == 0 && only != NULL) {
      sy_rsync_fail(c, "no experiment '%s' in Redis", ids[i]);
      rc = -2;
    } else if (found > 0) {
      json_array_append_new(arr, experiment_json(&e));
    }
    view_free(&e);
  }
  for (size_t i = 0; i < n; i++)
    free(ids[i]);
  free(ids);
  if (rc != 0) {
    json_decref(arr);
    return rc;
  }
  *out = arr;
  return 0;
}

static int print_json(json_t *arr) {
  json_t *root = json_object();
  json_object_set_new(root, "experiments", arr);
  int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) < 0;
  fputc('\n', stdout);
  json_decref(root);
  return rc;
}

static int run(const status_opts_t *o) {
  sy_redis_addr_t addr;
  unsigned timeout_ms;
  if (resolve_addr(o, &addr, &timeout_ms) < 0)
    return 1;
  sy_rsync_t conn = {0}, *c = &conn;
  if (sy_rsync_connect(c, &addr, timeout_ms) < 0) {
    sy_cli_err("status", "%s", c->err);
    return 1;
  }
  size_t n = 0;
  char **ids = experiment_ids(c, o->exp, &n);
  int rc = 1;
  if (ids) {
    json_t *arr = o->json ? json_array() : NULL;
    rc = report(c, ids, n, o, arr);
    if (arr && rc == 0)
      rc = print_json(arr);
    else
      json_decref(arr);
  }
  if (rc != 0 && c->err[0] != '\0')
    sy_cli_err("status", "%s", c->err);
  for (size_t i = 0; ids && i < n; i++)
    free(ids[i]);
  free(ids);
  sy_rsync_close(c);
  return rc;
}

int sy_status_main(int argc, char **argv) {
  status_opts_t o;
  int p = parse_args(argc, argv, &o);
  if (p > 0) {
    fputs(usage_status, stdout);
    return 0;
  }
  if (p < 0) {
    fputs(usage_status, stderr);
    return 2;
  }
  int rc = run(&o);
  if (fflush(stdout) != 0)
    rc = 1;
  return rc;
}
