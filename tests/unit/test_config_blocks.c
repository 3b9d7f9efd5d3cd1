/*
 * test_config_blocks.c — the config blocks beside the proxy core (router/config_stats.c,
 * config_shadow.c, config_admin.c, and the upstreams' passive-health keys): outcome,
 * data_dir, redis (url, url_env), events, privacy, api_keys (trust, rate limits),
 * shadow and shadow_skip, admin; their values, defaults, errors with their lines, and
 * allocation failures. The proxy core's keys are test_config.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/config_fixture.h"

/* ---- the stats layer's blocks: outcome, data_dir, redis, events, privacy, api_keys ---- */

static const char STATS[] =
    BASE "data_dir: /var/lib/sy\n"
         "redis: {url: \"unix:///run/r.sock?db=2\", timeout_ms: 250, connect_timeout_ms: 700,\n"
         "        reconnect_max_ms: 5000}\n"
         "events: {stream: ev, maxlen: 5000, batch_max: 64, flush_ms: 2, queue_bytes: 1048576,\n"
         "         spool_bytes: 2097152, sync_ms: 500}\n"
         "privacy: {hash_key_env: SY_TEST_HASH}\n"
         "api_keys:\n"
         "  - {name: web, secret_env: SY_TEST_KEY1, tenant: acme, trust: 0.5}\n"
         "  - {name: ops, secret_env: SY_TEST_KEY2, tenant: acme}\n" EXP_HEAD VAR_A
         "      - {id: b, upstream: u}\n"
         "    policy: thompson\n"
         "    outcome:\n"
         "      metric: resolved\n"
         "      type: binary\n"
         "      direction: minimize\n"
         "      window: 7d\n"
         "      missing: failure\n"
         "      proxies: {thumbs: 0.3, retry: {weight: 0.5, as: 0}}\n"
         "    thompson: {floor: 0.1}\n";

static void test_stats_blocks(void) {
  setenv("SY_TEST_HASH", "hash-secret", 1);
  setenv("SY_TEST_KEY1", "0123456789abcdef-one", 1);
  setenv("SY_TEST_KEY2", "0123456789abcdef-two", 1);
  sy_config_t *cfg = parse_ok(STATS);
  if (cfg != NULL) {
    CHECK(strcmp(cfg->data_dir, "/var/lib/sy") == 0);
    CHECK(cfg->redis.enabled && strcmp(cfg->redis.url, "unix:///run/r.sock?db=2") == 0);
    CHECK(cfg->redis.timeout_ms == 250 && strcmp(cfg->redis.server, "redis-server") == 0);
    CHECK(cfg->redis.connect_timeout_ms == 700 && cfg->redis.reconnect_max_ms == 5000);
    CHECK(strcmp(cfg->events.stream, "ev") == 0 && cfg->events.maxlen == 5000);
    CHECK(cfg->events.batch_max == 64 && cfg->events.flush_ms == 2 && cfg->events.sync_ms == 500);
    CHECK(cfg->events.queue_bytes == 1048576 && cfg->events.spool_bytes == 2097152);
    CHECK(strcmp(cfg->hash_key, "hash-secret") == 0);
    CHECK(cfg->napi_keys == 2 && strcmp(cfg->api_keys[0].secret, "0123456789abcdef-one") == 0);
    CHECK(cfg->api_keys[0].trust == 0.5 && cfg->api_keys[1].trust == 1);
    CHECK(strcmp(cfg->api_keys[1].tenant, "acme") == 0);
    const sy_outcome_conf_t *o = &cfg->experiments[0].outcome;
    CHECK(o->given && strcmp(o->metric, "resolved") == 0 && !o->continuous && o->minimise);
    CHECK(o->window_s == 7 * 86400 && o->missing == SY_MISSING_FAILURE && o->nproxies == 2);
    CHECK(o->proxies[0].type == SY_FB_THUMBS && o->proxies[0].weight == 0.3 && !o->proxies[0].has_as);
    CHECK(o->proxies[1].type == SY_FB_RETRY && o->proxies[1].has_as && o->proxies[1].as == 0);
    /* the metric's type and direction reach the policy */
    CHECK(!cfg->experiments[0].thompson.continuous && cfg->experiments[0].thompson.minimise);
  }
  sy_config_free(cfg);

  /* Defaults: embedded Redis in switchyard-data, events on, metric "outcome" for 24 h. */
  unsetenv("SWITCHYARD_HASH_KEY");
  cfg = parse_ok(BASE EXP_HEAD VAR_A);
  if (cfg != NULL) {
    CHECK(strcmp(cfg->data_dir, "switchyard-data") == 0 && cfg->redis.url == NULL);
    CHECK(cfg->redis.enabled && cfg->redis.timeout_ms == 2000 && cfg->hash_key == NULL);
    /* connect_timeout_ms 0: the command timeout; reconnects back off to 2 s at most */
    CHECK(cfg->redis.connect_timeout_ms == 0 && cfg->redis.reconnect_max_ms == 2000);
    CHECK(cfg->events.enabled && strcmp(cfg->events.stream, "sy:events") == 0);
    CHECK(cfg->events.maxlen == 1000000 && cfg->events.batch_max == 256);
    CHECK(cfg->events.flush_ms == 5 && cfg->events.sync_ms == 1000 && cfg->napi_keys == 0);
    const sy_outcome_conf_t *o = &cfg->experiments[0].outcome;
    CHECK(!o->given && strcmp(o->metric, "outcome") == 0 && o->window_s == 86400);
    CHECK(o->missing == SY_MISSING_IGNORE && o->nproxies == 0);
  }
  sy_config_free(cfg);
  /* Durations. */
  static const struct { const char *w; unsigned s; } windows[] = {
      {"3600", 3600}, {"90s", 90}, {"30m", 1800}, {"24h", 86400}, {"2d", 172800}};
  for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
    char yaml[512];
    snprintf(yaml, sizeof yaml, BASE EXP_HEAD VAR_A "    outcome: {window: %s}\n", windows[i].w);
    cfg = parse_ok(yaml);
    CHECK_MSG(cfg != NULL && cfg->experiments[0].outcome.window_s == windows[i].s, "window %s",
              windows[i].w);
    sy_config_free(cfg);
  }
}

