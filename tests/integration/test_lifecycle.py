#!/usr/bin/env python3
"""test_lifecycle.py — switchyard's process lifecycle: SIGHUP reload under traffic (no
failed request, open streams finish intact on the old config, new requests see the new
one), a bad config on SIGHUP rejected with a logged error while the old one keeps
serving, SIGTERM drain (in-flight requests finish, new connections are refused, exit 0)
and its deadline, `workers: 2` (two listening worker processes, reload and stop through
the master, a killed worker restarted), and `switchyard check-config` exit codes and
FILE:LINE: KEY messages.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

OLD_MODELS = ("model-a", "model-b")
NEW_MODELS = ("model-a2", "model-b2")


def config(mock, port=None, models=OLD_MODELS, **extra):
    cfg = h.router_config(mock.addr, port=port, **extra)
    cfg["experiments"] = [h.chat_experiment(*models)]
    return cfg


class Traffic:
    """Client threads sending requests until stopped; every outcome is recorded as
    (start, end, status, model, error)."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.records = []
        self.streams = []
        self.threads = []

    def _record(self, rec):
        with self.lock:
            self.records.append(rec)

    def json_loop(self, tid):
        c, n = None, 0
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                if c is None or n % 15 == 0:  # now and then a fresh connection
                    if c is not None:
                        c.close()
                    c = h.Client(self.port, timeout_s=5)
                r = c.request("POST", "/v1/chat/completions",
                              {"x-user-id": "t%d-%d" % (tid, n)}, h.chat_body())
                model = r.json().get("model") if r.status == 200 else None
                self._record((t0, time.monotonic(), r.status, model, None))
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                self._record((t0, time.monotonic(), None, None, repr(e)))
                if c is not None:
                    c.close()
                c = None
            n += 1
        if c is not None:
            c.close()

    def stream_once(self, chunks, interval_ms):
        t0 = time.monotonic()
        try:
            c = h.Client(self.port, timeout_s=10)
            r = c.request("POST", "/v1/chat/completions",
                          {"x-mock-chunks": str(chunks), "x-mock-interval-ms": str(interval_ms),
                           "x-user-id": "streamer-%f" % t0}, h.chat_body(stream=True),
                          allow_abort=True)
            c.close()
            out = (t0, time.monotonic(), r, None)
        except Exception as e:  # noqa: BLE001
            out = (t0, time.monotonic(), None, repr(e))
        with self.lock:
            self.streams.append(out)

    def spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(15)
        check(not any(t.is_alive() for t in self.threads), "client threads hung")


def stream_models(r, chunks):
    """The set of models in a complete stream's events (checks it is intact)."""
    check(r.status == 200 and r.complete, "stream status %s complete %s", r.status, r.complete)
    ev = r.sse_events()
    check(len(ev) == chunks + 2 and ev[-1] == "[DONE]", "stream events: %d, last %r",
          len(ev), ev[-1:])
    for i in range(chunks):
        check(json.loads(ev[i])["choices"][0]["delta"]["content"] == "tok%d " % i,
              "event %d: %r", i, ev[i])
    return {json.loads(e)["model"] for e in ev[:-1]}


