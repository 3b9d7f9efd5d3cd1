/*
 * journal.c — batches of events and statistics on their way to Redis (see
 * journal.h for the model).
 *
 * A batch is a blob of length-prefixed strings: the instance's journal key, the
 * batch's sequence number, then the operations, exactly the arguments the journal
 * script takes. The same blob is what the spool file stores (with a length and an
 * xxh32 checksum in front), so a batch replayed from disk, even by another process
 * after a crash, is byte for byte the batch first sent, with its own instance key
 * and sequence number: Redis recognises it.
 *
 * Sending order is strict: spool (oldest) first, then memory, each in order. A
 * reply acknowledges the oldest unacknowledged batch. Anything else (no reply,
 * an error, a gap) rewinds: the generation counter moves on, so replies still on
 * their way are ignored, and sending starts again from the oldest unacknowledged
 * batch, whose resend Redis deduplicates.
 *
 * The spool file itself (creating, locking, appending, reading back, adopting the
 * files of dead processes) is stats/spoolfile.c's; the journal keeps how far into it
 * sending and acknowledgements have come.
 */
#include "stats/journal.h"

#include <math.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/numfmt.h"
#include "proto/events.h"
#include "proto/keys.h"
#include "stats/jcount.h"
#include "stats/redis_wait.h"
#include "stats/scripts.h"
#include "stats/spool.h"
#include "stats/spoolfile.h"

#define MAX_INFLIGHT 32
#define BATCH_MAX_BYTES (1u << 20)
#define COUNT_WIDTH 6            /* "000012": the X / T argument count, patched at the end */
#define TRIM_AFTER_BYTES (1u << 20) /* a backlog this large is given back once drained */
#define REFS_MAX 16              /* refs remembered as written in the open batch */
#define REF_ID_MAX 24

typedef struct batch_s {
  struct batch_s *next;
  uint64_t seq;
  uint32_t nevents;
  size_t len; /* bytes of data */
  char data[];
} batch_t;

/* The rows handed out by sy_journal_row are jcount.h's. */
struct sy_journal_row_s {
  sy__jrow_t r;
};
_Static_assert(SY_JOURNAL_ROW_MAX == SY__JROW_FIELDS, "journal.h and jcount.h disagree");

typedef struct send_s {
  sy_journal_t *j;
  unsigned gen;
  batch_t *b;       /* memory batch, or NULL */
  uint64_t start_off, end_off; /* spool batch: its file offsets */
  uint64_t seq;
  uint32_t nevents;
} send_t;

struct sy_journal_s {
  uv_loop_t *loop;
  sy_redis_t *redis;
  sy_cluster_t *cluster; /* cluster mode: batches go there */
  char *stream, *instance, *jkey;
  char maxlen[24];
  unsigned batch_max, flush_ms;
  size_t queue_bytes_max;
  uv_timer_t flush_timer;
  int closing;

  /* the open batch */
  sy__jbuf_t cur;
  uint32_t cur_nargs, cur_nevents;
  size_t count_off; /* offset of the open X / T count argument, or 0 */
  size_t count_start;
  sy__jcount_t counts; /* the open batch's counters, summed */
  uint64_t next_seq, next_event;
  char next_id[80];
  char refs[REFS_MAX][REF_ID_MAX]; /* refs the open batch has written */
  unsigned nrefs;

  /* memory queue */
  batch_t *head, *tail, *next_send;
  size_t queued_bytes;
  size_t queued_peak; /* the most bytes queued since the queue was last empty */
  uint64_t queued_events;

  /* spool: the file, and how far into it sending and acknowledgements have come */
  sy_spoolfile_t spool;
  uint64_t send_off, ack_off;

  /* sending */
  int script_ready;
  char sha[48];
  unsigned gen, inflight;
  uint64_t force_seq;
  const char **argv; /* a batch as an EVALSHA's arguments (Redis Cluster) */
  size_t *argvlen;
  size_t argcap;
  sy__jbuf_t resp; /* a batch as an EVALSHA in RESP (one server) */
  uint64_t last_drop_log;