#define OUT_HEAD BASE EXP_HEAD VAR_A "    outcome:\n"

static const err_case_t STATS_ERRORS[] = {
    {BASE "redis: {reconnect_max_ms: 50}\n" EXP_HEAD VAR_A,
     "t.yaml:3: redis.reconnect_max_ms: must be an integer in 100..600000"},
    {BASE "redis: {connect_timeout_ms: 0}\n" EXP_HEAD VAR_A,
     "t.yaml:3: redis.connect_timeout_ms: must be an integer in 10..600000"},
    {OUT_HEAD "      type: continuous\n      missing: failure\n",
     "t.yaml:11: experiments[0].outcome.missing: failure only with type: binary (a missing "
     "number is not a zero)"},
    {OUT_HEAD "      window: 5x\n",
     "t.yaml:10: experiments[0].outcome.window: must be a duration such as 3600, 90s, 30m, 24h or "
     "7d"},
    {OUT_HEAD "      window: 91d\n", "t.yaml:10: experiments[0].outcome.window: must be at most 90 days"},
    {OUT_HEAD "      proxies: {likes: 1}\n",
     "t.yaml:10: experiments[0].outcome.proxies: 'likes' is not a feedback type (thumbs, rating, "
     "edit, copy, retry, abandon, escalation, custom)"},
    {OUT_HEAD "      proxies: {thumbs: 0}\n",
     "t.yaml:10: experiments[0].outcome.proxies.thumbs: weight must be > 0"},
    {OUT_HEAD "      proxies: {retry: {weight: 1, as: 0.5}}\n",
     "t.yaml:10: experiments[0].outcome.proxies.retry.as: must be 0 or 1 for a binary metric"},
    {OUT_HEAD "      metric: \"has space\"\n",
     "t.yaml:10: experiments[0].outcome.metric: must be 1..64 characters of [A-Za-z0-9_.-]"},
    {BASE EXP_HEAD VAR_A "    policy: thompson\n    outcome: {type: binary}\n"
     "    thompson: {outcome: continuous}\n",
     "t.yaml:11: experiments[0].thompson.outcome: set by the experiment's outcome: block (type, "
     "direction)"},
    {BASE "redis: {url: \"rediss://h:6380\"}\n",
     "t.yaml:3: redis.url: rediss:// (TLS) is not supported; use redis:// or unix://"},
    {BASE "redis: {url: \"http://h\"}\n",
     "t.yaml:3: redis.url: must be a redis://host:port/db or unix:///path URL"},
    /* redis.cluster (Redis Cluster seed nodes) */
    {BASE "redis: {url: \"redis://h\", cluster: [10.0.0.11:6379]}\n",
     "t.yaml:3: redis: give url (one server) or cluster (seed nodes), not both"},
    {BASE "redis:\n  cluster: [10.0.0.11:6379]\n  url: \"redis://h\"\n",
     "t.yaml:4: redis: give url (one server) or cluster (seed nodes), not both"},
    {BASE "redis: {cluster: []}\n",
     "t.yaml:3: redis.cluster: is empty: name at least one seed node (host:port)"},
    {BASE "redis: {cluster: 10.0.0.11:6379}\n",
     "t.yaml:3: redis.cluster: must be a list of seed nodes, e.g. [10.0.0.11:6379, 10.0.0.12:6379]"},
    {BASE "redis: {cluster: [10.0.0.11:6379, 10.0.0.12]}\n",
     "t.yaml:3: redis.cluster[1]: expected host:port, got '10.0.0.12'"},
    {BASE "redis: {cluster: [10.0.0.11:0]}\n", "t.yaml:3: redis.cluster[0]: port must be an integer in 1..65535, got '10.0.0.11:0'"},
    {BASE "redis: {cluster: [\"redis://10.0.0.11:6379\"]}\n",
     "t.yaml:3: redis.cluster[0]: a seed is host:port, not a URL ('redis://10.0.0.11:6379')"},
    {BASE "redis: {cluster: [10.0.0.11:6379], wait_replicas: 17}\n", "t.yaml:3: redis.wait_replicas: must be an integer in 0..16"},
    {BASE "events: {maxlen: 10}\n", "t.yaml:3: events.maxlen: must be an integer in 1000..1099511627776"},
    {BASE "privacy: {hash_key_env: SY_TEST_UNSET_VAR}\n",
     "t.yaml:3: privacy.hash_key_env: environment variable SY_TEST_UNSET_VAR is not set"},
    {BASE "api_keys:\n  - {name: k, secret_env: SY_TEST_UNSET_VAR, tenant: t}\n",
     "t.yaml:4: api_keys[0].secret_env: environment variable SY_TEST_UNSET_VAR is not set"},
    {BASE "api_keys:\n  - {name: k, secret_env: SY_TEST_SHORT, tenant: t}\n",
     "t.yaml:4: api_keys[0].secret_env: the secret in SY_TEST_SHORT is shorter than 16 characters"},
    {BASE "api_keys:\n  - {name: k, secret_env: SY_TEST_KEY1, tenant: t, trust: 2}\n",
     "t.yaml:4: api_keys[0].trust: must be a number > 0 and <= 1"},
    {BASE "api_keys:\n  - {name: k, secret_env: SY_TEST_KEY1, tenant: t}\n"
     "  - {name: j, secret_env: SY_TEST_KEY1, tenant: t}\n",
     "t.yaml:5: api_keys[1]: same secret as key 'k'"},
    {BASE "api_keys:\n  - {name: k, tenant: t}\n",
     "t.yaml:4: api_keys[0].secret_env: required key is missing"},
};

