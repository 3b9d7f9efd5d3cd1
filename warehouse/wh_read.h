/*
 * wh_read.h — read-only access to a warehouse (the `trace` table written by `switchyard
 * export`, schema version 1) for the commands that read it (`evaluate`, `dataset build`):
 * open a source URL, run one parameterised query, step through the rows with typed column
 * access. Queries only ever take values as bound parameters, never spliced into the SQL.
 *
 * Sources: `sqlite:PATH` (opened read-only; the file must exist) and `postgresql://...` or
 * `postgres://...` (a libpq connection URI; a password is better given by PGPASSWORD or
 * ~/.pgpass, as the URL is printed in reports and manifests with its password removed).
 * Either must have a `trace` table. The SQL given to sy_whr_query must be valid in both
 * (the readers use plain SELECTs); `?` placeholders work for both.
 *
 * Errors: 0 / -1 with a message in err (the source's own message included).
 * A CLI helper: it blocks, and never runs on an event loop.
 */
#ifndef SY_WH_READ_H
#define SY_WH_READ_H

#include <stddef.h>
#include <stdint.h>

typedef struct sy_whr_s sy_whr_t;

/* A bound parameter: an integer or a text. */
typedef struct sy_whr_param_s {
  int is_int;
  int64_t i;
  const char *s;
} sy_whr_param_t;

typedef enum {
  SY_WHR_NULL = 0,
  SY_WHR_INT,
  SY_WHR_REAL,
  SY_WHR_TEXT,
} sy_whr_type_t;

/* url with any password removed (postgresql://user:pw@host/db -> postgresql://user@host/db),
 * in buf (at most len bytes with the NUL); other URLs as they are. Returns buf. */
const char *sy_whr_redact_url(const char *url, char *buf, size_t len);

/* Opens url read-only into *out (the caller's; sy_whr_close). -1 with err when the URL is
 * not a supported source, the file is missing, or it has no `trace` table. */
int sy_whr_open(const char *url, sy_whr_t **out, char *err, size_t errlen);

/* The warehouse_schema_version recorded in its meta table, in buf (at most len bytes with
 * the NUL); "" when there is none. Returns buf. */
const char *sy_whr_schema_version(sy_whr_t *w, char *buf, size_t len);

/* Prepares sql (placeholders `?`) with params bound in order. Only one query is open at a
 * time per handle: a new prepare ends the previous one. -1 with err on an SQL error. */
int sy_whr_query(sy_whr_t *w, const char *sql, const sy_whr_param_t *params, size_t nparams,
                char *err, size_t errlen);

/* Advances to the next row: 1 a row, 0 no more, -1 an error (in err). */
int sy_whr_step(sy_whr_t *w, char *err, size_t errlen);

/* Column access on the current row (0-based, the query's column order). Text is valid
 * until the next step; NULL for a NULL value. A column's type is its value's type. */
sy_whr_type_t sy_whr_type(sy_whr_t *w, int col);
int64_t sy_whr_int(sy_whr_t *w, int col);
double sy_whr_real(sy_whr_t *w, int col);
const char *sy_whr_text(sy_whr_t *w, int col);

/* Closes w and any open query; w may be NULL. */
void sy_whr_close(sy_whr_t *w);

#endif
