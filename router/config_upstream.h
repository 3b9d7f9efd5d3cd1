/*
 * config_upstream.h — an upstream's servers as URLs (http://, https://, or a bare
 * host:port), its `tls:` block and TLS context, and `host_header:`; and the
 * `listen:` list, whose host:port form the servers share.
 * For the config loader only (config.c).
 */
#ifndef SY_CONFIG_UPSTREAM_H
#define SY_CONFIG_UPSTREAM_H

#include "router/config_types.h"
#include "router/yaml_walk.h"

/* A non-empty list of distinct addresses into a new array *arr of *n: host:port
 * (`listen:`), or with urls also https:// and http:// URLs (`servers:`). Returns 0,
 * or -1 with the walk's error. */
int sy__cfg_hostport_list(sy__yaml_walk_t *w, yaml_node_t *v, sy_hostport_t **arr, size_t *n,
                          int urls);
/* `servers:` (into a sy_upstream_conf_t), `tls:` and `host_header:`. */
int sy__cfg_p_servers(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_up_tls(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_host_header(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
/* After upstream u's mapping m is walked: makes its TLS context if a server is
 * https:// (reading the CA bundle and client certificate now), or refuses a `tls:`
 * block no server uses. Returns 0, or -1 with the walk's error naming the field. */
int sy__cfg_upstream_tls(sy__yaml_walk_t *w, yaml_node_t *m, sy_upstream_conf_t *u);
/* Frees what the functions above stored in u (any partly built state). */
void sy__cfg_upstream_tls_free(sy_upstream_conf_t *u);

#endif