  sy_journal_counters_t c;
};

static void pump(sy_journal_t *j);

/* ---- the open batch's bytes --------------------------------------------------------- */

/* Appends one length-prefixed argument. */
static void put_arg(sy_journal_t *j, const char *s, size_t n) {
  uint32_t len = (uint32_t)n;
  if (sy__jbuf_reserve(&j->cur, 4 + n) < 0)
    return; /* out of memory: the argument is lost, the script will reject the batch */
  memcpy(j->cur.p + j->cur.len, &len, 4);
  memcpy(j->cur.p + j->cur.len + 4, s, n);
  j->cur.len += 4 + n;
  j->cur_nargs++;
}

static void put_str(sy_journal_t *j, const char *s) { put_arg(j, s, strlen(s)); }

/* A number exactly: integers without printf (the common case); a fraction with all
 * 17 digits, since counters' sums must add up in Redis. */
static void put_num(sy_journal_t *j, double x) {
  char t[40];
  size_t n = (x == floor(x) && fabs(x) < 1e15) ? sy_fmt_i64(t, (int64_t)x)
                                                : (size_t)snprintf(t, sizeof t, "%.17g", x);
  put_arg(j, t, n);
}

/* ---- the open batch --------------------------------------------------------------- */

static void on_flush_timer(uv_timer_t *t) { sy_journal_flush(t->data); }

static void batch_touch(sy_journal_t *j) {
  if (j->cur_nargs == 0 && sy__jcount_empty(&j->counts) && !j->closing)
    uv_timer_start(&j->flush_timer, on_flush_timer, j->flush_ms, 0);
}

static void open_counted(sy_journal_t *j, const char *op) {
  batch_touch(j);
  put_str(j, op);
}

static void begin_count(sy_journal_t *j) {
  put_arg(j, "000000", COUNT_WIDTH);
  j->count_off = j->cur.len - COUNT_WIDTH;
  j->count_start = j->cur_nargs;
}

static void end_count(sy_journal_t *j) {
  char t[COUNT_WIDTH + 1];
  if (j->count_off == 0)
    return;
  snprintf(t, sizeof t, "%06u", (unsigned)(j->cur_nargs - j->count_start));
  memcpy(j->cur.p + j->count_off, t, COUNT_WIDTH);
  j->count_off = 0;
}

static void make_next_id(sy_journal_t *j) {
  size_t n = strlen(j->instance);
  if (n + 2 + SY_NUMFMT_MAX > sizeof j->next_id)
    n = sizeof j->next_id - 2 - SY_NUMFMT_MAX;
  memcpy(j->next_id, j->instance, n);
  j->next_id[n++] = '-';
  n += sy_fmt_u64(j->next_id + n, j->next_event);
  j->next_id[n] = '\0';
}

void sy_journal_event(sy_journal_t *j, const char *type, const char *router_instance,
                      const char *timestamp) {
  open_counted(j, "X");
  begin_count(j);
  sy_journal_field_str(j, "event_id", j->next_id);
  j->next_event++;
  make_next_id(j);
  sy_journal_field_str(j, "event_type", type);
  sy_journal_field_int(j, "schema_version", SY_EVENT_SCHEMA_VERSION);
  sy_journal_field_str(j, "router_instance", router_instance);
  sy_journal_field_str(j, "timestamp", timestamp);
}

void sy_journal_field(sy_journal_t *j, const char *name, const char *value, size_t len) {
  put_str(j, name);
  put_arg(j, value, len);
}

void sy_journal_field_str(sy_journal_t *j, const char *name, const char *value) {
  sy_journal_field(j, name, value, strlen(value));
}

void sy_journal_field_int(sy_journal_t *j, const char *name, long long value) {
  char t[24];
  int n = snprintf(t, sizeof t, "%lld", value);
  sy_journal_field(j, name, t, (size_t)n);
}

