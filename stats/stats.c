/*
 * stats.c — a worker's link to Redis (see stats.h).
 */
#include "stats/stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

/* mkdir -p, mode 0700 for what it creates. */
static int make_dirs(const char *path) {
  char p[4096];
  if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p)
    return -1;
  for (char *s = p + 1; *s != '\0'; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
      return -1;
    *s = '/';
  }
  return mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* Events that waited out an outage and have not been acknowledged yet: the journal
 * sends in order, so once as many events as were waiting at the reconnect have been
 * acknowledged (or dropped) since, the backlog is through. */
static uint64_t backlog_left(const sy_stats_t *s) {
  sy_journal_counters_t k;
  sy_journal_counters(s->journal, &k);
  uint64_t done = (k.events_acked - s->back_acked0) + (k.dropped - s->back_dropped0);
  return done >= s->back_waiting ? 0 : s->back_waiting - done;
}

static void log_back(sy_stats_t *s) {
  char label[300];
  sy_redis_label(&s->redis, label, sizeof label);
  double away = (double)s->redis.last_outage_ms / 1000.0;
  if (s->journal == NULL)
    sy_log_info("redis %s back after %.1f s down", label, away);
  else if (s->back_waiting == 0)
    sy_log_info("redis %s back after %.1f s down; no events were waiting", label, away);
  else
    sy_log_info("redis %s back after %.1f s down; %llu events that waited were replayed in %.1f s",
                label, away, (unsigned long long)s->back_waiting,
                (double)(uv_now(s->loop) - s->back_at) / 1000.0);
  s->back_pending = 0;
  uv_timer_stop(&s->back_timer);
}

static void on_back_timer(uv_timer_t *t) {
  sy_stats_t *s = t->data;
  if (s->back_pending && backlog_left(s) == 0)
    log_back(s);
}

/* The operator's story of the link: one warning when it goes down, one line when it
 * is back with how long it was away and how many waiting events were replayed. */
static void on_state(sy_redis_t *r, int up, void *data) {
  sy_stats_t *s = data;
  char label[300];
  sy_redis_label(r, label, sizeof label);
  if (!up) {
    sy_log_warn("redis %s down: %s; events wait in memory and in the spool until it is back",
                label, r->last_error);
    if (s->back_pending) { /* down again before the backlog was through */
      s->back_pending = 0;
      uv_timer_stop(&s->back_timer);
    }
  }
  if (s->journal != NULL)
    sy_journal_redis_state(s->journal, up);
  if (up) {
    if (r->disconnects == 0) {
      if (r->last_outage_ms >= 1000)
        sy_log_info("redis %s up (after %.1f s unreachable)", label,
                    (double)r->last_outage_ms / 1000.0);
      else
        sy_log_info("redis %s up", label);
    } else if (s->journal == NULL) {
      log_back(s);
    } else {
      sy_journal_counters_t k;
      sy_journal_counters(s->journal, &k);
      s->back_pending = 1;
      s->back_at = uv_now(s->loop);
      s->back_waiting = k.queued_events + k.spool_events;
      s->back_acked0 = k.events_acked;
      s->back_dropped0 = k.dropped;
      if (s->back_waiting == 0)
        log_back(s);
      else
        uv_timer_start(&s->back_timer, on_back_timer, 100, 100);
    }
  }
  if (up && s->on_up != NULL)
    s->on_up(s, s->up_data);
}

