/*
 * jcount.c — the journal's counter tables (jcount.h): per-batch sums of counter
 * increments, by (key, field) and by row. Open addressing on an xxh3 hash of the
 * name; names live in an arena that empties with the tables, so a batch costs no
 * allocation once the arenas have grown to its size.
 */
#include "stats/jcount.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "base/grow.h"

/* See jcount.h. */
int sy__jbuf_reserve(sy__jbuf_t *b, size_t more) {
  return sy_grow(&b->p, &b->cap, b->len + more, 4096);
}

/* See jcount.h. */
int sy__jcount_add(sy__jcount_t *t, const char *key, const char *field, double delta) {
  size_t kl = strlen(key), fl = strlen(field);
  char tmp[512];
  if (kl + fl + 2 > sizeof tmp)
    return -1;
  memcpy(tmp, key, kl + 1);
  memcpy(tmp + kl + 1, field, fl + 1);
  uint64_t h = XXH3_64bits(tmp, kl + fl + 2);
  for (size_t i = h % SY__JCOUNT_SLOTS;; i = (i + 1) % SY__JCOUNT_SLOTS) {
    sy__jsum_t *a = &t->sums[i];
    if (a->used && a->hash == h && memcmp(t->sums_arena.p + a->off, tmp, kl + fl + 2) == 0) {
      a->delta += delta;
      return 0;
    }
    if (!a->used) { /* never full: the batch closes at SY__JCOUNT_MAX < SLOTS */
      if (sy__jbuf_reserve(&t->sums_arena, kl + fl + 2) < 0)
        return -1;
      a->used = 1;
      a->hash = h;
      a->off = t->sums_arena.len;
      a->delta = delta;
      memcpy(t->sums_arena.p + t->sums_arena.len, tmp, kl + fl + 2);
      t->sums_arena.len += kl + fl + 2;
      return ++t->nsums >= SY__JCOUNT_MAX ? 1 : 0;
    }
  }
}

/* See jcount.h. */
int sy__jcount_rows_full(const sy__jcount_t *t) { return t->nrows >= SY__JROW_MAX; }

/* See jcount.h. */
sy__jrow_t *sy__jcount_row(sy__jcount_t *t, const char *key, const char *const *fields,
                           size_t nfields) {
  size_t kl = strlen(key);
  if (nfields > SY__JROW_FIELDS || t->nrows >= SY__JROW_SLOTS - 1)
    return NULL;
  uint64_t h = XXH3_64bits(key, kl);
  for (size_t i = h % SY__JROW_SLOTS;; i = (i + 1) % SY__JROW_SLOTS) {
    sy__jrow_t *r = &t->rows[i];
    if (r->used && r->hash == h && r->fields == fields &&
        strcmp(t->rows_arena.p + r->off, key) == 0)
      return r;
    if (!r->used) {
      if (sy__jbuf_reserve(&t->rows_arena, kl + 1) < 0)
        return NULL;
      r->used = 1;
      r->off = t->rows_arena.len;
      memcpy(t->rows_arena.p + t->rows_arena.len, key, kl + 1);
      t->rows_arena.len += kl + 1;
      r->hash = h;
      r->fields = fields;
      r->nfields = (uint32_t)nfields;
      r->touched = 0;
      t->nrows++;
      return r;
    }
  }
}

/* See jcount.h. */
void sy__jrow_add(sy__jrow_t *row, size_t field, double delta) {
  if (row == NULL || field >= row->nfields)
    return;
  if (!(row->touched & (1u << field))) {
    row->touched |= 1u << field;
    row->v[field] = 0;
  }
  row->v[field] += delta;
}

/* See jcount.h. */
int sy__jcount_empty(const sy__jcount_t *t) { return t->nsums == 0 && t->nrows == 0; }

/* See jcount.h. */
void sy__jcount_drain(sy__jcount_t *t, sy__jcount_cb cb, void *data) {
  for (size_t i = 0; i < SY__JROW_SLOTS && t->nrows > 0; i++) {
    sy__jrow_t *r = &t->rows[i];
    if (!r->used)
      continue;
    const char *key = t->rows_arena.p + r->off;
    for (uint32_t f = 0; f < r->nfields; f++)
      if (r->touched & (1u << f))
        cb(data, key, r->fields[f], r->v[f]);
    r->used = 0;
    t->nrows--;
  }
  t->nrows = 0;
  t->rows_arena.len = 0;
  for (size_t i = 0; i < SY__JCOUNT_SLOTS && t->nsums > 0; i++) {
    sy__jsum_t *a = &t->sums[i];
    if (!a->used)
      continue;
    const char *key = t->sums_arena.p + a->off;
    cb(data, key, key + strlen(key) + 1, a->delta);
    a->used = 0;
    t->nsums--;
  }
  t->nsums = 0;
  t->sums_arena.len = 0;
}

/* See jcount.h. */
void sy__jcount_free(sy__jcount_t *t) {
  free(t->sums_arena.p);
  free(t->rows_arena.p);
  t->sums_arena = (sy__jbuf_t){0};
  t->rows_arena = (sy__jbuf_t){0};
}
