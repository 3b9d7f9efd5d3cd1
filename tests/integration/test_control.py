#!/usr/bin/env python3
"""test_control.py — operator commands act on the whole fleet through Redis: promote,
rollback, pause and resume take effect on two running routers within 1 s; a restarting
router reads the state at start; history shows who did what and why; the commands'
errors and exit codes; the decider's lease is held by one router at a time.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SWITCHYARD = os.environ.get("SY_SWITCHYARD", "build/router/switchyard")


def experiment(gate=None, variants=("a", "b", "c")):
    e = {"id": "chat", "match": {"method": "POST", "path_prefix": "/v1/chat/completions"},
         "policy": "split", "control": "a",
         "variants": [{"id": v, "upstream": "mock", "model": "model-" + v} for v in variants]}
    if gate is not None:
        e["gate"] = gate
    return e


def cli(*args, env_extra=None):
    e = dict(os.environ)
    e.update(env_extra or {})
    p = subprocess.run([SWITCHYARD] + list(args), capture_output=True, text=True, timeout=20,
                       env=e)
    return p.returncode, p.stdout, p.stderr


def variants_served(port, n=60):
    """The variants that served n requests on a fresh connection (counts)."""
    counts = {}
    c = h.Client(port)
    try:
        for _ in range(n):
            r = c.request("POST", "/v1/chat/completions", {}, h.chat_body())
            check(r.status == 200, "status %s: %r", r.status, r.body[:200])
            v = r.header("x-switchyard-variant")
            counts[v] = counts.get(v, 0) + 1
    finally:
        c.close()
    return counts


def only(port, variant, n=30):
    c = variants_served(port, n)
    return c if set(c) == {variant} else None


def wait_all(routers, variant, within_s):
    """Waits until every router serves only `variant`; returns the seconds it took."""
    t0 = time.monotonic()
    for r in routers:
        ok = h.wait_until(lambda: only(r.port, variant, 10), within_s, interval=0.05)
        check(ok, "%s still serves %r, not only %s, after %.1f s", r.name,
              variants_served(r.port, 30), variant, time.monotonic() - t0)
    return time.monotonic() - t0


def two_routers(env, redis, mock, exp):
    cfgs = []
    for i in (1, 2):
        cfgs.append(h.router_config(mock.addr, experiments=[exp], data_dir=env.path("data%d" % i),
                                    redis={"url": redis.url}, events={"sync_ms": 200}))
    r1 = env.router(cfgs[0], name="router1")
    r2 = env.router(cfgs[1], name="router2")
    r1.cfg, r2.cfg = cfgs
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    check(h.wait_until(lambda: rc.hgetall("sy:{chat}:state").get("version")
                       and rc.hgetall("sy:{chat}:meta"), 5), "no control state or meta in Redis")
    return r1, r2, rc


@h.timeout(120)
def test_operator_commands_reach_every_router(env):
    redis = h.redis_server(env)
    mock = env.mock()
    r1, r2, rc = two_routers(env, redis, mock, experiment())
    url = ["--redis", redis.url]

    # A plain split first: all three variants serve.
    for r in (r1, r2):
        c = variants_served(r.port, 90)
        check(set(c) == {"a", "b", "c"}, "%s before any command: %r", r.name, c)

    code, out, err = cli("pause", "chat", "--reason", "incident 42", *url)
    check(code == 0 and "done" in out, "pause: %d %r %r", code, out, err)
    took = wait_all((r1, r2), "a", 1.0)
    check(took < 1.0, "pause took %.2f s", took)
    check(rc.hgetall("sy:{chat}:state")["status"] == "paused", "state %r",
          rc.hgetall("sy:{chat}:state"))

    code, out, err = cli("pause", "chat", *url)
    check(code == 0 and "already paused" in out, "second pause: %d %r %r", code, out, err)

    code, out, err = cli("resume", "chat", "--reason", "fixed", *url)
    check(code == 0, "resume: %d %r %r", code, out, err)
    check(h.wait_until(lambda: len(variants_served(r1.port, 90)) == 3
                       and len(variants_served(r2.port, 90)) == 3, 1.5),
          "after resume the split is not back on both routers")

    code, out, err = cli("promote", "chat", "b", "--reason", "better resolution", *url)
    check(code == 0, "promote: %d %r %r", code, out, err)
    took = wait_all((r1, r2), "b", 1.0)
    check(took < 1.0, "promote took %.2f s", took)
    st = rc.hgetall("sy:{chat}:state")
    check(st["status"] == "concluded" and st["winner"] == "b" and st["v:b"] == "promoted",
          "state after promote %r", st)

    # A router that starts now reads the state as soon as its Redis link is up.
    r2.stop()
    r3 = env.router(dict(r2.cfg, listen=["127.0.0.1:%d" % h.free_port()]), name="router3")
    took = wait_all((r3,), "b", 1.0)
    check(took < 1.0, "a restarted router took %.2f s to apply the state", took)

    # Rolling back the winner: everything to the control.
    code, out, err = cli("rollback", "chat", "b", "--reason", "complaints", *url)
    check(code == 0, "rollback b: %d %r %r", code, out, err)
    wait_all((r1, r3), "a", 1.0)
    st = rc.hgetall("sy:{chat}:state")
    check(st["v:b"] == "rolled_back" and st["winner"] == "" and st["status"] == "concluded",
          "state after rollback %r", st)

    code, out, err = cli("resume", "chat", *url)
    check(code == 3 and "concluded" in err, "resume of a concluded experiment: %d %r %r", code,
          out, err)

    # The audit log, in order, with who and why; decision events in the stream too.
    code, out, err = cli("history", "chat", "--json", *url)
    check(code == 0, "history: %d %r", code, err)
    rows = [json.loads(line) for line in out.splitlines()]
    decisions = [(r["decision"], r["variant"], r["reason"]) for r in rows]
    want = [("start", "a,b,c", "first router serving the experiment"),
            ("pause", "", "incident 42"),
            ("resume", "", "fixed"), ("promote", "b", "better resolution"),
            ("rollback", "b", "complaints")]
    check(decisions == want, "history %r", decisions)
    check(all(r["by"].startswith("operator:") for r in rows[1:]), "who: %r",
          [r["by"] for r in rows])
    check(rows[0]["by"].count(":") >= 1, "start by a router: %r", rows[0]["by"])
    versions = [int(r["version"]) for r in rows]
    check(versions == sorted(versions) and len(set(versions)) == len(versions), "versions %r",
          versions)
    events = [f for _, f in rc.stream() if f.get("event_type") == "decision"]
    check([(e["decision"], e["variant"]) for e in events]
          == [("pause", ""), ("resume", ""), ("promote", "b"), ("rollback", "b")],
          "decision events %r", [(e.get("decision"), e.get("variant")) for e in events])
    check(all(e["decision_reason"] and e["decided_by"].startswith("operator:") and
              e["schema_version"] == "5" for e in events), "decision event fields %r", events[-1])
    code, out, err = cli("history", "chat", *url)
    check(code == 0 and "why: complaints" in out and "promote" in out, "history text %r", out)


@h.timeout(60)
def test_rollback_one_candidate_keeps_the_others(env):
    redis = h.redis_server(env)
    mock = env.mock()
    r1, r2, rc = two_routers(env, redis, mock, experiment())
    code, out, err = cli("rollback", "chat", "c", "--redis", redis.url)
    check(code == 0, "rollback c: %d %r %r", code, out, err)

    def no_c():
        a, b = variants_served(r1.port, 90), variants_served(r2.port, 90)
        return set(a) == {"a", "b"} and set(b) == {"a", "b"}
    check(h.wait_until(no_c, 1.0, interval=0.05), "c still served: %r / %r",
          variants_served(r1.port, 90), variants_served(r2.port, 90))
    st = rc.hgetall("sy:{chat}:state")
    check(st["status"] == "running" and st["v:c"] == "rolled_back", "state %r", st)
    # Rolling back every candidate ends the experiment on the control.
    code, out, err = cli("rollback", "chat", "--reason", "all out", "--redis", redis.url)
    check(code == 0, "rollback all: %d %r", code, err)
    wait_all((r1, r2), "a", 1.0)


@h.timeout(60)
def test_command_errors(env):
    redis = h.redis_server(env)
    mock = env.mock()
    r1, r2, rc = two_routers(env, redis, mock, experiment())
    url = ["--redis", redis.url]
    cases = [
        (("promote", "nope", "b", *url), 3, "unknown experiment 'nope'"),
        (("promote", "chat", "zz", *url), 3, "no variant 'zz'"),
        (("rollback", "chat", "a", *url), 3, "is the control"),
        (("promote", "chat", *url), 2, "name the variant"),
        (("pause", *url), 2, "name the experiment"),
        (("pause", "chat", "b", *url), 2, "unexpected argument"),
        (("history", "chat", "--limit", "0", *url), 2, "--limit"),
        (("pause", "chat", "--redis", "unix://" + env.path("nothing.sock")), 1,
         "cannot connect to Redis"),
        (("pause", "chat", "--redis", "redis://user:s3cret@[bad"), 1, "bad Redis URL"),
        (("pause", "chat", "--config", "/nonexistent.yaml"), 1, "nonexistent"),
    ]
    for args, want_code, want_text in cases:
        code, out, err = cli(*args, env_extra={"SWITCHYARD_REDIS_URL": ""})
        check(code == want_code and want_text in err, "%r: exit %d (wanted %d), stderr %r", args,
              code, want_code, err)
        check("s3cret" not in err and "s3cret" not in out, "a password was printed: %r", err)
    code, out, err = cli("promote", "--help")
    check(code == 0 and "examples:" in out and "exit status" in out, "promote --help: %r", out)
    # Nothing above changed the state.
    check(rc.hgetall("sy:{chat}:state")["status"] == "running", "state changed: %r",
          rc.hgetall("sy:{chat}:state"))


@h.timeout(60)
def test_one_decider_holds_the_lease(env):
    redis = h.redis_server(env)
    mock = env.mock()
    gate = {"mode": "canary", "interval": "200ms", "ramp": [10, 50], "step_min": "1h"}
    r1, r2, rc = two_routers(env, redis, mock, experiment(gate=gate, variants=("a", "b")))
    check(h.wait_until(lambda: rc.command("GET", "sy:{chat}:gate:lease"), 3), "no lease taken")
    holder = rc.command("GET", "sy:{chat}:gate:lease")
    ttl = rc.command("PTTL", "sy:{chat}:gate:lease")
    check(0 < ttl <= 600, "lease TTL %r ms (3 x interval)", ttl)
    time.sleep(1.0)
    check(rc.command("GET", "sy:{chat}:gate:lease") == holder, "the lease moved while its holder "
          "lives: %r -> %r", holder, rc.command("GET", "sy:{chat}:gate:lease"))
    # The canary's first step: b gets 10% on both routers (the state says canary 0).
    st = rc.hgetall("sy:{chat}:state")
    check(st["v:b"] == "canary" and st["step:b"] == "0" and st["mode"] == "canary", "state %r", st)
    for r in (r1, r2):
        c = variants_served(r.port, 400)
        check(10 <= c.get("b", 0) <= 75, "%s: b's share at step 0 (10%%) over 400: %r", r.name, c)
    # The holder dies: another router takes over once the lease expires.
    for r in (r1, r2):
        r.stop()
    r3 = env.router(dict(r1.cfg, listen=["127.0.0.1:%d" % h.free_port()]), name="router3")
    check(h.wait_until(lambda: rc.command("GET", "sy:{chat}:gate:lease") not in (None, holder),
                       3), "no new lease holder after the old ones stopped")
    r3.stop()


if __name__ == "__main__":
    sys.exit(h.run(globals()))
