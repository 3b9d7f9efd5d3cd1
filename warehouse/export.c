/*
 * export.c — the export loop (export.h): consumer-group reads, one transaction per
 * read, XACK after COMMIT; the trimming check before every read; --follow's lag
 * lines, periodic retention, reconnects and clean stop on SIGTERM/SIGINT.
 *
 * One server: one connection, one XREADGROUP over every stream. Redis Cluster: the
 * streams (sy:{E}:events) are on different slots, which one XREADGROUP may not mix
 * (CROSSSLOT), so each stream has a connection of its own, which stays on its node
 * after the first redirection; the streams are read in turn, each read its own
 * transaction, its XACKs on its own connection.
 */
#include "warehouse/export.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "proto/event5.h"
#include "proto/keys.h"
#include "stats/stream_reader.h"
#include "warehouse/apply.h"

#define RETAIN_EVERY_MS 600000
#define BLOCK_MS 1000
/* --follow with several connections: a round of reads finds nothing, then each
 * stream's next read blocks BLOCK_MS / connections ms (at least this), so an idle
 * round lasts about BLOCK_MS and a new entry waits at most about that */
#define MIN_BLOCK_MS 100

static volatile sig_atomic_t stop_sig;
static void on_stop(int sig) { stop_sig = sig; }

typedef struct {
  char id[SY_EV5_REF_LEN + 8];
  const char *key; /* the refs hash it came from */
  char *def;
} ref_t;

typedef struct {
  char (*id)[48];
  size_t *stream, n, cap;
} idlist_t;

typedef struct {
  const sy_wh_opts_t *o;
  /* nconn connections: one for every stream, or one per stream (o->cluster) */
  sy_rsync_t *r;
  size_t nconn;
  size_t first; /* the read in progress: its streams' first index */
  sy_wh_sink_t *sink;
  sy_wh_apply_t ap;
  sy_wh_event_t ev;
  ref_t *refs;
  size_t nrefs;
  /* the read in progress: its entries' ids, by stream; after its COMMIT they are
   * `unacked` until the next read, whose round trip carries their XACKs */
  idlist_t batch, unacked;
  int in_tx, failed;
  char err[768];
  int64_t now;
  sy_sid_t max_seen[SY_WH_MAX_STREAMS];
  /* totals */
  long long read, applied, dups, other_tenant, unreadable, gone, older, noref;
} ex_t;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Stream s's connection. */
static sy_rsync_t *conn_of(ex_t *x, size_t s) { return &x->r[x->o->cluster ? s : 0]; }

/* The streams read over connection c: [*first, *end). */
static void conn_streams(const ex_t *x, size_t c, size_t *first, size_t *end) {
  *first = x->o->cluster ? c : 0;
  *end = x->o->cluster ? c + 1 : x->o->nstreams;
}

/* The ref's definition (stream s's refs hash: sy:refs, or sy:{E}:refs on its shard),
 * cached; NULL if Redis has none (*failed: or the HGET failed). */
static const char *ref_def(ex_t *x, size_t s, const char *id, int *failed) {
  const char *key = x->o->refs[s];
  for (size_t i = 0; i < x->nrefs; i++)
    if (strcmp(x->refs[i].id, id) == 0 && strcmp(x->refs[i].key, key) == 0)
      return x->refs[i].def;
  char def[4096];
  long n = sy_sreader_hget(conn_of(x, s), key, id, def, sizeof def);
  *failed = n < 0;
  if (n <= 0) {
    if (n == 0 && x->noref++ < 10)
      sy_log_warn("export: ref %s is not in %s: its events lack experiment and variant",
                  id, key);
    return NULL; /* not cached: it may appear later */
  }
  ref_t *g = realloc(x->refs, (x->nrefs + 1) * sizeof *g);
  if (g == NULL)
    return NULL;
  x->refs = g;
  snprintf(g[x->nrefs].id, sizeof g[x->nrefs].id, "%s", id);
  g[x->nrefs].key = key;
  g[x->nrefs].def = strdup(def);
  return g[x->nrefs++].def;
}

