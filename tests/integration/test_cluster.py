#!/usr/bin/env python3
"""test_cluster.py — switchyard on a real Redis Cluster (redis.cluster): 3 primaries
and 3 replicas made by `redis-cli --cluster create` on private loopback ports, with a
short cluster-node-timeout. Traffic, feedback and outcomes through 2 routers x 2
workers land exactly once on each experiment's own shard (its stream sy:{E}:events,
its counters); a slot migrated under load and a primary killed under load (its
replica promoted) fail no client request and lose or double no event; two routers
converge on one posterior; the CLI reads and changes an experiment's state there; a
seed that is not a cluster node is a startup error naming redis.cluster. `switchyard
export` (3 primaries, no replicas) copies each experiment's stream from its own shard
into SQLite exactly once, --once and --follow, with each stream's refs resolved from
that experiment's sy:{E}:refs; SIGKILLed in the middle of a backlog on two shards and
restarted, it loses and doubles nothing.
"""
import json
import os
import random
import secrets
import sqlite3
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402
import event5  # noqa: E402

KEY = "acme-" + secrets.token_hex(16)
os.environ["SY_CLTEST_KEY"] = KEY
ADMIN_TOKEN = "admin-" + secrets.token_hex(16)
os.environ["SY_CLTEST_ADMIN"] = ADMIN_TOKEN
BINARY = {"metric": "resolved", "type": "binary"}
RETRIED = []  # the 503s api_retry saw


# ---- the cluster -----------------------------------------------------------------------

