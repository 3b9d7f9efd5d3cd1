/*
 * test_control_state.c — an experiment's `gate:` block (router/config_gate.c) and the
 * control state's meaning for routing (router/control_state.c): defaults, values and
 * errors of the block; initial stages; parsing a state hash; canary shares with their
 * cap; the routing of every status; the argument vector of a change.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/config.h"
#include "router/control_state.h"
#include "stats/scripts.h"
#include "tests/unit/check.h"

static const char head[] = "listen: [\"127.0.0.1:8080\"]\n"
                           "upstreams:\n"
                           "  mock: {servers: [\"127.0.0.1:9000\"]}\n"
                           "experiments:\n"
                           "  - id: chat\n"
                           "    match: {path_prefix: /v1/chat}\n"
                           "    control: a\n";

static sy_config_t *load(const char *policy, const char *variants, const char *gate, char *err,
                         size_t errlen) {
  char yaml[4096];
  snprintf(yaml, sizeof yaml, "%s    policy: %s\n    variants:\n%s%s", head, policy, variants,
           gate);
  sy_config_t *cfg = NULL;
  if (sy_config_parse("t.yaml", yaml, strlen(yaml), &cfg, err, errlen) < 0)
    return NULL;
  return cfg;
}

static const char three[] = "      - {id: a, upstream: mock}\n"
                            "      - {id: b, upstream: mock}\n"
                            "      - {id: c, upstream: mock, shadow: {fraction: 0.5}}\n";

static void test_gate_defaults(void) {
  char err[512];
  sy_config_t *cfg = load("split", three, "", err, sizeof err);
  CHECK_MSG(cfg != NULL, "%s", err);
  if (cfg == NULL)
    return;
  const sy_gate_conf_t *g = &cfg->experiments[0].gate;
  CHECK(g->mode == SY_GATE_OFF);
  CHECK(g->alpha == 0.05 && g->min_samples == 100 && g->nramp == 4 && g->ramp[0] == 1 &&
        g->ramp[3] == 50);
  CHECK(g->interval_ms == 5000 && g->step_min_s == 60 && g->max_stale_s == 300);
  CHECK(g->latency_p95_ratio == 1.2 && g->error_rate_delta == 0.02 && g->tokens_ratio == 1.5);
  CHECK(g->srm_alpha == 0.001 && g->guard_alpha == 0.05 && g->promote_share == 0.9);
  sy_config_free(cfg);

  /* A gate: block without a mode takes the policy's. */
  cfg = load("split", three, "    gate: {}\n", err, sizeof err);
  CHECK_MSG(cfg != NULL, "%s", err);
  CHECK(cfg == NULL || cfg->experiments[0].gate.mode == SY_GATE_CANARY);
  sy_config_free(cfg);
  cfg = load("thompson", three, "    thompson: {floor: 0.05}\n    gate: {alpha: 0.01}\n", err,
             sizeof err);
  CHECK_MSG(cfg != NULL, "%s", err);
  CHECK(cfg == NULL || (cfg->experiments[0].gate.mode == SY_GATE_BANDIT &&
                        cfg->experiments[0].gate.alpha == 0.01));
  sy_config_free(cfg);
}

static void test_gate_values(void) {
  char err[512];
  sy_config_t *cfg = load("split", three,
                          "    gate:\n"
                          "      mode: canary\n"
                          "      ramp: [2, 10, 30]\n"
                          "      interval: 250ms\n"
                          "      step_min: 2m\n"
                          "      max_stale: 1h\n"
                          "      step_min_requests: 500\n"
                          "      tuning_n: 4000\n"
                          "      guardrails: {latency_p95_ratio: off, error_rate_delta: 0.05,"
                          " tokens_ratio: 2, alpha: 0.1}\n"
                          "      srm_alpha: 0.0001\n"
                          "      promote_share: 0.5\n",
                          err, sizeof err);
  CHECK_MSG(cfg != NULL, "%s", err);
  if (cfg == NULL)
    return;
  const sy_gate_conf_t *g = &cfg->experiments[0].gate;
  CHECK(g->mode == SY_GATE_CANARY && g->nramp == 3 && g->ramp[2] == 30);
  CHECK(g->interval_ms == 250 && g->step_min_s == 120 && g->max_stale_s == 3600);
  CHECK(g->step_min_requests == 500 && g->tuning_n == 4000);
  CHECK(g->latency_p95_ratio == 0 && g->error_rate_delta == 0.05 && g->tokens_ratio == 2);
  CHECK(g->guard_alpha == 0.1 && g->srm_alpha == 0.0001 && g->promote_share == 0.5);
  sy_config_free(cfg);
}

