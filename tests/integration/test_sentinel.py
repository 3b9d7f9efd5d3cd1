"""test_sentinel.py — switchyard on Redis Sentinel: a real primary, one replica and
three real sentinels (redis-server --sentinel, each with its own config file) on
private loopback ports.

The fail-over test runs 2 routers x 2 workers with traffic through the mock LLM,
SIGKILLs the primary under load and asserts: no client request failed; the routers
follow the primary the sentinels promote (their log lines name its address); and
the promoted primary's stream holds every served request's event exactly once, the
per-variant counters exact. The routers use redis.wait_replicas: 1, so a batch counts
as written only once the replica has it: a write the old primary acknowledged is
never lost in the promotion.

The others: `switchyard status` and `switchyard history` through the sentinels; a
master name the sentinels do not know (a clear startup error naming redis.master and
the sentinels asked; the router keeps serving and retrying); and check-config
refusing each bad redis: shape with the field named.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import harness as h
from harness import check

MASTER = "sy"
TOKEN = "sentinel-admin-token-0123456789"
TOKEN_ENV = "SY_TEST_SENTINEL_ADMIN_TOKEN"
os.environ[TOKEN_ENV] = TOKEN  # the routers this test starts inherit it


def cli(port, *args):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] +
                         [str(a) for a in args], capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


class Sentinels:
    """A primary, a replica and three sentinels monitoring them as MASTER."""

    def __init__(self, env, quorum=2):
        self.env = env
        self.primary_port = h.free_port()
        self.replica_port = h.free_port()
        self.primary = self.data_node("primary", self.primary_port)
        self.replica = self.data_node("replica", self.replica_port,
                                      "--replicaof", "127.0.0.1", self.primary_port)
        ok = h.wait_until(lambda: "master_link_status:up" in cli(self.replica_port, "INFO",
                                                                 "replication"), 20)
        check(ok, "the replica did not sync: %s", self.replica.stderr_tail())
        self.ports = [h.free_port() for _ in range(3)]
        self.procs = []
        for i, p in enumerate(self.ports):
            d = env.path("sentinel%d" % i)
            os.makedirs(d, exist_ok=True)
            conf = os.path.join(d, "sentinel.conf")
            h.write_file(conf, "port %d\nbind 127.0.0.1\ndir %s\n"
                         "sentinel monitor %s 127.0.0.1 %d %d\n"
                         "sentinel down-after-milliseconds %s 1000\n"
                         "sentinel failover-timeout %s 3000\n"
                         "sentinel parallel-syncs %s 1\n"
                         % (p, d, MASTER, self.primary_port, quorum, MASTER, MASTER, MASTER))
            proc = h.Process("sentinel%d" % i, ["redis-server", conf, "--sentinel"], env.dir)
            env.procs.append(proc)
            self.procs.append(proc)
        for p in self.ports:
            ok = h.wait_until(lambda: cli(p, "PING") == "PONG", 10)
            check(ok, "sentinel on %d did not start", p)

        def settled():
            for p in self.ports:
                if cli(p, "SENTINEL", "ckquorum", MASTER).find("OK") != 0:
                    return False
                if "127.0.0.1" not in cli(p, "SENTINEL", "replicas", MASTER):
                    return False
            return True
        check(h.wait_until(settled, 20, 0.2), "the sentinels did not settle: %s",
              cli(self.ports[0], "SENTINEL", "ckquorum", MASTER))

    def data_node(self, name, port, *extra):
        d = self.env.path(name)
        os.makedirs(d, exist_ok=True)
        p = h.Process(name, ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", d, "--save", "", "--appendonly", "no"] +
                      [str(a) for a in extra], self.env.dir)
        self.env.procs.append(p)
        check(h.wait_until(lambda: cli(port, "PING") == "PONG", 10),
              "redis-server %s did not start: %s", name, p.stderr_tail())
        return p

    def addrs(self):
        return ["127.0.0.1:%d" % p for p in self.ports]

    def failover_settled(self):
        """Every sentinel has finished its fail-over (no failover_in_progress flag)."""
        for p in self.ports:
            lines = cli(p, "SENTINEL", "master", MASTER).splitlines()
            info = dict(zip(lines[0::2], lines[1::2]))
            if "failover_in_progress" in info.get("flags", "failover_in_progress"):
                return False
        return True

    def master_port(self, sentinel=0):
        out = cli(self.ports[sentinel], "SENTINEL", "get-master-addr-by-name", MASTER).split()
        return int(out[1]) if len(out) == 2 else None


def health(port):
    c = h.Client(port)
    try:
        return c.request("GET", "/switchyard/v1/health", {}).json()
    finally:
        c.close()


def distinct_ids(port):
    """Distinct event ids in sy:events (schema 5 values or older event_id fields)."""
    return int(cli(port, "EVAL",
                   "local ids = {} local n = 0 "
                   "for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do "
                   "  local f = e[2] for i = 1, #f, 2 do "
                   "    local id = f[i] == 'event_id' and f[i+1] "
                   "      or f[i] == 'e' and (string.match(f[i+1], '^5|.|([^|]+)|') or e[1]) "
                   "    if id and not ids[id] then ids[id] = 1 n = n + 1 end "
                   "  end end return n", 1, "sy:events"))


def sentinel_config(env, mock, s, name, **redis):
    r = {"sentinels": s.addrs(), "master": MASTER, "timeout_ms": 500, "connect_timeout_ms": 500,
         "reconnect_max_ms": 500}
    r.update(redis)
    return h.router_config(mock.addr, workers=2, data_dir=env.path(name + "-data"), redis=r,
                           events={"queue_bytes": 65536, "flush_ms": 5},
                           admin={"listen": "127.0.0.1:%d" % h.free_port(),
                                  "token_env": TOKEN_ENV})


def admin(router, method, path, body=None):
    """One request to the router's admin listener (its port from the config)."""
    port = int(router.admin_listen.rsplit(":", 1)[1])
    c = h.Client(port)
    try:
        return c.request(method, path, {"authorization": "Bearer " + TOKEN}, body)
    finally:
        c.close()