void sy_journal_field_real(sy_journal_t *j, const char *name, double value) {
  char t[40];
  int n = snprintf(t, sizeof t, "%.6g", value);
  sy_journal_field(j, name, t, (size_t)n);
}

void sy_journal_event_end(sy_journal_t *j) {
  end_count(j);
  j->cur_nevents++;
  j->c.events++;
  if (j->cur_nevents >= j->batch_max || j->cur.len >= BATCH_MAX_BYTES)
    sy_journal_flush(j);
}

void sy_journal_event5(sy_journal_t *j, const char *value, size_t len) {
  open_counted(j, "E");
  put_arg(j, value, len);
  j->cur_nevents++;
  j->c.events++;
  if (j->cur_nevents >= j->batch_max || j->cur.len >= BATCH_MAX_BYTES)
    sy_journal_flush(j);
}

void sy_journal_trace(sy_journal_t *j, const unsigned char tid[16], uint64_t t_ms,
                      unsigned span_s, const char *value, size_t len) {
  /* the record's hour (its slice) and when the slice may go: its end, the window and
   * grace, a minute more (proto/KEYS.md) */
  char num[SY_NUMFMT_MAX];
  uint64_t slice = t_ms / SY_TRACE_SLICE_MS;
  uint64_t expire = (slice + 1) * SY_TRACE_SLICE_MS + (uint64_t)span_s * 1000 + 60000;
  open_counted(j, "K");
  put_arg(j, (const char *)tid, 16);
  put_arg(j, num, sy_fmt_u64(num, slice));
  put_arg(j, num, sy_fmt_u64(num, expire));
  put_arg(j, value, len);
}

void sy_journal_ref(sy_journal_t *j, const char *id, const char *def) {
  size_t n = strlen(id);
  if (n >= REF_ID_MAX)
    return;
  for (unsigned i = 0; i < j->nrefs; i++)
    if (strcmp(j->refs[i], id) == 0)
      return;
  open_counted(j, "R");
  put_arg(j, id, n);
  put_str(j, def);
  if (j->nrefs < REFS_MAX)
    memcpy(j->refs[j->nrefs++], id, n + 1);
}

void sy_journal_record(sy_journal_t *j, const char *key, unsigned ttl_s) {
  open_counted(j, "T");
  put_str(j, key);
  put_num(j, ttl_s);
  begin_count(j);
}

void sy_journal_record_end(sy_journal_t *j) { end_count(j); }

void sy_journal_incr(sy_journal_t *j, const char *key, const char *field, double delta) {
  batch_touch(j);
  if (sy__jcount_add(&j->counts, key, field, delta) == 1)
    sy_journal_flush(j);
}

sy_journal_row_t *sy_journal_row(sy_journal_t *j, const char *key, const char *const *fields,
                                 size_t nfields) {
  if (nfields > SY_JOURNAL_ROW_MAX)
    return NULL;
  if (sy__jcount_rows_full(&j->counts))
    sy_journal_flush(j);
  batch_touch(j);
  return (sy_journal_row_t *)sy__jcount_row(&j->counts, key, fields, nfields);
}

void sy_journal_row_add(sy_journal_row_t *row, size_t field, double delta) {
  sy__jrow_add(row != NULL ? &row->r : NULL, field, delta);
}

void sy_journal_zadd(sy_journal_t *j, const char *key, double score, const char *member) {
  open_counted(j, "Z");
  put_str(j, key);
  put_num(j, score);
  put_str(j, member);
}

/* ---- the spool file ---------------------------------------------------------------- */

/* Appends a batch to the spool file (stats/spoolfile.h); -1 with j->spool.err. */
static int spool_append(sy_journal_t *j, const char *data, size_t len, uint32_t nevents) {
  if (sy_spoolfile_append(&j->spool, data, len, nevents) < 0)
    return -1;
  j->c.spooled += nevents;
  return 0;
}

