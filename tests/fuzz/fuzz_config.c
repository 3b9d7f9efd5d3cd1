/*
 * fuzz_config.c — libFuzzer target for config loading (router/config.h): the
 * input is parsed as the YAML text of a config file.
 *
 * The target aborts when:
 *   - a refusal leaves a config behind, or a message that is empty, is not one
 *     line, or does not start with the file name and a line number;
 *   - an accepted config breaks what config.h promises the proxy: at least one
 *     listener and upstream with valid ports and distinct names; every name
 *     resolved to an index in range (variant -> upstream, control -> variant,
 *     default_route -> upstream); a system prompt exactly when a prompt version;
 *     body fields NULL or a non-empty JSON object; weights in [0, 1e6], a split
 *     with a positive total; header names lower-case; a salt and version always;
 *     a thompson floor with floor * variants <= 1.
 * Memory problems and leaks (of refusals too) are found by ASan/LeakSanitizer.
 * Build with libFuzzer: tests/fuzz/run; without it: meson test --suite fuzz.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "fuzz.yaml"

static void require(int cond) {
  if (!cond)
    abort();
}

/* NULL or a non-empty string without upper-case letters. */
static int lower_or_null(const char *s) {
  if (s == NULL)
    return 1;
  if (*s == '\0')
    return 0;
  for (; *s != '\0'; s++)
    if (isupper((unsigned char)*s))
      return 0;
  return 1;
}

static void check_hostports(const sy_hostport_t *hp, size_t n) {
  require(n > 0 && hp != NULL);
  for (size_t i = 0; i < n; i++)
    require(hp[i].host != NULL && hp[i].host[0] != '\0' && hp[i].port > 0);
}

static void check_variant(const sy_config_t *cfg, const sy_variant_conf_t *v) {
  require(v->id != NULL && v->id[0] != '\0' && v->version != NULL);
  require(v->upstream < cfg->nupstreams);
  require(v->weight >= 0 && v->weight <= 1e6);
  require((v->prompt_version == NULL) == (v->system_prompt == NULL));
  require(v->body_fields == NULL ||
          (json_is_object(v->body_fields) && json_object_size(v->body_fields) > 0));
  for (size_t i = 0; i < v->nheaders; i++)
    require(v->headers[i].name != NULL && v->headers[i].value != NULL);
}

static void check_experiment(const sy_config_t *cfg, const sy_experiment_conf_t *e) {
  require(e->id != NULL && e->salt != NULL && e->path_prefix != NULL && e->path_prefix[0] == '/');
  require(lower_or_null(e->match_header) && lower_or_null(e->sticky_header));
  require(e->match_header_value == NULL || e->match_header != NULL);
  require(e->nvariants > 0 && e->control < e->nvariants);
  double total = 0;
  for (size_t i = 0; i < e->nvariants; i++) {
    check_variant(cfg, &e->variants[i]);
    total += e->variants[i].weight;
    for (size_t j = 0; j < i; j++)
      require(strcmp(e->variants[i].id, e->variants[j].id) != 0);
  }
  require(e->policy != SY_POLICY_SPLIT || total > 0);
  if (e->policy == SY_POLICY_THOMPSON) {
    require(e->thompson.floor >= 0 && e->thompson.floor * (double)e->nvariants <= 1);
    require(lower_or_null(e->thompson.segment_header));
  }
}

/* The promises of config.h on an accepted config. */
static void check_config(const sy_config_t *cfg) {
  require(cfg->path != NULL && strcmp(cfg->path, NAME) == 0);
  require(cfg->workers >= 1);
  check_hostports(cfg->listeners, cfg->nlisteners);
  require(cfg->nupstreams > 0);
  for (size_t i = 0; i < cfg->nupstreams; i++) {
    const sy_upstream_conf_t *u = &cfg->upstreams[i];
    require(u->name != NULL && sy_config_upstream_index(cfg, u->name) == (int)i);
    check_hostports(u->servers, u->nservers);
  }
  for (size_t i = 0; i < cfg->nexperiments; i++) {
    check_experiment(cfg, &cfg->experiments[i]);
    for (size_t j = 0; j < i; j++)
      require(strcmp(cfg->experiments[i].id, cfg->experiments[j].id) != 0);
  }
  require(cfg->default_kind != SY_DEFAULT_PASS || cfg->default_upstream < cfg->nupstreams);
}

/* A refusal's message: "fuzz.yaml:LINE: ...", one line. */
static void check_error(const char *err) {
  size_t n = strlen(NAME);
  require(strncmp(err, NAME ":", n + 1) == 0 && isdigit((unsigned char)err[n + 1]));
  for (const char *p = err; *p != '\0'; p++)
    require((unsigned char)*p >= 0x20 && *p != 0x7f);
}

/* libFuzzer entry point: see the file comment. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sy_config_t dummy;
  sy_config_t *cfg = &dummy; /* sy_config_parse must overwrite it */
  char err[512];
  int rc = sy_config_parse(NAME, (const char *)data, size, &cfg, err, sizeof err);
  if (rc == 0) {
    require(cfg != NULL);
    check_config(cfg);
    sy_config_free(cfg);
  } else {
    require(rc == -1 && cfg == NULL);
    check_error(err);
  }
  return 0;
}
