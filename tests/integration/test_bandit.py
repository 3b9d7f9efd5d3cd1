#!/usr/bin/env python3
"""test_bandit.py — an experiment with policy: thompson routes through the proxy by
its posterior, and the posterior is fed from outside (the stats file, until the Redis
stats layer supplies it): shares follow the counts and move when the counts change;
the exploration floor holds; a session keeps its variant across a change of the
posterior; a segment with enough observations uses its own posterior; a bad stats
file keeps the last good one.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


def write_stats(path, variants, segments=None):
    exp = {"variants": variants}
    if segments:
        exp["segments"] = segments
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"experiments": {"bandit": exp}}, f)
    os.replace(tmp, path)  # atomic, as a real feeder would write it


def start(env, stats, **thompson):
    mock = env.mock()
    path = env.path("stats.json")
    write_stats(path, stats)
    exp = {
        "id": "bandit",
        "match": {"method": "POST", "path_prefix": "/v1/chat/completions"},
        "policy": "thompson",
        "control": "a",
        "variants": [{"id": "a", "upstream": "mock", "model": "model-a"},
                     {"id": "b", "upstream": "mock", "model": "model-b"}],
    }
    if "sticky_header" in thompson:
        exp["sticky_header"] = thompson.pop("sticky_header")
    if thompson:
        exp["thompson"] = thompson
    cfg = h.router_config(mock.addr, experiments=[exp], stats_file=path, stats_poll_ms=50)
    router = env.router(cfg)
    router.cfg = cfg
    return path, router


def shares(router, n, headers=None):
    """Counts of variants over n requests (one keep-alive connection)."""
    c = h.Client(router.port)
    counts = {"a": 0, "b": 0}
    for i in range(n):
        r = c.request("POST", "/v1/chat/completions", headers or {}, h.chat_body())
        check(r.status == 200, "status %s: %r", r.status, r.body[:200])
        v = r.header("x-switchyard-variant")
        check(r.json()["model"] == "model-" + v, "variant %s served by %s", v, r.json()["model"])
        counts[v] += 1
    c.close()
    return counts


A_BETTER = {"a": {"n": 1000, "sum": 300}, "b": {"n": 1000, "sum": 100}}
B_BETTER = {"a": {"n": 1000, "sum": 100}, "b": {"n": 1000, "sum": 300}}
EVEN = {"a": {"n": 2000, "sum": 400}, "b": {"n": 2000, "sum": 400}}


def wait_for_majority(router, variant, timeout_s=5):
    """Waits until the file has been picked up: 20 requests in a row go to variant."""
    def ok():
        return shares(router, 20)[variant] == 20
    check(h.wait_until(ok, timeout_s, interval=0.1), "posterior not picked up (%s)", variant)


def test_shares_follow_the_posterior(env):
    path, router = start(env, B_BETTER)
    got = shares(router, 300)
    check(got["b"] >= 290, "b should win nearly always: %r", got)
    write_stats(path, A_BETTER)
    wait_for_majority(router, "a")
    got = shares(router, 300)
    check(got["a"] >= 290, "after the flip a should win nearly always: %r", got)
    write_stats(path, EVEN)
    time.sleep(0.3)
    got = shares(router, 600)
    check(200 <= got["a"] <= 400, "equal posteriors should split about evenly: %r", got)


def test_no_stats_explores_evenly(env):
    # Beta(1,1) priors and no data: P(best) = 1/2 each.
    path, router = start(env, {})
    got = shares(router, 600)
    check(200 <= got["a"] <= 400, "no data should split about evenly: %r", got)


def test_exploration_floor(env):
    path, router = start(env, B_BETTER, floor=0.2)
    got = shares(router, 1000)
    # a's propensity is 0.2 + 0.6 * P(a best) ~= 0.2: 200 expected, sd ~ 13.
    check(140 <= got["a"] <= 260, "floor 0.2 not honoured: %r", got)


def test_sessions_keep_their_variant(env):
    path, router = start(env, B_BETTER, sticky_header="x-session-id", sticky_ttl_ms=60000)
    first = {}
    for i in range(30):
        r = h.post_chat(router.port, {"x-session-id": "s%d" % i})
        first[i] = r.header("x-switchyard-variant")
    check(sum(v == "b" for v in first.values()) >= 28, "sessions under B_BETTER: %r", first)
    write_stats(path, A_BETTER)
    # New sessions follow the new posterior ...
    check(h.wait_until(lambda: all(
        h.post_chat(router.port, {"x-session-id": "new-%f" % time.time()}).header(
            "x-switchyard-variant") == "a" for _ in range(5)), 5, interval=0.1),
        "new sessions did not follow the new posterior")
    # ... while the old ones keep theirs.
    for i in range(30):
        r = h.post_chat(router.port, {"x-session-id": "s%d" % i})
        check(r.header("x-switchyard-variant") == first[i], "session s%d switched %s -> %s",
              i, first[i], r.header("x-switchyard-variant"))


def test_sessions_survive_reload(env):
    path, router = start(env, B_BETTER, sticky_header="x-session-id", sticky_ttl_ms=60000)
    first = {i: h.post_chat(router.port, {"x-session-id": "r%d" % i}).header(
        "x-switchyard-variant") for i in range(20)}
    write_stats(path, A_BETTER)
    cfg = router.cfg
    cfg["limits"] = {"idle_timeout_ms": 30000}  # any change: a new runtime
    router.write_config(cfg)
    router.signal(h.signal.SIGHUP)
    router.wait_log("config reloaded")
    wait_for_majority(router, "a")
    for i in range(20):
        r = h.post_chat(router.port, {"x-session-id": "r%d" % i})
        check(r.header("x-switchyard-variant") == first[i], "session r%d switched on reload", i)


@h.timeout(60)
def test_segment_posterior(env):
    seg = {"t1": {"a": {"n": 500, "sum": 250}, "b": {"n": 500, "sum": 50}},
           "thin": {"a": {"n": 5, "sum": 5}, "b": {"n": 5, "sum": 0}}}
    path, router = start(env, B_BETTER, segment_header="x-tenant-id", segment_min_samples=100)
    write_stats(path, B_BETTER, seg)
    # The file is polled every 50 ms; under a loaded machine (ASan) the reload can
    # take longer than any fixed sleep: wait for it, then measure.
    check(h.wait_until(lambda: shares(router, 20, {"x-tenant-id": "t1"})["a"] >= 19, 20, 0.1),
          "the stats file's segment posterior never took effect (20 s)")
    got = shares(router, 100, {"x-tenant-id": "t1"})
    check(got["a"] >= 95, "tenant t1 has its own posterior (a better): %r", got)
    got = shares(router, 100, {"x-tenant-id": "thin"})
    check(got["b"] >= 95, "a thin segment falls back to the experiment's posterior: %r", got)
    got = shares(router, 100, {"x-tenant-id": "unknown"})
    check(got["b"] >= 95, "an unknown segment uses the experiment's posterior: %r", got)


def test_bad_stats_file_keeps_last_good(env):
    path, router = start(env, B_BETTER)
    check(shares(router, 50)["b"] >= 48, "initial posterior")
    with open(path, "w") as f:
        f.write("{not json")
    router.wait_log("stats file", timeout_s=5)
    got = shares(router, 200)
    check(got["b"] >= 190, "a bad file changed the posterior: %r", got)
    write_stats(path, {"a": {"n": 10, "sum": 20}, "b": {"n": 10, "sum": 1}})  # sum > n: invalid
    router.wait_log("bad statistics", timeout_s=5)
    got = shares(router, 200)
    check(got["b"] >= 190, "invalid counts changed the posterior: %r", got)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
