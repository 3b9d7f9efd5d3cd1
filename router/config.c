/*
 * config.c — loads and validates the YAML config into an immutable sy_config_t.
 *
 * This file holds what is switchyard's own: the key tables of each mapping, the
 * parsers for its fields (ids, header names and values, methods, path prefixes,
 * weights, policies, the `thompson:` block), the checks across fields (duplicate
 * ids, ambiguous matches, all-zero weights, a prior's keys against the outcome,
 * floor * variants <= 1) and the resolution of names (upstream -> index, control ->
 * variant index, prompt_version -> prompt text). The document loading, the table
 * walker, the error messages and the generic scalar parsers are in yaml_walk.c.
 *
 * The walker visits fields in table order, not file order, so a name can be
 * resolved the moment it is read: upstreams and prompts come before experiments,
 * variants before control. Adding a key is one table row, plus a parser function
 * if none of the generic ones fits.
 *
 * The walk stops at the first problem and leaves one line "FILE:LINE: PATH: problem"
 * in the caller's buffer; the half-built config is then released by
 * sy_config_free(), which copes with any partly filled state (arrays are allocated
 * zeroed with their final count before their elements are parsed).
 */
#include "router/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/config_int.h"
#include "router/yaml_walk.h"

#define MAX_VARIANTS 64
#define MAX_ID_LEN 64
#define MAX_WEIGHT 1e6
#define MAX_MS 86400000LL     /* one day */
#define MAX_BYTES (1LL << 30) /* 1 GiB */
#define MAX_STREAM_BYTES (1LL << 40) /* 1 TiB: streamed bodies are not held in memory */
#define MIN_STATS_POLL_MS 10
#define MAX_STATS_POLL_MS 3600000LL /* one hour */

/* What later fields need from earlier ones; the walk's `user` state. */
typedef struct build_s {
  sy_config_t *cfg;     /* the config being built */
  yaml_node_t *prompts; /* the `prompts` mapping, NULL if absent */
} build_t;

/* ---- switchyard's string rules ------------------------------------------------- */

int sy__cfg_is_token(const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s != '\0'; s++)
    if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
      return 0;
  return 1;
}

/* Identifiers (experiment, variant and upstream names): [A-Za-z0-9_.-]{1,64}. */
int sy__cfg_is_id(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MAX_ID_LEN)
    return 0;
  for (; *s != '\0'; s++)
    if (!isalnum((unsigned char)*s) && strchr("_.-", *s) == NULL)
      return 0;
  return 1;
}

int sy__cfg_is_header_value(const char *s) {
  for (; *s != '\0'; s++)
    if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
      return 0;
  return 1;
}

static void ascii_case(char *s, int upper) {
  for (; *s != '\0'; s++)
    *s = (char)(upper ? toupper((unsigned char)*s) : tolower((unsigned char)*s));
}

static int streq_null(const char *a, const char *b) {
  return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* ---- scalars: choices and real numbers ------------------------------------------ */

/* Stores in *out the index of n's text in the NULL-terminated list `names`; any
 * other text fails with "must be one of: a, b, c". */
int sy__cfg_choice(sy__yaml_walk_t *w, yaml_node_t *n, const char *const *names, int *out) {
  const char *s;
  char list[128] = "";
  size_t len = 0;
  if (sy__yaml_get_nonempty(w, n, &s) < 0)
    return -1;
  for (int i = 0; names[i] != NULL; i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return 0;
    }
    if (len < sizeof list)
      len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i > 0 ? ", " : "", names[i]);
  }
  return sy__yaml_fail(w, n, "must be one of: %s", list);
}

/* Stores in *out the value of n, a plain decimal integer or real that is finite;
 * anything else fails with "must be WHAT". */
int sy__cfg_number(sy__yaml_walk_t *w, yaml_node_t *n, const char *what, double *out) {
  const char *s = sy__yaml_is_plain(n) ? sy__yaml_text(n) : "";
  if (!sy__yaml_is_int_text(s) && !sy__yaml_is_float_text(s))
    return sy__yaml_fail(w, n, "must be %s", what);
  double x = strtod(s, NULL);
  if (!isfinite(x))
    return sy__yaml_fail(w, n, "must be %s", what);
  *out = x;
  return 0;
}

/* Field parsers storing a `double` at obj + f->off, each with its own range. */
static int p_real(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  return sy__cfg_number(w, v, "a number", SY__YAML_FIELD_PTR(obj, f, double));
}

static int p_positive(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  double x;
  if (sy__cfg_number(w, v, "a number > 0", &x) < 0)
    return -1;
  if (!(x > 0))
    return sy__yaml_fail(w, v, "must be a number > 0");
  *SY__YAML_FIELD_PTR(obj, f, double) = x;
  return 0;
}

static int p_nonnegative(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                         const sy__yaml_field_t *f) {
  double x;
  if (sy__cfg_number(w, v, "a number >= 0", &x) < 0)
    return -1;
  if (!(x >= 0))
    return sy__yaml_fail(w, v, "must be a number >= 0");
  *SY__YAML_FIELD_PTR(obj, f, double) = x;
  return 0;
}

