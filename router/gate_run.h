/*
 * gate_run.h — the gate's decider in the router; one router per experiment
 * holds the lease (gate_run.c).
 */
#ifndef SY_GATE_RUN_H
#define SY_GATE_RUN_H

#include "router/types.h"

void sy__gate_open(sy_worker_t *w);
void sy__gate_close(sy_worker_t *w);

#endif
