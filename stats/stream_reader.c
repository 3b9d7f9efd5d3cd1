/*
 * stream_reader.c — consumer-group reads of Redis streams for the warehouse exporter
 * (stream_reader.h): XGROUP, XREADGROUP, XACK, XINFO and HGET over the synchronous
 * connection, replies walked here so that callers get plain strings.
 */
#include "stats/stream_reader.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sy_sid_parse(const char *s, sy_sid_t *out) {
  char *end = NULL;
  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  unsigned long long ms = strtoull(s, &end, 10), seq = 0;
  if (errno != 0)
    return -1;
  if (*end == '-') {
    const char *q = end + 1;
    if (*q < '0' || *q > '9')
      return -1;
    seq = strtoull(q, &end, 10);
    if (errno != 0)
      return -1;
  }
  if (*end != '\0')
    return -1;
  out->ms = ms;
  out->seq = seq;
  return 0;
}

int sy_sid_cmp(sy_sid_t a, sy_sid_t b) {
  if (a.ms != b.ms)
    return a.ms < b.ms ? -1 : 1;
  if (a.seq != b.seq)
    return a.seq < b.seq ? -1 : 1;
  return 0;
}

int sy_sreader_group(sy_rsync_t *r, const char *stream, const char *group) {
  redisReply *x = sy_rsync_command(r, "XGROUP CREATE %s %s 0 MKSTREAM", stream, group);
  if (x != NULL) {
    freeReplyObject(x);
    return 1;
  }
  return strstr(r->err, "BUSYGROUP") != NULL ? 0 : -1;
}

/* Walks one stream's entries of an XREADGROUP reply. */
static long walk_entries(sy_rsync_t *r, size_t si, const redisReply *list, sy_sentry_cb cb,
                         void *data, int *stop) {
  enum { MAXF = 128 };
  const char *names[MAXF], *values[MAXF];
  size_t lens[MAXF];
  long n = 0;
  for (size_t j = 0; j < list->elements && !*stop; j++) {
    const redisReply *e = list->element[j];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
      return sy_rsync_fail(r, "redis: XREADGROUP: unexpected entry shape");
    const redisReply *kv = e->element[1];
    size_t nf = 0;
    if (kv->type == REDIS_REPLY_ARRAY)
      for (size_t k = 0; k + 1 < kv->elements && nf < MAXF; k += 2) {
        if (kv->element[k]->type != REDIS_REPLY_STRING ||
            kv->element[k + 1]->type != REDIS_REPLY_STRING)
          continue;
        names[nf] = kv->element[k]->str;
        values[nf] = kv->element[k + 1]->str;
        lens[nf++] = kv->element[k + 1]->len;
      }
    sy_sentry_t ent = {si, e->element[0]->str, nf, nf ? names : NULL, nf ? values : NULL,
                       nf ? lens : NULL};
    n++;
    if (cb(data, &ent) != 0)
      *stop = 1;
  }
  return n;
}

/* Appends XACK stream group ids... to the connection's output; -1 if out of memory. */
static int append_ack(sy_rsync_t *r, const char *group, const sy_sack_t *a) {
  const char **argv = malloc((a->n + 3) * sizeof *argv);
  if (argv == NULL)
    return -1;
  argv[0] = "XACK";
  argv[1] = a->stream;
  argv[2] = group;
  memcpy(argv + 3, a->ids, a->n * sizeof *a->ids);
  int rc = redisAppendCommandArgv(r->c, (int)(a->n + 3), argv, NULL);
  free(argv);
  return rc == REDIS_OK ? 0 : -1;
}

/* Sends the acks and reads their replies after the command that follows them has
 * been queued. Returns -1 with r->err when one failed. */
static int queue_acks(sy_rsync_t *r, const char *group, const sy_sack_t *acks, size_t nacks) {
  for (size_t i = 0; i < nacks; i++)
    if (acks[i].n > 0 && append_ack(r, group, &acks[i]) < 0)
      return sy_rsync_fail(r, "out of memory");
  return 0;
}

static int ack_replies(sy_rsync_t *r, const sy_sack_t *acks, size_t nacks) {
  int rc = 0;
  for (size_t i = 0; i < nacks; i++) {
    if (acks[i].n == 0)
      continue;
    redisReply *x = sy_rsync_get_reply(r);
    if (x == NULL)
      rc = -1; /* keep reading: the replies after it belong to this call too */
    freeReplyObject(x);
    if (r->c == NULL || r->c->err)
      return -1;
  }
  return rc;
}

