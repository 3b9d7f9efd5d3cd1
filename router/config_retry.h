/*
 * config_retry.h — retries and fallbacks in the config: an upstream's `retry:`
 * block and a variant's `fallback:`. For the config loader only (config.c,
 * config_exp.c); what they mean at run time is router/retry.h.
 */
#ifndef SY_CONFIG_RETRY_H
#define SY_CONFIG_RETRY_H

#include "router/config_types.h"
#include "router/yaml_walk.h"

/* The defaults of an upstream's retry: (no block, or keys it leaves out). */
void sy__cfg_retry_defaults(sy_retry_conf_t *r);
/* An upstream's `retry:` (obj: sy_upstream_conf_t). */
int sy__cfg_p_retry(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
/* A variant's `fallback:` (obj: sy_variant_conf_t): an upstream name, or
 * {upstream: NAME, model: MODEL}. */
int sy__cfg_p_fallback(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);

#endif
