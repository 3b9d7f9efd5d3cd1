/*
 * config_util.h — what the config loader's files share: switchyard's string rules,
 * scalar parsers (choices, numbers with ranges, ids, header names), the limits, and
 * the walk's build state. For the config loader only.
 */
#ifndef SY_CONFIG_UTIL_H
#define SY_CONFIG_UTIL_H

#include "router/config_types.h"
#include "router/yaml_walk.h"

#define MAX_VARIANTS 64
#define MAX_HEADERS 64 /* a variant's, and an upstream's (router/upreq.h sends both) */
#define MAX_ID_LEN 64
#define MAX_WEIGHT 1e6
#define MAX_MS 86400000LL            /* one day */
#define MAX_BYTES (1LL << 30)        /* 1 GiB */
#define MAX_HELD_BYTES (1LL << 36)   /* 64 GiB */
#define MAX_STREAM_BYTES (1LL << 40) /* 1 TiB: streamed bodies are not held in memory */
#define MIN_STATS_POLL_MS 10
#define MAX_STATS_POLL_MS 3600000LL /* one hour */

/* What later fields need from earlier ones; the walk's `user` state. */
typedef struct build_s {
  sy_config_t *cfg;     /* the config being built */
  yaml_node_t *prompts; /* the `prompts` mapping, NULL if absent */
} sy__cfg_build_t;

/* RFC 9110 token (header names, methods). */
int sy__cfg_is_token(const char *s);
/* A header value: anything but control characters (tab allowed). */
int sy__cfg_is_header_value(const char *s);
/* Identifiers: [A-Za-z0-9_.-]{1,64}. */
int sy__cfg_is_id(const char *s);
/* Lower-cases (upper = 0) or upper-cases s in place (ASCII). */
void sy__cfg_ascii_case(char *s, int upper);
/* Whether a and b are both NULL or equal strings. */
int sy__cfg_streq_null(const char *a, const char *b);
/* *out = index of n's text in the NULL-terminated `names`, else "must be one of: ...". */
int sy__cfg_choice(sy__yaml_walk_t *w, yaml_node_t *n, const char *const *names, int *out);
/* *out = the finite number n holds, else "must be WHAT". */
int sy__cfg_number(sy__yaml_walk_t *w, yaml_node_t *n, const char *what, double *out);
/* Index of the upstream called `name` in cfg, or -1. */
int sy__cfg_upstream_index(const sy_config_t *cfg, const char *name);

/* Field parsers (sy__yaml_field_t) storing at obj + f->off: a double (any; > 0;
 * >= 0; strictly between 0 and 1), an id (char *), a header name (char *, lower-cased).
 * Each returns 0, or -1 with the walk's error set. */
int sy__cfg_p_real(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_positive(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_nonnegative(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_fraction(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_id(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
int sy__cfg_p_header_name(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f);
/* A `headers:` mapping appended to *hs (*n of them): header names checked, values
 * with every ${env:NAME} taken from the environment (a variable that is not set is
 * an error naming it), framing headers and Host refused, each name once. `owner`
 * ("variant", "upstream") words the messages. Returns 0 or -1 with the walk's error. */
int sy__cfg_parse_headers(sy__yaml_walk_t *w, yaml_node_t *v, sy_kv_t **hs, size_t *n,
                          const char *owner);
/* An upstream name (upstreams are parsed before any reference), stored as its index
 * (size_t at obj + f->off); an unknown name fails. */
int sy__cfg_p_upstream_ref(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                           const sy__yaml_field_t *f);

#endif