static int idlist_add(idlist_t *l, const char *id, size_t stream) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 1024;
    char(*ids)[48] = realloc(l->id, cap * sizeof *ids);
    if (ids != NULL)
      l->id = ids;
    size_t *st = ids ? realloc(l->stream, cap * sizeof *st) : NULL;
    if (st == NULL)
      return -1;
    l->stream = st;
    l->cap = cap;
  }
  snprintf(l->id[l->n], sizeof l->id[0], "%s", id);
  l->stream[l->n++] = stream;
  return 0;
}

/* Drops the ids of streams [first, end). */
static void idlist_drop(idlist_t *l, size_t first, size_t end) {
  size_t k = 0;
  for (size_t i = 0; i < l->n; i++)
    if (l->stream[i] < first || l->stream[i] >= end) {
      if (k != i) {
        memcpy(l->id[k], l->id[i], sizeof l->id[0]);
        l->stream[k] = l->stream[i];
      }
      k++;
    }
  l->n = k;
}

static void idlist_free(idlist_t *l) {
  free(l->id);
  free(l->stream);
  memset(l, 0, sizeof *l);
}

static int remember_id(ex_t *x, const sy_sentry_t *e) {
  if (idlist_add(&x->batch, e->id, e->stream) < 0)
    return -1;
  sy_sid_t sid;
  if (sy_sid_parse(e->id, &sid) == 0 && sy_sid_cmp(sid, x->max_seen[e->stream]) > 0)
    x->max_seen[e->stream] = sid;
  return 0;
}

/* One entry, inside the read's transaction (begun at its first entry). */
static int on_entry(void *data, const sy_sentry_t *entry) {
  ex_t *x = data;
  sy_sentry_t ent = *entry, *e = &ent;
  e->stream += x->first; /* the read's streams start at x->first */
  char why[256];
  if (remember_id(x, e) < 0) {
    snprintf(x->err, sizeof x->err, "out of memory");
    return x->failed = 1;
  }
  x->read++;
  if (e->nfields == 0) { /* trimmed or deleted while pending: nothing left to apply */
    x->gone++;
    return 0;
  }
  const char *def = NULL;
  for (size_t i = 0; i < e->nfields; i++) {
    char id[SY_EV5_REF_LEN + 8];
    int failed = 0;
    if (strcmp(e->names[i], SY_EV5_FIELD) == 0 &&
        sy_wh_ev5_ref(e->values[i], e->lens[i], id, sizeof id) > 0)
      def = ref_def(x, e->stream, id, &failed);
    if (failed) { /* the batch is retried rather than written without its ref */
      snprintf(x->err, sizeof x->err, "%s", conn_of(x, e->stream)->err);
      return x->failed = 1;
    }
  }
  /* an event without an id of its own takes its entry's; on Redis Cluster entry ids
   * are unique per stream only (sy:{E}:events on different nodes), so the stream's
   * name goes with it */
  char qid[SY_WH_KEY_LEN + 48];
  const char *eid = e->id;
  if (x->o->cluster) {
    snprintf(qid, sizeof qid, "%s/%s", x->o->streams[e->stream], e->id);
    eid = qid;
  }
  if (sy_wh_event_parse(&x->ev, e->names, e->values, e->lens, e->nfields, eid, def, why,
                        sizeof why) < 0) {
    if (x->unreadable++ < 10)
      sy_log_warn("export: %s %s: skipped: %s", x->o->streams[e->stream], e->id, why);
    return 0;
  }
  const char *tn = x->ev.f[SY_EF_tenant_id];
  if (x->o->tenant != NULL && (tn == NULL || strcmp(tn, x->o->tenant) != 0)) {
    x->other_tenant++;
    return 0;
  }
  /* what --retain would delete at once is not written at all */
  if (x->o->retain_ms > 0 && x->ev.ts_ms >= 0 && x->ev.ts_ms < x->now - x->o->retain_ms) {
    x->older++;
    return 0;
  }
  sy_wh_event_consent(&x->ev);
  if (!x->in_tx) {
    if (x->sink->ops->begin(x->sink, x->err, sizeof x->err) < 0)
      return x->failed = 1;
    x->in_tx = 1;
  }
  int rc = sy_wh_apply(&x->ap, x->o->streams[e->stream], e->id, &x->ev, x->now, x->err,
                       sizeof x->err);
  if (rc < 0)
    return x->failed = 1;
  rc ? x->applied++ : x->dups++;
  return 0;
}

