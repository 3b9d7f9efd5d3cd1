/*
 * gate-sim-bandit.h — bench/gate-sim's bandit mode (gate-sim-bandit.c), called from
 * gate-sim.c's main for `gate-sim bandit ...`.
 */
#ifndef SY_GATE_SIM_BANDIT_H
#define SY_GATE_SIM_BANDIT_H

/* Runs `gate-sim bandit MODE [options]` with argv[0] = MODE; returns the exit status. */
int sy__gate_sim_bandit(int argc, char **argv);

#endif
