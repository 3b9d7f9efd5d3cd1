/*
 * control_state.c — reading an experiment's control state and turning it into
 * routing (control_state.h). Every router computes the same routing from the same
 * state, so a fleet agrees on the allocation as soon as each has read the version.
 */
#include "router/control_state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/keys.h"

const char *const sy_stage_names[SY_STAGE_COUNT] = {
    "live", "shadow", "canary", "promoted", "rolled_back", "removed",
};

const char *const sy_xstatus_names[SY_XS_COUNT] = {"running", "paused", "halted", "concluded"};

int sy_ctl_lookup(const char *const *names, size_t count, const char *name) {
  for (size_t i = 0; i < count; i++)
    if (strcmp(names[i], name) == 0)
      return (int)i;
  return -1;
}

sy_stage_t sy_ctl_initial_stage(const sy_experiment_conf_t *e, size_t v) {
  if (v == e->control || e->gate.mode != SY_GATE_CANARY)
    return SY_STAGE_LIVE;
  return e->variants[v].shadow.on ? SY_STAGE_SHADOW : SY_STAGE_CANARY;
}

void sy_ctl_state_initial(const sy_experiment_conf_t *e, sy_ctl_state_t *s) {
  memset(s, 0, sizeof(*s));
  s->status = SY_XS_RUNNING;
  s->winner = -1;
  s->nvariants = e->nvariants < SY_CTL_MAX_VARIANTS ? e->nvariants : SY_CTL_MAX_VARIANTS;
  for (size_t v = 0; v < s->nvariants; v++)
    s->stage[v] = sy_ctl_initial_stage(e, v);
}

static int variant_index(const sy_experiment_conf_t *e, const char *id, size_t n) {
  for (size_t v = 0; v < n; v++)
    if (strcmp(e->variants[v].id, id) == 0)
      return (int)v;
  return -1;
}

/* One "prefix:VARIANT" field; returns 1 if the field had this prefix. */
static int per_variant(const sy_experiment_conf_t *e, sy_ctl_state_t *s, const char *f,
                       const char *val, int *bad) {
  static const char *const prefixes[] = {"v:", "step:", "since:", "req0:", "base:"};
  for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
    size_t pl = strlen(prefixes[p]);
    if (strncmp(f, prefixes[p], pl) != 0)
      continue;
    int v = variant_index(e, f + pl, s->nvariants);
    if (v < 0)
      return 1; /* a variant this config no longer has */
    switch (p) {
    case 0: {
      int st = sy_ctl_lookup(sy_stage_names, SY_STAGE_COUNT, val);
      if (st < 0)
        (*bad)++;
      else
        s->stage[v] = (sy_stage_t)st;
      break;
    }
    case 1:
      s->step[v] = (unsigned)strtoul(val, NULL, 10);
      break;
    case 2:
      s->since_ms[v] = strtoull(val, NULL, 10);
      break;
    default: {
      /* req0 and base are request counts: nan or inf (also "1e999") would stall or
       * rush the gate's ramp, or skew its sample-ratio check. */
      double x = strtod(val, NULL);
      if (!isfinite(x))
        (*bad)++;
      else if (p == 3)
        s->req0[v] = x;
      else
        s->base[v] = x;
      break;
    }
    }
    return 1;
  }
  return 0;
}

int sy_ctl_state_parse(const sy_experiment_conf_t *e, const char *const *kv, size_t n,
                       sy_ctl_state_t *s) {
  int bad = 0;
  sy_ctl_state_initial(e, s);
  for (size_t i = 0; i < n; i++) {
    const char *f = kv[2 * i], *val = kv[2 * i + 1];
    if (per_variant(e, s, f, val, &bad))
      continue;
    if (strcmp(f, "version") == 0) {
      s->version = strtoll(val, NULL, 10);
    } else if (strcmp(f, "srm_version") == 0) {
      s->srm_version = strtoll(val, NULL, 10);
    } else if (strcmp(f, "changed_ms") == 0) {
      s->changed_ms = strtoull(val, NULL, 10);
    } else if (strcmp(f, "status") == 0) {
      int st = sy_ctl_lookup(sy_xstatus_names, SY_XS_COUNT, val);
      if (st < 0)
        bad++;
      else
        s->status = (sy_xstatus_t)st;
    } else if (strcmp(f, "winner") == 0) {
      s->winner = val[0] ? variant_index(e, val, s->nvariants) : -1;
      if (val[0] && s->winner < 0)
        bad++;
    }
  }
  for (size_t v = 0; v < s->nvariants; v++)
    if (s->step[v] >= e->gate.nramp && e->gate.nramp > 0)
      s->step[v] = (unsigned)e->gate.nramp - 1;
  return bad;
}

double sy_ctl_canary_share(const sy_experiment_conf_t *e, unsigned step) {
  if (e->gate.nramp == 0)
    return 0;
  if (step >= e->gate.nramp)
    step = (unsigned)e->gate.nramp - 1;
  double share = e->gate.ramp[step] / 100.0;
  double cap = 1.0 / (double)e->nvariants; /* k candidates + the control */
  return share < cap ? share : cap;
}

static sy_route_kind_t all_to(size_t n, size_t v, double *weights) {
  for (size_t i = 0; i < n; i++)
    weights[i] = i == v ? 1 : 0;
  return SY_ROUTE_WEIGHTS;
}