/* The unacknowledged entries of connection c's streams as one XACK per stream, into
 * acks; *ptrs (to free) holds the id pointers. Returns how many XACKs, or -1 when out
 * of memory. */
static long ack_args(ex_t *x, size_t c, sy_sack_t *acks, const char ***ptrs) {
  const idlist_t *u = &x->unacked;
  *ptrs = malloc((u->n ? u->n : 1) * sizeof **ptrs);
  if (*ptrs == NULL)
    return -1;
  size_t na = 0, k = 0, first, end;
  conn_streams(x, c, &first, &end);
  for (size_t s = first; s < end; s++) {
    size_t from = k;
    for (size_t i = 0; i < u->n; i++)
      if (u->stream[i] == s)
        (*ptrs)[k++] = u->id[i];
    if (k > from)
      acks[na++] = (sy_sack_t){x->o->streams[s], *ptrs + from, k - from};
  }
  return (long)na;
}

static int connect_conn(ex_t *x, size_t c);

/* Acknowledges what is left unacknowledged (at the end of a run), each stream's on
 * its connection (connected again if a signal cut it). Returns 0, or -1 with x->err
 * (some may have been acknowledged). */
static int flush_acks(ex_t *x) {
  int rc = 0;
  for (size_t c = 0; c < x->nconn; c++) {
    sy_sack_t acks[SY_WH_MAX_STREAMS];
    const char **ptrs = NULL;
    long na = ack_args(x, c, acks, &ptrs);
    int crc = na < 0 ? -1 : 0;
    sy_rsync_t *r = &x->r[c];
    if (na > 0 && !sy_sreader_usable(r) && connect_conn(x, c) < 0)
      crc = -1;
    for (long i = 0; i < na && crc == 0; i++)
      if (sy_sreader_ack(r, acks[i].stream, x->o->group, acks[i].ids, acks[i].n) < 0) {
        snprintf(x->err, sizeof x->err, "%s", r->err);
        crc = -1;
      }
    free(ptrs);
    if (crc == 0) {
      size_t first, end;
      conn_streams(x, c, &first, &end);
      idlist_drop(&x->unacked, first, end);
    }
    rc |= crc;
  }
  return rc;
}

/* One XREADGROUP on connection c, over its streams (carrying the XACKs of their
 * previous read, committed): applied in one transaction and committed; its entries
 * are acknowledged with the next read of their connection or by flush_acks. Returns
 * the entries read, or -1 with x->err. */
static long step(ex_t *x, size_t c, int pending, int block_ms) {
  x->batch.n = 0;
  x->failed = x->in_tx = 0;
  x->now = now_ms();
  size_t first, end;
  conn_streams(x, c, &first, &end);
  x->first = first;
  sy_sack_t acks[SY_WH_MAX_STREAMS];
  const char **ptrs = NULL;
  long na = ack_args(x, c, acks, &ptrs);
  if (na < 0) {
    snprintf(x->err, sizeof x->err, "out of memory");
    return -1;
  }
  sy_rsync_t *r = &x->r[c];
  long n = sy_sreader_read(r, x->o->group, x->o->consumer, x->o->streams + first, end - first,
                           pending, x->o->batch, block_ms, acks, (size_t)na, on_entry, x);
  free(ptrs);
  if (n < 0 && !x->failed)
    snprintf(x->err, sizeof x->err, "%s", r->err);
  if (n >= 0) /* else they go again with the next read: XACK twice is harmless */
    idlist_drop(&x->unacked, first, end);
  if (n < 0 || x->failed) {
    if (x->in_tx)
      x->sink->ops->rollback(x->sink);
    return -1;
  }
  if (x->in_tx && x->sink->ops->commit(x->sink, x->err, sizeof x->err) < 0) {
    x->sink->ops->rollback(x->sink);
    return -1;
  }
  for (size_t i = 0; i < x->batch.n; i++) /* acknowledged with the next read */
    if (idlist_add(&x->unacked, x->batch.id[i], x->batch.stream[i]) < 0) {
      snprintf(x->err, sizeof x->err, "out of memory (committed, not acknowledged: read "
               "again and found applied)");
      return -1;
    }
  return n;
}

