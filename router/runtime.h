/*
 * runtime.h — one loaded config and everything derived from it (upstream pools,
 * policies, control state per experiment), reference-counted (runtime.c).
 */
#ifndef SY_RUNTIME_H
#define SY_RUNTIME_H

#include <stddef.h>

#include <jansson.h>

#include "policies/policy.h"
#include "policies/sticky.h"
#include "router/config.h"
#include "router/control_state.h"
#include "router/types.h"

/* A segment's own posterior (policy: thompson with a segment_header). */
typedef struct sy_segpol_s {
  char *name;
  sy_policy_t *policy;
} sy_segpol_t;

/* What an experiment needs at request time. */
typedef struct sy_exprt_s {
  sy_policy_t *policy; /* split, fixed or thompson, experiment-wide */
  sy_sticky_t sticky;  /* thompson sessions (has_sticky) */
  int has_sticky;
  sy_segpol_t *segs; /* segment posteriors, created as their statistics arrive */
  size_t nsegs, segcap;
  /* control state (control.c): what the gate and operators decided */
  sy_ctl_state_t ctl;        /* the last version applied (version 0: none yet) */
  sy_policy_t *override;     /* a split that replaces the policy (canary, pause, winner) */
  uint64_t gate_next_ms;     /* loop time of the gate's next look (gate_run.c) */
  struct sy_mentry_s **ment; /* per variant: its metrics entry, found at first use */
} sy_exprt_t;

struct sy_runtime_s {
  unsigned refs;
  unsigned generation;
  sy_worker_t *w;
  sy_config_t *cfg;
  sy_uppool_t *pools; /* one per cfg->upstreams */
  sy_exprt_t *exps;   /* one per cfg->experiments */
};

/* Builds a runtime for cfg (taking ownership of it): upstream pools and the
 * experiments' policies. old: the runtime it replaces (a reload), whose server
 * addresses are reused; NULL for a worker's first runtime, which resolves server
 * names before the loop runs (a reload never blocks the loop on a name). Returns
 * NULL and writes err on failure (cfg is then freed). */
sy_runtime_t *sy__runtime_new(sy_worker_t *w, sy_config_t *cfg, const sy_runtime_t *old,
                              char *err, size_t errlen);
static inline sy_runtime_t *sy__runtime_ref(sy_runtime_t *rt) {
  rt->refs++;
  return rt;
}
/* Whether a server of rt still waits for its first address (a name being resolved). */
int sy__runtime_resolving(const sy_runtime_t *rt);
/* Drops a reference; the last one closes the idle pooled connections and frees. */
void sy__runtime_unref(sy_runtime_t *rt);
/* Moves the sticky sessions of experiments that kept their id and variants from
 * `old` to `rt` (a reload must not switch a conversation's variant). */
void sy__runtime_adopt_sessions(sy_runtime_t *rt, sy_runtime_t *old);
/* Sets the sufficient statistics of thompson experiments from a snapshot
 *   {"experiments": {ID: {"variants": {VID: {"n", "sum", "sumsq"}},
 *                         "segments": {NAME: {VID: {...}}}}}}
 * (absolute totals; binary: sum = successes). Returns the number of experiments
 * updated; problems are logged, and an experiment with bad numbers keeps its state. */
int sy__runtime_apply_stats(sy_runtime_t *rt, const json_t *snapshot);
/* The policy that chooses for a request of experiment i: the segment's when it
 * has enough observations, else the experiment-wide one. */
const sy_policy_t *sy__runtime_policy_for(const sy_runtime_t *rt, size_t i, const char *seg,
                                          size_t seglen);

/* The policy that routes experiment i now: the control state's override, if any. */
static inline const sy_policy_t *sy__control_policy(const sy_runtime_t *rt, size_t i) {
  return rt->exps[i].override != NULL ? rt->exps[i].override : rt->exps[i].policy;
}

#endif
