/*
 * upstream_h1.h — the connection pool (router/upstream.h) as an upstream leg
 * (router/http1client.h) uses it. What the primary exchange and the shadow copies
 * pass to sy_h1_leg_new with their sy_uppool_t.
 */
#ifndef SY_UPSTREAM_H1_H
#define SY_UPSTREAM_H1_H

#include "router/http1client.h"

/* sy_h1_pool_ops_t over the pool's functions (upstream_h1.c). */
extern const sy_h1_pool_ops_t sy__upstream_h1_pool;

#endif
