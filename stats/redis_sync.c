/*
 * redis_sync.c — the synchronous Redis connection of the one-shot commands and the
 * admin API's jobs (redis_sync.h): synchronous hiredis with timeouts, errors kept in
 * the connection's own buffer.
 */
#include "stats/redis_sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

json_t *sy_redis_hash_json(const redisReply *r) {
  json_t *o = json_object();
  for (size_t j = 0; o != NULL && r != NULL && r->type == REDIS_REPLY_ARRAY && j + 1 < r->elements;
       j += 2)
    if (r->element[j]->type == REDIS_REPLY_STRING && r->element[j + 1]->type == REDIS_REPLY_STRING)
      json_object_set_new(o, r->element[j]->str, json_string(r->element[j + 1]->str));
  return o;
}

int sy_rsync_fail(sy_rsync_t *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err, sizeof r->err, fmt, ap);
  va_end(ap);
  return -1;
}

/* The context's own error, in words. */
static void context_error(sy_rsync_t *r) {
  /* hiredis turns its timeout into EAGAIN */
  if (r->c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
    sy_rsync_fail(r, "redis: no answer in time (timeout)");
  else
    sy_rsync_fail(r, "redis: %s", r->c->errstr[0] ? r->c->errstr : "no reply");
}

static redisReply *checked(sy_rsync_t *r, redisReply *reply) {
  if (reply == NULL) {
    context_error(r);
    return NULL;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    sy_rsync_fail(r, "redis: %s", reply->str);
    freeReplyObject(reply);
    return NULL;
  }
  return reply;
}

/* A Redis Cluster redirection ("MOVED 3999 127.0.0.1:6381", "ASK ..."): connects to
 * the node named (ASKING first for ASK). Returns 1 if the command should be sent
 * again there, 0 if the reply is not a redirection, -1 with r->err if the node
 * cannot be reached. */
static int follow(sy_rsync_t *r, const redisReply *reply) {
  if (reply == NULL || reply->type != REDIS_REPLY_ERROR)
    return 0;
  int ask = strncmp(reply->str, "ASK ", 4) == 0;
  if (!ask && strncmp(reply->str, "MOVED ", 6) != 0)
    return 0;
  const char *sp = strchr(reply->str + (ask ? 4 : 6), ' ');
  const char *colon = sp ? strrchr(sp, ':') : NULL;
  if (colon == NULL || (size_t)(colon - sp - 1) >= sizeof r->addr.host)
    return 0;
  sy_redis_addr_t to = r->addr;
  memcpy(to.host, sp + 1, (size_t)(colon - sp - 1));
  to.host[colon - sp - 1] = '\0';
  to.port = (unsigned)strtoul(colon + 1, NULL, 10);
  to.is_unix = 0;
  to.db = 0; /* a cluster has one database */
  sy_rsync_close(r);
  if (sy_rsync_connect(r, &to, r->timeout_ms) < 0)
    return -1;
  if (ask) {
    redisReply *a = redisCommand(r->c, "ASKING");
    freeReplyObject(a);
  }
  return 1;
}

redisReply *sy_rsync_vcommand(sy_rsync_t *r, const char *fmt, va_list ap) {
  for (int hops = 0;; hops++) {
    if (r->c == NULL) {
      sy_rsync_fail(r, "redis: not connected");
      return NULL;
    }
    va_list aq;
    va_copy(aq, ap);
    redisReply *reply = redisvCommand(r->c, fmt, aq);
    va_end(aq);
    int f = hops < 5 ? follow(r, reply) : 0;
    if (f == 0)
      return checked(r, reply);
    freeReplyObject(reply);
    if (f < 0)
      return NULL;
  }
}

redisReply *sy_rsync_command(sy_rsync_t *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *reply = sy_rsync_vcommand(r, fmt, ap);
  va_end(ap);
  return reply;
}

redisReply *sy_rsync_argv(sy_rsync_t *r, int argc, const char **argv, const size_t *lens) {
  for (int hops = 0;; hops++) {
    if (r->c == NULL) {
      sy_rsync_fail(r, "redis: not connected");
      return NULL;
    }
    redisReply *reply = redisCommandArgv(r->c, argc, argv, lens);
    int f = hops < 5 ? follow(r, reply) : 0;
    if (f == 0)
      return checked(r, reply);
    freeReplyObject(reply);
    if (f < 0)
      return NULL;
  }
}

redisReply *sy_rsync_get_reply(sy_rsync_t *r) {
  void *reply = NULL;
  if (r->c == NULL || redisGetReply(r->c, &reply) != REDIS_OK) {
    if (r->c != NULL)
      context_error(r);
    return NULL;
  }
  return checked(r, reply);
}

static void addr_name(const sy_redis_addr_t *a, char *buf, size_t len) {
  if (a->is_unix)
    snprintf(buf, len, "unix:%s", a->path);
  else
    snprintf(buf, len, "%s:%u", a->host, a->port);
}

int sy_rsync_connect(sy_rsync_t *r, const sy_redis_addr_t *a, unsigned timeout_ms) {
  struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
  char name[400];
  r->err[0] = '\0';
  if (a != &r->addr)
    r->addr = *a;
  r->timeout_ms = timeout_ms;
  addr_name(a, name, sizeof name);
  r->c = a->is_unix ? redisConnectUnixWithTimeout(a->path, tv)
                    : redisConnectWithTimeout(a->host, (int)a->port, tv);
  if (r->c == NULL || r->c->err) {
    sy_rsync_fail(r, "cannot connect to Redis at %s: %s", name,
                  r->c ? r->c->errstr : "out of memory");
    sy_rsync_close(r);
    return -1;
  }
  redisSetTimeout(r->c, tv);
  redisReply *reply = NULL;
  if (a->password[0] && a->username[0])
    reply = sy_rsync_command(r, "AUTH %s %s", a->username, a->password);
  else if (a->password[0])
    reply = sy_rsync_command(r, "AUTH %s", a->password);
  int ok = !a->password[0] || reply != NULL;
  freeReplyObject(reply);
  reply = NULL;
  if (ok && a->db)
    ok = (reply = sy_rsync_command(r, "SELECT %u", a->db)) != NULL;
  freeReplyObject(reply);
  if (!ok) {
    char why[sizeof r->err];
    snprintf(why, sizeof why, "%s", r->err);
    sy_rsync_fail(r, "Redis at %s refused the connection setup: %.400s", name, why);
    sy_rsync_close(r);
    return -1;
  }
  return 0;
}

void sy_rsync_close(sy_rsync_t *r) {
  if (r->c != NULL)
    redisFree(r->c);
  r->c = NULL;
}
