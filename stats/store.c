/*
 * store.c — one server or a Redis Cluster behind the same calls (see store.h).
 */
#include "stats/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "base/log.h"
#include "proto/keys.h"

int sy_stats_command(sy_stats_t *s, const char *key, unsigned flags, sy_redis_reply_cb cb,
                     void *data, int argc, const char **argv, const size_t *lens) {
  if (s->cluster != NULL)
    return sy_cluster_command(s->cluster, key, strlen(key), flags, cb, data, argc, argv, lens);
  return sy_redis_command(&s->redis, cb, data, argc, argv, lens);
}

int sy_stats_usable(const sy_stats_t *s) {
  return s->cluster != NULL ? s->cluster_was_ready : sy_redis_ready(&s->redis);
}

int sy_stats_ready(const sy_stats_t *s) {
  return s->cluster != NULL ? sy_cluster_ready(s->cluster) : sy_redis_ready(&s->redis);
}

uint64_t sy_stats_down_ms(const sy_stats_t *s) {
  return s->cluster != NULL ? sy_cluster_down_ms(s->cluster) : sy_redis_down_ms(&s->redis);
}

const char *sy_stats_error(const sy_stats_t *s) {
  return s->cluster != NULL ? sy_cluster_error(s->cluster) : s->redis.last_error;
}

int sy_stats_events(const sy_stats_t *s) {
  return s->cluster != NULL ? s->events : s->journal != NULL;
}

const char *sy_stats_stream(const sy_stats_t *s, const char *exp, char *out, size_t n) {
  if (s->cluster == NULL || sy_key_exp_events(out, n, exp) < 0)
    snprintf(out, n, "%s", s->stream);
  return out;
}

const char *sy_stats_trace_prefix(const sy_stats_t *s, const char *exp, char *out, size_t n) {
  if (s->cluster == NULL || sy_key_prefix(out, n, exp) < 0)
    snprintf(out, n, "sy:");
  return out;
}

/* Cluster mode: experiment exp's journal, made (and its spool directory adopted) on
 * first use. */
static sy_journal_t *exp_journal(sy_stats_t *s, const char *exp) {
  for (size_t i = 0; i < s->nxj; i++)
    if (strcmp(s->xj[i].exp, exp) == 0)
      return s->xj[i].j;
  if (s->nxj == s->xjcap) {
    size_t cap = s->xjcap ? 2 * s->xjcap : 8;
    sy_exp_journal_t *x = realloc(s->xj, cap * sizeof *x);
    if (x == NULL)
      return NULL;
    s->xj = x;
    s->xjcap = cap;
  }
  char dir[4200], stream[SY_KEY_MAX], key[SY_KEY_MAX], err[300];
  /* the id may hold any character: the directory is named by its hash */
  snprintf(dir, sizeof dir, "%s/spool/x-%016llx", s->data_dir,
           (unsigned long long)XXH3_64bits(exp, strlen(exp)));
  if (sy_key_exp_events(stream, sizeof stream, exp) < 0 ||
      sy_key_exp_journal(key, sizeof key, exp, s->instance) < 0)
    return NULL;
  snprintf(dir, sizeof dir, "%s/spool", s->data_dir);
  mkdir(dir, 0700); /* the parent of the experiments' spool directories */
  snprintf(dir, sizeof dir, "%s/spool/x-%016llx", s->data_dir,
           (unsigned long long)XXH3_64bits(exp, strlen(exp)));
  sy_journal_conf_t jc = s->jconf;
  jc.spool_dir = dir;
  jc.stream = stream;
  jc.key = key;
  sy_journal_t *j = sy_journal_new(s->loop, &s->redis, &jc, err, sizeof err);
  if (j == NULL) {
    sy_log_error("journal of experiment %s: %s", exp, err);
    return NULL;
  }
  sy_journal_use_cluster(j, s->cluster);
  char *id = strdup(exp);
  if (id == NULL) {
    sy_journal_free(j);
    return NULL;
  }
  s->xj[s->nxj].exp = id;
  s->xj[s->nxj++].j = j;
  return j;
}

sy_journal_t *sy_stats_journal(sy_stats_t *s, const char *exp) {
  if (s->cluster == NULL)
    return s->journal;
  return s->events && exp != NULL ? exp_journal(s, exp) : NULL;
}

void sy_stats_set_experiments(sy_stats_t *s, char *const *ids, size_t n) {
  int same = n == s->nexps;
  for (size_t i = 0; same && i < n; i++)
    same = strcmp(ids[i], s->exps[i]) == 0;
  if (same && n > 0)
    return;
  for (size_t i = 0; i < s->nexps; i++)
    free(s->exps[i]);
  free(s->exps);
  s->exps = NULL;
  s->nexps = 0;
  if (n == 0 || (s->exps = calloc(n, sizeof *s->exps)) == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    if ((s->exps[s->nexps] = strdup(ids[i])) != NULL)
      s->nexps++;
  if (s->cluster != NULL && s->events)
    for (size_t i = 0; i < s->nexps; i++)
      exp_journal(s, s->exps[i]);
}

void sy_stats_flush(sy_stats_t *s) {
  if (s->journal != NULL)
    sy_journal_flush(s->journal);
  for (size_t i = 0; i < s->nxj; i++)
    sy_journal_flush(s->xj[i].j);
}

/* 1 if ok() holds for every journal: the one of a single server, those per experiment. */
static int all_journals(const sy_stats_t *s, int (*ok)(const sy_journal_t *)) {
  if (s->journal != NULL && !ok(s->journal))
    return 0;
  for (size_t i = 0; i < s->nxj; i++)
    if (!ok(s->xj[i].j))
      return 0;
  return 1;
}

int sy_stats_idle(const sy_stats_t *s) { return all_journals(s, sy_journal_idle); }

int sy_stats_spool_ok(const sy_stats_t *s) { return all_journals(s, sy_journal_spool_ok); }

static void add_counters(sy_journal_counters_t *a, const sy_journal_counters_t *b) {
  a->events += b->events;
  a->batches_sent += b->batches_sent;
  a->batches_acked += b->batches_acked;
  a->duplicates += b->duplicates;
  a->events_acked += b->events_acked;
  a->spooled += b->spooled;
  a->replayed += b->replayed;
  a->dropped += b->dropped;
  a->queued_events += b->queued_events;
  a->queued_bytes += b->queued_bytes;
  a->spool_bytes += b->spool_bytes;
  a->spool_events += b->spool_events;
}

void sy_stats_journal_counters(const sy_stats_t *s, sy_journal_counters_t *out) {
  sy_journal_counters_t k;
  memset(out, 0, sizeof *out);
  if (s->journal != NULL) {
    sy_journal_counters(s->journal, &k);
    add_counters(out, &k);
  }
  for (size_t i = 0; i < s->nxj; i++) {
    sy_journal_counters(s->xj[i].j, &k);
    add_counters(out, &k);
  }
}
