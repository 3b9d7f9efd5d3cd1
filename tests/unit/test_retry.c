/*
 * test_retry.c — retries and fallbacks without a loop: the config of an upstream's
 * retry: block and a variant's fallback: (defaults, values, every error; also the
 * hosted-API keys beside them, path: and authorization: drop), and the
 * pure rules of router/retry.h (listed statuses, Retry-After in both forms, backoff
 * with its cap and jitter, the budget).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/config.h"
#include "router/retry.h"
#include "tests/unit/check.h"

#include "tests/unit/config_fixture.h"

#define UP2                                                                                      \
  "listen: [127.0.0.1:8080]\n"                                                                   \
  "upstreams:\n"                                                                                 \
  "  u: {servers: [127.0.0.1:9001]}\n"                                                           \
  "  f: {servers: [127.0.0.1:9002]}\n"

static void test_defaults(void) {
  sy_config_t *cfg = parse_ok(UP2 EXP_HEAD "      - {id: a, upstream: u}\n" /* line 8 */);
  if (cfg == NULL)
    return;
  const sy_retry_conf_t *r = &cfg->upstreams[0].retry;
  CHECK(r->attempts == 2);
  CHECK(r->on == (SY_RETRY_CONNECT | SY_RETRY_RESET));
  CHECK(r->nstatuses == 4 && r->statuses[0] == 429 && r->statuses[3] == 504);
  CHECK(r->backoff_ms == 50 && r->backoff_max_ms == 1000 && r->retry_after_max_ms == 5000);
  CHECK(r->budget_percent == 20 && r->budget_min == 3);
  CHECK(!cfg->experiments[0].variants[0].has_fallback);
  sy_config_free(cfg);
}

static void test_values(void) {
  sy_config_t *cfg = parse_ok(
      "listen: [127.0.0.1:8080]\n"
      "upstreams:\n"
      "  u:\n"
      "    servers: [127.0.0.1:9001]\n"
      "    retry: {attempts: 3, on: [connect, timeout, 503], backoff_ms: 10,\n"
      "            backoff_max_ms: 40, retry_after_max_ms: 0, budget_percent: 50,\n"
      "            budget_min: 1}\n"
      "  f: {servers: [127.0.0.1:9002]}\n" EXP_HEAD
      "      - {id: a, upstream: u, fallback: f}\n"
      "      - {id: b, upstream: u, model: m, fallback: {upstream: f, model: gpt-4o-mini}}\n");
  if (cfg == NULL)
    return;
  const sy_retry_conf_t *r = &cfg->upstreams[0].retry;
  CHECK(r->attempts == 3);
  CHECK(r->on == (SY_RETRY_CONNECT | SY_RETRY_TIMEOUT));
  CHECK(r->nstatuses == 1 && r->statuses[0] == 503);
  CHECK(r->backoff_ms == 10 && r->backoff_max_ms == 40 && r->retry_after_max_ms == 0);
  CHECK(r->budget_percent == 50 && r->budget_min == 1);
  const sy_variant_conf_t *a = &cfg->experiments[0].variants[0];
  const sy_variant_conf_t *b = &cfg->experiments[0].variants[1];
  CHECK(a->has_fallback && a->fallback == 1 && a->fallback_model == NULL);
  CHECK(b->has_fallback && b->fallback == 1 && b->fallback_model != NULL &&
        strcmp(b->fallback_model, "gpt-4o-mini") == 0);
  sy_config_free(cfg);
}

static const err_case_t ERRORS[] = {
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    retry: 3\n",
     "t.yaml:5: upstreams.u.retry: must be a mapping (attempts, on, backoff_ms, ...)"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    retry: {attempts: 0}\n",
     "t.yaml:5: upstreams.u.retry.attempts: must be an integer in 1..5"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    retry: {on: [connect, 200]}\n",
     "t.yaml:5: upstreams.u.retry.on[1]: must be an integer in 400..599"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    retry: {on: [refused]}\n",
     "t.yaml:5: upstreams.u.retry.on[0]: must be connect, reset, timeout or an HTTP status "
     "400..599"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    retry: {on: [503, 503]}\n",
     "t.yaml:5: upstreams.u.retry.on[1]: 503 is listed twice"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    retry: {on: 503}\n",
     "t.yaml:5: upstreams.u.retry.on: must be a list of connect, reset, timeout or HTTP "
     "statuses"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    retry: {backoff_ms: 100, backoff_max_ms: 50}\n",
     "t.yaml:5: upstreams.u.retry: backoff_max_ms (50) must be at least backoff_ms (100)"},
    {UP2 EXP_HEAD "      - {id: a, upstream: u, fallback: nope}\n",
     "t.yaml:10: experiments[0].variants[0].fallback: unknown upstream 'nope'"},
    {UP2 EXP_HEAD "      - {id: a, upstream: u, fallback: u}\n",
     "t.yaml:10: experiments[0].variants[0].fallback: the fallback is the variant's own upstream "
     "(retry: tries it again)"},
    {UP2 EXP_HEAD "      - {id: a, upstream: u, fallback: [f]}\n",
     "t.yaml:10: experiments[0].variants[0].fallback: must be an upstream name or {upstream: "
     "NAME, model: MODEL}"},
    {UP2 EXP_HEAD "      - {id: a, upstream: u, fallback: {model: m}}\n",
     "t.yaml:10: experiments[0].variants[0].fallback.upstream: required key is missing"},
};