static void test_stats_errors(void) {
  setenv("SY_TEST_KEY1", "0123456789abcdef-one", 1);
  setenv("SY_TEST_SHORT", "short", 1);
  unsetenv("SY_TEST_UNSET_VAR");
  for (size_t i = 0; i < sizeof STATS_ERRORS / sizeof STATS_ERRORS[0]; i++) {
    char err[512];
    sy_config_t *cfg = NULL;
    int rc = parse(STATS_ERRORS[i].yaml, &cfg, err, sizeof err);
    CHECK_MSG(rc == -1 && cfg == NULL, "stats case %zu: rc %d", i, rc);
    CHECK_MSG(rc == 0 || strcmp(err, STATS_ERRORS[i].want) == 0,
              "stats case %zu:\n  got  %s\n  want %s", i, err, STATS_ERRORS[i].want);
    if (rc == 0)
      sy_config_free(cfg);
  }
}

/* ---- shadow traffic: a variant's shadow:, an experiment's shadow_skip: ---- */

static const char SHADOW[] =
    BASE EXP_HEAD VAR_A
    "      - id: b\n"
    "        upstream: u\n"
    "        weight: 0\n"
    "        shadow: {fraction: 0.25, max_inflight: 4, tokens_per_minute: 6000, timeout_ms: 1500}\n"
    "      - {id: c, upstream: u, shadow: {fraction: 1}}\n"
    "    shadow_skip:\n"
    "      body_keys: [tools, functions]\n"
    "      headers:\n"
    "        - {name: X-Skip, value: \"bar baz\"}\n"
    "        - {name: x-tool}\n";

