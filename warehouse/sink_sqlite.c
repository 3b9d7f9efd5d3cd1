/*
 * sink_sqlite.c — the SQLite sink (sink.h): one file, WAL journal, synchronous=FULL
 * (a committed batch survives a power cut as well as a crash: its entries are
 * acknowledged in Redis right after), each statement of sql.h prepared once.
 */
#include "warehouse/sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

typedef struct {
  sy_wh_sink_t base;
  sqlite3 *db;
  sqlite3_stmt *st[SY_WH_STMT_COUNT];
} sq_sink_t;

static int fail(sq_sink_t *s, const char *what, char *err, size_t cap) {
  snprintf(err, cap, "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
  return -1;
}

static int sq_exec_raw(sy_wh_sink_t *b, const char *sql, char *err, size_t cap) {
  sq_sink_t *s = (sq_sink_t *)b;
  char *msg = NULL;
  if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, cap, "sqlite: %s", msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return -1;
  }
  return 0;
}

static int sq_begin(sy_wh_sink_t *b, char *err, size_t cap) {
  return sq_exec_raw(b, "BEGIN IMMEDIATE", err, cap);
}

static int sq_commit(sy_wh_sink_t *b, char *err, size_t cap) {
  return sq_exec_raw(b, "COMMIT", err, cap);
}

static void sq_rollback(sy_wh_sink_t *b) {
  char err[16];
  sq_exec_raw(b, "ROLLBACK", err, sizeof err);
}

static sqlite3_stmt *bind(sq_sink_t *s, sy_wh_stmt_t st, const sy_wh_val_t *v, size_t n,
                          char *err, size_t cap) {
  sqlite3_stmt *p = s->st[st];
  if (p == NULL && sqlite3_prepare_v3(s->db, sy_wh_sql(st), -1, SQLITE_PREPARE_PERSISTENT, &p,
                                      NULL) != SQLITE_OK) {
    fail(s, "prepare", err, cap);
    return NULL;
  }
  s->st[st] = p;
  sqlite3_reset(p);
  for (size_t i = 0; i < n; i++) {
    int rc, k = (int)i + 1;
    switch (v[i].type) {
    case SY_WH_TEXT: rc = sqlite3_bind_text(p, k, v[i].t, -1, SQLITE_STATIC); break;
    case SY_WH_INT: rc = sqlite3_bind_int64(p, k, v[i].i); break;
    case SY_WH_REAL: rc = sqlite3_bind_double(p, k, v[i].r); break;
    default: rc = sqlite3_bind_null(p, k); break;
    }
    if (rc != SQLITE_OK) {
      fail(s, "bind", err, cap);
      return NULL;
    }
  }
  return p;
}

static long sq_exec(sy_wh_sink_t *b, sy_wh_stmt_t st, const sy_wh_val_t *v, size_t n, char *err,
                    size_t cap) {
  sq_sink_t *s = (sq_sink_t *)b;
  sqlite3_stmt *p = bind(s, st, v, n, err, cap);
  if (p == NULL)
    return -1;
  int rc = sqlite3_step(p);
  sqlite3_reset(p);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    return fail(s, "step", err, cap);
  return (long)sqlite3_changes(s->db);
}

static int sq_query(sy_wh_sink_t *b, sy_wh_stmt_t st, const sy_wh_val_t *v, size_t n,
                    sy_wh_row_t *row, char *err, size_t cap) {
  sq_sink_t *s = (sq_sink_t *)b;
  sqlite3_stmt *p = bind(s, st, v, n, err, cap);
  if (p == NULL)
    return -1;
  int rc = sqlite3_step(p);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(p);
    return 0;
  }
  if (rc != SQLITE_ROW) {
    sqlite3_reset(p);
    return fail(s, "step", err, cap);
  }
  /* Left un-reset so that the column texts stay valid until the next call. */
  int nc = sqlite3_column_count(p);
  row->ncols = (size_t)(nc < SY_WH_MAX_COLS ? nc : SY_WH_MAX_COLS);
  for (size_t i = 0; i < row->ncols; i++)
    row->col[i] = (const char *)sqlite3_column_text(p, (int)i);
  return 1;
}

static void sq_close(sy_wh_sink_t *b) {
  sq_sink_t *s = (sq_sink_t *)b;
  for (size_t i = 0; i < SY_WH_STMT_COUNT; i++)
    sqlite3_finalize(s->st[i]);
  sqlite3_close(s->db);
  free(s);
}

static const sy_wh_sink_ops_t sq_ops = {
    "sqlite", sq_exec_raw, sq_begin, sq_commit, sq_rollback, sq_exec, sq_query, sq_close,
};

sy_wh_sink_t *sy__wh_sqlite_open(const char *path, char *err, size_t cap) {
  sq_sink_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    snprintf(err, cap, "out of memory");
    return NULL;
  }
  s->base.ops = &sq_ops;
  s->base.dialect = SY_WH_SQLITE;
  if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    snprintf(err, cap, "sqlite: cannot open %s: %s", path,
             s->db ? sqlite3_errmsg(s->db) : "out of memory");
    sqlite3_close(s->db);
    free(s);
    return NULL;
  }
  /* Another process (a dataset build, an evaluation) may read while we write. */
  sqlite3_busy_timeout(s->db, 10000);
  /* 8 KiB pages (a new file only): half the page writes of the default 4 KiB, each a
   * system call or two, for rows of about 1 KiB (bench/export-rate: -40% system time) */
  if (sq_exec_raw(&s->base,
                  "PRAGMA page_size=8192; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
                  err, cap) < 0) {
    sq_close(&s->base);
    return NULL;
  }
  return &s->base;
}
