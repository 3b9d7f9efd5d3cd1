/*
 * config_listen.h — the top-level `listen:` list: each entry host:port (plain) or
 * a mapping {address, tls: {cert_file, key_file, min_version}} (TLS on the
 * client-facing listener). For the config loader only (config.c).
 */
#ifndef SY_CONFIG_LISTEN_H
#define SY_CONFIG_LISTEN_H

#include "router/config_types.h"
#include "router/yaml_walk.h"

/* `listen:` into cfg->listeners and cfg->listen_tls (obj: the sy_config_t); makes
 * the TLS context of each TLS listener now (reading its certificate and key), so
 * that a bad file is an error naming its field. Returns 0, or -1 with the walk's
 * error. */
int sy__cfg_p_listen(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
/* Frees cfg->listeners and cfg->listen_tls (any partly built state). */
void sy__cfg_listen_free(sy_config_t *cfg);

#endif
