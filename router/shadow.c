/*
 * shadow.c — shadow traffic (see shadow.h): which requests are mirrored, the shadow
 * legs (connect, send, read the response in full), the pair that joins a leg to its
 * primary, the comparison and the `shadow` event with its counters.
 *
 * Why a shadow cannot hurt its primary: a leg has its own upstream connection from
 * the shadow variant's pool and its own response parser; it is started after the
 * primary's leg, in the same loop turn, and everything it does afterwards happens in
 * its own callbacks. The primary never waits for a leg: the pair is how the two
 * meet, and whichever ends last writes the event. The only work a shadow adds to the
 * primary's path is the decision and the copy of the request (both bounded by the
 * buffered body), and, while legs are in flight, a bounded copy of the primary's
 * response body. A dead backend costs a failed connect; a blackholed one costs one
 * connection until timeout_ms; in both cases max_inflight caps what is held, and
 * what does not fit is dropped and counted.
 *
 * Bounds are per worker process: max_inflight counts this worker's legs of the
 * variant; the token budget (usage tokens of completed shadow responses, prompt and
 * completion) is tokens_per_minute / workers per calendar minute of the loop clock;
 * over it, new copies are dropped until the minute rolls. The per-variant state is
 * keyed by experiment and variant id, so it survives a reload while legs of the old
 * config are still in flight.
 */
#include "router/shadow.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "proto/events.h"
#include "proto/keys.h"
#include "router/bodycap.h"
#include "router/events.h"
#include "router/json_scan.h"
#include "router/llm_text.h"
#include "router/upreq.h"
#include "router/runtime.h"
#include "router/upstream.h"
#include "router/upstream_h1.h"
#include "router/worker.h"
#include "stats/store.h"

#define MINUTE_MS 60000

/* A shadow variant's bounds in this worker. */
typedef struct slot_s {
  struct slot_s *next;
  char *exp, *var;
  unsigned inflight; /* legs started and not ended */
  uint64_t minute;   /* the minute (loop ms / 60000) that `tokens` counts */
  uint64_t tokens;   /* usage tokens of shadows completed in that minute */
} slot_t;

struct sy_shadow_state_s {
  sy_shadow_leg_t *running; /* legs in flight (doubly linked), cancelled at stop */
  slot_t *slots;
};

struct sy_shadow_pair_s {
  unsigned refs; /* the primary exchange's, each leg's, sy__shadow_launch's */
  sy_worker_t *w;
  sy_runtime_t *rt;
  size_t exp, variant; /* the primary's experiment and variant */
  char trace_id[SY_TRACE_ID_HEX + 1];
  sy_evctx_t ev;          /* the primary's envelope: ids, tenant, consent, input hash */
  sy_shadow_leg_t *legs;  /* built, not yet launched */
  sy_shadow_leg_t *ended; /* legs that ended before the primary */
  int primary_done;
  int primary_status;
  int primary_ok; /* 2xx and complete: its text can be compared */
  double primary_ms;
  long long primary_tokens;
  sy_llm_capture_t body; /* the primary's de-chunked response body, bounded */
  int text_state;        /* 0: not extracted yet, 1: text, -1: none */
  char *text;
  size_t text_len;
};

struct sy_shadow_leg_s {
  sy_shadow_leg_t *next, *prev; /* the state's running list, then the pair's ended list */
  sy_shadow_pair_t *pair;
  sy_runtime_t *rt;
  size_t variant; /* the shadow variant in the pair's experiment */
  slot_t *slot;
  sy_uppool_t *pool;
  sy_h1_leg_t *h1; /* its upstream exchange (router/http1client.h) while it runs */
  sy_buf_t *out;   /* the request */
  size_t held;     /* its charge to the worker's held bodies (router/bodycap.h) */
  int ended;
  int status;        /* the response's status, 0 if none */
  int complete;      /* the response message ended */
  uint64_t t_start;  /* uv_hrtime() when the leg was built */
  uint64_t deadline; /* loop time (ms) by which the exchange must end */
  double ms;
  sy_usage_scan_t usage;
  sy_llm_capture_t body;
};