static void drop(sy_journal_t *j, uint32_t nevents, const char *why) {
  j->c.dropped += nevents;
  uint64_t now = uv_now(j->loop);
  if (j->last_drop_log == 0 || now - j->last_drop_log >= 1000) {
    j->last_drop_log = now;
    sy_log_error("journal: EVENTS DROPPED (%llu so far): %s; spool %s holds %llu bytes "
                 "(events.spool_bytes %zu)",
                 (unsigned long long)j->c.dropped, why, j->spool.path,
                 (unsigned long long)j->spool.size, j->spool.cap);
  }
}

/* Number of X and E operations in a blob (for counters). */
static uint32_t blob_events(const char *p, size_t len) {
  uint32_t n = 0;
  for (size_t off = 0; off + 4 <= len;) {
    uint32_t l;
    memcpy(&l, p + off, 4);
    if (l == 1 && off + 5 <= len && (p[off + 4] == 'X' || p[off + 4] == 'E'))
      n++;
    off += 4 + l;
  }
  return n;
}

/* ---- closing batches ------------------------------------------------------------------ */

/* Moves every memory batch to the spool (in order); sending restarts from the file. */
static void spill(sy_journal_t *j) {
  batch_t *b;
  j->gen++;
  j->inflight = 0;
  while ((b = j->head) != NULL) {
    j->head = b->next;
    if (spool_append(j, b->data, b->len, b->nevents) < 0)
      drop(j, b->nevents, strerror(j->spool.err));
    free(b);
  }
  j->tail = j->next_send = NULL;
  j->queued_bytes = 0;
  j->queued_events = 0;
}

/* One summed counter of the batch as an H operation (sy__jcount_drain's callback). */
static void put_counter(void *data, const char *key, const char *field, double sum) {
  sy_journal_t *j = data;
  put_str(j, "H");
  put_str(j, key);
  put_str(j, field);
  put_num(j, sum);
}

void sy_journal_flush(sy_journal_t *j) {
  uv_timer_stop(&j->flush_timer);
  if (j->cur_nargs == 0 && sy__jcount_empty(&j->counts))
    return;
  sy__jcount_drain(&j->counts, put_counter, j);
  j->nrefs = 0;

  /* The blob: journal key, sequence number, then the operations. */
  char seq[24];
  int sl = snprintf(seq, sizeof seq, "%llu", (unsigned long long)j->next_seq++);
  size_t kl = strlen(j->jkey);
  size_t len = 8 + kl + (size_t)sl + j->cur.len;
  batch_t *b = malloc(sizeof *b + len);
  if (b == NULL) {
    drop(j, j->cur_nevents, "out of memory");
  } else {
    uint32_t l1 = (uint32_t)kl, l2 = (uint32_t)sl;
    char *p = b->data;
    memcpy(p, &l1, 4);
    memcpy(p + 4, j->jkey, kl);
    memcpy(p + 4 + kl, &l2, 4);
    memcpy(p + 8 + kl, seq, (size_t)sl);
    memcpy(p + 8 + kl + (size_t)sl, j->cur.p, j->cur.len);
    b->next = NULL;
    b->seq = j->next_seq - 1;
    b->nevents = j->cur_nevents;
    b->len = len;
    if (j->spool.size > 0) { /* the spool is being replayed: keep order behind it */
      if (spool_append(j, b->data, b->len, b->nevents) < 0)
        drop(j, b->nevents, strerror(j->spool.err));
      free(b);
    } else {
      if (j->tail)
        j->tail->next = b;
      else
        j->head = b;
      j->tail = b;
      if (j->next_send == NULL)
        j->next_send = b;
      j->queued_bytes += len;
      j->queued_events += b->nevents;
      if (j->queued_bytes > j->queued_peak)
        j->queued_peak = j->queued_bytes;
      if (j->queued_bytes > j->queue_bytes_max) {
        sy_log_warn("journal: %zu bytes waiting for Redis (events.queue_bytes %zu): moving them "
                    "to the spool %s",
                    j->queued_bytes, j->queue_bytes_max, j->spool.path);
        spill(j);
      }
    }
  }
  j->cur.len = 0;
  j->cur_nargs = 0;
  j->cur_nevents = 0;
  pump(j);
}