sy_route_kind_t sy_ctl_routing(const sy_experiment_conf_t *e, const sy_ctl_state_t *s,
                               double *weights, unsigned char *active) {
  size_t n = s->nvariants;
  if (s->status == SY_XS_PAUSED)
    return all_to(n, e->control, weights);
  if (s->winner >= 0)
    return all_to(n, (size_t)s->winner, weights);
  if (s->status == SY_XS_CONCLUDED)
    return all_to(n, e->control, weights);
  if (e->gate.mode == SY_GATE_CANARY) {
    double rest = 1;
    for (size_t v = 0; v < n; v++) {
      weights[v] = 0;
      if (v != e->control && s->stage[v] == SY_STAGE_CANARY) {
        weights[v] = sy_ctl_canary_share(e, s->step[v]);
        rest -= weights[v];
      }
    }
    weights[e->control] = rest > 0 ? rest : 0;
    return SY_ROUTE_WEIGHTS;
  }
  size_t nactive = 0;
  for (size_t v = 0; v < n; v++) {
    active[v] = s->stage[v] == SY_STAGE_LIVE || s->stage[v] == SY_STAGE_CANARY;
    nactive += active[v];
  }
  if (nactive == 0)
    active[e->control] = 1;
  return SY_ROUTE_POLICY;
}

/* ---- changes ---- */

static void pair(char dst[2][96], const char *k, const char *v) {
  snprintf(dst[0], sizeof dst[0], "%s", k);
  snprintf(dst[1], sizeof dst[1], "%s", v != NULL ? v : "");
}

int sy_ctl_change_init(sy_ctl_change_t *c, const char *decision, const char *variant,
                       const char *by, const char *reason, const char *stats_json,
                       uint64_t now_ms) {
  char ts[32];
  memset(c, 0, sizeof(*c));
  c->stats = strdup(stats_json != NULL ? stats_json : "{}");
  c->reason = strdup(reason != NULL ? reason : "");
  if (c->stats == NULL || c->reason == NULL) {
    sy_ctl_change_free(c);
    return -1;
  }
  snprintf(ts, sizeof ts, "%llu", (unsigned long long)now_ms);
  pair(c->audit[c->naudit++], "decision", decision);
  pair(c->audit[c->naudit++], "variant", variant);
  pair(c->audit[c->naudit++], "by", by);
  pair(c->audit[c->naudit++], "ts_ms", ts);
  return 0;
}

void sy_ctl_change_set(sy_ctl_change_t *c, const char *field, const char *value) {
  if (c->nstate < SY_CTL_CHANGE_MAX)
    pair(c->state[c->nstate++], field, value);
}

void sy_ctl_change_event(sy_ctl_change_t *c, const char *experiment, const char *event_id,
                         const char *router_instance, const char *timestamp, int schema_version) {
  char ver[16];
  snprintf(ver, sizeof ver, "%d", schema_version);
  c->nevent = 0;
  pair(c->event[c->nevent++], "event_id", event_id);
  pair(c->event[c->nevent++], "event_type", "decision");
  pair(c->event[c->nevent++], "schema_version", ver);
  pair(c->event[c->nevent++], "router_instance", router_instance);
  pair(c->event[c->nevent++], "timestamp", timestamp);
  pair(c->event[c->nevent++], "task_type", experiment);
  pair(c->event[c->nevent++], "experiment", experiment);
  pair(c->event[c->nevent++], "variant", c->audit[1][1]);
  pair(c->event[c->nevent++], "decision", c->audit[0][1]);
  pair(c->event[c->nevent++], "decided_by", c->audit[2][1]);
}

int sy_ctl_change_argv(sy_ctl_change_t *c, const char *script, const char *exp,
                       long long expect, const char *stream, const char *maxlen,
                       char keys[4][160], const char **argv, size_t *lens) {
  int n = 0;
  sy_key_state(keys[0], 160, exp);
  sy_key_audit(keys[1], 160, exp);
  snprintf(keys[2], 160, "%s", stream);
  if (expect >= 0)
    snprintf(keys[3], 160, "%lld", expect);
  else
    keys[3][0] = '\0';
  char(*counts)[16] = c->counts; /* no static: callers run on several threads */
  snprintf(counts[0], sizeof counts[0], "%zu", c->nstate);
  snprintf(counts[1], sizeof counts[1], "%zu", c->naudit + 2);
  argv[n++] = "EVAL";
  argv[n++] = script;
  argv[n++] = "3";
  argv[n++] = keys[0];
  argv[n++] = keys[1];
  argv[n++] = keys[2];
  argv[n++] = keys[3];
  argv[n++] = exp;
  argv[n++] = maxlen;
  argv[n++] = counts[0];
  for (size_t i = 0; i < c->nstate; i++) {
    argv[n++] = c->state[i][0];
    argv[n++] = c->state[i][1];
  }
  argv[n++] = counts[1];
  for (size_t i = 0; i < c->naudit; i++) {
    argv[n++] = c->audit[i][0];
    argv[n++] = c->audit[i][1];
  }
  argv[n++] = "reason";
  argv[n++] = c->reason;
  argv[n++] = "stats";
  argv[n++] = c->stats;
  if (c->nevent > 0) {
    for (size_t i = 0; i < c->nevent; i++) {
      argv[n++] = c->event[i][0];
      argv[n++] = c->event[i][1];
    }
    argv[n++] = "decision_reason";
    argv[n++] = c->reason;
    argv[n++] = "decision_stats";
    argv[n++] = c->stats;
  }
  for (int i = 0; i < n; i++)
    lens[i] = strlen(argv[i]);
  return n;
}

void sy_ctl_change_free(sy_ctl_change_t *c) {
  free(c->stats);
  free(c->reason);
  c->stats = c->reason = NULL;
}
