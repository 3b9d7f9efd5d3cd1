/*
 * config_stats.c — the config blocks of the stats layer: an experiment's
 * `outcome:` (its one outcome metric, attribution window, missing outcomes and the
 * feedback proxies), and the top-level `data_dir`, `redis`, `events`, `privacy`
 * and `api_keys`. Secrets never appear in the file: API keys and the hashing key
 * are read from environment variables the file names, at load time, so a missing
 * variable is a config error with a line number rather than a surprise at 3 a.m.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/keys.h"
#include "router/config_stats.h"
#include "router/config_util.h"

#define MAX_WINDOW_S (90LL * 86400) /* 90 days */
#define MIN_SECRET_LEN 16
#define MAX_API_KEYS 256

const char *const sy_feedback_type_names[SY_FB_NTYPES] = {
    "thumbs", "rating", "edit", "copy", "retry", "abandon", "escalation", "custom",
};

/* ---- outcome: ----------------------------------------------------------------------- */

void sy__cfg_outcome_defaults(sy_outcome_conf_t *o) {
  o->window_s = 86400;
  o->missing = SY_MISSING_IGNORE;
}

/* A duration in seconds: an integer, or an integer with s, m, h or d. */
static int p_window(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_outcome_conf_t *o = obj;
  const char *s = v->type == YAML_SCALAR_NODE ? sy__yaml_text(v) : "";
  char *end;
  long long n = strtoll(s, &end, 10);
  long long mult = 1;
  if (end == s || n <= 0)
    return sy__yaml_fail(w, v, "must be a duration such as 3600, 90s, 30m, 24h or 7d");
  if (*end != '\0') {
    const char *units = "smhd";
    const long long mults[] = {1, 60, 3600, 86400};
    const char *u = strchr(units, *end);
    if (u == NULL || end[1] != '\0')
      return sy__yaml_fail(w, v, "must be a duration such as 3600, 90s, 30m, 24h or 7d");
    mult = mults[u - units];
  }
  if (n > MAX_WINDOW_S / mult)
    return sy__yaml_fail(w, v, "must be at most 90 days");
  o->window_s = (unsigned)(n * mult);
  return 0;
}

static int p_metric_type(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                         const sy__yaml_field_t *f) {
  static const char *const names[] = {"binary", "continuous", NULL};
  return sy__cfg_choice(w, v, names, &((sy_outcome_conf_t *)obj)->continuous);
}

static int p_metric_direction(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                              const sy__yaml_field_t *f) {
  static const char *const names[] = {"maximize", "minimize", NULL};
  return sy__cfg_choice(w, v, names, &((sy_outcome_conf_t *)obj)->minimise);
}

static int p_missing(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  static const char *const names[] = {"ignore", "failure", NULL};
  sy_outcome_conf_t *o = obj;
  int m;
  if (sy__cfg_choice(w, v, names, &m) < 0)
    return -1;
  if (m == SY_MISSING_FAILURE && o->continuous)
    return sy__yaml_fail(w, v, "failure only with type: binary (a missing number is not a zero)");
  o->missing = (sy_missing_t)m;
  return 0;
}

static int p_metric_name(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                         const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (!sy__cfg_is_id(s))
    return sy__yaml_fail(w, v, "must be 1..64 characters of [A-Za-z0-9_.-]");
  return sy__yaml_set_str(w, v, &((sy_outcome_conf_t *)obj)->metric, s);
}