/* ---- sending ------------------------------------------------------------------------- */

static void rewind_sending(sy_journal_t *j) {
  j->gen++;
  j->inflight = 0;
  j->next_send = j->head;
  j->send_off = j->ack_off;
}

/* The queue is empty again. A backlog (Redis slow or away) left its batches' memory
 * free in the middle of the heap, where glibc keeps it: only the top of the heap is
 * returned on free. Give it back, once per backlog of TRIM_AFTER_BYTES or more, so
 * that the RSS after a backlog returns to the steady state. */
static void release_backlog(sy_journal_t *j) {
#ifdef __GLIBC__
  if (j->queued_peak >= TRIM_AFTER_BYTES)
    malloc_trim(0);
#endif
  j->queued_peak = 0;
}

static void acked(sy_journal_t *j, send_t *s, int dup) {
  j->inflight--;
  j->c.batches_acked++;
  j->c.events_acked += s->nevents;
  if (dup)
    j->c.duplicates++;
  if (s->b != NULL) {
    batch_t *b = j->head; /* replies come in order: it is the head */
    if (b == s->b) {
      j->head = b->next;
      if (j->head == NULL)
        j->tail = NULL;
      j->queued_bytes -= b->len;
      j->queued_events -= b->nevents;
      free(b);
      if (j->head == NULL)
        release_backlog(j);
    }
    return;
  }
  j->ack_off = s->end_off;
  j->c.replayed += s->nevents;
  sy_spoolfile_consumed(&j->spool, s->nevents);
  if (j->ack_off >= j->spool.size) { /* replayed in full */
    sy_spoolfile_remove(&j->spool);
    sy_log_debug("journal: spool replayed (%llu events so far)", (unsigned long long)j->c.replayed);
    j->send_off = j->ack_off = 0;
  }
}

static void on_batch_reply(sy_redis_t *r, redisReply *reply, void *data) {
  send_t *s = data;
  sy_journal_t *j = s->j;
  if (s->gen != j->gen) {
    free(s);
    return;
  }
  if (reply != NULL && (reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_STRING) &&
      (strcmp(reply->str, "OK") == 0 || strcmp(reply->str, "DUP") == 0)) {
    acked(j, s, strcmp(reply->str, "DUP") == 0);
    free(s);
    pump(j);
    return;
  }
  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
      reply->element[1]->type == REDIS_REPLY_INTEGER) {
    /* An earlier batch is missing there. While we hold one before this, sending starts
     * again from it (it was refused, or is behind this one on a new link). When this is
     * the oldest we hold, last+1..seq-1 were acknowledged (or dropped here) and Redis
     * has lost them since: apply this one past the gap. */
    long long last = reply->element[1]->integer;
    int oldest = s->b != NULL ? s->b == j->head && j->ack_off >= j->spool.size
                              : s->start_off == j->ack_off;
    if (oldest) {
      sy_log_warn("journal: batch %llu: Redis has batch %lld as the last applied; "
                  "batches %lld to %llu were lost there; applying from here",
                  (unsigned long long)s->seq, last, last + 1, (unsigned long long)s->seq - 1);
      j->force_seq = s->seq;
    } else {
      sy_log_debug("journal: batch %llu: Redis has batch %lld as the last applied; resending "
                   "from the oldest held", (unsigned long long)s->seq, last);
    }
    rewind_sending(j);
    free(s);
    pump(j);
    return;
  }
  if (reply != NULL) {
    sy_log_error("journal: batch %llu refused: %s", (unsigned long long)s->seq,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        j->cluster == NULL)
      j->script_ready = 0;
    rewind_sending(j);
    free(s);
    if (r != NULL)
      sy_redis_reset(r, "journal batch refused"); /* back off before resending */
    return;
  }
  rewind_sending(j); /* no reply: the connection went; resent after reconnect */
  free(s);
}