@h.timeout(45)
def test_sighup_reload_under_traffic(env):
    mock = env.mock()
    router = env.router(config(mock))
    traffic = Traffic(router.port)
    for i in range(2):
        traffic.spawn(traffic.stream_once, 20, 100)  # ~2 s each, across the reload
    check(h.wait_until(lambda: mock.stats()["streams"] >= 2, 3), "streams did not start")
    for i in range(3):
        traffic.spawn(traffic.json_loop, i)
    time.sleep(0.5)
    router.write_config(config(mock, port=router.port, models=NEW_MODELS))
    t_hup = time.monotonic()
    router.signal(signal.SIGHUP)
    router.wait_log(r"^config reloaded")
    t_reloaded = time.monotonic()
    time.sleep(1.0)
    traffic.spawn(traffic.stream_once, 3, 20)  # a stream that starts after the reload
    time.sleep(0.3)
    traffic.finish()

    recs = traffic.records
    failed = [r for r in recs if r[4] is not None or r[2] != 200]
    check(not failed, "%d of %d requests failed across the reload, e.g. %r", len(failed),
          len(recs), failed[:3])
    before = [r for r in recs if r[1] < t_hup]
    after = [r for r in recs if r[0] > t_reloaded]
    check(len(before) >= 10 and len(after) >= 10, "too little traffic: %d before, %d after",
          len(before), len(after))
    check(all(r[3] in OLD_MODELS for r in before), "old-config requests saw %r",
          {r[3] for r in before})
    check(all(r[3] in NEW_MODELS for r in after), "requests after the reload saw %r",
          {r[3] for r in after})
    check(len(traffic.streams) == 3, "streams: %r", traffic.streams)
    for t0, t1, r, err in traffic.streams:
        check(err is None, "stream failed: %s", err)
        if t0 < t_hup:
            check(t1 > t_reloaded, "stream did not span the reload")
            models = stream_models(r, 20)
            check(models <= set(OLD_MODELS) and len(models) == 1,
                  "a stream open across the reload changed model: %r", models)
        else:
            check(stream_models(r, 3) <= set(NEW_MODELS), "new stream on the old config")
    check(not [l for l in router.logs() if l.get("level") == "error"], "errors logged: %r",
          [l for l in router.logs() if l.get("level") == "error"])


def test_sighup_bad_config_keeps_old(env):
    mock = env.mock()
    router = env.router(config(mock))
    good = h.to_yaml(config(mock, port=router.port))
    bads = [
        # unknown key on line 6 (pool_sise)
        ("unknown key", good.replace("    servers:", "    pool_sise: 3\n    servers:", 1),
         r":\d+: upstreams\.mock\.pool_sise: "),
        ("broken YAML", good + "experiments: [unclosed\n", r":\d+: "),
        ("bad weight", good.replace("weight: 50", "weight: -3", 1), r"weight"),
    ]
    for n, (what, text, rx) in enumerate(bads, start=1):
        router.write_config(text)
        router.signal(signal.SIGHUP)
        hits = router.wait_log(r"^reload rejected", count=n)
        line = hits[-1]
        check(line.get("level") == "error", "rejection logged at level %r", line.get("level"))
        check(router.config_path in line["msg"] and re.search(rx, line["msg"]),
              "%s: rejection message %r lacks FILE:LINE: KEY (%s)", what, line["msg"], rx)
        for i in range(10):
            r = h.post_chat(router.port, {"x-user-id": "u%d" % i}, h.chat_body())
            check(r.status == 200 and r.json()["model"] in OLD_MODELS,
                  "after a rejected reload (%s): %s %r", what, r.status, r.body[:200])
    check(not router.logs() or not any(re.match("^config reloaded", l["msg"])
                                       for l in router.logs()), "a bad config was loaded")
    # The reload machinery still works after rejections.
    router.write_config(config(mock, port=router.port, models=NEW_MODELS))
    router.signal(signal.SIGHUP)
    router.wait_log(r"^config reloaded")
    r = h.post_chat(router.port, {"x-user-id": "u"}, h.chat_body())
    check(r.json()["model"] in NEW_MODELS, "good reload after bad ones: %r", r.json()["model"])


def test_sigterm_drains_in_flight(env):
    mock = env.mock()
    router = env.router(config(mock, limits={"shutdown_timeout_ms": 5000}))
    idle = h.Client(router.port)
    r = idle.request("POST", "/v1/chat/completions", {}, h.chat_body())
    check(r.status == 200, "status %s", r.status)
    slow = h.Client(router.port)
    slow.send(h.build_request("POST", "/v1/chat/completions", {"x-mock-latency-ms": "1000"},
                              h.chat_body()))
    stream = h.Client(router.port)
    stream.send(h.build_request("POST", "/v1/chat/completions",
                                {"x-mock-chunks": "8", "x-mock-interval-ms": "100"},
                                h.chat_body(stream=True)))
    check(h.wait_until(lambda: mock.stats()["requests"] >= 3, 2), "requests not in flight")
    t0 = time.monotonic()
    router.signal(signal.SIGTERM)
    check(idle.closed_by_peer(0.5), "idle keep-alive connection not closed on SIGTERM")
    refused = h.wait_until(lambda: not h.port_accepts(router.port), 0.5)
    check(refused, "new connections still accepted 0.5 s after SIGTERM")
    check(slow.buf == b"", "the slow request was answered before the listener closed")
    r = slow.read_response("POST")
    check(r.status == 200 and r.json()["model"] in OLD_MODELS, "in-flight request: %r", r)
    check((r.header("connection") or "").lower() == "close", "drained response without "
          "Connection: close: %r", r.headers)
    r = stream.read_response("POST", allow_abort=True)
    stream_models(r, 8)
    rc = router.wait(3)
    check(rc is not None, "switchyard still running 3 s after SIGTERM")
    check(rc == 0, "exit status %s after a drain", rc)
    check(time.monotonic() - t0 >= 0.7, "exited before the in-flight request finished")
    router.stop()  # collects it and checks its stderr
    check(router.wait_log(r"^drained"), "no drain log")