/* Warns when the stream's trimming passed entries the group had not read yet. */
static void check_trimmed(ex_t *x, size_t s, sy_sinfo_t *in) {
  if (!in->has_group || in->length <= 0 || sy_sid_cmp(in->last_delivered, in->first) >= 0)
    return;
  long long lost = -1;
  if (in->entries_added >= 0)
    lost = in->entries_added - in->length - (in->entries_read > 0 ? in->entries_read : 0);
  if (in->entries_added >= 0 && lost <= 0)
    return;
  if (lost > 0)
    sy_log_warn("export: %s: about %lld entries were trimmed (events.maxlen) before the "
                "group %s read them: they are lost to the warehouse",
                x->o->streams[s], lost, x->o->group);
  else
    sy_log_warn("export: %s: entries were trimmed (events.maxlen) before the group %s "
                "read them (Redis < 7 cannot say how many)", x->o->streams[s], x->o->group);
  x->gone += lost > 0 ? lost : 0;
}

/* Before a read: the trimming check of every stream and, with log_lag, the lag
 * lines. What this process has read (max_seen) stands for the group's position, so
 * a read costs one XINFO STREAM; only when that position is behind the stream's first
 * entry (or for the lag line) is the group itself asked (another consumer of the
 * group may be ahead). */
static int check_all(ex_t *x, int log_lag) {
  for (size_t s = 0; s < x->o->nstreams; s++) {
    sy_sinfo_t in;
    const char *st = x->o->streams[s];
    sy_rsync_t *r = conn_of(x, s);
    int rc = sy_sreader_info(r, st, log_lag ? x->o->group : NULL, &in);
    if (rc == 0 && !log_lag && in.length > 0 && sy_sid_cmp(x->max_seen[s], in.first) < 0)
      rc = sy_sreader_info(r, st, x->o->group, &in);
    if (rc < 0) {
      snprintf(x->err, sizeof x->err, "%s", r->err);
      return -1;
    }
    check_trimmed(x, s, &in);
    if (log_lag) {
      long long behind = in.lag != 0 && sy_sid_cmp(in.last, in.last_delivered) > 0
                             ? (long long)(in.last.ms - in.last_delivered.ms) : 0;
      sy_log_info("export: lag stream=%s pending=%lld undelivered=%lld behind_ms=%lld "
                  "exported=%lld", st, in.pending, in.lag, behind, x->applied);
    }
  }
  return 0;
}

static int retain(ex_t *x) {
  if (x->o->retain_ms <= 0)
    return 0;
  sy_wh_val_t cut = {SY_WH_INT, NULL, now_ms() - x->o->retain_ms, 0};
  sy_wh_sink_t *s = x->sink;
  long ne, nt;
  if (s->ops->begin(s, x->err, sizeof x->err) < 0)
    return -1;
  if ((ne = s->ops->exec(s, SY_WH_RETAIN_EVENTS, &cut, 1, x->err, sizeof x->err)) < 0 ||
      (nt = s->ops->exec(s, SY_WH_RETAIN_TRACE, &cut, 1, x->err, sizeof x->err)) < 0 ||
      s->ops->commit(s, x->err, sizeof x->err) < 0) {
    s->ops->rollback(s);
    return -1;
  }
  sy_log_info("export: retention: deleted %ld events and %ld trace rows older than %" PRId64
              " ms", ne, nt, x->o->retain_ms);
  return 0;
}