/* The blob's arguments that lie whole inside it: how many, and where they end. */
static size_t blob_args(const char *p, size_t len, size_t *end) {
  size_t n = 0, off = 0;
  uint32_t l;
  while (off + 4 <= len && (memcpy(&l, p + off, 4), (size_t)l <= len - off - 4)) {
    off += 4 + (size_t)l;
    n++;
  }
  *end = off;
  return n;
}

/* The blob as an EVALSHA's arguments in j->argv: the fixed head, then the blob's own
 * (bytes past its last whole argument, none in a batch we wrote, are left out).
 * Returns the count, or -1. */
static int build_argv(sy_journal_t *j, const char *p, size_t len, const char *force) {
  size_t nargs = blob_args(p, len, &len), n = nargs + 6;
  if (nargs < 2)
    return -1;
  if (n > j->argcap) {
    const char **a = realloc(j->argv, n * sizeof *a);
    size_t *al = a ? realloc(j->argvlen, n * sizeof *al) : NULL;
    if (a)
      j->argv = a;
    if (al == NULL)
      return -1;
    j->argvlen = al;
    j->argcap = n;
  }
  const char **a = j->argv;
  size_t *al = j->argvlen, i = 0, off = 0;
  const char *head[2];
  uint32_t hl[2];
  for (int k = 0; k < 2; k++) { /* the journal key, the sequence number */
    memcpy(&hl[k], p + off, 4);
    head[k] = p + off + 4;
    off += 4 + (size_t)hl[k];
  }
  a[i] = "EVALSHA", al[i++] = 7;
  a[i] = j->sha, al[i++] = strlen(j->sha);
  a[i] = "2", al[i++] = 1;
  a[i] = head[0], al[i++] = hl[0];
  a[i] = j->stream, al[i++] = strlen(j->stream);
  a[i] = head[1], al[i++] = hl[1];
  a[i] = j->maxlen, al[i++] = strlen(j->maxlen);
  a[i] = force, al[i++] = 1;
  while (off < len) {
    uint32_t l;
    memcpy(&l, p + off, 4);
    a[i] = p + off + 4;
    al[i++] = l;
    off += 4 + (size_t)l;
  }
  return (int)i;
}

/* Appends one RESP bulk string. The caller has reserved the room. */
static char *resp_bulk(char *o, const char *s, size_t n) {
  *o++ = '$';
  o += sy_fmt_u64(o, n);
  *o++ = '\r', *o++ = '\n';
  memcpy(o, s, n);
  o += n;
  *o++ = '\r', *o++ = '\n';
  return o;
}

/* j->argv's argc arguments as one command in RESP, in j->resp (hiredis would format
 * them again, field by field with sdscatfmt); -1 if memory is short. */
static int build_resp(sy_journal_t *j, int argc) {
  size_t need = 24; /* "*N\r\n" */
  for (int i = 0; i < argc; i++)
    need += j->argvlen[i] + 25; /* "$" 20 digits "\r\n" ... "\r\n" */
  j->resp.len = 0;
  if (sy__jbuf_reserve(&j->resp, need) < 0)
    return -1;
  char *o = j->resp.p;
  *o++ = '*';
  o += sy_fmt_u64(o, (uint64_t)argc);
  *o++ = '\r', *o++ = '\n';
  for (int i = 0; i < argc; i++)
    o = resp_bulk(o, j->argv[i], j->argvlen[i]);
  j->resp.len = (size_t)(o - j->resp.p);
  return 0;
}

