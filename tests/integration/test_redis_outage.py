"""test_redis_outage.py — no request fails and no event is lost when Redis goes away.

Redis (a real redis-server with its append-only file on) is killed with SIGKILL while
clients keep sending requests, and started again 10 s later on the same data. Every
request must succeed meanwhile; events wait in the router's memory queue and, beyond
its (deliberately small) bound, in the spool file; after the restart they are replayed,
and the stream must then hold exactly one request event per response served — no
loss, no duplicates (a batch whose reply was lost in the kill is sent again and Redis
recognises it).
"""

import json
import os
import signal
import sys
import subprocess
import threading
import time

import harness as h
from harness import check


def redis_cli(sock, *args):
    out = subprocess.run(["redis-cli", "-s", sock] + [str(a) for a in args],
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def start_redis(env, datadir, sock, name):
    """redis-server on a unix socket with AOF on; waits until it answers PING."""
    os.makedirs(datadir, exist_ok=True)
    p = h.Process(name, ["redis-server", "--port", "0", "--unixsocket", sock,
                         "--unixsocketperm", "700", "--dir", datadir, "--appendonly", "yes",
                         "--appendfsync", "everysec", "--save", ""], env.dir)
    env.procs.append(p)
    ok = h.wait_until(lambda: redis_cli(sock, "PING") == "PONG", 10)
    check(ok, "redis-server did not start: %s", p.stderr_tail())
    return p


def health(port):
    c = h.Client(port)
    try:
        return c.request("GET", "/switchyard/v1/health", {}).json()
    finally:
        c.close()


@h.timeout(90)
def test_sigkill_redis_under_load(env):
    mock = env.mock()
    datadir = env.path("redis-data")
    sock = env.path("r.sock")
    redis = start_redis(env, datadir, sock, "redis1")
    cfg = h.router_config(mock.addr,
                          redis={"url": "unix://" + sock, "timeout_ms": 500},
                          events={"queue_bytes": 65536, "flush_ms": 5})
    router = env.router(cfg)
    check(h.wait_until(lambda: health(router.port)["redis"] == "up", 5), "redis not up")

    with h.Load(router.port) as load:
        time.sleep(2)
        served_before_kill = load.ok
        redis.signal(signal.SIGKILL)
        redis.proc.wait(5)
        time.sleep(10)
        during = health(router.port)
        redis = start_redis(env, datadir, sock, "redis2")
        time.sleep(3)
    served = load.ok
    check(not load.failed, "%d failed requests: %r", len(load.failed), load.failed[:5])
    check(served > served_before_kill + 100, "load did not continue through the outage: %d, %d",
          served_before_kill, served)
    j = during["journal"]
    check(during["redis"] == "down", "health during the outage: %r", during)
    check(j["spooled"] > 0, "nothing went to the spool during a 10 s outage: %r", j)

    def drained():
        hj = health(router.port)
        return hj["redis"] == "up" and hj["journal"]["queued_events"] == 0 and \
            hj["journal"]["spool_bytes"] == 0 and hj
    hj = h.wait_until(drained, 20)
    check(hj, "the journal did not drain after Redis came back: %r", health(router.port))
    check(hj["journal"]["dropped"] == 0, "events dropped: %r", hj["journal"])
    check(hj["journal"]["replayed"] > 0, "nothing replayed from the spool: %r", hj["journal"])

    # Exactly one request event per response served.
    n = int(redis_cli(sock, "XLEN", "sy:events"))
    print("  outage: %d responses served (%d during the 10 s outage), 0 failed; journal %s; "
          "stream length %d" % (served, served - served_before_kill, json.dumps(hj["journal"]), n),
          flush=True)
    check(n == served, "stream holds %d events for %d responses served", n, served)
    ids = redis_cli(sock, "EVAL",
                    "local ids = {} local n = 0 "
                    "for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do "
                    "  local f = e[2] for i = 1, #f, 2 do "
                    "    local id = f[i] == 'event_id' and f[i+1] "
                    "      or f[i] == 'e' and (string.match(f[i+1], '^5|.|([^|]+)|') or e[1]) "
                    "    if id and not ids[id] then ids[id] = 1 n = n + 1 end "
                    "  end end return n", 1, "sy:events")
    check(int(ids) == served, "%s distinct event ids for %d responses", ids, served)
    # The per-variant counters agree with the stream.
    total = sum(float(redis_cli(sock, "HGET", "sy:{chat}:v:%s" % v, "requests") or 0)
                for v in ("a", "b"))
    check(int(total) == served, "requests counters sum to %s for %d responses", total, served)


@h.timeout(60)
def test_spool_survives_a_router_restart(env):
    """Events still waiting when the router stops go to the spool file; the next
    router on the same data_dir replays them."""
    mock = env.mock()
    datadir = env.path("redis-data")
    sock = env.path("r.sock")
    cfg = h.router_config(mock.addr, data_dir=env.path("sy-data"),
                          redis={"url": "unix://" + sock, "timeout_ms": 500})
    router = env.router(cfg)  # Redis is not there yet: everything waits
    for i in range(50):
        r = h.post_chat(router.port, {"x-user-id": "u%d" % i})
        check(r.status == 200, "request %d without Redis: %s", i, r.status)
    router.stop()
    check(any("kept in" in str(l.get("msg")) for l in router.logs()),
          "no spool message at shutdown: %s", router.stderr_tail())
    spool = os.listdir(env.path("sy-data/spool"))
    check(len(spool) == 1, "spool files %r", spool)

    start_redis(env, datadir, sock, "redis")
    router2 = env.router(dict(cfg, listen=["127.0.0.1:%d" % h.free_port()]), name="switchyard2")
    check(h.wait_until(lambda: redis_cli(sock, "XLEN", "sy:events") == "50", 10),
          "stream holds %s events, wanted 50", redis_cli(sock, "XLEN", "sy:events"))
    check(h.wait_until(lambda: health(router2.port)["journal"]["replayed"] == 50, 5),
          "replayed: %r", health(router2.port))
    check(os.listdir(env.path("sy-data/spool")) != spool, "the old spool file is still there")


if __name__ == "__main__":
    sys.exit(h.run(globals()))
