/*
 * fuzz_redis_replies.c — libFuzzer target for what the router makes of the Redis
 * hashes it reads: an experiment's control state sy:{E}:state
 * (router/control_state.h, sy_ctl_state_parse and the routing that follows from
 * it) and a variant's statistics sy:{E}:v:V (stats/summary.h, sy_varstats_from_hash
 * and the figures `switchyard status` derives from it, its latency quantiles through
 * policies/lathist.h).
 *
 * The input is split on NUL and newline bytes into strings, read as the
 * field/value pairs of an HGETALL reply (a lone trailing string is dropped, as the
 * callers do); a string that is the single byte 0x7f stands for a reply element
 * that is not a string, which router/status.c passes as NULL. The state is parsed
 * for two fixed experiments (a canary gate with a shadow candidate, and a bandit).
 * The target aborts when:
 *   - the state has a status or a stage outside its enum, a winner that is neither
 *     -1 nor a variant, a variant count other than the experiment's, a ramp step
 *     past the ramp, a req0 or base value that is not finite, or a problem count
 *     below 0 or above the number of fields; a variant that no "v:" field names has
 *     a stage other than its initial one; no fields at all is not the initial state;
 *   - the routing of that state gives weights outside [0, 1] or not summing to 1,
 *     or a policy with no variant active;
 *   - the variant statistics change the id, leave share other than -1, hold a count
 *     that is not finite, or differ from the last value of each known field that is
 *     a whole finite decimal number (0 when there is none);
 *   - a latency quantile is neither NAN nor in [0, 60000], or the median exceeds the
 *     p95; an outcome interval breaks summary.h (binary: mean, lo, hi in [0, 1] with
 *     lo <= mean <= hi; continuous: NAN as documented for n <= 0 and n < 2); P(best)
 *     of the variant against an empty one leaves [0, 1] or does not sum to 1.
 * Build with libFuzzer: tests/fuzz/run; without it: meson test --suite fuzz.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policies/lathist.h"
#include "router/config.h"
#include "router/control_state.h"
#include "stats/summary.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);


#define MAX_STRINGS 512

static const char config_yaml[] =
    "listen: [\"127.0.0.1:8080\"]\n"
    "upstreams:\n"
    "  mock: {servers: [\"127.0.0.1:9000\"]}\n"
    "experiments:\n"
    "  - id: chat\n"
    "    match: {path_prefix: /v1/chat}\n"
    "    control: a\n"
    "    policy: split\n"
    "    variants:\n"
    "      - {id: a, upstream: mock}\n"
    "      - {id: b, upstream: mock}\n"
    "      - {id: c, upstream: mock, shadow: {fraction: 0.5}}\n"
    "    gate: {mode: canary, ramp: [2, 10, 30]}\n"
    "  - id: arms\n"
    "    match: {path_prefix: /v1/completions}\n"
    "    control: x\n"
    "    policy: thompson\n"
    "    variants:\n"
    "      - {id: x, upstream: mock}\n"
    "      - {id: y, upstream: mock}\n"
    "      - {id: z, upstream: mock}\n"
    "      - {id: w, upstream: mock}\n"
    "    thompson: {floor: 0.05}\n"
    "    gate: {mode: bandit}\n";

static sy_config_t *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char err[512];
  if (sy_config_parse("fuzz.yaml", config_yaml, strlen(config_yaml), &cfg, err, sizeof err) < 0 ||
      cfg->nexperiments != 2) {
    fprintf(stderr, "fuzz_redis_replies: the fixed config does not load: %s\n", err);
    abort();
  }
  return 0;
}

/* ---- the control state ---- */

/* True if some "v:" field of kv[0, 2n) names variant id. */
static int has_stage_field(const char *const *kv, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strncmp(kv[2 * i], "v:", 2) == 0 && strcmp(kv[2 * i] + 2, id) == 0)
      return 1;
  return 0;
}

static void check_routing(const sy_experiment_conf_t *e, const sy_ctl_state_t *s) {
  double w[SY_CTL_MAX_VARIANTS];
  unsigned char active[SY_CTL_MAX_VARIANTS];
  sy_route_kind_t kind = sy_ctl_routing(e, s, w, active);
  if (kind == SY_ROUTE_WEIGHTS) {
    double sum = 0;
    for (size_t v = 0; v < s->nvariants; v++) {
      REQUIRE(w[v] >= 0 && w[v] <= 1);
      sum += w[v];
    }
    REQUIRE(fabs(sum - 1) < 1e-9);
  } else {
    REQUIRE(kind == SY_ROUTE_POLICY);
    size_t n = 0;
    for (size_t v = 0; v < s->nvariants; v++)
      n += active[v] != 0;
    REQUIRE(n > 0);
  }
}

static void check_state(const sy_experiment_conf_t *e, const char *const *kv, size_t n) {
  sy_ctl_state_t s, init;
  int bad = sy_ctl_state_parse(e, kv, n, &s);
  sy_ctl_state_initial(e, &init);
  REQUIRE(bad >= 0 && (size_t)bad <= n);
  REQUIRE(s.nvariants == e->nvariants);
  REQUIRE((unsigned)s.status < SY_XS_COUNT);
  REQUIRE(s.winner == -1 || (s.winner >= 0 && (size_t)s.winner < s.nvariants));
  for (size_t v = 0; v < s.nvariants; v++) {
    REQUIRE((unsigned)s.stage[v] < SY_STAGE_COUNT);
    REQUIRE(e->gate.nramp == 0 || s.step[v] < e->gate.nramp);
    REQUIRE(isfinite(s.req0[v]) && isfinite(s.base[v]));
    if (!has_stage_field(kv, n, e->variants[v].id))
      REQUIRE(s.stage[v] == init.stage[v]);
  }
  if (n == 0)
    REQUIRE(bad == 0 && s.version == 0 && s.status == init.status && s.winner == -1);
  check_routing(e, &s);
}

