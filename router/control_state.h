/*
 * control_state.h — an experiment's control state (proto/KEYS.md: sy:{E}:state) as C
 * data, and what it means for routing. Pure: no I/O, nothing allocated.
 *
 * The state is what the gate and operators decide and every router applies: the
 * experiment's status (running, paused, halted, concluded), its winner, and each
 * variant's stage:
 *   live         routed by the experiment's policy (no gate, or a bandit's arm)
 *   shadow       no live traffic; gets mirrored copies (canary gate, first stage)
 *   canary       a ramp step's share of live traffic (canary gate)
 *   promoted     the winner: all traffic
 *   rolled_back  no traffic (the gate or an operator rolled it back)
 *   removed      no traffic (a bandit's arm that is clearly worse)
 * Paused routes everything to the control; concluded to the winner (or the control
 * when everything was rolled back); halted routes as running but the gate decides
 * nothing until an operator resumes.
 */
#ifndef SY_CONTROL_STATE_H
#define SY_CONTROL_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "router/config.h"

#define SY_CTL_MAX_VARIANTS 64

typedef enum {
  SY_STAGE_LIVE = 0,
  SY_STAGE_SHADOW,
  SY_STAGE_CANARY,
  SY_STAGE_PROMOTED,
  SY_STAGE_ROLLED_BACK,
  SY_STAGE_REMOVED,
  SY_STAGE_COUNT
} sy_stage_t;

typedef enum {
  SY_XS_RUNNING = 0,
  SY_XS_PAUSED,
  SY_XS_HALTED,
  SY_XS_CONCLUDED,
  SY_XS_COUNT
} sy_xstatus_t;

extern const char *const sy_stage_names[SY_STAGE_COUNT];
extern const char *const sy_xstatus_names[SY_XS_COUNT];

typedef struct sy_ctl_state_s {
  long long version;   /* 0: no state in Redis yet */
  sy_xstatus_t status;
  int winner;          /* variant index, or -1 */
  size_t nvariants;
  sy_stage_t stage[SY_CTL_MAX_VARIANTS];
  unsigned step[SY_CTL_MAX_VARIANTS];     /* ramp step (canary) */
  uint64_t since_ms[SY_CTL_MAX_VARIANTS]; /* when the stage or step began */
  double req0[SY_CTL_MAX_VARIANTS];       /* the variant's requests when its step began */
  double base[SY_CTL_MAX_VARIANTS];       /* requests at the sample-ratio baseline */
  long long srm_version;                  /* the version the baseline belongs to */
  uint64_t changed_ms;                    /* when the version last changed (Redis clock) */
} sy_ctl_state_t;

/* How routing follows the state. */
typedef enum {
  SY_ROUTE_POLICY = 0, /* the experiment's own policy, limited to active[] */
  SY_ROUTE_WEIGHTS,    /* a split with weights[] (canary steps, pause, a conclusion) */
} sy_route_kind_t;

/* The stage a variant starts in: the control and every variant without a gate or
 * under a bandit are live; a canary candidate with `shadow:` starts in shadow, else
 * in canary (step 0). */
sy_stage_t sy_ctl_initial_stage(const sy_experiment_conf_t *e, size_t v);

/* The state a router would create: initial stages, running, no winner, version 0. */
void sy_ctl_state_initial(const sy_experiment_conf_t *e, sy_ctl_state_t *s);

/*
 * Reads a state hash given as n field/value string pairs (kv[2i], kv[2i+1]) for
 * experiment e. Fields of variants e does not have are ignored; variants the hash
 * lacks keep their initial stage. Unknown stage or status names, an unknown winner
 * and req0 / base values that are not finite numbers (which are left at 0) count as
 * problems. Returns the number of problems (0: all fields understood).
 */
int sy_ctl_state_parse(const sy_experiment_conf_t *e, const char *const *kv, size_t n,
                       sy_ctl_state_t *s);

/* Index of `name` in names[0..count), or -1. */
int sy_ctl_lookup(const char *const *names, size_t count, const char *name);

/* A canary candidate's share of traffic at ramp step `step`, 0..1: the step's
 * percentage, capped at 1/(k+1) with k candidates so that the control never has less
 * than a candidate. */
double sy_ctl_canary_share(const sy_experiment_conf_t *e, unsigned step);

/*
 * What routing should do in state s: SY_ROUTE_WEIGHTS with weights[0..nvariants)
 * (summing to 1), or SY_ROUTE_POLICY with active[0..nvariants) (at least one set;
 * the control is kept active if nothing else is).
 */
sy_route_kind_t sy_ctl_routing(const sy_experiment_conf_t *e, const sy_ctl_state_t *s,
                               double *weights, unsigned char *active);

/* ---- changes: what the gate or an operator writes (stats/scripts.h SY_LUA_CONTROL) ---- */

#define SY_CTL_CHANGE_MAX 48

/* A change of the state, its audit entry and its decision event, as strings the
 * change owns (copied in). */
typedef struct sy_ctl_change_s {
  size_t nstate, naudit, nevent;
  char state[SY_CTL_CHANGE_MAX][2][96];
  char audit[8][2][96];
  char *stats;  /* JSON text of the numbers behind the decision (owned; may be NULL) */
  char *reason; /* owned copy */
  char event[24][2][96];
  char counts[2][16]; /* the argv's two counts (sy_ctl_change_argv): the change's own
                         storage, as the admin API builds changes on several threads */
} sy_ctl_change_t;

/* Starts a change: decision (promote, rollback, ramp, ...), the variant it is about
 * ("" for the whole experiment), who decides and why. stats_json is copied (NULL: "{}").
 * Returns 0, or -1 out of memory. */
int sy_ctl_change_init(sy_ctl_change_t *c, const char *decision, const char *variant,
                       const char *by, const char *reason, const char *stats_json,
                       uint64_t now_ms);
/* Adds a state field (e.g. "v:b" = "rolled_back"). Ignored past SY_CTL_CHANGE_MAX. */
void sy_ctl_change_set(sy_ctl_change_t *c, const char *field, const char *value);
/* Adds the decision event's envelope and fields (proto/events.def) for experiment e. */
void sy_ctl_change_event(sy_ctl_change_t *c, const char *experiment, const char *event_id,
                         const char *router_instance, const char *timestamp, int schema_version);
/* The SY_LUA_CONTROL call: argv/lens (capacity SY_CTL_ARGV_MAX) for experiment exp,
 * computed from version expect (< 0: any), stream and maxlen. keys holds the key
 * names (the caller's storage, 3 x 160 bytes). Returns argc. */
#define SY_CTL_ARGV_MAX (12 + 2 * (SY_CTL_CHANGE_MAX + 8 + 24) + 8)
int sy_ctl_change_argv(sy_ctl_change_t *c, const char *script, const char *exp,
                       long long expect, const char *stream, const char *maxlen,
                       char keys[4][160], const char **argv, size_t *lens);
void sy_ctl_change_free(sy_ctl_change_t *c);

#endif
