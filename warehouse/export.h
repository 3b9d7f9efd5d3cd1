/*
 * export.h — `switchyard export`: the events stream(s) into the warehouse
 * (proto/WAREHOUSE.md). A Redis consumer group reads the entries (its own pending
 * ones first, then new ones); each read is applied in one database transaction
 * (apply.h) and acknowledged only after that transaction commits, so that a crash at
 * any point loses nothing and, with idempotent application, doubles nothing.
 *
 * The caller (router/main.c) parses the arguments with sy_wh_export_parse, then
 * fills in where Redis is and which streams to read from the config (this layer
 * does not read configs), and runs sy_wh_export_run.
 */
#ifndef SY_WH_EXPORT_H
#define SY_WH_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "stats/redis_url.h"

#define SY_WH_MAX_STREAMS 64

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
} sy_wh_opts_t;

extern const char sy_wh_export_usage[];

/* Parses the arguments after `export`. Returns 0, 1 for --help, or -1 with a message
 * naming the flag in err (the command then exits 2). */
int sy_wh_export_parse(int argc, char **argv, sy_wh_opts_t *o, char *err, size_t cap);

/* Runs the export; returns the exit status (0: done, or stopped by SIGTERM/SIGINT in
 * --follow; 1: Redis or the database failed, said on stderr). */
int sy_wh_export_run(const sy_wh_opts_t *o);

#endif
