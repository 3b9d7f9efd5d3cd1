#!/usr/bin/env python3
"""test_redis_faults.py — Redis misbehaves while clients keep sending requests.

- Redis stalls (SIGSTOP for 10 s, then SIGCONT): the per-command timeouts fire and the
  link reconnects; no client request fails; the router's memory stays bounded (events
  beyond the small memory queue go to the spool); after Redis resumes the stream
  holds exactly one event per response served.
- Redis refuses writes (maxmemory with noeviction, full): the journal's batches are
  refused with OOM, the events go to the spool and are counted, nothing crashes, no
  client request fails; once Redis has room again they arrive, exactly once.

(Redis killed with SIGKILL and restarted is test_redis_outage.py.)
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402
from test_redis_outage import health, redis_cli, start_redis  # noqa: E402
from harness import Load  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise h.Failure("no VmRSS for pid %d" % pid)


def drained(port):
    hj = health(port)
    j = hj.get("journal", {})
    ok = hj["redis"] == "up" and j.get("queued_events") == 0 and j.get("spool_bytes") == 0
    return hj if ok else None


def check_exactly_once(sock, served, hj):
    n = int(redis_cli(sock, "XLEN", "sy:events"))
    check(n == served, "stream holds %d events for %d responses served (journal %r)", n, served,
          hj["journal"])
    check(hj["journal"]["dropped"] == 0, "events dropped: %r", hj["journal"])


@h.timeout(90)
def test_redis_stalls(env):
    mock = env.mock()
    sock = env.path("r.sock")
    redis = start_redis(env, env.path("redis-data"), sock, "redis")
    cfg = h.router_config(mock.addr, redis={"url": "unix://" + sock, "timeout_ms": 500},
                          events={"queue_bytes": 65536, "flush_ms": 5})
    router = env.router(cfg)
    check(h.wait_until(lambda: health(router.port)["redis"] == "up", 5), "redis not up")
    with Load(router.port) as load:
        time.sleep(2)
        rss0 = rss_kib(router.pid)
        before = health(router.port)
        redis.signal(signal.SIGSTOP)
        time.sleep(10)
        during = health(router.port)
        rss1 = rss_kib(router.pid)
        redis.signal(signal.SIGCONT)
        time.sleep(3)
    served = load.ok
    check(not load.failed, "%d failed requests: %r", len(load.failed), load.failed[:5])
    check(during["redis_timeouts"] > before["redis_timeouts"],
          "no command timed out while Redis was stopped: %r", during)
    check(during["journal"]["spooled"] > 0, "nothing spooled during the stall: %r",
          during["journal"])
    check(during["journal"]["queued_bytes"] <= 65536 + 65536,
          "the memory queue passed its bound: %r", during["journal"])
    # (Under ASan freed memory sits in its quarantine, so RSS says nothing there; the
    # queue bound above holds in both builds.)
    check(h.sanitized(router.pid) or rss1 - rss0 < 32 * 1024,
          "RSS grew %d KiB during the stall (%d -> %d)", rss1 - rss0, rss0, rss1)
    hj = h.wait_until(lambda: drained(router.port), 20)
    check(hj, "the journal did not drain after SIGCONT: %r", health(router.port))
    check_exactly_once(sock, served, hj)
    print("  stall: %d served, 0 failed; %d command timeouts; RSS %d -> %d KiB; journal %r"
          % (served, during["redis_timeouts"] - before["redis_timeouts"], rss0, rss1,
             hj["journal"]), flush=True)


@h.timeout(90)
def test_redis_refuses_writes(env):
    mock = env.mock()
    sock = env.path("r.sock")
    start_redis(env, env.path("redis-data"), sock, "redis")
    cfg = h.router_config(mock.addr, redis={"url": "unix://" + sock, "timeout_ms": 500},
                          events={"queue_bytes": 65536, "flush_ms": 5})
    router = env.router(cfg)
    check(h.wait_until(lambda: health(router.port)["redis"] == "up", 5), "redis not up")
    # Full: a filler key, then a limit below what Redis already uses.
    redis_cli(sock, "EVAL", "redis.call('SET', KEYS[1], string.rep('x', 1000000))", 1, "filler")
    info = dict(l.split(":", 1) for l in redis_cli(sock, "INFO", "memory").splitlines()
                if ":" in l)
    used = int(info["used_memory"])
    check(used > 1000000, "used memory %d", used)
    check(redis_cli(sock, "CONFIG", "SET", "maxmemory-policy", "noeviction") == "OK", "policy")
    check(redis_cli(sock, "CONFIG", "SET", "maxmemory", str(used // 2)) == "OK", "maxmemory")
    check("OOM" in redis_cli(sock, "SET", "probe", "1"), "Redis still takes writes")
    with Load(router.port) as load:
        ok = h.wait_until(lambda: health(router.port)["journal"]["spooled"] > 0, 10)
        time.sleep(2)
        during = health(router.port)
        check(router.alive(), "the router died")
        redis_cli(sock, "CONFIG", "SET", "maxmemory", "0")
        time.sleep(2)
    served = load.ok
    check(ok, "nothing spooled while Redis refused writes: %r", during)
    check(not load.failed, "%d failed requests: %r", len(load.failed), load.failed[:5])
    check(router.wait_log("OOM", timeout_s=1), "the refusal is not in the log")
    hj = h.wait_until(lambda: drained(router.port), 20)
    check(hj, "the journal did not drain once Redis had room: %r", health(router.port))
    check_exactly_once(sock, served, hj)
    print("  refused writes: %d served, 0 failed; spooled %d while full; journal %r"
          % (served, during["journal"]["spooled"], hj["journal"]), flush=True)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
