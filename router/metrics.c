/*
 * metrics.c — the shared counters table and its Prometheus exposition (metrics.h).
 */
#include "router/metrics.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Upper bound of bucket i < SY_LAT_BUCKETS - 1 in seconds (proto/latency.h's are in ms; the
 * last bucket is +Inf). The division is exact to the double: 0.001 is 1 / 1000. */
static double bound_s(size_t i) {
  return sy_lat_bounds[i] / 1000;
}

int sy_metrics_create(sy_metrics_t *m, unsigned n) {
  size_t size = (size_t)n * sizeof(sy_mslot_t);
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return -1;
  m->nslots = n;
  m->slots = p;
  return 0;
}

void sy_metrics_destroy(sy_metrics_t *m) {
  if (m->slots != NULL)
    munmap(m->slots, (size_t)m->nslots * sizeof(sy_mslot_t));
  m->slots = NULL;
  m->nslots = 0;
}

sy_mslot_t *sy_metrics_attach(sy_metrics_t *m, unsigned i) {
  if (m->slots == NULL || i >= m->nslots)
    return NULL;
  sy_mslot_t *s = &m->slots[i];
  s->spooled_base = s->events_spooled;
  s->replayed_base = s->events_replayed;
  s->dropped_base = s->events_dropped;
  s->switches_base = s->redis_switches;
  s->wait_short_base = s->redis_wait_short;
  s->events_queued = 0;
  s->redis_up = 0;
  s->held_body[0] = 0;
  s->pid = (uint64_t)getpid();
  return s;
}

sy_mentry_t *sy_metrics_entry(sy_mslot_t *s, const char *exp, const char *var) {
  if (s == NULL)
    return NULL;
  for (uint64_t i = 0; i < s->nentries; i++)
    if (strcmp(s->e[i].exp, exp) == 0 && strcmp(s->e[i].var, var) == 0)
      return &s->e[i];
  if (s->nentries >= SY_M_ENTRIES)
    return NULL;
  sy_mentry_t *e = &s->e[s->nentries];
  snprintf(e->var, sizeof e->var, "%s", var);
  snprintf(e->exp, sizeof e->exp, "%s", exp);
  /* readers walk [0, nentries): publish the entry only once its names are written */
  __atomic_store_n(&s->nentries, s->nentries + 1, __ATOMIC_RELEASE);
  return e;
}

sy_mupstream_t *sy_metrics_upstream(sy_mslot_t *s, const char *name) {
  if (s == NULL)
    return NULL;
  for (uint64_t i = 0; i < s->nupstreams; i++)
    if (strcmp(s->up[i].name, name) == 0)
      return &s->up[i];
  if (s->nupstreams >= SY_M_UPSTREAMS)
    return NULL;
  sy_mupstream_t *u = &s->up[s->nupstreams];
  snprintf(u->name, sizeof u->name, "%s", name);
  /* published once its name is written, as sy_metrics_entry does */
  __atomic_store_n(&s->nupstreams, s->nupstreams + 1, __ATOMIC_RELEASE);
  return u;
}

static size_t bucket(double s) {
  for (size_t i = 0; i < SY_LAT_BUCKETS - 1; i++)
    if (s <= bound_s(i))
      return i;
  return SY_LAT_BUCKETS - 1;
}

void sy_metrics_response(sy_mentry_t *e, int status, int error, double dur_s, double ttfb_s) {
  if (e == NULL)
    return;
  int cls = status <= 0 ? 4 : status < 300 ? 0 : status < 400 ? 1 : status < 500 ? 2 : 3;
  e->code[cls]++;
  e->errors += error != 0;
  if (dur_s < 0)
    dur_s = 0;
  e->dur[bucket(dur_s)]++;
  e->dur_sum_us += (uint64_t)(dur_s * 1e6);
  if (ttfb_s >= 0) {
    e->ttfb[bucket(ttfb_s)]++;
    e->ttfb_sum_us += (uint64_t)(ttfb_s * 1e6);
  }
}

/* ---- exposition ---- */

void sy_mtext_printf(sy_mtext_t *t, const char *fmt, ...) {
  if (t->oom)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->oom = 1;
      return;
    }
    if (t->p != NULL && t->len + (size_t)n < t->cap) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = t->cap ? t->cap * 2 : 16384;
    while (cap < t->len + (size_t)n + 1)
      cap *= 2;
    char *p = realloc(t->p, cap);
    if (p == NULL) {
      t->oom = 1;
      return;
    }
    t->p = p;
    t->cap = cap;
  }
}

