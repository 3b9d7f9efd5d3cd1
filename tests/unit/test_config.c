/*
 * test_config.c — loading and validating the YAML config (router/config.c).
 *
 * Covers the shipped minimal example field by field, a config that uses every key,
 * thompson experiments (binary, continuous, all defaults) with stats_file, the
 * defaults, the YAML-to-JSON typing of retrieval.body, and a table of invalid
 * configs, each asserting the complete one-line message (file, line, key path,
 * problem). Every error path runs under ASan/LSan in the sanitizer build, so a leak
 * on any of them fails the suite.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router/config.h"
#include "tests/unit/check.h"

#include "tests/unit/config_fixture.h"

static void test_minimal_example(void) {
  char err[512];
  sy_config_t *cfg = NULL;
  int rc = sy_config_load("deploy/examples/minimal.yaml", &cfg, err, sizeof err);
  CHECK_MSG(rc == 0 && cfg != NULL, "%s", err);
  if (cfg == NULL)
    return;
  CHECK(strcmp(cfg->path, "deploy/examples/minimal.yaml") == 0);
  CHECK(cfg->workers == 1);
  CHECK(cfg->nlisteners == 1);
  CHECK(strcmp(cfg->listeners[0].host, "127.0.0.1") == 0 && cfg->listeners[0].port == 8080);
  CHECK(cfg->nupstreams == 1);
  CHECK(strcmp(cfg->upstreams[0].name, "mock") == 0);
  CHECK(cfg->upstreams[0].nservers == 1);
  CHECK(strcmp(cfg->upstreams[0].servers[0].host, "127.0.0.1") == 0);
  CHECK(cfg->upstreams[0].servers[0].port == 9001);
  CHECK(cfg->nexperiments == 1);
  const sy_experiment_conf_t *e = &cfg->experiments[0];
  CHECK(strcmp(e->id, "chat") == 0);
  CHECK(e->method != NULL && strcmp(e->method, "POST") == 0);
  CHECK(strcmp(e->path_prefix, "/v1/chat/completions") == 0);
  CHECK(e->match_header == NULL && e->match_header_value == NULL);
  CHECK(e->sticky_header != NULL && strcmp(e->sticky_header, "x-user-id") == 0);
  CHECK(strcmp(e->salt, "chat") == 0);
  CHECK(e->policy == SY_POLICY_SPLIT);
  CHECK(e->nvariants == 2 && e->control == 0);
  const char *ids[] = {"a", "b"}, *models[] = {"model-a", "model-b"};
  for (size_t i = 0; i < 2 && i < e->nvariants; i++) {
    const sy_variant_conf_t *v = &e->variants[i];
    CHECK(strcmp(v->id, ids[i]) == 0);
    CHECK(strcmp(v->version, "1") == 0);
    CHECK(v->upstream == 0);
    CHECK(v->weight == 50);
    CHECK(v->model != NULL && strcmp(v->model, models[i]) == 0);
    CHECK(v->prompt_version == NULL && v->system_prompt == NULL);
    CHECK(v->body_fields == NULL && v->nheaders == 0);
  }
  CHECK(cfg->default_kind == SY_DEFAULT_NOT_FOUND);
  sy_config_free(cfg);
}

static const char FULL[] =
    "workers: 4\n"
    "listen:\n"
    "  - 0.0.0.0:8080\n"
    "  - \"[::1]:8081\"\n"
    "limits:\n"
    "  max_header_bytes: 8192\n"
    "  max_body_bytes: 2097152\n"
    "  max_stream_body_bytes: 5368709120\n"
    "  header_timeout_ms: 5000\n"
    "  idle_timeout_ms: 30000\n"
    "  shutdown_timeout_ms: 15000\n"
    "upstreams:\n"
    "  primary:\n"
    "    servers: [10.0.0.1:9001, llm.internal:443, \"[fe80::1%eth0]:80\"]\n"
    "    pool_size: 8\n"
    "    connect_timeout_ms: 500\n"
    "    first_byte_timeout_ms: 20000\n"
    "    idle_timeout_ms: 45000\n"
    "  fallback:\n"
    "    servers: [127.0.0.1:9002]\n"
    "prompts:\n"
    "  concise-v2: \"You are a concise assistant.\"\n"
    "  long-v1: |\n"
    "    You are thorough.\n"
    "    Explain each step.\n"
    "experiments:\n"
    "  - id: chat\n"
    "    match:\n"
    "      method: post\n"
    "      path_prefix: /v1/chat/completions\n"
    "      header: X-Task-Type\n"
    "      header_value: Chat\n"
    "    sticky_header: X-User-ID\n"
    "    salt: chat-2026-11\n"
    "    policy: split\n"
    "    control: b\n"
    "    variants:\n"
    "      - id: a\n"
    "        version: 2\n"
    "        upstream: primary\n"
    "        weight: 0.25\n"
    "        model: model-a\n"
    "        prompt_version: concise-v2\n"
    "        retrieval:\n"
    "          body: {top_k: 5, index: docs-v3}\n"
    "          headers: {x-retrieval-index: docs-v3}\n"
    "        headers: {X-Extra: \"1\", x-other: plain text}\n"
    "      - id: b\n"
    "        upstream: fallback\n"
    "        weight: 0\n"
    "        prompt_version: long-v1\n"
    "  - id: embed\n"
    "    match: {path_prefix: /v1/embeddings}\n"
    "    policy: fixed\n"
    "    control: only\n"
    "    variants:\n"
    "      - {id: only, upstream: fallback, weight: 0}\n"
    "default_route:\n"
    "  upstream: fallback\n";

static void check_full_top(const sy_config_t *cfg) {
  CHECK(cfg->workers == 4);
  CHECK(cfg->nlisteners == 2);
  CHECK(strcmp(cfg->listeners[0].host, "0.0.0.0") == 0 && cfg->listeners[0].port == 8080);
  CHECK(strcmp(cfg->listeners[1].host, "::1") == 0 && cfg->listeners[1].port == 8081);
  CHECK(cfg->limits.max_header_bytes == 8192);
  CHECK(cfg->limits.max_body_bytes == 2097152);
  CHECK(cfg->limits.max_stream_body_bytes == 5368709120ULL);
  CHECK(cfg->limits.header_timeout_ms == 5000);
  CHECK(cfg->limits.idle_timeout_ms == 30000);
  CHECK(cfg->limits.shutdown_timeout_ms == 15000);
  CHECK(cfg->nupstreams == 2);
  const sy_upstream_conf_t *u = &cfg->upstreams[0];
  CHECK(strcmp(u->name, "primary") == 0 && u->line == 13);
  CHECK(u->nservers == 3);
  CHECK(strcmp(u->servers[1].host, "llm.internal") == 0 && u->servers[1].port == 443);
  CHECK(strcmp(u->servers[2].host, "fe80::1%eth0") == 0 && u->servers[2].port == 80);
  CHECK(u->pool_size == 8 && u->connect_timeout_ms == 500);
  CHECK(u->first_byte_timeout_ms == 20000 && u->idle_timeout_ms == 45000);
  CHECK(strcmp(cfg->upstreams[1].name, "fallback") == 0);
  CHECK(sy_config_upstream_index(cfg, "fallback") == 1);
  CHECK(sy_config_upstream_index(cfg, "primary") == 0);
  CHECK(sy_config_upstream_index(cfg, "Primary") == -1);
  CHECK(cfg->default_kind == SY_DEFAULT_PASS && cfg->default_upstream == 1);
}

static void check_full_chat(const sy_experiment_conf_t *e) {
  CHECK(strcmp(e->id, "chat") == 0 && e->line == 27);
  CHECK(strcmp(e->method, "POST") == 0);
  CHECK(strcmp(e->match_header, "x-task-type") == 0);
  CHECK(strcmp(e->match_header_value, "Chat") == 0); /* values keep their case */
  CHECK(strcmp(e->sticky_header, "x-user-id") == 0);
  CHECK(strcmp(e->salt, "chat-2026-11") == 0);
  CHECK(e->policy == SY_POLICY_SPLIT && e->nvariants == 2 && e->control == 1);
  const sy_variant_conf_t *a = &e->variants[0], *b = &e->variants[1];
  CHECK(a->line == 38 && strcmp(a->version, "2") == 0);
  CHECK(a->upstream == 0 && a->weight == 0.25);
  CHECK(strcmp(a->model, "model-a") == 0);
  CHECK(strcmp(a->prompt_version, "concise-v2") == 0);
  CHECK(strcmp(a->system_prompt, "You are a concise assistant.") == 0);
  CHECK(json_is_object(a->body_fields) && json_object_size(a->body_fields) == 2);
  CHECK(json_integer_value(json_object_get(a->body_fields, "top_k")) == 5);
  CHECK(strcmp(json_string_value(json_object_get(a->body_fields, "index")), "docs-v3") == 0);
  /* `headers` first, then `retrieval.headers`, each in file order, names as written. */
  CHECK(a->nheaders == 3);
  if (a->nheaders == 3) {
    CHECK(strcmp(a->headers[0].name, "X-Extra") == 0 && strcmp(a->headers[0].value, "1") == 0);
    CHECK(strcmp(a->headers[1].name, "x-other") == 0);
    CHECK(strcmp(a->headers[1].value, "plain text") == 0);
    CHECK(strcmp(a->headers[2].name, "x-retrieval-index") == 0);
    CHECK(strcmp(a->headers[2].value, "docs-v3") == 0);
  }
  CHECK(b->upstream == 1 && b->weight == 0 && b->model == NULL);
  CHECK(strcmp(b->system_prompt, "You are thorough.\nExplain each step.\n") == 0);
  CHECK(b->body_fields == NULL && b->nheaders == 0);
}

