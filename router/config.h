/*
 * config.h — the switchyard configuration: what `serve` runs and `check-config`
 * validates.
 *
 * A config is loaded from one YAML file into an immutable sy_config_t. The proxy
 * never mutates it; a SIGHUP reload loads a new one beside the old, and the old is
 * freed once no request refers to it any more (see router/runtime.h). Every name
 * in the file is resolved at load time (variant -> upstream index, control ->
 * variant index, prompt_version -> prompt text), so the request path does no
 * lookups by string.
 *
 * Errors name the file, the line and the key path, e.g.
 *   deploy/examples/minimal.yaml:14: experiments[0].variants[1].weight: must be a number >= 0
 */
#ifndef SY_CONFIG_H
#define SY_CONFIG_H

#include "router/config_types.h"

/*
 * Loads and validates the YAML file at `path`. On success returns 0 and stores a
 * new config in *out (free it with sy_config_free). On failure returns -1, leaves
 * *out NULL and writes one line "FILE:LINE: KEY: problem" into err.
 */
int sy_config_load(const char *path, sy_config_t **out, char *err, size_t errlen);

/* Same as sy_config_load, from a buffer; `name` stands in for the file name in errors. */
int sy_config_parse(const char *name, const char *yaml, size_t len, sy_config_t **out, char *err,
                    size_t errlen);

void sy_config_free(sy_config_t *cfg);

/* Index of the upstream called `name`, or -1. */
int sy_config_upstream_index(const sy_config_t *cfg, const char *name);

#endif