static int send_blob(sy_journal_t *j, const char *p, size_t len, send_t *s) {
  int argc = build_argv(j, p, len, s->seq == j->force_seq ? "1" : "0");
  if (argc < 0)
    return -1;
  if (j->cluster != NULL) { /* routed by the batch's own journal key (KEYS[1]) */
    if (sy_cluster_command(j->cluster, j->argv[3], j->argvlen[3], SY_CLUSTER_DURABLE,
                           on_batch_reply, s, argc, j->argv, j->argvlen) < 0)
      return -1;
  } else if (build_resp(j, argc) < 0 ||
             sy_redis_formatted_durable(j->redis, on_batch_reply, s, j->resp.p, j->resp.len) < 0) {
    return -1;
  }
  if (j->resp.cap > TRIM_AFTER_BYTES) { /* hiredis has its copy: keep no large buffer */
    free(j->resp.p);
    j->resp = (sy__jbuf_t){0};
  }
  j->inflight++;
  j->c.batches_sent++;
  return 0;
}

static uint64_t blob_seq(const char *p, size_t len) {
  uint32_t l1, l2;
  char t[24];
  if (len < 8)
    return 0;
  memcpy(&l1, p, 4);
  if (8 + (size_t)l1 > len)
    return 0;
  memcpy(&l2, p + 4 + l1, 4);
  if (l2 >= sizeof t || 8 + (size_t)l1 + l2 > len)
    return 0;
  memcpy(t, p + 8 + l1, l2);
  t[l2] = '\0';
  return strtoull(t, NULL, 10);
}

static int link_ready(const sy_journal_t *j) {
  if (j->cluster != NULL)
    return sy_cluster_ready_for(j->cluster, j->jkey, strlen(j->jkey));
  return sy_redis_ready(j->redis);
}

static void pump(sy_journal_t *j) {
  while (link_ready(j) && j->script_ready && j->inflight < MAX_INFLIGHT) {
    send_t *s = calloc(1, sizeof *s);
    if (s == NULL)
      return;
    s->j = j;
    s->gen = j->gen;
    if (j->send_off < j->spool.size) {
      const char *p;
      ssize_t len = sy_spoolfile_read(&j->spool, j->send_off, &p);
      if (len <= 0) {
        sy_log_error("journal: %s: corrupt record at %llu; the rest of the spool is lost",
                     j->spool.path, (unsigned long long)j->send_off);
        drop(j, (uint32_t)j->spool.events, "corrupt spool record");
        sy_spoolfile_truncate(&j->spool, j->send_off);
        free(s);
        continue;
      }
      s->start_off = j->send_off;
      s->end_off = j->send_off + SY_SPOOL_HDR + (uint64_t)len;
      s->seq = blob_seq(p, (size_t)len);
      s->nevents = blob_events(p, (size_t)len);
      if (send_blob(j, p, (size_t)len, s) < 0) {
        free(s);
        return;
      }
      j->send_off = s->end_off;
    } else if (j->spool.size == 0 && j->next_send != NULL) {
      batch_t *b = j->next_send;
      s->b = b;
      s->seq = b->seq;
      s->nevents = b->nevents;
      if (send_blob(j, b->data, b->len, s) < 0) {
        free(s);
        return;
      }
      j->next_send = b->next;
    } else {
      free(s);
      return;
    }
  }
}

static void on_script_loaded(sy_redis_t *r, redisReply *reply, void *data) {
  sy_journal_t *j = data;
  if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
    if (reply != NULL)
      sy_log_error("journal: SCRIPT LOAD failed: %s", reply->type == REDIS_REPLY_ERROR ? reply->str : "?");
    return;
  }
  snprintf(j->sha, sizeof j->sha, "%s", reply->str);
  j->script_ready = 1;
  if (j->spool.size > 0) /* the operator's line is stats.c's, once the backlog is through */
    sy_log_debug("journal: replaying %llu spooled events", (unsigned long long)j->spool.events);
  pump(j);
}

void sy_journal_use_cluster(sy_journal_t *j, sy_cluster_t *c) {
  j->cluster = c;
  sy_cluster_script(c, SY_LUA_JOURNAL, j->sha);
  j->script_ready = 1;
  pump(j);
}

void sy_journal_kick(sy_journal_t *j) { pump(j); }

