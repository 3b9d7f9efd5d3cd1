#!/usr/bin/env python3
"""test_gate_e2e.py — the gate end to end: a control and two candidates behind a canary
gate, a driver sending traffic and delayed outcomes drawn at each variant's simulated
outcome rate (the mock backends declare it); the gate ramps both candidates, rolls back
the worse one and promotes the better one, and the audit stream explains both with
the numbers behind them. Also: a paused experiment decides nothing.
"""
import collections
import heapq
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SWITCHYARD = os.environ.get("SY_SWITCHYARD", "build/router/switchyard")
KEY = "gate-e2e-key-0123456789abcdef"
os.environ["SY_GATE_E2E_KEY"] = KEY

# The simulated quality of each variant's backend: the probability that a response
# leads to a resolved task. a is the control; b is better, c is worse.
RATES = {"a": 0.30, "b": 0.38, "c": 0.05}


def config(env, redis, mocks, port=None, gate_extra=None):
    gate = {"mode": "canary", "interval": "200ms", "ramp": [10, 20, 50], "step_min": "200ms",
            "step_min_requests": 20, "min_samples": 300, "tuning_n": 2000, "max_stale": "30s",
            "guardrails": {"latency_p95_ratio": 3, "error_rate_delta": 0.2, "tokens_ratio": 3}}
    gate.update(gate_extra or {})
    exp = {"id": "chat", "match": {"method": "POST", "path_prefix": "/v1/chat/completions"},
           "policy": "split", "control": "a",
           "outcome": {"metric": "resolved", "type": "binary", "window": "10m"},
           "variants": [{"id": v, "upstream": "mock_" + v, "model": "model-" + v}
                        for v in ("a", "b", "c")],
           "gate": gate}
    return {"listen": ["127.0.0.1:%d" % (port or h.free_port())],
            "upstreams": {"mock_" + v: {"servers": [mocks[v].addr]} for v in mocks},
            "experiments": [exp], "data_dir": env.path("data"),
            "redis": {"url": redis.url}, "events": {"sync_ms": 200, "flush_ms": 20},
            "api_keys": [{"name": "driver", "secret_env": "SY_GATE_E2E_KEY", "tenant": "t1"}]}


