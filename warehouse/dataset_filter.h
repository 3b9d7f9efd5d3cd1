/*
 * dataset_filter.h — the `--where` grammar of `switchyard dataset build`, and the SQL it
 * turns into. Pure: no I/O, no allocation.
 *
 *   where   := "" | clause ("," clause)*          (spaces around clauses are ignored)
 *   clause  := key "=" value                       (each key at most once)
 *   key     := experiment | variant | tenant | since | until | outcome
 *   value   := 1 to 127 of [A-Za-z0-9_.:@/+-]
 *   since, until: ms since the epoch (digits), or YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SS[.mmm]Z
 *                 (UTC, 1970 or later); since is inclusive, until exclusive, both on the
 *                 request's ts_ms
 *   outcome: present (outcome_value is not NULL) | missing (outcome_value is NULL: none
 *            arrived yet, or the sweeper counted it missing) | any (default)
 *
 * Values never reach the SQL text: sy_ds_filter_sql writes `?` placeholders and fills the
 * parameters. Rows whose request event has not arrived (ts_ms NULL) are never selected: a
 * dataset row needs its request.
 *
 * Errors: 0 / -1 with a message naming the clause in err.
 */
#ifndef SY_DATASET_FILTER_H
#define SY_DATASET_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "warehouse/wh_read.h"

#define SY_DS_VALUE_MAX 128
#define SY_DS_MAX_PARAMS 6

typedef enum {
  SY_DS_OUTCOME_ANY = 0,
  SY_DS_OUTCOME_PRESENT,
  SY_DS_OUTCOME_MISSING,
} sy_ds_outcome_t;

typedef struct sy_ds_filter_s {
  char experiment[SY_DS_VALUE_MAX]; /* "" when not given */
  char variant[SY_DS_VALUE_MAX];
  char tenant[SY_DS_VALUE_MAX];
  int has_since, has_until;
  int64_t since_ms, until_ms;
  sy_ds_outcome_t outcome;
} sy_ds_filter_t;

/* Parses where (the grammar above) into f. */
int sy_ds_filter_parse(const char *where, sy_ds_filter_t *f, char *err, size_t errlen);

/*
 * The canonical text of f: the clauses given, in the order experiment, variant, tenant,
 * since, until (as ms), then always outcome=... . Parsing it gives f back. Writes at most
 * len bytes with the NUL; returns the length it needed (as snprintf).
 */
size_t sy_ds_filter_canonical(const sy_ds_filter_t *f, char *buf, size_t len);

/*
 * The condition of f as SQL over the `trace` table, "ts_ms IS NOT NULL AND ...", with `?`
 * placeholders, in sql (at most len bytes with the NUL), and their values in params (room
 * for SY_DS_MAX_PARAMS; the text values point into f). Returns the number of parameters.
 */
size_t sy_ds_filter_sql(const sy_ds_filter_t *f, char *sql, size_t len, sy_whr_param_t *params);

/* Parses a time value as the grammar's since/until (ms since the epoch); -1 if malformed. */
int sy_ds_parse_time(const char *s, int64_t *ms);

#endif
