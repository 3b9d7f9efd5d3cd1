/*
 * test_quantile_paths.c — one latency p95 everywhere (issue 13): the same histograms,
 * written to a real redis-server (stats/embedded.c) as the routers write them, read
 * back through each place that reports a p95, give the same number:
 *   - `switchyard status --json`, and the admin API and the dashboard, which serve
 *     that JSON (sy_status_collect; the admin API's guardrail ratio is the ratio of
 *     two of its p95s);
 *   - the `switchyard status` table (sy_status_main, its output read back);
 *   - the gate's latency guardrail (sy_gate_evaluate: guard control and candidate);
 *   - sy_lat_quantile (policies/lathist.h) itself.
 * The histograms put p95 inside a bucket where the linear reading that `status` used
 * before disagrees with the gate's curve by more than the table's resolution, so a
 * reporter that reads it any other way fails here.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "policies/gate.h"
#include "policies/lathist.h"
#include "proto/keys.h"
#include "router/status.h"
#include "tests/unit/check.h"
#include "tests/unit/redis_fixture.h"

/* Counts per bucket of proto/latency.h; p95 falls inside (200, 500] for both. */
static const double hist_a[SY_LAT_BUCKETS] = {0, 0, 0, 0, 100, 300, 400, 130, 60, 10};
static const double hist_b[SY_LAT_BUCKETS] = {0, 0, 0, 0, 0, 200, 400, 250, 120, 30};

static void hset_hist(redisContext *c, const char *key, const double *h) {
  for (int i = 0; i < SY_LAT_BUCKETS; i++) {
    if (h[i] == 0)
      continue;
    redisReply *r = redisCommand(c, "HSET %s %s %.0f", key, sy_lat_fields[i], h[i]);
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
  }
}

static void load_redis(redisContext *c) {
  char key[SY_KEY_MAX];
  sy_key_meta(key, sizeof key, "chat");
  redisReply *r = redisCommand(c, "HSET %s variants a,b control a type continuous", key);
  CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER);
  freeReplyObject(r);
  r = redisCommand(c, "SADD %s chat", SY_KEY_EXPERIMENTS);
  freeReplyObject(r);
  sy_key_variant(key, sizeof key, "chat", "a");
  hset_hist(c, key, hist_a);
  sy_key_variant(key, sizeof key, "chat", "b");
  hset_hist(c, key, hist_b);
}

/* The gate's p95s of control a and candidate b. */
static void gate_p95(double *ctl, double *cand) {
  sy_gate_params_t p;
  sy_gate_params_default(&p);
  p.alpha_srm = 0;
  sy_gate_arm_t a = {0}, b = {0};
  memcpy(a.lat_hist, hist_a, sizeof a.lat_hist);
  memcpy(b.lat_hist, hist_b, sizeof b.lat_hist);
  sy_gate_result_t res;
  sy_gate_evaluate(&p, &a, &b, 0, &res);
  CHECK_MSG(res.decision != SY_GATE_HALT, "gate halted: %s", res.reason);
  *ctl = res.guard[SY_GATE_GUARD_LATENCY].control;
  *cand = res.guard[SY_GATE_GUARD_LATENCY].candidate;
}

/* latency_p95_ms of variants a and b in the status JSON. */
static void json_p95(redisContext *ctx, double *pa, double *pb) {
  sy_rsync_t conn = {.c = ctx}, *c = &conn;
  json_t *arr = NULL;
  *pa = *pb = NAN;
  CHECK_MSG(sy_status_collect(c, "chat", &arr) == 0, "%s", c->err);
  json_t *vars = json_object_get(json_array_get(arr, 0), "variants");
  size_t i;
  json_t *v;
  json_array_foreach(vars, i, v) {
    const char *id = json_string_value(json_object_get(v, "id"));
    double x = json_number_value(json_object_get(v, "latency_p95_ms"));
    if (id != NULL && strcmp(id, "a") == 0)
      *pa = x;
    else if (id != NULL && strcmp(id, "b") == 0)
      *pb = x;
  }
  json_decref(arr);
}

/* The p95 cells (the table's last column) of rows a and b of `switchyard status`. */
static void table_p95(const char *sock, const char *out, char *pa, char *pb, size_t n) {
  char url[160];
  snprintf(url, sizeof url, "unix://%s", sock);
  char *argv[] = {"chat", "--redis", url, NULL};
  fflush(stdout);
  int saved = dup(1), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(fd, 1);
  int rc = sy_status_main(3, argv);
  fflush(stdout);
  dup2(saved, 1);
  close(fd);
  close(saved);
  CHECK(rc == 0);
  pa[0] = pb[0] = '\0';
  FILE *f = fopen(out, "r");
  char line[1024];
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    char first[64] = "", *last = strrchr(line, ' ');
    if (sscanf(line, "%63s", first) != 1 || last == NULL)
      continue;
    last[strcspn(last, "\n")] = '\0';
    if (strcmp(first, "a") == 0)
      snprintf(pa, n, "%s", last + 1);
    else if (strcmp(first, "b") == 0)
      snprintf(pb, n, "%s", last + 1);
  }
  if (f != NULL)
    fclose(f);
}

/* The table's rendering of a latency (router/status.c, fmt_ms). */
static void cell(char *b, size_t n, double ms) {
  snprintf(b, n, ms >= 10 ? "%.0f" : "%.1f", ms);
}

int main(void) {
  redis_fixture_t f;
  char out[96];
  if (rf_start(&f, "p95") == 0) {
    redisContext *c = f.c;
    snprintf(out, sizeof out, "%s/status.txt", f.tmp);
    load_redis(c);
    double qa = sy_lat_quantile(hist_a, 0.95), qb = sy_lat_quantile(hist_b, 0.95);
    double ga, gb, ja, jb;
    gate_p95(&ga, &gb);
    CHECK_MSG(ga == qa && gb == qb, "gate %.17g %.17g, lathist %.17g %.17g", ga, gb, qa, qb);
    json_p95(c, &ja, &jb);
    CHECK_MSG(ja == ga && jb == gb, "status JSON %.17g %.17g, gate %.17g %.17g", ja, jb, ga, gb);
    CHECK(jb / ja == gb / ga); /* the admin API's latency_p95_ratio is the gate's ratio */
    char ta[32], tb[32], wa[32], wb[32];
    table_p95(f.e.sock, out, ta, tb, sizeof ta);
    cell(wa, sizeof wa, ga);
    cell(wb, sizeof wb, gb);
    CHECK_MSG(strcmp(ta, wa) == 0 && strcmp(tb, wb) == 0, "table %s %s, gate %s %s", ta, tb, wa,
              wb);
    /* Not the linear reading: a at 300 ms, b at 450 ms. */
    CHECK_MSG(fabs(ga - 300) > 1 && fabs(gb - 450) > 1, "p95 %g %g", ga, gb);
  }
  rf_stop(&f);
  return CHECK_DONE();
}
