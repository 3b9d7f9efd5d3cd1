/*
 * server.h — a worker's life: its loop, listeners, signals, reload and drain
 * (server.c).
 */
#ifndef SY_SERVER_H
#define SY_SERVER_H

#include <stddef.h>

#include <uv.h>

#include "router/buf.h"
#include "router/config.h"
#include "router/types.h"

struct sy_metrics_s;
/* Runs one worker until it is told to stop; returns the process exit status: 0, 1
 * (it could not start), or 3 when its event loop still held handles at the end (a
 * bug: each is logged). m: the metrics table shared by the workers (metrics.h); the
 * worker writes slot `index` of it. */
int sy_worker_run(const char *config_path, sy_config_t *cfg, struct sy_metrics_s *m,
                  unsigned index);
/* The connection count fell (drain bookkeeping). */
void sy__worker_conn_gone(sy_worker_t *w);

#endif