def test_sigterm_deadline_cuts_long_requests(env):
    mock = env.mock()
    router = env.router(config(mock, limits={"shutdown_timeout_ms": 500}))
    c = h.Client(router.port)
    c.send(h.build_request("POST", "/v1/chat/completions", {"x-mock-latency-ms": "10000"},
                           h.chat_body()))
    check(h.wait_until(lambda: mock.stats()["requests"] >= 1, 2), "request not in flight")
    t0 = time.monotonic()
    router.signal(signal.SIGTERM)
    rc = router.wait(5)
    took = time.monotonic() - t0
    check(rc == 0, "exit status %s (None: still running)", rc)
    check(0.4 <= took <= 2.5, "exited %.2f s after SIGTERM, shutdown_timeout_ms is 500", took)
    check(c.closed_by_peer(1), "the cut request's connection was not closed")
    router.stop()
    router.wait_log(r"deadline")
    # The cut request's upstream connection is gone too.
    check(h.wait_until(lambda: mock.stats()["connections_open"] <= 1, 1.5),
          "upstream connection left open: %r", mock.stats())


def worker_pids(master_pid):
    """Child pids of master_pid that are switchyard workers (Linux /proc); the
    embedded redis-server, also a child, is not one."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if int(fields[1]) == master_pid and fields[0] not in ("Z", "X") and \
                not comm.startswith("redis"):
            kids.append(int(d))
    return sorted(kids)


def socket_fds(pid):
    n = 0
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
            except OSError:
                pass
    except OSError:
        pass
    return n


@h.timeout(45)
def test_workers_2(env):
    mock = env.mock()
    router = env.router(config(mock, workers=2))
    pids = h.wait_until(lambda: len(worker_pids(router.pid)) == 2 and worker_pids(router.pid), 5)
    check(pids, "master %d has workers %r", router.pid, worker_pids(router.pid))
    listening = router.wait_log(r"^listening on", count=2)
    check({l["pid"] for l in listening} == set(pids), "listening pids %r, workers %r",
          {l["pid"] for l in listening}, pids)
    for i in range(40):
        r = h.post_chat(router.port, {"x-user-id": "u%d" % i}, h.chat_body())
        check(r.status == 200 and r.json()["model"] in OLD_MODELS, "request %d: %s", i, r.status)
    # Both workers accept: hold 24 connections open and count each worker's sockets.
    base = {p: socket_fds(p) for p in pids}
    held = [h.Client(router.port) for _ in range(24)]
    for c in held:
        r = c.request("POST", "/v1/chat/completions", {}, h.chat_body())
        check(r.status == 200, "held connection: %s", r.status)
    share = {p: socket_fds(p) - base[p] for p in pids}
    check(all(v >= 1 for v in share.values()), "connections per worker: %r", share)
    for c in held:
        c.close()
    # SIGHUP to the master reloads every worker.
    router.write_config(config(mock, port=router.port, models=NEW_MODELS, workers=2))
    router.signal(signal.SIGHUP)
    router.wait_log(r"^config reloaded", count=2)
    for i in range(20):
        r = h.post_chat(router.port, {"x-user-id": "n%d" % i}, h.chat_body())
        check(r.status == 200 and r.json()["model"] in NEW_MODELS, "after reload: %r",
              r.body[:200])
    # A worker that dies is replaced; service continues meanwhile.
    os.kill(pids[0], signal.SIGKILL)
    router.wait_log(r"^worker \d+ died", timeout_s=5)
    fresh = h.wait_until(lambda: len(worker_pids(router.pid)) == 2 and
                         pids[0] not in worker_pids(router.pid) and worker_pids(router.pid), 5)
    check(fresh, "worker not replaced: %r", worker_pids(router.pid))
    router.wait_log(r"^listening on", count=3)
    for i in range(20):
        r = h.post_chat(router.port, {"x-user-id": "k%d" % i}, h.chat_body())
        check(r.status == 200 and r.json()["model"] in NEW_MODELS,
              "after a worker restart (restarted on the reloaded config): %s %r",
              r.status, r.body[:200])
    # SIGTERM to the master stops everything (Router.stop also fails if any process
    # of its group outlives the master).
    router.stop(timeout_s=10)
    check(not h.port_accepts(router.port), "port still accepting after stop")
    stopping = {l["pid"] for l in router.wait_log(r"^stopping", count=2)}
    check(stopping == set(fresh), "workers that drained: %r, live workers were %r",
          stopping, fresh)


def check_config(path):
    p = subprocess.run([h.SWITCHYARD, "check-config", path], capture_output=True, text=True,
                       timeout=10)
    return p.returncode, p.stdout, p.stderr


GOOD = """\
listen:
  - 127.0.0.1:18080
