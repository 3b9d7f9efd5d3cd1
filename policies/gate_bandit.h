/*
 * gate_bandit.h — the bandit gate: which arms of a Thompson-sampling experiment to remove,
 * and when one is the winner, from per-arm sufficient statistics (sy_gate_arm_t). The
 * statistics, what they promise and what they assume are in gate.h's header ("Bandit
 * mode"); the e-process in eproc.h. Pure: no I/O, no allocation, no clock.
 */
#ifndef SY_GATE_BANDIT_H
#define SY_GATE_BANDIT_H

#include <stddef.h>

#include "policies/gate.h"

#define SY_GATE_MAX_ARMS 64

/* One arm in bandit mode. */
typedef struct sy_gate_bandit_arm_s {
  int live;                  /* given: the arm still receives traffic */
  int judged;                /* live and had min_n outcomes */
  int not_best;              /* the outcome test: certainly not a best arm (log_e_closed at or
                                above the threshold) */
  int guard_breached;        /* index of the first breached guardrail, or -1 */
  int remove;                /* not_best or guard_breached: may be removed */
  double mean, se;           /* Hajek mean and its standard error (reported, not tested) */
  double log_e;              /* log of the e-process against "this arm is a best arm" */
  double log_e_closed;       /* the closure's: the smallest log E_S over the sets S of live
                                arms containing this one (gate.h; a lower bound on it above 8
                                arms); log_e itself when given_best */
  sy_gate_test_t vs_leader;  /* the leader's advantage (in the better direction), for the
                                audit: estimate and se as Hajek; alpha = alpha / K */
  double srm_log_e;          /* log e of the sample-ratio check (both directions, the
                                larger); NaN when it did not run for this arm */
  sy_gate_guard_t guard[SY_GATE_NGUARDS]; /* against the control; enabled = 0 for it */
} sy_gate_bandit_arm_t;

typedef struct sy_gate_bandit_s {
  sy_gate_decision_t decision; /* HALT, PROMOTE (a clear winner) or CONTINUE */
  const char *reason;          /* halts as above, "srm" (a halt); "bandit:winner",
                                  "bandit:continue", "min_samples" (no arm has min_n) */
  const char *detail;
  size_t leader; /* index of the live judged arm with the best mean; k when there is none */
  size_t winner; /* PROMOTE: the winner's index; else k */
  size_t nremove;
  double log_threshold; /* log(1 / alpha): an arm's log_e_closed at or above it is not best */
  double srm_log_threshold; /* log(2 K / alpha_srm); NaN when the check is off */
  const char *srm_check;    /* "assignments" (the router's counts: every arm), or
                               "inverse_propensity" (data without them: live arms); NULL: off */
} sy_gate_bandit_t;

/*
 * Bandit mode over arms[0..k) (2 <= k <= SY_GATE_MAX_ARMS): every arm of the experiment,
 * live[i] saying which still receive traffic (removed arms keep their data: the tests use it),
 * ctl the index of the control (the guardrails' reference; k for none). Halts as
 * sy_gate_evaluate does (plus "config" when p->floor is 0, and "invalid:arm" when an arm's
 * sums are impossible under the floor or the declared range), then the propensity check, the
 * guardrails and the outcome e-processes of the header comment. Fills *out and
 * per_arm[0..k) and returns out->decision: PROMOTE when out->winner is clear, CONTINUE (the
 * arms with remove set may be removed), or HALT.
 */
sy_gate_decision_t sy_gate_bandit_check(const sy_gate_params_t *p, const sy_gate_arm_t *arms,
                                        const int *live, size_t k, size_t ctl,
                                        double data_age_ms, sy_gate_bandit_t *out,
                                        sy_gate_bandit_arm_t *per_arm);

#endif