/* ---- the variant statistics ---- */

static const char *const stat_names[] = {
    "requests",   "errors",    "n",          "sum",     "sumsq",   "outcomes",
    "missing_failures", "lat_ms_sum", "tokens_in", "tokens_out", "lat:1",   "lat:2",
    "lat:5",      "lat:10",    "lat:20",     "lat:50",  "lat:100", "lat:200",
    "lat:500",    "lat:1000",  "lat:2000",   "lat:5000", "lat:10000", "lat:30000",
    "lat:60000",  "lat:inf",
};

static double *stat_slot(sy_varstats_t *v, size_t i) {
  double *plain[] = {&v->requests, &v->errors,           &v->n,          &v->sum,
                     &v->sumsq,    &v->outcomes,         &v->missing_failures,
                     &v->lat_ms_sum, &v->tokens_in,      &v->tokens_out};
  size_t np = sizeof plain / sizeof plain[0];
  return i < np ? plain[i] : &v->lat[i - np];
}

/* The value summary.h says field `name` takes: the last whole finite number, or 0. */
static double expected(const char *name, const char *const *f, const char *const *val, size_t n) {
  double x = 0;
  for (size_t i = 0; i < n; i++) {
    if (f[i] == NULL || val[i] == NULL || val[i][0] == '\0' || strcmp(f[i], name) != 0)
      continue;
    char *end;
    double d = strtod(val[i], &end);
    if (*end == '\0' && isfinite(d))
      x = d;
  }
  return x;
}

static void check_derived(const sy_varstats_t *v) {
  double p50 = sy_lat_quantile(v->lat, 0.5), p95 = sy_lat_quantile(v->lat, 0.95);
  REQUIRE(isnan(p50) || (p50 >= 0 && p50 <= 60000));
  REQUIRE(isnan(p95) || (p95 >= 0 && p95 <= 60000));
  REQUIRE(isnan(p50) == isnan(p95) && (isnan(p50) || p50 <= p95));
  sy_interval_t b = sy_outcome_interval(v, 0);
  REQUIRE(b.mean > 0 && b.mean < 1 && b.lo >= 0 && b.hi <= 1 && b.lo <= b.mean &&
          b.mean <= b.hi);
  sy_interval_t c = sy_outcome_interval(v, 1);
  if (!(v->n > 0))
    REQUIRE(isnan(c.mean) && isnan(c.lo) && isnan(c.hi));
  else if (v->n < 2)
    REQUIRE(isnan(c.lo) && isnan(c.hi));
  else if (isfinite(c.lo) && isfinite(c.hi) && isfinite(c.mean))
    REQUIRE(c.lo <= c.mean && c.mean <= c.hi);
  sy_varstats_t two[2];
  two[0] = *v;
  memset(&two[1], 0, sizeof two[1]);
  for (int cont = 0; cont < 2; cont++) {
    double p[2];
    sy_prob_best(two, 2, cont, cont, 16, 1, p);
    REQUIRE(p[0] >= 0 && p[0] <= 1 && p[1] >= 0 && p[1] <= 1 && fabs(p[0] + p[1] - 1) < 1e-9);
  }
}

static void check_varstats(const char *const *f, const char *const *val, size_t n) {
  sy_varstats_t v;
  memset(&v, 0x55, sizeof v); /* every field but the id is reset */
  snprintf(v.id, sizeof v.id, "variant-b");
  sy_varstats_from_hash(&v, f, val, n);
  REQUIRE(strcmp(v.id, "variant-b") == 0 && v.share == -1);
  for (size_t i = 0; i < sizeof stat_names / sizeof stat_names[0]; i++) {
    double *slot = stat_slot(&v, i);
    REQUIRE(isfinite(*slot) && *slot == expected(stat_names[i], f, val, n));
  }
  check_derived(&v);
}

/* libFuzzer entry point: see the file comment. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 1);
  const char **kv = malloc(MAX_STRINGS * sizeof *kv);
  const char **f = malloc(MAX_STRINGS / 2 * sizeof *f);
  const char **val = malloc(MAX_STRINGS / 2 * sizeof *val);
  if (buf == NULL || kv == NULL || f == NULL || val == NULL)
    goto out;
  if (size > 0)
    memcpy(buf, data, size);
  buf[size] = '\0';
  size_t nstr = 0;
  for (size_t start = 0, i = 0; i <= size && nstr < MAX_STRINGS; i++) {
    if (i == size || buf[i] == '\n' || buf[i] == '\0') {
      buf[i] = '\0';
      kv[nstr++] = buf + start;
      start = i + 1;
    }
  }
  size_t n = nstr / 2;
  for (size_t i = 0; i < n; i++) {
    f[i] = strcmp(kv[2 * i], "\x7f") == 0 ? NULL : kv[2 * i];
    val[i] = strcmp(kv[2 * i + 1], "\x7f") == 0 ? NULL : kv[2 * i + 1];
  }
  for (size_t x = 0; x < cfg->nexperiments; x++)
    check_state(&cfg->experiments[x], kv, n);
  check_varstats(f, val, n);
out:
  free(buf);
  free(kv);
  free(f);
  free(val);
  return 0;
}
