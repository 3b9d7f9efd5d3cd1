/*
 * status.h — `switchyard status`: a read-only look at what Redis holds for each
 * experiment (proto/KEYS.md): per variant requests, errors, outcomes, the outcome mean
 * with a 95% interval, P(best), the policy's current share, latency p50/p95.
 */
#ifndef SY_STATUS_H
#define SY_STATUS_H

/*
 * `switchyard status [EXP] [--json] [--config FILE | --redis URL]`.
 * argv[0..argc) are the arguments after the word `status` (as main.c hands its
 * commands argc - 2, argv + 2). Writes the report to stdout, problems to stderr.
 * Redis is found by --redis URL, else by the config's redis section (--config FILE),
 * else by the environment variable SWITCHYARD_REDIS_URL.
 * Returns the exit status: 0 done (also --help), 1 failure (no Redis, Redis error,
 * unknown experiment, bad config), 2 bad arguments (usage on stderr).
 */
int sy_status_main(int argc, char **argv);

#include <jansson.h>

#include "stats/redis_sync.h"

/*
 * The report of `status --json` as data: an array of experiment objects (all of
 * sy:experiments, or only `only`) read over c, in *out (the caller's reference).
 * Returns 0; -2 when `only` is not in Redis; -1 when Redis failed (no answer, or an
 * error reply such as WRONGTYPE) — the problem in c->err either way.
 */
int sy_status_collect(sy_rsync_t *c, const char *only, json_t **out);

#endif
