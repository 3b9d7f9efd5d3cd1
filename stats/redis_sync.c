/*
 * redis_sync.c — the synchronous Redis connection of the one-shot commands and the
 * admin API's jobs (redis_sync.h): synchronous hiredis with timeouts, errors kept in
 * the connection's own buffer.
 */
#include "stats/redis_sync.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

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

/* Sends a command formatted once (cmd, len) and reads its reply, following up to 5
 * cluster redirections; frees cmd. The reply as sy_rsync_command. */
static redisReply *send_formatted(sy_rsync_t *r, char *cmd, int len) {
  redisReply *out = NULL;
  if (len < 0 || cmd == NULL) {
    sy_rsync_fail(r, "redis: out of memory");
    redisFreeCommand(cmd);
    return NULL;
  }
  for (int hops = 0;; hops++) {
    if (r->c == NULL) {
      sy_rsync_fail(r, "redis: not connected");
      break;
    }
    void *reply = NULL;
    if (redisAppendFormattedCommand(r->c, cmd, (size_t)len) != REDIS_OK ||
        redisGetReply(r->c, &reply) != REDIS_OK)
      reply = NULL;
    int f = hops < 5 ? follow(r, reply) : 0;
    if (f == 0) {
      out = checked(r, reply);
      break;
    }
    freeReplyObject(reply);
    if (f < 0)
      break;
  }
  redisFreeCommand(cmd);
  return out;
}

redisReply *sy_rsync_vcommand(sy_rsync_t *r, const char *fmt, va_list ap) {
  char *cmd = NULL;
  va_list aq;
  va_copy(aq, ap);
  int len = redisvFormatCommand(&cmd, fmt, aq);
  va_end(aq);
  return send_formatted(r, cmd, len);
}

redisReply *sy_rsync_command(sy_rsync_t *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *reply = sy_rsync_vcommand(r, fmt, ap);
  va_end(ap);
  return reply;
}

redisReply *sy_rsync_argv(sy_rsync_t *r, int argc, const char **argv, const size_t *lens) {
  char *cmd = NULL;
  int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
  return send_formatted(r, cmd, len);
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

/* Connects to the one server a names (host:port or unix path), AUTH, SELECT. */
static int connect_one(sy_rsync_t *r, const sy_redis_addr_t *a, unsigned timeout_ms) {
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

/* One sentinel's answer: 1 (found), 0 (it does not know the master), -1 (no answer:
 * why in r->err). */
static int ask_one(sy_rsync_t *r, const sy_redis_addr_t *a, const sy_redis_hostport_t *sn,
                   unsigned timeout_ms, sy_redis_hostport_t *primary, char *ip) {
  sy_redis_addr_t sa;
  memset(&sa, 0, sizeof sa);
  snprintf(sa.host, sizeof sa.host, "%s", sn->host);
  sa.port = sn->port;
  snprintf(sa.password, sizeof sa.password, "%s", a->sentinel_password);
  if (connect_one(r, &sa, timeout_ms) < 0)
    return -1;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  ip[0] = '\0';
  if (getpeername(r->c->fd, (struct sockaddr *)&ss, &sl) == 0)
    inet_ntop(ss.ss_family,
              ss.ss_family == AF_INET6 ? (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                                       : (void *)&((struct sockaddr_in *)&ss)->sin_addr,
              ip, 64);
  redisReply *rep = sy_rsync_command(r, "SENTINEL get-master-addr-by-name %s", a->master);
  int rc = -1;
  if (rep == NULL) {
    /* r->err says why */
  } else if (rep->type == REDIS_REPLY_NIL) {
    rc = 0;
  } else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
             rep->element[0]->type == REDIS_REPLY_STRING &&
             rep->element[1]->type == REDIS_REPLY_STRING && atoi(rep->element[1]->str) > 0 &&
             atoi(rep->element[1]->str) < 65536) {
    snprintf(primary->host, sizeof primary->host, "%s", rep->element[0]->str);
    primary->port = (unsigned)atoi(rep->element[1]->str);
    rc = 1;
  } else {
    sy_rsync_fail(r, "unexpected answer to SENTINEL get-master-addr-by-name");
  }
  freeReplyObject(rep);
  sy_rsync_close(r);
  return rc;
}

int sy_sentinel_ask_sync(const sy_redis_addr_t *a, unsigned timeout_ms, unsigned start,
                         sy_redis_hostport_t *primary, unsigned *answered, char *sentinel_ip,
                         char *err, size_t errlen) {
  size_t off = 0;
  unsigned unknown = 0;
  char *why = err;
  why[0] = '\0';
  for (unsigned k = 0; k < a->nsentinels; k++) {
    unsigned i = (start + k) % a->nsentinels;
    const sy_redis_hostport_t *sn = &a->sentinels[i];
    sy_rsync_t r = {0};
    int rc = ask_one(&r, a, sn, timeout_ms, primary, sentinel_ip);
    if (rc == 1) {
      *answered = i;
      return 0;
    }
    unknown += rc == 0;
    if (off < errlen)
      off += (size_t)snprintf(why + off, errlen - off, "%s%s:%u (%.160s)", k ? ", " : "",
                              sn->host, sn->port, rc == 0 ? "does not know it" : r.err);
  }
  char asked[1024];
  snprintf(asked, sizeof asked, "%s", why);
  if (unknown > 0) /* every sentinel that answered does not know it */
    snprintf(err, errlen,
             "redis.master: no sentinel knows a master named '%s' (asked %s); check "
             "redis.master against the sentinels' `sentinel monitor` lines",
             a->master, asked);
  else
    snprintf(err, errlen, "redis.master '%s': no sentinel gave the primary's address (asked %s)",
             a->master, asked);
  return -1;
}

int sy_rsync_connect(sy_rsync_t *r, const sy_redis_addr_t *a, unsigned timeout_ms) {
  if (a->nsentinels == 0)
    return connect_one(r, a, timeout_ms);
  sy_redis_addr_t d = *a;
  unsigned start = 0;
  for (int tries = 0;; tries++) {
    sy_redis_hostport_t p;
    char ip[64];
    if (sy_sentinel_ask_sync(a, timeout_ms, start, &p, &start, ip, r->err, sizeof r->err) < 0)
      return -1;
    snprintf(d.host, sizeof d.host, "%s", p.host);
    d.port = p.port;
    if (connect_one(r, &d, timeout_ms) == 0) {
      redisReply *role = sy_rsync_command(r, "ROLE");
      int master = role != NULL && role->type == REDIS_REPLY_ARRAY && role->elements > 0 &&
                   role->element[0]->type == REDIS_REPLY_STRING &&
                   strcmp(role->element[0]->str, "master") == 0;
      freeReplyObject(role);
      if (master)
        return 0;
      sy_rsync_fail(r, "Redis at %s:%u, the primary of '%s' by the sentinels, is not a master "
                       "(a fail-over in progress?)", d.host, d.port, a->master);
      sy_rsync_close(r);
    }
    if (tries == 2)
      return -1;
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

void sy_rsync_close(sy_rsync_t *r) {
  if (r->c != NULL)
    redisFree(r->c);
  r->c = NULL;
}
