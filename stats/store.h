/*
 * store.h — where a worker's Redis work goes: one server (stats.h's `redis` link and
 * `journal`) or a Redis Cluster (stats/cluster.h), chosen by the config. The router
 * names the key a command is about and the experiment an event belongs to; this
 * module routes it:
 *
 *   one server   every command on the one link; one journal; the stream events.stream;
 *   cluster      a command to the primary of its key's slot; a journal per experiment
 *                (its own spool directory, DATA_DIR/spool/x-HASH), writing under the
 *                experiment's hash tag (sy:{E}:events, sy:{E}:journal:I, sy:{E}:tr:...,
 *                sy:{E}:refs; proto/KEYS.md "Cluster layout"), so that a batch is one
 *                script on one slot, and a shard that is down holds back only its
 *                own experiments' batches.
 *
 * Error convention (stats/): 0 / -1.
 */
#ifndef SY_STORE_H
#define SY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "stats/stats.h"

/* Sends a command about `key` (cluster: to its slot's primary; flags: cluster.h's
 * SY_CLUSTER_DURABLE). Returns 0 (cb runs once) or -1 (not connected: cb not called). */
int sy_stats_command(sy_stats_t *s, const char *key, unsigned flags, sy_redis_reply_cb cb,
                     void *data, int argc, const char **argv, const size_t *lens);
/* Whether commands can be sent now (cluster: the slot map is read). */
int sy_stats_usable(const sy_stats_t *s);
/* Whether everything is up (cluster: every primary's link). */
int sy_stats_ready(const sy_stats_t *s);
/* Milliseconds the store has not been fully up (0 while it is). */
uint64_t sy_stats_down_ms(const sy_stats_t *s);
/* Why it is not up ("" when it is). */
const char *sy_stats_error(const sy_stats_t *s);
/* Whether events are journaled (events.enabled). */
int sy_stats_events(const sy_stats_t *s);
/* The journal events and counters of experiment exp go to (cluster: exp's own,
 * created on first use); NULL without events or when out of memory. */
sy_journal_t *sy_stats_journal(sy_stats_t *s, const char *exp);
/* The events stream of experiment exp into out; returns out. */
const char *sy_stats_stream(const sy_stats_t *s, const char *exp, char *out, size_t n);
/* Where exp's trace records are: the prefix the scripts take ("sy:" on one server,
 * "sy:{E}:" in cluster mode), into out; returns out. */
const char *sy_stats_trace_prefix(const sy_stats_t *s, const char *exp, char *out, size_t n);
/* The experiments served (cluster: where feedback looks for a trace record; their
 * journals are opened now, adopting spool files left behind). */
void sy_stats_set_experiments(sy_stats_t *s, char *const *ids, size_t n);
/* Every journal: closes the open batches / all idle / spools usable / counters summed. */
void sy_stats_flush(sy_stats_t *s);
int sy_stats_idle(const sy_stats_t *s);
int sy_stats_spool_ok(const sy_stats_t *s);
void sy_stats_journal_counters(const sy_stats_t *s, sy_journal_counters_t *out);

#endif