static void test_full(void) {
  sy_config_t *cfg = parse_ok(FULL);
  if (cfg == NULL)
    return;
  check_full_top(cfg);
  CHECK(cfg->nexperiments == 2);
  if (cfg->nexperiments == 2) {
    check_full_chat(&cfg->experiments[0]);
    const sy_experiment_conf_t *e = &cfg->experiments[1];
    CHECK(e->method == NULL && e->match_header == NULL && e->sticky_header == NULL);
    CHECK(e->policy == SY_POLICY_FIXED && e->control == 0);
    CHECK(strcmp(e->salt, "embed") == 0);
  }
  sy_config_free(cfg);
}

static void test_defaults(void) {
  sy_config_t *cfg = parse_ok(BASE EXP_HEAD VAR_A);
  if (cfg == NULL)
    return;
  CHECK(strcmp(cfg->path, "t.yaml") == 0);
  CHECK(cfg->workers == 1);
  CHECK(cfg->limits.max_header_bytes == 16384);
  CHECK(cfg->limits.max_body_bytes == 1048576);
  CHECK(cfg->limits.max_stream_body_bytes == 104857600);
  CHECK(cfg->limits.header_timeout_ms == 10000);
  CHECK(cfg->limits.idle_timeout_ms == 60000);
  CHECK(cfg->limits.shutdown_timeout_ms == 30000);
  const sy_upstream_conf_t *u = &cfg->upstreams[0];
  CHECK(u->pool_size == 64 && u->connect_timeout_ms == 2000);
  CHECK(u->first_byte_timeout_ms == 60000 && u->idle_timeout_ms == 60000);
  CHECK(u->eject_after == 5 && u->eject_ms == 10000 && u->eject_max_ms == 300000);
  CHECK(u->eject_max_percent == 50);
  CHECK(u->line == 2);
  const sy_experiment_conf_t *e = &cfg->experiments[0];
  CHECK(e->line == 4 && e->method == NULL && e->sticky_header == NULL);
  CHECK(strcmp(e->salt, "e") == 0 && e->policy == SY_POLICY_SPLIT);
  const sy_variant_conf_t *v = &e->variants[0];
  CHECK(v->line == 8 && strcmp(v->version, "1") == 0 && v->weight == 1);
  CHECK(v->model == NULL && v->prompt_version == NULL && v->system_prompt == NULL);
  CHECK(v->body_fields == NULL && v->headers == NULL && v->nheaders == 0);
  CHECK(cfg->default_kind == SY_DEFAULT_NOT_FOUND);
  CHECK(cfg->stats_file == NULL && cfg->stats_poll_ms == 1000);
  sy_config_free(cfg);

  cfg = parse_ok(BASE);
  if (cfg != NULL)
    CHECK(cfg->nexperiments == 0 && cfg->experiments == NULL);
  sy_config_free(cfg);
}