upstreams:
  mock:
    servers: [127.0.0.1:19001]
    pool_size: 8
experiments:
  - id: chat
    match:
      path_prefix: /v1/chat/completions
    control: a
    variants:
      - id: a
        upstream: mock
        weight: 50
      - id: b
        upstream: mock
        weight: 50
"""


def test_check_config(env):
    good = env.path("good.yaml")
    h.write_file(good, GOOD)
    rc, out, err = check_config(good)
    check(rc == 0 and out.startswith(good + ": ok"), "good config: rc %d %r %r", rc, out, err)
    minimal = os.path.join(h.ROOT, "deploy", "examples", "minimal.yaml")
    rc, out, err = check_config(minimal)
    check(rc == 0, "minimal.yaml: rc %d %r", rc, err)
    cases = [
        ("unknown-key", GOOD.replace("    pool_size: 8", "    pool_sise: 8"), 6,
         "upstreams.mock.pool_sise"),
        ("bad-weight", GOOD.replace("weight: 50\n", "weight: -1\n", 2).replace(
            "weight: -1\n", "weight: 50\n", 1), 18, "experiments[0].variants[1].weight"),
        ("bad-type", GOOD.replace("pool_size: 8", "pool_size: lots"), 6,
         "upstreams.mock.pool_size"),
        ("unknown-upstream", GOOD.replace("upstream: mock\n        weight: 50\n      - id: b",
                                          "upstream: nope\n        weight: 50\n      - id: b"),
         14, "experiments[0].variants[0].upstream"),
        ("bad-control", GOOD.replace("control: a", "control: z"), 11, "experiments[0].control"),
    ]
    for name, text, line, key in cases:
        check(text != GOOD, "case %s did not change the config", name)
        path = env.path(name + ".yaml")
        h.write_file(path, text)
        rc, out, err = check_config(path)
        check(rc == 1, "%s: rc %d (stderr %r)", name, rc, err)
        first = err.strip().splitlines()[0] if err.strip() else ""
        want = "%s:%d: %s: " % (path, line, key)
        check(first.startswith(want), "%s: message %r, wanted it to start with %r", name,
              first, want)
    broken = env.path("broken.yaml")
    h.write_file(broken, GOOD + "  - [unclosed\n")
    rc, out, err = check_config(broken)
    check(rc == 1 and re.match(re.escape(broken) + r":\d+: ", err), "broken YAML: rc %d %r",
          rc, err)
    rc, out, err = check_config(env.path("missing.yaml"))
    check(rc == 1 and "missing.yaml" in err, "missing file: rc %d %r", rc, err)
    p = subprocess.run([h.SWITCHYARD, "check-config"], capture_output=True, timeout=10)
    check(p.returncode == 2, "check-config without a file: rc %d", p.returncode)
    # serve refuses a bad config at once, with the same message.
    p = subprocess.run([h.SWITCHYARD, "serve", "--config", env.path("unknown-key.yaml")],
                       capture_output=True, text=True, timeout=10)
    check(p.returncode != 0 and "pool_sise" in p.stderr, "serve with a bad config: rc %d %r",
          p.returncode, p.stderr)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