long sy_sreader_read(sy_rsync_t *r, const char *group, const char *consumer,
                     const char *const *streams, size_t nstreams, int pending, unsigned count,
                     int block_ms, const sy_sack_t *acks, size_t nacks, sy_sentry_cb cb,
                     void *data) {
  if (r->c == NULL)
    return sy_rsync_fail(r, "redis: not connected");
  if (queue_acks(r, group, acks, nacks) < 0)
    return -1;
  size_t argc = 0, cap = 10 + 2 * nstreams;
  const char **argv = malloc(cap * sizeof *argv);
  if (argv == NULL)
    return sy_rsync_fail(r, "out of memory");
  char cnt[24], blk[24];
  snprintf(cnt, sizeof cnt, "%u", count);
  snprintf(blk, sizeof blk, "%d", block_ms);
  argv[argc++] = "XREADGROUP";
  argv[argc++] = "GROUP";
  argv[argc++] = group;
  argv[argc++] = consumer;
  argv[argc++] = "COUNT";
  argv[argc++] = cnt;
  if (block_ms >= 0) {
    argv[argc++] = "BLOCK";
    argv[argc++] = blk;
  }
  argv[argc++] = "STREAMS";
  for (size_t i = 0; i < nstreams; i++)
    argv[argc++] = streams[i];
  for (size_t i = 0; i < nstreams; i++)
    argv[argc++] = pending ? "0" : ">";
  int queued = redisAppendCommandArgv(r->c, (int)argc, argv, NULL) == REDIS_OK;
  free(argv);
  if (!queued)
    return sy_rsync_fail(r, "out of memory");
  int acked = ack_replies(r, acks, nacks);
  redisReply *x = sy_rsync_get_reply(r);
  if (x == NULL || acked < 0) {
    freeReplyObject(x);
    return -1;
  }
  long total = 0;
  int stop = 0;
  if (x->type == REDIS_REPLY_ARRAY)
    for (size_t j = 0; j < x->elements && !stop; j++) {
      const redisReply *s = x->element[j];
      if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 || s->element[0]->type != REDIS_REPLY_STRING ||
          s->element[1]->type != REDIS_REPLY_ARRAY)
        continue;
      size_t si = 0;
      while (si < nstreams && strcmp(streams[si], s->element[0]->str) != 0)
        si++;
      if (si == nstreams)
        continue;
      long n = walk_entries(r, si, s->element[1], cb, data, &stop);
      if (n < 0) {
        freeReplyObject(x);
        return -1;
      }
      total += n;
    }
  freeReplyObject(x);
  return total;
}

long sy_sreader_ack(sy_rsync_t *r, const char *stream, const char *group,
                    const char *const *ids, size_t n) {
  if (n == 0)
    return 0;
  const char **argv = malloc((n + 3) * sizeof *argv);
  if (argv == NULL)
    return sy_rsync_fail(r, "out of memory");
  argv[0] = "XACK";
  argv[1] = stream;
  argv[2] = group;
  memcpy(argv + 3, ids, n * sizeof *ids);
  redisReply *x = sy_rsync_argv(r, (int)(n + 3), argv, NULL);
  free(argv);
  if (x == NULL)
    return -1;
  long acked = x->type == REDIS_REPLY_INTEGER ? (long)x->integer : 0;
  freeReplyObject(x);
  return acked;
}

/* The value of key k in a flat [k, v, k, v...] reply, or NULL. */
static const redisReply *flat_get(const redisReply *x, const char *k) {
  for (size_t j = 0; x->type == REDIS_REPLY_ARRAY && j + 1 < x->elements; j += 2)
    if (x->element[j]->type == REDIS_REPLY_STRING && strcmp(x->element[j]->str, k) == 0)
      return x->element[j + 1];
  return NULL;
}

static long long flat_int(const redisReply *x, const char *k) {
  const redisReply *v = flat_get(x, k);
  return v != NULL && v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
}

static void flat_sid(const redisReply *v, sy_sid_t *out) {
  out->ms = out->seq = 0;
  if (v != NULL && v->type == REDIS_REPLY_STRING)
    sy_sid_parse(v->str, out);
}

int sy_sreader_info(sy_rsync_t *r, const char *stream, const char *group, sy_sinfo_t *out) {
  memset(out, 0, sizeof *out);
  out->entries_added = out->pending = out->entries_read = out->lag = -1;
  redisReply *x = sy_rsync_command(r, "XINFO STREAM %s", stream);
  if (x == NULL)
    return -1;
  out->length = flat_int(x, "length");
  out->entries_added = flat_int(x, "entries-added");
  flat_sid(flat_get(x, "last-generated-id"), &out->last);
  const redisReply *fe = flat_get(x, "first-entry");
  if (fe != NULL && fe->type == REDIS_REPLY_ARRAY && fe->elements >= 1)
    flat_sid(fe->element[0], &out->first);
  freeReplyObject(x);
  if (group == NULL)
    return 0;
  if ((x = sy_rsync_command(r, "XINFO GROUPS %s", stream)) == NULL)
    return -1;
  for (size_t j = 0; x->type == REDIS_REPLY_ARRAY && j < x->elements; j++) {
    const redisReply *g = x->element[j], *name = flat_get(g, "name");
    if (name == NULL || name->type != REDIS_REPLY_STRING || strcmp(name->str, group) != 0)
      continue;
    out->has_group = 1;
    out->pending = flat_int(g, "pending");
    out->entries_read = flat_int(g, "entries-read");
    out->lag = flat_int(g, "lag");
    flat_sid(flat_get(g, "last-delivered-id"), &out->last_delivered);
  }
  freeReplyObject(x);
  return 0;
}

int sy_sreader_usable(const sy_rsync_t *r) { return r->c != NULL && r->c->err == 0; }

long sy_sreader_hget(sy_rsync_t *r, const char *key, const char *field, char *out, size_t cap) {
  redisReply *x = sy_rsync_command(r, "HGET %s %s", key, field);
  if (x == NULL)
    return -1;
  long n = 0;
  if (x->type == REDIS_REPLY_STRING) {
    if (x->len + 1 > cap) {
      freeReplyObject(x);
      return sy_rsync_fail(r, "redis: HGET %s %s: value too long", key, field);
    }
    memcpy(out, x->str, x->len + 1);
    n = (long)x->len;
  }
  freeReplyObject(x);
  return n;
}
