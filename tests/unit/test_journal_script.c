/*
 * test_journal_script.c — the journal script's order and dedupe rules (stats/scripts.h,
 * SY_LUA_JOURNAL), run in a real redis-server (stats/embedded.c), one batch at a time,
 * as the router sends them.
 *
 * The case that lost events: while Redis refused writes (maxmemory), an instance's
 * first batches were refused; a later batch, already in flight when memory came back,
 * reached Redis before any of them. With no journal key yet, the script applied it and
 * set the key to its number, and the resends of the refused batches were then answered
 * DUP and counted as acknowledged. A missing key now means "none applied": only batch
 * 1 may come first, anything else is a GAP and writes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "proto/keys.h"
#include "stats/scripts.h"
#include "tests/unit/check.h"
#include "tests/unit/redis_fixture.h"

#define STREAM "sy:events"

static char sha[48];

/* Sends batch SEQ of instance INST carrying one event, VALUE; FORCE "1" or "0".
 * Returns the reply (the caller frees it). */
static redisReply *batch(redisContext *c, const char *inst, unsigned seq, const char *force,
                         const char *value) {
  char key[SY_KEY_MAX], s[24];
  sy_key_journal(key, sizeof key, inst);
  snprintf(s, sizeof s, "%u", seq);
  const char *argv[] = {"EVALSHA", sha, "2", key, STREAM, s, "100000", force, "E", value};
  redisReply *r = redisCommandArgv(c, 10, argv, NULL);
  CHECK_MSG(r != NULL, "no reply: %s", c->errstr);
  return r;
}

static int is_status(const redisReply *r, const char *s) {
  return r != NULL && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING) &&
         strcmp(r->str, s) == 0;
}

/* {"GAP", last} with LAST. */
static int is_gap(const redisReply *r, long long last) {
  return r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
         r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "GAP") == 0 &&
         r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer == last;
}

static void expect(redisContext *c, const char *inst, unsigned seq, const char *force,
                   const char *value, const char *want, long long gap_last) {
  redisReply *r = batch(c, inst, seq, force, value);
  if (want != NULL)
    CHECK_MSG(is_status(r, want), "%s batch %u (force %s): want %s, got type %d %s", inst, seq,
              force, want, r ? r->type : -1, r && r->str ? r->str : "");
  else
    CHECK_MSG(is_gap(r, gap_last), "%s batch %u (force %s): want GAP %lld, got type %d %s", inst,
              seq, force, gap_last, r ? r->type : -1, r && r->str ? r->str : "");
  freeReplyObject(r);
}

static long long xlen(redisContext *c) {
  redisReply *r = redisCommand(c, "XLEN %s", STREAM);
  long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  freeReplyObject(r);
  return n;
}

/* The journal key of INST, or -1 when it does not exist. */
static long long last_applied(redisContext *c, const char *inst) {
  char key[SY_KEY_MAX];
  sy_key_journal(key, sizeof key, inst);
  redisReply *r = redisCommand(c, "GET %s", key);
  long long n = r != NULL && r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
  freeReplyObject(r);
  return n;
}

/* The fault: a later batch first, while the key is missing, writes nothing. */
static void test_first_batch_must_be_one(redisContext *c) {
  expect(c, "inst-a", 18, "0", "a18", NULL, 0);
  CHECK(xlen(c) == 0);
  CHECK(last_applied(c, "inst-a") == -1);
  /* The refused batches, resent in order, are applied, then 18 in its turn. */
  for (unsigned s = 1; s <= 3; s++) {
    char v[16];
    snprintf(v, sizeof v, "a%u", s);
    expect(c, "inst-a", s, "0", v, "OK", 0);
  }
  expect(c, "inst-a", 18, "0", "a18", NULL, 3); /* 4..17 still missing */
  CHECK(xlen(c) == 3);
  expect(c, "inst-a", 2, "0", "a2", "DUP", 0); /* a resend */
  CHECK(xlen(c) == 3);
  CHECK(last_applied(c, "inst-a") == 3);
}

/* Forcing skips a gap the router can no longer fill, and never applies twice. */
static void test_force(redisContext *c) {
  expect(c, "inst-b", 1, "0", "b1", "OK", 0);
  expect(c, "inst-b", 5, "0", "b5", NULL, 1);
  expect(c, "inst-b", 5, "1", "b5", "OK", 0);
  CHECK(last_applied(c, "inst-b") == 5);
  /* The forced batch again (its reply lost, say): a duplicate, not a second copy. */
  expect(c, "inst-b", 5, "1", "b5", "DUP", 0);
  expect(c, "inst-b", 3, "1", "b3", "DUP", 0);
  expect(c, "inst-b", 6, "0", "b6", "OK", 0);
  /* A key Redis lost (a restore, an eviction): the next batch is a gap from 0. */
  char key[SY_KEY_MAX];
  sy_key_journal(key, sizeof key, "inst-b");
  freeReplyObject(redisCommand(c, "DEL %s", key));
  expect(c, "inst-b", 7, "0", "b7", NULL, 0);
  expect(c, "inst-b", 7, "1", "b7", "OK", 0);
  char got[256];
  rf_stream_values(c, STREAM, got, sizeof got);
  CHECK_MSG(strcmp(got, "a1,a2,a3,b1,b5,b6,b7") == 0, "stream: %s", got);
}

int main(void) {
  redis_fixture_t f;
  if (rf_start(&f, "jscript") == 0) {
    redisContext *c = f.c;
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", SY_LUA_JOURNAL);
    CHECK_MSG(r != NULL && r->type == REDIS_REPLY_STRING, "SCRIPT LOAD: %s",
              r && r->str ? r->str : c->errstr);
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
      snprintf(sha, sizeof sha, "%s", r->str);
      test_first_batch_must_be_one(c);
      test_force(c);
    }
    freeReplyObject(r);
  }
  rf_stop(&f);
  return CHECK_DONE();
}