static void leg_connect(sy_shadow_leg_t *leg);
static void leg_end(sy_shadow_leg_t *leg, const char *why);

/* ---- the worker's state ------------------------------------------------------------- */

static struct sy_shadow_state_s *state_of(sy_worker_t *w) {
  if (w->shadow == NULL)
    w->shadow = calloc(1, sizeof *w->shadow);
  return w->shadow;
}

static slot_t *slot_of(struct sy_shadow_state_s *st, const char *exp, const char *var) {
  for (slot_t *s = st->slots; s != NULL; s = s->next)
    if (strcmp(s->exp, exp) == 0 && strcmp(s->var, var) == 0)
      return s;
  slot_t *s = calloc(1, sizeof *s);
  if (s == NULL || (s->exp = strdup(exp)) == NULL || (s->var = strdup(var)) == NULL) {
    if (s != NULL)
      free(s->exp);
    free(s);
    return NULL;
  }
  s->next = st->slots;
  st->slots = s;
  return s;
}

/* Rolls the slot's token window to the current minute. */
static void slot_roll(slot_t *s, uint64_t now_ms) {
  if (s->minute != now_ms / MINUTE_MS) {
    s->minute = now_ms / MINUTE_MS;
    s->tokens = 0;
  }
}

/* Whether the variant's token budget of this worker has room this minute. */
static int budget_ok(slot_t *s, const sy_shadow_conf_t *sc, const sy_config_t *cfg,
                     uint64_t now_ms) {
  if (sc->tokens_per_minute == 0)
    return 1;
  uint64_t share = sc->tokens_per_minute / (cfg->workers ? cfg->workers : 1);
  slot_roll(s, now_ms);
  return s->tokens < (share > 0 ? share : 1);
}

/* HINCRBYFLOAT sy:{E}:v:V FIELD delta, if the worker has a journal. */
static void count(sy_worker_t *w, const sy_experiment_conf_t *e, const sy_variant_conf_t *v,
                  const char *field, double delta) {
  if (w->report != NULL)
    w->report->shadow_count(w, e, v, field);
  sy_journal_t *j = w->link != NULL ? sy_stats_journal(w->link, e->id) : NULL;
  if (j == NULL)
    return;
  char key[SY_KEY_MAX];
  if (sy_key_variant(key, sizeof key, e->id, v->id) >= 0)
    sy_journal_incr(j, key, field, delta);
}

/* ---- which requests are mirrored ----------------------------------------------------- */

static int header_is(const sy_head_t *h, const char *name, const char *value) {
  size_t n;
  const char *v = sy_head_get(h, name, &n);
  return v != NULL && strlen(value) == n && strncasecmp(v, value, n) == 0;
}

/* Whether the JSON body is an object with one of the top-level members `keys`. */
static int body_has_key(const char *body, size_t len, char *const *keys, size_t nkeys) {
  sy_json_span_t root, k, v;
  if (nkeys == 0 || body == NULL || sy_json_validate(body, len, &root, NULL) < 0 ||
      sy_json_type(body, root) != SY_JSON_OBJECT)
    return 0;
  sy_json_iter_t it;
  sy_json_iter_init(&it, body, root);
  while (sy_json_next_member(&it, &k, &v))
    for (size_t i = 0; i < nkeys; i++)
      if (sy_json_string_eq(body, k, keys[i]))
        return 1;
  return 0;
}

/* The request must not be mirrored: the client said so (x-switchyard-shadow: off),
 * it is itself a shadow copy (x-switchyard-shadow: 1, which would loop through a
 * second router), it is a HEAD, or it matches one of the experiment's rules. */