/* The sum of one (exp, var) over every slot. */
static void sum_entry(const sy_metrics_t *m, const char *exp, const char *var, sy_mentry_t *out) {
  memset(out, 0, sizeof(*out));
  for (unsigned k = 0; k < m->nslots; k++) {
    const sy_mslot_t *s = &m->slots[k];
    uint64_t n = __atomic_load_n(&s->nentries, __ATOMIC_ACQUIRE);
    for (uint64_t i = 0; i < n && i < SY_M_ENTRIES; i++) {
      const sy_mentry_t *e = &s->e[i];
      if (strcmp(e->exp, exp) != 0 || strcmp(e->var, var) != 0)
        continue;
      for (int c = 0; c < 5; c++)
        out->code[c] += e->code[c];
      out->errors += e->errors;
      out->retried += e->retried;
      out->fallbacks += e->fallbacks;
      for (int b = 0; b < SY_LAT_BUCKETS; b++) {
        out->dur[b] += e->dur[b];
        out->ttfb[b] += e->ttfb[b];
      }
      out->dur_sum_us += e->dur_sum_us;
      out->ttfb_sum_us += e->ttfb_sum_us;
      out->shadow_sent += e->shadow_sent;
      out->shadow_errors += e->shadow_errors;
      out->shadow_dropped_inflight += e->shadow_dropped_inflight;
      out->shadow_dropped_budget += e->shadow_dropped_budget;
      out->shadow_skipped += e->shadow_skipped;
    }
  }
}

