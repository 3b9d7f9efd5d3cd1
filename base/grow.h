/*
 * grow.h — the growth rule of the project's byte buffers (the journal's, the event
 * builder's, the request head's, the warehouse's JSON): double from a first size until
 * the bytes wanted fit, one realloc.
 */
#ifndef SY_GROW_H
#define SY_GROW_H

#include <stddef.h>
#include <stdlib.h>

/* Makes the buffer *p of *cap bytes hold at least `need` bytes, doubling from `first`
 * (from *cap when it is not 0). Returns 0, or -1 when out of memory (*p and *cap are
 * then unchanged). */
static inline int sy_grow(char **p, size_t *cap, size_t need, size_t first) {
  if (need <= *cap)
    return 0;
  size_t c = *cap ? *cap : first;
  while (c < need)
    c *= 2;
  char *np = realloc(*p, c);
  if (np == NULL)
    return -1;
  *p = np;
  *cap = c;
  return 0;
}

#endif