/* Connection c, anew, with its streams' group created: on Redis Cluster the
 * XGROUP CREATE's redirection moves the connection to its stream's node. */
static int connect_conn(ex_t *x, size_t c) {
  sy_rsync_t *r = &x->r[c];
  sy_rsync_close(r);
  unsigned t = x->o->timeout_ms > BLOCK_MS + 1000 ? x->o->timeout_ms : BLOCK_MS + 1000;
  if (sy_rsync_connect(r, &x->o->redis, t) < 0) {
    snprintf(x->err, sizeof x->err, "%s", r->err);
    return -1;
  }
  size_t first, end;
  conn_streams(x, c, &first, &end);
  for (size_t s = first; s < end; s++)
    if (sy_sreader_group(r, x->o->streams[s], x->o->group) < 0) {
      snprintf(x->err, sizeof x->err, "%s", r->err);
      return -1;
    }
  return 0;
}

static int connect_redis(ex_t *x) {
  for (size_t c = 0; c < x->nconn; c++)
    if (connect_conn(x, c) < 0)
      return -1;
  return 0;
}

/* Sleeps up to ms, less if a stop signal comes. */
static void nap(unsigned ms) {
  for (unsigned i = 0; i < ms / 50 && !stop_sig; i++) {
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* --once: each stream's last id now; done[s] when there is nothing to read up to it. */
static int once_targets(ex_t *x, sy_sid_t *target, int *done) {
  for (size_t s = 0; s < x->o->nstreams; s++) {
    sy_sinfo_t in;
    sy_rsync_t *r = conn_of(x, s);
    if (sy_sreader_info(r, x->o->streams[s], x->o->group, &in) < 0) {
      snprintf(x->err, sizeof x->err, "%s", r->err);
      return -1;
    }
    target[s] = in.last;
    done[s] = in.length == 0 || sy_sid_cmp(in.last_delivered, in.last) >= 0;
  }
  return 0;
}

static int all_done(ex_t *x, const sy_sid_t *target, int *done) {
  int all = 1;
  for (size_t s = 0; s < x->o->nstreams; s++) {
    if (!done[s] && sy_sid_cmp(x->max_seen[s], target[s]) >= 0)
      done[s] = 1;
    all &= done[s];
  }
  return all;
}

/* One pass: pending entries first, then new ones, until --once is done or a signal
 * (--follow). Returns 0, or -1 with x->err. */
static int pass(ex_t *x) {
  long n;
  for (size_t c = 0; c < x->nconn; c++)
    while (!stop_sig && (n = step(x, c, 1, -1)) != 0)
      if (n < 0)
        return -1;
  sy_sid_t target[SY_WH_MAX_STREAMS];
  int done[SY_WH_MAX_STREAMS];
  if (x->o->once && once_targets(x, target, done) < 0)
    return -1;
  int64_t next_lag = now_ms() + x->o->lag_every_ms, next_retain = now_ms() + RETAIN_EVERY_MS;
  int idle = 0; /* the last round read nothing */
  int shared = BLOCK_MS / (int)x->nconn > MIN_BLOCK_MS ? BLOCK_MS / (int)x->nconn : MIN_BLOCK_MS;
  while (!stop_sig) {
    if (x->o->once && all_done(x, target, done))
      return 0;
    if (check_all(x, x->o->follow && now_ms() >= next_lag) < 0)
      return -1;
    if (x->o->follow && now_ms() >= next_lag)
      next_lag = now_ms() + x->o->lag_every_ms;
    if (x->o->follow && now_ms() >= next_retain) {
      next_retain = now_ms() + RETAIN_EVERY_MS;
      if (retain(x) < 0)
        return -1;
    }
    long got = 0;
    int block = !x->o->follow ? -1 : x->nconn == 1 ? BLOCK_MS : idle ? shared : -1;
    for (size_t c = 0; c < x->nconn && !stop_sig; c++) {
      if ((n = step(x, c, 0, block)) < 0)
        return -1;
      got += n;
    }
    idle = got == 0;
    if (got == 0 && x->o->once)
      return 0;
  }
  return 0;
}

/* A new database connection (the old one may be what failed: a PostgreSQL restart). */
static int reopen_sink(ex_t *x) {
  if (x->sink != NULL)
    x->sink->ops->close(x->sink);
  x->sink = x->ap.sink = sy_wh_sink_open(x->o->to, x->err, sizeof x->err);
  return x->sink != NULL ? 0 : -1;
}

static void summary(const ex_t *x, double secs) {
  printf("export: %lld entries read, %lld applied, %lld already applied, %lld of other "
         "tenants, %lld unreadable, %lld lost (trimmed or deleted before export), %lld older "
         "than --retain; %.3f s\n",
         x->read, x->applied, x->dups, x->other_tenant, x->unreadable, x->gone, x->older, secs);
  fflush(stdout);
}

int sy_wh_export_run(const sy_wh_opts_t *o) {
  ex_t x;
  memset(&x, 0, sizeof x);
  x.o = o;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int64_t t0 = now_ms();
  int rc = 1;
  if ((x.sink = sy_wh_sink_open(o->to, x.err, sizeof x.err)) == NULL) {
    fprintf(stderr, "switchyard export: %s\n", x.err);
    return 1;
  }
  x.ap.sink = x.sink;
  x.nconn = o->cluster ? o->nstreams : 1;
  if ((x.r = calloc(x.nconn, sizeof *x.r)) == NULL) {
    fprintf(stderr, "switchyard export: out of memory\n");
    goto out;
  }
  if (retain(&x) < 0 || connect_redis(&x) < 0) {
    fprintf(stderr, "switchyard export: %s\n", x.err);
    goto out;
  }
  sy_log_info("export: %zu stream(s) into %s, group %s, consumer %s, %zu connection(s)%s",
              o->nstreams, x.sink->ops->name, o->group, o->consumer, x.nconn,
              o->cluster ? " (redis.cluster: one per stream)" : "");
  for (;;) {
    if (pass(&x) == 0) {
      rc = 0;
      break;
    }
    if (stop_sig) { /* a signal interrupts a blocking read: not a failure */
      rc = 0;
      break;
    }
    if (o->once) {
      fprintf(stderr, "switchyard export: %s\n", x.err);
      break;
    }
    /* --follow outlives Redis and database hiccups: what was not acknowledged is
     * read again (the pending pass), and applied at most once */
    sy_log_error("export: %s; retrying in 1 s", x.err);
    nap(1000);
    while (!stop_sig && (reopen_sink(&x) < 0 || connect_redis(&x) < 0)) {
      sy_log_error("export: %s; retrying in 1 s", x.err);
      nap(1000);
    }
    if (x.sink == NULL) { /* stopped while the database was away */
      rc = stop_sig ? 0 : 1;
      break;
    }
  }
  /* a signal may have cut a blocking read: flush_acks connects again where needed */
  if (x.unacked.n > 0 && flush_acks(&x) < 0)
    sy_log_warn("export: the last read's XACK failed (%s): the next run reads it again and "
                "finds it applied", x.err);
  if (stop_sig)
    sy_log_info("export: stopped by signal %d", (int)stop_sig);
  summary(&x, (double)(now_ms() - t0) / 1000.0);
out:
  for (size_t c = 0; x.r != NULL && c < x.nconn; c++)
    sy_rsync_close(&x.r[c]);
  free(x.r);
  if (x.sink != NULL)
    x.sink->ops->close(x.sink);
  sy_wh_apply_free(&x.ap);
  sy_wh_event_free(&x.ev);
  for (size_t i = 0; i < x.nrefs; i++)
    free(x.refs[i].def);
  free(x.refs);
  idlist_free(&x.batch);
  idlist_free(&x.unacked);
  return rc;
}
