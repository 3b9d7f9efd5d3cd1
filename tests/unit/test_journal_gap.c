/*
 * test_journal_gap.c — the journal (stats/journal.c) against a real redis-server
 * (stats/embedded.c) on a libuv loop, at the two places where its exactly-once rule
 * meets a Redis that misbehaves:
 *   - Redis loses what it acknowledged (a restart without persistence, a fail-over to
 *     a replica that lagged): its journal key and stream are gone, the router holds
 *     nothing older than its next batch. That batch comes back as a GAP from 0; the
 *     journal applies it past the gap (it is the oldest it holds), once.
 *   - Redis refuses writes (maxmemory) while batches are on their way, then takes
 *     them again: every batch lands once and in order, the refused ones included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "stats/journal.h"
#include "stats/redis.h"
#include "stats/redis_url.h"
#include "tests/unit/check.h"
#include "tests/unit/redis_fixture.h"

#define STREAM "sy:events"
#define INSTANCE "t-gap"

static uv_loop_t loop;
static sy_redis_t redis;
static sy_journal_t *jr;
static uint64_t want_acked;

static void on_state(sy_redis_t *r, int up, void *data) {
  (void)r, (void)data;
  if (jr != NULL)
    sy_journal_redis_state(jr, up);
}

static uint64_t acked(void) {
  sy_journal_counters_t c;
  sy_journal_counters(jr, &c);
  return c.events_acked;
}

static void on_wake(uv_timer_t *t) { (void)t; }

/* Runs the loop until COND holds or ms pass; returns COND. */
static int run_until(int (*cond)(void), unsigned ms) {
  uv_timer_t wake; /* the loop never sleeps longer than 10 ms between checks */
  uv_timer_init(&loop, &wake);
  uv_timer_start(&wake, on_wake, 10, 10);
  uv_update_time(&loop);
  uint64_t end = uv_now(&loop) + ms;
  while (!cond() && uv_now(&loop) < end)
    uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&wake, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  return cond();
}

static int all_acked(void) { return acked() >= want_acked; }
static int is_ready(void) { return sy_redis_ready(&redis); }

static void add_events(const char *prefix, int n) {
  for (int i = 1; i <= n; i++) {
    char v[32];
    int len = snprintf(v, sizeof v, "%s%d", prefix, i);
    sy_journal_event5(jr, v, (size_t)len);
  }
  sy_journal_flush(jr);
}

static void cmd(redisContext *c, const char *fmt, const char *a) {
  redisReply *r = redisCommand(c, fmt, a);
  CHECK_MSG(r != NULL && r->type != REDIS_REPLY_ERROR, "%s: %s", fmt,
            r ? r->str : c->errstr);
  freeReplyObject(r);
}

static void expect_stream(redisContext *c, const char *prefix, int from, int to) {
  char want[2048] = "", got[2048];
  size_t used = 0;
  for (int i = from; i <= to; i++)
    used += (size_t)snprintf(want + used, sizeof want - used, "%s%s%d", used ? "," : "", prefix,
                             i);
  rf_stream_values(c, STREAM, got, sizeof got);
  CHECK_MSG(strcmp(got, want) == 0, "stream\n  %s\nwanted\n  %s", got, want);
}

static long long journal_key(redisContext *c) {
  redisReply *r = redisCommand(c, "GET sy:journal:" INSTANCE);
  long long n = r != NULL && r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
  freeReplyObject(r);
  return n;
}

/* Redis lost two acknowledged batches: the third is applied past the gap, once. */
static void test_lost_batches(redisContext *c) {
  add_events("a", 10); /* batch 1 */
  add_events("b", 10); /* batch 2 */
  want_acked = 20;
  CHECK_MSG(run_until(all_acked, 10000), "acked %llu of 20", (unsigned long long)acked());
  CHECK(journal_key(c) == 2);
  cmd(c, "DEL %s", "sy:journal:" INSTANCE);
  cmd(c, "DEL %s", STREAM);
  add_events("c", 10); /* batch 3: Redis has none applied */
  want_acked = 30;
  CHECK_MSG(run_until(all_acked, 10000), "acked %llu of 30", (unsigned long long)acked());
  expect_stream(c, "c", 1, 10);
  CHECK(journal_key(c) == 3);
}

/* Batches refused at maxmemory are resent in order once Redis takes writes again. */
static void test_refused_then_taken(redisContext *c) {
  sy_journal_counters_t before, after;
  sy_journal_counters(jr, &before);
  cmd(c, "DEL %s", STREAM);
  cmd(c, "CONFIG SET maxmemory %s", "1");
  add_events("d", 10); /* batches 4, 5, 6: 10, 10 and 5 events */
  add_events("e", 10);
  add_events("f", 5);
  want_acked = before.events_acked + 25;
  CHECK(!run_until(all_acked, 400)); /* refused, and still held */
  sy_journal_counters(jr, &after);
  CHECK_MSG(after.batches_sent > before.batches_sent, "no batch was sent while refused");
  CHECK(after.events_acked == before.events_acked);
  cmd(c, "CONFIG SET maxmemory %s", "0");
  CHECK_MSG(run_until(all_acked, 15000), "acked %llu of %llu", (unsigned long long)acked(),
            (unsigned long long)want_acked);
  char got[2048];
  rf_stream_values(c, STREAM, got, sizeof got);
  CHECK_MSG(strcmp(got, "d1,d2,d3,d4,d5,d6,d7,d8,d9,d10,e1,e2,e3,e4,e5,e6,e7,e8,e9,e10,"
                        "f1,f2,f3,f4,f5") == 0,
            "stream %s", got);
  CHECK(journal_key(c) == 6);
}

static void on_closed(sy_redis_t *r) { (void)r; }

int main(void) {
  redis_fixture_t f;
  char spool[96], url[160], err[256];
  if (rf_start(&f, "jgap") == 0) {
    redisContext *c = f.c;
    snprintf(spool, sizeof spool, "%s/spool", f.tmp);
    uv_loop_init(&loop);
    snprintf(url, sizeof url, "unix://%s", f.e.sock);
    sy_redis_addr_t addr;
    CHECK_MSG(sy_redis_url_parse(url, &addr, err, sizeof err) == 0, "%s", err);
    sy_journal_conf_t jc = {.spool_dir = spool,
                            .instance = INSTANCE,
                            .stream = STREAM,
                            .maxlen = 100000,
                            .batch_max = 10,
                            .flush_ms = 5,
                            .queue_bytes = 1u << 20,
                            .spool_bytes = 16u << 20};
    jr = sy_journal_new(&loop, &redis, &jc, err, sizeof err);
    CHECK_MSG(jr != NULL, "%s", err);
    sy_redis_opts_t opts = {.timeout_ms = 1000, .backoff_max_ms = 100};
    if (jr != NULL && sy_redis_open(&redis, &loop, &addr, &opts, on_state, NULL) == 0) {
      CHECK(run_until(is_ready, 5000));
      test_lost_batches(c);
      test_refused_then_taken(c);
      sy_journal_free(jr);
      jr = NULL;
      sy_redis_close(&redis, on_closed);
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    CHECK(uv_loop_close(&loop) == 0);
  }
  rf_stop(&f);
  return CHECK_DONE();
}
