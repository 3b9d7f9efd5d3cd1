/*
 * wh_read.c — the read-only warehouse reader behind `evaluate` and `dataset build`
 * (wh_read.h): SQLite here (one prepared statement at a time), PostgreSQL through
 * wh_read_pg.c. Values are always bound, never spliced.
 */
#include "warehouse/wh_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "warehouse/wh_read_pg.h"

struct sy_whr_s {
  sqlite3 *db;
  sqlite3_stmt *st;
  sy_whr_pg_t *pg; /* set for a PostgreSQL source; db and st are then unused */
};

static int is_pg_url(const char *url) {
  return strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0;
}

/* The URL without a password (wh_read.h). */
const char *sy_whr_redact_url(const char *url, char *buf, size_t len) {
  const char *scheme = strstr(url, "://");
  const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
  const char *colon = scheme ? memchr(scheme + 3, ':', at ? (size_t)(at - scheme - 3) : 0) : NULL;
  if (!is_pg_url(url) || at == NULL || colon == NULL)
    snprintf(buf, len, "%s", url);
  else
    snprintf(buf, len, "%.*s%s", (int)(colon - url), url, at);
  return buf;
}

/* 1 if the table exists, 0 if not, -1 on an error (in err). */
static int table_exists(sy_whr_t *w, const char *name, char *err, size_t errlen) {
  sy_whr_param_t p = {0, 0, name};
  const char *sql = w->pg ? "SELECT 1 FROM information_schema.tables WHERE table_schema = "
                            "current_schema() AND table_name = ?"
                          : "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?";
  if (sy_whr_query(w, sql, &p, 1, err, errlen) < 0)
    return -1;
  return sy_whr_step(w, err, errlen);
}

static void set_err(char *err, size_t errlen, const char *what, sqlite3 *db) {
  snprintf(err, errlen, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

/* Opens a source read-only (wh_read.h). */
int sy_whr_open(const char *url, sy_whr_t **out, char *err, size_t errlen) {
  *out = NULL;
  char shown[512], what[600];
  sy_whr_redact_url(url, shown, sizeof shown);
  snprintf(what, sizeof what, "--from %s", shown);
  if (!is_pg_url(url) && (strncmp(url, "sqlite:", 7) != 0 || url[7] == 0)) {
    snprintf(err, errlen, "--from '%s': expected sqlite:FILE or postgresql://...", shown);
    return -1;
  }
  sy_whr_t *w = calloc(1, sizeof *w);
  if (w == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  char oerr[512] = "";
  if (is_pg_url(url)) {
    if (sy__whr_pg_open(url, &w->pg, oerr, sizeof oerr) < 0) {
      snprintf(err, errlen, "%s: %s", what, oerr);
      sy_whr_close(w);
      return -1;
    }
  } else if (sqlite3_open_v2(url + 7, &w->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    set_err(err, errlen, what, w->db);
    sy_whr_close(w);
    return -1;
  } else {
    sqlite3_busy_timeout(w->db, 5000); /* the exporter may be writing */
  }
  if (table_exists(w, "trace", oerr, sizeof oerr) != 1) {
    snprintf(err, errlen, "%s: no `trace` table (not a switchyard warehouse?)%s%s", what,
             oerr[0] ? ": " : "", oerr);
    sy_whr_close(w);
    return -1;
  }
  *out = w;
  return 0;
}

/* The recorded schema version (wh_read.h). */
const char *sy_whr_schema_version(sy_whr_t *w, char *buf, size_t len) {
  char err[256];
  buf[0] = 0;
  if (table_exists(w, "meta", err, sizeof err) != 1)
    return buf;
  sy_whr_param_t k = {0, 0, "warehouse_schema_version"};
  if (sy_whr_query(w, "SELECT value FROM meta WHERE key = ?", &k, 1, err, sizeof err) == 0 &&
      sy_whr_step(w, err, sizeof err) == 1 && sy_whr_text(w, 0) != NULL)
    snprintf(buf, len, "%s", sy_whr_text(w, 0));
  return buf;
}

/* Prepares and binds (wh_read.h). */
int sy_whr_query(sy_whr_t *w, const char *sql, const sy_whr_param_t *params, size_t nparams,
                char *err, size_t errlen) {
  if (err && errlen)
    err[0] = 0;
  if (w->pg)
    return sy__whr_pg_query(w->pg, sql, params, nparams, err, errlen);
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
int sy_whr_step(sy_whr_t *w, char *err, size_t errlen) {
  if (w->pg)
    return sy__whr_pg_step(w->pg, err, errlen);
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
sy_whr_type_t sy_whr_type(sy_whr_t *w, int col) {
  if (w->pg)
    return sy__whr_pg_type(w->pg, col);
  switch (sqlite3_column_type(w->st, col)) {
  case SQLITE_INTEGER:
    return SY_WHR_INT;
  case SQLITE_FLOAT:
    return SY_WHR_REAL;
  case SQLITE_TEXT:
  case SQLITE_BLOB:
    return SY_WHR_TEXT;
  default:
    return SY_WHR_NULL;
  }
}

/* Integer value (wh_read.h). */
int64_t sy_whr_int(sy_whr_t *w, int col) {
  if (w->pg) {
    const char *t = sy__whr_pg_text(w->pg, col);
    return t ? strtoll(t, NULL, 10) : 0;
  }
  return sqlite3_column_int64(w->st, col);
}

/* Real value (wh_read.h). */
double sy_whr_real(sy_whr_t *w, int col) {
  if (w->pg) {
    const char *t = sy__whr_pg_text(w->pg, col);
    return t ? strtod(t, NULL) : 0;
  }
  return sqlite3_column_double(w->st, col);
}

/* Text value or NULL (wh_read.h). */
const char *sy_whr_text(sy_whr_t *w, int col) {
  if (w->pg)
    return sy__whr_pg_text(w->pg, col);
  return (const char *)sqlite3_column_text(w->st, col);
}

/* Closes (wh_read.h). */
void sy_whr_close(sy_whr_t *w) {
  if (w == NULL)
    return;
  sy__whr_pg_close(w->pg);
  sqlite3_finalize(w->st);
  sqlite3_close(w->db);
  free(w);
}
