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

/* Binds a listening socket with SO_REUSEPORT (every worker binds its own and the
 * kernel spreads connections) and listens with cb. Returns 0 or -1 with err. */
int sy__listen(sy_worker_t *w, uv_tcp_t *t, const sy_hostport_t *hp, uv_connection_cb cb, char *err,
               size_t errlen);
/* Runs one worker until it is told to stop; returns the process exit status: 0, 1
 * (it could not start), or 3 when its event loop still held handles at the end (a
 * bug: each is logged). */
struct sy_metrics_s;
/* m: the metrics table shared by the workers (metrics.h); the worker writes slot
 * `index` of it. */
int sy_worker_run(const char *config_path, sy_config_t *cfg, struct sy_metrics_s *m,
                  unsigned index);
/* The connection count fell (drain bookkeeping). */
void sy__worker_conn_gone(sy_worker_t *w);

#endif
