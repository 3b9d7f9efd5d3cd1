#!/usr/bin/env python3
"""test_versions.py — the version registry: every config a router loads is recorded in
Redis (sy:{E}:versions) under the hash events carry as config_hash, with each variant
version and the time range it served; `switchyard versions EXP` lists them, oldest
first; a reload with a new variant version starts a new entry and freezes the old one.
"""
import hashlib
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SWITCHYARD = os.environ.get("SY_SWITCHYARD", "build/router/switchyard")


def cli(*args):
    p = subprocess.run([SWITCHYARD] + list(args), capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout, p.stderr


def config_hash(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def registry(rc):
    """{(config, variant, version): (first_ms, last_ms)} read straight from Redis."""
    out = {}
    for field, value in rc.hgetall("sy:{chat}:versions").items():
        c, v, ver = field.split("|")
        first, last = value.split("|")
        out[(c, v, ver)] = (int(first), int(last))
    return out


def served(port, n):
    for i in range(n):
        r = h.post_chat(port, {"x-user-id": "u%d" % i})
        check(r.status == 200, "status %s: %r", r.status, r.body[:200])


@h.timeout(90)
def test_registry_follows_reloads(env):
    redis = h.redis_server(env)
    mock = env.mock()
    cfg = h.router_config(mock.addr, data_dir=env.path("data"), redis={"url": redis.url},
                          events={"sync_ms": 200})
    cfg["experiments"][0]["variants"][1]["version"] = "b-1"
    router = env.router(cfg)
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    t_start = int(time.time() * 1000)
    served(router.port, 20)
    h1 = config_hash(router.config_path)
    want1 = {(h1, "a", "1"), (h1, "b", "b-1")}
    check(h.wait_until(lambda: want1 <= set(registry(rc)), 5),
          "registry after start: %r (want %r)", registry(rc), want1)

    # Request events name the config through their ref.
    check(h.wait_until(lambda: len([e for _, e in rc.stream()
                                    if e.get("event_type") == "request"]) >= 20, 5),
          "request events missing: %d", len(rc.stream()))
    reqs = [e for _, e in rc.stream() if e.get("event_type") == "request"]
    check(all(e.get("config_hash") == h1 for e in reqs), "config_hash of request events: %r",
          sorted({e.get("config_hash") for e in reqs}))

    # A new variant version: SIGHUP. The old entries stop advancing, new ones start.
    cfg["experiments"][0]["variants"][1]["version"] = "b-2"
    router.write_config(cfg)
    router.signal(h.signal.SIGHUP)
    router.wait_log("config reloaded")
    t_reload = int(time.time() * 1000)
    served(router.port, 20)
    h2 = config_hash(router.config_path)
    check(h2 != h1, "the config's hash did not change")
    want2 = {(h2, "a", "1"), (h2, "b", "b-2")}
    check(h.wait_until(lambda: want2 <= set(registry(rc)), 5),
          "registry after reload: %r (want %r)", registry(rc), want2)
    time.sleep(0.6)  # three syncs
    before = registry(rc)
    time.sleep(0.6)
    after = registry(rc)
    for k in want1:
        first, last = after[k]
        check(t_start - 1000 <= first <= last <= t_reload + 1000,
              "old entry %r: %r (start %d, reload %d)", k, after[k], t_start, t_reload)
        check(after[k] == before[k], "old entry %r still advancing: %r -> %r", k, before[k],
              after[k])
    for k in want2:
        check(after[k][0] >= t_reload - 1000 and after[k][1] > before[k][1],
              "new entry %r: %r -> %r (reload at %d)", k, before[k], after[k], t_reload)
    reqs = [e for _, e in rc.stream() if e.get("event_type") == "request"]
    check({e.get("config_hash") for e in reqs} == {h1, h2}, "config hashes in the stream: %r",
          sorted({e.get("config_hash") for e in reqs}))
    b2 = [e for e in reqs if e.get("variant") == "b" and e.get("variant_version") == "b-2"]
    check(b2 and all(e["config_hash"] == h2 for e in b2), "b-2 events under %r",
          sorted({e.get("config_hash") for e in b2}))

    # The command: a table, oldest first, and JSON lines.
    code, out, err = cli("versions", "chat", "--redis", redis.url)
    check(code == 0, "versions: %d %r", code, err)
    lines = out.splitlines()
    check(lines[0].split()[:3] == ["CONFIG", "VARIANT", "VERSION"], "header %r", lines[0])
    rows = [l.split() for l in lines[1:]]
    check(len(rows) == 4, "versions rows: %r", rows)
    check([r[0] for r in rows[:2]] == [h1, h1] and [r[0] for r in rows[2:]] == [h2, h2],
          "not oldest first: %r", rows)
    check(sorted((r[1], r[2]) for r in rows[2:]) == [("a", "1"), ("b", "b-2")], "rows %r", rows)
    code, out, err = cli("versions", "chat", "--json", "--redis", redis.url)
    check(code == 0, "versions --json: %d %r", code, err)
    objs = [json.loads(l) for l in out.splitlines()]
    got = {(o["config_hash"], o["variant"], o["variant_version"]): (o["first_ms"], o["last_ms"])
           for o in objs}
    check(set(got) == want1 | want2, "json entries %r", got)
    check(all(got[k][0] == after[k][0] for k in got), "json first_ms %r vs %r", got, after)
    router.stop()


@h.timeout(30)
def test_versions_errors(env):
    redis = h.redis_server(env)
    code, out, err = cli("versions", "nosuch", "--redis", redis.url)
    check(code == 1 and "no versions recorded for experiment 'nosuch'" in err,
          "unknown experiment: %d %r %r", code, out, err)
    code, out, err = cli("versions", "--redis", redis.url)
    check(code == 2 and "name the experiment" in err, "no experiment: %d %r", code, err)
    code, out, err = cli("versions", "chat", "--redis", redis.url, "--config", "x.yaml")
    check(code == 2 and "not both" in err, "both --redis and --config: %d %r", code, err)
    code, out, err = cli("versions", "chat", "--bogus")
    check(code == 2 and "unexpected argument '--bogus'" in err, "bad flag: %d %r", code, err)
    code, out, err = cli("versions", "chat", "--redis", "redis://127.0.0.1:%d" % h.free_port())
    check(code == 1 and "versions:" in err, "Redis down: %d %r", code, err)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
