/*
 * test_config_errors.c — invalid configs (router/config.c): a table of them, each
 * asserting the complete one-line message (file, line, key path, problem); too many
 * variants; YAML alias abuse; small error buffers; files that cannot be loaded. Every
 * error path runs under ASan/LSan in the sanitizer build, so a leak on any of them
 * fails the suite.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router/config.h"
#include "tests/unit/check.h"

#include "tests/unit/config_fixture.h"

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
     "t.yaml:1: listen: must be a list of host:port or {address, tls}"},
    {"listen: []\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen: needs at least one host:port"},
    {"listen: 127.0.0.1:8080\nupstreams: {u: {servers: [127.0.0.1:9001]}}\n",
     "t.yaml:1: listen: must be a list of host:port or {address, tls}"},
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
    {BASE "limits:\n  max_body_bytes: 1000\n  held_body_bytes: 999\n",
     "t.yaml:4: limits: held_body_bytes (999) must be at least max_body_bytes (1000)"},
    {BASE "limits:\n  held_body_bytes: 0\n",
     "t.yaml:4: limits.held_body_bytes: must be an integer in 1..68719476736"},
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
     "t.yaml:4: upstreams.u.servers: needs at least one server"},
    /* servers as URLs, tls:, host_header: (test_config_tls.c has the valid ones) */
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [ftp://a.example]\n",
     "t.yaml:4: upstreams.u.servers[0]: unknown URL scheme 'ftp' (use https://, http:// or "
     "host:port)"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [https://a.example/v1]\n",
     "t.yaml:4: upstreams.u.servers[0]: a server URL is scheme://host[:port], without a path, "
     "query or user (the path is the request's), got 'https://a.example/v1'"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [\"https://a.example:0\"]\n",
     "t.yaml:4: upstreams.u.servers[0]: port must be an integer in 1..65535, got 'a.example:0'"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [\"https://\"]\n",
     "t.yaml:4: upstreams.u.servers[0]: invalid host in ''"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [a.example]\n",
     "t.yaml:4: upstreams.u.servers[0]: expected host:port, got 'a.example'"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [https://a.example, \"a.example:443\"]\n",
     "t.yaml:4: upstreams.u.servers[1]: duplicate address (same as entry 0)"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [127.0.0.1:9001]\n    tls: {insecure: true}\n",
     "t.yaml:5: upstreams.u.tls: no server of this upstream is https://"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [https://a.example]\n    tls: {cert_file: /c.pem}\n",
     "t.yaml:5: upstreams.u.tls: cert_file and key_file go together (mTLS): give both or "
     "neither"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [https://a.example]\n    tls:\n      ca_file: /nonexistent/ca.pem\n",
     "t.yaml:6: upstreams.u.tls.ca_file: cannot read /nonexistent/ca.pem: No such file or "
     "directory"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [https://a.example]\n    tls: {insecure: true, ca_file: /x.pem}\n",
     "t.yaml:5: upstreams.u.tls.insecure: insecure: true verifies nothing: drop ca_file or "
     "insecure"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [https://a.example]\n    tls: {insecure: 2}\n",
     "t.yaml:5: upstreams.u.tls.insecure: must be true or false"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [https://a.example]\n    tls: {server_name: \"a b\"}\n",
     "t.yaml:5: upstreams.u.tls.server_name: must be a host name or IPv4 address, got 'a b'"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [https://a.example]\n    tls: {sni: x}\n",
     "t.yaml:5: upstreams.u.tls.sni: unknown key"},
    {"listen: [127.0.0.1:8080]\nupstreams:\n  u:\n"
     "    servers: [https://a.example]\n    host_header: \"a b\"\n",
     "t.yaml:5: upstreams.u.host_header: must be client, server or a host[:port], got 'a b'"},
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
  test_errors();
  test_too_many_variants();
  test_alias_abuse();
  test_small_buffers();
  test_load_errors();
  return CHECK_DONE();
}
