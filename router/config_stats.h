/*
 * config_stats.h — the stats layer's blocks of the config.
 * For the config loader only (config.c, config_exp.c).
 */
#ifndef SY_CONFIG_STATS_H
#define SY_CONFIG_STATS_H

#include "router/config_types.h"
#include "router/yaml_walk.h"

/* field parsers for the experiment's `outcome:` and the top-level
 * `data_dir`, `redis`, `events`, `privacy`, `api_keys`; defaults; checks; freeing. */
int sy__cfg_p_outcome(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_redis(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_events(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_privacy(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_api_keys(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
void sy__cfg_stats_defaults(sy_config_t *cfg);
void sy__cfg_outcome_defaults(sy_outcome_conf_t *o);
/* After the walk: fills what was not given (data_dir, hash key from the default
 * environment variable). Returns 0 or -1 after sy__yaml_fail. */
int sy__cfg_stats_finish(sy__yaml_walk_t *w, sy_config_t *cfg);
void sy__cfg_stats_free(sy_config_t *cfg);
void sy__cfg_outcome_free(sy_outcome_conf_t *o);

#endif
