/*
 * stats_file.h — feeds a bandit's counts from a JSON file, for offline replays and
 * tests (stats_file.c).
 */
#ifndef SY_STATS_FILE_H
#define SY_STATS_FILE_H

#include "router/types.h"

/* Starts, moves or stops watching rt->cfg->stats_file, and applies what it holds. */
void sy__stats_file_configure(sy_worker_t *w);
void sy__stats_file_stop(sy_worker_t *w);

#endif
