/*
 * wh_read_pg.h — the PostgreSQL side of wh_read.h (libpq, blocking: a CLI's reader).
 * Internal to warehouse/: wh_read.c dispatches to it for `postgresql://` sources. Rows are
 * streamed in libpq's single-row mode, so a large query is never held whole in memory.
 * Placeholders `?` in the SQL are rewritten to $1, $2, ... (outside quoted literals); every
 * value is sent as a text parameter.
 *
 * Errors: 0 / -1 with a message in err, as wh_read.h.
 */
#ifndef SY_WH_READ_PG_H
#define SY_WH_READ_PG_H

#include <stddef.h>
#include <stdint.h>

#include "warehouse/wh_read.h"

typedef struct sy_whr_pg_s sy_whr_pg_t;

/* Connects to url (a libpq connection URI); the caller owns *out (sy__whr_pg_close). */
int sy__whr_pg_open(const char *url, sy_whr_pg_t **out, char *err, size_t errlen);
/* As sy_whr_query / sy_whr_step and the column accessors of wh_read.h. */
int sy__whr_pg_query(sy_whr_pg_t *p, const char *sql, const sy_whr_param_t *params, size_t n,
                    char *err, size_t errlen);
int sy__whr_pg_step(sy_whr_pg_t *p, char *err, size_t errlen);
sy_whr_type_t sy__whr_pg_type(sy_whr_pg_t *p, int col);
const char *sy__whr_pg_text(sy_whr_pg_t *p, int col);
/* Closes the connection after draining any open query; p may be NULL. */
void sy__whr_pg_close(sy_whr_pg_t *p);

#endif