static void random_hex(char *out, size_t bytes) {
  unsigned char b[32];
  static const char hex[] = "0123456789abcdef";
  if (bytes > sizeof b)
    bytes = sizeof b;
  if (uv_random(NULL, NULL, b, bytes, 0, NULL) != 0)
    for (size_t i = 0; i < bytes; i++)
      b[i] = (unsigned char)rand();
  for (size_t i = 0; i < bytes; i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  out[2 * bytes] = '\0';
}

/* ---- cluster mode: open and close ------------------------------------------------------ */

/* The map was read or a node came up: journals waiting for their shard may send. */
static void on_cluster_change(sy_cluster_t *c, void *data) {
  sy_stats_t *s = data;
  for (size_t i = 0; i < s->nxj; i++)
    sy_journal_kick(s->xj[i].j);
  int ready = sy_cluster_ready(c);
  if (ready && !s->cluster_was_ready) {
    char labels[8][64];
    int up[8];
    size_t n = sy_cluster_primaries(c, labels, up, 8);
    sy_log_info("redis cluster up: %zu primaries (%s%s%s%s)", n, n > 0 ? labels[0] : "",
                n > 1 ? ", " : "", n > 1 ? labels[1] : "", n > 2 ? ", ..." : "");
    s->cluster_was_ready = 1;
    if (s->on_up != NULL)
      s->on_up(s, s->up_data);
  }
}

static int cluster_open(sy_stats_t *s, const sy_stats_conf_t *cfg, char *err, size_t errlen) {
  sy_cluster_opts_t co;
  memset(&co, 0, sizeof co);
  co.redis = cfg->redis;
  co.wait_replicas = cfg->redis.wait_replicas; /* the cluster's own WAIT (cluster.h) */
  co.wait_ms = cfg->redis.wait_timeout_ms;
  co.wait_strict = cfg->redis.wait_strict;
  co.redis.wait_replicas = 0; /* not the links' */
  if (cfg->addr != NULL) {
    snprintf(co.username, sizeof co.username, "%s", cfg->addr->username);
    snprintf(co.password, sizeof co.password, "%s", cfg->addr->password);
  }
  s->events = cfg->events;
  s->data_dir = strdup(cfg->data_dir);
  s->jconf = (sy_journal_conf_t){NULL,           s->instance,     NULL,
                                 cfg->maxlen,    cfg->batch_max,  cfg->flush_ms,
                                 cfg->queue_bytes, cfg->spool_bytes, NULL};
  if (s->data_dir == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  s->cluster = sy_cluster_new(s->loop, cfg->cluster, cfg->ncluster, &co, on_cluster_change, s,
                              err, errlen);
  if (s->cluster == NULL) {
    free(s->data_dir);
    s->data_dir = NULL;
    return -1;
  }
  return 0;
}

static void on_cluster_gone(void *data) {
  sy_stats_t *s = data;
  void (*done)(sy_stats_t *) = s->cluster_closed;
  free(s->data_dir);
  s->data_dir = NULL;
  if (done != NULL)
    done(s);
}

static void cluster_close(sy_stats_t *s, void (*done)(sy_stats_t *s)) {
  for (size_t i = 0; i < s->nxj; i++) {
    sy_journal_free(s->xj[i].j);
    free(s->xj[i].exp);
  }
  free(s->xj);
  s->xj = NULL;
  s->nxj = s->xjcap = 0;
  for (size_t i = 0; i < s->nexps; i++)
    free(s->exps[i]);
  free(s->exps);
  s->exps = NULL;
  s->nexps = 0;
  s->cluster_closed = done;
  sy_cluster_close(s->cluster, on_cluster_gone, s);
}

int sy_stats_open(sy_stats_t *s, uv_loop_t *loop, const sy_stats_conf_t *cfg, char *err,
                  size_t errlen) {
  sy_redis_addr_t addr;
  memset(s, 0, sizeof *s);
  s->loop = loop;
  if (cfg->addr != NULL)
    addr = *cfg->addr;
  else if (cfg->ncluster == 0 &&
           sy_redis_addr_for(cfg->redis_url, cfg->data_dir, &addr, err, errlen) < 0)
    return -1;
  if (sy_privacy_init() < 0) {
    snprintf(err, errlen, "libsodium failed to initialise");
    return -1;
  }
  if (cfg->hash_key != NULL) {
    sy_hash_key_from_secret(&s->hash_key, cfg->hash_key);
  } else {
    sy_hash_key_random(&s->hash_key);
    sy_log_warn("privacy: no hash key (SWITCHYARD_HASH_KEY or privacy.hash_key_env): user and "
                "session ids are hashed with a random key of this process, so they do not join "
                "across restarts or routers");
  }
  random_hex(s->instance, 8);
  char host[64] = "localhost";
  gethostname(host, sizeof host - 1);
  snprintf(s->router_instance, sizeof s->router_instance, "%s:%d", host, (int)getpid());
  s->stream = strdup(cfg->stream);
  snprintf(s->maxlen, sizeof s->maxlen, "%lu", cfg->maxlen);
  if (s->stream == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (cfg->ncluster > 0) { /* stats/store.c: a journal per experiment, on the cluster */
    if (make_dirs(cfg->data_dir) < 0) {
      snprintf(err, errlen, "data_dir %s: cannot create: %s", cfg->data_dir, strerror(errno));
      free(s->stream);
      return -1;
    }
    int rc = uv_timer_init(loop, &s->back_timer);
    s->back_timer.data = s;
    if (rc < 0 || cluster_open(s, cfg, err, errlen) < 0) {
      if (rc < 0)
        snprintf(err, errlen, "redis: %s", uv_strerror(rc));
      else
        uv_close((uv_handle_t *)&s->back_timer, NULL);
      free(s->stream);
      return -1;
    }
    return 0;
  }
  if (cfg->events) {
    char spool[4200];
    if (make_dirs(cfg->data_dir) < 0) {
      snprintf(err, errlen, "data_dir %s: cannot create: %s", cfg->data_dir, strerror(errno));
      free(s->stream);
      return -1;
    }
    snprintf(spool, sizeof spool, "%s/spool", cfg->data_dir);
    sy_journal_conf_t jc = {spool,
                            s->instance,
                            cfg->stream,
                            cfg->maxlen,
                            cfg->batch_max,
                            cfg->flush_ms,
                            cfg->queue_bytes,
                            cfg->spool_bytes,
                            NULL};
    s->journal = sy_journal_new(loop, &s->redis, &jc, err, errlen);
    if (s->journal == NULL) {
      free(s->stream);
      return -1;
    }
  }
  int rc = uv_timer_init(loop, &s->back_timer);
  s->back_timer.data = s;
  if (rc == 0)
    rc = sy_redis_open(&s->redis, loop, &addr, &cfg->redis, on_state, s);
  if (rc < 0) {
    snprintf(err, errlen, "redis: %s", uv_strerror(rc));
    sy_journal_free(s->journal);
    s->journal = NULL;
    free(s->stream);
    return -1;
  }
  return 0;
}

static void closed_one(sy_stats_t *s) {
  if (--s->closing > 0)
    return;
  free(s->stream);
  s->stream = NULL;
  if (s->closed)
    s->closed(s);
}

static void on_redis_closed(sy_redis_t *r) {
  closed_one((sy_stats_t *)((char *)r - offsetof(sy_stats_t, redis)));
}

static void on_back_timer_closed(uv_handle_t *h) { closed_one(h->data); }

static void on_cluster_closed(sy_stats_t *s) { closed_one(s); }


void sy_stats_close(sy_stats_t *s, void (*done)(sy_stats_t *s)) {
  sy_journal_free(s->journal);
  s->journal = NULL;
  sy_ev5_free(&s->ev5);
  s->closed = done;
  s->closing = 2;
  s->back_pending = 0;
  uv_close((uv_handle_t *)&s->back_timer, on_back_timer_closed);
  if (s->cluster != NULL)
    cluster_close(s, on_cluster_closed);
  else
    sy_redis_close(&s->redis, on_redis_closed);
}

uint64_t sy_stats_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void sy_stats_timestamp(sy_stats_t *s, char out[32]) {
  uint64_t ms = sy_stats_now_ms();
  uint64_t sec = ms / 1000;
  if (sec != s->ts_sec) {
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(s->ts_prefix, sizeof s->ts_prefix, "%Y-%m-%dT%H:%M:%S", &tm);
    s->ts_sec = sec;
  }
  snprintf(out, 32, "%s.%03uZ", s->ts_prefix, (unsigned)(ms % 1000));
}
