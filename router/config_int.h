/*
 * config_int.h — what config.c shares with config_stats.c (the stats layer's
 * blocks of the config) and config_shadow.c (shadow traffic). Not for use outside
 * the config loader.
 */
#ifndef SY_CONFIG_INT_H
#define SY_CONFIG_INT_H

#include "router/config.h"
#include "router/yaml_walk.h"

/* RFC 9110 token (header names, methods). */
int sy__cfg_is_token(const char *s);
/* A header value: anything but control characters (tab allowed). */
int sy__cfg_is_header_value(const char *s);
/* Identifiers: [A-Za-z0-9_.-]{1,64}. */
int sy__cfg_is_id(const char *s);
/* *out = index of n's text in the NULL-terminated `names`, else "must be one of: ...". */
int sy__cfg_choice(sy__yaml_walk_t *w, yaml_node_t *n, const char *const *names, int *out);
/* *out = the finite number n holds, else "must be WHAT". */
int sy__cfg_number(sy__yaml_walk_t *w, yaml_node_t *n, const char *what, double *out);

/* config_stats.c: field parsers for the experiment's `outcome:` and the top-level
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

/* config_gate.c: an experiment's `gate:` (parsed after policy, variants and control). */
void sy__cfg_gate_defaults(sy_gate_conf_t *g);
int sy__cfg_p_gate(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);

/* config_shadow.c: a variant's `shadow:` (obj: sy_variant_conf_t) and an experiment's
 * `shadow_skip:` (obj: sy_experiment_conf_t); freeing the skip rules. */
int sy__cfg_p_shadow(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_shadow_skip(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                          const sy__yaml_field_t *f);
void sy__cfg_shadow_skip_free(sy_shadow_skip_t *s);

/* config_admin.c: the top-level `admin:` block; freeing it. */
int sy__cfg_p_admin(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
void sy__cfg_admin_free(sy_admin_conf_t *a);

#endif