def start_router(env, cfg, name):
    r = env.router(cfg, name=name)
    r.admin_listen = cfg["admin"]["listen"]
    return r


def failover_under_load(env, wait):
    """2 routers x 2 workers on the sentinels with redis `wait` settings; the primary
    loses its replica link (the replica stopped, its connection killed) and 0.4 s
    later is SIGKILLed, so that writes it acknowledged meanwhile are on no replica;
    the replica is promoted; the old primary comes back (as a replica of the new
    one, by the sentinels). Returns (served, failed, stream length, distinct ids,
    counters, journal "lost" log lines, new primary's port)."""
    mock = env.mock()
    s = Sentinels(env)
    routers = [start_router(env, sentinel_config(env, mock, s, "r%d" % i, **wait),
                            "switchyard%d" % i) for i in range(2)]
    for r in routers:
        check(h.wait_until(lambda: health(r.port)["redis"] == "up", 10),
              "router not up on the sentinels' primary: %s", r.stderr_tail())
        r.wait_log(r"master 'sy' is at 127\.0\.0\.1:%d" % s.primary_port, count=2)

    loads = [h.Load(r.port, threads=3) for r in routers]
    for l in loads:
        l.__enter__()
    try:
        time.sleep(2.5)
        before = sum(l.ok for l in loads)
        s.replica.signal(signal.SIGSTOP)
        cli(s.primary_port, "CLIENT", "KILL", "TYPE", "replica")
        time.sleep(0.4)
        s.primary.signal(signal.SIGKILL)
        s.primary.proc.wait(5)
        s.replica.signal(signal.SIGCONT)
        t0 = time.time()
        ok = h.wait_until(lambda: all(s.master_port(i) == s.replica_port for i in range(3)),
                          30, 0.1)
        check(ok, "the sentinels did not promote the replica: %s",
              [s.master_port(i) for i in range(3)])
        promoted_s = time.time() - t0
        # Each worker of each router follows: a log line per worker naming the new address.
        for r in routers:
            r.wait_log(r"master 'sy' is (now )?at 127\.0\.0\.1:%d" % s.replica_port, count=2,
                       timeout_s=15)
        # The old primary comes back empty, once the sentinels have finished the fail-over
        # (back during it, it may be taken for a master: a second fail-over, to it);
        # the sentinels make it a replica of the new.
        check(h.wait_until(s.failover_settled, 15, 0.1), "the fail-over did not finish")
        s.primary = s.data_node("primary2", s.primary_port)
        ok = h.wait_until(lambda: "master_link_status:up" in cli(s.primary_port, "INFO",
                                                                 "replication"), 20, 0.2)
        check(ok, "the old primary did not become a replica: %s",
              cli(s.primary_port, "INFO", "replication"))
        time.sleep(2)
    finally:
        for l in loads:
            l.__exit__(None, None, None)
    served = sum(l.ok for l in loads)
    failed = [f for l in loads for f in l.failed]
    check(served > before + 100, "load did not continue through the fail-over: %d, %d",
          before, served)
    new = s.replica_port
    h.wait_until(lambda: int(cli(new, "XLEN", "sy:events") or 0) >= served, 30, 0.2)
    time.sleep(1)  # anything doubled would arrive now
    n = int(cli(new, "XLEN", "sy:events"))
    ids = distinct_ids(new)
    total = sum(float(cli(new, "HGET", "sy:{chat}:v:%s" % v, "requests") or 0) for v in ("a", "b"))
    logs = [l for r in routers for l in r.logs()]
    lost = [l for l in logs if "were lost there" in str(l.get("msg"))]
    short = [l for l in logs if "WAIT" in str(l.get("msg"))]
    print("  sentinel %s: %d responses served, %d failed; promotion took %.1f s; stream %d, "
          "distinct ids %d, requests counters %d; journal 'lost there' lines %d, WAIT-short "
          "lines %d" % (json.dumps(wait), served, len(failed), promoted_s, n, ids, int(total),
                        len(lost), len(short)), flush=True)
    return routers, served, failed, n, ids, int(total), lost, new


