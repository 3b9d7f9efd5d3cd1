/*
 * config_gate.c — an experiment's `gate:` block: how its candidates are judged
 * against the control (router/gate_run.c runs it, policies/gate.h has the tests).
 *
 *   gate:
 *     mode: canary            # canary (policy split or fixed) | bandit (thompson)
 *     alpha: 0.05             # outcome test level (always-valid)
 *     min_samples: 100        # outcomes per arm before any decision
 *     ramp: [1, 5, 25, 50]    # canary shares of each candidate, percent; with k
 *                             # candidates a step is capped at 100/(k+1) so the
 *                             # control never has less traffic than a candidate
 *     step_min: 60s           # least time on a step ...
 *     step_min_requests: 100  # ... and least candidate requests, before the next
 *     interval: 5s            # how often the decider looks
 *     max_stale: 5m           # older statistics halt decisions
 *     shadow_min_requests: 100
 *     guardrails: {latency_p95_ratio: 1.2, error_rate_delta: 0.02, tokens_ratio: 1.5,
 *                  alpha: 0.05}
 *     srm_alpha: 0.001
 *     promote_share: 0.9      # of alpha, spent on promotions (the rest on roll backs)
 *     outcome_range: [0, 1]   # bandit: the outcome's range (required when continuous);
 *                             # the bandit gate also needs thompson.floor > 0
 *
 * Without a gate: block nothing decides on its own; operators still promote, roll
 * back and pause from the command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/config_gate.h"
#include "router/config_util.h"

#define MAX_DURATION_MS (7LL * 86400 * 1000)

void sy__cfg_gate_defaults(sy_gate_conf_t *g) {
  static const double ramp[] = {1, 5, 25, 50};
  memset(g, 0, sizeof(*g));
  g->alpha = 0.05;
  g->min_samples = 100;
  memcpy(g->ramp, ramp, sizeof ramp);
  g->nramp = 4;
  g->step_min_s = 60;
  g->step_min_requests = 100;
  g->interval_ms = 5000;
  g->max_stale_s = 300;
  g->shadow_min_requests = 100;
  g->latency_p95_ratio = 1.2;
  g->error_rate_delta = 0.02;
  g->tokens_ratio = 1.5;
  g->guard_alpha = 0.05;
  g->srm_alpha = 0.001;
  g->promote_share = 0.9;
  g->outcome_min = 0;
  g->outcome_max = 1;
}

/* A duration: an integer number of seconds, or an integer with ms, s, m or h. */
static int duration_ms(sy__yaml_walk_t *w, yaml_node_t *v, long long min_ms, long long *out) {
  const char *s = v->type == YAML_SCALAR_NODE ? sy__yaml_text(v) : "";
  char *end;
  long long n = strtoll(s, &end, 10);
  long long mult = 1000;
  if (end == s || n < 0)
    return sy__yaml_fail(w, v, "must be a duration such as 30, 500ms, 30s, 5m or 1h");
  if (strcmp(end, "ms") == 0)
    mult = 1;
  else if (strcmp(end, "s") == 0 || *end == '\0')
    mult = 1000;
  else if (strcmp(end, "m") == 0)
    mult = 60000;
  else if (strcmp(end, "h") == 0)
    mult = 3600000;
  else
    return sy__yaml_fail(w, v, "must be a duration such as 30, 500ms, 30s, 5m or 1h");
  if (n > MAX_DURATION_MS / mult)
    return sy__yaml_fail(w, v, "must be at most 7 days");
  if (n * mult < min_ms)
    return sy__yaml_fail(w, v, "must be at least %lld ms", min_ms);
  *out = n * mult;
  return 0;
}

static int p_interval(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  long long ms = 0;
  if (duration_ms(w, v, 100, &ms) < 0)
    return -1;
  ((sy_gate_conf_t *)obj)->interval_ms = (unsigned)ms;
  return 0;
}

/* Durations kept in whole seconds (f->off names the unsigned member). */
static int p_seconds(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  long long ms = 0;
  if (duration_ms(w, v, 0, &ms) < 0)
    return -1;
  *SY__YAML_FIELD_PTR(obj, f, unsigned) = (unsigned)(ms / 1000);
  return 0;
}

