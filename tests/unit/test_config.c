/*
 * test_config.c — loading and validating the YAML config (router/config.c).
 *
 * Covers the shipped minimal example field by field, a config that uses every key,
 * thompson experiments (binary, continuous, all defaults) with stats_file, the
 * defaults, the YAML-to-JSON typing of retrieval.body, and allocation failures at
 * every step. The invalid configs are test_config_errors.c's.
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
  CHECK(cfg->limits.max_body_bytes == 33554432);
  CHECK(cfg->limits.held_body_bytes == 268435456);
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

int main(void) {
  test_minimal_example();
  test_full();
  test_defaults();
  test_body_typing();
  test_normalisation();
  test_thompson();
  test_out_of_memory(FULL);
  test_out_of_memory(BODY);
  test_out_of_memory(THOMPSON);
  return CHECK_DONE();
}
