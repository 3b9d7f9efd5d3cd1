/*
 * posterior.h — the shared statistics as the policies read them back: the sync
 * script (stats/scripts.h SY_LUA_SYNC) returns each variant's sufficient statistics
 * (n, sum, sumsq), overall and per segment, and writes the router's view of the
 * experiment to sy:{E}:meta for dashboards and the CLI; the sweep script counts
 * binary trials whose window passed without an outcome as failures.
 *
 * The router says what an experiment is (router/stats_sync.c); this module owns the
 * keys, the scripts' KEYS/ARGV and the reply's layout.
 *
 * Error convention (stats/): 0, or -1 when the command could not be queued (Redis
 * down, out of memory); the script's answer reaches the callback.
 */
#ifndef SY_POSTERIOR_H
#define SY_POSTERIOR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "stats/argv.h"
#include "stats/redis.h"
#include "stats/stats.h"

typedef struct sy_sync_exp_s {
  const char *id;
  char *const *variants; /* in config order: the reply follows it */
  size_t nvariants;
  const sy_argv_t *meta; /* field/value pairs for sy:{E}:meta (the link adds its stream) */
} sy_sync_exp_t;

/* Queues the sync script for one experiment. */
int sy_stats_sync(sy_stats_t *s, const sy_sync_exp_t *x, sy_redis_reply_cb cb, void *data);

/* Marks the variant versions of experiment exp under config `config_hash` as serving
 * at now_ms in the version registry (sy:{E}:versions; ids and versions as in the
 * config). The reply is the number of entries touched. */
int sy_stats_versions(sy_stats_t *s, const char *exp, const char *config_hash, uint64_t now_ms,
                      const char *const *variants, const char *const *versions, size_t n,
                      sy_redis_reply_cb cb, void *data);
/* A registry field: CONFIG|VARIANT|VERSION with '%' and '|' of the version escaped as
 * %25 and %7C. Returns its length, or 0 if it does not fit in cap. */
size_t sy_stats_version_field(char *out, size_t cap, const char *config_hash, const char *variant,
                              const char *version);

/* The sync script's reply as a posterior snapshot:
 *   {"experiments": {E: {"variants": {V: {n, sum, sumsq}}, "segments": {S: {V: ...}}}}}
 * or NULL when the reply is not that script's (an error, another layout). */
json_t *sy_stats_sync_snapshot(const redisReply *reply, const char *exp, char *const *variants,
                               size_t nvariants);

/* Queues the sweep of experiment exp (binary metric `metric`): at most `limit` due
 * trials become failures, each with its event. The reply is how many. */
int sy_stats_sweep(sy_stats_t *s, const char *exp, const char *metric, unsigned limit,
                   sy_redis_reply_cb cb, void *data);

#endif