/* retrieval.body: plain scalars typed as YAML 1.1 does, quoted ones strings. */
static const char BODY[] = BASE EXP_HEAD
      "      - id: a\n"
      "        upstream: u\n"
      "        retrieval:\n"
      "          body:\n"
      "            i: 5\n"
      "            neg: -12\n"
      "            r: 0.5\n"
      "            e: 1e3\n"
      "            t: true\n"
      "            y: yes\n"
      "            f: False\n"
      "            n: null\n"
      "            tilde: ~\n"
      "            q: \"5\"\n"
      "            sq: 'true'\n"
      "            s: docs-v3\n"
      "            zip: 007\n"
      "            list: [1, two, 3.5]\n"
      "            map: {k: {deep: off}}\n";

static void test_body_typing(void) {
  sy_config_t *cfg = parse_ok(BODY);
  if (cfg == NULL)
    return;
  json_t *b = cfg->experiments[0].variants[0].body_fields;
  CHECK(json_object_size(b) == 15);
  CHECK(json_is_integer(json_object_get(b, "i")) && json_integer_value(json_object_get(b, "i")) == 5);
  CHECK(json_integer_value(json_object_get(b, "neg")) == -12);
  CHECK(json_is_real(json_object_get(b, "r")) && json_real_value(json_object_get(b, "r")) == 0.5);
  CHECK(json_is_real(json_object_get(b, "e")) && json_real_value(json_object_get(b, "e")) == 1000);
  CHECK(json_is_true(json_object_get(b, "t")) && json_is_true(json_object_get(b, "y")));
  CHECK(json_is_false(json_object_get(b, "f")));
  CHECK(json_is_null(json_object_get(b, "n")) && json_is_null(json_object_get(b, "tilde")));
  CHECK(strcmp(json_string_value(json_object_get(b, "q")), "5") == 0);
  CHECK(strcmp(json_string_value(json_object_get(b, "sq")), "true") == 0);
  CHECK(strcmp(json_string_value(json_object_get(b, "s")), "docs-v3") == 0);
  CHECK(strcmp(json_string_value(json_object_get(b, "zip")), "007") == 0);
  json_t *list = json_object_get(b, "list");
  CHECK(json_array_size(list) == 3);
  CHECK(json_integer_value(json_array_get(list, 0)) == 1);
  CHECK(strcmp(json_string_value(json_array_get(list, 1)), "two") == 0);
  CHECK(json_real_value(json_array_get(list, 2)) == 3.5);
  CHECK(json_is_false(json_object_get(json_object_get(json_object_get(b, "map"), "k"), "deep")));
  sy_config_free(cfg);
}

/* Lower-/upper-casing, IPv6 forms, aliases, empty body, quoted numbers kept as text. */
static void test_normalisation(void) {
  sy_config_t *cfg = parse_ok(
      "listen: [\"[::]:80\", \"[2001:db8::1]:65535\", localhost:1]\n"
      "upstreams: {u: {servers: [127.0.0.1:9001]}}\n"
      "experiments:\n"
      "  - id: e\n"
      "    match: {method: Get, path_prefix: /, header: X-A}\n"
      "    sticky_header: X-USER\n"
      "    control: a\n"
      "    variants:\n"
      "      - &va {id: a, upstream: u, version: '1.10', retrieval: {body: {}}}\n"
      "      - {id: b, upstream: u, version: 1.10, weight: 3}\n");
  if (cfg == NULL)
    return;
  CHECK(strcmp(cfg->listeners[0].host, "::") == 0 && cfg->listeners[0].port == 80);
  CHECK(strcmp(cfg->listeners[1].host, "2001:db8::1") == 0 && cfg->listeners[1].port == 65535);
  CHECK(strcmp(cfg->listeners[2].host, "localhost") == 0 && cfg->listeners[2].port == 1);
  const sy_experiment_conf_t *e = &cfg->experiments[0];
  CHECK(strcmp(e->method, "GET") == 0);
  CHECK(strcmp(e->match_header, "x-a") == 0 && e->match_header_value == NULL);
  CHECK(strcmp(e->sticky_header, "x-user") == 0);
  CHECK(strcmp(e->variants[0].version, "1.10") == 0);
  CHECK(strcmp(e->variants[1].version, "1.10") == 0);
  CHECK(e->variants[0].body_fields == NULL); /* an empty body sets nothing */
  CHECK(e->variants[1].weight == 3);
  sy_config_free(cfg);
}

/* Three thompson experiments: binary with every key, continuous, and all defaults. */
static const char THOMPSON[] =
    "listen: [127.0.0.1:8080]\n"
    "upstreams: {u: {servers: [127.0.0.1:9001]}, v: {servers: [127.0.0.1:9002]}}\n"
    "stats_file: /var/lib/switchyard/stats.json\n"
    "stats_poll_ms: 250\n"
    "experiments:\n"
    "  - id: bandit\n"
    "    match: {path_prefix: /v1/chat/completions}\n"
    "    policy: thompson\n"
    "    sticky_header: X-Session-ID\n"
    "    control: b\n"
    "    variants:\n"
    "      - {id: a, upstream: u, weight: 0}\n"
    "      - {id: b, upstream: v, weight: 0}\n"
    "      - {id: c, upstream: u}\n"
    "    thompson:\n"
    "      outcome: binary\n"
    "      prior: {alpha: 2, beta: 3.5}\n"
    "      direction: maximize\n"
    "      log_scale: false\n"
    "      floor: 0.02\n"
    "      top_two: true\n"
    "      top_two_beta: 0.25\n"
    "      sticky_ttl_ms: 0\n"
    "      segment_header: X-Tenant-ID\n"
    "      segment_min_samples: 50\n"
    "  - id: latency\n"
    "    match: {path_prefix: /v1/embeddings}\n"
    "    policy: thompson\n"
    "    control: fast\n"
    "    thompson:\n"
    "      prior: {mu: -1.5, kappa: 0.5, alpha: 2, beta: 7.5e-1}\n"
    "      outcome: continuous\n" /* after prior in the file: outcome is read first */
    "      direction: minimize\n"
    "      log_scale: yes\n"
    "      floor: 0.5\n"
    "      top_two: Off\n"
    "      sticky_ttl_ms: 86400000\n"
    "    variants:\n"
    "      - {id: fast, upstream: u}\n"
    "      - {id: slow, upstream: v}\n"
    "  - id: plain\n"
    "    match: {path_prefix: /v1/x}\n"
    "    policy: thompson\n"
    "    control: only\n"
    "    variants: [{id: only, upstream: u, weight: 0}]\n";