static int request_skipped(const sy_req_t *r, const sy_experiment_conf_t *e) {
  const sy_shadow_skip_t *k = &e->shadow_skip;
  if (header_is(&r->head, "x-switchyard-shadow", "off") ||
      header_is(&r->head, "x-switchyard-shadow", "1") || strcmp(r->method, "HEAD") == 0)
    return 1;
  for (size_t i = 0; i < k->nheaders; i++) {
    size_t n;
    const char *v = sy_head_get(&r->head, k->headers[i].name, &n);
    if (v != NULL && (k->headers[i].value == NULL ||
                      (strlen(k->headers[i].value) == n && memcmp(v, k->headers[i].value, n) == 0)))
      return 1;
  }
  return body_has_key(r->body, r->body_len, k->body_keys, k->nbody_keys);
}

/* Variant i of e is a shadow of this request with its probability `fraction`. Under a
 * canary gate only while its stage is shadow (control_state.h): once it takes live
 * traffic, or is rolled back, mirroring it would only spend tokens. */
static int draw(sy_worker_t *w, const sy_req_t *r, const sy_experiment_conf_t *e, size_t i) {
  const sy_shadow_conf_t *sc = &e->variants[i].shadow;
  const sy_ctl_state_t *st = &r->rt->exps[r->exp].ctl;
  if (e->gate.mode == SY_GATE_CANARY && st->version > 0 && i < st->nvariants &&
      st->stage[i] != SY_STAGE_SHADOW)
    return 0;
  return i != r->variant && sc->on && sc->fraction > 0 && sy_rng_uniform(&w->rng) < sc->fraction;
}

void sy__shadow_skip_streamed(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (r->exp < 0 || !r->ev.on)
    return;
  const sy_experiment_conf_t *e = &r->rt->cfg->experiments[r->exp];
  for (size_t i = 0; i < e->nvariants; i++)
    if (draw(c->w, r, e, i))
      count(c->w, e, &e->variants[i], "shadow_skipped", 1);
}

/* ---- pairs ------------------------------------------------------------------------- */

static sy_shadow_pair_t *pair_new(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  sy_shadow_pair_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  p->refs = 1;
  p->w = c->w;
  p->rt = sy__runtime_ref(r->rt);
  p->exp = (size_t)r->exp;
  p->variant = r->variant;
  memcpy(p->trace_id, r->trace.trace_id, sizeof p->trace_id);
  p->ev = r->ev;
  p->primary_tokens = -1;
  sy_llm_capture_init(&p->body, SY_LLM_CAPTURE_MAX);
  return p;
}

static void pair_unref(sy_shadow_pair_t *p) {
  if (p == NULL || --p->refs > 0)
    return;
  sy_llm_capture_free(&p->body);
  free(p->text);
  sy__runtime_unref(p->rt);
  free(p);
}

/* The primary's output text (extracted once, for all its legs); NULL if none. */
static const char *primary_text(sy_shadow_pair_t *p, size_t *len) {
  if (p->text_state == 0)
    p->text_state =
        p->primary_ok && !p->body.truncated &&
                sy_llm_text_extract(p->body.buf, p->body.len, &p->text, &p->text_len) == 0
            ? 1
            : -1;
  *len = p->text_len;
  return p->text_state > 0 ? p->text : NULL;
}

void sy__shadow_primary_body(sy_shadow_pair_t *p, const char *at, size_t n) {
  sy_llm_capture_add(&p->body, at, n);
}

/* ---- building legs ------------------------------------------------------------------ */

static void leg_free(sy_shadow_leg_t *leg) {
  sy__bodycap_release(leg->pair->w, &leg->held);
  sy_buf_unref(leg->out);
  sy_llm_capture_free(&leg->body);
  sy__runtime_unref(leg->rt);
  pair_unref(leg->pair);
  free(leg);
}

/* A leg for shadow variant i of the pair's experiment, with its request built from
 * c->req; NULL if the request cannot be built for it (*bad set: the variant's
 * rewrite refuses the body) or memory ran out. */
