/*
 * route.h — which experiment a request belongs to.
 *
 * An experiment matches on method (if it names one), a path prefix, and an
 * optional header (present, or equal to a value). When several match, the most
 * specific wins: a header condition beats none, then the longer path prefix, then
 * the one listed first. Pure: reads the config and the request head only.
 */
#ifndef SY_ROUTE_H
#define SY_ROUTE_H

#include <stddef.h>

#include "router/config.h"
#include "router/http.h"

/* Index of the experiment for this request, or -1 for the default route.
 * `path` is the request target (its query string is ignored). */
int sy_route_match(const sy_config_t *cfg, const char *method, const char *path, size_t pathlen,
                   const sy_head_t *head);

#endif