static void test_shadow_blocks(void) {
  sy_config_t *cfg = parse_ok(SHADOW);
  if (cfg != NULL) {
    const sy_experiment_conf_t *e = &cfg->experiments[0];
    const sy_shadow_conf_t *a = &e->variants[0].shadow, *b = &e->variants[1].shadow,
                           *c = &e->variants[2].shadow;
    CHECK(!a->on);
    CHECK(b->on && b->fraction == 0.25 && b->max_inflight == 4);
    CHECK(b->tokens_per_minute == 6000 && b->timeout_ms == 1500);
    /* defaults */
    CHECK(c->on && c->fraction == 1 && c->max_inflight == 16 && c->tokens_per_minute == 0 &&
          c->timeout_ms == 30000);
    const sy_shadow_skip_t *k = &e->shadow_skip;
    CHECK(k->nbody_keys == 2 && strcmp(k->body_keys[0], "tools") == 0 &&
          strcmp(k->body_keys[1], "functions") == 0);
    CHECK(k->nheaders == 2 && strcmp(k->headers[0].name, "x-skip") == 0 &&
          strcmp(k->headers[0].value, "bar baz") == 0);
    CHECK(strcmp(k->headers[1].name, "x-tool") == 0 && k->headers[1].value == NULL);
  }
  sy_config_free(cfg);
  /* No rules by default; fraction 0 is allowed (the block stays, nothing is mirrored). */
  cfg = parse_ok(BASE EXP_HEAD "      - {id: a, upstream: u, shadow: {fraction: 0}}\n");
  if (cfg != NULL) {
    const sy_experiment_conf_t *e = &cfg->experiments[0];
    CHECK(e->variants[0].shadow.on && e->variants[0].shadow.fraction == 0);
    CHECK(e->shadow_skip.nbody_keys == 0 && e->shadow_skip.nheaders == 0);
  }
  sy_config_free(cfg);
}

#define SH_VAR "      - id: a\n        upstream: u\n        shadow:\n"

static const err_case_t SHADOW_ERRORS[] = {
    {BASE EXP_HEAD SH_VAR "          max_inflight: 2\n",
     "t.yaml:11: experiments[0].variants[0].shadow.fraction: required key is missing"},
    {BASE EXP_HEAD SH_VAR "          fraction: 1.5\n",
     "t.yaml:11: experiments[0].variants[0].shadow.fraction: must be a number in 0..1"},
    {BASE EXP_HEAD SH_VAR "          fraction: half\n",
     "t.yaml:11: experiments[0].variants[0].shadow.fraction: must be a number in 0..1"},
    {BASE EXP_HEAD SH_VAR "          fraction: 0.5\n          max_inflight: 0\n",
     "t.yaml:12: experiments[0].variants[0].shadow.max_inflight: must be an integer in 1..100000"},
    {BASE EXP_HEAD SH_VAR "          fraction: 0.5\n          tokens_per_minute: -1\n",
     "t.yaml:12: experiments[0].variants[0].shadow.tokens_per_minute: must be an integer in 0..1099511627776"},
    {BASE EXP_HEAD SH_VAR "          fraction: 0.5\n          timeout_ms: 0\n",
     "t.yaml:12: experiments[0].variants[0].shadow.timeout_ms: must be an integer in 1..86400000"},
    {BASE EXP_HEAD SH_VAR "          fraction: 0.5\n          fractoin: 0.5\n",
     "t.yaml:12: experiments[0].variants[0].shadow.fractoin: unknown key (did you mean 'fraction'?)"},
    {BASE EXP_HEAD "      - {id: a, upstream: u, shadow: 0.5}\n",
     "t.yaml:8: experiments[0].variants[0].shadow: must be a mapping"},
    {BASE EXP_HEAD VAR_A "    shadow_skip: {body_keys: tools}\n",
     "t.yaml:9: experiments[0].shadow_skip.body_keys: must be a list of member names, e.g. [tools, functions]"},
    {BASE EXP_HEAD VAR_A "    shadow_skip: {body_keys: [tools, \"\"]}\n",
     "t.yaml:9: experiments[0].shadow_skip.body_keys[1]: must not be empty"},
    {BASE EXP_HEAD VAR_A "    shadow_skip: {headers: [{value: x}]}\n",
     "t.yaml:9: experiments[0].shadow_skip.headers[0].name: required key is missing"},
    {BASE EXP_HEAD VAR_A "    shadow_skip: {headers: [{name: \"bad name\"}]}\n",
     "t.yaml:9: experiments[0].shadow_skip.headers[0].name: must be a valid header name"},
    {BASE EXP_HEAD VAR_A "    shadow_skip: {headers: [{name: x-a, value: \"a\\nb\"}]}\n",
     "t.yaml:9: experiments[0].shadow_skip.headers[0].value: header value must not contain CR, LF or other control characters"},
    {BASE EXP_HEAD VAR_A "    shadow_skip: {tools: true}\n",
     "t.yaml:9: experiments[0].shadow_skip.tools: unknown key"},
};