/* Label values are experiment and variant ids ([A-Za-z0-9_.-]): nothing to escape. */
static void histogram(sy_mtext_t *t, const char *name, const char *labels, const uint64_t *b,
                      uint64_t sum_us) {
  uint64_t cum = 0;
  for (int i = 0; i < SY_LAT_BUCKETS; i++) {
    cum += b[i];
    if (i < SY_LAT_BUCKETS - 1)
      sy_mtext_printf(t, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, bound_s((size_t)i),
                      (unsigned long long)cum);
    else
      sy_mtext_printf(t, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
  }
  sy_mtext_printf(t, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, (double)sum_us / 1e6,
                  name, labels, (unsigned long long)cum);
}

/* Calls fn for each distinct (exp, var) of any slot, in first-seen order. */
typedef struct pair_s {
  const char *exp, *var;
} pair_t;

static size_t distinct(const sy_metrics_t *m, pair_t *out, size_t cap) {
  size_t n = 0;
  for (unsigned k = 0; k < m->nslots; k++) {
    const sy_mslot_t *s = &m->slots[k];
    uint64_t ne = __atomic_load_n(&s->nentries, __ATOMIC_ACQUIRE);
    for (uint64_t i = 0; i < ne && i < SY_M_ENTRIES; i++) {
      size_t j = 0;
      while (j < n &&
             !(strcmp(out[j].exp, s->e[i].exp) == 0 && strcmp(out[j].var, s->e[i].var) == 0))
        j++;
      if (j == n && n < cap)
        out[n++] = (pair_t){s->e[i].exp, s->e[i].var};
    }
  }
  return n;
}

/* A counter family: one uint64_t field (at offset off) of each (exp, var) sum. */
static void counter_family(sy_mtext_t *t, const char *name, const char *help, const pair_t *pairs,
                           const sy_mentry_t *sums, size_t n, size_t off) {
  sy_mtext_printf(t, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
  for (size_t i = 0; i < n; i++)
    sy_mtext_printf(t, "%s{experiment=\"%s\",variant=\"%s\"} %llu\n", name, pairs[i].exp,
                    pairs[i].var,
                    (unsigned long long)*(const uint64_t *)((const char *)&sums[i] + off));
}

/* A histogram family: the buckets at offset boff and the sum (µs) at soff of each sum. */
static void histogram_family(sy_mtext_t *t, const char *name, const char *help, const pair_t *pairs,
                             const sy_mentry_t *sums, size_t n, size_t boff, size_t soff) {
  char labels[200];
  sy_mtext_printf(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  for (size_t i = 0; i < n; i++) {
    const char *e = (const char *)&sums[i];
    snprintf(labels, sizeof labels, "experiment=\"%s\",variant=\"%s\"", pairs[i].exp, pairs[i].var);
    histogram(t, name, labels, (const uint64_t *)(e + boff), *(const uint64_t *)(e + soff));
  }
}

static void per_variant(const sy_metrics_t *m, sy_mtext_t *t) {
  static const char *const codes[5] = {"2xx", "3xx", "4xx", "5xx", "none"};
  pair_t *pairs = calloc(SY_M_ENTRIES, sizeof *pairs);
  sy_mentry_t *sums = calloc(SY_M_ENTRIES, sizeof *sums);
  if (pairs == NULL || sums == NULL) {
    t->oom = 1;
    free(pairs);
    free(sums);
    return;
  }
  size_t n = distinct(m, pairs, SY_M_ENTRIES);
  for (size_t i = 0; i < n; i++)
    sum_entry(m, pairs[i].exp, pairs[i].var, &sums[i]);
  sy_mtext_printf(t, "# HELP switchyard_requests_total Responses to the experiment's requests, by "
                     "status class (none: cut before a status).\n"
                     "# TYPE switchyard_requests_total counter\n");
  for (size_t i = 0; i < n; i++)
    for (int c = 0; c < 5; c++)
      sy_mtext_printf(t,
                      "switchyard_requests_total{experiment=\"%s\",variant=\"%s\",code=\"%s\"} "
                      "%llu\n",
                      pairs[i].exp, pairs[i].var, codes[c], (unsigned long long)sums[i].code[c]);
  counter_family(t, "switchyard_request_errors_total", "Responses with status >= 500 or cut off.",
                 pairs, sums, n, offsetof(sy_mentry_t, errors));
  counter_family(t, "switchyard_retried_total",
                 "Responses that took more than one upstream try (retries, fallback).", pairs,
                 sums, n, offsetof(sy_mentry_t, retried));
  counter_family(t, "switchyard_fallbacks_total",
                 "Responses the variant's fallback upstream gave (a guardrail reading).", pairs,
                 sums, n, offsetof(sy_mentry_t, fallbacks));
  histogram_family(t, "switchyard_request_duration_seconds",
                   "First request byte to last response byte.", pairs, sums, n,
                   offsetof(sy_mentry_t, dur), offsetof(sy_mentry_t, dur_sum_us));
  histogram_family(t, "switchyard_ttfb_seconds",
                   "First request byte to the upstream's first response byte.", pairs, sums, n,
                   offsetof(sy_mentry_t, ttfb), offsetof(sy_mentry_t, ttfb_sum_us));
  counter_family(t, "switchyard_shadow_sent_total", "Shadow copies sent to the variant.", pairs,
                 sums, n, offsetof(sy_mentry_t, shadow_sent));
  counter_family(t, "switchyard_shadow_errors_total",
                 "Shadow copies that failed (status >= 500, cut off or timed out).", pairs, sums, n,
                 offsetof(sy_mentry_t, shadow_errors));
  sy_mtext_printf(t, "# HELP switchyard_shadow_dropped_total Shadow copies not sent, by reason.\n"
                     "# TYPE switchyard_shadow_dropped_total counter\n");
  for (size_t i = 0; i < n; i++) {
    const uint64_t v[3] = {sums[i].shadow_dropped_inflight, sums[i].shadow_dropped_budget,
                           sums[i].shadow_skipped};
    static const char *const why[3] = {"inflight", "budget", "skipped"};
    for (int r = 0; r < 3; r++)
      sy_mtext_printf(t,
                      "switchyard_shadow_dropped_total{experiment=\"%s\",variant=\"%s\","
                      "reason=\"%s\"} %llu\n",
                      pairs[i].exp, pairs[i].var, why[r], (unsigned long long)v[r]);
  }
  free(pairs);
  free(sums);
}

static void per_process(const sy_metrics_t *m, sy_mtext_t *t) {
  uint64_t q = 0, sp = 0, rp = 0, dr = 0, up = 0, workers = 0, down_ms = 0, held = 0, refused = 0;
  uint64_t ltls = 0, switches = 0, wshort = 0;
  for (unsigned k = 0; k < m->nslots; k++) {
    const sy_mslot_t *s = &m->slots[k];
    if (s->pid == 0)
      continue;
    workers++;
    q += s->events_queued;
    sp += s->events_spooled;
    rp += s->events_replayed;
    dr += s->events_dropped;
    up += s->redis_up != 0;
    if (s->redis_down_ms > down_ms)
      down_ms = s->redis_down_ms;
    held += s->held_body[0];
    refused += s->held_body[1];
    ltls += s->listener_tls_errors;
    switches += s->redis_switches;
    wshort += s->redis_wait_short;
  }
  sy_mtext_printf(t,
                  "# HELP switchyard_events_queued Events waiting in memory for Redis.\n"
                  "# TYPE switchyard_events_queued gauge\nswitchyard_events_queued %llu\n"
                  "# HELP switchyard_events_spooled_total Events written to the spool file.\n"
                  "# TYPE switchyard_events_spooled_total counter\n"
                  "switchyard_events_spooled_total %llu\n"
                  "# HELP switchyard_events_replayed_total Spooled events Redis acknowledged.\n"
                  "# TYPE switchyard_events_replayed_total counter\n"
                  "switchyard_events_replayed_total %llu\n"
                  "# HELP switchyard_events_dropped_total Events lost (spool full or unwritable).\n"
                  "# TYPE switchyard_events_dropped_total counter\n"
                  "switchyard_events_dropped_total %llu\n"
                  "# HELP switchyard_redis_up 1 if every worker's Redis connection is up.\n"
                  "# TYPE switchyard_redis_up gauge\nswitchyard_redis_up %d\n"
                  "# HELP switchyard_redis_down_seconds How long the longest current Redis "
                  "outage among the workers has lasted (0: every link is up).\n"
                  "# TYPE switchyard_redis_down_seconds gauge\n"
                  "switchyard_redis_down_seconds %.3f\n"
                  "# HELP switchyard_workers Worker processes running.\n"
                  "# TYPE switchyard_workers gauge\nswitchyard_workers %llu\n",
                  (unsigned long long)q, (unsigned long long)sp, (unsigned long long)rp,
                  (unsigned long long)dr, workers > 0 && up == workers, (double)down_ms / 1000.0,
                  (unsigned long long)workers);
  sy_mtext_printf(t,
                  "# HELP switchyard_held_body_bytes Request bodies held in memory now "
                  "(limits.held_body_bytes caps each worker's).\n"
                  "# TYPE switchyard_held_body_bytes gauge\nswitchyard_held_body_bytes %llu\n"
                  "# HELP switchyard_held_body_refused_total Requests refused with 503: their "
                  "body would have taken a worker over limits.held_body_bytes.\n"
                  "# TYPE switchyard_held_body_refused_total counter\n"
                  "switchyard_held_body_refused_total %llu\n"
                  "# HELP switchyard_listener_tls_errors_total Client connections to a TLS "
                  "listener closed for a failed or timed-out handshake (plain HTTP included).\n"
                  "# TYPE switchyard_listener_tls_errors_total counter\n"
                  "switchyard_listener_tls_errors_total %llu\n"
                  "# HELP switchyard_redis_master_switches_total Fail-overs the workers followed "
                  "(Redis Sentinel: the master moved).\n"
                  "# TYPE switchyard_redis_master_switches_total counter\n"
                  "switchyard_redis_master_switches_total %llu\n"
                  "# HELP switchyard_redis_wait_short_total WAITs after event batches that fewer "
                  "replicas than redis.wait_replicas acknowledged in time.\n"
                  "# TYPE switchyard_redis_wait_short_total counter\n"
                  "switchyard_redis_wait_short_total %llu\n",
                  (unsigned long long)held, (unsigned long long)refused,
                  (unsigned long long)ltls, (unsigned long long)switches,
                  (unsigned long long)wshort);
}

/* The per-upstream TLS counters summed over the slots. Label values are upstream
 * names ([A-Za-z0-9_.-]): nothing to escape. */
static void per_upstream(const sy_metrics_t *m, sy_mtext_t *t) {
  static const struct {
    const char *name, *help;
    size_t off;
  } fams[] = {
      {"switchyard_upstream_tls_handshakes_total", "TLS handshakes completed with the upstream.",
       offsetof(sy_mupstream_t, tls_handshakes)},
      {"switchyard_upstream_tls_resumed_total", "TLS handshakes that resumed a session.",
       offsetof(sy_mupstream_t, tls_resumed)},
      {"switchyard_upstream_tls_errors_total",
       "TLS failures: handshakes refused or stalled, TLS errors on open connections.",
       offsetof(sy_mupstream_t, tls_errors)},
  };
  sy_mupstream_t sums[SY_M_UPSTREAMS];
  size_t n = 0;
  for (unsigned k = 0; k < m->nslots; k++) {
    const sy_mslot_t *s = &m->slots[k];
    uint64_t nu = __atomic_load_n(&s->nupstreams, __ATOMIC_ACQUIRE);
    for (uint64_t i = 0; i < nu && i < SY_M_UPSTREAMS; i++) {
      size_t j = 0;
      while (j < n && strcmp(sums[j].name, s->up[i].name) != 0)
        j++;
      if (j == n && n == SY_M_UPSTREAMS)
        continue;
      if (j == n) {
        memset(&sums[n], 0, sizeof sums[n]);
        memcpy(sums[n].name, s->up[i].name, sizeof sums[n].name);
        n++;
      }
      sums[j].tls_handshakes += s->up[i].tls_handshakes;
      sums[j].tls_resumed += s->up[i].tls_resumed;
      sums[j].tls_errors += s->up[i].tls_errors;
    }
  }
  for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
    sy_mtext_printf(t, "# HELP %s %s\n# TYPE %s counter\n", fams[f].name, fams[f].help,
                    fams[f].name);
    for (size_t i = 0; i < n; i++)
      sy_mtext_printf(
          t, "%s{upstream=\"%s\"} %llu\n", fams[f].name, sums[i].name,
          (unsigned long long)*(const uint64_t *)((const char *)&sums[i] + fams[f].off));
  }
}

void sy_metrics_render(const sy_metrics_t *m, sy_mtext_t *t) {
  if (m->slots == NULL)
    return;
  per_variant(m, t);
  per_process(m, t);
  per_upstream(m, t);
}