static void test_gate_errors(void) {
  static const struct {
    const char *policy, *gate, *want;
  } cases[] = {
      {"split", "    gate: {mode: bandit}\n",
       "t.yaml:13: experiments[0].gate.mode: bandit needs policy: thompson"},
      {"thompson", "    gate: {mode: canary}\n",
       "t.yaml:13: experiments[0].gate.mode: canary needs policy split or fixed"},
      {"split", "    gate: {mode: sometimes}\n",
       "t.yaml:13: experiments[0].gate.mode: must be one of"},
      {"split", "    gate: {ramp: [5, 5]}\n",
       "t.yaml:13: experiments[0].gate.ramp[1]: steps must increase"},
      {"split", "    gate: {ramp: [0]}\n",
       "t.yaml:13: experiments[0].gate.ramp[0]: must be a percentage in (0, 100]"},
      {"split", "    gate: {ramp: []}\n", "t.yaml:13: experiments[0].gate.ramp: must be a list"},
      {"split", "    gate: {alpha: 0.7}\n", "t.yaml:13: experiments[0].gate.alpha: must be in"},
      {"split", "    gate: {interval: 10ms}\n",
       "t.yaml:13: experiments[0].gate.interval: must be at least 100 ms"},
      {"split", "    gate: {step_min: soon}\n",
       "t.yaml:13: experiments[0].gate.step_min: must be a duration"},
      {"split", "    gate: {guardrails: {latency_p95_ratio: 0.9}}\n",
       "t.yaml:13: experiments[0].gate.guardrails.latency_p95_ratio: must be off (0) or a "
       "number > 1"},
      {"split", "    gate: {min_sample: 3}\n",
       "t.yaml:13: experiments[0].gate.min_sample: unknown key"},
      {"split", "    gate: [1]\n", "t.yaml:13: experiments[0].gate: must be a mapping"},
      {"split", "    gate: {promote_share: 1}\n",
       "t.yaml:13: experiments[0].gate.promote_share: must be in (0, 1)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[512] = "";
    sy_config_t *cfg = load(cases[i].policy, three, cases[i].gate, err, sizeof err);
    CHECK_MSG(cfg == NULL && strncmp(err, cases[i].want, strlen(cases[i].want)) == 0,
              "case %zu: got '%s', wanted '%s...'", i, err, cases[i].want);
    sy_config_free(cfg);
  }
}

static void test_stages_and_routing(void) {
  char err[512];
  sy_config_t *cfg = load("split", three, "    gate: {ramp: [10, 40, 60]}\n", err, sizeof err);
  CHECK_MSG(cfg != NULL, "%s", err);
  if (cfg == NULL)
    return;
  const sy_experiment_conf_t *e = &cfg->experiments[0];
  CHECK(sy_ctl_initial_stage(e, 0) == SY_STAGE_LIVE);   /* the control */
  CHECK(sy_ctl_initial_stage(e, 1) == SY_STAGE_CANARY); /* no shadow: block */
  CHECK(sy_ctl_initial_stage(e, 2) == SY_STAGE_SHADOW);
  /* shares: the step's percentage, capped at 1/(k+1) = 1/3 */
  CHECK(fabs(sy_ctl_canary_share(e, 0) - 0.10) < 1e-12);
  CHECK(fabs(sy_ctl_canary_share(e, 1) - 1.0 / 3) < 1e-12);
  CHECK(fabs(sy_ctl_canary_share(e, 9) - 1.0 / 3) < 1e-12); /* past the last step */

  sy_ctl_state_t s;
  double w[SY_CTL_MAX_VARIANTS];
  unsigned char act[SY_CTL_MAX_VARIANTS];
  static const char *const kv1[] = {"version", "7",      "status", "running", "v:b",    "canary",
                                    "step:b",  "1",      "v:c",    "canary",  "step:c", "0",
                                    "v:zz",    "canary", "base:b", "120",     "winner", ""};
  CHECK(sy_ctl_state_parse(e, kv1, 9, &s) == 0);
  CHECK(s.version == 7 && s.status == SY_XS_RUNNING && s.winner == -1);
  CHECK(s.stage[1] == SY_STAGE_CANARY && s.step[1] == 1 && s.base[1] == 120);
  CHECK(sy_ctl_routing(e, &s, w, act) == SY_ROUTE_WEIGHTS);
  CHECK(fabs(w[1] - 1.0 / 3) < 1e-12 && fabs(w[2] - 0.10) < 1e-12);
  CHECK(fabs(w[0] + w[1] + w[2] - 1) < 1e-12);

  static const char *const kv2[] = {"version", "8", "status", "paused", "v:b", "canary"};
  CHECK(sy_ctl_state_parse(e, kv2, 3, &s) == 0);
  CHECK(sy_ctl_routing(e, &s, w, act) == SY_ROUTE_WEIGHTS && w[0] == 1 && w[1] == 0 && w[2] == 0);

  static const char *const kv3[] = {"version", "9", "status", "concluded", "winner", "b"};
  CHECK(sy_ctl_state_parse(e, kv3, 3, &s) == 0);
  CHECK(sy_ctl_routing(e, &s, w, act) == SY_ROUTE_WEIGHTS && w[1] == 1 && w[0] == 0);

  static const char *const kv4[] = {"version", "10", "status", "concluded", "winner", ""};
  CHECK(sy_ctl_state_parse(e, kv4, 3, &s) == 0);
  CHECK(sy_ctl_routing(e, &s, w, act) == SY_ROUTE_WEIGHTS && w[0] == 1);

  /* A halted experiment routes as it was; unknown names are counted, not applied. */
  static const char *const kv5[] = {"version", "11",       "status", "halted",
                                    "v:b",     "sideways", "winner", "zz"};
  CHECK(sy_ctl_state_parse(e, kv5, 4, &s) == 2);
  CHECK(s.status == SY_XS_HALTED && s.stage[1] == SY_STAGE_CANARY && s.winner == -1);
  CHECK(sy_ctl_routing(e, &s, w, act) == SY_ROUTE_WEIGHTS && fabs(w[1] - 0.10) < 1e-12);
  sy_config_free(cfg);

  /* Without a gate: the policy routes, limited to live variants. */
  cfg = load("split", three, "", err, sizeof err);
  CHECK_MSG(cfg != NULL, "%s", err);
  if (cfg == NULL)
    return;
  e = &cfg->experiments[0];
  static const char *const kv6[] = {"version", "3", "v:c", "rolled_back"};
  CHECK(sy_ctl_state_parse(e, kv6, 2, &s) == 0);
  CHECK(sy_ctl_routing(e, &s, w, act) == SY_ROUTE_POLICY && act[0] && act[1] && !act[2]);
  static const char *const kv7[] = {"version", "4",       "v:a", "removed",
                                    "v:b",     "removed", "v:c", "removed"};
  CHECK(sy_ctl_state_parse(e, kv7, 4, &s) == 0);
  CHECK(sy_ctl_routing(e, &s, w, act) == SY_ROUTE_POLICY && act[0] && !act[1] && !act[2]);
  sy_config_free(cfg);
}

static void test_change_argv(void) {
  sy_ctl_change_t c;
  CHECK(sy_ctl_change_init(&c, "rollback", "b", "operator:me@host", "too slow", "{\"x\":1}",
                           1234) == 0);
  sy_ctl_change_set(&c, "v:b", "rolled_back");
  sy_ctl_change_event(&c, "chat", "ev-1", "host:1", "2026-01-01T00:00:00.000Z", 2);
  char keys[4][160];
  const char *argv[SY_CTL_ARGV_MAX];
  size_t lens[SY_CTL_ARGV_MAX];
  int n = sy_ctl_change_argv(&c, SY_LUA_CONTROL, "chat", 41, "sy:events", "1000", keys, argv, lens);
  /* EVAL script 3 state audit stream | expect exp maxlen n [pairs] m [pairs] [event] */
  CHECK(n == 10 + 2 + 1 + 12 + 20 + 4);
  CHECK(strcmp(argv[3], "sy:{chat}:state") == 0 && strcmp(argv[4], "sy:{chat}:audit") == 0);
  CHECK(strcmp(argv[6], "41") == 0 && strcmp(argv[7], "chat") == 0);
  CHECK(strcmp(argv[9], "1") == 0 && strcmp(argv[10], "v:b") == 0 &&
        strcmp(argv[11], "rolled_back") == 0);
  CHECK(strcmp(argv[12], "6") == 0 && strcmp(argv[13], "decision") == 0 &&
        strcmp(argv[14], "rollback") == 0);
  int saw_reason = 0, saw_by = 0;
  for (int i = 0; i + 1 < n; i++) {
    saw_reason |= strcmp(argv[i], "decision_reason") == 0 && strcmp(argv[i + 1], "too slow") == 0;
    saw_by |= strcmp(argv[i], "decided_by") == 0 && strcmp(argv[i + 1], "operator:me@host") == 0;
    CHECK(lens[i] == strlen(argv[i]));
  }
  CHECK(saw_reason && saw_by);
  sy_ctl_change_free(&c);
}

int main(void) {
  test_gate_defaults();
  test_gate_values();
  test_gate_errors();
  test_stages_and_routing();
  test_change_argv();
  return CHECK_DONE();
}
