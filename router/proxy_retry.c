/*
 * proxy_retry.c — retries and the fallback of an exchange (proxy_retry.h): where a
 * failed try goes next, the wait before it, the move to the variant's fallback
 * upstream, and the pool counts the retry budget reads. The rules are
 * router/retry.h's; proxy.c asks and restarts the leg.
 */
#include "router/proxy_retry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "router/bodycap.h"
#include "router/exchange.h"
#include "router/retry.h"
#include "router/runtime.h"
#include "router/upreq.h"
#include "router/upstream.h"
#include "router/worker.h"

static const sy_variant_conf_t *variant_of(const sy_req_t *r) {
  return r->exp >= 0 ? &r->rt->cfg->experiments[r->exp].variants[r->variant] : NULL;
}

struct sy_retry_wait_s {
  uv_timer_t timer;
  sy_conn_t *c; /* NULL once the exchange went away */
  void (*restart)(sy_conn_t *c);
};

static void wait_closed(uv_handle_t *h) { free(h->data); }

/* Forgets a retry waiting for its backoff (the exchange ends or the client left). */
void sy__retry_drop(sy_req_t *r) {
  struct sy_retry_wait_s *wt = r->wait;
  if (wt == NULL)
    return;
  r->wait = NULL;
  wt->c = NULL;
  uv_timer_stop(&wt->timer);
  uv_close((uv_handle_t *)&wt->timer, wait_closed);
}

static void on_retry_due(uv_timer_t *t) {
  struct sy_retry_wait_s *wt = t->data;
  sy_conn_t *c = wt->c;
  void (*restart)(sy_conn_t *c) = wt->restart;
  if (c != NULL) {
    c->req.wait = NULL;
    wt->c = NULL;
  }
  uv_close((uv_handle_t *)t, wait_closed);
  if (c != NULL)
    restart(c);
}

/* Leaves the pool's counts (the exchange ends, or moves to the fallback). */
void sy__retry_uncount(sy_req_t *r) {
  if (!r->counted || r->up == NULL)
    return;
  r->counted = 0;
  r->up->active--;
  if (r->retrying)
    r->up->retrying--;
}

/* Whether the pool has a server that has not answered this request. */
static int has_unanswered(const sy_req_t *r) {
  for (size_t i = 0; i < r->up->nservers; i++) {
    const void *s = &r->up->servers[i];
    size_t j = 0;
    while (j < r->nanswered && r->answered[j] != s)
      j++;
    if (j == r->nanswered)
      return 1;
  }
  return 0;
}

/* Where a failed try goes next: `why` is an SY_RETRY_* bit, or 0 for an answer with
 * `status` from server `server`; retry_after_ms is the answer's Retry-After (-1:
 * none). Only a whole, kept request before any byte went to the client. */
int sy__retry_target(sy_conn_t *c, unsigned why, int status, const void *server,
                        int64_t retry_after_ms) {
  sy_req_t *r = &c->req;
  if (r->stream_body || r->rstate == SY_RS_BODY || r->up == NULL ||
      r->tries >= SY_RETRY_MAX_TRIES)
    return SY_TRY_NONE;
  const sy_retry_conf_t *rc = &r->up->conf->retry;
  if (why != 0 ? (rc->on & why) == 0 : !sy_retry_status_listed(rc, status))
    return SY_TRY_NONE;
  if (!r->retrying && !sy_retry_budget_ok(rc, r->up->active, r->up->retrying)) {
    sy_log_debug("retry budget of upstream %s spent (%u of %u requests retrying)",
                 r->up->conf->name, r->up->retrying, r->up->active);
    return SY_TRY_NONE;
  }
  int here = r->tries_here < rc->attempts &&
             (retry_after_ms < 0 || (uint64_t)retry_after_ms <= rc->retry_after_max_ms);
  if (here && server != NULL) { /* an answer: another server, never the same one */
    size_t n = r->nanswered;
    if (n < SY_RETRY_MAX_TRIES)
      r->answered[r->nanswered++] = server;
    here = n < SY_RETRY_MAX_TRIES && has_unanswered(r);
    r->nanswered = n; /* recorded for good by retry_go */
  }
  if (here)
    return SY_TRY_HERE;
  const sy_variant_conf_t *v = variant_of(r);
  return v != NULL && v->has_fallback && !r->on_fallback ? SY_TRY_FALLBACK : SY_TRY_NONE;
}