static sy_shadow_leg_t *leg_new(sy_conn_t *c, sy_shadow_pair_t *p, size_t i, slot_t *slot,
                                int *bad) {
  sy_req_t *r = &c->req;
  const sy_experiment_conf_t *e = &r->rt->cfg->experiments[r->exp];
  const sy_variant_conf_t *v = &e->variants[i];
  sy_shadow_leg_t *leg = calloc(1, sizeof *leg);
  if (leg == NULL)
    return NULL;
  /* The copy is a sibling span of the same trace. */
  sy_trace_t tr = r->trace;
  sy_random_hex(tr.span_id, SY_SPAN_ID_HEX / 2, &c->w->rng);
  char err[160];
  leg->out = sy__upreq_for_variant(c, v, &tr, 1, err, sizeof err);
  if (leg->out == NULL) {
    *bad = err[0] != '\0';
    free(leg);
    return NULL;
  }
  if (r->body_len > 0)
    sy__bodycap_set(c->w, &leg->held, leg->out->len);
  leg->pair = p;
  p->refs++;
  leg->rt = sy__runtime_ref(r->rt);
  leg->variant = i;
  leg->slot = slot;
  leg->pool = &r->rt->pools[v->upstream];
  leg->t_start = uv_hrtime();
  leg->deadline = uv_now(&c->w->loop) + v->shadow.timeout_ms;
  sy_usage_scan_init(&leg->usage);
  sy_llm_capture_init(&leg->body, SY_LLM_CAPTURE_MAX);
  slot->inflight++;
  return leg;
}

/* Shadow variant i: counted as skipped or dropped, or a leg added to the pair. */
static void consider(sy_conn_t *c, sy_shadow_pair_t **pp, size_t i, int *skip) {
  sy_worker_t *w = c->w;
  sy_req_t *r = &c->req;
  const sy_config_t *cfg = r->rt->cfg;
  const sy_experiment_conf_t *e = &cfg->experiments[r->exp];
  const sy_variant_conf_t *v = &e->variants[i];
  struct sy_shadow_state_s *st = state_of(w);
  slot_t *slot = st != NULL ? slot_of(st, e->id, v->id) : NULL;
  if (*skip < 0)
    *skip = request_skipped(r, e);
  if (*skip) {
    count(w, e, v, "shadow_skipped", 1);
    return;
  }
  if (slot == NULL)
    return; /* out of memory: nothing to count with either */
  if (slot->inflight >= v->shadow.max_inflight) {
    count(w, e, v, "shadow_dropped_inflight", 1);
    return;
  }
  if (!budget_ok(slot, &v->shadow, cfg, uv_now(&w->loop))) {
    count(w, e, v, "shadow_dropped_budget", 1);
    return;
  }
  if (r->body_len > 0 && !sy__bodycap_fits(w, r->body_len + r->head.len)) {
    /* the copy would take the worker's held bodies over limits.held_body_bytes */
    count(w, e, v, "shadow_skipped", 1);
    return;
  }
  if (*pp == NULL && (*pp = pair_new(c)) == NULL)
    return;
  int bad = 0;
  sy_shadow_leg_t *leg = leg_new(c, *pp, i, slot, &bad);
  if (leg == NULL) {
    if (bad) /* e.g. a prompt rewrite on a body that is not a JSON object */
      count(w, e, v, "shadow_skipped", 1);
    return;
  }
  leg->next = (*pp)->legs;
  (*pp)->legs = leg;
}

sy_shadow_pair_t *sy__shadow_prepare(sy_conn_t *c) {
  sy_req_t *r = &c->req;
  if (r->exp < 0 || !r->ev.on || r->shadow != NULL)
    return NULL; /* no experiment, or no journal to record shadows in */
  const sy_experiment_conf_t *e = &r->rt->cfg->experiments[r->exp];
  sy_shadow_pair_t *p = NULL;
  int skip = -1; /* the rules are looked at once, and only if a copy was drawn */
  for (size_t i = 0; i < e->nvariants; i++)
    if (draw(c->w, r, e, i))
      consider(c, &p, i, &skip);
  if (p != NULL && p->legs == NULL) {
    pair_unref(p);
    p = NULL;
  }
  if (p != NULL) {
    p->refs++; /* the primary's */
    r->shadow = p;
  }
  return p;
}

