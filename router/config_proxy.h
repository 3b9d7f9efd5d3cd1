/*
 * config_proxy.h — an upstream's egress proxy: `proxy:` (an http:// URL, or `none`),
 * else the environment's (https_proxy / HTTPS_PROXY for https:// servers,
 * http_proxy for plain ones, minus no_proxy / NO_PROXY), settled per server at
 * load. For the config loader only (config.c); the parsing functions are pure.
 *
 * Errors: 0 / -1 with a message (the walk's, or a buffer).
 */
#ifndef SY_CONFIG_PROXY_H
#define SY_CONFIG_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "router/config_types.h"
#include "router/yaml_walk.h"

/* Parses a proxy URL, `[http://][user:password@]host[:port][/]` (port 1080 by
 * default, as curl's; user and password percent-decoded, sent as Basic), into *p
 * (its strings new; origin is set to `origin`). Returns 0, or -1 with err saying
 * why (never quoting the password). */
int sy__cfg_proxy_parse(const char *url, const char *origin, sy_egress_proxy_t *p, char *err,
                        size_t errlen);
/* Whether host:port is excluded by a no_proxy list: comma- or space-separated
 * entries, each `*` (everything), a host name matching itself and its subdomains
 * (a leading dot is ignored), or an address; either with :port to match that port
 * only. Names compare case-insensitively. Returns 1 or 0. */
int sy__cfg_no_proxy_match(const char *list, const char *host, uint16_t port);
/* `proxy:` of an upstream (into a sy_upstream_conf_t). */
int sy__cfg_p_proxy(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
/* After upstream u's mapping m is walked: gives each server its proxy (a copy of
 * `proxy:`, or the environment's for its scheme unless no_proxy excludes it, or
 * none). Returns 0, or -1 with the walk's error (naming `proxy` or the variable). */
int sy__cfg_upstream_proxy(sy__yaml_walk_t *w, yaml_node_t *m, sy_upstream_conf_t *u);
/* Frees p and its strings (NULL is fine). */
void sy__cfg_proxy_free(sy_egress_proxy_t *p);

#endif
