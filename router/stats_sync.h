/*
 * stats_sync.h — the worker's Redis link: posterior refresh, the missing-outcome
 * sweep, the journal's last flush at shutdown (stats_sync.c).
 */
#ifndef SY_STATS_SYNC_H
#define SY_STATS_SYNC_H

#include <stddef.h>

#include "router/types.h"

/* Opens the link if the config asks for Redis; starts the sync timer. */
int sy__sync_open(sy_worker_t *w, char *err, size_t errlen);
/* Refreshes posteriors and sweeps now (also on each sync timer tick). */
void sy__sync_now(sy_worker_t *w);
/* Flushes the journal and waits (up to a deadline) for Redis to acknowledge it,
 * then closes the link; `done` is called after. */
void sy__sync_close(sy_worker_t *w, void (*done)(sy_worker_t *w));

#endif
