/*
 * cli_redis.c — finding Redis for the one-shot commands, and their messages
 * (cli_redis.h).
 */
#include "router/cli_redis.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "router/config.h"
#include "stats/redis_sync.h"

void sy_cli_err(const char *prog, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* Seed i of redis.cluster ("host:port" or "[v6]:port", checked by the config) as an
 * address, with the data nodes' username and password. */
static int cluster_seed_addr(const sy_config_t *cfg, size_t i, sy_redis_addr_t *addr, char *err,
                             size_t errlen) {
  const sy_redis_conf_t *r = &cfg->redis;
  const char *seed = r->cluster[i], *colon = strrchr(seed, ':');
  memset(addr, 0, sizeof *addr);
  size_t hl = colon ? (size_t)(colon - seed) : 0;
  if (hl > 1 && seed[0] == '[' && seed[hl - 1] == ']') { /* [v6]:port */
    seed++;
    hl -= 2;
  }
  if (colon == NULL || hl == 0 || hl >= sizeof addr->host) {
    snprintf(err, errlen, "redis.cluster[%zu]: not host:port", i);
    return -1;
  }
  memcpy(addr->host, seed, hl);
  addr->port = (unsigned)strtoul(colon + 1, NULL, 10);
  snprintf(addr->username, sizeof addr->username, "%s", r->username ? r->username : "");
  snprintf(addr->password, sizeof addr->password, "%s", r->password ? r->password : "");
  return 0;
}

int sy_config_redis_addr(const sy_config_t *cfg, sy_redis_addr_t *addr, char *err,
                         size_t errlen) {
  const sy_redis_conf_t *r = &cfg->redis;
  if (r->ncluster > 0)
    return cluster_seed_addr(cfg, 0, addr, err, errlen);
  if (r->nsentinels == 0)
    return sy_redis_addr_for(r->url, cfg->data_dir, addr, err, errlen);
  memset(addr, 0, sizeof *addr);
  if (r->nsentinels > SY_REDIS_MAX_SENTINELS) {
    snprintf(err, errlen, "redis.sentinels: at most %d", SY_REDIS_MAX_SENTINELS);
    return -1;
  }
  for (size_t i = 0; i < r->nsentinels; i++) {
    snprintf(addr->sentinels[i].host, sizeof addr->sentinels[i].host, "%s", r->sentinel_hosts[i]);
    addr->sentinels[i].port = r->sentinel_ports[i];
  }
  addr->nsentinels = (unsigned)r->nsentinels;
  snprintf(addr->master, sizeof addr->master, "%s", r->master);
  snprintf(addr->username, sizeof addr->username, "%s", r->username ? r->username : "");
  snprintf(addr->password, sizeof addr->password, "%s", r->password ? r->password : "");
  snprintf(addr->sentinel_password, sizeof addr->sentinel_password, "%s",
           r->sentinel_password ? r->sentinel_password : "");
  addr->db = r->db;
  return 0;
}

static int parse_url(const char *prog, const char *url, sy_redis_addr_t *addr) {
  char err[256] = "";
  if (sy_redis_url_parse(url, addr, err, sizeof(err)) < 0) {
    /* not the URL itself: it may hold a password */
    sy_cli_err(prog, "bad Redis URL: %s", err[0] ? err : "cannot parse it");
    return -1;
  }
  return 0;
}

/* Redis of the config at `path`: its url, else the embedded server's socket. */
static int addr_from_config(const char *prog, const char *path, sy_redis_addr_t *addr,
                            unsigned *timeout_ms) {
  char err[1024];
  sy_config_t *cfg = NULL;
  if (sy_config_load(path, &cfg, err, sizeof(err)) < 0) {
    sy_cli_err(prog, "%s", err);
    return -1;
  }
  if (cfg->redis.timeout_ms > 0)
    *timeout_ms = cfg->redis.timeout_ms;
  /* the same address the routers of this config use */
  int rc = sy_config_redis_addr(cfg, addr, err, sizeof err);
  if (rc < 0)
    sy_cli_err(prog, "%s", err);
  sy_config_free(cfg);
  return rc;
}

int sy_cli_cluster_check(const sy_config_t *cfg, char *err, size_t errlen) {
  for (size_t i = 0; i < cfg->redis.ncluster; i++) {
    sy_redis_addr_t a;
    sy_rsync_t c = {0};
    if (cluster_seed_addr(cfg, i, &a, err, errlen) < 0)
      return -1;
    if (sy_rsync_connect(&c, &a, cfg->redis.connect_timeout_ms ? cfg->redis.connect_timeout_ms
                                                               : cfg->redis.timeout_ms) < 0)
      continue;
    redisReply *r = redisCommand(c.c, "CLUSTER INFO");
    int bad = r != NULL && r->type == REDIS_REPLY_ERROR;
    if (bad)
      snprintf(err, errlen, "redis.cluster[%zu]: %s is not a Redis Cluster node (it answers: %.200s)",
               i, cfg->redis.cluster[i], r->str);
    freeReplyObject(r);
    sy_rsync_close(&c);
    if (bad)
      return -1;
  }
  return 0;
}

int sy_cli_redis_addr(const char *prog, const char *url, const char *config,
                      sy_redis_addr_t *addr, unsigned *timeout_ms) {
  *timeout_ms = SY_CLI_TIMEOUT_MS;
  if (url)
    return parse_url(prog, url, addr);
  if (config)
    return addr_from_config(prog, config, addr, timeout_ms);
  const char *env = getenv("SWITCHYARD_REDIS_URL");
  if (env && *env)
    return parse_url(prog, env, addr);
  sy_cli_err(prog, "say where Redis is: --config FILE or --redis URL");
  return -1;
}