/* A number strictly between 0 and 1. */
static int p_fraction(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  double x;
  if (sy__cfg_number(w, v, "a number > 0 and < 1", &x) < 0)
    return -1;
  if (!(x > 0 && x < 1))
    return sy__yaml_fail(w, v, "must be a number > 0 and < 1");
  *SY__YAML_FIELD_PTR(obj, f, double) = x;
  return 0;
}

/* ---- field parsers shared by several tables ------------------------------------ */

static int p_id(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (!sy__cfg_is_id(s))
    return sy__yaml_fail(w, v, "must be 1..%d characters of [A-Za-z0-9_.-]", MAX_ID_LEN);
  return sy__yaml_set_str(w, v, SY__YAML_FIELD_PTR(obj, f, char *), s);
}

/* A header name, stored lower-cased. */
static int p_header_name(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                         const sy__yaml_field_t *f) {
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (!sy__cfg_is_token(s))
    return sy__yaml_fail(w, v, "must be a valid header name");
  char **dst = SY__YAML_FIELD_PTR(obj, f, char *);
  if (sy__yaml_set_str(w, v, dst, s) < 0)
    return -1;
  ascii_case(*dst, 0);
  return 0;
}

/* ---- listen and servers: lists of host:port -------------------------------------- */

/* A non-empty list of distinct host:port strings into a new array. */
static int parse_hostport_list(sy__yaml_walk_t *w, yaml_node_t *v, sy_hostport_t **arr,
                               size_t *n) {
  if (v->type != YAML_SEQUENCE_NODE)
    return sy__yaml_fail(w, v, "must be a list of host:port");
  if (sy__yaml_nitems(v) == 0)
    return sy__yaml_fail(w, v, "needs at least one host:port");
  *arr = calloc(sy__yaml_nitems(v), sizeof **arr);
  if (*arr == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  *n = sy__yaml_nitems(v);
  for (size_t i = 0; i < *n; i++) {
    yaml_node_t *item = sy__yaml_item(w, v, i);
    size_t old = sy__yaml_path_index(w, i);
    int rc = sy__yaml_get_hostport(w, item, &(*arr)[i].host, &(*arr)[i].port);
    for (size_t j = 0; rc == 0 && j < i; j++)
      if (strcmp((*arr)[j].host, (*arr)[i].host) == 0 && (*arr)[j].port == (*arr)[i].port)
        rc = sy__yaml_fail(w, item, "duplicate address (same as entry %zu)", j);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

static int p_listen(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_config_t *cfg = obj;
  return parse_hostport_list(w, v, &cfg->listeners, &cfg->nlisteners);
}

static int p_servers(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_upstream_conf_t *u = obj;
  return parse_hostport_list(w, v, &u->servers, &u->nservers);
}

/* ---- upstreams and prompts -------------------------------------------------------- */

static const sy__yaml_field_t upstream_fields[] = {
    {"servers", p_servers, 0, 0, 0, 1, NULL},
    {"pool_size", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, pool_size), 0, 65535, 0, NULL},
    {"connect_timeout_ms", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, connect_timeout_ms), 1,
     MAX_MS, 0, NULL},
    {"first_byte_timeout_ms", sy__yaml_p_uint,
     offsetof(sy_upstream_conf_t, first_byte_timeout_ms), 1, MAX_MS, 0, NULL},
    {"idle_timeout_ms", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, idle_timeout_ms), 1, MAX_MS,
     0, NULL},
    {"eject_after", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, eject_after), 0, 1000, 0, NULL},
    {"eject_ms", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, eject_ms), 1, MAX_MS, 0, NULL},
    {"eject_max_ms", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, eject_max_ms), 1, MAX_MS, 0,
     NULL},
    {"eject_max_percent", sy__yaml_p_uint, offsetof(sy_upstream_conf_t, eject_max_percent), 0, 100,
     0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int parse_upstream(sy__yaml_walk_t *w, yaml_node_t *k, yaml_node_t *v,
                          sy_upstream_conf_t *u) {
  u->pool_size = 64;
  u->connect_timeout_ms = 2000;
  u->first_byte_timeout_ms = 60000;
  u->eject_after = 5;
  u->eject_ms = 10000;
  u->eject_max_ms = 300000;
  u->eject_max_percent = 50;
  u->idle_timeout_ms = 60000;
  u->line = sy__yaml_line(k);
  if (!sy__cfg_is_id(sy__yaml_text(k)))
    return sy__yaml_fail(w, k, "upstream names must be 1..%d characters of [A-Za-z0-9_.-]",
                         MAX_ID_LEN);
  if (sy__yaml_set_str(w, k, &u->name, sy__yaml_text(k)) < 0)
    return -1;
  return sy__yaml_walk_map(w, v, upstream_fields, u);
}

static int p_upstreams(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_config_t *cfg = obj;
  if (sy__yaml_check_free_map(w, v) < 0)
    return -1;
  if (sy__yaml_npairs(v) == 0)
    return sy__yaml_fail(w, v, "needs at least one upstream");
  cfg->upstreams = calloc(sy__yaml_npairs(v), sizeof *cfg->upstreams);
  if (cfg->upstreams == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  cfg->nupstreams = sy__yaml_npairs(v);
  for (size_t i = 0; i < cfg->nupstreams; i++) {
    yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
    yaml_node_t *k = sy__yaml_node(w, p->key);
    size_t old = sy__yaml_path_key(w, sy__yaml_text(k));
    int rc = parse_upstream(w, k, sy__yaml_node(w, p->value), &cfg->upstreams[i]);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* An upstream name, resolved to its index (upstreams are parsed before any reference). */
static int p_upstream_ref(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                          const sy__yaml_field_t *f) {
  const build_t *b = w->user;
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  int i = sy_config_upstream_index(b->cfg, s);
  if (i < 0)
    return sy__yaml_fail(w, v, "unknown upstream '%.64s'", s);
  *SY__YAML_FIELD_PTR(obj, f, size_t) = (size_t)i;
  return 0;
}

/* Remembers the prompts mapping; its values must be strings. */
static int p_prompts(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  build_t *b = w->user;
  if (sy__yaml_check_free_map(w, v) < 0)
    return -1;
  for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
    const char *s;
    size_t old = sy__yaml_path_key(w, sy__yaml_text(sy__yaml_node(w, p->key)));
    int rc = sy__yaml_get_str(w, sy__yaml_node(w, p->value), &s);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  b->prompts = v;
  return 0;
}

/* ---- variants: headers, retrieval body, references ---------------------------------- */

/* Header names a variant may not set: they frame the message or are hop-by-hop. */
static int is_reserved_header(const char *name) {
  static const char *const reserved[] = {"content-length", "transfer-encoding", "connection",
                                         "keep-alive", "upgrade", "te", "trailer",
                                         "proxy-connection", NULL};
  for (const char *const *r = reserved; *r != NULL; r++)
    if (strcasecmp(name, *r) == 0)
      return 1;
  return 0;
}

static int add_header(sy__yaml_walk_t *w, yaml_node_t *k, sy_variant_conf_t *var,
                      const char *name, const char *value) {
  for (size_t i = 0; i < var->nheaders; i++)
    if (strcasecmp(var->headers[i].name, name) == 0)
      return sy__yaml_fail(w, k, "header '%.64s' is set twice for this variant", name);
  sy_kv_t *grown = realloc(var->headers, (var->nheaders + 1) * sizeof *grown);
  if (grown == NULL)
    return sy__yaml_fail(w, k, "out of memory");
  var->headers = grown;
  sy_kv_t *kv = &var->headers[var->nheaders];
  kv->name = strdup(name);
  kv->value = strdup(value);
  var->nheaders++; /* counted even if a strdup failed, so that sy_config_free frees the other */
  if (kv->name == NULL || kv->value == NULL)
    return sy__yaml_fail(w, k, "out of memory");
  return 0;
}

static int parse_header(sy__yaml_walk_t *w, yaml_node_t *k, yaml_node_t *v,
                        sy_variant_conf_t *var) {
  const char *value;
  if (!sy__cfg_is_token(sy__yaml_text(k)))
    return sy__yaml_fail(w, k, "not a valid header name");
  if (is_reserved_header(sy__yaml_text(k)))
    return sy__yaml_fail(w, k, "header '%.64s' cannot be set by a variant", sy__yaml_text(k));
  if (sy__yaml_get_str(w, v, &value) < 0)
    return -1;
  if (!sy__cfg_is_header_value(value))
    return sy__yaml_fail(w, v,
                         "header value must not contain CR, LF or other control characters");
  return add_header(w, k, var, sy__yaml_text(k), value);
}

/* `headers` and `retrieval.headers`: appended to the variant's header list. */
static int p_headers(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  if (sy__yaml_check_free_map(w, v) < 0)
    return -1;
  for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
    yaml_node_t *k = sy__yaml_node(w, p->key);
    size_t old = sy__yaml_path_key(w, sy__yaml_text(k));
    int rc = parse_header(w, k, sy__yaml_node(w, p->value), obj);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* retrieval.body: a mapping of fields set on the JSON request body. */
static int p_body(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_variant_conf_t *var = obj;
  if (v->type != YAML_MAPPING_NODE)
    return sy__yaml_fail(w, v, "must be a mapping");
  json_t *j = sy__yaml_to_json(w, v);
  if (j == NULL)
    return -1;
  if (json_object_size(j) == 0)
    json_decref(j); /* nothing to set: leave body_fields NULL */
  else
    var->body_fields = j;
  return 0;
}

/* prompt_version: must name a key of `prompts`; its text becomes system_prompt. */
static int p_prompt_ref(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                        const sy__yaml_field_t *f) {
  const build_t *b = w->user;
  sy_variant_conf_t *var = obj;
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  yaml_node_t *p = b->prompts != NULL ? sy__yaml_map_get(w, b->prompts, s) : NULL;
  if (p == NULL)
    return sy__yaml_fail(w, v, "unknown prompt_version '%.64s' (not a key of prompts)", s);
  if (sy__yaml_set_str(w, v, &var->prompt_version, s) < 0)
    return -1;
  return sy__yaml_set_str(w, v, &var->system_prompt, sy__yaml_text(p));
}

static int p_weight(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_variant_conf_t *var = obj;
  double x;
  if (sy__cfg_number(w, v, "a number >= 0", &x) < 0)
    return -1;
  if (!(x >= 0))
    return sy__yaml_fail(w, v, "must be a number >= 0");
  if (x > MAX_WEIGHT)
    return sy__yaml_fail(w, v, "must be at most %g", MAX_WEIGHT);
  var->weight = x;
  return 0;
}

static const sy__yaml_field_t retrieval_fields[] = {
    {"body", p_body, 0, 0, 0, 0, NULL},
    {"headers", p_headers, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* Order matters: `headers` before `retrieval` puts its headers first. */
static const sy__yaml_field_t variant_fields[] = {
    {"id", p_id, offsetof(sy_variant_conf_t, id), 0, 0, 1, NULL},
    {"version", sy__yaml_p_str, offsetof(sy_variant_conf_t, version), 0, 0, 0, NULL},
    {"upstream", p_upstream_ref, offsetof(sy_variant_conf_t, upstream), 0, 0, 1, NULL},
    {"weight", p_weight, 0, 0, 0, 0, NULL},
    {"model", sy__yaml_p_str, offsetof(sy_variant_conf_t, model), 0, 0, 0, NULL},
    {"prompt_version", p_prompt_ref, 0, 0, 0, 0, NULL},
    {"headers", p_headers, 0, 0, 0, 0, NULL},
    {"retrieval", sy__yaml_p_struct, 0, 0, 0, 0, retrieval_fields},
    {"shadow", sy__cfg_p_shadow, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int parse_variant(sy__yaml_walk_t *w, yaml_node_t *n, sy_variant_conf_t *var) {
  var->weight = 1;
  var->line = sy__yaml_line(n);
  if (sy__yaml_walk_map(w, n, variant_fields, var) < 0)
    return -1;
  return var->version == NULL ? sy__yaml_set_str(w, n, &var->version, "1") : 0;
}

/* The id node of an experiment or variant mapping (for messages about the id). */
static yaml_node_t *id_node(sy__yaml_walk_t *w, yaml_node_t *m) {
  return sy__yaml_map_get(w, m, "id");
}

static int p_variants(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_experiment_conf_t *e = obj;
  if (v->type != YAML_SEQUENCE_NODE)
    return sy__yaml_fail(w, v, "must be a list of variants");
  if (sy__yaml_nitems(v) == 0 || sy__yaml_nitems(v) > MAX_VARIANTS)
    return sy__yaml_fail(w, v, "must have 1..%d variants", MAX_VARIANTS);
  e->variants = calloc(sy__yaml_nitems(v), sizeof *e->variants);
  if (e->variants == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  e->nvariants = sy__yaml_nitems(v);
  for (size_t i = 0; i < e->nvariants; i++) {
    yaml_node_t *item = sy__yaml_item(w, v, i);
    size_t old = sy__yaml_path_index(w, i);
    int rc = parse_variant(w, item, &e->variants[i]);
    for (size_t j = 0; rc == 0 && j < i; j++)
      if (strcmp(e->variants[j].id, e->variants[i].id) == 0) {
        size_t old_id = sy__yaml_path_key(w, "id");
        rc = sy__yaml_fail(w, id_node(w, item), "duplicate variant id '%s' (first at line %d)",
                           e->variants[i].id, e->variants[j].line);
        sy__yaml_path_pop(w, old_id);
      }
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* ---- the thompson: block ------------------------------------------------------------ */

static void thompson_defaults(sy_thompson_conf_t *t) {
  t->prior_alpha = 1;
  t->prior_beta = 1;
  t->prior_mu = 0;
  t->prior_kappa = 0.01;
  t->prior_a = 1;
  t->prior_b = 1;
  t->top_two_beta = 0.5;
  t->sticky_ttl_ms = 1800000;
  t->segment_min_samples = 100;
}

static int p_outcome(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  static const char *const names[] = {"binary", "continuous", NULL};
  sy_thompson_conf_t *t = obj;
  return sy__cfg_choice(w, v, names, &t->continuous);
}

static int p_direction(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                       const sy__yaml_field_t *f) {
  static const char *const names[] = {"maximize", "minimize", NULL};
  sy_thompson_conf_t *t = obj;
  return sy__cfg_choice(w, v, names, &t->minimise);
}

/* Binary outcome: Beta(alpha, beta). */
static const sy__yaml_field_t beta_prior_fields[] = {
    {"alpha", p_positive, offsetof(sy_thompson_conf_t, prior_alpha), 0, 0, 0, NULL},
    {"beta", p_positive, offsetof(sy_thompson_conf_t, prior_beta), 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* Continuous outcome: Normal-inverse-gamma(mu, kappa, alpha, beta). */
static const sy__yaml_field_t nig_prior_fields[] = {
    {"mu", p_real, offsetof(sy_thompson_conf_t, prior_mu), 0, 0, 0, NULL},
    {"kappa", p_positive, offsetof(sy_thompson_conf_t, prior_kappa), 0, 0, 0, NULL},
    {"alpha", p_positive, offsetof(sy_thompson_conf_t, prior_a), 0, 0, 0, NULL},
    {"beta", p_positive, offsetof(sy_thompson_conf_t, prior_b), 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* prior: its keys depend on the outcome (parsed before it). */
static int p_prior(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  static const char *const continuous_only[] = {"mu", "kappa", NULL};
  sy_thompson_conf_t *t = obj;
  if (t->continuous)
    return sy__yaml_walk_map(w, v, nig_prior_fields, t);
  for (const char *const *k = continuous_only; v->type == YAML_MAPPING_NODE && *k != NULL; k++) {
    yaml_node_t *n = sy__yaml_map_get(w, v, *k);
    if (n != NULL) {
      size_t old = sy__yaml_path_key(w, *k);
      sy__yaml_fail(w, n, "only with outcome: continuous (a binary prior takes alpha, beta)");
      sy__yaml_path_pop(w, old);
      return -1;
    }
  }
  return sy__yaml_walk_map(w, v, beta_prior_fields, t);
}

/* log_scale: true only makes sense for a continuous metric (outcome is parsed first). */
static int p_log_scale(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                       const sy__yaml_field_t *f) {
  sy_thompson_conf_t *t = obj;
  if (sy__yaml_get_bool(w, v, &t->log_scale) < 0)
    return -1;
  if (t->log_scale && !t->continuous)
    return sy__yaml_fail(w, v, "only with outcome: continuous");
  return 0;
}

/* Order matters: outcome before prior and log_scale. */
static const sy__yaml_field_t thompson_fields[] = {
    {"outcome", p_outcome, 0, 0, 0, 0, NULL},
    {"prior", p_prior, 0, 0, 0, 0, NULL},
    {"direction", p_direction, 0, 0, 0, 0, NULL},
    {"log_scale", p_log_scale, 0, 0, 0, 0, NULL},
    {"floor", p_nonnegative, offsetof(sy_thompson_conf_t, floor), 0, 0, 0, NULL},
    {"top_two", sy__yaml_p_bool, offsetof(sy_thompson_conf_t, top_two), 0, 0, 0, NULL},
    {"top_two_beta", p_fraction, offsetof(sy_thompson_conf_t, top_two_beta), 0, 0, 0, NULL},
    {"sticky_ttl_ms", sy__yaml_p_uint, offsetof(sy_thompson_conf_t, sticky_ttl_ms), 0, MAX_MS, 0,
     NULL},
    {"segment_header", p_header_name, offsetof(sy_thompson_conf_t, segment_header), 0, 0, 0,
     NULL},
    {"segment_min_samples", p_positive, offsetof(sy_thompson_conf_t, segment_min_samples), 0, 0,
     0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* thompson: only with policy: thompson; parsed after variants, for floor * K <= 1. */
static int p_thompson(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_experiment_conf_t *e = obj;
  sy_thompson_conf_t *t = &e->thompson;
  if (e->policy != SY_POLICY_THOMPSON)
    return sy__yaml_fail(w, v, "only allowed with policy: thompson");
  if (e->outcome.given) {
    static const char *const moved[] = {"outcome", "direction", NULL};
    for (const char *const *k = moved; v->type == YAML_MAPPING_NODE && *k != NULL; k++) {
      yaml_node_t *n = sy__yaml_map_get(w, v, *k);
      if (n != NULL) {
        size_t old = sy__yaml_path_key(w, *k);
        sy__yaml_fail(w, n, "set by the experiment's outcome: block (type, direction)");
        sy__yaml_path_pop(w, old);
        return -1;
      }
    }
    t->continuous = e->outcome.continuous;
    t->minimise = e->outcome.minimise;
  }
  if (sy__yaml_walk_map(w, v, thompson_fields, t) < 0)
    return -1;
  if (t->floor * (double)e->nvariants > 1) {
    size_t old = sy__yaml_path_key(w, "floor");
    sy__yaml_fail(w, sy__yaml_map_get(w, v, "floor"),
                  "floor * number of variants must be <= 1 (floor %g * %zu variants = %g)",
                  t->floor, e->nvariants, t->floor * (double)e->nvariants);
    sy__yaml_path_pop(w, old);
    return -1;
  }
  return 0;
}

/* ---- experiments ---------------------------------------------------------------------- */

static int p_method(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_experiment_conf_t *e = obj;
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (!sy__cfg_is_token(s) || strlen(s) > 32)
    return sy__yaml_fail(w, v, "must be an HTTP method such as POST");
  if (sy__yaml_set_str(w, v, &e->method, s) < 0)
    return -1;
  ascii_case(e->method, 1);
  return 0;
}

static int p_path_prefix(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                         const sy__yaml_field_t *f) {
  sy_experiment_conf_t *e = obj;
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  if (s[0] != '/')
    return sy__yaml_fail(w, v, "must start with '/'");
  for (const char *p = s; *p != '\0'; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f)
      return sy__yaml_fail(w, v, "must not contain spaces or control characters");
  return sy__yaml_set_str(w, v, &e->path_prefix, s);
}

static int p_header_value(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                          const sy__yaml_field_t *f) {
  sy_experiment_conf_t *e = obj;
  const char *s;
  if (e->match_header == NULL)
    return sy__yaml_fail(w, v, "needs match.header");
  if (sy__yaml_get_str(w, v, &s) < 0)
    return -1;
  if (!sy__cfg_is_header_value(s))
    return sy__yaml_fail(w, v,
                         "header value must not contain CR, LF or other control characters");
  return sy__yaml_set_str(w, v, &e->match_header_value, s);
}

/* policy: split | fixed | thompson, in sy_policy_kind_t order. */
static int p_policy(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  static const char *const names[] = {"split", "fixed", "thompson", NULL};
  sy_experiment_conf_t *e = obj;
  int i;
  if (sy__cfg_choice(w, v, names, &i) < 0)
    return -1;
  e->policy = i == 2 ? SY_POLICY_THOMPSON : i == 1 ? SY_POLICY_FIXED : SY_POLICY_SPLIT;
  return 0;
}

/* control: names a variant of this experiment (variants are parsed first). */
static int p_control(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_experiment_conf_t *e = obj;
  const char *s;
  if (sy__yaml_get_nonempty(w, v, &s) < 0)
    return -1;
  for (size_t i = 0; i < e->nvariants; i++)
    if (strcmp(e->variants[i].id, s) == 0) {
      e->control = i;
      return 0;
    }
  return sy__yaml_fail(w, v, "'%.64s' is not a variant of this experiment", s);
}

static const sy__yaml_field_t match_fields[] = {
    {"method", p_method, 0, 0, 0, 0, NULL},
    {"path_prefix", p_path_prefix, 0, 0, 0, 1, NULL},
    {"header", p_header_name, offsetof(sy_experiment_conf_t, match_header), 0, 0, 0, NULL},
    {"header_value", p_header_value, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* Order matters: policy and variants before thompson, variants before control,
 * outcome before thompson (which takes the metric's type and direction from it). */
static const sy__yaml_field_t experiment_fields[] = {
    {"id", p_id, offsetof(sy_experiment_conf_t, id), 0, 0, 1, NULL},
    {"match", sy__yaml_p_struct, 0, 0, 0, 1, match_fields},
    {"sticky_header", p_header_name, offsetof(sy_experiment_conf_t, sticky_header), 0, 0, 0, NULL},
    {"salt", sy__yaml_p_str, offsetof(sy_experiment_conf_t, salt), 0, 0, 0, NULL},
    {"policy", p_policy, 0, 0, 0, 0, NULL},
    {"variants", p_variants, 0, 0, 0, 1, NULL},
    {"outcome", sy__cfg_p_outcome, 0, 0, 0, 0, NULL},
    {"thompson", p_thompson, 0, 0, 0, 0, NULL},
    {"control", p_control, 0, 0, 0, 1, NULL},
    {"shadow_skip", sy__cfg_p_shadow_skip, 0, 0, 0, 0, NULL},
    {"gate", sy__cfg_p_gate, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int parse_experiment(sy__yaml_walk_t *w, yaml_node_t *n, sy_experiment_conf_t *e) {
  e->line = sy__yaml_line(n);
  thompson_defaults(&e->thompson); /* also for policy: thompson without a thompson: block */
  sy__cfg_outcome_defaults(&e->outcome);
  sy__cfg_gate_defaults(&e->gate);
  if (sy__yaml_walk_map(w, n, experiment_fields, e) < 0)
    return -1;
  if (!e->outcome.given) { /* the metric follows the thompson: block, if any */
    e->outcome.continuous = e->thompson.continuous;
    e->outcome.minimise = e->thompson.minimise;
  }
  if (e->outcome.metric == NULL && sy__yaml_set_str(w, n, &e->outcome.metric, "outcome") < 0)
    return -1;
  if (e->salt == NULL && sy__yaml_set_str(w, n, &e->salt, e->id) < 0)
    return -1;
  double total = 0;
  for (size_t i = 0; i < e->nvariants; i++)
    total += e->variants[i].weight;
  if (e->policy == SY_POLICY_SPLIT && total <= 0) {
    size_t old = sy__yaml_path_key(w, "variants");
    sy__yaml_fail(w, sy__yaml_map_get(w, n, "variants"),
                  "weights are all zero (policy split needs a sum > 0)");
    sy__yaml_path_pop(w, old);
    return -1;
  }
  return 0;
}

/* Experiment i against the earlier ones: unique id, no identical match. */
static int check_experiment(sy__yaml_walk_t *w, yaml_node_t *n, const sy_experiment_conf_t *ex,
                            size_t i) {
  const sy_experiment_conf_t *e = &ex[i];
  for (size_t j = 0; j < i; j++) {
    const sy_experiment_conf_t *o = &ex[j];
    if (strcmp(o->id, e->id) == 0) {
      size_t old = sy__yaml_path_key(w, "id");
      sy__yaml_fail(w, id_node(w, n), "duplicate experiment id '%s' (first at line %d)", e->id,
                    o->line);
      sy__yaml_path_pop(w, old);
      return -1;
    }
    if (streq_null(o->method, e->method) && strcmp(o->path_prefix, e->path_prefix) == 0 &&
        streq_null(o->match_header, e->match_header) &&
        streq_null(o->match_header_value, e->match_header_value)) {
      size_t old = sy__yaml_path_key(w, "match");
      sy__yaml_fail(w, sy__yaml_map_get(w, n, "match"),
                    "same match as experiment '%s' (line %d): ambiguous", o->id, o->line);
      sy__yaml_path_pop(w, old);
      return -1;
    }
  }
  return 0;
}

static int p_experiments(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                         const sy__yaml_field_t *f) {
  sy_config_t *cfg = obj;
  if (v->type != YAML_SEQUENCE_NODE)
    return sy__yaml_fail(w, v, "must be a list of experiments");
  if (sy__yaml_nitems(v) == 0)
    return 0;
  cfg->experiments = calloc(sy__yaml_nitems(v), sizeof *cfg->experiments);
  if (cfg->experiments == NULL)
    return sy__yaml_fail(w, v, "out of memory");
  cfg->nexperiments = sy__yaml_nitems(v);
  for (size_t i = 0; i < cfg->nexperiments; i++) {
    yaml_node_t *item = sy__yaml_item(w, v, i);
    size_t old = sy__yaml_path_index(w, i);
    int rc = parse_experiment(w, item, &cfg->experiments[i]);
    if (rc == 0)
      rc = check_experiment(w, item, cfg->experiments, i);
    sy__yaml_path_pop(w, old);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* ---- default route and the top level ---------------------------------------------------- */

/* status: only 404 (a JSON error) is implemented so far. */
static int p_status(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  if (!sy__yaml_is_plain(v) || strcmp(sy__yaml_text(v), "404") != 0)
    return sy__yaml_fail(w, v, "only 404 is supported");
  return 0;
}

static const sy__yaml_field_t default_route_fields[] = {
    {"upstream", p_upstream_ref, offsetof(sy_config_t, default_upstream), 0, 0, 0, NULL},
    {"status", p_status, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int p_default_route(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
                           const sy__yaml_field_t *f) {
  sy_config_t *cfg = obj;
  if (sy__yaml_walk_map(w, v, default_route_fields, cfg) < 0)
    return -1;
  int up = sy__yaml_map_get(w, v, "upstream") != NULL;
  int status = sy__yaml_map_get(w, v, "status") != NULL;
  if (up == status)
    return sy__yaml_fail(w, v, "needs exactly one of upstream, status");
  cfg->default_kind = up ? SY_DEFAULT_PASS : SY_DEFAULT_NOT_FOUND;
  return 0;
}

static const sy__yaml_field_t limits_fields[] = {
    {"max_header_bytes", sy__yaml_p_size, offsetof(sy_limits_t, max_header_bytes), 1, MAX_BYTES, 0,
     NULL},
    {"max_body_bytes", sy__yaml_p_size, offsetof(sy_limits_t, max_body_bytes), 1, MAX_BYTES, 0,
     NULL},
    {"max_stream_body_bytes", sy__yaml_p_size, offsetof(sy_limits_t, max_stream_body_bytes), 1,
     MAX_STREAM_BYTES, 0, NULL},
    {"header_timeout_ms", sy__yaml_p_uint, offsetof(sy_limits_t, header_timeout_ms), 1, MAX_MS, 0,
     NULL},
    {"idle_timeout_ms", sy__yaml_p_uint, offsetof(sy_limits_t, idle_timeout_ms), 1, MAX_MS, 0,
     NULL},
    {"shutdown_timeout_ms", sy__yaml_p_uint, offsetof(sy_limits_t, shutdown_timeout_ms), 1, MAX_MS,
     0, NULL},
    {"max_connections", sy__yaml_p_uint, offsetof(sy_limits_t, max_connections), 0, 10000000, 0,
     NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* Order matters: upstreams and prompts before experiments and default_route. */
static const sy__yaml_field_t top_fields[] = {
    {"workers", sy__yaml_p_uint, offsetof(sy_config_t, workers), 1, 64, 0, NULL},
    {"listen", p_listen, 0, 0, 0, 1, NULL},
    {"limits", sy__yaml_p_struct, offsetof(sy_config_t, limits), 0, 0, 0, limits_fields},
    {"upstreams", p_upstreams, 0, 0, 0, 1, NULL},
    {"prompts", p_prompts, 0, 0, 0, 0, NULL},
    {"experiments", p_experiments, 0, 0, 0, 0, NULL},
    {"default_route", p_default_route, 0, 0, 0, 0, NULL},
    {"stats_file", sy__yaml_p_str, offsetof(sy_config_t, stats_file), 0, 0, 0, NULL},
    {"stats_poll_ms", sy__yaml_p_uint, offsetof(sy_config_t, stats_poll_ms), MIN_STATS_POLL_MS,
     MAX_STATS_POLL_MS, 0, NULL},
    {"data_dir", sy__yaml_p_str, offsetof(sy_config_t, data_dir), 0, 0, 0, NULL},
    {"redis", sy__cfg_p_redis, 0, 0, 0, 0, NULL},
    {"events", sy__cfg_p_events, 0, 0, 0, 0, NULL},
    {"privacy", sy__cfg_p_privacy, 0, 0, 0, 0, NULL},
    {"api_keys", sy__cfg_p_api_keys, 0, 0, 0, 0, NULL},
    {"admin", sy__cfg_p_admin, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static void set_defaults(sy_config_t *cfg) {
  cfg->workers = 1;
  cfg->limits.max_header_bytes = 16384;
  cfg->limits.max_body_bytes = 1u << 20;
  cfg->limits.max_stream_body_bytes = 100u << 20;
  cfg->limits.header_timeout_ms = 10000;
  cfg->limits.idle_timeout_ms = 60000;
  cfg->limits.shutdown_timeout_ms = 30000;
  cfg->default_kind = SY_DEFAULT_NOT_FOUND;
  cfg->stats_poll_ms = 1000;
  sy__cfg_stats_defaults(cfg);
}

/* ---- loading ----------------------------------------------------------------------------- */

static int build(sy__yaml_walk_t *w, sy_config_t *cfg) {
  yaml_node_t *root = sy__yaml_root(w);
  if (root == NULL)
    return sy__yaml_fail(w, NULL, "the config is empty");
  set_defaults(cfg);
  cfg->path = strdup(w->name);
  if (cfg->path == NULL)
    return sy__yaml_fail(w, root, "out of memory");
  if (sy__yaml_walk_map(w, root, top_fields, cfg) < 0)
    return -1;
  return sy__cfg_stats_finish(w, cfg);
}

/* See config.h: parses a YAML buffer; errors name `name` and a line. */
int sy_config_parse(const char *name, const char *yaml, size_t len, sy_config_t **out, char *err,
                    size_t errlen) {
  build_t b = {NULL, NULL};
  sy__yaml_walk_t w;
  int rc = -1;
  *out = NULL;
  sy__yaml_init(&w, name, yaml, len, &b, err, errlen);
  if (sy__yaml_load(&w) == 0) {
    b.cfg = calloc(1, sizeof *b.cfg);
    rc = b.cfg == NULL ? sy__yaml_fail(&w, NULL, "out of memory") : build(&w, b.cfg);
    sy__yaml_unload(&w);
  }
  if (rc == 0)
    *out = b.cfg;
  else
    sy_config_free(b.cfg);
  if (errlen > 0)
    sy__yaml_one_line(err);
  return rc;
}

/* See config.h: reads the file at `path`, then sy_config_parse. */
int sy_config_load(const char *path, sy_config_t **out, char *err, size_t errlen) {
  size_t len = 0;
  *out = NULL;
  char *text_buf = sy__yaml_read_file(path, &len);
  if (text_buf == NULL) {
    if (err != NULL && errlen > 0) {
      snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
      sy__yaml_one_line(err);
    }
    return -1;
  }
  int rc = sy_config_parse(path, text_buf, len, out, err, errlen);
  free(text_buf);
  return rc;
}

/* ---- freeing and lookups ------------------------------------------------------------------- */

static void free_hostports(sy_hostport_t *hp, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(hp[i].host);
  free(hp);
}

static void free_variant(sy_variant_conf_t *v) {
  free(v->id);
  free(v->version);
  free(v->model);
  free(v->prompt_version);
  free(v->system_prompt);
  json_decref(v->body_fields);
  for (size_t i = 0; i < v->nheaders; i++) {
    free(v->headers[i].name);
    free(v->headers[i].value);
  }
  free(v->headers);
}

static void free_experiment(sy_experiment_conf_t *e) {
  free(e->id);
  free(e->method);
  free(e->path_prefix);
  free(e->match_header);
  free(e->match_header_value);
  free(e->sticky_header);
  free(e->salt);
  free(e->thompson.segment_header);
  sy__cfg_outcome_free(&e->outcome);
  sy__cfg_shadow_skip_free(&e->shadow_skip);
  for (size_t i = 0; i < e->nvariants; i++)
    free_variant(&e->variants[i]);
  free(e->variants);
}

/* See config.h; also frees any partly built config (used on error paths). */
void sy_config_free(sy_config_t *cfg) {
  if (cfg == NULL)
    return;
  free(cfg->path);
  free_hostports(cfg->listeners, cfg->nlisteners);
  for (size_t i = 0; i < cfg->nupstreams; i++) {
    free(cfg->upstreams[i].name);
    free_hostports(cfg->upstreams[i].servers, cfg->upstreams[i].nservers);
  }
  free(cfg->upstreams);
  for (size_t i = 0; i < cfg->nexperiments; i++)
    free_experiment(&cfg->experiments[i]);
  free(cfg->experiments);
  free(cfg->stats_file);
  sy__cfg_stats_free(cfg);
  sy__cfg_admin_free(&cfg->admin);
  free(cfg);
}

/* See config.h: index of upstream `name`, or -1. */
int sy_config_upstream_index(const sy_config_t *cfg, const char *name) {
  for (size_t i = 0; i < cfg->nupstreams; i++)
    if (cfg->upstreams[i].name != NULL && strcmp(cfg->upstreams[i].name, name) == 0)
      return (int)i;
  return -1;
}