/* The defaults of config.h, whatever the policy. */
static void check_thompson_defaults(const sy_thompson_conf_t *t) {
  CHECK(t->continuous == 0 && t->prior_alpha == 1 && t->prior_beta == 1);
  CHECK(t->prior_mu == 0 && t->prior_kappa == 0.01 && t->prior_a == 1 && t->prior_b == 1);
  CHECK(t->minimise == 0 && t->log_scale == 0 && t->floor == 0);
  CHECK(t->top_two == 0 && t->top_two_beta == 0.5);
  CHECK(t->sticky_ttl_ms == 1800000);
  CHECK(t->segment_header == NULL && t->segment_min_samples == 100);
}

static void check_thompson_binary(const sy_experiment_conf_t *e) {
  const sy_thompson_conf_t *t = &e->thompson;
  CHECK(strcmp(e->id, "bandit") == 0 && e->line == 6);
  CHECK(e->policy == SY_POLICY_THOMPSON && e->nvariants == 3 && e->control == 1);
  CHECK(strcmp(e->sticky_header, "x-session-id") == 0);
  CHECK(e->variants[0].weight == 0 && e->variants[2].weight == 1);
  CHECK(e->variants[1].upstream == 1);
  CHECK(t->continuous == 0 && t->prior_alpha == 2 && t->prior_beta == 3.5);
  CHECK(t->prior_mu == 0 && t->prior_kappa == 0.01 && t->prior_a == 1 && t->prior_b == 1);
  CHECK(t->minimise == 0 && t->log_scale == 0 && t->floor == 0.02);
  CHECK(t->top_two == 1 && t->top_two_beta == 0.25);
  CHECK(t->sticky_ttl_ms == 0);
  CHECK(t->segment_header != NULL && strcmp(t->segment_header, "x-tenant-id") == 0);
  CHECK(t->segment_min_samples == 50);
}

static void check_thompson_continuous(const sy_experiment_conf_t *e) {
  const sy_thompson_conf_t *t = &e->thompson;
  CHECK(strcmp(e->id, "latency") == 0 && e->line == 26);
  CHECK(e->policy == SY_POLICY_THOMPSON && e->nvariants == 2 && e->control == 0);
  CHECK(e->sticky_header == NULL);
  CHECK(t->continuous == 1);
  CHECK(t->prior_mu == -1.5 && t->prior_kappa == 0.5 && t->prior_a == 2 && t->prior_b == 0.75);
  CHECK(t->prior_alpha == 1 && t->prior_beta == 1); /* the binary prior keeps its default */
  CHECK(t->minimise == 1 && t->log_scale == 1 && t->floor == 0.5);
  CHECK(t->top_two == 0 && t->top_two_beta == 0.5);
  CHECK(t->sticky_ttl_ms == 86400000);
  CHECK(t->segment_header == NULL && t->segment_min_samples == 100);
}

static void test_thompson(void) {
  sy_config_t *cfg = parse_ok(THOMPSON);
  if (cfg == NULL)
    return;
  CHECK(strcmp(cfg->stats_file, "/var/lib/switchyard/stats.json") == 0);
  CHECK(cfg->stats_poll_ms == 250);
  CHECK(cfg->nexperiments == 3);
  if (cfg->nexperiments == 3) {
    check_thompson_binary(&cfg->experiments[0]);
    check_thompson_continuous(&cfg->experiments[1]);
    const sy_experiment_conf_t *e = &cfg->experiments[2];
    CHECK(e->policy == SY_POLICY_THOMPSON && e->nvariants == 1 && e->variants[0].weight == 0);
    check_thompson_defaults(&e->thompson);
  }
  sy_config_free(cfg);

  /* Defaults for other policies too; an empty block; the range ends. */
  cfg = parse_ok(BASE EXP_HEAD VAR_A);
  if (cfg != NULL)
    check_thompson_defaults(&cfg->experiments[0].thompson);
  sy_config_free(cfg);
  cfg = parse_ok("stats_poll_ms: 10\n" BASE EXP_HEAD VAR_A
                 "    policy: thompson\n    thompson: {}\n");
  if (cfg != NULL) {
    CHECK(cfg->stats_poll_ms == 10 && cfg->stats_file == NULL);
    check_thompson_defaults(&cfg->experiments[0].thompson);
  }
  sy_config_free(cfg);
  cfg = parse_ok("stats_poll_ms: 3600000\n" BASE EXP_HEAD VAR_A "      - {id: b, upstream: u}\n"
                 "    policy: thompson\n"
                 "    thompson: {outcome: continuous, prior: {mu: 0}, top_two_beta: 0.999,\n"
                 "               floor: 0.5, top_two: YES, segment_min_samples: 0.5}\n");
  if (cfg != NULL) {
    const sy_thompson_conf_t *t = &cfg->experiments[0].thompson;
    CHECK(cfg->stats_poll_ms == 3600000);
    CHECK(t->continuous == 1 && t->prior_mu == 0 && t->prior_kappa == 0.01);
    CHECK(t->top_two_beta == 0.999 && t->floor == 0.5 && t->top_two == 1);
    CHECK(t->segment_min_samples == 0.5);
  }
  sy_config_free(cfg);
}


/* An experiment with policy thompson and two variants; its thompson: keys follow from
 * line 12. */
#define TS_HEAD                                                                                  \
  BASE EXP_HEAD VAR_A "      - {id: b, upstream: u}\n"                                           \
                      "    policy: thompson\n"                                                   \
                      "    thompson:\n"
#define TS_CONT TS_HEAD "      outcome: continuous\n"