void sy__shadow_launch(sy_shadow_pair_t *p) {
  struct sy_shadow_state_s *st = p->w->shadow;
  sy_shadow_leg_t *leg = p->legs;
  p->legs = NULL;
  while (leg != NULL) {
    sy_shadow_leg_t *next = leg->next;
    leg->prev = NULL;
    leg->next = st->running;
    if (st->running != NULL)
      st->running->prev = leg;
    st->running = leg;
    leg_connect(leg);
    leg = next;
  }
  pair_unref(p);
}

/* ---- the leg's exchange (router/http1client.c) ---------------------------------------- */

static int on_h1_head(sy_h1_leg_t *h1, void *data, int status, const llhttp_t *p) {
  sy_shadow_leg_t *leg = data;
  (void)h1;
  (void)p;
  leg->status = status;
  return 0;
}

static void on_h1_body(sy_h1_leg_t *h1, void *data, sy_buf_t *buf, const char *at, size_t n) {
  sy_shadow_leg_t *leg = data;
  (void)h1;
  (void)buf;
  sy_llm_capture_add(&leg->body, at, n);
  sy_usage_scan_feed(&leg->usage, at, n);
}

static void on_h1_complete(sy_h1_leg_t *h1, void *data) {
  sy_shadow_leg_t *leg = data;
  (void)h1;
  leg->h1 = NULL;
  leg->complete = 1;
  leg_end(leg, NULL);
}

static void on_h1_error(sy_h1_leg_t *h1, void *data, const sy_h1_error_t *e) {
  sy_shadow_leg_t *leg = data;
  (void)h1;
  leg->h1 = NULL;
  switch (e->kind) {
  case SY_H1_ENOCONN:
    leg_end(leg, "cannot open a connection");
    break;
  case SY_H1_ETIMEDOUT:
    leg_end(leg, "timed out");
    break;
  case SY_H1_ECLOSED:
    leg_end(leg, e->uverr == UV_EOF ? "the upstream closed the connection" : uv_strerror(e->uverr));
    break;
  case SY_H1_EPROTO:
    leg_end(leg, e->reason);
    break;
  case SY_H1_ETLS:
  case SY_H1_EPROXY:
    leg_end(leg, e->detail);
    break;
  default:
    leg_end(leg, e->uverr < 0 ? uv_strerror(e->uverr) : "failed");
    break;
  }
}

static const sy_h1_ops_t h1_ops = {
    .on_head = on_h1_head,
    .on_body = on_h1_body,
    .on_complete = on_h1_complete,
    .on_error = on_h1_error,
};

/* The copy goes out on a connection of its own: no retry on another server, no
 * say in the servers' health, a reset when given up on; the deadline bounds it. */
static void leg_connect(sy_shadow_leg_t *leg) {
  sy_h1_opts_t o = {.deadline = leg->deadline, .max_connects = 1, .reset_on_error = 1};
  leg->h1 = sy_h1_leg_new(&h1_ops, leg, &sy__upstream_h1_pool, leg->pool, &o, NULL);
  if (leg->h1 == NULL) {
    leg_end(leg, "cannot open a connection");
    return;
  }
  sy_h1_leg_start(leg->h1, leg->out, SY_H1_BODY_WHOLE); /* may end the leg before it returns */
}

/* ---- the end of a leg: bookkeeping, the event ---------------------------------------- */

/* What the comparison found; lengths are -1 where a text could not be read. */
typedef struct cmp_s {
  long long len, primary_len;
  int compared, exact;
  double similarity;
} cmp_t;

