/*
 * config_admin.h — the `admin:` block.
 * For the config loader only (config.c, config_exp.c).
 */
#ifndef SY_CONFIG_ADMIN_H
#define SY_CONFIG_ADMIN_H

#include "router/config_types.h"
#include "router/yaml_walk.h"

/* the top-level `admin:` block; freeing it. */
int sy__cfg_p_admin(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
void sy__cfg_admin_free(sy_admin_conf_t *a);

#endif
