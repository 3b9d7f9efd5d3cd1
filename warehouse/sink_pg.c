/*
 * sink_pg.c — the PostgreSQL sink (sink.h) over libpq: one connection, each
 * statement of sql.h prepared once on it (its `?` placeholders numbered $1, $2...),
 * values sent as text and typed by the server from the columns they go to.
 */
#include "warehouse/sink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

enum { PG_MAX_PARAMS = 32 };

typedef struct {
  sy_wh_sink_t base;
  PGconn *conn;
  int prepared[SY_WH_STMT_COUNT];
  PGresult *last; /* the last query's result, kept for its row's strings */
} pg_sink_t;

static int fail(pg_sink_t *s, const char *what, char *err, size_t cap) {
  char msg[400];
  snprintf(msg, sizeof msg, "%s", PQerrorMessage(s->conn));
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
    msg[--n] = '\0';
  snprintf(err, cap, "postgresql: %s: %s", what, msg);
  return -1;
}

static int pg_exec_raw(sy_wh_sink_t *b, const char *sql, char *err, size_t cap) {
  pg_sink_t *s = (pg_sink_t *)b;
  PGresult *r = PQexec(s->conn, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  return ok ? 0 : fail(s, "exec", err, cap);
}

static int pg_begin(sy_wh_sink_t *b, char *err, size_t cap) {
  return pg_exec_raw(b, "BEGIN", err, cap);
}

static int pg_commit(sy_wh_sink_t *b, char *err, size_t cap) {
  return pg_exec_raw(b, "COMMIT", err, cap);
}

static void pg_rollback(sy_wh_sink_t *b) {
  char err[16];
  pg_exec_raw(b, "ROLLBACK", err, sizeof err);
}

/* sql with `?` numbered as $1, $2... (none of our statements has a '?' in a literal). */
static char *numbered(const char *sql) {
  size_t n = strlen(sql), o = 0;
  char *out = malloc(n * 2 + 64);
  if (out == NULL)
    return NULL;
  int k = 0;
  for (const char *p = sql; *p; p++) {
    if (*p == '?')
      o += (size_t)sprintf(out + o, "$%d", ++k);
    else
      out[o++] = *p;
  }
  out[o] = '\0';
  return out;
}

/* Runs st; NULL with *failed and err when it could not be sent (PQexecPrepared's own
 * NULL, out of memory, is left to the caller's status check). */
static PGresult *run(pg_sink_t *s, sy_wh_stmt_t st, const sy_wh_val_t *v, size_t n, char *err,
                     size_t cap, int *failed) {
  *failed = 1;
  char name[16];
  snprintf(name, sizeof name, "sy%d", (int)st);
  if (n > PG_MAX_PARAMS) {
    snprintf(err, cap, "postgresql: too many parameters");
    return NULL;
  }
  if (!s->prepared[st]) {
    char *sql = numbered(sy_wh_sql(st));
    PGresult *r = sql ? PQprepare(s->conn, name, sql, 0, NULL) : NULL;
    free(sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
      fail(s, "prepare", err, cap);
      return NULL;
    }
    s->prepared[st] = 1;
  }
  const char *pv[PG_MAX_PARAMS];
  char num[PG_MAX_PARAMS][32];
  for (size_t i = 0; i < n; i++) {
    switch (v[i].type) {
    case SY_WH_TEXT: pv[i] = v[i].t; break;
    case SY_WH_INT: snprintf(num[i], sizeof num[i], "%" PRId64, v[i].i), pv[i] = num[i]; break;
    case SY_WH_REAL: snprintf(num[i], sizeof num[i], "%.17g", v[i].r), pv[i] = num[i]; break;
    default: pv[i] = NULL; break;
    }
  }
  *failed = 0;
  return PQexecPrepared(s->conn, name, (int)n, pv, NULL, NULL, 0);
}

static long pg_exec(sy_wh_sink_t *b, sy_wh_stmt_t st, const sy_wh_val_t *v, size_t n, char *err,
                    size_t cap) {
  pg_sink_t *s = (pg_sink_t *)b;
  int failed;
  PGresult *r = run(s, st, v, n, err, cap, &failed);
  if (failed)
    return -1;
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    return fail(s, sy_wh_sql(st), err, cap);
  }
  long changed = atol(PQcmdTuples(r));
  PQclear(r);
  return changed;
}

static int pg_query(sy_wh_sink_t *b, sy_wh_stmt_t st, const sy_wh_val_t *v, size_t n,
                    sy_wh_row_t *row, char *err, size_t cap) {
  pg_sink_t *s = (pg_sink_t *)b;
  PQclear(s->last);
  s->last = NULL;
  int failed;
  PGresult *r = run(s, st, v, n, err, cap, &failed);
  if (failed)
    return -1;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    return fail(s, "query", err, cap);
  }
  if (PQntuples(r) == 0) {
    PQclear(r);
    return 0;
  }
  s->last = r;
  int nc = PQnfields(r);
  row->ncols = (size_t)(nc < SY_WH_MAX_COLS ? nc : SY_WH_MAX_COLS);
  for (size_t i = 0; i < row->ncols; i++)
    row->col[i] = PQgetisnull(r, 0, (int)i) ? NULL : PQgetvalue(r, 0, (int)i);
  return 1;
}

static void pg_close(sy_wh_sink_t *b) {
  pg_sink_t *s = (pg_sink_t *)b;
  PQclear(s->last);
  PQfinish(s->conn);
  free(s);
}

static const sy_wh_sink_ops_t pg_ops = {
    "postgresql", pg_exec_raw, pg_begin, pg_commit, pg_rollback, pg_exec, pg_query, pg_close,
};

sy_wh_sink_t *sy__wh_pg_open(const char *conninfo, char *err, size_t cap) {
  pg_sink_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    snprintf(err, cap, "out of memory");
    return NULL;
  }
  s->base.ops = &pg_ops;
  s->base.dialect = SY_WH_PG;
  s->conn = PQconnectdb(conninfo);
  if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK) {
    if (s->conn == NULL)
      snprintf(err, cap, "postgresql: out of memory");
    else
      fail(s, "cannot connect", err, cap); /* libpq's message names no password */
    pg_close(&s->base);
    return NULL;
  }
  char e2[64];
  pg_exec_raw(&s->base, "SET client_min_messages = warning", e2, sizeof e2);
  return &s->base;
}
