/*
 * config_exp.h — the `experiments:` list of the config: matches, variants (headers,
 * retrieval body, prompt and upstream references), policies and the `thompson:`
 * block, with the checks across an experiment's fields. For the config loader only.
 */
#ifndef SY_CONFIG_EXP_H
#define SY_CONFIG_EXP_H

#include "router/config_types.h"
#include "router/yaml_walk.h"

/* Field parser of the top-level `experiments` (obj: sy_config_t). Upstreams and
 * prompts must have been parsed (the walk's user state is a sy__cfg_build_t). */
int sy__cfg_p_experiments(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
/* Frees what an experiment holds (any partly parsed state included), not e itself. */
void sy__cfg_experiment_free(sy_experiment_conf_t *e);

#endif
