/*
 * buf.h — reference-counted byte buffers.
 *
 * An upstream read lands in one sy_buf_t; slices of it are handed to uv_write for
 * the client (and later for shadow copies) without copying. Every writer takes a
 * reference and drops it in its write callback; the buffer is freed with the last
 * reference. Single-threaded: one event loop owns every buffer it allocates.
 */
#ifndef SY_BUF_H
#define SY_BUF_H

#include <stddef.h>
#include <stdlib.h>

typedef struct sy_buf_s {
  unsigned refs;
  size_t cap;
  size_t len;
  char data[];
} sy_buf_t;

/* A new buffer with one reference and room for cap bytes, or NULL. */
static inline sy_buf_t *sy_buf_new(size_t cap) {
  sy_buf_t *b = malloc(sizeof(*b) + cap);
  if (b != NULL) {
    b->refs = 1;
    b->cap = cap;
    b->len = 0;
  }
  return b;
}

static inline sy_buf_t *sy_buf_ref(sy_buf_t *b) {
  b->refs++;
  return b;
}

static inline void sy_buf_unref(sy_buf_t *b) {
  if (b != NULL && --b->refs == 0)
    free(b);
}

/* The buffer whose data begins at p (p must be a buffer's data pointer). */
static inline sy_buf_t *sy_buf_of(char *p) {
  return (sy_buf_t *)(void *)(p - offsetof(sy_buf_t, data));
}

#endif
