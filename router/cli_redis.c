/*
 * cli_redis.c — finding and talking to Redis for the one-shot commands
 * (cli_redis.h). Synchronous hiredis with a timeout on connect and on every reply.
 */
#include "router/cli_redis.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "router/config.h"

/* The calling thread's capture buffer (sy_cli_capture_begin), or NULL: stderr. */
static _Thread_local char *capture_buf;
static _Thread_local size_t capture_len;

void sy_cli_capture_begin(char *buf, size_t len) {
  capture_buf = buf;
  capture_len = len;
  if (len > 0)
    buf[0] = '\0';
}

void sy_cli_capture_end(void) {
  capture_buf = NULL;
  capture_len = 0;
}

void sy_cli_err(const char *prog, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (capture_buf != NULL) {
    vsnprintf(capture_buf, capture_len, fmt, ap);
  } else {
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
  }
  va_end(ap);
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
  /* the server's function: the same address the routers of this config use */
  int rc = sy_redis_addr_for(cfg->redis.url, cfg->data_dir, addr, err, sizeof err);
  if (rc < 0)
    sy_cli_err(prog, "%s", err);
  sy_config_free(cfg);
  return rc;
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

static void addr_name(const sy_redis_addr_t *a, char *buf, size_t len) {
  if (a->is_unix)
    snprintf(buf, len, "unix:%s", a->path);
  else
    snprintf(buf, len, "%s:%u", a->host, a->port);
}

void sy_cli_report(const char *prog, const redisContext *c) {
  /* hiredis turns its timeout into EAGAIN */
  if (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
    sy_cli_err(prog, "redis: no answer in time (timeout)");
  else
    sy_cli_err(prog, "redis: %s", c->errstr[0] ? c->errstr : "no reply");
}

static redisReply *checked(const char *prog, redisContext *c, redisReply *r) {
  if (!r) {
    sy_cli_report(prog, c);
    return NULL;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    sy_cli_err(prog, "redis: %s", r->str);
    freeReplyObject(r);
    return NULL;
  }
  return r;
}

redisReply *sy_cli_vcommand(const char *prog, redisContext *c, const char *fmt, va_list ap) {
  return checked(prog, c, redisvCommand(c, fmt, ap));
}

redisReply *sy_cli_command(const char *prog, redisContext *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = sy_cli_vcommand(prog, c, fmt, ap);
  va_end(ap);
  return r;
}

redisReply *sy_cli_argv(const char *prog, redisContext *c, int argc, const char **argv,
                        const size_t *lens) {
  return checked(prog, c, redisCommandArgv(c, argc, argv, lens));
}

static int authenticate(const char *prog, redisContext *c, const sy_redis_addr_t *a) {
  redisReply *r = NULL;
  if (a->password[0] && a->username[0])
    r = sy_cli_command(prog, c, "AUTH %s %s", a->username, a->password);
  else if (a->password[0])
    r = sy_cli_command(prog, c, "AUTH %s", a->password);
  else
    return 0;
  int rc = r ? 0 : -1;
  freeReplyObject(r);
  return rc;
}

redisContext *sy_cli_connect(const char *prog, const sy_redis_addr_t *a, unsigned timeout_ms) {
  struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
  redisContext *c = a->is_unix ? redisConnectUnixWithTimeout(a->path, tv)
                               : redisConnectWithTimeout(a->host, (int)a->port, tv);
  char name[400];
  addr_name(a, name, sizeof(name));
  if (!c || c->err) {
    sy_cli_err(prog, "cannot connect to Redis at %s: %s", name,
            c ? c->errstr : "out of memory");
    redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, tv);
  redisReply *r = NULL;
  if (authenticate(prog, c, a) < 0 || (a->db && !(r = sy_cli_command(prog, c, "SELECT %u", a->db)))) {
    sy_cli_err(prog, "Redis at %s refused the connection setup", name);
    redisFree(c);
    return NULL;
  }
  freeReplyObject(r);
  return c;
}
