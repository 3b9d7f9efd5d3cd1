/*
 * wh_read_pg.c — PostgreSQL behind wh_read.h (wh_read_pg.h): one connection, one query at
 * a time in single-row mode, values as text parameters, column types from the result's
 * type oids (int2/int4/int8 integers, float4/float8/numeric reals, the rest text).
 */
#include "warehouse/wh_read_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

/* Type oids (pg_type.h; stable since forever). */
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700

#define PG_MAX_PARAMS 16

struct sy_whr_pg_s {
  PGconn *conn;
  PGresult *row; /* the current single-row result, or NULL */
  int busy;      /* a query was sent and its results are not all read */
};

static void pg_err(char *err, size_t errlen, const char *what, PGconn *c) {
  const char *m = c ? PQerrorMessage(c) : "out of memory";
  size_t n = strlen(m);
  while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
    n--;
  snprintf(err, errlen, "%s: %.*s", what, (int)n, m);
}

/* Reads and frees whatever the last query still has to give. */
static void drain(sy_whr_pg_t *p) {
  PQclear(p->row);
  p->row = NULL;
  if (!p->busy)
    return;
  PGresult *r;
  while ((r = PQgetResult(p->conn)) != NULL)
    PQclear(r);
  p->busy = 0;
}

/* Connects (wh_read_pg.h). */
int sy__whr_pg_open(const char *url, sy_whr_pg_t **out, char *err, size_t errlen) {
  *out = NULL;
  sy_whr_pg_t *p = calloc(1, sizeof *p);
  if (p == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  /* Read-only at the server too: a reader never writes, whatever SQL it is given. */
  const char *const keys[] = {"dbname", "options", NULL};
  const char *const vals[] = {url, "-c default_transaction_read_only=on", NULL};
  p->conn = PQconnectdbParams(keys, vals, 1);
  if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK) {
    pg_err(err, errlen, "connect", p->conn);
    sy__whr_pg_close(p);
    return -1;
  }
  *out = p;
  return 0;
}

/* sql with `?` outside quotes replaced by $1, $2, ...; NULL when it does not fit. */
static char *number_placeholders(const char *sql) {
  size_t cap = strlen(sql) * 4 + 16, o = 0;
  char *out = malloc(cap);
  if (out == NULL)
    return NULL;
  int quoted = 0, n = 0;
  for (const char *s = sql; *s; s++) {
    if (*s == '\'')
      quoted = !quoted;
    if (*s == '?' && !quoted)
      o += (size_t)snprintf(out + o, cap - o, "$%d", ++n);
    else
      out[o++] = *s;
  }
  out[o] = 0;
  return out;
}

/* Sends a query (wh_read_pg.h). */
int sy__whr_pg_query(sy_whr_pg_t *p, const char *sql, const sy_whr_param_t *params, size_t n,
                    char *err, size_t errlen) {
  drain(p);
  if (n > PG_MAX_PARAMS) {
    snprintf(err, errlen, "query: too many parameters");
    return -1;
  }
  char ints[PG_MAX_PARAMS][24];
  const char *values[PG_MAX_PARAMS];
  for (size_t i = 0; i < n; i++) {
    if (params[i].is_int) {
      snprintf(ints[i], sizeof ints[i], "%lld", (long long)params[i].i);
      values[i] = ints[i];
    } else {
      values[i] = params[i].s;
    }
  }
  char *q = number_placeholders(sql);
  int ok = q != NULL &&
           PQsendQueryParams(p->conn, q, (int)n, NULL, values, NULL, NULL, 0) == 1;
  free(q);
  if (!ok) {
    pg_err(err, errlen, "query", p->conn);
    return -1;
  }
  p->busy = 1;
  PQsetSingleRowMode(p->conn);
  return 0;
}

/* Steps (wh_read_pg.h). */
int sy__whr_pg_step(sy_whr_pg_t *p, char *err, size_t errlen) {
  PQclear(p->row);
  p->row = NULL;
  if (!p->busy) {
    snprintf(err, errlen, "no query");
    return -1;
  }
  PGresult *r = PQgetResult(p->conn);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_TUPLES_OK;
  if (st == PGRES_SINGLE_TUPLE) {
    p->row = r;
    return 1;
  }
  int rc = 0;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    const char *m = r ? PQresultErrorMessage(r) : "";
    size_t len = strlen(m);
    while (len > 0 && m[len - 1] == '\n')
      len--;
    snprintf(err, errlen, "read: %.*s", (int)len, m);
    rc = -1;
  }
  PQclear(r);
  drain(p);
  return rc;
}

/* Column type (wh_read_pg.h). */
sy_whr_type_t sy__whr_pg_type(sy_whr_pg_t *p, int col) {
  if (p->row == NULL || col >= PQnfields(p->row) || PQgetisnull(p->row, 0, col))
    return SY_WHR_NULL;
  switch (PQftype(p->row, col)) {
  case OID_INT2:
  case OID_INT4:
  case OID_INT8:
    return SY_WHR_INT;
  case OID_FLOAT4:
  case OID_FLOAT8:
  case OID_NUMERIC:
    return SY_WHR_REAL;
  default:
    return SY_WHR_TEXT;
  }
}

/* The value's text, NULL for NULL (wh_read_pg.h). */
const char *sy__whr_pg_text(sy_whr_pg_t *p, int col) {
  if (p->row == NULL || col >= PQnfields(p->row) || PQgetisnull(p->row, 0, col))
    return NULL;
  return PQgetvalue(p->row, 0, col);
}

/* Closes (wh_read_pg.h). */
void sy__whr_pg_close(sy_whr_pg_t *p) {
  if (p == NULL)
    return;
  if (p->conn != NULL && PQstatus(p->conn) == CONNECTION_OK)
    drain(p);
  PQclear(p->row);
  PQfinish(p->conn);
  free(p);
}