static const err_case_t ERRORS[] = {
    /* top level */
    {BASE "bogus: 1\n", "t.yaml:3: bogus: unknown key"},
    {BASE "worker: 2\n", "t.yaml:3: worker: unknown key (did you mean 'workers'?)"},
    {"workers: many\n" BASE, "t.yaml:1: workers: must be an integer in 1..64"},
    {"workers: 0\n" BASE, "t.yaml:1: workers: must be an integer in 1..64"},
    {"workers: 65\n" BASE, "t.yaml:1: workers: must be an integer in 1..64"},
    {"workers: \"2\"\n" BASE, "t.yaml:1: workers: must be an integer in 1..64"},
    {"workers: 2.5\n" BASE, "t.yaml:1: workers: must be an integer in 1..64"},
    {"- listen\n", "t.yaml:1: (top level): must be a mapping"},
    {"", "t.yaml:1: (top level): the config is empty"},
    {"# only a comment\n", "t.yaml:1: (top level): the config is empty"},
    {BASE "listen: [127.0.0.1:8081]\n", "t.yaml:3: listen: duplicate key (first at line 1)"},
    {"? [a]\n: 1\n" BASE, "t.yaml:1: (top level): keys must be strings"},
    /* listen and host:port */
    {"upstreams: {u: {servers: [127.0.0.1:9001]}}\n", "t.yaml:1: listen: required key is missing"},
    {"listen:\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen: must be a list of host:port"},
    {"listen: []\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen: needs at least one host:port"},
    {"listen: 127.0.0.1:8080\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen: must be a list of host:port"},
    {"upstreams: {u: {servers: [127.0.0.1:9001]}}\nlisten:\n  - 127.0.0.1\n",
     "t.yaml:3: listen[0]: expected host:port, got '127.0.0.1'"},
    {"listen: [a:1, 127.0.0.1:0]\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen[1]: port must be an integer in 1..65535, got '127.0.0.1:0'"},
    {"listen: [127.0.0.1:65536]\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen[0]: port must be an integer in 1..65535, got '127.0.0.1:65536'"},
    {"listen: [\"127.0.0.1:http\"]\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen[0]: port must be an integer in 1..65535, got '127.0.0.1:http'"},
    {"listen: [\":8080\"]\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen[0]: invalid host in ':8080'"},
    {"listen: [\"::1:8080\"]\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen[0]: an IPv6 address must be written [address]:port"},
    {"listen: [\"[zz::1]:80\"]\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen[0]: invalid IPv6 address in '[zz::1]:80'"},
    {"listen: [\"[::1]8080\"]\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen[0]: expected [address]:port, got '[::1]8080'"},
    {"listen:\n  - 127.0.0.1:8080\n  - 127.0.0.1:8080\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:3: listen[1]: duplicate address (same as entry 0)"},
    {"listen: [\"\"]\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen[0]: must not be empty"},
    /* limits and upstreams */
    {BASE "limits: 5\n", "t.yaml:3: limits: must be a mapping"},
    {BASE "limits:\n  max_body_bytes: -1\n",
     "t.yaml:4: limits.max_body_bytes: must be an integer in 1..1073741824"},
    {BASE "limits:\n  header_timeout: 5\n",
     "t.yaml:4: limits.header_timeout: unknown key (did you mean 'header_timeout_ms'?)"},
    {"listen: [127.0.0.1:8080]\n", "t.yaml:1: upstreams: required key is missing"},
    {"listen: [127.0.0.1:8080]\nupstreams: {}\n", "t.yaml:2: upstreams: needs at least one upstream"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    pool_size: 3\n",
     "t.yaml:4: upstreams.u.servers: required key is missing"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n    pool: 3\n",
     "t.yaml:5: upstreams.u.pool: unknown key"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    connect_timeout_ms: -5\n",
     "t.yaml:5: upstreams.u.connect_timeout_ms: must be an integer in 1..86400000"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    pool_size: 1.5\n",
     "t.yaml:5: upstreams.u.pool_size: must be an integer in 0..65535"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: []\n",
     "t.yaml:4: upstreams.u.servers: needs at least one host:port"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u/v:\n    servers: [127.0.0.1:9001]\n",
     "t.yaml:3: upstreams.u/v: upstream names must be 1..64 characters of [A-Za-z0-9_.-]"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u: {servers: [127.0.0.1:1]}\n  u: {servers: "
     "[127.0.0.1:2]}\n",
     "t.yaml:4: upstreams.u: duplicate key (first at line 3)"},
    /* prompts */
    {BASE "prompts: {p: [a]}\n", "t.yaml:3: prompts.p: must be a string"},
    {BASE "prompts: [a]\n", "t.yaml:3: prompts: must be a mapping"},
    /* experiments */
    {BASE "experiments: {a: 1}\n", "t.yaml:3: experiments: must be a list of experiments"},
    {BASE EXP_HEAD "      - {id: a, upstream: u}\n      - {id: b, upstream: u, weight: -1}\n",
     "t.yaml:9: experiments[0].variants[1].weight: must be a number >= 0"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, weight: lots}\n",
     "t.yaml:8: experiments[0].variants[0].weight: must be a number >= 0"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, weight: \"5\"}\n",
     "t.yaml:8: experiments[0].variants[0].weight: must be a number >= 0"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, weight: 1e9}\n",
     "t.yaml:8: experiments[0].variants[0].weight: must be at most 1e+06"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, weight: 0}\n      - {id: b, upstream: u, weight: 0.0}\n",
     "t.yaml:8: experiments[0].variants: weights are all zero (policy split needs a sum > 0)"},
    {BASE "experiments:\n  - id: e\n    match: {path_prefix: /x}\n    variants:\n" VAR_A,
     "t.yaml:4: experiments[0].control: required key is missing"},
    {BASE EXP_HEAD VAR_A "    control: b\n",
     "t.yaml:9: experiments[0].control: duplicate key (first at line 6)"},
    {BASE "experiments:\n  - id: e\n    match: {path_prefix: /x}\n    control: z\n    variants:\n" VAR_A,
     "t.yaml:6: experiments[0].control: 'z' is not a variant of this experiment"},
    {BASE EXP_HEAD "      - {id: a, upstream: nope}\n",
     "t.yaml:8: experiments[0].variants[0].upstream: unknown upstream 'nope'"},
    {BASE EXP_HEAD "      - {id: a}\n",
     "t.yaml:8: experiments[0].variants[0].upstream: required key is missing"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, prompt_version: v9}\n",
     "t.yaml:8: experiments[0].variants[0].prompt_version: unknown prompt_version 'v9' (not a key "
     "of prompts)"},
    {BASE "prompts: {v1: hi}\n" EXP_HEAD "      - {id: a, upstream: u, prompt_version: v2}\n",
     "t.yaml:9: experiments[0].variants[0].prompt_version: unknown prompt_version 'v2' (not a key "
     "of prompts)"},
    {BASE EXP_HEAD VAR_A "      - {id: a, upstream: u}\n",
     "t.yaml:9: experiments[0].variants[1].id: duplicate variant id 'a' (first at line 8)"},
    {BASE EXP_HEAD VAR_A "  - id: e\n    match: {path_prefix: /y}\n    control: a\n    variants:\n" VAR_A,
     "t.yaml:9: experiments[1].id: duplicate experiment id 'e' (first at line 4)"},
    {BASE EXP_HEAD VAR_A "  - id: f\n    match: {path_prefix: /x}\n    control: a\n    variants:\n" VAR_A,
     "t.yaml:10: experiments[1].match: same match as experiment 'e' (line 4): ambiguous"},
    {BASE "experiments:\n  - id: e f\n    match: {path_prefix: /x}\n    control: a\n    variants:\n" VAR_A,
     "t.yaml:4: experiments[0].id: must be 1..64 characters of [A-Za-z0-9_.-]"},
    {BASE "experiments:\n  - id: e\n    match: {path_prefix: x}\n    control: a\n    variants:\n" VAR_A,
     "t.yaml:5: experiments[0].match.path_prefix: must start with '/'"},
    {BASE "experiments:\n  - id: e\n    match: {path_prefix: \"/a b\"}\n    control: a\n    variants:\n" VAR_A,
     "t.yaml:5: experiments[0].match.path_prefix: must not contain spaces or control characters"},
    {BASE "experiments:\n  - id: e\n    match: {method: POST}\n    control: a\n    variants:\n" VAR_A,
     "t.yaml:5: experiments[0].match.path_prefix: required key is missing"},
    {BASE "experiments:\n  - id: e\n    match: {path_prefix: /x, header_value: v}\n    control: a\n"
     "    variants:\n" VAR_A,
     "t.yaml:5: experiments[0].match.header_value: needs match.header"},
    {BASE "experiments:\n  - id: e\n    match: {path_prefix: /x, methd: GET}\n    control: a\n"
     "    variants:\n" VAR_A,
     "t.yaml:5: experiments[0].match.methd: unknown key (did you mean 'method'?)"},
    {BASE "experiments:\n  - id: e\n    match: {path_prefix: /x, method: \"PO ST\"}\n    control: a\n"
     "    variants:\n" VAR_A,
     "t.yaml:5: experiments[0].match.method: must be an HTTP method such as POST"},
    {BASE "experiments:\n  - id: e\n    match: {path_prefix: /x}\n    sticky_header: \"x user\"\n"
     "    control: a\n    variants:\n" VAR_A,
     "t.yaml:6: experiments[0].sticky_header: must be a valid header name"},
    {BASE "experiments:\n  - id: e\n    match: {path_prefix: /x}\n    policy: bandit\n"
     "    control: a\n    variants:\n" VAR_A,
     "t.yaml:6: experiments[0].policy: must be one of: split, fixed, thompson"},
    {BASE "experiments:\n  - id: e\n    match: {path_prefix: /x}\n    control: a\n    variants: []\n",
     "t.yaml:7: experiments[0].variants: must have 1..64 variants"},
    /* variant headers and retrieval */
    {BASE EXP_HEAD "      - {id: a, upstream: u, headers: {x-a: \"one\\ntwo\"}}\n",
     "t.yaml:8: experiments[0].variants[0].headers.x-a: header value must not contain CR, LF or "
     "other control characters"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, headers: {\"x a\": v}}\n",
     "t.yaml:8: experiments[0].variants[0].headers.x a: not a valid header name"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, headers: {Content-Length: 5}}\n",
     "t.yaml:8: experiments[0].variants[0].headers.Content-Length: header 'Content-Length' cannot "
     "be set by a variant"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, headers: {x-a: 1}, retrieval: {headers: {X-A: 2}}}\n",
     "t.yaml:8: experiments[0].variants[0].retrieval.headers.X-A: header 'X-A' is set twice for "
     "this variant"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, headers: {x-a: [1]}}\n",
     "t.yaml:8: experiments[0].variants[0].headers.x-a: must be a string"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, retrieval: {body: [1]}}\n",
     "t.yaml:8: experiments[0].variants[0].retrieval.body: must be a mapping"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, retrieval: {bdy: {k: 1}}}\n",
     "t.yaml:8: experiments[0].variants[0].retrieval.bdy: unknown key (did you mean 'body'?)"},
    {BASE EXP_HEAD "      - id: a\n        upstream: u\n        retrieval:\n          body:\n"
     "            k: {x: 1, x: 2}\n",
     "t.yaml:12: experiments[0].variants[0].retrieval.body.k.x: duplicate key (first at line 12)"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, retrieval: {body: {k: [1, .inf]}}}\n",
     "t.yaml:8: experiments[0].variants[0].retrieval.body.k[1]: infinity and NaN cannot be sent as "
     "JSON"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, retrieval: {body: {k: -.Inf}}}\n",
     "t.yaml:8: experiments[0].variants[0].retrieval.body.k: infinity and NaN cannot be sent as "
     "JSON"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, retrieval: {body: {k: 99999999999999999999}}}\n",
     "t.yaml:8: experiments[0].variants[0].retrieval.body.k: integer out of range"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, retrieval: {body: {? [k] : 1}}}\n",
     "t.yaml:8: experiments[0].variants[0].retrieval.body: keys must be strings"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, model: \"a\\0b\"}\n",
     "t.yaml:8: experiments[0].variants[0].model: must not contain a NUL character"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, model: ~}\n",
     "t.yaml:8: experiments[0].variants[0].model: must be a string"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, model: {name: x}}\n",
     "t.yaml:8: experiments[0].variants[0].model: must be a string"},
    /* thompson: and the stats file */
    {TS_HEAD "      outcome: poisson\n",
     "t.yaml:12: experiments[0].thompson.outcome: must be one of: binary, continuous"},
    {TS_HEAD "      prior: {alpha: 0, beta: 1}\n",
     "t.yaml:12: experiments[0].thompson.prior.alpha: must be a number > 0"},
    {TS_HEAD "      prior: {beta: -2}\n",
     "t.yaml:12: experiments[0].thompson.prior.beta: must be a number > 0"},
    {TS_HEAD "      prior: {alpha: 1, mu: 0}\n",
     "t.yaml:12: experiments[0].thompson.prior.mu: only with outcome: continuous (a binary prior "
     "takes alpha, beta)"},
    {TS_HEAD "      outcome: binary\n      prior:\n        beta: 1\n        kappa: 1\n",
     "t.yaml:15: experiments[0].thompson.prior.kappa: only with outcome: continuous (a binary "
     "prior takes alpha, beta)"},
    {TS_HEAD "      prior: {alpa: 1}\n",
     "t.yaml:12: experiments[0].thompson.prior.alpa: unknown key (did you mean 'alpha'?)"},
    {TS_HEAD "      prior: [1, 2]\n",
     "t.yaml:12: experiments[0].thompson.prior: must be a mapping"},
    {TS_CONT "      prior: {mu: 0, kappa: 0}\n",
     "t.yaml:13: experiments[0].thompson.prior.kappa: must be a number > 0"},
    {TS_CONT "      prior: {alpha: 1e999}\n",
     "t.yaml:13: experiments[0].thompson.prior.alpha: must be a number > 0"},
    {TS_CONT "      prior: {mu: .inf}\n",
     "t.yaml:13: experiments[0].thompson.prior.mu: must be a number"},
    {TS_CONT "      prior: {mu: \"1\"}\n",
     "t.yaml:13: experiments[0].thompson.prior.mu: must be a number"},
    {TS_CONT "      prior: {mu: 0, sigma: 1}\n",
     "t.yaml:13: experiments[0].thompson.prior.sigma: unknown key"},
    /* the bandit gate's needs (policies/gate.h): a floor, and a range for continuous outcomes */
    {TS_HEAD "      floor: 0\n    gate: {mode: bandit}\n",
     "t.yaml:13: experiments[0].gate: mode bandit needs thompson.floor > 0 (its tests weigh each "
     "outcome by 1/propensity, which the floor bounds), e.g. 0.05"},
    {TS_CONT "      floor: 0.1\n    gate: {mode: bandit}\n",
     "t.yaml:14: experiments[0].gate: mode bandit with a continuous outcome needs outcome_range: "
     "[min, max] (values are assumed to lie in it)"},
    {TS_CONT "      floor: 0.1\n    gate: {mode: bandit, outcome_range: [1, 0]}\n",
     "t.yaml:14: experiments[0].gate.outcome_range: must be [min, max] with min < max (finite)"},
    {TS_HEAD "      direction: up\n",
     "t.yaml:12: experiments[0].thompson.direction: must be one of: maximize, minimize"},
    {TS_HEAD "      log_scale: true\n",
     "t.yaml:12: experiments[0].thompson.log_scale: only with outcome: continuous"},
    {TS_CONT "      log_scale: maybe\n",
     "t.yaml:13: experiments[0].thompson.log_scale: must be true or false"},
    {TS_HEAD "      top_two: \"true\"\n",
     "t.yaml:12: experiments[0].thompson.top_two: must be true or false"},
    {TS_HEAD "      floor: 0.6\n",
     "t.yaml:12: experiments[0].thompson.floor: floor * number of variants must be <= 1 (floor 0.6 "
     "* 2 variants = 1.2)"},
    {BASE EXP_HEAD VAR_A "    policy: thompson\n    thompson:\n      floor: 1.5\n",
     "t.yaml:11: experiments[0].thompson.floor: floor * number of variants must be <= 1 (floor 1.5 "
     "* 1 variants = 1.5)"},
    {TS_HEAD "      floor: -0.1\n",
     "t.yaml:12: experiments[0].thompson.floor: must be a number >= 0"},
    {TS_HEAD "      top_two_beta: 1\n",
     "t.yaml:12: experiments[0].thompson.top_two_beta: must be a number > 0 and < 1"},
    {TS_HEAD "      top_two_beta: 0.0\n",
     "t.yaml:12: experiments[0].thompson.top_two_beta: must be a number > 0 and < 1"},
    {TS_HEAD "      sticky_ttl_ms: 86400001\n",
     "t.yaml:12: experiments[0].thompson.sticky_ttl_ms: must be an integer in 0..86400000"},
    {TS_HEAD "      segment_header: \"x tenant\"\n",
     "t.yaml:12: experiments[0].thompson.segment_header: must be a valid header name"},
    {TS_HEAD "      segment_min_samples: 0\n",
     "t.yaml:12: experiments[0].thompson.segment_min_samples: must be a number > 0"},
    {TS_HEAD "      flor: 0.1\n",
     "t.yaml:12: experiments[0].thompson.flor: unknown key (did you mean 'floor'?)"},
    {BASE EXP_HEAD VAR_A "    policy: thompson\n    thompson: 5\n",
     "t.yaml:10: experiments[0].thompson: must be a mapping"},
    {BASE EXP_HEAD VAR_A "    thompson: {floor: 0}\n",
     "t.yaml:9: experiments[0].thompson: only allowed with policy: thompson"},
    {BASE EXP_HEAD VAR_A "    thompson: {}\n    policy: fixed\n",
     "t.yaml:9: experiments[0].thompson: only allowed with policy: thompson"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, weight: 0}\n    policy: thompson\n"
     "    thompson: {outcome: binary, floor: x}\n",
     "t.yaml:10: experiments[0].thompson.floor: must be a number >= 0"},
    {BASE "stats_poll_ms: 5\n", "t.yaml:3: stats_poll_ms: must be an integer in 10..3600000"},
    {BASE "stats_poll_ms: 3600001\n", "t.yaml:3: stats_poll_ms: must be an integer in 10..3600000"},
    {BASE "stats_poll_ms: 1.5\n", "t.yaml:3: stats_poll_ms: must be an integer in 10..3600000"},
    {BASE "stats_file: \"\"\n", "t.yaml:3: stats_file: must not be empty"},
    {BASE "stats_file: [a]\n", "t.yaml:3: stats_file: must be a string"},
    {BASE "stats_fle: /x\n", "t.yaml:3: stats_fle: unknown key (did you mean 'stats_file'?)"},
    /* default_route */
    {BASE "default_route: {upstream: u, status: 404}\n",
     "t.yaml:3: default_route: needs exactly one of upstream, status"},
    {BASE "default_route: {}\n", "t.yaml:3: default_route: needs exactly one of upstream, status"},
    {BASE "default_route: {status: 500}\n", "t.yaml:3: default_route.status: only 404 is supported"},
    {BASE "default_route: {upstream: v}\n", "t.yaml:3: default_route.upstream: unknown upstream 'v'"},
    /* YAML itself */
    {BASE "workers: 1\n  bad: 2\n", "t.yaml:4: yaml: mapping values are not allowed in this context"},
    {BASE "experiments: [\n  {id: a\n", "t.yaml:4: yaml: did not find expected ',' or '}' (while "
                                        "parsing a flow mapping at line 4)"},
    {BASE "workers: *nope\n", "t.yaml:3: yaml: found undefined alias"},
    {BASE "workers: 1\n\xff\n", "t.yaml:4: yaml: invalid leading UTF-8 octet"},
    {BASE "---\nworkers: 2\n", "t.yaml:4: yaml: only one document is allowed"},
};

