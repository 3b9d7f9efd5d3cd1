/*
 * config_gate.h — an experiment's `gate:` block.
 * For the config loader only (config.c, config_exp.c).
 */
#ifndef SY_CONFIG_GATE_H
#define SY_CONFIG_GATE_H

#include "router/config_types.h"
#include "router/yaml_walk.h"

/* an experiment's `gate:` (parsed after policy, variants and control). */
void sy__cfg_gate_defaults(sy_gate_conf_t *g);
int sy__cfg_p_gate(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);

#endif
