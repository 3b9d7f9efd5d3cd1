/*
 * config_shadow.h — shadow traffic blocks.
 * For the config loader only (config.c, config_exp.c).
 */
#ifndef SY_CONFIG_SHADOW_H
#define SY_CONFIG_SHADOW_H

#include "router/config_types.h"
#include "router/yaml_walk.h"

/* a variant's `shadow:` (obj: sy_variant_conf_t) and an experiment's
 * `shadow_skip:` (obj: sy_experiment_conf_t); freeing the skip rules. */
int sy__cfg_p_shadow(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_shadow_skip(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
void sy__cfg_shadow_skip_free(sy_shadow_skip_t *s);

#endif
