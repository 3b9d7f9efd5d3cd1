/*
 * api.h — switchyard's own API on the proxy listener (api.c).
 */
#ifndef SY_API_H
#define SY_API_H

#include "router/conn.h"
#include "router/exchange.h"
#include "router/types.h"

int sy__api_is_api(const sy_req_t *r);
void sy__api_start(sy_conn_t *c);
void sy__api_cancel(sy_conn_t *c);
/* The exchange r is reset (its connection may be about to be freed): an API call still
 * waiting for Redis forgets it. */
void sy__api_detach(sy_req_t *r);

#endif