/* One proxy: a weight, or {weight, as}. */
static int parse_proxy(sy__yaml_walk_t *w, yaml_node_t *v, const sy_outcome_conf_t *o,
                       sy_proxy_conf_t *p) {
  if (v->type == YAML_SCALAR_NODE)
    return sy__cfg_number(w, v, "a weight > 0, or {weight, as}", &p->weight) < 0 ? -1
           : p->weight > 0 ? 0
                           : sy__yaml_fail(w, v, "weight must be > 0");
  if (v->type != YAML_MAPPING_NODE)
    return sy__yaml_fail(w, v, "must be a weight > 0, or {weight, as}");
  for (size_t i = 0; i < sy__yaml_npairs(v); i++) {
    yaml_node_pair_t *pr = &v->data.mapping.pairs.start[i];
    yaml_node_t *k = sy__yaml_node(w, pr->key), *x = sy__yaml_node(w, pr->value);
    const char *key = k->type == YAML_SCALAR_NODE ? sy__yaml_text(k) : "";
    size_t old = sy__yaml_path_key(w, key);
    int rc;
    if (strcmp(key, "weight") == 0)
      rc = sy__cfg_number(w, x, "a number > 0", &p->weight) < 0 ? -1
           : p->weight > 0                                   ? 0
                           : sy__yaml_fail(w, x, "must be a number > 0");
    else if (strcmp(key, "as") == 0) {
      rc = sy__cfg_number(w, x, "a number", &p->as);
      p->has_as = 1;
      if (rc == 0 && !o->continuous && p->as != 0 && p->as != 1)
        rc = sy__yaml_fail(w, x, "must be 0 or 1 for a binary metric");
    } else
      rc = sy__yaml_fail(w, k, "unknown key (weight, as)");
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  if (p->weight <= 0)
    return sy__yaml_fail(w, v, "needs weight");
  return 0;
}

static int p_proxies(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_outcome_conf_t *o = obj;
  if (sy__yaml_check_free_map(w, v) < 0)
    return -1;
  o->proxies = calloc(sy__yaml_npairs(v) + 1, sizeof *o->proxies);
  if (o->proxies == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  for (size_t i = 0; i < sy__yaml_npairs(v); i++) {
    yaml_node_pair_t *pr = &v->data.mapping.pairs.start[i];
    yaml_node_t *k = sy__yaml_node(w, pr->key);
    sy_proxy_conf_t *p = &o->proxies[o->nproxies];
    p->type = -1;
    for (int t = 0; t < SY_FB_NTYPES; t++)
      if (strcmp(sy__yaml_text(k), sy_feedback_type_names[t]) == 0)
        p->type = t;
    if (p->type < 0)
      return sy__yaml_fail(w, k,
                           "'%.64s' is not a feedback type (thumbs, rating, edit, copy, retry, "
                           "abandon, escalation, custom)",
                           sy__yaml_text(k));
    size_t old = sy__yaml_path_key(w, sy__yaml_text(k));
    int rc = parse_proxy(w, sy__yaml_node(w, pr->value), o, p);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
    o->nproxies++;
  }
  return 0;
}

/* Order matters: type before missing and proxies. */
static const sy__yaml_field_t outcome_fields[] = {
    {"metric", p_metric_name, 0, 0, 0, 0, NULL},
    {"type", p_metric_type, 0, 0, 0, 0, NULL},
    {"direction", p_metric_direction, 0, 0, 0, 0, NULL},
    {"window", p_window, 0, 0, 0, 0, NULL},
    {"missing", p_missing, 0, 0, 0, 0, NULL},
    {"proxies", p_proxies, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

int sy__cfg_p_outcome(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_experiment_conf_t *e = obj;
  e->outcome.given = 1;
  return sy__yaml_walk_map(w, v, outcome_fields, &e->outcome);
}

void sy__cfg_outcome_free(sy_outcome_conf_t *o) {
  free(o->metric);
  free(o->proxies);
}

/* ---- redis:, events:, privacy: ---------------------------------------------------------- */

static int check_redis_url(sy__yaml_walk_t *w, yaml_node_t *v, const char *s, void *obj) {
  sy_redis_conf_t *r = obj;
  if (r->url != NULL)
    return sy__yaml_fail(w, v, "give url or url_env, not both");
  if (r->nsentinels > 0)
    return sy__yaml_fail(w, v, "give url or sentinels, not both");
  if (strncmp(s, "rediss://", 9) == 0)
    return sy__yaml_fail(w, v, "rediss:// (TLS) is not supported; use redis:// or unix://");
  if (strncmp(s, "redis://", 8) != 0 && strncmp(s, "unix://", 7) != 0)
    return sy__yaml_fail(w, v, "must be a redis://host:port/db or unix:///path URL");
  return sy__yaml_set_str(w, v, &r->url, s);
}

static int p_redis_url(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  return check_redis_url(w, v, s, obj);
}

static int get_env(sy__yaml_walk_t *w, yaml_node_t *v, const char **out);

/* url_env: the URL (and so its password) from the environment, not the file. */
static int p_redis_url_env(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                           const sy__yaml_field_t *f) {
  const char *s = NULL;
  if (get_env(w, v, &s) < 0)
    return -1;
  return check_redis_url(w, v, s, obj);
}

/* ---- redis: Sentinel ---- */

#define SENTINELS_MAX 8 /* SY_REDIS_MAX_SENTINELS (stats/redis_url.h) */
#define SENTINEL_PORT 26379

static int p_sentinels(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_redis_conf_t *r = obj;
  if (r->url != NULL)
    return sy__yaml_fail(w, v, "give url or sentinels, not both");
  if (v->type != YAML_SEQUENCE_NODE)
    return sy__yaml_fail(w, v, "must be a list of host:port (the sentinels)");
  size_t n = sy__yaml_nitems(v);
  if (n == 0)
    return sy__yaml_fail(w, v, "needs at least one sentinel host:port");
  if (n > SENTINELS_MAX)
    return sy__yaml_fail(w, v, "at most %d sentinels", SENTINELS_MAX);
  r->sentinel_hosts = calloc(n, sizeof *r->sentinel_hosts);
  r->sentinel_ports = calloc(n, sizeof *r->sentinel_ports);
  if (r->sentinel_hosts == NULL || r->sentinel_ports == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *item = sy__yaml_item(w, v, i);
    size_t old = sy__yaml_path_index(w, i);
    const char *t;
    int rc = sy__yaml_get_nonempty(w, item, &t);
    if (rc == 0)
      rc = sy__yaml_parse_hostport(w, item, t, SENTINEL_PORT, &r->sentinel_hosts[i],
                                   &r->sentinel_ports[i]);
    r->nsentinels = i + 1; /* freed in full even when a later item fails */
    for (size_t j = 0; rc == 0 && j < i; j++)
      if (strcmp(r->sentinel_hosts[j], r->sentinel_hosts[i]) == 0 &&
          r->sentinel_ports[j] == r->sentinel_ports[i])
        rc = sy__yaml_fail(w, item, "duplicate sentinel (same as entry %zu)", j);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* cluster: [host:port, ...] — the seed nodes of a Redis Cluster. */
static int p_redis_cluster(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                           const sy__yaml_field_t *f) {
  sy_redis_conf_t *r = obj;
  if (v->type != YAML_SEQUENCE_NODE)
    return sy__yaml_fail(w, v, "must be a list of seed nodes, e.g. [10.0.0.11:6379, 10.0.0.12:6379]");
  size_t n = sy__yaml_nitems(v);
  if (n == 0)
    return sy__yaml_fail(w, v, "is empty: name at least one seed node (host:port)");
  if (n > 64)
    return sy__yaml_fail(w, v, "at most 64 seed nodes");
  r->cluster = calloc(n, sizeof *r->cluster);
  if (r->cluster == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *it = sy__yaml_item(w, v, i);
    size_t old = sy__yaml_path_index(w, i);
    const char *s;
    char *host = NULL;
    uint16_t port = 0;
    int rc = sy__yaml_get_nonempty(w, it, &s);
    if (rc == 0 && (strchr(s, '/') != NULL || strchr(s, '@') != NULL))
      rc = sy__yaml_fail(w, it, "a seed is host:port, not a URL ('%.64s')", s);
    if (rc == 0)
      rc = sy__yaml_parse_hostport(w, it, s, 0, &host, &port);
    free(host);
    if (rc == 0)
      rc = sy__yaml_set_str(w, it, &r->cluster[r->ncluster], s);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
    r->ncluster++;
  }
  return 0;
}

/* The name the sentinels monitor (`sentinel monitor NAME ...`): no spaces. */
static int p_master(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (strlen(s) > 127)
    return sy__yaml_fail(w, v, "must be at most 127 characters");
  for (const char *p = s; *p != '\0'; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f)
      return sy__yaml_fail(w, v, "must not contain spaces or control characters");
  return sy__yaml_set_str(w, v, &((sy_redis_conf_t *)obj)->master, s);
}


static int p_secret(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  const char *val = NULL;
  if (get_env(w, v, &val) < 0)
    return -1;
  if (strlen(val) > 255)
    return sy__yaml_fail(w, v, "the password in %.64s is longer than 255 bytes", sy__yaml_text(v));
  return sy__yaml_set_str(w, v, SY__YAML_FIELD_PTR(obj, f, char *), val);
}

static int p_redis_db(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  long long n;
  if (sy__yaml_get_int(w, v, 0, 2147483647, &n) < 0)
    return -1;
  ((sy_redis_conf_t *)obj)->db = (unsigned)n;
  ((sy_redis_conf_t *)obj)->has_db = 1;
  return 0;
}

static const sy__yaml_field_t redis_fields[] = {
    {"cluster", p_redis_cluster, 0, 0, 0, 0, NULL},
    {"enabled", sy__yaml_p_bool, offsetof(sy_redis_conf_t, enabled), 0, 0, 0, NULL},
    {"url", p_redis_url, 0, 0, 0, 0, NULL},
    {"url_env", p_redis_url_env, 0, 0, 0, 0, NULL},
    {"server", sy__yaml_p_str, offsetof(sy_redis_conf_t, server), 0, 0, 0, NULL},
    {"timeout_ms", sy__yaml_p_uint, offsetof(sy_redis_conf_t, timeout_ms), 10, 600000, 0, NULL},
    {"connect_timeout_ms", sy__yaml_p_uint, offsetof(sy_redis_conf_t, connect_timeout_ms), 10,
     600000, 0, NULL},
    {"reconnect_max_ms", sy__yaml_p_uint, offsetof(sy_redis_conf_t, reconnect_max_ms), 100, 600000,
     0, NULL},
    {"sentinels", p_sentinels, 0, 0, 0, 0, NULL},
    {"master", p_master, 0, 0, 0, 0, NULL},
    {"username", sy__yaml_p_str, offsetof(sy_redis_conf_t, username), 0, 0, 0, NULL},
    {"password_env", p_secret, offsetof(sy_redis_conf_t, password), 0, 0, 0, NULL},
    {"sentinel_password_env", p_secret, offsetof(sy_redis_conf_t, sentinel_password), 0, 0, 0,
     NULL},
    {"db", p_redis_db, 0, 0, 0, 0, NULL},
    {"wait_replicas", sy__yaml_p_uint, offsetof(sy_redis_conf_t, wait_replicas), 0, 16, 0, NULL},
    {"wait_strict", sy__yaml_p_bool, offsetof(sy_redis_conf_t, wait_strict), 0, 0, 0, NULL},
    {"wait_timeout_ms", sy__yaml_p_uint, offsetof(sy_redis_conf_t, wait_timeout_ms), 1, 60000, 0,
     NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

int sy__cfg_p_redis(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_redis_conf_t *r = &((sy_config_t *)obj)->redis;
  if (sy__yaml_walk_map(w, v, redis_fields, r) < 0)
    return -1;
  if (r->url != NULL && r->ncluster > 0)
    return sy__yaml_fail(w, v, "give url (one server) or cluster (seed nodes), not both");
  if (r->nsentinels > 0 && r->ncluster > 0)
    return sy__yaml_fail(w, v, "give sentinels or cluster (seed nodes), not both");
  if (r->ncluster > 0 && r->has_db)
    return sy__yaml_fail(w, v, "db: a Redis Cluster has database 0 only");
  if (r->nsentinels > 0 && r->master == NULL)
    return sy__yaml_fail(w, v, "sentinels needs master (the name the sentinels monitor)");
  if (r->nsentinels == 0 && r->master != NULL)
    return sy__yaml_fail(w, v, "master is for a Sentinel setup: give sentinels too");
  if (r->nsentinels == 0 && r->ncluster == 0 &&
      (r->password || r->username || r->sentinel_password || r->has_db))
    return sy__yaml_fail(w, v,
                         "username, password_env, sentinel_password_env and db go with sentinels "
                         "(with url, put them in the URL)");
  if (r->ncluster > 0 && r->sentinel_password)
    return sy__yaml_fail(w, v, "sentinel_password_env goes with sentinels, not cluster");
  if (r->username != NULL && r->password == NULL)
    return sy__yaml_fail(w, v, "username needs password_env");
  if (r->wait_strict && r->wait_replicas == 0)
    return sy__yaml_fail(w, v, "wait_strict needs wait_replicas (1 or more)");
  if (r->wait_replicas > 0 && r->wait_timeout_ms >= r->timeout_ms)
    return sy__yaml_fail(w, v, "wait_timeout_ms (%u) must be less than timeout_ms (%u)",
                         r->wait_timeout_ms, r->timeout_ms);
  if (r->username != NULL && strlen(r->username) > 127)
    return sy__yaml_fail(w, v, "username must be at most 127 characters");
  return 0;
}

static int p_stream_name(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                         const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  for (const char *p = s; *p != '\0'; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f)
      return sy__yaml_fail(w, v, "must not contain spaces or control characters");
  return sy__yaml_set_str(w, v, &((sy_events_conf_t *)obj)->stream, s);
}

static int p_maxlen(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  long long n;
  if (sy__yaml_get_int(w, v, 1000, 1LL << 40, &n) < 0)
    return -1;
  ((sy_events_conf_t *)obj)->maxlen = (unsigned long)n;
  return 0;
}

static const sy__yaml_field_t events_fields[] = {
    {"enabled", sy__yaml_p_bool, offsetof(sy_events_conf_t, enabled), 0, 0, 0, NULL},
    {"stream", p_stream_name, 0, 0, 0, 0, NULL},
    {"maxlen", p_maxlen, 0, 0, 0, 0, NULL},
    {"batch_max", sy__yaml_p_uint, offsetof(sy_events_conf_t, batch_max), 1, 4096, 0, NULL},
    {"flush_ms", sy__yaml_p_uint, offsetof(sy_events_conf_t, flush_ms), 1, 10000, 0, NULL},
    {"queue_bytes", sy__yaml_p_size, offsetof(sy_events_conf_t, queue_bytes), 65536, 1LL << 34, 0,
     NULL},
    {"spool_bytes", sy__yaml_p_size, offsetof(sy_events_conf_t, spool_bytes), 1 << 20, 1LL << 40,
     0, NULL},
    {"sync_ms", sy__yaml_p_uint, offsetof(sy_events_conf_t, sync_ms), 50, 3600000, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

int sy__cfg_p_events(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  return sy__yaml_walk_map(w, v, events_fields, &((sy_config_t *)obj)->events);
}

/* The value of environment variable `name`, which must be set and not empty. */
static int get_env(sy__yaml_walk_t *w, yaml_node_t *v, const char **out) {
  const char *name;
  if (sy__yaml_get_nonempty(w, v, &name) < 0)
    return -1;
  const char *val = getenv(name);
  if (val == NULL || *val == '\0')
    return sy__yaml_fail(w, v, "environment variable %.64s is not set", name);
  *out = val;
  return 0;
}

static int p_hash_key_env(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                          const sy__yaml_field_t *f) {
  const char *val = NULL;
  if (get_env(w, v, &val) < 0)
    return -1;
  return sy__yaml_set_str(w, v, &((sy_config_t *)obj)->hash_key, val);
}

static const sy__yaml_field_t privacy_fields[] = {
    {"hash_key_env", p_hash_key_env, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

int sy__cfg_p_privacy(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  return sy__yaml_walk_map(w, v, privacy_fields, obj);
}

/* ---- api_keys: ----------------------------------------------------------------------------- */

static int p_key_id(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (!sy__cfg_is_id(s))
    return sy__yaml_fail(w, v, "must be 1..64 characters of [A-Za-z0-9_.-]");
  return sy__yaml_set_str(w, v, SY__YAML_FIELD_PTR(obj, f, char *), s);
}

static int p_secret_env(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                        const sy__yaml_field_t *f) {
  const char *val = NULL;
  if (get_env(w, v, &val) < 0)
    return -1;
  if (strlen(val) < MIN_SECRET_LEN)
    return sy__yaml_fail(w, v, "the secret in %s is shorter than %d characters",
                         sy__yaml_text(v), MIN_SECRET_LEN);
  return sy__yaml_set_str(w, v, &((sy_apikey_conf_t *)obj)->secret, val);
}

static int p_trust(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  double x;
  if (sy__cfg_number(w, v, "a number > 0 and <= 1", &x) < 0)
    return -1;
  if (!(x > 0 && x <= 1))
    return sy__yaml_fail(w, v, "must be a number > 0 and <= 1");
  ((sy_apikey_conf_t *)obj)->trust = x;
  return 0;
}

static int p_rate(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  double x;
  if (sy__cfg_number(w, v, "a number >= 0", &x) < 0)
    return -1;
  if (!(x >= 0 && x <= 1e6))
    return sy__yaml_fail(w, v, "must be a number >= 0 and <= 1000000 (0: no limit)");
  *SY__YAML_FIELD_PTR(obj, f, double) = x;
  return 0;
}

static const sy__yaml_field_t api_key_fields[] = {
    {"name", p_key_id, offsetof(sy_apikey_conf_t, name), 0, 0, 1, NULL},
    {"secret_env", p_secret_env, 0, 0, 0, 1, NULL},
    {"tenant", p_key_id, offsetof(sy_apikey_conf_t, tenant), 0, 0, 1, NULL},
    {"trust", p_trust, 0, 0, 0, 0, NULL},
    {"rate_limit", p_rate, offsetof(sy_apikey_conf_t, rate_limit), 0, 0, 0, NULL},
    {"burst", p_rate, offsetof(sy_apikey_conf_t, burst), 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

int sy__cfg_p_api_keys(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_config_t *cfg = obj;
  if (v->type != YAML_SEQUENCE_NODE)
    return sy__yaml_fail(w, v, "must be a list of {name, secret_env, tenant, trust}");
  if (sy__yaml_nitems(v) > MAX_API_KEYS)
    return sy__yaml_fail(w, v, "at most %d keys", MAX_API_KEYS);
  cfg->api_keys = calloc(sy__yaml_nitems(v) + 1, sizeof *cfg->api_keys);
  if (cfg->api_keys == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  for (size_t i = 0; i < sy__yaml_nitems(v); i++) {
    yaml_node_t *item = sy__yaml_item(w, v, i);
    sy_apikey_conf_t *k = &cfg->api_keys[i];
    k->trust = 1;
    k->rate_limit = 0;
    k->burst = -1;
    cfg->napi_keys = i + 1;
    size_t old = sy__yaml_path_index(w, i);
    int rc = sy__yaml_walk_map(w, item, api_key_fields, k);
    if (rc == 0 && k->burst < 0)
      k->burst = k->rate_limit * 2 >= 1 ? k->rate_limit * 2 : 1;
    if (rc == 0 && k->rate_limit > 0 && k->burst < 1)
      rc = sy__yaml_fail(w, item, "burst must be at least 1 with a rate_limit");
    for (size_t j = 0; rc == 0 && j < i; j++)
      if (strcmp(cfg->api_keys[j].name, k->name) == 0)
        rc = sy__yaml_fail(w, item, "duplicate key name '%s'", k->name);
      else if (strcmp(cfg->api_keys[j].secret, k->secret) == 0)
        rc = sy__yaml_fail(w, item, "same secret as key '%s'", cfg->api_keys[j].name);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* ---- defaults, finishing, freeing ---------------------------------------------------------- */

void sy__cfg_stats_defaults(sy_config_t *cfg) {
  cfg->redis.enabled = 1;
  cfg->redis.timeout_ms = 2000;
  cfg->redis.reconnect_max_ms = 2000;
  cfg->redis.wait_timeout_ms = 100;
  cfg->events.enabled = 1;
  cfg->events.maxlen = 1000000;
  cfg->events.batch_max = 256;
  cfg->events.flush_ms = 5;
  cfg->events.queue_bytes = 64u << 20;
  cfg->events.spool_bytes = 1u << 30;
  cfg->events.sync_ms = 1000;
}

int sy__cfg_stats_finish(sy__yaml_walk_t *w, sy_config_t *cfg) {
  yaml_node_t *root = sy__yaml_root(w);
  if (cfg->data_dir == NULL && sy__yaml_set_str(w, root, &cfg->data_dir, "switchyard-data") < 0)
    return -1;
  if (cfg->redis.server == NULL && sy__yaml_set_str(w, root, &cfg->redis.server, "redis-server") < 0)
    return -1;
  if (cfg->events.stream == NULL && sy__yaml_set_str(w, root, &cfg->events.stream, SY_KEY_EVENTS) < 0)
    return -1;
  const char *k = getenv("SWITCHYARD_HASH_KEY");
  if (cfg->hash_key == NULL && k != NULL && *k != '\0' &&
      sy__yaml_set_str(w, root, &cfg->hash_key, k) < 0)
    return -1;
  return 0;
}

void sy__cfg_stats_free(sy_config_t *cfg) {
  free(cfg->data_dir);
  free(cfg->redis.url);
  for (size_t i = 0; i < cfg->redis.nsentinels; i++)
    free(cfg->redis.sentinel_hosts[i]);
  free(cfg->redis.sentinel_hosts);
  free(cfg->redis.sentinel_ports);
  free(cfg->redis.master);
  free(cfg->redis.username);
  free(cfg->redis.password);
  free(cfg->redis.sentinel_password);
  free(cfg->redis.server);
  for (size_t i = 0; i < cfg->redis.ncluster; i++)
    free(cfg->redis.cluster[i]);
  free(cfg->redis.cluster);
  free(cfg->events.stream);
  free(cfg->hash_key);
  for (size_t i = 0; i < cfg->napi_keys; i++) {
    free(cfg->api_keys[i].name);
    free(cfg->api_keys[i].secret);
    free(cfg->api_keys[i].tenant);
  }
  free(cfg->api_keys);
}
