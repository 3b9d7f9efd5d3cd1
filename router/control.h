/*
 * control.h — the control state (router/control_state.h) in every router:
 * polled from Redis and applied to the runtime (control.c).
 */
#ifndef SY_CONTROL_H
#define SY_CONTROL_H

#include "router/types.h"

/* Starts the poll timer (the link polls while Redis is up). */
void sy__control_open(sy_worker_t *w);
/* Redis came up, or the config was reloaded: creates missing state, polls now. */
void sy__control_sync(sy_worker_t *w);
/* Applies the states last read to the current runtime (after a reload). */
void sy__control_reapply(sy_worker_t *w);
void sy__control_close(sy_worker_t *w);

#endif
