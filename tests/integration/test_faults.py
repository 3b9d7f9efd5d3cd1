#!/usr/bin/env python3
"""test_faults.py — the fault-injection suite (real processes on loopback): what the
router does when an upstream, a shadow backend, Redis or the clients misbehave. Each
test names the fault and what must hold.

(Redis killed and restarted is test_redis_outage.py; a reset mid-SSE, a slow upstream,
a client gone mid-stream and smuggling attempts are in test_errors.py and
test_streaming.py; a dead shadow backend is in test_shadow.py.)
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


def serve_n(port, n):
    """n requests on fresh connections; the statuses in order."""
    out = []
    for _ in range(n):
        r = h.post_chat(port)
        out.append(r.status)
    return out


@h.timeout(60)
def test_upstream_5xx_burst_ejects_and_readmits(env):
    """Fault: one server of two answers 503 to everything. Must hold: after
    eject_after failures in a row it gets no traffic (clients see only those few
    503s); once it is healthy again it is readmitted after eject_ms."""
    good = env.mock(name="good")
    bad = env.mock("--error-rate", "1", "--error-status", "503", name="bad")
    cfg = h.router_config(good.addr)
    cfg["upstreams"]["mock"] = {"servers": [good.addr, bad.addr], "eject_after": 3,
                                "eject_ms": 1500}
    r = env.router(cfg)
    statuses = serve_n(r.port, 40)
    fails = statuses.count(503)
    check(fails == 3, "clients saw %d 503s (want exactly eject_after = 3): %r", fails, statuses)
    check(statuses[-20:] == [200] * 20, "still failing after the ejection: %r", statuses)
    check(r.wait_log(r"server 127\.0\.0\.1:%d ejected for 1500 ms" % bad.port),
          "no ejection in the log")
    bad_seen = bad.stats()["requests"]
    # The bad server heals (same port, a healthy mock); after eject_ms it is back.
    port = bad.port
    bad.stop()
    healed = env.mock("--port", str(port), name="healed")
    check(healed.port == port, "the healed mock is on %d, not %d", healed.port, port)
    time.sleep(1.7)
    statuses = serve_n(r.port, 20)
    check(statuses == [200] * 20, "after healing: %r", statuses)
    got = healed.stats()["requests"]
    check(got >= 5, "the healed server got %d of 20 requests after eject_ms: not readmitted "
          "(the bad one had %d)", got, bad_seen)


@h.timeout(60)
def test_ejection_never_empties_the_pool(env):
    """Fault: every server answers 503. Must hold: at most eject_max_percent of them
    are ejected, so traffic still flows (as 503s the client can see) and the log
    says why the rest stay in."""
    a = env.mock("--error-rate", "1", "--error-status", "503", name="a")
    b = env.mock("--error-rate", "1", "--error-status", "503", name="b")
    cfg = h.router_config(a.addr)
    cfg["upstreams"]["mock"] = {"servers": [a.addr, b.addr], "eject_after": 2,
                                "eject_ms": 5000}
    r = env.router(cfg)
    statuses = serve_n(r.port, 30)
    check(statuses == [503] * 30, "statuses %r", statuses)
    na, nb = a.stats()["requests"], b.stats()["requests"]
    check(na + nb == 30 and min(na, nb) >= 2, "requests a=%d b=%d", na, nb)
    check(r.wait_log("not ejected"), "no log line about the ejection cap")


if __name__ == "__main__":
    sys.exit(h.run(globals()))
