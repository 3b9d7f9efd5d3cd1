/*
 * apply.h — applying one event to the warehouse: its row in `events` and, only when
 * that row is new, its change to the `trace` row of (trace_id, experiment), in the
 * caller's transaction (proto/WAREHOUSE.md: idempotence). A replayed entry (the
 * exporter killed after its commit, before its XACK) finds its events row and
 * changes nothing.
 */
#ifndef SY_WH_APPLY_H
#define SY_WH_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "warehouse/event.h"
#include "warehouse/sink.h"

typedef struct sy_wh_apply_s {
  sy_wh_sink_t *sink;
  char *json; /* buffers reused across events */
  size_t jcap;
} sy_wh_apply_t;

/* Applies ev (consent rules already applied, event.h), read from entry_id of stream,
 * at now_ms. Returns 1 (applied), 0 (its events row was there: a replay), or -1 with
 * err (the transaction must be rolled back). */
int sy_wh_apply(sy_wh_apply_t *a, const char *stream, const char *entry_id,
                const sy_wh_event_t *ev, int64_t now_ms, char *err, size_t cap);
void sy_wh_apply_free(sy_wh_apply_t *a);

#endif
