/*
 * redis_fixture.h — a real redis-server for a unit test: the embedded one
 * (stats/embedded.c) in a private temporary directory, with a synchronous hiredis
 * connection to it. Static: each test program includes it once.
 */
#ifndef SY_REDIS_FIXTURE_H
#define SY_REDIS_FIXTURE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include <hiredis/hiredis.h>

#include "stats/embedded.h"
#include "tests/unit/check.h"

typedef struct redis_fixture_s {
  char tmp[64];       /* /tmp/sy-NAME-XXXXXX: the server's data/ is in it */
  sy_embedded_t e;    /* e.sock: its unix socket */
  redisContext *c;    /* connected, or NULL */
  int started;
} redis_fixture_t;

/* Starts the server in a new /tmp/sy-NAME-XXXXXX and connects. Returns 0, or -1
 * (a failed CHECK says why; rf_stop cleans up either way). */
__attribute__((unused)) static int rf_start(redis_fixture_t *f, const char *name) {
  char dir[96], err[256];
  f->c = NULL;
  f->started = 0;
  snprintf(f->tmp, sizeof f->tmp, "/tmp/sy-%s-XXXXXX", name);
  if (mkdtemp(f->tmp) == NULL) {
    CHECK_MSG(0, "mkdtemp %s failed", f->tmp);
    f->tmp[0] = '\0';
    return -1;
  }
  snprintf(dir, sizeof dir, "%s/data", f->tmp);
  int rc = sy_embedded_start(&f->e, dir, "/usr/bin/redis-server", 10000, err, sizeof err);
  CHECK_MSG(rc == 0, "%s", err);
  if (rc != 0)
    return -1;
  f->started = 1;
  f->c = redisConnectUnix(f->e.sock);
  CHECK(f->c != NULL && f->c->err == 0);
  return f->c != NULL && f->c->err == 0 ? 0 : -1;
}

static int rf_rm_entry(const char *p, const struct stat *s, int flag, struct FTW *w) {
  (void)s, (void)flag, (void)w;
  return remove(p);
}

/* Disconnects, stops the server and removes the directory. */
__attribute__((unused)) static void rf_stop(redis_fixture_t *f) {
  if (f->c != NULL)
    redisFree(f->c);
  f->c = NULL;
  if (f->started)
    CHECK(sy_embedded_stop(&f->e, 5000) == 0);
  f->started = 0;
  if (f->tmp[0] != '\0')
    nftw(f->tmp, rf_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The values of a stream's first field (schema 5's e), oldest first, joined with ','
 * into out (cut at n - 1 bytes). */
__attribute__((unused)) static void rf_stream_values(redisContext *c, const char *stream,
                                                     char *out, size_t n) {
  out[0] = '\0';
  redisReply *r = redisCommand(c, "XRANGE %s - +", stream);
  size_t used = 0;
  for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    redisReply *fv = r->element[i]->element[1];
    if (fv->elements >= 2 && used < n)
      used += (size_t)snprintf(out + used, n - used, "%s%s", used ? "," : "",
                               fv->element[1]->str);
  }
  freeReplyObject(r);
}

#endif
