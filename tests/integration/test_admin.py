#!/usr/bin/env python3
"""test_admin.py — the admin API on its own listener: every endpoint refuses a missing
or wrong bearer token with 401 (and the token never reaches the logs); /metrics is
valid for `promtool check metrics` and counts what was served, summed over workers;
/readyz follows Redis and the spool; the experiment endpoints read what `status`
reads, and promote / rollback / pause / resume act like the CLI (same state, same
audit log) with clear errors for bad requests.
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SWITCHYARD = os.environ.get("SY_SWITCHYARD", "build/router/switchyard")
TOKEN = "test-admin-token-0123456789"
TOKEN_ENV = "SY_TEST_ADMIN_TOKEN"
os.environ[TOKEN_ENV] = TOKEN  # the routers this test starts inherit it


def experiment(gate=None, variants=("a", "b")):
    e = {"id": "chat", "match": {"method": "POST", "path_prefix": "/v1/chat/completions"},
         "policy": "split", "control": "a",
         "outcome": {"metric": "resolved", "type": "binary", "window": "1h"},
         "variants": [{"id": v, "upstream": "mock", "model": "model-" + v} for v in variants]}
    if gate is not None:
        e["gate"] = gate
    return e


def start(env, redis, mock, workers=1, exp=None):
    admin_port = h.free_port()
    cfg = h.router_config(mock.addr, experiments=[exp or experiment()],
                          data_dir=env.path("data"), redis={"url": redis.url},
                          events={"sync_ms": 200}, workers=workers,
                          admin={"listen": "127.0.0.1:%d" % admin_port, "token_env": TOKEN_ENV})
    r = env.router(cfg)
    r.admin_port = admin_port
    check(h.wait_until(lambda: h.port_accepts(admin_port), 5), "the admin port does not accept")
    return r


def admin(r, method, path, body=None, token=TOKEN, auth=None):
    """One request to the admin listener; (status, headers dict, body bytes)."""
    headers = {}
    if auth is not None:
        headers["authorization"] = auth
    elif token is not None:
        headers["authorization"] = "Bearer " + token
    c = h.Client(r.admin_port)
    try:
        resp = c.request(method, path, headers, body)
    finally:
        c.close()
    return resp


def admin_json(r, method, path, body=None, **kw):
    resp = admin(r, method, path, body, **kw)
    try:
        doc = json.loads(resp.body)
    except ValueError:
        raise h.Failure("%s %s: not JSON (%d): %r" % (method, path, resp.status, resp.body[:200]))
    return resp.status, doc


def send(port, n, headers=None):
    c = h.Client(port)
    seen = {}
    try:
        for _ in range(n):
            resp = c.request("POST", "/v1/chat/completions", headers or {}, h.chat_body())
            check(resp.status == 200, "status %s", resp.status)
            v = resp.header("x-switchyard-variant")
            seen[v] = seen.get(v, 0) + 1
    finally:
        c.close()
    return seen


def metric_value(text, name, **labels):
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all('%s="%s"' % (k, v) in head for k, v in labels.items()):
            total += float(value)
            found = True
    check(found, "no series %s%r in /metrics", name, labels)
    return total


@h.timeout(60)
def test_every_endpoint_needs_the_token(env):
    redis = h.redis_server(env)
    mock = env.mock()
    r = start(env, redis, mock)
    endpoints = [("GET", "/healthz", None), ("GET", "/readyz", None), ("GET", "/metrics", None),
                 ("GET", "/api/experiments", None), ("GET", "/api/experiments/chat", None),
                 ("POST", "/api/experiments/chat/pause", {"reason": "x"}),
                 ("POST", "/api/experiments/chat/promote", {"variant": "b"})]
    wrong = [dict(token=None), dict(token="wrong-token-0123456789"), dict(token=TOKEN[:-1]),
             dict(token=TOKEN + "x"), dict(auth="Basic " + TOKEN), dict(auth=TOKEN),
             dict(auth="Bearer")]
    for method, path, body in endpoints:
        for kw in wrong:
            resp = admin(r, method, path, body, **kw)
            check(resp.status == 401, "%s %s with %r: %d, not 401", method, path, kw, resp.status)
            doc = resp.json()
            check(doc["error"]["type"] == "unauthorized", "%s %s: body %r", method, path, doc)
            check((resp.header("www-authenticate") or "").startswith("Bearer"),
                  "no WWW-Authenticate: Bearer on a 401")
    # Nothing changed on the way: the experiment is still running.
    status, doc = admin_json(r, "GET", "/api/experiments/chat")
    check(status == 200 and doc["experiment"]["status"] == "running", "%d %r", status, doc)
    check(not [e for e in doc["audit"] if e.get("decision") in ("pause", "promote")],
          "an unauthorized call reached the audit log: %r", doc["audit"])
    # With the token: health, and the scheme's case does not matter.
    status, doc = admin_json(r, "GET", "/healthz", auth="bearer " + TOKEN)
    check(status == 200 and doc == {"status": "ok"}, "healthz %d %r", status, doc)
    # The dashboard page holds no data and needs no token.
    resp = admin(r, "GET", "/dashboard", token=None)
    check(resp.status == 200 and b"<html" in resp.body.lower(), "dashboard %d", resp.status)
    check("default-src 'none'" in (resp.header("content-security-policy") or ""),
          "the dashboard has no restrictive Content-Security-Policy")
    r.stop()
    check(TOKEN not in r.stderr_text(), "the admin token appears in the router's log")


@h.timeout(60)
def test_metrics_valid_and_summed_over_workers(env):
    promtool = shutil.which("promtool")
    check(promtool is not None, "promtool is not installed (Debian package prometheus; "
          "deploy/install-deps installs it)")
    redis = h.redis_server(env)
    mock = env.mock()
    r = start(env, redis, mock, workers=2)
    n = 0
    served = {}
    for _ in range(8):  # fresh connections, so both workers take some (SO_REUSEPORT)
        for v, k in send(r.port, 25).items():
            served[v] = served.get(v, 0) + k
            n += k
    time.sleep(0.3)
    resp = admin(r, "GET", "/metrics")
    check(resp.status == 200, "/metrics %d", resp.status)
    check((resp.header("content-type") or "").startswith("text/plain; version=0.0.4"),
          "content type %r", resp.header("content-type"))
    text = resp.body.decode()
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 0, "promtool check metrics failed: %s%s", p.stdout, p.stderr)
    # Whichever worker answered, the counters are the sum over both.
    for _ in range(4):
        t = admin(r, "GET", "/metrics").body.decode()
        total = metric_value(t, "switchyard_requests_total", experiment="chat", code="2xx")
        check(total == n, "requests_total 2xx = %r, sent %d (%r)", total, n, served)
        for v, k in served.items():
            got = metric_value(t, "switchyard_request_duration_seconds_count", experiment="chat",
                               variant=v)
            check(got == k, "duration count of %s: %r, served %d", v, got, k)
        check(metric_value(t, "switchyard_workers") == 2, "switchyard_workers != 2")
    check(metric_value(text, "switchyard_redis_up") == 1, "redis_up is not 1")
    share = metric_value(text, "switchyard_variant_share", experiment="chat", variant="a")
    check(abs(share - 0.5) < 1e-9, "share of a %r, not 0.5", share)
    check(metric_value(text, "switchyard_experiment_status", experiment="chat",
                       status="running") == 1, "status running is not 1")
    # Both variants have their series even before any request of theirs (b here may
    # have some; a third variant would too): zeros are there for the 5xx class.
    check(metric_value(text, "switchyard_requests_total", experiment="chat", code="5xx") == 0,
          "5xx responses counted where none were served")
    r.stop()


@h.timeout(60)
def test_counters_survive_a_worker_restart(env):
    """A worker killed and restarted by the master keeps its slot's counters: the
    summed counters never go down (Prometheus would read a drop as a reset to zero)."""
    import signal
    redis = h.redis_server(env)
    mock = env.mock()
    r = start(env, redis, mock, workers=2)
    n = 0
    for _ in range(6):
        n += sum(send(r.port, 10).values())
    # An exchange is counted once its last write to the client completed, which may
    # be a moment after the client read the answer: wait for the count, briefly.
    def counted():
        text = admin(r, "GET", "/metrics").body.decode()
        v = metric_value(text, "switchyard_requests_total", experiment="chat", code="2xx")
        return v if v == n else None
    before = h.wait_until(counted, 2)
    check(before == n, "requests_total %r, sent %d", before, n)
    kids = [int(x) for x in os.popen("pgrep -P %d" % r.pid).read().split()]
    workers = [k for k in kids if "serve" in open("/proc/%d/cmdline" % k).read()]
    check(len(workers) >= 2, "worker pids %r", kids)
    os.kill(workers[0], signal.SIGKILL)
    check(r.wait_log("worker %d died" % workers[0], timeout_s=5), "no restart logged")

    def restarted():
        t = admin(r, "GET", "/metrics").body.decode()
        return metric_value(t, "switchyard_workers") == 2 and t
    t = h.wait_until(restarted, 5)
    check(t, "the killed worker was not replaced")
    for _ in range(5):
        t = admin(r, "GET", "/metrics").body.decode()
        got = metric_value(t, "switchyard_requests_total", experiment="chat", code="2xx")
        check(got == n, "requests_total went from %r to %r after a worker restart", before, got)
    n += sum(send(r.port, 10).values())
    t = admin(r, "GET", "/metrics").body.decode()
    check(metric_value(t, "switchyard_requests_total", experiment="chat", code="2xx") == n,
          "after more traffic")
    r.stop()


@h.timeout(60)
def test_readyz_follows_redis_and_the_spool(env):
    redis = h.redis_server(env)
    mock = env.mock()
    r = start(env, redis, mock)
    check(h.wait_until(lambda: admin_json(r, "GET", "/readyz")[1].get("redis") == "up", 5),
          "redis never up in /readyz")
    status, doc = admin_json(r, "GET", "/readyz")
    check(status == 200 and doc["ready"] is True and doc["spool"] == "writable", "%d %r", status,
          doc)
    redis.stop()
    check(h.wait_until(lambda: admin_json(r, "GET", "/readyz")[1].get("redis") == "down", 5),
          "redis still 'up' in /readyz after it stopped")
    # Redis is away but events go to the spool: still ready, and serving.
    status, doc = admin_json(r, "GET", "/readyz")
    check(status == 200 and doc["ready"] is True and doc["spool"] == "writable", "%d %r", status,
          doc)
    send(r.port, 5)
    # The experiment endpoints need Redis: 503 with a JSON reason, quickly.
    t0 = time.monotonic()
    status, doc = admin_json(r, "GET", "/api/experiments")
    check(status == 503 and doc["error"]["type"] == "redis_unavailable", "%d %r", status, doc)
    check(time.monotonic() - t0 < 5, "the API took %.1f s to say Redis is away",
          time.monotonic() - t0)
    t = admin(r, "GET", "/metrics").body.decode()
    check(metric_value(t, "switchyard_redis_up") == 0, "redis_up is not 0 with Redis stopped")
    r.stop()


@h.timeout(90)
def test_experiment_endpoints_act_like_the_cli(env):
    redis = h.redis_server(env)
    mock = env.mock()
    r = start(env, redis, mock, exp=experiment(variants=("a", "b", "c")))
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    send(r.port, 30)
    def served():
        doc = admin_json(r, "GET", "/api/experiments")[1]
        return sum(v["requests"] for e in doc["experiments"] for v in e["variants"]) == 30
    check(h.wait_until(served, 5), "the 30 requests never showed in /api/experiments")
    status, doc = admin_json(r, "GET", "/api/experiments")
    check(status == 200, "list %d %r", status, doc)
    check(doc["router"]["redis"] == "up" and doc["router"]["instance"], "router %r",
          doc["router"])
    exps = {e["id"]: e for e in doc["experiments"]}
    check(set(exps) == {"chat"}, "experiments %r", list(exps))
    variants = {v["id"]: v for v in exps["chat"]["variants"]}
    check(set(variants) == {"a", "b", "c"}, "variants %r", list(variants))
    check(sum(v["requests"] for v in variants.values()) == 30, "requests %r",
          {k: v["requests"] for k, v in variants.items()})
    check(variants["a"]["guardrails"] is None and variants["b"]["guardrails"] is not None,
          "guardrails: control %r, candidate %r", variants["a"]["guardrails"],
          variants["b"]["guardrails"])
    # The same numbers as `switchyard status --json`.
    p = subprocess.run([SWITCHYARD, "status", "chat", "--json", "--redis", redis.url],
                       capture_output=True, text=True, timeout=20)
    check(p.returncode == 0, "status: %s", p.stderr)
    cli = {v["id"]: v["requests"] for v in json.loads(p.stdout)["experiments"][0]["variants"]}
    check(cli == {k: v["requests"] for k, v in variants.items()}, "CLI %r vs API %r", cli,
          {k: v["requests"] for k, v in variants.items()})

    # Bad requests: clear errors, nothing changed.
    cases = [
        ("POST", "/api/experiments/chat/promote", {}, 400),
        ("POST", "/api/experiments/chat/promote", {"variant": "zz"}, 404),
        ("POST", "/api/experiments/chat/rollback", {"variant": "a"}, 409),
        ("POST", "/api/experiments/chat/pause", {"variant": "b"}, 400),
        ("POST", "/api/experiments/chat/pause", {"reason": 7}, 400),
        ("POST", "/api/experiments/chat/pause", {"colour": "red"}, 400),
        ("POST", "/api/experiments/chat/pause", b"[1,2", 400),
        ("POST", "/api/experiments/chat/explode", {}, 404),
        ("GET", "/api/experiments/chat/pause", None, 405),
        ("DELETE", "/api/experiments/chat", None, 405),
        ("GET", "/api/experiments/nope", None, 404),
        ("POST", "/api/experiments/nope/pause", {}, 404),
        ("GET", "/api/experiments/bad%20id", None, 400),
        ("GET", "/nowhere", None, 404),
    ]
    for method, path, body, want in cases:
        raw = body if isinstance(body, bytes) else (json.dumps(body).encode()
                                                    if body is not None else None)
        resp = admin(r, method, path, raw)
        check(resp.status == want, "%s %s %r: %d, want %d (%r)", method, path, body, resp.status,
              want, resp.body[:200])
        doc = resp.json()
        check(doc["error"]["message"], "%s %s: no error message", method, path)
    check(rc.hgetall("sy:{chat}:state").get("status") == "running", "a refused call changed "
          "the state: %r", rc.hgetall("sy:{chat}:state"))

    # pause: everything to the control within 1 s, audited as the admin API's.
    status, doc = admin_json(r, "POST", "/api/experiments/chat/pause",
                             json.dumps({"reason": "incident 42", "by": "alice"}).encode())
    check(status == 200 and doc["result"] == "done" and doc["state_version"] >= 2, "%d %r",
          status, doc)
    t0 = time.monotonic()
    check(h.wait_until(lambda: set(send(r.port, 10)) == {"a"}, 1.5, interval=0.05),
          "still not only the control %.1f s after pause: %r", time.monotonic() - t0,
          send(r.port, 30))
    status, doc = admin_json(r, "POST", "/api/experiments/chat/pause", b"")
    check(status == 200 and doc["result"] == "noop", "second pause: %d %r", status, doc)
    status, doc = admin_json(r, "POST", "/api/experiments/chat/resume", b'{"reason":"fixed"}')
    check(status == 200 and doc["result"] == "done", "resume %d %r", status, doc)
    status, doc = admin_json(r, "POST", "/api/experiments/chat/rollback",
                             b'{"variant":"c","reason":"worse"}')
    check(status == 200 and doc["result"] == "done", "rollback %d %r", status, doc)
    check(h.wait_until(lambda: "c" not in send(r.port, 30), 1.5, interval=0.05),
          "c still served after its roll back")
    status, doc = admin_json(r, "POST", "/api/experiments/chat/promote",
                             b'{"variant":"b","reason":"better"}')
    check(status == 200 and doc["result"] == "done", "promote %d %r", status, doc)
    check(h.wait_until(lambda: set(send(r.port, 10)) == {"b"}, 1.5, interval=0.05),
          "not only b after promote: %r", send(r.port, 30))

    # The audit log, from the API and from the CLI: the same entries, who and why.
    status, doc = admin_json(r, "GET", "/api/experiments/chat")
    check(status == 200 and doc["experiment"]["status"] == "concluded" and
          doc["experiment"]["winner"] == "b", "after promote: %r", doc["experiment"])
    ops = [(e["decision"], e.get("variant", ""), e["by"], e["reason"]) for e in doc["audit"]
           if e["by"].startswith("admin:")]
    check([o[0] for o in ops] == ["pause", "resume", "rollback", "promote"], "audit %r", ops)
    check(ops[0][2] == "admin:alice@127.0.0.1" and ops[0][3] == "incident 42", "pause entry %r",
          ops[0])
    check(ops[1][2] == "admin:api@127.0.0.1", "resume entry by %r", ops[1][2])
    p = subprocess.run([SWITCHYARD, "history", "chat", "--json", "--redis", redis.url],
                       capture_output=True, text=True, timeout=20)
    check(p.returncode == 0, "history: %s", p.stderr)
    hist = [json.loads(line) for line in p.stdout.splitlines()]
    check([(e["decision"], e["by"]) for e in hist if e["by"].startswith("admin:")] ==
          [(o[0], o[2]) for o in ops], "CLI history %r vs API %r", hist, ops)
    check("admin: promote chat b by admin:api@127.0.0.1: 200" in r.stderr_text(),
          "the promote is not in the router's log")
    r.stop()


@h.timeout(90)
def test_concurrent_changes_keep_the_state_whole(env):
    """Several admin clients change experiments at once (the changes are built on the
    thread pool, up to 4 at a time): every call is answered done or noop, and the state
    hashes hold only the fields the control script writes."""
    import threading
    redis = h.redis_server(env)
    mock = env.mock()
    exps = []
    for k in range(4):
        e = experiment()
        e["id"] = "e%d" % k
        e["match"] = {"method": "POST", "path_prefix": "/v%d/" % k}
        exps.append(e)
    admin_port = h.free_port()
    cfg = h.router_config(mock.addr, experiments=exps, data_dir=env.path("data"),
                          redis={"url": redis.url}, events={"sync_ms": 200},
                          admin={"listen": "127.0.0.1:%d" % admin_port, "token_env": TOKEN_ENV})
    r = env.router(cfg)
    r.admin_port = admin_port
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    check(h.wait_until(lambda: all(rc.hgetall("sy:{e%d}:state" % k).get("version")
                                   for k in range(4)), 5), "no state for the experiments")
    bad, done = [], [0]
    lock = threading.Lock()

    def client(k):
        deadline = time.monotonic() + 6
        i = 0
        while time.monotonic() < deadline:
            cmd = ("pause", "resume")[i % 2]
            i += 1
            resp = admin(r, "POST", "/api/experiments/e%d/%s" % ((k + i) % 4, cmd), b"{}")
            with lock:
                if resp.status == 200:
                    done[0] += 1
                elif resp.status != 503 or b"busy" not in resp.body:
                    bad.append((resp.status, resp.body[:200]))
    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not bad, "%d calls failed: %r", len(bad), bad[:3])
    check(done[0] > 50, "only %d calls answered", done[0])
    allowed = {"version", "mode", "status", "paused_from", "winner", "changed_ms", "srm_version"}
    for k in range(4):
        st = rc.hgetall("sy:{e%d}:state" % k)
        odd = [f for f in st if f not in allowed and not f.split(":")[0] in
               ("v", "step", "since", "req0", "base")]
        check(not odd, "e%d's state has fields no script writes: %r", k, odd)
    r.stop()


@h.timeout(60)
def test_admin_port_cannot_be_held_by_idle_connections(env):
    """Connections that send nothing (no token needed for that) fill the admin
    listener: an operator's request still gets through, the oldest idle ones make
    room. Two Authorization headers are refused."""
    import socket
    redis = h.redis_server(env)
    mock = env.mock()
    r = start(env, redis, mock)
    idle = [socket.create_connection(("127.0.0.1", r.admin_port)) for _ in range(100)]
    try:
        time.sleep(0.2)
        for _ in range(3):
            status, doc = admin_json(r, "GET", "/healthz")
            check(status == 200, "healthz with 100 idle connections open: %d %r", status, doc)
    finally:
        for s in idle:
            s.close()
    resp = admin(r, "GET", "/healthz", token=None, auth=None)
    c = h.Client(r.admin_port)
    try:
        resp = c.request("GET", "/healthz", [("Authorization", "Bearer " + TOKEN),
                                             ("Authorization", "Bearer " + TOKEN)])
    finally:
        c.close()
    check(resp.status == 400, "two Authorization headers: %d", resp.status)
    r.stop()


@h.timeout(60)
def test_redis_error_is_not_not_found(env):
    """A Redis error reply (a key of the wrong type) is a 503 naming it, not a 404 and
    not an experiment silently missing from the list."""
    redis = h.redis_server(env)
    mock = env.mock()
    r = start(env, redis, mock)
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    send(r.port, 5)
    check(h.wait_until(lambda: admin_json(r, "GET", "/api/experiments")[1]["experiments"], 5),
          "not listed")
    rc.command("DEL", "sy:{chat}:v:a")
    rc.command("SET", "sy:{chat}:v:a", "not a hash")
    status, doc = admin_json(r, "GET", "/api/experiments")
    check(status == 503 and "WRONGTYPE" in doc["error"]["message"], "list: %d %r", status, doc)
    status, doc = admin_json(r, "GET", "/api/experiments/chat")
    check(status == 503 and "WRONGTYPE" in doc["error"]["message"], "get: %d %r", status, doc)
    status, doc = admin_json(r, "GET", "/api/experiments/nope")
    check(status == 404, "unknown: %d %r", status, doc)
    r.stop()


if __name__ == "__main__":
    sys.exit(h.run(globals()))