static void test_errors(void) {
  for (size_t i = 0; i < sizeof ERRORS / sizeof ERRORS[0]; i++) {
    char err[512];
    sy_config_t *cfg = (sy_config_t *)&err; /* must be reset to NULL */
    int rc = parse(ERRORS[i].yaml, &cfg, err, sizeof err);
    CHECK_MSG(rc == -1 && cfg == NULL, "case %zu: rc %d", i, rc);
    CHECK_MSG(strcmp(err, ERRORS[i].want) == 0, "case %zu:\n  got  %s\n  want %s", i, err,
              ERRORS[i].want);
    CHECK_MSG(strchr(err, '\n') == NULL, "case %zu: message has a newline", i);
    if (rc == 0)
      sy_config_free(cfg);
  }
}

/* More than 64 variants, generated. */
static void test_too_many_variants(void) {
  size_t cap = 8192, n = 0;
  char *yaml = malloc(cap);
  n += (size_t)snprintf(yaml + n, cap - n, "%s", BASE EXP_HEAD);
  for (int i = 0; i < 65; i++)
    n += (size_t)snprintf(yaml + n, cap - n, "      - {id: v%d, upstream: u}\n", i);
  char err[512];
  sy_config_t *cfg = NULL;
  CHECK(n < cap && parse(yaml, &cfg, err, sizeof err) == -1 && cfg == NULL);
  CHECK_MSG(strcmp(err, "t.yaml:8: experiments[0].variants: must have 1..64 variants") == 0, "%s",
            err);
  free(yaml);
}