/* A number in the open interval (f->min / 1e6, f->max / 1e6). */
static int p_level(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  double x;
  if (sy__cfg_number(w, v, "a probability in (0, 0.5)", &x) < 0)
    return -1;
  if (!(x > 0 && x < 0.5))
    return sy__yaml_fail(w, v, "must be in (0, 0.5)");
  *SY__YAML_FIELD_PTR(obj, f, double) = x;
  return 0;
}

/* A share strictly between 0 and 1. */
static int p_share(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  double x;
  if (sy__cfg_number(w, v, "a number in (0, 1)", &x) < 0)
    return -1;
  if (!(x > 0 && x < 1))
    return sy__yaml_fail(w, v, "must be in (0, 1)");
  *SY__YAML_FIELD_PTR(obj, f, double) = x;
  return 0;
}

static int p_count(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  double x;
  if (sy__cfg_number(w, v, "a number >= 0", &x) < 0)
    return -1;
  if (!(x >= 0 && x <= 1e12))
    return sy__yaml_fail(w, v, "must be a number in 0..1e12");
  *SY__YAML_FIELD_PTR(obj, f, double) = x;
  return 0;
}

/* A guardrail threshold: 0 (off) or a number > f->min (1 for ratios, 0 for deltas). */
static int p_threshold(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  double x;
  if (v->type == YAML_SCALAR_NODE && sy__yaml_is_plain(v) &&
      (strcmp(sy__yaml_text(v), "off") == 0 || strcmp(sy__yaml_text(v), "false") == 0))
    x = 0;
  else if (sy__cfg_number(w, v, "a number, or off", &x) < 0)
    return -1;
  if (x != 0 && !(x > (double)f->min && x < 1e6))
    return sy__yaml_fail(w, v, "must be off (0) or a number > %lld", f->min);
  *SY__YAML_FIELD_PTR(obj, f, double) = x;
  return 0;
}

static int p_ramp(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_gate_conf_t *g = obj;
  if (v->type != YAML_SEQUENCE_NODE || sy__yaml_nitems(v) == 0 ||
      sy__yaml_nitems(v) > SY_GATE_MAX_STEPS)
    return sy__yaml_fail(w, v, "must be a list of 1..%d percentages, e.g. [1, 5, 25, 50]",
                         SY_GATE_MAX_STEPS);
  g->nramp = sy__yaml_nitems(v);
  for (size_t i = 0; i < g->nramp; i++) {
    yaml_node_t *it = sy__yaml_item(w, v, i);
    size_t old = sy__yaml_path_index(w, i);
    double x;
    int rc = sy__cfg_number(w, it, "a percentage in (0, 100]", &x);
    if (rc == 0 && !(x > 0 && x <= 100))
      rc = sy__yaml_fail(w, it, "must be a percentage in (0, 100]");
    if (rc == 0 && i > 0 && x <= g->ramp[i - 1])
      rc = sy__yaml_fail(w, it, "steps must increase (%g after %g)", x, g->ramp[i - 1]);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
    g->ramp[i] = x;
  }
  return 0;
}

