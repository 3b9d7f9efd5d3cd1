/*
 * bodycap.c — the worker's account of held request bodies (see bodycap.h).
 *
 * The total and the refusals are published through w->held_pub (two words of the
 * metrics table shared by the workers, wired by server.c) at every change, so that
 * a scrape served by any worker sees this one's current figures.
 */
#include "router/bodycap.h"

#include "router/runtime.h"
#include "router/worker.h"

static void publish(sy_worker_t *w) {
  if (w->held_pub != NULL)
    w->held_pub[0] = w->held_body_bytes;
}

static size_t cap_of(const sy_worker_t *w) {
  return w->rt->cfg->limits.held_body_bytes;
}

int sy__bodycap_fits(const sy_worker_t *w, size_t n) {
  size_t cap = cap_of(w);
  return w->held_body_bytes <= cap && n <= cap - w->held_body_bytes;
}

int sy__bodycap_take(sy_worker_t *w, size_t *held, size_t n) {
  if (!sy__bodycap_fits(w, n)) {
    w->held_body_refused++;
    if (w->held_pub != NULL) /* added to: a restarted worker's slot keeps its counters */
      w->held_pub[1]++;
    return -1;
  }
  *held += n;
  w->held_body_bytes += n;
  publish(w);
  return 0;
}

void sy__bodycap_set(sy_worker_t *w, size_t *held, size_t n) {
  w->held_body_bytes = w->held_body_bytes - *held + n;
  *held = n;
  publish(w);
}

void sy__bodycap_release(sy_worker_t *w, size_t *held) {
  sy__bodycap_set(w, held, 0);
}