static void compare(sy_shadow_leg_t *leg, int ok, cmp_t *out) {
  size_t plen = 0, slen = 0;
  char *stext = NULL;
  const char *ptext = primary_text(leg->pair, &plen);
  int have = ok && !leg->body.truncated &&
             sy_llm_text_extract(leg->body.buf, leg->body.len, &stext, &slen) == 0;
  out->len = have ? (long long)sy_llm_text_chars(stext, slen) : -1;
  out->primary_len = ptext != NULL ? (long long)sy_llm_text_chars(ptext, plen) : -1;
  out->compared = out->exact = 0;
  out->similarity = 0;
  if (have && ptext != NULL) {
    out->exact = slen == plen && memcmp(stext, ptext, slen) == 0;
    out->similarity = sy_llm_text_similarity(stext, slen, ptext, plen);
    out->compared = out->similarity >= 0;
  }
  free(stext);
}

static void leg_counters(sy_worker_t *w, const sy_experiment_conf_t *e, const sy_variant_conf_t *v,
                         const sy_shadow_leg_t *leg, int error, const cmp_t *cmp) {
  count(w, e, v, "shadow_requests", 1);
  if (error)
    count(w, e, v, "shadow_errors", 1);
  count(w, e, v, "shadow_lat_ms_sum", leg->ms);
  if (leg->usage.prompt_tokens > 0)
    count(w, e, v, "shadow_tokens_in", (double)leg->usage.prompt_tokens);
  if (leg->usage.completion_tokens > 0)
    count(w, e, v, "shadow_tokens_out", (double)leg->usage.completion_tokens);
  if (cmp->compared) {
    count(w, e, v, "shadow_compared", 1);
    if (cmp->exact)
      count(w, e, v, "shadow_exact", 1);
    count(w, e, v, "shadow_sim_sum", cmp->similarity);
  }
}

/* Writes the shadow event of a leg whose primary is done, and its counters. */
static void leg_record(sy_shadow_leg_t *leg) {
  sy_shadow_pair_t *p = leg->pair;
  sy_worker_t *w = p->w;
  const sy_experiment_conf_t *e = &p->rt->cfg->experiments[p->exp];
  sy_journal_t *j = w->link != NULL ? sy_stats_journal(w->link, e->id) : NULL;
  if (j == NULL)
    return;
  const sy_variant_conf_t *v = &e->variants[leg->variant];
  int ok = leg->complete && leg->status >= 200 && leg->status < 300;
  int error = !leg->complete || leg->status == 0 || leg->status >= 500;
  cmp_t cmp;
  compare(leg, ok, &cmp);
  sy_stats_t *s = w->link;
  sy_ev5_t *b = &s->ev5;
  sy_journal_ref(j, v->ref, v->ref_def);
  sy_ev5_begin(b, SY_EVT_SHADOW, NULL, s->router_instance, sy_stats_now_ms(),
               v->ref);
  sy__events_envelope(b, p->trace_id, &p->ev); /* as the primary's request event has it */
  sy_ev5_real(b, SY_EF_propensity, v->shadow.fraction); /* P(mirrored to v) */
  sy_ev5_cstr(b, SY_EF_model_version, leg->usage.model);
  sy_ev5_cstr(b, SY_EF_input_hash, p->ev.input);
  sy_ev5_cstr(b, SY_EF_output_id, leg->usage.id);
  sy_ev5_int(b, SY_EF_status, leg->status);
  if (leg->usage.completion_tokens >= 0)
    sy_ev5_int(b, SY_EF_output_tokens, leg->usage.completion_tokens);
  if (leg->usage.prompt_tokens >= 0)
    sy_ev5_int(b, SY_EF_input_tokens, leg->usage.prompt_tokens);
  sy_ev5_real(b, SY_EF_server_latency_ms, leg->ms);
  sy_ev5_cstr(b, SY_EF_primary_variant, e->variants[p->variant].id);
  sy_ev5_int(b, SY_EF_primary_status, p->primary_status);
  sy_ev5_real(b, SY_EF_primary_latency_ms, p->primary_ms);
  if (p->primary_tokens >= 0)
    sy_ev5_int(b, SY_EF_primary_output_tokens, p->primary_tokens);
  if (cmp.len >= 0)
    sy_ev5_int(b, SY_EF_output_length, cmp.len);
  if (cmp.primary_len >= 0)
    sy_ev5_int(b, SY_EF_primary_output_length, cmp.primary_len);
  if (cmp.compared) {
    sy_ev5_bool(b, SY_EF_exact_match, cmp.exact);
    sy_ev5_real(b, SY_EF_similarity, cmp.similarity);
  }
  if (!b->oom)
    sy_journal_event5(j, b->p, b->len);
  leg_counters(w, e, v, leg, error, &cmp);
}