@h.timeout(150)
def test_failover_under_load(env):
    routers, served, failed, n, ids, total, lost, new = failover_under_load(
        env, {"wait_replicas": 1, "wait_strict": True})
    check(not failed, "%d failed requests: %r", len(failed), failed[:5])
    check(not lost, "the journal found batches lost in the fail-over: %r", lost[:3])
    check(n == served, "stream holds %d events for %d responses served", n, served)
    check(ids == served, "%d distinct event ids for %d responses", ids, served)
    check(total == served, "requests counters sum to %s for %d responses", total, served)
    for r in routers:
        hj = health(r.port)
        check(hj["redis"] == "up" and hj["redis_server"].startswith("127.0.0.1:%d " % new),
              "health after the fail-over: %r", hj)

    # /metrics: both workers of each router followed the switch (at least once each:
    # sentinels that disagree for a moment can make a worker switch back and forth).
    for r in routers:
        text = admin(r, "GET", "/metrics").body.decode()
        m = re.search(r"^switchyard_redis_master_switches_total (\d+)$", text, re.M)
        check(m is not None and int(m.group(1)) >= 2 and "switchyard_redis_up 1\n" in text,
              "/metrics after the fail-over: %s", [l for l in text.splitlines() if "redis" in l])
    # The admin API and the CLI find the new primary through the sentinels too.
    resp = admin(routers[1], "GET", "/api/experiments/chat")
    check(resp.status == 200, "admin API: %d %r", resp.status, resp.body[:300])
    out = subprocess.run([h.SWITCHYARD, "status", "chat", "--json", "--config",
                          routers[0].config_path], capture_output=True, text=True, timeout=20)
    check(out.returncode == 0, "status: exit %d: %s", out.returncode, out.stderr)
    st = json.loads(out.stdout)
    shown = sum(v["requests"] for e in st["experiments"] if e["id"] == "chat"
                for v in e["variants"])
    check(shown == served, "status shows %d requests for %d served", shown, served)


@h.timeout(60)
def test_cli_and_unknown_master(env):
    mock = env.mock()
    s = Sentinels(env)
    good = sentinel_config(env, mock, s, "good")
    router = start_router(env, good, "good")
    check(h.wait_until(lambda: health(router.port)["redis"] == "up", 10), "router not up")
    for i in range(5):
        check(h.post_chat(router.port, {"x-user-id": "u%d" % i}).status == 200, "request %d", i)
    check(h.wait_until(lambda: cli(s.primary_port, "XLEN", "sy:events") == "5", 5),
          "events: %s", cli(s.primary_port, "XLEN", "sy:events"))
    out = subprocess.run([h.SWITCHYARD, "status", "chat", "--config", router.config_path],
                         capture_output=True, text=True, timeout=20)
    check(out.returncode == 0 and "chat" in out.stdout, "status: %d %s %s", out.returncode,
          out.stdout, out.stderr)
    out = subprocess.run([h.SWITCHYARD, "pause", "chat", "--reason", "t",
                          "--config", router.config_path],
                         capture_output=True, text=True, timeout=20)
    check(out.returncode == 0, "pause: %d %s %s", out.returncode, out.stdout, out.stderr)
    out = subprocess.run([h.SWITCHYARD, "history", "chat", "--config", router.config_path],
                         capture_output=True, text=True, timeout=20)
    check(out.returncode == 0 and "pause" in out.stdout, "history: %d %s %s", out.returncode,
          out.stdout, out.stderr)
    resp = admin(router, "POST", "/api/experiments/chat/resume", {"reason": "admin api"})
    check(resp.status == 200 and b"done" in resp.body, "admin resume: %d %r", resp.status,
          resp.body)

    # The sentinel the workers watch fail-overs on dies: each worker's watch moves to
    # another sentinel (the one that answers when it asks again).
    watched = router.wait_log(r"watching fail-overs of master 'sy'", count=2)
    first = "127.0.0.1:%d" % s.ports[0]
    check(all(first in l["msg"] for l in watched), "watching: %r", watched)
    s.procs[0].signal(signal.SIGKILL)
    router.wait_log(r"sentinel %s: fail-over watch lost" % re.escape(first), count=2)
    moved = router.wait_log(r"watching fail-overs of master 'sy'", count=4, timeout_s=10)[2:]
    check(all(first not in l["msg"] for l in moved), "the watch did not move: %r", moved)
    check(h.post_chat(router.port, {"x-user-id": "after"}).status == 200, "serving")

    # A master name the sentinels do not know: the router serves (events wait in the
    # spool), logs an error naming redis.master and each sentinel asked, keeps asking.
    bad = sentinel_config(env, mock, s, "bad")
    bad["redis"]["master"] = "nosuch"
    r2 = start_router(env, bad, "bad")
    hits = r2.wait_log(r"redis\.master: no sentinel knows a master named 'nosuch'", timeout_s=10)
    for p in s.ports[1:]:
        check("127.0.0.1:%d" % p in hits[0]["msg"], "sentinel %d not named: %r", p, hits[0])
    check("127.0.0.1:%d (cannot connect" % s.ports[0] in hits[0]["msg"],
          "the dead sentinel's answer: %r", hits[0])
    check(h.post_chat(r2.port, {"x-user-id": "x"}).status == 200, "serving without Redis")
    hj = health(r2.port)
    check(hj["redis"] == "down" and "nosuch" in hj.get("redis_error", ""), "health: %r", hj)
    # The CLI says the same and exits non-zero.
    out = subprocess.run([h.SWITCHYARD, "status", "--config", r2.config_path],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 1 and "redis.master" in out.stderr and "nosuch" in out.stderr,
          "status with an unknown master: %d %r", out.returncode, out.stderr)
    resp = admin(r2, "GET", "/api/experiments/chat")
    check(resp.status == 503 and b"nosuch" in resp.body, "admin API, unknown master: %d %r",
          resp.status, resp.body)


