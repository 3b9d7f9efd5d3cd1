/*
 * stream_reader.h — reading Redis streams through a consumer group, for the
 * warehouse exporter (warehouse/export.c): create the group, read entries (the
 * consumer's own pending ones, or new ones), acknowledge them, and the numbers that
 * say how far behind the group is and whether trimming passed it. Synchronous
 * (stats/redis_sync.h): a CLI process, never an event loop. Entries are handed to a
 * callback as plain strings, so the caller never sees hiredis types.
 *
 * Error convention (stats/): 0 / a count, or -1 with one line in r->err.
 */
#ifndef SY_STREAM_READER_H
#define SY_STREAM_READER_H

#include <stddef.h>
#include <stdint.h>

#include "stats/redis_sync.h"

/* A stream entry id, ms-seq. */
typedef struct sy_sid_s {
  uint64_t ms, seq;
} sy_sid_t;

/* Parses "MS-SEQ" (or "MS") into *out; returns 0, or -1 if s is not an entry id. */
int sy_sid_parse(const char *s, sy_sid_t *out);
/* <0, 0, >0 as a is before, equal to, after b. */
int sy_sid_cmp(sy_sid_t a, sy_sid_t b);

/* One entry: its stream (index into the streams given to sy_sreader_read), its id,
 * and its fields (nfields pairs; 0 with fields NULL when the entry was deleted or
 * trimmed while pending). Strings are valid during the call only. */
typedef struct sy_sentry_s {
  size_t stream;
  const char *id;
  size_t nfields;
  const char *const *names;
  const char *const *values;
  const size_t *lens;
} sy_sentry_t;
typedef int (*sy_sentry_cb)(void *data, const sy_sentry_t *e);

/* XGROUP CREATE stream group 0 MKSTREAM; a group that exists already is fine.
 * Returns 1 if it was created, 0 if it existed, -1 on error. */
int sy_sreader_group(sy_rsync_t *r, const char *stream, const char *group);

/* Entries to acknowledge (XACK stream group ids...) ahead of a read. */
typedef struct sy_sack_s {
  const char *stream;
  const char *const *ids;
  size_t n;
} sy_sack_t;

/* XREADGROUP GROUP group consumer COUNT count [BLOCK block_ms] STREAMS s... id...,
 * with id "0" for every stream when pending (the consumer's own unacknowledged
 * entries) else ">" (new ones); block_ms < 0: no BLOCK. The nacks XACKs in acks go
 * first, in the same round trip (Redis applies them before the read, so a pending
 * read does not return them). cb gets each entry in reply order; a non-zero return
 * from cb stops the walk (the entries after it stay delivered and pending). Returns
 * the number of entries given to cb, or -1 (the acknowledgements may or may not have
 * been applied). */
long sy_sreader_read(sy_rsync_t *r, const char *group, const char *consumer,
                     const char *const *streams, size_t nstreams, int pending, unsigned count,
                     int block_ms, const sy_sack_t *acks, size_t nacks, sy_sentry_cb cb,
                     void *data);

/* XACK stream group id...; returns the number acknowledged, or -1. */
long sy_sreader_ack(sy_rsync_t *r, const char *stream, const char *group,
                    const char *const *ids, size_t n);

/* What XINFO STREAM and XINFO GROUPS say about a stream and one group (group NULL:
 * the stream only, one round trip). -1 where Redis did not say (entries_added
 * before Redis 7, a group not found or not asked for). */
typedef struct sy_sinfo_s {
  long long length;
  sy_sid_t first, last;     /* first entry (0-0 when empty), last generated id */
  long long entries_added;  /* every entry ever added (Redis >= 7) */
  int has_group;
  long long pending;        /* delivered, not yet acknowledged */
  sy_sid_t last_delivered;
  long long entries_read;   /* Redis >= 7; -1 when unknown */
  long long lag;            /* entries not yet delivered to the group (Redis >= 7), -1 unknown */
} sy_sinfo_t;
int sy_sreader_info(sy_rsync_t *r, const char *stream, const char *group, sy_sinfo_t *out);

/* 1 if r is connected and its connection has not failed, else 0. */
int sy_sreader_usable(const sy_rsync_t *r);

/* HGET key field into out (cap bytes, NUL-terminated). Returns the length, 0 when
 * the field is absent, or -1 (error, or the value did not fit). */
long sy_sreader_hget(sy_rsync_t *r, const char *key, const char *field, char *out, size_t cap);

#endif