class Cluster:
    """6 redis-server processes (cluster-enabled, no persistence) on ports base..base+5,
    joined by redis-cli --cluster create with one replica each."""

    def __init__(self, env, nodes=6, replicas=1):
        self.env = env
        self.ports = self._ports(nodes)
        self.procs = {}
        for p in self.ports:
            self.start_node(p)
        argv = ["redis-cli", "--cluster", "create"] + ["127.0.0.1:%d" % p for p in self.ports] + \
            ["--cluster-replicas", str(replicas), "--cluster-yes"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        check(out.returncode == 0, "redis-cli --cluster create failed: %s %s", out.stdout[-800:],
              out.stderr[-800:])
        check(h.wait_until(self.healthy, 20, 0.2), "the cluster never became ok: %s",
              self.node(self.ports[0]).command("CLUSTER", "INFO"))
        if replicas:  # a replica that has not synced cannot take over
            check(h.wait_until(self.replicas_online, 30, 0.2), "replicas never in sync")

    def replicas_online(self):
        for p in self.primaries():
            info = self.node(p).command("INFO", "replication")
            if "state=online" not in info:
                return False
        return True

    @staticmethod
    def _ports(n):
        for _ in range(50):
            # below the ephemeral range (32768-), bus ports (+10000) too
            base = random.randrange(20000, 22700)
            ports = list(range(base, base + n))
            bus = [p + 10000 for p in ports]
            if all(not h.port_accepts(p) for p in ports + bus):
                return ports
        raise h.Failure("no free port range for the cluster")

    def start_node(self, port):
        d = self.env.path("r%d" % port)
        os.makedirs(d, exist_ok=True)
        p = h.Process("redis-%d" % port, [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "1000", "--save", "", "--appendonly", "no",
            "--repl-diskless-sync-delay", "0", "--cluster-require-full-coverage", "no",
            "--dir", d, "--daemonize", "no"], d,
            stdout=open(os.path.join(d, "redis.log"), "wb"))
        self.env.procs.append(p)
        self.procs[port] = p
        ok = h.wait_until(lambda: not p.alive() or h.redis_ping(("127.0.0.1", port)), 10)
        check(ok and p.alive(), "redis-server %d did not start: %s", port,
              open(os.path.join(d, "redis.log"), "rb").read()[-600:])

    def node(self, port):
        c = h.RedisClient(("127.0.0.1", port))
        self.env.closers.append(c.close)
        return c

    def live_ports(self):
        return [p for p in self.ports if self.procs[p].alive()]

    def healthy(self):
        for p in self.live_ports():
            try:
                info = self.node(p).command("CLUSTER", "INFO")
            except (OSError, h.Failure):
                return False
            if "cluster_state:ok" not in info:
                return False
        return True

    def slots(self):
        """{slot range (lo, hi): primary port} from CLUSTER SLOTS of a live node."""
        out = {}
        for lo, hi, primary, *_ in self.node(self.live_ports()[0]).command("CLUSTER", "SLOTS"):
            out[(lo, hi)] = primary[1]
        return out

    def keyslot(self, key):
        return self.node(self.live_ports()[0]).command("CLUSTER", "KEYSLOT", key)

    def owner(self, key):
        s = self.keyslot(key)
        for (lo, hi), port in self.slots().items():
            if lo <= s <= hi:
                return port
        raise h.Failure("no owner for slot %d" % s)

    def primaries(self):
        return sorted(set(self.slots().values()))

    def at(self, key):
        """A client of the primary that holds key."""
        return self.node(self.owner(key))

    def seeds(self):
        return ["127.0.0.1:%d" % p for p in self.ports[:3]]


def spread_ids(cl, n=3):
    """n experiment ids whose hash tags are on n different primaries."""
    got, seen = [], set()
    for i in range(200):
        eid = "exp%d" % i
        port = cl.owner("sy:{%s}:meta" % eid)
        if port not in seen:
            seen.add(port)
            got.append(eid)
        if len(got) == n:
            return got
    raise h.Failure("could not spread experiments over %d primaries" % n)


# ---- routers ---------------------------------------------------------------------------

def experiment(eid, outcome=None):
    e = {"id": eid,
         "match": {"method": "POST", "path_prefix": "/v1/chat/completions",
                   "header": "x-exp", "header_value": eid},
         "policy": "split", "control": "a",
         "variants": [{"id": "a", "upstream": "mock", "model": "model-a"},
                      {"id": "b", "upstream": "mock", "model": "model-b"}]}
    if outcome is not None:
        e["outcome"] = outcome
    return e


def config(env, mock, cl, exps, name, **extra):
    cfg = h.router_config(mock.addr, experiments=exps, data_dir=env.path("data-" + name),
                          workers=2,
                          api_keys=[{"name": "acme", "secret_env": "SY_CLTEST_KEY",
                                     "tenant": "acme"}])
    # WAIT for a replica (where a primary has one) before a write counts, strictly
    cfg["redis"] = {"cluster": cl.seeds(), "wait_replicas": 1, "wait_strict": True,
                    "timeout_ms": 2000,
                    "connect_timeout_ms": 500, "reconnect_max_ms": 300}
    cfg["events"] = {"flush_ms": 5, "sync_ms": 200}
    cfg.update(extra)
    return cfg


def chat(port, eid):
    r = h.post_chat(port, {"x-exp": eid, "x-switchyard-tenant": "acme"})
    check(r.status == 200, "chat %s: status %s: %r", eid, r.status, r.body[:200])
    return r.header("x-switchyard-trace-id"), r.header("x-switchyard-variant")


def api(port, what, body):
    c = h.Client(port)
    try:
        return c.request("POST", "/switchyard/v1/" + what,
                         {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"},
                         body)
    finally:
        c.close()


def api_retry(port, what, body, timeout_s=15):
    """The API as a client is told to use it: a 503 is retried."""
    deadline = time.time() + timeout_s
    while True:
        r = api(port, what, body)
        if r.status != 503 or time.time() > deadline:
            return r
        RETRIED.append((what, r.body[:200]))
        time.sleep(0.1)


def check_once(r, n503):
    """A 200 that applied the call; or, after a 503 the client retried (the first try
    may have been applied before its answer was lost), a duplicate of it. The counters
    and events (check_exact) say whether it was applied exactly once."""
    check(r.status == 200, "API call: %s %r", r.status, r.body[:300])
    b = r.json()
    check(b.get("applied") is True or (len(RETRIED) > n503 and b.get("duplicate") is True),
          "API call not applied: %r (503s: %r)", b, RETRIED[n503:])


# ---- reading each experiment on its shard ------------------------------------------------

def events(cl, eid):
    """Experiment eid's events, decoded, read from sy:{E}:events on its primary."""
    rc = cl.at("sy:{%s}:events" % eid)
    refs = rc.hgetall("sy:{%s}:refs" % eid)
    out = []
    for entry_id, flat in rc.command("XRANGE", "sy:{%s}:events" % eid, "-", "+") or []:
        entry = dict(zip(flat[0::2], flat[1::2]))
        out.append(event5.decode(entry, refs, entry_id))
    return out


def counters(cl, eid, v):
    rc = cl.at("sy:{%s}:v:%s" % (eid, v))
    return {k: float(x) for k, x in rc.hgetall("sy:{%s}:v:%s" % (eid, v)).items()}


def health(port):
    c = h.Client(port)
    try:
        r = c.request("GET", "/switchyard/v1/health")
    finally:
        c.close()
    return r.json()


def settled(cl, routers, served):
    """Waits until every router's journals are drained and every request event is in."""
    def done():
        for r in routers:
            for _ in range(4):  # both workers answer in turn
                j = health(r.port).get("journal", {})
                if j.get("queued_events", 1) or j.get("spool_bytes", 1):
                    return False
        return all(len([e for e in events(cl, eid) if e.get("event_type") == "request"]) >=
                   len(served[eid]) for eid in served)
    return h.wait_until(done, 20, 0.2)


def check_exact(cl, served, fb=None, outs=None):
    """Every served request's event once on its experiment's shard, every counter exact;
    every feedback and outcome event once."""
    fb, outs = fb or {}, outs or {}
    for eid, reqs in served.items():
        evs = events(cl, eid)
        req_ev = [e["trace_id"] for e in evs if e.get("event_type") == "request"]
        want = sorted(t for t, _ in reqs)
        check(sorted(req_ev) == want, "%s: %d request events for %d served (%d distinct, "
              "missing %d)", eid, len(req_ev), len(want), len(set(req_ev)),
              len(set(want) - set(req_ev)))
        for v in ("a", "b"):
            n = sum(1 for _, var in reqs if var == v)
            got = counters(cl, eid, v).get("requests", 0.0)
            check(got == n, "%s/%s: requests counter %s, served %d", eid, v, got, n)
        fb_ev = [e["trace_id"] for e in evs if e.get("event_type") == "feedback"]
        check(sorted(fb_ev) == sorted(fb.get(eid, [])), "%s: %d feedback events for %d calls",
              eid, len(fb_ev), len(fb.get(eid, [])))
        out_ev = [e["trace_id"] for e in evs if e.get("event_type") == "outcome"]
        check(sorted(out_ev) == sorted(outs.get(eid, [])), "%s: %d outcome events for %d calls",
              eid, len(out_ev), len(outs.get(eid, [])))
        if eid in outs:
            total = sum(counters(cl, eid, v).get("outcomes", 0.0) for v in ("a", "b"))
            check(total == len(outs[eid]), "%s: outcomes counter %s for %d calls", eid, total,
                  len(outs[eid]))
        if eid in fb:
            total = sum(counters(cl, eid, v).get("fb:thumbs:n", 0.0) for v in ("a", "b"))
            check(total == len(fb[eid]), "%s: fb:thumbs:n %s for %d calls", eid, total,
                  len(fb[eid]))


class Traffic:
    """Threads sending chat requests for the experiments through the routers until
    stopped; every response's (trace, variant) kept per experiment, every failure kept."""

    def __init__(self, routers, eids, threads=4):
        self.routers, self.eids = routers, eids
        self.served = {e: [] for e in eids}
        self.failures = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]

    def run(self, i):
        k = i
        while not self.stop.is_set():
            eid = self.eids[k % len(self.eids)]
            port = self.routers[k % len(self.routers)].port
            k += 1
            try:
                r = h.post_chat(port, {"x-exp": eid, "x-switchyard-tenant": "acme"})
                ok = r.status == 200
            except Exception as e:  # noqa: BLE001  (a failed request is what we count)
                ok, r = False, e
            with self.lock:
                if ok:
                    self.served[eid].append((r.header("x-switchyard-trace-id"),
                                             r.header("x-switchyard-variant")))
                else:
                    self.failures.append(repr(getattr(r, "status", r)))
            time.sleep(0.002)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def count(self):
        with self.lock:
            return sum(len(v) for v in self.served.values())


def setup(env, nexp=3, **extra):
    cl = Cluster(env)
    mock = env.mock()
    eids = spread_ids(cl, nexp)
    exps = [experiment(e, outcome=BINARY) for e in eids]
    r1 = env.router(config(env, mock, cl, exps, "r1", **extra), name="r1")
    r2 = env.router(config(env, mock, cl, exps, "r2", **extra), name="r2")
    for r in (r1, r2):
        r.wait_log("redis cluster up", count=2, timeout_s=15)
    return cl, mock, eids, (r1, r2)


# ---- tests --------------------------------------------------------------------------------

@h.timeout(120)
def test_cluster_traffic_feedback_outcomes_exact(env):
    cl, mock, eids, routers = setup(env)
    check(len({cl.owner("sy:{%s}:meta" % e) for e in eids}) == 3, "experiments not spread")
    served = {e: [] for e in eids}
    for i in range(60):
        for eid in eids:
            served[eid].append(chat(routers[i % 2].port, eid))
    fb, outs = {e: [] for e in eids}, {e: [] for e in eids}
    for eid in eids:
        for j, (tid, _) in enumerate(served[eid][:20]):
            port = routers[j % 2].port  # the other router than served it, half the time
            n503 = len(RETRIED)
            r = api_retry(port, "feedback", {"trace_id": tid, "type": "thumbs", "value": 1})
            check_once(r, n503)
            fb[eid].append(tid)
            n503 = len(RETRIED)
            r = api_retry(port, "outcome", {"trace_id": tid, "metric": "resolved", "value": 1})
            check_once(r, n503)
            outs[eid].append(tid)
        # a repeat, through the other router: a duplicate, applied nothing
        tid = served[eid][0][0]
        r = api_retry(routers[1].port, "feedback", {"trace_id": tid, "type": "thumbs", "value": 1})
        check(r.status == 200 and r.json().get("duplicate") is True, "repeat: %s %r", r.status,
              r.body[:300])
    r = api(routers[0].port, "feedback", {"trace_id": secrets.token_hex(16), "type": "thumbs", "value": 1})
    check(r.status == 404, "unknown trace: %s %r", r.status, r.body[:200])
    check(settled(cl, routers, served), "journals did not drain")
    check_exact(cl, served, fb, outs)
    # nothing of an experiment is on another shard
    for eid in eids:
        home = cl.owner("sy:{%s}:meta" % eid)
        for p in cl.primaries():
            if p != home:
                keys = cl.node(p).command("KEYS", "sy:{%s}:*" % eid)
                check(keys == [], "%s keys on %d, not its shard %d: %r", eid, p, home, keys[:5])
    hb = health(routers[0].port)
    check(hb.get("redis") == "up" and len(hb["redis_cluster"]["primaries"]) == 3,
          "health: %r", hb)


@h.timeout(150)
def test_slot_migrated_under_load(env):
    cl, mock, eids, routers = setup(env, nexp=2)
    eid = eids[0]
    slot = cl.keyslot("sy:{%s}:meta" % eid)
    src = cl.owner("sy:{%s}:meta" % eid)
    dst = [p for p in cl.primaries() if p != src][0]
    ids = {p: cl.node(p).command("CLUSTER", "MYID") for p in (src, dst)}
    with Traffic(routers, eids) as t:
        h.wait_until(lambda: t.count() > 150, 20)
        # the documented migration: IMPORTING on the target, MIGRATING on the source,
        # the keys moved in batches (MIGRATE), then the slot given to the target
        s, d = cl.node(src), cl.node(dst)
        d.command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src])
        s.command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[dst])
        moved = 0
        while True:
            keys = s.command("CLUSTER", "GETKEYSINSLOT", slot, 5)
            if not keys:
                break
            s.command("MIGRATE", "127.0.0.1", dst, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            time.sleep(0.05)  # traffic keeps writing meanwhile (ASK, TRYAGAIN)
        for p in cl.primaries():
            cl.node(p).command("CLUSTER", "SETSLOT", slot, "NODE", ids[dst])
        n0 = t.count()
        h.wait_until(lambda: t.count() > n0 + 150, 20)
    check(moved > 0, "no key was migrated")
    check(cl.owner("sy:{%s}:meta" % eid) == dst, "the slot did not move")
    check(t.failures == [], "%d client requests failed: %r", len(t.failures), t.failures[:5])
    check(settled(cl, routers, t.served), "journals did not drain")
    check_exact(cl, t.served)
    seen = {}  # worker instance -> its MOVED + ASK (health answers for one worker a call)
    for r in routers:
        for _ in range(8):
            hb = health(r.port)
            seen[hb["instance"]] = hb["redis_cluster"]["moved"] + hb["redis_cluster"]["ask"]
    moved_n = sum(seen.values())
    check(moved_n > 0, "no MOVED or ASK was seen: the test did not exercise redirection")


@h.timeout(150)
def test_primary_killed_under_load(env):
    cl, mock, eids, routers = setup(env)
    victim = cl.owner("sy:{%s}:meta" % eids[0])
    with Traffic(routers, eids) as t:
        h.wait_until(lambda: t.count() > 200, 20)
        cl.procs[victim].signal(signal.SIGKILL)
        cl.procs[victim].wait(5)
        check(h.wait_until(lambda: victim not in cl.primaries(), 20, 0.2),
              "no replica was promoted")
        n0 = t.count()
        h.wait_until(lambda: t.count() > n0 + 200, 30)
    check(t.failures == [], "%d client requests failed: %r", len(t.failures), t.failures[:5])
    check(settled(cl, routers, t.served), "journals did not drain after the fail-over: %r %r",
          [health(r.port) for r in routers], cl.slots())
    check_exact(cl, t.served)


@h.timeout(150)
def test_shard_down_others_proceed_then_replayed(env):
    """3 primaries without replicas; one is stopped (SIGSTOP) under load for longer than
    the cluster-node-timeout: no client request fails, the other experiments' events
    keep landing meanwhile, the stopped shard's events go to the spool (a small memory
    queue); after SIGCONT they are replayed, and every event is present exactly once."""
    cl = Cluster(env, replicas=0)
    mock = env.mock()
    eids = spread_ids(cl, 3)
    exps = [experiment(e, outcome=BINARY) for e in eids]
    routers = []
    for n in ("r1", "r2"):
        cfg = config(env, mock, cl, exps, n)
        cfg["events"]["queue_bytes"] = 65536
        routers.append(env.router(cfg, name=n))
    for r in routers:
        r.wait_log("redis cluster up", count=2, timeout_s=15)
    victim = cl.owner("sy:{%s}:meta" % eids[0])
    others = eids[1:]

    def landed(eid):
        rc = cl.at("sy:{%s}:events" % eid)
        return rc.command("XLEN", "sy:{%s}:events" % eid)
    with Traffic(routers, eids) as t:
        h.wait_until(lambda: t.count() > 150, 20)
        cl.procs[victim].signal(signal.SIGSTOP)
        try:
            time.sleep(0.5)
            before = {e: landed(e) for e in others}
            time.sleep(3)  # > cluster-node-timeout: the cluster marks it failed
            after = {e: landed(e) for e in others}
            spooled = sum(health(r.port).get("journal", {}).get("spooled", 0)
                          for r in routers for _ in range(4))
        finally:
            cl.procs[victim].signal(signal.SIGCONT)
        n0 = t.count()
        h.wait_until(lambda: t.count() > n0 + 150, 20)
    check(t.failures == [], "%d client requests failed: %r", len(t.failures), t.failures[:5])
    for e in others:
        check(after[e] > before[e] + 20, "%s's events stopped while another shard was down: "
              "%d then %d", e, before[e], after[e])
    check(spooled > 0, "the stopped shard's events were never spooled")
    check(settled(cl, routers, t.served), "journals did not drain after the shard came back")
    check_exact(cl, t.served)


@h.timeout(120)
def test_two_routers_converge_one_lease(env):
    """Outcomes through router 1 only; router 2 follows the shared posterior (read from
    the experiment's shard) within 2 s. A canary-gated experiment on another shard has
    one gate lease, held by one of the four workers."""
    cl = Cluster(env)
    mock = env.mock()
    eids = spread_ids(cl, 2)
    bandit = experiment(eids[0], outcome=BINARY)
    bandit["policy"] = "thompson"
    gated = experiment(eids[1], outcome=BINARY)
    gated["gate"] = {"mode": "canary", "interval": "200ms"}
    gated["variants"][1]["weight"] = 0
    routers = [env.router(config(env, mock, cl, [bandit, gated], n), name=n)
               for n in ("r1", "r2")]
    for r in routers:
        r.wait_log("redis cluster up", count=2, timeout_s=15)
    got = {"a": [], "b": []}
    sent = 0
    while (len(got["a"]) < 40 or len(got["b"]) < 40) and sent < 1000:
        tid, v = chat(routers[0].port, eids[0])
        got[v].append(tid)
        sent += 1
    rates = {"a": 4, "b": 36}
    for v in ("a", "b"):
        for i, tid in enumerate(got[v][:40]):
            r = api_retry(routers[0].port, "outcome", {"trace_id": tid, "metric": "resolved",
                                                      "value": 1 if i < rates[v] else 0})
            check(r.status == 200 and r.json().get("applied") is True, "outcome: %s %r",
                  r.status, r.body[:200])
    t_last = time.monotonic()
    for v in ("a", "b"):
        st = counters(cl, eids[0], v)
        check(st.get("n") == 40 and st.get("sum") == rates[v], "%s in Redis: %r", v, st)

    def r2_prefers_b():
        n = sum(chat(routers[1].port, eids[0])[1] == "b" for _ in range(20))
        return n >= 19
    check(h.wait_until(r2_prefers_b, 2.0, interval=0.05),
          "router 2 did not follow the shared posterior within 2 s")
    check(time.monotonic() - t_last < 4, "router 2 took %.1f s", time.monotonic() - t_last)

    instances = set()
    for r in routers:  # SO_REUSEPORT spreads connections by hash: ask until both answered
        seen = set()
        for _ in range(200):
            seen.add(health(r.port)["instance"])
            if len(seen) == 2:
                break
        instances |= seen
    check(len(instances) == 4, "4 workers' instances, got %r", instances)
    lease = "sy:{%s}:gate:lease" % eids[1]
    holders = set()
    t_end = time.time() + 2
    while time.time() < t_end:  # the gate ticks every 200 ms: the lease stays with one
        holders.add(cl.at(lease).command("GET", lease))
        time.sleep(0.1)
    # one holder throughout (GET may find none for a moment if a loaded machine delays
    # a renewal past the lease's 3 intervals; never two)
    held = holders - {None}
    check(len(held) == 1 and held <= instances, "lease holders %r (instances %r)", holders,
          instances)
    check(cl.at("sy:{%s}:gate:lease" % eids[0]).command("GET", "sy:{%s}:gate:lease" % eids[0])
          is None, "an experiment without a gate has a lease")


@h.timeout(60)
def test_cli_and_startup_errors(env):
    cl = Cluster(env)
    mock = env.mock()
    eids = spread_ids(cl, 2)
    exps = [experiment(e, outcome=BINARY) for e in eids]
    cfg = config(env, mock, cl, exps, "r1")
    admin_port = h.free_port()
    cfg["admin"] = {"listen": "127.0.0.1:%d" % admin_port, "token_env": "SY_CLTEST_ADMIN"}
    r1 = env.router(cfg, name="r1")
    r1.wait_log("redis cluster up", count=2, timeout_s=15)
    for e in eids:
        chat(r1.port, e)
    check(h.wait_until(lambda: all(cl.at("sy:{%s}:meta" % e).hgetall("sy:{%s}:meta" % e)
                                   for e in eids), 10), "meta never written")
    out = subprocess.run([h.SWITCHYARD, "status", "--config", r1.config_path, "--json"],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, "status: %s %s", out.stdout[-500:], out.stderr[-500:])
    got = {x.get("id") for x in json.loads(out.stdout).get("experiments", [])}
    check(set(eids) <= got, "status lists %r, not %r", got, eids)
    out = subprocess.run([h.SWITCHYARD, "pause", eids[1], "--reason", "test", "--config",
                          r1.config_path], capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, "pause: %s %s", out.stdout[-500:], out.stderr[-500:])
    st = cl.at("sy:{%s}:state" % eids[1]).hgetall("sy:{%s}:state" % eids[1])
    check(st.get("status") == "paused", "state after pause: %r", st)
    out = subprocess.run([h.SWITCHYARD, "history", eids[1], "--config", r1.config_path],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 0 and "pause" in out.stdout, "history: %s %s", out.stdout[-500:],
          out.stderr[-500:])
    # the admin API: the list, and a change (rollback of b in the first experiment)
    def admin(method, path, body=None):
        c = h.Client(admin_port)
        try:
            hdrs = {"authorization": "Bearer " + ADMIN_TOKEN}
            if body is not None:
                hdrs["content-type"] = "application/json"
            return c.request(method, path, hdrs, body)
        finally:
            c.close()
    r = admin("GET", "/api/experiments")
    check(r.status == 200, "admin list: %s %r", r.status, r.body[:300])
    got = {x.get("id") for x in json.loads(r.body).get("experiments", [])}
    check(set(eids) <= got, "admin lists %r, not %r", got, eids)
    r = admin("POST", "/api/experiments/%s/rollback" % eids[0], {"variant": "b", "reason": "t"})
    check(r.status == 200, "admin rollback: %s %r", r.status, r.body[:300])
    st = cl.at("sy:{%s}:state" % eids[0]).hgetall("sy:{%s}:state" % eids[0])
    check(st.get("v:b") == "rolled_back", "state after the admin rollback: %r", st)

    # a seed that is not a cluster node: a startup error naming redis.cluster
    port = h.free_port()
    plain2 = h.Process("plain2", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", ""], env.dir)
    env.procs.append(plain2)
    check(h.wait_until(lambda: h.redis_ping(("127.0.0.1", port)), 10), "plain redis")
    bad = config(env, mock, cl, exps, "bad")
    bad["redis"]["cluster"] = ["127.0.0.1:%d" % port]
    rb = env.router(bad, name="bad", wait=False)
    rc = rb.wait(15)
    check(rc is not None and rc != 0, "a router with a non-cluster seed exited %r", rc)
    rb.stop(expect_rc=None)
    check("redis.cluster[0]" in rb.stderr_text() and "not a Redis Cluster node" in
          rb.stderr_text(), "startup error does not name redis.cluster: %s", rb.stderr_tail())


# ---- the warehouse export ----------------------------------------------------------------

def sqlite_rows(path, sql):
    c = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        c.row_factory = sqlite3.Row
        return [dict(r) for r in c.execute(sql)]
    finally:
        c.close()


def run_export(env, cfg, db, *args, expect=0):
    r = subprocess.run([h.SWITCHYARD, "export", "--config", cfg, "--to", "sqlite:" + db]
                       + list(args), capture_output=True, text=True, timeout=60, cwd=env.dir)
    check(r.returncode == expect, "export %r: exit %d (wanted %d): %s %s", args, r.returncode,
          expect, r.stdout, r.stderr[-1500:])
    return r


def export_read(text):
    """(entries read, applied) of export's summary line."""
    line = [l for l in text.splitlines() if l.startswith("export: ")][-1].split()
    return int(line[1]), int(line[4])


@h.timeout(120)
def test_export_cluster_sqlite(env):
    cl = Cluster(env, nodes=3, replicas=0)
    mock = env.mock()
    eids = spread_ids(cl, 2)
    homes = {e: cl.owner("sy:{%s}:events" % e) for e in eids}
    check(len(set(homes.values())) == 2, "experiments' streams on one shard: %r", homes)
    exps = [experiment(e, outcome=BINARY) for e in eids]
    redis = {"cluster": cl.seeds(), "timeout_ms": 2000, "connect_timeout_ms": 500,
             "reconnect_max_ms": 300}
    r = env.router(config(env, mock, cl, exps, "r1", redis=redis), name="r1")
    r.wait_log("redis cluster up", count=2, timeout_s=15)
    served = {e: [] for e in eids}
    for i in range(12):
        for eid in eids:
            served[eid].append(chat(r.port, eid))
    fb, outs = {e: [] for e in eids}, {e: {} for e in eids}
    for eid in eids:
        for j, (tid, _) in enumerate(served[eid][:6]):
            n503 = len(RETRIED)
            check_once(api_retry(r.port, "feedback", {"trace_id": tid, "type": "thumbs",
                                                      "value": 1}), n503)
            fb[eid].append(tid)
            if j % 2 == 0:
                n503 = len(RETRIED)
                check_once(api_retry(r.port, "outcome", {"trace_id": tid, "metric": "resolved",
                                                         "value": j % 4 // 2}), n503)
                outs[eid][tid] = float(j % 4 // 2)
    check(settled(cl, [r], served), "journals did not drain")
    check(h.wait_until(lambda: all(len(events(cl, e)) == len(served[e]) + len(fb[e]) +
                                   len(outs[e]) for e in eids), 10),
          "events: %r", {e: len(events(cl, e)) for e in eids})
    # the refs are per experiment, on its shard: there is no global sy:refs to fall back on
    check(cl.at("sy:refs").command("EXISTS", "sy:refs") == 0, "a global sy:refs exists")
    for e in eids:
        check(cl.at("sy:{%s}:refs" % e).command("HLEN", "sy:{%s}:refs" % e) > 0, "no refs: %s", e)
    xlen = {e: cl.at("sy:{%s}:events" % e).command("XLEN", "sy:{%s}:events" % e) for e in eids}
    total = sum(xlen.values())
    db = env.path("wh.db")

    def check_rows(served):
        n = sqlite_rows(db, "SELECT count(*) AS n FROM events")[0]["n"]
        want = sum(len(served[e]) + len(fb[e]) + len(outs[e]) for e in eids)
        check(n == want, "events rows %d, wanted %d", n, want)
        for eid in eids:
            rows = {x["trace_id"]: x for x in
                    sqlite_rows(db, "SELECT * FROM trace WHERE experiment = '%s'" % eid)}
            check(set(rows) == {t for t, _ in served[eid]}, "%s: %d trace rows for %d served",
                  eid, len(rows), len(served[eid]))
            for tid, v in served[eid]:
                x = rows[tid]
                check(x["variant"] == v and x["variant_version"] is not None
                      and x["model_id"] == "model-" + v, "%s row of %s: %r", eid, tid, x)
                # entry ids repeat across shards: the stream qualifies the event's id
                check(x["request_event_id"].startswith("sy:{%s}:events/" % eid),
                      "request_event_id %r", x["request_event_id"])
                check(int(x["feedback_n"] or 0) == (1 if tid in fb[eid] else 0),
                      "feedback of %s: %r", tid, x)
                if tid in outs[eid]:
                    check(x["outcome_metric"] == "resolved"
                          and float(x["outcome_value"]) == outs[eid][tid], "outcome: %r", x)
                else:
                    check(x["outcome_value"] is None, "outcome without one sent: %r", x)
        nulls = sqlite_rows(db, "SELECT count(*) AS n FROM trace WHERE experiment IS NULL "
                                "OR variant IS NULL")[0]["n"]
        check(nulls == 0, "%d trace rows without experiment/variant (refs not resolved)", nulls)

    def pending():
        out = {}
        for e in eids:
            g = cl.at("sy:{%s}:events" % e).command("XINFO", "GROUPS", "sy:{%s}:events" % e)
            d = dict(zip(g[0][0::2], g[0][1::2]))
            out[e] = (d["pending"], d["last-delivered-id"])
        return out

    out = run_export(env, r.config_path, db, "--once")
    check(export_read(out.stdout) == (total, total), "summary %r, XLEN %r", out.stdout, xlen)
    check("2 connection(s)" in out.stderr, "not one connection per stream: %s", out.stderr)
    check_rows(served)
    check(all(p == 0 for p, _ in pending().values()), "left pending: %r", pending())
    # again: nothing read, nothing doubled
    out = run_export(env, r.config_path, db, "--once")
    check(export_read(out.stdout) == (0, 0), "second run: %s", out.stdout)
    check_rows(served)
    # --follow: traffic after the start lands, SIGTERM stops it cleanly, nothing pending
    fout = open(env.path("follow.stdout"), "wb")
    p = h.Process("follow", [h.SWITCHYARD, "export", "--config", r.config_path, "--to",
                             "sqlite:" + db, "--follow", "--lag-every", "1"], env.dir, stdout=fout)
    env.procs.append(p)
    check(h.wait_until(lambda: all("lag stream=sy:{%s}:events" % e in p.stderr_text()
                                   for e in eids), 10), "no lag lines: %s", p.stderr_tail())
    for i in range(5):
        for eid in eids:
            served[eid].append(chat(r.port, eid))
    check(h.wait_until(lambda: sqlite_rows(db, "SELECT count(*) AS n FROM trace")[0]["n"] ==
                       sum(len(v) for v in served.values()), 15, 0.05),
          "--follow did not export the new traffic: %s", p.stderr_tail())
    p.signal(signal.SIGTERM)
    rc = p.wait(10)
    fout.close()
    p.stop()
    check(rc == 0, "export --follow exited %r after SIGTERM: %s", rc, p.stderr_tail())
    check_rows(served)
    check(all(n == 0 for n, _ in pending().values()), "left pending after SIGTERM: %r",
          pending())
    out = run_export(env, r.config_path, db, "--once")
    check(export_read(out.stdout) == (0, 0), "after --follow: %s", out.stdout)
    # a --stream that is not an experiment's stream is refused, naming the flag
    bad = run_export(env, r.config_path, db, "--once", "--stream", "sy:events", expect=1)
    check("--stream sy:events" in bad.stderr and "sy:{E}:events" in bad.stderr,
          "bad --stream: %s", bad.stderr)
    r.stop()


@h.timeout(90)
def test_export_cluster_sigkill(env):
    cl = Cluster(env, nodes=3, replicas=0)
    eids = spread_ids(cl, 2)
    n = 5000
    fill = os.environ.get("SY_EXPORT_FILL") or os.path.join(h.ROOT, "build", "bench",
                                                             "export-fill")
    total = {}
    for k, eid in enumerate(eids):  # seeds apart: distinct trace and event ids
        port = cl.owner("sy:{%s}:events" % eid)
        r = subprocess.run([fill, "--redis", "redis://127.0.0.1:%d" % port, "-n", str(n),
                            "--stream", "sy:{%s}:events" % eid, "--refs", "sy:{%s}:refs" % eid,
                            "--experiment", eid, "--seed", str(k + 1)],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "export-fill: %s", r.stderr)
        total[eid] = int(dict(l.split("=") for l in r.stdout.split())["filled_events"])
    cfg = env.path("export.yaml")
    h.write_file(cfg, h.to_yaml(h.router_config(
        "127.0.0.1:1", experiments=[experiment(e) for e in eids], data_dir=env.path("data"),
        redis={"cluster": cl.seeds(), "timeout_ms": 2000})))
    db = env.path("wh.db")

    def rows():
        if not os.path.exists(db):
            return 0
        try:
            return sqlite_rows(db, "SELECT count(*) AS n FROM events")[0]["n"]
        except sqlite3.OperationalError:  # the table not created yet
            return 0
    out = open(env.path("kill.stdout"), "wb")
    p = h.Process("kill", [h.SWITCHYARD, "export", "--config", cfg, "--to", "sqlite:" + db,
                           "--once", "--batch", "200"], env.dir, stdout=out)
    env.procs.append(p)
    got = h.wait_until(lambda: not p.alive() or rows() > 1500, 30, interval=0.01)
    check(got and p.alive(), "export ended before it could be killed: %s", p.stderr_tail())
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    p.stopped = True
    out.close()
    at_kill = rows()
    pend = {}
    for eid in eids:
        g = cl.at("sy:{%s}:events" % eid).command("XINFO", "GROUPS", "sy:{%s}:events" % eid)
        pend[eid] = dict(zip(g[0][0::2], g[0][1::2]))["pending"]
    check(at_kill < sum(total.values()) and sum(pend.values()) > 0,
          "the kill did not land mid-export: %d rows of %d, pending %r", at_kill,
          sum(total.values()), pend)
    r = run_export(env, cfg, db, "--once", "--batch", "200")
    read, applied = export_read(r.stdout)
    check(applied == sum(total.values()) - at_kill, "resume applied %d, %d rows were in of %d",
          applied, at_kill, sum(total.values()))
    check(rows() == sum(total.values()), "events rows %d, entries %d", rows(),
          sum(total.values()))
    for k, eid in enumerate(eids):
        t = sqlite_rows(db, "SELECT count(*) AS n, sum(feedback_n) AS fb, max(feedback_n) AS m, "
                            "count(outcome_value) AS o, count(variant) AS v FROM trace "
                            "WHERE experiment = '%s'" % eid)[0]
        check(t == {"n": n, "fb": (n + 3) // 4, "m": 1, "o": (n + 4) // 5, "v": n},
              "%s after the kill: %r", eid, t)
        e = sqlite_rows(db, "SELECT count(*) AS n FROM events WHERE stream = 'sy:{%s}:events'"
                        % eid)[0]["n"]
        check(e == total[eid], "%s: %d events rows for %d entries", eid, e, total[eid])
    print("export on 2 shards SIGKILLed at %d of %d rows (pending %r); resume read %d, "
          "applied %d" % (at_kill, sum(total.values()), pend, read, applied))


if __name__ == "__main__":
    sys.exit(h.run(globals()))
