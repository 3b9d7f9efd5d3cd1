/*
 * config_exp.c — the experiments of the config (config_exp.h): each experiment's
 * match, variants, policy, `thompson:` block, outcome (config_stats.c), gate
 * (config_gate.c) and shadow rules (config_shadow.c), and the checks across them
 * (duplicate ids, ambiguous matches, all-zero weights, a prior's keys against the
 * outcome, floor * variants <= 1).
 */
#include "router/config_exp.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/event5.h"
#include "proto/keys.h"
#include "router/config_gate.h"
#include "router/config_retry.h"
#include "router/config_shadow.h"
#include "router/config_stats.h"
#include "router/config_util.h"

/* ---- variants: headers, retrieval body, references ---------------------------------- */

/* Header names a variant may not set: they frame the message or are hop-by-hop. */
/* `headers` and `retrieval.headers`: appended to the variant's header list. */
static int p_headers(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  sy_variant_conf_t *var = obj;
  return sy__cfg_parse_headers(w, v, &var->headers, &var->nheaders, "variant");
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
static int p_prompt_ref(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  const sy__cfg_build_t *b = w->user;
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
    {"id", sy__cfg_p_id, offsetof(sy_variant_conf_t, id), 0, 0, 1, NULL},
    {"version", sy__yaml_p_str, offsetof(sy_variant_conf_t, version), 0, 0, 0, NULL},
    {"upstream", sy__cfg_p_upstream_ref, offsetof(sy_variant_conf_t, upstream), 0, 0, 1, NULL},
    {"weight", p_weight, 0, 0, 0, 0, NULL},
    {"model", sy__yaml_p_str, offsetof(sy_variant_conf_t, model), 0, 0, 0, NULL},
    {"prompt_version", p_prompt_ref, 0, 0, 0, 0, NULL},
    {"headers", p_headers, 0, 0, 0, 0, NULL},
    {"retrieval", sy__yaml_p_struct, 0, 0, 0, 0, retrieval_fields},
    {"shadow", sy__cfg_p_shadow, 0, 0, 0, 0, NULL},
    {"fallback", sy__cfg_p_fallback, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

static int parse_variant(sy__yaml_walk_t *w, yaml_node_t *n, sy_variant_conf_t *var) {
  var->weight = 1;
  var->line = sy__yaml_line(n);
  if (sy__yaml_walk_map(w, n, variant_fields, var) < 0)
    return -1;
  if (var->has_fallback && var->fallback == var->upstream) {
    size_t old = sy__yaml_path_key(w, "fallback");
    sy__yaml_fail(w, sy__yaml_map_get(w, n, "fallback"),
                  "the fallback is the variant's own upstream (retry: tries it again)");
    sy__yaml_path_pop(w, old);
    return -1;
  }
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

static int p_direction(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
  static const char *const names[] = {"maximize", "minimize", NULL};
  sy_thompson_conf_t *t = obj;
  return sy__cfg_choice(w, v, names, &t->minimise);
}

/* Binary outcome: Beta(alpha, beta). */
static const sy__yaml_field_t beta_prior_fields[] = {
    {"alpha", sy__cfg_p_positive, offsetof(sy_thompson_conf_t, prior_alpha), 0, 0, 0, NULL},
    {"beta", sy__cfg_p_positive, offsetof(sy_thompson_conf_t, prior_beta), 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* Continuous outcome: Normal-inverse-gamma(mu, kappa, alpha, beta). */
static const sy__yaml_field_t nig_prior_fields[] = {
    {"mu", sy__cfg_p_real, offsetof(sy_thompson_conf_t, prior_mu), 0, 0, 0, NULL},
    {"kappa", sy__cfg_p_positive, offsetof(sy_thompson_conf_t, prior_kappa), 0, 0, 0, NULL},
    {"alpha", sy__cfg_p_positive, offsetof(sy_thompson_conf_t, prior_a), 0, 0, 0, NULL},
    {"beta", sy__cfg_p_positive, offsetof(sy_thompson_conf_t, prior_b), 0, 0, 0, NULL},
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
static int p_log_scale(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
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
    {"floor", sy__cfg_p_nonnegative, offsetof(sy_thompson_conf_t, floor), 0, 0, 0, NULL},
    {"top_two", sy__yaml_p_bool, offsetof(sy_thompson_conf_t, top_two), 0, 0, 0, NULL},
    {"top_two_beta", sy__cfg_p_fraction, offsetof(sy_thompson_conf_t, top_two_beta), 0, 0, 0, NULL},
    {"sticky_ttl_ms", sy__yaml_p_uint, offsetof(sy_thompson_conf_t, sticky_ttl_ms), 0, MAX_MS, 0,
     NULL},
    {"segment_header", sy__cfg_p_header_name, offsetof(sy_thompson_conf_t, segment_header), 0, 0, 0,
     NULL},
    {"segment_min_samples", sy__cfg_p_positive, offsetof(sy_thompson_conf_t, segment_min_samples),
     0, 0, 0, NULL},
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
  sy__cfg_ascii_case(e->method, 1);
  return 0;
}

static int p_path_prefix(sy__yaml_walk_t *w, yaml_node_t *v, void *obj, const sy__yaml_field_t *f) {
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
    return sy__yaml_fail(w, v, "header value must not contain CR, LF or other control characters");
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
    {"header", sy__cfg_p_header_name, offsetof(sy_experiment_conf_t, match_header), 0, 0, 0, NULL},
    {"header_value", p_header_value, 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL},
};

/* Order matters: policy and variants before thompson, variants before control,
 * outcome before thompson (which takes the metric's type and direction from it). */
static const sy__yaml_field_t experiment_fields[] = {
    {"id", sy__cfg_p_id, offsetof(sy_experiment_conf_t, id), 0, 0, 1, NULL},
    {"match", sy__yaml_p_struct, 0, 0, 0, 1, match_fields},
    {"sticky_header", sy__cfg_p_header_name, offsetof(sy_experiment_conf_t, sticky_header), 0, 0, 0,
     NULL},
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
  for (size_t i = 0; i < e->nvariants; i++) { /* schema 5's refs (proto/event5.h) */
    sy_variant_conf_t *v = &e->variants[i];
    char def[1024];
    const sy__cfg_build_t *b = w->user;
    size_t dl = sy_ev5_ref_def(def, sizeof def, e->id, v->id, v->version, v->prompt_version,
                               v->model, e->id, b->cfg->config_hash);
    if (dl == 0 || (v->ref_def = strdup(def)) == NULL)
      return sy__yaml_fail(w, n, "variant '%s': its ids are too long for an event ref", v->id);
    sy_ev5_ref_id(def, dl, v->ref);
    char key[SY_KEY_MAX];
    if (sy_key_variant(key, sizeof key, e->id, v->id) < 0 || (v->stats_key = strdup(key)) == NULL)
      return sy__yaml_fail(w, n, "variant '%s': out of memory", v->id);
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
    if (sy__cfg_streq_null(o->method, e->method) && strcmp(o->path_prefix, e->path_prefix) == 0 &&
        sy__cfg_streq_null(o->match_header, e->match_header) &&
        sy__cfg_streq_null(o->match_header_value, e->match_header_value)) {
      size_t old = sy__yaml_path_key(w, "match");
      sy__yaml_fail(w, sy__yaml_map_get(w, n, "match"),
                    "same match as experiment '%s' (line %d): ambiguous", o->id, o->line);
      sy__yaml_path_pop(w, old);
      return -1;
    }
  }
  return 0;
}

/* See config_exp.h. */
int sy__cfg_p_experiments(sy__yaml_walk_t *w, yaml_node_t *v, void *obj,
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

static void free_variant(sy_variant_conf_t *v) {
  free(v->id);
  free(v->ref_def);
  free(v->stats_key);
  free(v->version);
  free(v->model);
  free(v->fallback_model);
  free(v->prompt_version);
  free(v->system_prompt);
  json_decref(v->body_fields);
  for (size_t i = 0; i < v->nheaders; i++) {
    free(v->headers[i].name);
    free(v->headers[i].value);
  }
  free(v->headers);
}

/* See config_exp.h. */
void sy__cfg_experiment_free(sy_experiment_conf_t *e) {
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