/* Aliases can loop and can multiply: both must end in an error, not a hang or a crash. */
static void test_alias_abuse(void) {
  char err[512];
  sy_config_t *cfg = NULL;
  int rc = parse(BASE EXP_HEAD "      - {id: a, upstream: u, retrieval: {body: {k: &l [*l]}}}\n",
                 &cfg, err, sizeof err);
  CHECK(rc == -1 && cfg == NULL);
  CHECK_MSG(strstr(err, "t.yaml:8: experiments[0].variants[0].retrieval.body.k[0][0]") == err &&
                strstr(err, ": nested more than 32 levels deep") != NULL,
            "%s", err);

  rc = parse(BASE EXP_HEAD
             "      - id: a\n"
             "        upstream: u\n"
             "        retrieval:\n"
             "          body:\n"
             "            a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
             "            b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
             "            c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
             "            d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
             "            e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
             "            f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
             "            g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
             &cfg, err, sizeof err);
  CHECK(rc == -1 && cfg == NULL);
  CHECK_MSG(strstr(err, "too large (more than 100000 values)") != NULL, "%s", err);

  /* A shared, acyclic alias is fine. */
  cfg = parse_ok(BASE "prompts: {p: &txt hello}\n" EXP_HEAD
                      "      - {id: a, upstream: u, model: *txt, prompt_version: p}\n");
  if (cfg != NULL)
    CHECK(strcmp(cfg->experiments[0].variants[0].model, "hello") == 0);
  sy_config_free(cfg);
}