@h.timeout(60)
def test_a_replica_named_by_the_sentinels_is_refused(env):
    """A sentinel whose answer is a replica (here: one monitoring the replica under
    another name; in life, a stale answer mid-fail-over): the link's ROLE check refuses
    it, logs why, and keeps asking; nothing is written to the replica."""
    mock = env.mock()
    s = Sentinels(env)
    port = h.free_port()
    d = env.path("sentinel-rep")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "sentinel.conf")
    h.write_file(conf, "port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor rep 127.0.0.1 %d 1\n"
                 "sentinel down-after-milliseconds rep 60000\n" % (port, d, s.replica_port))
    env.procs.append(h.Process("sentinel-rep", ["redis-server", conf, "--sentinel"], env.dir))
    check(h.wait_until(lambda: cli(port, "PING") == "PONG", 10), "sentinel-rep did not start")
    cfg = sentinel_config(env, mock, s, "rep")
    cfg["redis"].update({"sentinels": ["127.0.0.1:%d" % port], "master": "rep"})
    r = start_router(env, cfg, "rep")
    r.wait_log(r"not the primary of 'rep' \(ROLE slave\); asking the sentinels again", count=2,
               timeout_s=10)
    check(h.post_chat(r.port, {"x-user-id": "x"}).status == 200, "serving")
    time.sleep(1)
    hj = health(r.port)
    check(hj["redis"] == "down" and "ROLE slave" in hj.get("redis_error", ""), "health: %r", hj)
    check(cli(s.replica_port, "EXISTS", "sy:events") == "0", "something was written")


BAD = [
    ("both", {"url": "redis://127.0.0.1:6379", "sentinels": ["127.0.0.1:26379"], "master": "m"},
     "redis.sentinels: give url or sentinels, not both"),
    ("empty", {"sentinels": [], "master": "m"},
     "redis.sentinels: needs at least one sentinel host:port"),
    ("nomaster", {"sentinels": ["127.0.0.1:26379"]},
     "redis: sentinels needs master"),
    ("badport", {"sentinels": ["127.0.0.1:99999"], "master": "m"},
     "redis.sentinels[0]: port must be an integer in 1..65535"),
    ("badhost", {"sentinels": ["bad host:1"], "master": "m"},
     "redis.sentinels[0]: invalid host"),
]


@h.timeout(30)
def test_check_config_bad_sentinel_input(env):
    for name, redis, want in BAD:
        path = env.path(name + ".yaml")
        h.write_file(path, h.to_yaml(h.router_config("127.0.0.1:9", redis=redis)))
        out = subprocess.run([h.SWITCHYARD, "check-config", path], capture_output=True,
                             text=True, timeout=10)
        check(out.returncode != 0, "%s: check-config accepted it: %s", name, out.stdout)
        check(want in out.stderr, "%s: wanted %r in %r", name, want, out.stderr)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
