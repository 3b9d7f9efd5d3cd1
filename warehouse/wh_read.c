/*
 * wh_read.c — the read-only SQLite reader behind `evaluate` and `dataset build`
 * (wh_read.h). One prepared statement at a time; values always bound, never spliced.
 */
#include "warehouse/wh_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

struct sy_wh_s {
  sqlite3 *db;
  sqlite3_stmt *st;
};

static void set_err(char *err, size_t errlen, const char *what, sqlite3 *db) {
  snprintf(err, errlen, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

/* Opens a source read-only (wh_read.h). */
int sy_wh_open(const char *url, sy_wh_t **out, char *err, size_t errlen) {
  *out = NULL;
  if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
    snprintf(err, errlen,
             "--from %s: PostgreSQL is not supported by this reader yet (use --from "
             "sqlite:FILE)",
             url);
    return -1;
  }
  if (strncmp(url, "sqlite:", 7) != 0 || url[7] == 0) {
    snprintf(err, errlen, "--from '%s': expected sqlite:FILE", url);
    return -1;
  }
  const char *path = url + 7;
  sy_wh_t *w = calloc(1, sizeof *w);
  if (w == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (sqlite3_open_v2(path, &w->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    char what[512];
    snprintf(what, sizeof what, "--from %s", url);
    set_err(err, errlen, what, w->db);
    sy_wh_close(w);
    return -1;
  }
  sqlite3_busy_timeout(w->db, 5000); /* the exporter may be writing */
  char qerr[256];
  if (sy_wh_query(w, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trace'",
                  NULL, 0, qerr, sizeof qerr) < 0 ||
      sy_wh_step(w, qerr, sizeof qerr) != 1) {
    snprintf(err, errlen, "--from %s: no `trace` table (not a switchyard warehouse?)%s%s", url,
             qerr[0] ? ": " : "", qerr[0] ? qerr : "");
    sy_wh_close(w);
    return -1;
  }
  *out = w;
  return 0;
}

/* The recorded schema version (wh_read.h). */
const char *sy_wh_schema_version(sy_wh_t *w, char *buf, size_t len) {
  char err[256];
  buf[0] = 0;
  if (sy_wh_query(w, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'", NULL,
                  0, err, sizeof err) < 0 ||
      sy_wh_step(w, err, sizeof err) != 1)
    return buf;
  sy_wh_param_t k = {0, 0, "warehouse_schema_version"};
  if (sy_wh_query(w, "SELECT value FROM meta WHERE key = ?", &k, 1, err, sizeof err) == 0 &&
      sy_wh_step(w, err, sizeof err) == 1 && sy_wh_text(w, 0) != NULL)
    snprintf(buf, len, "%s", sy_wh_text(w, 0));
  return buf;
}

/* Prepares and binds (wh_read.h). */
int sy_wh_query(sy_wh_t *w, const char *sql, const sy_wh_param_t *params, size_t nparams,
                char *err, size_t errlen) {
  if (err && errlen)
    err[0] = 0;
  sqlite3_finalize(w->st);
  w->st = NULL;
  if (sqlite3_prepare_v2(w->db, sql, -1, &w->st, NULL) != SQLITE_OK) {
    set_err(err, errlen, "query", w->db);
    return -1;
  }
  for (size_t i = 0; i < nparams; i++) {
    int rc = params[i].is_int
                 ? sqlite3_bind_int64(w->st, (int)i + 1, params[i].i)
                 : sqlite3_bind_text(w->st, (int)i + 1, params[i].s, -1, SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) {
      set_err(err, errlen, "bind", w->db);
      return -1;
    }
  }
  return 0;
}

/* Steps (wh_read.h). */
int sy_wh_step(sy_wh_t *w, char *err, size_t errlen) {
  if (w->st == NULL) {
    snprintf(err, errlen, "no query");
    return -1;
  }
  int rc = sqlite3_step(w->st);
  if (rc == SQLITE_ROW)
    return 1;
  if (rc == SQLITE_DONE)
    return 0;
  set_err(err, errlen, "read", w->db);
  return -1;
}

/* Column type (wh_read.h). */
sy_wh_type_t sy_wh_type(sy_wh_t *w, int col) {
  switch (sqlite3_column_type(w->st, col)) {
  case SQLITE_INTEGER:
    return SY_WH_INT;
  case SQLITE_FLOAT:
    return SY_WH_REAL;
  case SQLITE_TEXT:
  case SQLITE_BLOB:
    return SY_WH_TEXT;
  default:
    return SY_WH_NULL;
  }
}

/* Integer value (wh_read.h). */
int64_t sy_wh_int(sy_wh_t *w, int col) {
  return sqlite3_column_int64(w->st, col);
}

/* Real value (wh_read.h). */
double sy_wh_real(sy_wh_t *w, int col) {
  return sqlite3_column_double(w->st, col);
}

/* Text value or NULL (wh_read.h). */
const char *sy_wh_text(sy_wh_t *w, int col) {
  return (const char *)sqlite3_column_text(w->st, col);
}

/* Closes (wh_read.h). */
void sy_wh_close(sy_wh_t *w) {
  if (w == NULL)
    return;
  sqlite3_finalize(w->st);
  sqlite3_close(w->db);
  free(w);
}