def post_outcome(c, tid, value):
    r = c.request("POST", "/switchyard/v1/outcome",
                  {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"},
                  {"trace_id": tid, "metric": "resolved", "value": value})
    check(r.status == 200, "outcome: %s %r", r.status, r.body[:200])


def drive(port, rc, until, budget_s, delay=40, seed=7, hold=None):
    """Requests, and for each the outcome `delay` requests later (delayed feedback), or
    delay + hold[v] later for variant v; stops when until(state) is true or after
    budget_s. Returns (state, counts)."""
    rnd = random.Random(seed)
    c = h.Client(port)
    pending = []  # a heap of (due request index, seq, trace id, outcome)
    counts = collections.Counter()
    t0 = time.monotonic()
    st = {}
    i = 0
    try:
        while time.monotonic() - t0 < budget_s:
            r = c.request("POST", "/v1/chat/completions", {"x-switchyard-tenant": "t1"},
                          h.chat_body())
            check(r.status == 200, "chat: %s %r", r.status, r.body[:200])
            v = r.header("x-switchyard-variant")
            rate = float(r.header("x-mock-outcome-rate"))
            counts[v] += 1
            due = i + delay + (hold or {}).get(v, 0)
            heapq.heappush(pending, (due, i, r.header("x-switchyard-trace-id"),
                                     rnd.random() < rate))
            while pending and pending[0][0] <= i:
                _, _, tid, ok = heapq.heappop(pending)
                post_outcome(c, tid, 1 if ok else 0)
            i += 1
            if i % 50 == 0:
                st = rc.hgetall("sy:{chat}:state")
                if until(st):
                    break
    finally:
        c.close()
    return st, counts


def history(redis):
    p = subprocess.run([SWITCHYARD, "history", "chat", "--json", "--redis", redis.url],
                       capture_output=True, text=True, timeout=20)
    check(p.returncode == 0, "history: %s", p.stderr)
    return [json.loads(line) for line in p.stdout.splitlines()]


@h.timeout(240)
def test_gate_promotes_the_better_and_rolls_back_the_worse(env):
    redis = h.redis_server(env)
    mocks = {v: env.mock("--outcome-rate", str(RATES[v]), name="mock_" + v) for v in RATES}
    router = env.router(config(env, redis, mocks))
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    check(h.wait_until(lambda: rc.hgetall("sy:{chat}:state").get("v:b") == "canary", 5),
          "candidates did not start in canary: %r", rc.hgetall("sy:{chat}:state"))

    # b's outcomes arrive 400 requests later than the others': its promotion (which
    # concludes the experiment) cannot come before c has the outcomes its roll back
    # needs. With the same delay for all, whichever of the two reached min_samples
    # first decided the order (a lucky early lead let b end it first, once in CI).
    st, counts = drive(router.port, rc,
                       lambda s: s.get("status") == "concluded" and s.get("v:c") == "rolled_back",
                       budget_s=150, hold={"b": 400})
    check(st.get("v:c") == "rolled_back", "c (%.2f) was not rolled back: %r after %r",
          RATES["c"], st, dict(counts))
    check(st.get("status") == "concluded" and st.get("winner") == "b",
          "b (%.2f) was not promoted: %r after %r", RATES["b"], st, dict(counts))

    rows = history(redis)
    kinds = [(r["decision"], r["variant"]) for r in rows]
    check(("ramp", "b") in kinds, "b was never ramped: %r", kinds)
    rb = next(r for r in rows if r["decision"] == "rollback")
    pr = next(r for r in rows if r["decision"] == "promote")
    check(kinds.index(("rollback", "c")) < kinds.index(("promote", "b")),
          "c must be out before b concludes the experiment: %r", kinds)
    for r, sign in ((rb, -1), (pr, 1)):
        check(r["by"].startswith("gate:"), "by %r", r["by"])
        check(r["reason"].startswith("outcome:"), "reason %r", r["reason"])
        o = r["stats"]["outcome"]
        check(sign * o["estimate"] > 0 and (o["upper"] < 0 if sign < 0 else o["lower"] > 0),
              "%s: the confidence sequence does not exclude 0: %r", r["decision"], o)
        check(r["stats"]["n_control"] >= 300 and r["stats"]["n_candidate"] >= 300,
              "%s with too few outcomes: %r", r["decision"], r["stats"])
        check(abs(r["stats"]["mean_control"] - RATES["a"]) < 0.2, "control mean %r",
              r["stats"]["mean_control"])
    # The decisions are events too, joined to the experiment.
    evs = [f for _, f in rc.stream() if f.get("event_type") == "decision"]
    check({(e["decision"], e["variant"]) for e in evs} >= {("rollback", "c"), ("promote", "b")},
          "decision events %r", [(e["decision"], e["variant"]) for e in evs])
    # All traffic now goes to b, once the router has applied the state's new version
    # (routers poll it every 250 ms: the state in Redis can be ahead of the router).
    def applied():  # ten in a row to b: (1/3)^10 by chance before the promotion
        cc = h.Client(router.port)
        try:
            return all(cc.request("POST", "/v1/chat/completions", {},
                                  h.chat_body()).header("x-switchyard-variant") == "b"
                       for _ in range(10))
        finally:
            cc.close()
    check(h.wait_until(applied, 3, 0.05), "the router never applied the promotion")
    c = h.Client(router.port)
    served = collections.Counter(
        c.request("POST", "/v1/chat/completions", {}, h.chat_body()).header("x-switchyard-variant")
        for _ in range(50))
    c.close()
    check(served == {"b": 50}, "after promotion: %r", dict(served))


@h.timeout(120)
def test_paused_experiment_decides_nothing(env):
    redis = h.redis_server(env)
    mocks = {v: env.mock("--outcome-rate", str(RATES[v]), name="mock_" + v) for v in RATES}
    router = env.router(config(env, redis, mocks))
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    check(h.wait_until(lambda: rc.hgetall("sy:{chat}:state").get("version"), 5), "no state")
    p = subprocess.run([SWITCHYARD, "pause", "chat", "--reason", "test", "--redis", redis.url],
                       capture_output=True, text=True, timeout=20)
    check(p.returncode == 0, "pause: %s", p.stderr)
    time.sleep(0.5)
    version = rc.hgetall("sy:{chat}:state")["version"]
    st, counts = drive(router.port, rc, lambda s: False, budget_s=8)
    check(set(counts) == {"a"}, "paused, but served %r", dict(counts))
    st = rc.hgetall("sy:{chat}:state")
    check(st["version"] == version and st["status"] == "paused",
          "the gate changed a paused experiment: %r", st)


@h.timeout(120)
def test_shadow_stage_then_canary(env):
    """A candidate with shadow: starts with mirrored copies only; after enough of them,
    with an error rate like the control's, the gate moves it to the first canary step;
    mirroring stops there."""
    redis = h.redis_server(env)
    mocks = {v: env.mock("--outcome-rate", str(RATES[v]), name="mock_" + v) for v in RATES}
    cfg = config(env, redis, mocks, gate_extra={"shadow_min_requests": 50, "min_samples": 100000})
    cfg["experiments"][0]["variants"][1]["shadow"] = {"fraction": 1.0}
    router = env.router(cfg)
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    check(h.wait_until(lambda: rc.hgetall("sy:{chat}:state").get("v:b") == "shadow", 5),
          "b did not start in shadow: %r", rc.hgetall("sy:{chat}:state"))
    c = h.Client(router.port)
    served = collections.Counter()  # batches that began and ended with b in shadow
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30 and rc.hgetall("sy:{chat}:state").get("v:b") == "shadow":
        batch = collections.Counter()
        for _ in range(20):
            r = c.request("POST", "/v1/chat/completions", {}, h.chat_body())
            check(r.status == 200, "chat: %s", r.status)
            batch[r.header("x-switchyard-variant")] += 1
        # The last batch may straddle the move to canary (the router can learn of it
        # before this loop looks): count only batches that ended with b still in shadow.
        if rc.hgetall("sy:{chat}:state").get("v:b") == "shadow":
            served.update(batch)
    c.close()
    st = rc.hgetall("sy:{chat}:state")
    check(st.get("v:b") == "canary" and st.get("step:b") == "0", "b after shadowing: %r", st)
    check(served.get("b", 0) == 0, "b served live traffic while in shadow: %r", dict(served))
    vb = rc.hgetall("sy:{chat}:v:b")
    check(float(vb.get("shadow_requests", 0)) >= 50, "shadow counters of b: %r", vb)
    ramp = [r for r in history(redis) if r["decision"] == "ramp" and r["variant"] == "b"]
    check(ramp and ramp[0]["reason"].startswith("shadow:") and
          ramp[0]["stats"]["shadow_requests"] >= 50, "the move out of shadow: %r", ramp)
    # Once canary, b is no longer mirrored (its shadow count stops growing).
    time.sleep(0.6)
    before = float(rc.hgetall("sy:{chat}:v:b").get("shadow_requests", 0))
    variants = collections.Counter()
    c = h.Client(router.port)
    for _ in range(100):
        variants[c.request("POST", "/v1/chat/completions", {}, h.chat_body())
                 .header("x-switchyard-variant")] += 1
    c.close()
    time.sleep(0.3)
    after = float(rc.hgetall("sy:{chat}:v:b").get("shadow_requests", 0))
    check(after == before, "b still mirrored in canary: %r -> %r", before, after)
    check(variants.get("b", 0) > 0, "b gets no live traffic in canary: %r", dict(variants))


@h.timeout(200)
def test_bandit_removes_the_worst_and_ends_with_a_winner(env):
    redis = h.redis_server(env)
    mocks = {v: env.mock("--outcome-rate", str(RATES[v]), name="mock_" + v) for v in RATES}
    cfg = config(env, redis, mocks, gate_extra={"mode": "bandit", "min_samples": 150})
    exp = cfg["experiments"][0]
    exp["policy"] = "thompson"
    exp["thompson"] = {"floor": 0.05}
    router = env.router(cfg)
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    check(h.wait_until(lambda: rc.hgetall("sy:{chat}:state").get("mode") == "bandit", 5),
          "no bandit state: %r", rc.hgetall("sy:{chat}:state"))
    st, counts = drive(router.port, rc, lambda s: s.get("status") == "concluded", budget_s=150)
    check(st.get("status") == "concluded" and st.get("winner") == "b",
          "the bandit did not end on b: %r after %r", st, dict(counts))
    rows = history(redis)
    kinds = [(r["decision"], r["variant"]) for r in rows]
    check(("promote", "b") in kinds, "no promotion in %r", kinds)
    removed = [r for r in rows if r["decision"] == "remove"]
    check(all(r["variant"] != "b" for r in removed), "the best arm was removed: %r", kinds)
    pr = next(r for r in rows if r["decision"] == "promote")
    # The promotion's numbers cover the arms still live then (others may be removed).
    others = [v for v in pr["stats"] if v != "b"]
    check(pr["reason"].startswith("bandit:") and others and
          all(pr["stats"]["b"]["mean"] > pr["stats"][v]["mean"] for v in others),
          "promotion without its numbers: %r", pr)
    for r in removed:
        check(r["reason"].startswith("bandit:") and r["variant"] in r["stats"],
              "a removal without its numbers: %r", r)


@h.timeout(200)
def test_bandit_removes_an_arm_breaching_a_guardrail(env):
    """b resolves the most but answers ~5x slower than the control: the latency guardrail
    removes it, and it is never promoted."""
    redis = h.redis_server(env)
    latency = {"a": 2, "b": 12, "c": 2}
    mocks = {v: env.mock("--outcome-rate", str(RATES[v]), "--latency-ms", str(latency[v]),
                         name="mock_" + v) for v in RATES}
    cfg = config(env, redis, mocks, gate_extra={
        "mode": "bandit", "min_samples": 150,
        "guardrails": {"latency_p95_ratio": 1.5, "error_rate_delta": 0.2, "tokens_ratio": 3}})
    exp = cfg["experiments"][0]
    exp["policy"] = "thompson"
    exp["thompson"] = {"floor": 0.1}
    router = env.router(cfg)
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    check(h.wait_until(lambda: rc.hgetall("sy:{chat}:state").get("mode") == "bandit", 5),
          "no bandit state: %r", rc.hgetall("sy:{chat}:state"))
    st, counts = drive(router.port, rc,
                       lambda s: s.get("status") == "concluded" or s.get("v:b") == "removed",
                       budget_s=150)
    rows = history(redis)
    kinds = [(r["decision"], r["variant"]) for r in rows]
    check(("promote", "b") not in kinds and st.get("winner") != "b",
          "the slow arm was promoted: %r, %r", kinds, st)
    gone = [r for r in rows if r["decision"] == "remove" and r["variant"] == "b"]
    check(gone and "guardrail:latency_p95" in gone[0]["reason"] and
          gone[0]["stats"]["b"]["latency_p95"]["breached"] is True,
          "b not removed by its latency guardrail: %r", kinds)
    # Not checked: that the bandit then concludes on a. It did in every run but one,
    # under ASan in CI, where b and c were removed and a was left live but undeclared
    # for the rest of the budget (an open question about the last arm, see the README).
    check(st.get("winner") in ("", None, "a"), "the bandit ended on %r: %r after %r",
          st.get("winner"), st, dict(counts))


if __name__ == "__main__":
    sys.exit(h.run(globals()))
