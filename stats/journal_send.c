/*
 * journal_send.c — the journal's batches on their way (see journal.h for the model and
 * journal.c for how a batch is built): the spool file's appends and the accounting of
 * what was lost, sending in strict order (spool oldest first, then memory), the
 * replies that acknowledge the oldest unacknowledged batch, and the rewinds (a lost
 * connection, an error, a gap) after which sending starts again from the oldest
 * unacknowledged batch, whose resend Redis deduplicates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "base/log.h"
#include "stats/journal_int.h"
#include "stats/scripts.h"
#include "stats/spool.h"

/* ---- the spool file ---------------------------------------------------------------- */

/* Appends a batch to the spool file (stats/spoolfile.h); -1 with j->spool.err. */
int sy__journal_spool_append(sy_journal_t *j, const char *data, size_t len, uint32_t nevents) {
  if (sy_spoolfile_append(&j->spool, data, len, nevents) < 0)
    return -1;
  j->c.spooled += nevents;
  return 0;
}

void sy__journal_drop(sy_journal_t *j, uint32_t nevents, const char *why) {
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
uint32_t sy__journal_blob_events(const char *p, size_t len) {
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
void sy__journal_spill(sy_journal_t *j) {
  batch_t *b;
  j->gen++;
  j->inflight = 0;
  while ((b = j->head) != NULL) {
    j->head = b->next;
    if (sy__journal_spool_append(j, b->data, b->len, b->nevents) < 0)
      sy__journal_drop(j, b->nevents, strerror(j->spool.err));
    free(b);
  }
  j->tail = j->next_send = NULL;
  j->queued_bytes = 0;
  j->queued_events = 0;
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
    sy__journal_pump(j);
    return;
  }
  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
      reply->element[1]->type == REDIS_REPLY_INTEGER) {
    long long last = reply->element[1]->integer;
    sy_log_warn("journal: batch %llu: Redis has batch %lld as the last applied%s",
                (unsigned long long)s->seq, last,
                (long long)s->seq > last + 1 ? "; earlier batches were lost there, applying" : "");
    if ((long long)s->seq > last + 1)
      j->force_seq = s->seq; /* we no longer hold last+1..seq-1: Redis lost them */
    rewind_sending(j);
    free(s);
    sy__journal_pump(j);
    return;
  }
  if (reply != NULL) {
    sy_log_error("journal: batch %llu refused: %s", (unsigned long long)s->seq,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0)
      j->script_ready = 0;
    rewind_sending(j);
    free(s);
    sy_redis_reset(r, "journal batch refused"); /* back off before resending */
    return;
  }
  rewind_sending(j); /* no reply: the connection went; resent after reconnect */
  free(s);
}

/* Splits a blob into argv after the fixed head of the EVALSHA. */
static int build_argv(sy_journal_t *j, const char *p, size_t len, const char *force) {
  size_t n = 8;
  for (size_t off = 0; off + 4 <= len; n++) {
    uint32_t l;
    memcpy(&l, p + off, 4);
    off += 4 + l;
  }
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
  size_t *al = j->argvlen, i = 0, k = 0;
  const char *args[64];
  size_t lens[64];
  for (size_t off = 0; off + 4 <= len && k < 2; k++) { /* journal key, seq */
    uint32_t l;
    memcpy(&l, p + off, 4);
    args[k] = p + off + 4;
    lens[k] = l;
    off += 4 + l;
  }
  if (k < 2)
    return -1;
  a[i] = "EVALSHA", al[i++] = 7;
  a[i] = j->sha, al[i++] = strlen(j->sha);
  a[i] = "2", al[i++] = 1;
  a[i] = args[0], al[i++] = lens[0];
  a[i] = j->stream, al[i++] = strlen(j->stream);
  a[i] = args[1], al[i++] = lens[1];
  a[i] = j->maxlen, al[i++] = strlen(j->maxlen);
  a[i] = force, al[i++] = 1;
  size_t off = 8 + lens[0] + lens[1];
  while (off + 4 <= len) {
    uint32_t l;
    memcpy(&l, p + off, 4);
    a[i] = p + off + 4;
    al[i++] = l;
    off += 4 + l;
  }
  return (int)i;
}

static int send_blob(sy_journal_t *j, const char *p, size_t len, send_t *s) {
  int argc = build_argv(j, p, len, s->seq == j->force_seq ? "1" : "0");
  if (argc < 0 || sy_redis_command(j->redis, on_batch_reply, s, argc, j->argv, j->argvlen) < 0)
    return -1;
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

void sy__journal_pump(sy_journal_t *j) {
  while (sy_redis_ready(j->redis) && j->script_ready && j->inflight < MAX_INFLIGHT) {
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
        sy__journal_drop(j, (uint32_t)j->spool.events, "corrupt spool record");
        sy_spoolfile_truncate(&j->spool, j->send_off);
        free(s);
        continue;
      }
      s->end_off = j->send_off + SY_SPOOL_HDR + (uint64_t)len;
      s->seq = blob_seq(p, (size_t)len);
      s->nevents = sy__journal_blob_events(p, (size_t)len);
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
  sy__journal_pump(j);
}

void sy_journal_redis_state(sy_journal_t *j, int up) {
  rewind_sending(j);
  j->script_ready = 0;
  if (up) {
    const char *argv[] = {"SCRIPT", "LOAD", SY_LUA_JOURNAL};
    size_t lens[] = {6, 4, strlen(SY_LUA_JOURNAL)};
    sy_redis_command(j->redis, on_script_loaded, j, 3, argv, lens);
  }
}
