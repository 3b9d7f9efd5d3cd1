/*
 * export.h — `switchyard export`: the events stream(s) into the warehouse
 * (proto/WAREHOUSE.md). A Redis consumer group reads the entries (its own pending
 * ones first, then new ones); each read is applied in one database transaction
 * (apply.h) and acknowledged only after that transaction commits, so that a crash at
 * any point loses nothing and, with idempotent application, doubles nothing.
 *
 * The caller (router/main.c) parses the arguments with sy_wh_export_parse, then
 * fills in where Redis is and which streams to read from the config (this layer
 * does not read configs) with sy_wh_export_keys, and runs sy_wh_export_run.
 */
#ifndef SY_WH_EXPORT_H
#define SY_WH_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "stats/redis_url.h"

#define SY_WH_MAX_STREAMS 64
#define SY_WH_KEY_LEN 320

typedef struct sy_wh_opts_s {
  /* from the command line */
  const char *config;     /* --config FILE (required) */
  const char *to;         /* --to sqlite:PATH | postgresql://... (required) */
  int once, follow;       /* exactly one */
  int64_t retain_ms;      /* --retain 30d: 0 = keep everything */
  const char *tenant;     /* --tenant T: only T's events (the others are acknowledged) */
  const char *group;      /* --group NAME, default "sy-export" */
  const char *consumer;   /* --consumer NAME, default "export" */
  unsigned batch;         /* --batch N entries per transaction, default 1000 */
  unsigned lag_every_ms;  /* --lag-every S (--follow's lag line), default 10 s */
  const char *streams[SY_WH_MAX_STREAMS]; /* --stream KEY (repeatable); else the config's */
  size_t nstreams;
  /* filled in by the caller */
  sy_redis_addr_t redis;
  unsigned timeout_ms;
  /* set by sy_wh_export_keys */
  int cluster;                          /* redis.cluster: one connection per stream */
  const char *refs[SY_WH_MAX_STREAMS];  /* the refs hash of streams[i] */
  char keys[2 * SY_WH_MAX_STREAMS][SY_WH_KEY_LEN]; /* the names made for the two above */
} sy_wh_opts_t;

extern const char sy_wh_export_usage[];

/* Parses the arguments after `export`. Returns 0, 1 for --help, or -1 with a message
 * naming the flag in err (the command then exits 2). */
int sy_wh_export_parse(int argc, char **argv, sy_wh_opts_t *o, char *err, size_t cap);

/* After parsing: the streams to read when no --stream was given, and each stream's
 * refs hash. On one server (cluster 0) the default is default_stream (the config's
 * events.stream) and every stream's refs are sy:refs. On Redis Cluster (cluster 1,
 * proto/KEYS.md "Cluster layout") the default is sy:{E}:events for each of the nexps
 * experiment ids, a --stream must be such a name, and its refs are sy:{E}:refs (on the
 * same shard); each stream is then read over a connection of its own. Returns 0, or -1
 * with a message naming the flag or the config's problem in err. */
int sy_wh_export_keys(sy_wh_opts_t *o, int cluster, const char *default_stream,
                      const char *const *exps, size_t nexps, char *err, size_t cap);

/* Runs the export; returns the exit status (0: done, or stopped by SIGTERM/SIGINT in
 * --follow; 1: Redis or the database failed, said on stderr). */
int sy_wh_export_run(const sy_wh_opts_t *o);

#endif