/* [min, max], finite, min < max: the outcome's declared range. */
static int p_range(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_gate_conf_t *g = obj;
  double x[2];
  if (v->type != YAML_SEQUENCE_NODE || sy__yaml_nitems(v) != 2)
    return sy__yaml_fail(w, v, "must be [min, max]");
  for (size_t i = 0; i < 2; i++) {
    yaml_node_t *it = sy__yaml_item(w, v, i);
    size_t old = sy__yaml_path_index(w, i);
    int rc = sy__cfg_number(w, it, "a number", &x[i]);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  if (!(x[0] < x[1] && x[0] > -1e12 && x[1] < 1e12))
    return sy__yaml_fail(w, v, "must be [min, max] with min < max (finite)");
  g->outcome_min = x[0];
  g->outcome_max = x[1];
  g->outcome_range_given = 1;
  return 0;
}

static int p_mode(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  static const char *const names[] = {"off", "canary", "bandit", NULL};
  int m;
  if (sy__cfg_choice(w, v, names, &m) < 0)
    return -1;
  ((sy_gate_conf_t *)obj)->mode = (sy_gate_mode_t)m;
  return 0;
}

#define G(m) offsetof(sy_gate_conf_t, m)

static const sy__yaml_field_t guardrail_fields[] = {
    {"latency_p95_ratio", p_threshold, G(latency_p95_ratio), 1, 0, 0, NULL},
    {"error_rate_delta", p_threshold, G(error_rate_delta), 0, 0, 0, NULL},
    {"tokens_ratio", p_threshold, G(tokens_ratio), 1, 0, 0, NULL},
    {"alpha", p_level, G(guard_alpha), 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static const sy__yaml_field_t gate_fields[] = {
    {"mode", p_mode, 0, 0, 0, 0, NULL},
    {"alpha", p_level, G(alpha), 0, 0, 0, NULL},
    {"min_samples", p_count, G(min_samples), 0, 0, 0, NULL},
    {"tuning_n", p_count, G(tuning_n), 0, 0, 0, NULL},
    {"ramp", p_ramp, 0, 0, 0, 0, NULL},
    {"step_min", p_seconds, G(step_min_s), 0, 0, 0, NULL},
    {"step_min_requests", p_count, G(step_min_requests), 0, 0, 0, NULL},
    {"interval", p_interval, 0, 0, 0, 0, NULL},
    {"max_stale", p_seconds, G(max_stale_s), 0, 0, 0, NULL},
    {"shadow_min_requests", p_count, G(shadow_min_requests), 0, 0, 0, NULL},
    {"guardrails", sy__yaml_p_struct, 0, 0, 0, 0, guardrail_fields},
    {"srm_alpha", p_level, G(srm_alpha), 0, 0, 0, NULL},
    {"promote_share", p_share, G(promote_share), 0, 0, 0, NULL},
    {"outcome_range", p_range, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

int sy__cfg_p_gate(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_experiment_conf_t *e = obj;
  sy_gate_conf_t *g = &e->gate;
  if (v->type != YAML_MAPPING_NODE)
    return sy__yaml_fail(w, v, "must be a mapping (mode, alpha, ramp, guardrails, ...)");
  g->line = sy__yaml_line(v);
  /* Without a mode the policy says which: a bandit allocates by itself. */
  g->mode = e->policy == SY_POLICY_THOMPSON ? SY_GATE_BANDIT : SY_GATE_CANARY;
  if (sy__yaml_walk_map(w, v, gate_fields, g) < 0)
    return -1;
  yaml_node_t *m = sy__yaml_map_get(w, v, "mode");
  if (g->mode == SY_GATE_BANDIT && e->policy != SY_POLICY_THOMPSON) {
    size_t old = sy__yaml_path_key(w, "mode");
    sy__yaml_fail(w, m, "bandit needs policy: thompson (use canary for split or fixed)");
    sy__yaml_path_pop(w, old);
    return -1;
  }
  if (g->mode == SY_GATE_CANARY && e->policy == SY_POLICY_THOMPSON) {
    size_t old = sy__yaml_path_key(w, "mode");
    sy__yaml_fail(w, m, "canary needs policy split or fixed (a bandit allocates by itself: use "
                        "mode: bandit)");
    sy__yaml_path_pop(w, old);
    return -1;
  }
  if (g->mode != SY_GATE_OFF && e->nvariants < 2)
    return sy__yaml_fail(w, v, "a gate needs a control and at least one candidate");
  /* The bandit gate's tests (policies/gate.h) need bounded inverse-propensity weights and
   * bounded outcomes: without a floor or a range they would lose their guarantee silently. */
  if (g->mode == SY_GATE_BANDIT && !(e->thompson.floor > 0))
    return sy__yaml_fail(w, v, "mode bandit needs thompson.floor > 0 (its tests weigh each "
                               "outcome by 1/propensity, which the floor bounds), e.g. 0.05");
  int continuous = e->outcome.given ? e->outcome.continuous : e->thompson.continuous;
  if (g->mode == SY_GATE_BANDIT && continuous && !g->outcome_range_given)
    return sy__yaml_fail(w, v, "mode bandit with a continuous outcome needs outcome_range: "
                               "[min, max] (values are assumed to lie in it)");
  return 0;
}
