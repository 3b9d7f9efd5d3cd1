/*
 * bodycap.h — the worker's account of request bodies held in memory, and its cap
 * (limits.held_body_bytes).
 *
 * A request whose body is held (rewritten, or small) charges its exchange: the body
 * as it arrives (a declared Content-Length all at once, before the first body byte,
 * so that a body that cannot fit is refused before it is sent), then the request as
 * built for the upstream, which replaces it; each shadow copy charges its leg. A
 * charge is a size_t owned by whoever holds the bytes (sy_req_t.held, a shadow
 * leg's), and is given back when they are freed, on every path. Only new bodies are
 * refused over the cap (503): copies of a body already accepted are charged without
 * a check, or not made (a shadow copy is skipped), so nothing accepted is lost.
 * Single-threaded, like the worker's loop.
 */
#ifndef SY_BODYCAP_H
#define SY_BODYCAP_H

#include <stddef.h>

#include "router/types.h"

/* Charges n more bytes to *held if the worker's total stays within the cap: 0, or
 * -1 (nothing charged; the refusal is counted). */
int sy__bodycap_take(sy_worker_t *w, size_t *held, size_t n);
/* Whether n more bytes would fit under the cap now. */
int sy__bodycap_fits(const sy_worker_t *w, size_t n);
/* Makes *held exactly n, without a check (a copy of what was accepted). */
void sy__bodycap_set(sy_worker_t *w, size_t *held, size_t n);
/* Gives *held back and zeroes it. */
void sy__bodycap_release(sy_worker_t *w, size_t *held);

#endif