void sy_journal_redis_state(sy_journal_t *j, int up) {
  rewind_sending(j);
  j->script_ready = 0;
  if (up) {
    const char *argv[] = {"SCRIPT", "LOAD", SY_LUA_JOURNAL};
    size_t lens[] = {6, 4, strlen(SY_LUA_JOURNAL)};
    sy_redis_command(j->redis, on_script_loaded, j, 3, argv, lens);
  }
}

/* ---- life cycle ------------------------------------------------------------------------ */

sy_journal_t *sy_journal_new(uv_loop_t *loop, sy_redis_t *redis, const sy_journal_conf_t *conf,
                             char *err, size_t errlen) {
  sy_journal_t *j = calloc(1, sizeof *j);
  if (j == NULL) {
    snprintf(err, errlen, "journal: out of memory");
    return NULL;
  }
  j->loop = loop;
  j->redis = redis;
  sy_spoolfile_init(&j->spool);
  j->stream = strdup(conf->stream);
  j->instance = strdup(conf->instance);
  size_t kl = strlen(conf->instance) + 16 + (conf->key ? strlen(conf->key) : 0);
  j->jkey = malloc(kl);
  if (j->stream == NULL || j->instance == NULL || j->jkey == NULL) {
    snprintf(err, errlen, "journal: out of memory");
    sy_journal_free(j);
    return NULL;
  }
  if (conf->key != NULL)
    snprintf(j->jkey, kl, "%s", conf->key);
  else
    sy_key_journal(j->jkey, kl, conf->instance);
  snprintf(j->maxlen, sizeof j->maxlen, "%lu", conf->maxlen);
  j->batch_max = conf->batch_max;
  j->flush_ms = conf->flush_ms;
  j->queue_bytes_max = conf->queue_bytes;
  j->next_seq = 1;
  make_next_id(j);
  uv_timer_init(loop, &j->flush_timer);
  j->flush_timer.data = j;
  if (sy_spoolfile_open(&j->spool, conf->spool_dir, conf->instance, conf->spool_bytes, err,
                        errlen) < 0) {
    sy_journal_free(j);
    return NULL;
  }
  j->c.spooled += sy_spoolfile_adopt_orphans(&j->spool, conf->instance, blob_events);
  return j;
}

int sy_journal_spool_ok(const sy_journal_t *j) {
  return sy_spoolfile_ok(&j->spool);
}

void sy_journal_counters(const sy_journal_t *j, sy_journal_counters_t *out) {
  *out = j->c;
  out->queued_events = j->queued_events + j->cur_nevents;
  out->queued_bytes = j->queued_bytes + j->cur.len;
  out->spool_bytes = j->spool.size > j->ack_off ? j->spool.size - j->ack_off : 0;
  out->spool_events = j->spool.events;
}

int sy_journal_idle(const sy_journal_t *j) {
  return j->cur_nargs == 0 && sy__jcount_empty(&j->counts) && j->head == NULL &&
         j->spool.size == 0;
}

static void on_timer_closed(uv_handle_t *h) { free(h->data); }

void sy_journal_free(sy_journal_t *j) {
  if (j == NULL)
    return;
  if (j->spool.path != NULL) {
    j->closing = 1;
    sy_journal_flush(j);
    uint64_t before = j->c.spooled;
    spill(j); /* unacknowledged batches wait on disk for the next start */
    if (j->c.spooled > before)
      sy_log_warn("journal: %llu unacknowledged events kept in %s for the next start",
                  (unsigned long long)(j->c.spooled - before), j->spool.path);
    if (j->spool.size == 0 || j->ack_off >= j->spool.size)
      sy_spoolfile_remove(&j->spool);
  }
  sy_spoolfile_close(&j->spool);
  free(j->stream);
  free(j->instance);
  free(j->jkey);
  free(j->cur.p);
  sy__jcount_free(&j->counts);
  free(j->argv);
  free(j->resp.p);
  free(j->argvlen);
  if (j->flush_timer.loop != NULL) {
    j->flush_timer.data = j;
    uv_close((uv_handle_t *)&j->flush_timer, on_timer_closed);
  } else {
    free(j);
  }
}
