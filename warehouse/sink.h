/*
 * sink.h — where the warehouse's rows go: a database behind an ops table, so that
 * the exporter (export.c, apply.c) speaks one language and the SQL dialects stay in
 * their sinks (sink_sqlite.c, sink_pg.c). Statements are the fixed list of sql.h,
 * written once with `?` placeholders; a sink prepares each once and binds values as
 * text, integers, reals or NULL.
 *
 * Error convention (as config and stats): 0 / a count, or -1 with one line in the
 * caller's err buffer.
 */
#ifndef SY_WH_SINK_H
#define SY_WH_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "warehouse/sql.h"

typedef enum { SY_WH_NULL = 0, SY_WH_TEXT, SY_WH_INT, SY_WH_REAL } sy_wh_vtype_t;

/* A bound value: text (t, NUL-terminated), an integer or a real; NULL by type. */
typedef struct sy_wh_val_s {
  sy_wh_vtype_t type;
  const char *t;
  int64_t i;
  double r;
} sy_wh_val_t;

/* One row read back: ncols strings (NULL for SQL NULL), owned by the sink, valid
 * until its next call. */
typedef struct sy_wh_row_s {
  size_t ncols;
  const char *col[SY_WH_MAX_COLS];
} sy_wh_row_t;

typedef struct sy_wh_sink_s sy_wh_sink_t;
typedef struct sy_wh_sink_ops_s {
  const char *name; /* "sqlite", "postgresql" */
  /* A statement without parameters or results (DDL, pragmas); text in the sink's own
   * dialect. */
  int (*exec_raw)(sy_wh_sink_t *s, const char *sql, char *err, size_t cap);
  int (*begin)(sy_wh_sink_t *s, char *err, size_t cap);
  int (*commit)(sy_wh_sink_t *s, char *err, size_t cap);
  void (*rollback)(sy_wh_sink_t *s);
  /* Runs statement st with its parameters; returns the rows it changed, or -1. */
  long (*exec)(sy_wh_sink_t *s, sy_wh_stmt_t st, const sy_wh_val_t *v, size_t n, char *err,
               size_t cap);
  /* Runs query st; returns 1 with its first row in *row, 0 when it has none, or -1. */
  int (*query)(sy_wh_sink_t *s, sy_wh_stmt_t st, const sy_wh_val_t *v, size_t n,
               sy_wh_row_t *row, char *err, size_t cap);
  void (*close)(sy_wh_sink_t *s);
} sy_wh_sink_ops_t;

struct sy_wh_sink_s {
  const sy_wh_sink_ops_t *ops;
  sy_wh_dialect_t dialect;
};

/* Opens the sink named by `to`: "sqlite:PATH" (created if missing; WAL) or
 * "postgresql://..." / "postgres://..." (a libpq connection URI). Creates the tables
 * if missing and records the schema version (sql.h). Returns the sink, or NULL with
 * err; an unknown scheme says so. */
sy_wh_sink_t *sy_wh_sink_open(const char *to, char *err, size_t cap);
/* 1 if `to` names a sink this build can open ("sqlite:" or "postgres(ql)://"), else 0. */
int sy_wh_sink_scheme_ok(const char *to);

/* The sinks' own openers (sink_sqlite.c, sink_pg.c): connected, nothing created. */
sy_wh_sink_t *sy__wh_sqlite_open(const char *path, char *err, size_t cap);
sy_wh_sink_t *sy__wh_pg_open(const char *conninfo, char *err, size_t cap);

#endif