static void running_unlink(sy_shadow_leg_t *leg) {
  struct sy_shadow_state_s *st = leg->pair->w->shadow;
  if (leg->prev != NULL)
    leg->prev->next = leg->next;
  else if (st->running == leg)
    st->running = leg->next;
  if (leg->next != NULL)
    leg->next->prev = leg->prev;
  leg->next = leg->prev = NULL;
}

/* The leg is over (complete, failed, timed out or cancelled): its connection goes
 * back to the pool if `reusable`, else is closed; its event is written now if the
 * primary is done, else when it is. */
static void leg_end(sy_shadow_leg_t *leg, const char *why) {
  if (leg->ended)
    return;
  if (leg->h1 != NULL) { /* cancelled: its connection is reset */
    sy_h1_leg_cancel(leg->h1);
    leg->h1 = NULL;
  }
  if (why != NULL)
    sy_log_debug("shadow %s to %s: %s", leg->pair->trace_id, leg->pool->conf->name, why);
  leg->ended = 1;
  leg->ms = (double)(uv_hrtime() - leg->t_start) / 1e6;
  leg->slot->inflight--;
  if (leg->complete) {
    long long t = (leg->usage.prompt_tokens > 0 ? leg->usage.prompt_tokens : 0) +
                  (leg->usage.completion_tokens > 0 ? leg->usage.completion_tokens : 0);
    slot_roll(leg->slot, uv_now(&leg->pair->w->loop));
    leg->slot->tokens += (uint64_t)t;
  }
  running_unlink(leg);
  sy_shadow_pair_t *p = leg->pair;
  if (p->primary_done) {
    leg_record(leg);
    leg_free(leg);
    return;
  }
  leg->next = p->ended;
  p->ended = leg;
}

void sy__shadow_primary_done(sy_worker_t *w, sy_req_t *r, const sy_exchange_end_t *end) {
  sy_shadow_pair_t *p = r->shadow;
  r->shadow = NULL;
  if (p == NULL)
    return;
  p->primary_done = 1;
  p->primary_status = end->logged;
  p->primary_ok = r->ev.failed == 0 && r->status >= 200 && r->status < 300;
  p->primary_ms = end->ms;
  p->primary_tokens = r->ev.usage.completion_tokens;
  while (p->ended != NULL) {
    sy_shadow_leg_t *leg = p->ended;
    p->ended = leg->next;
    leg->next = NULL;
    leg_record(leg);
    leg_free(leg); /* may drop the pair's last leg reference, never the primary's */
  }
  pair_unref(p);
}

void sy__shadow_stop(sy_worker_t *w) {
  struct sy_shadow_state_s *st = w->shadow;
  if (st == NULL)
    return;
  while (st->running != NULL)
    leg_end(st->running, "cancelled: the worker is stopping");
  while (st->slots != NULL) {
    slot_t *s = st->slots;
    st->slots = s->next;
    free(s->exp);
    free(s->var);
    free(s);
  }
  free(st);
  w->shadow = NULL;
}
