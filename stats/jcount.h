/*
 * jcount.h — the journal's counter tables: what an open batch adds to Redis counters,
 * summed per (key, field) before the batch is written, so that a batch carries one
 * HINCRBYFLOAT per counter however many events touched it (proto/KEYS.md's
 * statistics hashes). Two tables:
 *
 *   sums  free-form (key, field) pairs, hashed on both;
 *   rows  a key with a fixed list of fields (a variant's statistics hash), found with
 *         one lookup per request and added to by position.
 *
 * Both are bounded: the caller (stats/journal.c) closes its batch when a table says it
 * is nearly full. Pure memory, no I/O; the byte buffer is shared with the journal.
 *
 * Error convention (stats/): 0 / -1, as each function says.
 */
#ifndef SY_JCOUNT_H
#define SY_JCOUNT_H

#include <stddef.h>
#include <stdint.h>

#define SY__JCOUNT_SLOTS 512 /* sums: open addressing */
#define SY__JCOUNT_MAX 384   /* the batch closes before the sums table is this full */
#define SY__JROW_SLOTS 64
#define SY__JROW_MAX 48      /* ... or the row table this full */
#define SY__JROW_FIELDS 32   /* fields of one row at most */

/* A growable byte buffer. */
typedef struct sy__jbuf_s {
  char *p;
  size_t len, cap;
} sy__jbuf_t;

/* Makes room for `more` bytes after len. Returns 0, or -1 when out of memory. */
int sy__jbuf_reserve(sy__jbuf_t *b, size_t more);

typedef struct sy__jsum_s {
  uint64_t hash;
  size_t off; /* into the sums arena: "key\0field\0" */
  double delta;
  int used;
} sy__jsum_t;

/* The journal's sy_journal_row_t. */
typedef struct sy__jrow_s {
  uint64_t hash;
  size_t off; /* of the key in the rows arena */
  int used;
  const char *const *fields;
  uint32_t nfields, touched; /* bit i: fields[i] was added to */
  double v[SY__JROW_FIELDS];
} sy__jrow_t;

typedef struct sy__jcount_s {
  sy__jsum_t sums[SY__JCOUNT_SLOTS];
  unsigned nsums;
  sy__jbuf_t sums_arena;
  sy__jrow_t rows[SY__JROW_SLOTS];
  unsigned nrows;
  sy__jbuf_t rows_arena;
} sy__jcount_t;

/* Adds delta to (key, field). Returns 1 when the table is now nearly full (close the
 * batch), 0 otherwise, -1 when the pair could not be kept (too long, out of memory:
 * the delta is lost). */
int sy__jcount_add(sy__jcount_t *t, const char *key, const char *field, double delta);

/* Whether the row table is nearly full (close the batch before asking for a row). */
int sy__jcount_rows_full(const sy__jcount_t *t);

/* The row of key with fields[0..nfields) (the caller's static array: rows match on its
 * address), created empty on first use. NULL when nfields > SY__JROW_FIELDS or out of
 * memory. Valid until the next sy__jcount_drain. */
sy__jrow_t *sy__jcount_row(sy__jcount_t *t, const char *key, const char *const *fields,
                           size_t nfields);

/* Adds delta to field `field` of row (NULL or an out-of-range field: nothing). */
void sy__jrow_add(sy__jrow_t *row, size_t field, double delta);

/* Whether both tables are empty. */
int sy__jcount_empty(const sy__jcount_t *t);

/* Calls cb for every counter with its sum (rows first, then the sums, each in table
 * order) and empties both tables. */
typedef void (*sy__jcount_cb)(void *data, const char *key, const char *field, double sum);
void sy__jcount_drain(sy__jcount_t *t, sy__jcount_cb cb, void *data);

/* Frees the arenas (the tables themselves are the caller's memory). */
void sy__jcount_free(sy__jcount_t *t);

#endif