static void test_shadow_errors(void) {
  for (size_t i = 0; i < sizeof SHADOW_ERRORS / sizeof SHADOW_ERRORS[0]; i++) {
    char err[512];
    sy_config_t *cfg = NULL;
    int rc = parse(SHADOW_ERRORS[i].yaml, &cfg, err, sizeof err);
    CHECK_MSG(rc == -1 && cfg == NULL, "shadow case %zu: rc %d", i, rc);
    CHECK_MSG(rc == 0 || strcmp(err, SHADOW_ERRORS[i].want) == 0,
              "shadow case %zu:\n  got  %s\n  want %s", i, err, SHADOW_ERRORS[i].want);
    if (rc == 0)
      sy_config_free(cfg);
  }
}

/* ---- the admin API's block ---- */

#define ADMIN_HEAD BASE EXP_HEAD VAR_A "admin:\n" /* admin: is line 9 */

static void test_admin_block(void) {
  setenv("SY_TEST_ADMIN", "0123456789abcdef-admin", 1);
  setenv("SY_TEST_SHORT", "short", 1);
  unsetenv("SY_TEST_UNSET_VAR");
  sy_config_t *cfg = parse_ok(BASE EXP_HEAD VAR_A);
  if (cfg != NULL) {
    CHECK(cfg->admin.on == 0 && cfg->admin.token == NULL);
    sy_config_free(cfg);
  }
  cfg = parse_ok(ADMIN_HEAD "  token_env: SY_TEST_ADMIN\n");
  if (cfg != NULL) {
    CHECK(cfg->admin.on == 1 && strcmp(cfg->admin.listen.host, "127.0.0.1") == 0);
    CHECK(cfg->admin.listen.port == 9090);
    CHECK(strcmp(cfg->admin.token, "0123456789abcdef-admin") == 0);
    sy_config_free(cfg);
  }
  cfg = parse_ok(ADMIN_HEAD "  listen: \"[::1]:9191\"\n  token_env: SY_TEST_ADMIN\n");
  if (cfg != NULL) {
    CHECK(strcmp(cfg->admin.listen.host, "::1") == 0 && cfg->admin.listen.port == 9191);
    sy_config_free(cfg);
  }
  static const err_case_t cases[] = {
      {ADMIN_HEAD "  listen: 127.0.0.1:9090\n",
       "t.yaml:10: admin.token_env: required key is missing"},
      {ADMIN_HEAD "  token_env: SY_TEST_UNSET_VAR\n",
       "t.yaml:10: admin.token_env: environment variable SY_TEST_UNSET_VAR is not set (the admin "
       "token)"},
      {ADMIN_HEAD "  token_env: SY_TEST_SHORT\n",
       "t.yaml:10: admin.token_env: the token in SY_TEST_SHORT is shorter than 16 characters"},
      {ADMIN_HEAD "  token_env: SY_TEST_ADMIN\n  listen: nowhere\n", NULL},
      {ADMIN_HEAD "  token_env: SY_TEST_ADMIN\n  token: abc\n", NULL},
      {BASE EXP_HEAD VAR_A "admin: [1]\n", "t.yaml:9: admin: must be a mapping {listen, token_env}"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[512];
    sy_config_t *bad = NULL;
    int rc = parse(cases[i].yaml, &bad, err, sizeof err);
    CHECK_MSG(rc == -1 && bad == NULL, "admin case %zu: rc %d", i, rc);
    if (rc == 0) {
      sy_config_free(bad);
      continue;
    }
    if (cases[i].want != NULL)
      CHECK_MSG(strcmp(err, cases[i].want) == 0, "admin case %zu:\n  got  %s\n  want %s", i, err,
                cases[i].want);
    else
      CHECK_MSG(strncmp(err, "t.yaml:1", 8) == 0 && strstr(err, "admin.") != NULL,
                "admin case %zu: %s", i, err);
  }
}

/* Passive health keys of an upstream. */
static void test_eject(void) {
  sy_config_t *cfg = parse_ok("listen: [127.0.0.1:8080]\n"
                              "upstreams: {u: {servers: [127.0.0.1:9001], eject_after: 0,\n"
                              "  eject_ms: 250, eject_max_ms: 1000, eject_max_percent: 100}}\n");
  if (cfg != NULL) {
    const sy_upstream_conf_t *u = &cfg->upstreams[0];
    CHECK(u->eject_after == 0 && u->eject_ms == 250 && u->eject_max_ms == 1000);
    CHECK(u->eject_max_percent == 100);
    sy_config_free(cfg);
  }
  char err[512];
  sy_config_t *bad = NULL;
  CHECK(parse("listen: [127.0.0.1:8080]\n"
              "upstreams: {u: {servers: [127.0.0.1:9001], eject_max_percent: 101}}\n",
              &bad, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "t.yaml:2: upstreams.u.eject_max_percent") == err, "%s", err);
}

/* An API key's rate limit and burst. */
static void test_key_rate(void) {
  setenv("SY_TEST_KEY1", "0123456789abcdef-one", 1);
  setenv("SY_TEST_KEY2", "0123456789abcdef-two", 1);
  sy_config_t *cfg = parse_ok(BASE "api_keys:\n"
                                   "  - {name: a, secret_env: SY_TEST_KEY1, tenant: t}\n"
                                   "  - {name: b, secret_env: SY_TEST_KEY2, tenant: t,\n"
                                   "     rate_limit: 0.5, burst: 3}\n");
  if (cfg != NULL) {
    CHECK(cfg->api_keys[0].rate_limit == 0 && cfg->api_keys[0].burst == 1);
    CHECK(cfg->api_keys[1].rate_limit == 0.5 && cfg->api_keys[1].burst == 3);
    sy_config_free(cfg);
  }
  cfg = parse_ok(BASE "api_keys:\n  - {name: a, secret_env: SY_TEST_KEY1, tenant: t, "
                      "rate_limit: 0.2}\n");
  if (cfg != NULL) {
    CHECK(cfg->api_keys[0].burst == 1); /* 2 x 0.2 rounds up to one call */
    sy_config_free(cfg);
  }
  char err[512];
  sy_config_t *bad = NULL;
  CHECK(parse(BASE "api_keys:\n  - {name: a, secret_env: SY_TEST_KEY1, tenant: t, "
                   "rate_limit: -1}\n",
              &bad, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "t.yaml:4: api_keys[0].rate_limit: must be") == err, "%s", err);
  CHECK(parse(BASE "api_keys:\n  - {name: a, secret_env: SY_TEST_KEY1, tenant: t, "
                   "rate_limit: 5, burst: 0.5}\n",
              &bad, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "burst must be at least 1") != NULL, "%s", err);
}

/* redis.cluster: the shape, seeds kept as written. */
static void test_redis_cluster(void) {
  sy_config_t *cfg = parse_ok(BASE "redis:\n  cluster: [10.0.0.11:6379, 10.0.0.12:6379, "
                                   "\"[fd00::13]:6379\"]\n");
  if (cfg != NULL) {
    CHECK(cfg->redis.ncluster == 3 && cfg->redis.url == NULL && cfg->redis.wait_replicas == 0);
    CHECK(cfg->redis.ncluster == 3 && strcmp(cfg->redis.cluster[0], "10.0.0.11:6379") == 0 &&
          strcmp(cfg->redis.cluster[2], "[fd00::13]:6379") == 0);
    sy_config_free(cfg);
  }
  cfg = parse_ok(BASE "redis: {cluster: [10.0.0.11:6379], wait_replicas: 1, wait_strict: true,\n"
                      "        username: app, password_env: SY_TEST_REDIS_URL}\n");
  if (cfg != NULL) {
    CHECK(cfg->redis.wait_replicas == 1 && cfg->redis.wait_strict == 1);
    CHECK(cfg->redis.username != NULL && cfg->redis.password != NULL);
    sy_config_free(cfg);
  }
  char err[512];
  sy_config_t *bad = NULL;
  CHECK(parse(BASE "redis: {cluster: [10.0.0.11:6379], sentinels: [10.0.0.9:26379], master: m}\n",
              &bad, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "t.yaml:3: redis: give sentinels or cluster (seed nodes), not both") == err,
            "%s", err);
  CHECK(parse(BASE "redis: {cluster: [10.0.0.11:6379], db: 2}\n", &bad, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "db: a Redis Cluster has database 0 only") != NULL, "%s", err);
}

/* redis.url_env: the URL, password included, from the environment. */
static void test_redis_url_env(void) {
  setenv("SY_TEST_REDIS_URL", "redis://:s3cret@10.0.0.9:6380/2", 1);
  setenv("SY_TEST_BAD_URL", "http://nope", 1);
  sy_config_t *cfg = parse_ok(BASE "redis: {url_env: SY_TEST_REDIS_URL}\n");
  if (cfg != NULL) {
    CHECK(cfg->redis.url != NULL && strcmp(cfg->redis.url, "redis://:s3cret@10.0.0.9:6380/2") == 0);
    sy_config_free(cfg);
  }
  char err[512];
  sy_config_t *bad = NULL;
  CHECK(parse(BASE "redis: {url: \"redis://h\", url_env: SY_TEST_REDIS_URL}\n", &bad, err,
              sizeof err) == -1);
  CHECK_MSG(strstr(err, "url or url_env, not both") != NULL, "%s", err);
  CHECK(parse(BASE "redis: {url_env: SY_TEST_BAD_URL}\n", &bad, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "t.yaml:3: redis.url_env: must be") == err && strstr(err, "nope") == NULL,
            "%s", err);
}

/* redis: a Sentinel setup, and each shape refused with the field named. */
static const err_case_t SENTINEL_ERRORS[] = {
    {BASE "redis: {url: \"redis://h\", sentinels: [\"s1:26379\"], master: m}\n",
     "t.yaml:3: redis.sentinels: give url or sentinels, not both"},
    {BASE "redis: {sentinels: [\"s1:26379\"], master: m, url_env: SY_TEST_S_URL}\n",
     "t.yaml:3: redis.sentinels: give url or sentinels, not both"},
    {BASE "redis: {sentinels: [], master: m}\n",
     "t.yaml:3: redis.sentinels: needs at least one sentinel host:port"},
    {BASE "redis: {sentinels: \"s1:26379\", master: m}\n",
     "t.yaml:3: redis.sentinels: must be a list of host:port (the sentinels)"},
    {BASE "redis: {sentinels: [\"s1:26379\"]}\n",
     "t.yaml:3: redis: sentinels needs master (the name the sentinels monitor)"},
    {BASE "redis: {master: m}\n",
     "t.yaml:3: redis: master is for a Sentinel setup: give sentinels too"},
    {BASE "redis: {sentinels: [\"s1:0\"], master: m}\n",
     "t.yaml:3: redis.sentinels[0]: port must be an integer in 1..65535, got 's1:0'"},
    {BASE "redis: {sentinels: [\"s1:x\"], master: m}\n",
     "t.yaml:3: redis.sentinels[0]: port must be an integer in 1..65535, got 's1:x'"},
    {BASE "redis: {sentinels: [\"::1:26379\"], master: m}\n",
     "t.yaml:3: redis.sentinels[0]: an IPv6 address must be written [address]:port"},
    {BASE "redis: {sentinels: [\"a b:1\"], master: m}\n",
     "t.yaml:3: redis.sentinels[0]: invalid host in 'a b:1'"},
    {BASE "redis: {sentinels: [\"s1:1\", \"s1:1\"], master: m}\n",
     "t.yaml:3: redis.sentinels[1]: duplicate sentinel (same as entry 0)"},
    {BASE "redis: {sentinels: [a:1, b:1, c:1, d:1, e:1, f:1, g:1, h:1, i:1], master: m}\n",
     "t.yaml:3: redis.sentinels: at most 8 sentinels"},
    {BASE "redis: {sentinels: [\"s1:1\"], master: \"my master\"}\n",
     "t.yaml:3: redis.master: must not contain spaces or control characters"},
    {BASE "redis: {url: \"redis://h\", db: 2}\n",
     "t.yaml:3: redis: username, password_env, sentinel_password_env and db go with sentinels "
     "(with url, put them in the URL)"},
    {BASE "redis: {sentinels: [\"s1:1\"], master: m, password_env: SY_TEST_UNSET_VAR}\n",
     "t.yaml:3: redis.password_env: environment variable SY_TEST_UNSET_VAR is not set"},
    {BASE "redis: {sentinels: [\"s1:1\"], master: m, username: u}\n",
     "t.yaml:3: redis: username needs password_env"},
    {BASE "redis: {url: \"redis://h\", wait_strict: true}\n",
     "t.yaml:3: redis: wait_strict needs wait_replicas (1 or more)"},
    {BASE "redis: {url: \"redis://h\", wait_replicas: 1, timeout_ms: 100}\n",
     "t.yaml:3: redis: wait_timeout_ms (100) must be less than timeout_ms (100)"},
    {BASE "redis: {url: \"redis://h\", wait_replicas: 17}\n",
     "t.yaml:3: redis.wait_replicas: must be an integer in 0..16"},
};

static const char SENTINEL[] =
    BASE "redis:\n  sentinels: [10.0.0.1:26379, \"sentinel-b\", \"[::1]:26380\"]\n"
         "  master: mymaster\n  username: app\n  password_env: SY_TEST_REDIS_PW\n"
         "  sentinel_password_env: SY_TEST_SENTINEL_PW\n  db: 3\n"
         "  wait_replicas: 1\n  wait_strict: true\n";

static void test_sentinel_config(void) {
  setenv("SY_TEST_REDIS_PW", "data-secret", 1);
  setenv("SY_TEST_SENTINEL_PW", "sentinel-secret", 1);
  setenv("SY_TEST_S_URL", "redis://10.0.0.9:6380", 1);
  sy_config_t *cfg = parse_ok(SENTINEL);
  if (cfg != NULL) {
    const sy_redis_conf_t *r = &cfg->redis;
    CHECK(r->url == NULL && r->nsentinels == 3 && strcmp(r->master, "mymaster") == 0);
    CHECK(strcmp(r->sentinel_hosts[0], "10.0.0.1") == 0 && r->sentinel_ports[0] == 26379);
    CHECK(strcmp(r->sentinel_hosts[1], "sentinel-b") == 0 && r->sentinel_ports[1] == 26379);
    CHECK(strcmp(r->sentinel_hosts[2], "::1") == 0 && r->sentinel_ports[2] == 26380);
    CHECK(strcmp(r->username, "app") == 0 && strcmp(r->password, "data-secret") == 0);
    CHECK(strcmp(r->sentinel_password, "sentinel-secret") == 0 && r->db == 3);
    CHECK(r->wait_replicas == 1 && r->wait_strict && r->wait_timeout_ms == 100);
    sy_config_free(cfg);
  }
  unsetenv("SY_TEST_UNSET_VAR");
  for (size_t i = 0; i < sizeof SENTINEL_ERRORS / sizeof SENTINEL_ERRORS[0]; i++) {
    char err[512];
    sy_config_t *bad = NULL;
    int rc = parse(SENTINEL_ERRORS[i].yaml, &bad, err, sizeof err);
    CHECK_MSG(rc == -1 && bad == NULL, "sentinel case %zu: rc %d", i, rc);
    CHECK_MSG(rc == 0 || strcmp(err, SENTINEL_ERRORS[i].want) == 0,
              "sentinel case %zu:\n  got  %s\n  want %s", i, err, SENTINEL_ERRORS[i].want);
  }
  /* the passwords never appear in an error */
  char err[512];
  sy_config_t *bad = NULL;
  CHECK(parse(BASE "redis: {sentinels: [\"s1:1\"], master: m, password_env: SY_TEST_REDIS_PW, "
                   "url: \"redis://h\"}\n",
              &bad, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "data-secret") == NULL, "%s", err);
}

int main(void) {
  test_stats_blocks();
  test_sentinel_config();
  test_out_of_memory(SENTINEL);
  test_stats_errors();
  test_out_of_memory(STATS);
  test_shadow_blocks();
  test_shadow_errors();
  test_out_of_memory(SHADOW);
  test_admin_block();
  test_eject();
  test_key_rate();
  test_redis_url_env();
  test_redis_cluster();
  return CHECK_DONE();
}