/* Records the last try's result when the request was retried (events list them). */
void sy__retry_note(sy_req_t *r, const char *result) {
  if (r->tries >= 1 && r->tries - 1 < SY_RETRY_MAX_TRIES)
    snprintf(r->tried[r->tries - 1], sizeof r->tried[0], "%s", result);
}

/* Moves the exchange to the variant's fallback upstream: its pool, its request. */
static int to_fallback(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  const sy_variant_conf_t *v = variant_of(r);
  sy_variant_conf_t fv = *v;
  fv.upstream = v->fallback;
  if (v->fallback_model != NULL)
    fv.model = v->fallback_model;
  /* The client's body, or (freed once the primary request was built: bodycap.h) the
   * body that request carries, rewritten for the primary: the fallback's rewrite sets
   * the same fields again, to its own values. */
  const char *body = r->body;
  size_t body_len = r->body_len;
  if (body == NULL && r->out != NULL) {
    const char *end = memmem(r->out->data, r->out->len, "\r\n\r\n", 4);
    if (end == NULL)
      return -1;
    body = end + 4;
    body_len = r->out->len - (size_t)(body - r->out->data);
  }
  char err[160];
  sy_buf_t *out = sy__upreq_for_body(c, &fv, &r->trace, 0, body, body_len, err, sizeof err);
  if (out == NULL)
    return -1;
  if (r->held > 0)
    sy__bodycap_set(c->w, &r->held, out->len);
  int retrying = r->retrying;
  sy__retry_uncount(r);
  sy_buf_unref(r->out);
  r->out = out;
  r->up = &r->rt->pools[v->fallback];
  r->up->active++;
  r->counted = 1;
  r->retrying = retrying;
  if (r->retrying)
    r->up->retrying++;
  r->on_fallback = 1;
  r->tries_here = 0;
  r->nanswered = 0;
  return 0;
}

/* Records try's result and starts the retry `target` after its wait. Returns 0, or
 * -1 when it cannot (the caller fails the exchange as it would have). */
int sy__retry_go(sy_conn_t *c, int target, const char *result, const void *server,
                 int64_t retry_after_ms, void (*restart)(sy_conn_t *c)) {
  sy_req_t *r = &c->req;
  sy__retry_note(r, result);
  if (target == SY_TRY_HERE && server != NULL && r->nanswered < SY_RETRY_MAX_TRIES)
    r->answered[r->nanswered++] = server;
  if (!r->retrying) {
    r->retrying = 1;
    r->up->retrying++;
  }
  const sy_retry_conf_t *rc = &r->up->conf->retry;
  uint64_t ms = sy_retry_backoff_ms(rc, r->tries, sy_rng_uniform(&c->w->rng));
  if (target == SY_TRY_HERE && retry_after_ms > 0 && (uint64_t)retry_after_ms > ms)
    ms = (uint64_t)retry_after_ms;
  if (target == SY_TRY_FALLBACK && to_fallback(c) < 0)
    return -1;
  struct sy_retry_wait_s *wt = calloc(1, sizeof *wt);
  if (wt == NULL)
    return -1;
  uv_timer_init(&c->w->loop, &wt->timer);
  wt->timer.data = wt;
  wt->c = c;
  wt->restart = restart;
  r->wait = wt;
  r->rstate = SY_RS_CONNECTING;
  uv_timer_start(&wt->timer, on_retry_due, ms, 0);
  return 0;
}

