/*
 * listen.h — a listening socket for a worker's listeners (listen.c).
 */
#ifndef SY_LISTEN_H
#define SY_LISTEN_H

#include <uv.h>

#include "router/config_types.h"

/* Binds a listening socket with SO_REUSEPORT (every worker binds its own and the
 * kernel spreads connections) and listens with cb. Returns 0 or -1 with err. */
int sy__listen_open(uv_loop_t *loop, uv_tcp_t *t, const sy_hostport_t *hp, uv_connection_cb cb,
                    void *data, char *err, size_t errlen);

#endif