/* Messages fit any buffer; a NULL buffer is allowed. */
static void test_small_buffers(void) {
  char err[16];
  sy_config_t *cfg = NULL;
  memset(err, 'x', sizeof err);
  CHECK(parse(BASE "bogus: 1\n", &cfg, err, sizeof err) == -1);
  CHECK(memchr(err, '\0', sizeof err) != NULL && strncmp(err, "t.yaml:3: bogus", 15) == 0);
  CHECK(parse(BASE "bogus: 1\n", &cfg, NULL, 0) == -1 && cfg == NULL);
  CHECK(parse("a: [", &cfg, NULL, 0) == -1 && cfg == NULL);
}

static void test_load_errors(void) {
  char err[512];
  sy_config_t *cfg = NULL;
  CHECK(sy_config_load("tests/unit/no-such-file.yaml", &cfg, err, sizeof err) == -1);
  CHECK(cfg == NULL);
  CHECK_MSG(strcmp(err, "tests/unit/no-such-file.yaml: cannot read: No such file or directory") == 0,
            "%s", err);
  CHECK(sy_config_load("deploy", &cfg, err, sizeof err) == -1 && cfg == NULL);
  CHECK_MSG(strcmp(err, "deploy: cannot read: Is a directory") == 0, "%s", err);

  /* Errors in a loaded file name that file. */
  char path[] = "/tmp/sy-test-config-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0)
    return;
  const char bad[] = BASE "workers: 100\n";
  CHECK(write(fd, bad, sizeof bad - 1) == (ssize_t)(sizeof bad - 1));
  close(fd);
  char want[600];
  snprintf(want, sizeof want, "%s:3: workers: must be an integer in 1..64", path);
  CHECK(sy_config_load(path, &cfg, err, sizeof err) == -1 && cfg == NULL);
  CHECK_MSG(strcmp(err, want) == 0, "%s", err);
  unlink(path);
}



int main(void) {
  test_minimal_example();
  test_full();
  test_defaults();
  test_body_typing();
  test_normalisation();
  test_thompson();
  test_errors();
  test_too_many_variants();
  test_alias_abuse();
  test_small_buffers();
  test_load_errors();
  test_out_of_memory(FULL);
  test_out_of_memory(BODY);
  test_out_of_memory(THOMPSON);
  return CHECK_DONE();
}
