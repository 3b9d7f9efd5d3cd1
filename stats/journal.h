/*
 * journal.h — how a worker's events and statistics reach Redis without ever
 * waiting for it, and without loss when it is away.
 *
 * The request path appends operations (an event, a trace record, counter
 * increments) to the open batch; increments of the same counter within a batch
 * are summed. A batch is closed after events.batch_max events or events.flush_ms,
 * and sent as one EVALSHA of the journal script (stats/scripts.h), pipelined with
 * the batches before it. Each batch carries this instance's next sequence number;
 * Redis keeps the last one applied per instance, so a batch sent twice (after a
 * lost reply, or replayed from the spool) is applied once, and batches apply in
 * order.
 *
 * Where batches wait:
 *   memory   closed batches not yet acknowledged, in order, up to events.queue_bytes;
 *   spool    when that is exceeded, the whole queue moves to an append-only file in
 *            DATA_DIR/spool/ and later batches append to it, until the file is
 *            replayed (in order) and truncated. Beyond events.spool_bytes batches
 *            are dropped, counted and logged loudly.
 * At shutdown whatever is unacknowledged goes to the spool; at start a worker
 * adopts spool files that no live process holds (a flock on each) and replays them.
 *
 * Not thread-safe; one journal per worker loop.
 */
#ifndef SY_JOURNAL_H
#define SY_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "stats/cluster.h"
#include "stats/redis.h"

typedef struct sy_journal_s sy_journal_t;

typedef struct sy_journal_counters_s {
  uint64_t events;         /* accepted into a batch */
  uint64_t batches_sent;   /* EVALSHAs sent (resends included) */
  uint64_t batches_acked;  /* applied or found already applied */
  uint64_t duplicates;     /* batches Redis had already applied */
  uint64_t events_acked;   /* events in acknowledged batches */
  uint64_t spooled;        /* events written to the spool file */
  uint64_t replayed;       /* events acknowledged after coming from the spool */
  uint64_t dropped;        /* events lost: the spool was full or could not be written */
  uint64_t queued_events;  /* events waiting now (memory) */
  uint64_t queued_bytes;   /* bytes waiting now (memory) */
  uint64_t spool_bytes;    /* bytes in the spool file now */
  uint64_t spool_events;   /* events in the spool file now, not yet acknowledged */
} sy_journal_counters_t;

typedef struct sy_journal_conf_s {
  const char *spool_dir;   /* created if missing */
  const char *instance;    /* this process's instance id (unique per start) */
  const char *stream;
  unsigned long maxlen;
  unsigned batch_max, flush_ms;
  size_t queue_bytes, spool_bytes;
  const char *key;         /* the dedupe key; NULL: sy:journal:INSTANCE */
} sy_journal_conf_t;

/* Creates the journal (adopting orphaned spool files). Returns NULL with err. */
sy_journal_t *sy_journal_new(uv_loop_t *loop, sy_redis_t *redis, const sy_journal_conf_t *conf,
                             char *err, size_t errlen);
/* Redis Cluster mode (stats/store.c): batches go through the cluster client, routed
 * by the journal's key (so conf.key, conf.stream and the trace records must share
 * one hash tag), as EVALSHA of a script the client loads on each node on NOSCRIPT,
 * and acknowledged after WAIT (SY_CLUSTER_DURABLE). */
void sy_journal_use_cluster(sy_journal_t *j, sy_cluster_t *c);
/* Cluster mode: the shard may take batches again (the map was read, a link came up). */
void sy_journal_kick(sy_journal_t *j);
/* Redis came up (after its handshake) or went down: stats/stats.c forwards these. */
void sy_journal_redis_state(sy_journal_t *j, int up);

/* ---- building the open batch ---- */

/* Starts an event of the given type; adds event_id, event_type, schema_version,
 * router_instance and timestamp. Follow with fields and sy_journal_event_end. */
void sy_journal_event(sy_journal_t *j, const char *type, const char *router_instance,
                      const char *timestamp);
void sy_journal_field(sy_journal_t *j, const char *name, const char *value, size_t len);
void sy_journal_field_str(sy_journal_t *j, const char *name, const char *value);
void sy_journal_field_int(sy_journal_t *j, const char *name, long long value);
void sy_journal_field_real(sy_journal_t *j, const char *name, double value);
void sy_journal_event_end(sy_journal_t *j);
/* A trace record: HSET key fields; EXPIRE key ttl_s. Fields follow (sy_journal_field*)
 * and sy_journal_record_end. */
void sy_journal_record(sy_journal_t *j, const char *key, unsigned ttl_s);
void sy_journal_record_end(sy_journal_t *j);
/* Schema 5 (proto/event5.h): an event as its compact value (written to the stream as
 * field "e"; its id is its stream entry's, Redis applying a batch once); a trace record (trace id as its 16 bytes, routed at t_ms, kept span_s
 * seconds past its hour's slice; proto/KEYS.md "Trace records"); a ref's definition,
 * written once per batch that uses it (call it before the event or record that
 * names the ref). */
void sy_journal_event5(sy_journal_t *j, const char *value, size_t len);
void sy_journal_trace(sy_journal_t *j, const unsigned char tid[16], uint64_t t_ms,
                      unsigned span_s, const char *value, size_t len);
void sy_journal_ref(sy_journal_t *j, const char *id, const char *def);
/* Counters by position, for a hash that takes several increments per request: the
 * row of `key` in the open batch (created on first use), whose fields are
 * fields[0..nfields) (a static array the caller keeps; at most SY_JOURNAL_ROW_MAX). One
 * lookup per request instead of one per counter; summed within the batch, written as
 * HINCRBYFLOAT when it closes. The row is valid until the next call into the journal
 * other than sy_journal_row_add. NULL when the batch has no room (then use
 * sy_journal_incr). */
#define SY_JOURNAL_ROW_MAX 32
typedef struct sy_journal_row_s sy_journal_row_t;
sy_journal_row_t *sy_journal_row(sy_journal_t *j, const char *key, const char *const *fields,
                                 size_t nfields);
void sy_journal_row_add(sy_journal_row_t *row, size_t field, double delta);
/* HINCRBYFLOAT key field delta, summed within the batch. */
void sy_journal_incr(sy_journal_t *j, const char *key, const char *field, double delta);
void sy_journal_zadd(sy_journal_t *j, const char *key, double score, const char *member);

/* Closes the open batch now (it is sent as soon as the connection allows). */
void sy_journal_flush(sy_journal_t *j);
void sy_journal_counters(const sy_journal_t *j, sy_journal_counters_t *out);
/* Whether the spool file is open and has room: events that Redis cannot take now
 * are not lost (readiness). */
int sy_journal_spool_ok(const sy_journal_t *j);
/* Whether everything accepted has been acknowledged (nothing open, queued or spooled). */
int sy_journal_idle(const sy_journal_t *j);
/* Flushes, moves whatever is unacknowledged to the spool file, and frees. */
void sy_journal_free(sy_journal_t *j);

#endif
