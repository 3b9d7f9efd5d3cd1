/*
 * feedback.h — applying one feedback or outcome report in Redis: the feedback
 * script (stats/scripts.h SY_LUA_FEEDBACK) checks the trace record again, marks the
 * report applied at most once per (trace, type or metric), moves the variant's (and
 * its segment's) counters and writes the event, all atomically.
 *
 * The router decides *what* a report moves (router/api.c: which counters by how
 * much, the event's fields); this module owns *how* that is laid out in Redis: the
 * key names (proto/keys.h) and the script's KEYS/ARGV.
 *
 * Error convention (stats/): 0, or -1 when the command could not be queued (Redis
 * down, out of memory); the script's own answer reaches the callback.
 */
#ifndef SY_FEEDBACK_H
#define SY_FEEDBACK_H

#include <stddef.h>

#include "stats/argv.h"
#include "stats/redis.h"
#include "stats/stats.h"

/* One counter the report moves. */
typedef struct sy_fb_add_s {
  const char *field; /* the counter's field in the variant's hash */
  double by;
  int segment_too; /* 1: also in the variant's segment hash (when it has a segment) */
} sy_fb_add_t;

typedef struct sy_fb_apply_s {
  const char *trace_id;
  const char *experiment;
  const char *variant; /* as the trace record says */
  const char *segment; /* "" for none */
  const char *tenant;  /* the API key's tenant: it must own the trace */
  const char *applied; /* what marks it applied: "out:<metric>", "fb:<type>", "fb:custom:<name>" */
  const char *pending; /* "" or "trace|variant|segment": taken off the missing-outcome list */
  const char *event_id;
  const sy_fb_add_t *adds;
  size_t nadds;
  const sy_argv_t *event; /* the event's field/value pairs (schema 5: "e" and its value) */
} sy_fb_apply_t;

/* Reads trace T's record (SY_LUA_TRACE_GET: schema 5's trace buckets, or schema 4's
 * sy:trace:T), looking s->trace_back_ms back: cb gets its fields as a flat
 * field/value array, an empty array when there is none. Returns 0, or -1 when it could
 * not be queued or trace_id is not 32 hex digits. */
int sy_stats_trace_get(sy_stats_t *s, const char *trace_id, sy_redis_reply_cb cb, void *data);

/* Queues the script call; cb gets the script's reply ({"OK"}, {"DUP", ...}, {"404"},
 * {"403", tenant}, or an error reply; NULL if the link dropped first). */
int sy_stats_feedback_apply(sy_stats_t *s, const sy_fb_apply_t *fa, sy_redis_reply_cb cb,
                            void *data);

#endif