static const err_case_t PATH_ERRORS[] = {
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    path: /v1\n",
     "t.yaml:5: upstreams.u.path: must be a mapping (strip_prefix, add_prefix, query)"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    path: {add_prefix: openai}\n",
     "t.yaml:5: upstreams.u.path.add_prefix: must start with '/'"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    path: {strip_prefix: \"/v1 x\"}\n",
     "t.yaml:5: upstreams.u.path.strip_prefix: must be a path without spaces, '?' or '#'"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    path: {query: \"?api-version=1\"}\n",
     "t.yaml:5: upstreams.u.path.query: must be name=value pairs joined by '&' (no spaces, '?' "
     "or '#')"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
     "    authorization: remove\n",
     "t.yaml:5: upstreams.u.authorization: must be one of: replace, passthrough, drop"},
};

static void test_path_config(void) {
  sy_config_t *cfg = parse_ok(
      "listen: [127.0.0.1:8080]\nupstreams:\n  u:\n    servers: [127.0.0.1:9001]\n"
      "    authorization: drop\n"
      "    path: {strip_prefix: /v1, add_prefix: /openai/deployments/d, query: api-version=1}\n");
  if (cfg == NULL)
    return;
  const sy_upstream_conf_t *u = &cfg->upstreams[0];
  CHECK(u->auth_drop && !u->auth_passthrough);
  CHECK(u->path_strip && strcmp(u->path_strip, "/v1") == 0);
  CHECK(u->path_add && strcmp(u->path_add, "/openai/deployments/d") == 0);
  CHECK(u->path_query && strcmp(u->path_query, "api-version=1") == 0);
  sy_config_free(cfg);
  for (size_t i = 0; i < sizeof PATH_ERRORS / sizeof PATH_ERRORS[0]; i++) {
    char err[512] = "";
    cfg = NULL;
    int rc = parse(PATH_ERRORS[i].yaml, &cfg, err, sizeof err);
    CHECK_MSG(rc == -1 && cfg == NULL, "path case %zu parsed", i);
    CHECK_MSG(strcmp(err, PATH_ERRORS[i].want) == 0, "path case %zu:\n  got:  %s\n  want: %s", i,
              err, PATH_ERRORS[i].want);
  }
}

static void test_errors(void) {
  for (size_t i = 0; i < sizeof ERRORS / sizeof ERRORS[0]; i++) {
    char err[512] = "";
    sy_config_t *cfg = NULL;
    int rc = parse(ERRORS[i].yaml, &cfg, err, sizeof err);
    CHECK_MSG(rc == -1 && cfg == NULL, "case %zu parsed", i);
    CHECK_MSG(strcmp(err, ERRORS[i].want) == 0, "case %zu:\n  got:  %s\n  want: %s", i, err,
              ERRORS[i].want);
  }
}

static void test_rules(void) {
  sy_retry_conf_t rc;
  memset(&rc, 0, sizeof rc);
  rc.statuses[0] = 429, rc.statuses[1] = 503, rc.nstatuses = 2;
  CHECK(sy_retry_status_listed(&rc, 503) && sy_retry_status_listed(&rc, 429));
  CHECK(!sy_retry_status_listed(&rc, 500) && !sy_retry_status_listed(&rc, 200));

  /* Retry-After: delay-seconds, an IMF-fixdate, and what is neither */
  time_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
  CHECK(sy_retry_after_ms("2", 1, now) == 2000);
  CHECK(sy_retry_after_ms(" 0 ", 3, now) == 0);
  CHECK(sy_retry_after_ms("Sun, 06 Nov 1994 08:49:40 GMT", 29, now) == 3000);
  CHECK(sy_retry_after_ms("Sun, 06 Nov 1994 08:49:30 GMT", 29, now) == 0);
  CHECK(sy_retry_after_ms("Sun, 06 Xyz 1994 08:49:40 GMT", 29, now) == -1);
  CHECK(sy_retry_after_ms("Sunday, 06-Nov-94 08:49:37 GMT", 30, now) == -1);
  CHECK(sy_retry_after_ms("1.5", 3, now) == -1);
  CHECK(sy_retry_after_ms("", 0, now) == -1);
  CHECK(sy_retry_after_ms("99999999999999999999", 20, now) > 86400000LL);

  /* backoff: doubled per retry, capped, jitter 0.75..1.25 */
  rc.backoff_ms = 100, rc.backoff_max_ms = 350;
  CHECK(sy_retry_backoff_ms(&rc, 1, 0.5) == 100);
  CHECK(sy_retry_backoff_ms(&rc, 2, 0.5) == 200);
  CHECK(sy_retry_backoff_ms(&rc, 3, 0.5) == 350);
  CHECK(sy_retry_backoff_ms(&rc, 9, 0.5) == 350);
  CHECK(sy_retry_backoff_ms(&rc, 1, 0.0) == 75);
  CHECK(sy_retry_backoff_ms(&rc, 1, 0.999) == 124);

  /* budget: budget_percent of the requests in flight, at least budget_min */
  rc.budget_percent = 20, rc.budget_min = 3;
  CHECK(sy_retry_budget_ok(&rc, 1, 2));
  CHECK(!sy_retry_budget_ok(&rc, 1, 3));
  CHECK(sy_retry_budget_ok(&rc, 100, 19));
  CHECK(!sy_retry_budget_ok(&rc, 100, 20));
  rc.budget_percent = 0, rc.budget_min = 0;
  CHECK(!sy_retry_budget_ok(&rc, 100, 0));
}

int main(void) {
  test_defaults();
  test_values();
  test_errors();
  test_rules();
  test_path_config();
  test_out_of_memory(UP2 EXP_HEAD "      - {id: a, upstream: u, fallback: {upstream: f, model: m}}\n");
  return CHECK_DONE();
}
