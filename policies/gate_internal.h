/*
 * gate_internal.h — what gate.c shares with gate_bandit.c (policies/ only; everyone else
 * includes gate.h).
 */
#ifndef SY_GATE_INTERNAL_H
#define SY_GATE_INTERNAL_H

#include "policies/gate.h"

/* "guardrail:latency_p95", "guardrail:error_rate", "guardrail:tokens". */
extern const char *const sy__gate_guard_reason[SY_GATE_NGUARDS];

/* A test that did not run: ran = 0, every number NaN. */
sy_gate_test_t sy__gate_test_none(void);

/* The one-sided (lower) asymptotic sequence for est at level alpha (gate.h). */
sy_gate_test_t sy__gate_test_one(double est, double var, double n, double tuning_n, double alpha);

/* Runs the guardrails that are on, candidate t against control c, each at alpha_guard / (the
 * number on); fills g[0..SY_GATE_NGUARDS) and returns the first breached one's index or -1. */
int sy__gate_run_guards(const sy_gate_params_t *p, const sy_gate_arm_t *c, const sy_gate_arm_t *t,
                        sy_gate_guard_t *g);

/* The halts that need no statistics: parameters ("config", *detail says which), the data's
 * age ("missing", "stale"). Returns the reason or NULL. */
const char *sy__gate_setup_halt(const sy_gate_params_t *p, double age, const char **detail);

#endif
