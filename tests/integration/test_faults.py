#!/usr/bin/env python3
"""test_faults.py — the fault-injection suite (real processes on loopback): what the
router does when an upstream, a shadow backend, Redis or the clients misbehave. Each
test names the fault and what must hold.

(Redis killed and restarted is test_redis_outage.py; a reset mid-SSE, a slow upstream,
a client gone mid-stream and smuggling attempts are in test_errors.py and
test_streaming.py; a dead shadow backend is in test_shadow.py.)
"""
import os
import resource
import socket
import subprocess
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
    # Answers are not retried here (retry.on without statuses): the clients must see
    # the 503s that lead to the ejection (test_retry.py covers retrying them).
    cfg["upstreams"]["mock"] = {"servers": [good.addr, bad.addr], "eject_after": 3,
                                "eject_ms": 1500, "retry": {"on": ["connect", "reset"]}}
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
                                "eject_ms": 5000, "retry": {"on": ["connect", "reset"]}}
    r = env.router(cfg)
    statuses = serve_n(r.port, 30)
    check(statuses == [503] * 30, "statuses %r", statuses)
    na, nb = a.stats()["requests"], b.stats()["requests"]
    check(na + nb == 30 and min(na, nb) >= 2, "requests a=%d b=%d", na, nb)
    check(r.wait_log("not ejected"), "no log line about the ejection cap")


@h.timeout(60)
def test_upstream_reset_mid_sse_records_partial_usage(env):
    """Fault: the upstream resets the connection after the third chunk of a stream.
    Must hold: the client sees an aborted stream (no terminating chunk, connection
    closed), the request is not retried once bytes were sent, and the request event
    records what did arrive (output_chunks) and the failure."""
    redis = h.redis_server(env)
    mock = env.mock()
    cfg = h.router_config(mock.addr, redis={"url": redis.url}, events={"flush_ms": 5})
    r = env.router(cfg)
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    c = h.Client(r.port)
    resp = c.request("POST", "/v1/chat/completions",
                     {"x-mock-chunks": "6", "x-mock-interval-ms": "20",
                      "x-mock-reset-after": "3"}, h.chat_body(stream=True), allow_abort=True)
    c.close()
    check(resp.status == 200 and not resp.complete, "status %s, complete %s", resp.status,
          resp.complete)
    got = [e for e in resp.sse_events() if e.startswith("{")]
    check(0 < len(got) <= 3 and "[DONE]" not in resp.sse_events(), "events %r", got)
    tid = resp.header("x-switchyard-trace-id")
    st = mock.stats()
    check(st["requests"] == 1 and st["resets"] == 1, "retried or not reset: %r", st)

    def request_event():
        evs = [f for _, f in rc.stream("sy:events")
               if f.get("trace_id") == tid and f.get("event_type") == "request"]
        return evs[0] if evs else None
    ev = h.wait_until(request_event, 5)
    check(ev is not None, "no request event for the cut stream")
    check(ev.get("output_chunks") == str(len(got)), "output_chunks %r, the client got %d",
          ev.get("output_chunks"), len(got))
    check("output_tokens" not in ev, "usage recorded for a stream cut before its usage: %r", ev)
    check(ev.get("status") == "200", "status %r", ev.get("status"))
    errors = rc.command("HGET", "sy:{chat}:v:%s" % resp.header("x-switchyard-variant"), "errors")
    check(errors is not None and float(errors) == 1, "the cut stream is not counted as an "
          "error: %r", errors)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@h.timeout(60)
def test_slow_upstream_504_frees_the_socket(env):
    """Fault: the upstream's first byte comes after first_byte_timeout_ms. Must hold:
    504, and the upstream connection is closed, not pooled (the router's descriptors
    and the upstream's open connections go back to where they were)."""
    mock = env.mock()
    cfg = h.router_config(mock.addr, redis={"enabled": False})
    cfg["upstreams"]["mock"]["first_byte_timeout_ms"] = 300
    r = env.router(cfg)
    check(h.post_chat(r.port).status == 200, "warm-up")
    time.sleep(0.2)
    fds0, open0 = fd_count(r.pid), mock.stats()["connections_open"]
    for _ in range(5):
        resp = h.post_chat(r.port, {"x-mock-latency-ms": "1500"})
        h.check_error_body(resp, 504, "upstream_timeout")
    ok = h.wait_until(lambda: fd_count(r.pid) <= fds0 and
                      mock.stats()["connections_open"] <= open0, 3)
    check(ok, "after 5 timeouts: router fds %d (was %d), upstream connections open %d (was %d)",
          fd_count(r.pid), fds0, mock.stats()["connections_open"], open0)


@h.timeout(60)
def test_client_gone_mid_stream_closes_the_upstream(env):
    """Fault: clients close (FIN, or RST) in the middle of a stream. Must hold: the
    upstream connection is closed promptly (the time it took is printed) and the
    router's descriptors go back to their baseline."""
    mock = env.mock()
    r = env.router(h.router_config(mock.addr, redis={"enabled": False}))
    check(h.post_chat(r.port).status == 200, "warm-up")
    time.sleep(0.2)
    fds0, open0 = fd_count(r.pid), mock.stats()["connections_open"]
    took = []
    for how in ("close", "rst") * 3:
        c = h.Client(r.port)
        c.send(h.build_request("POST", "/v1/chat/completions",
                               {"x-mock-chunks": "200", "x-mock-interval-ms": "50"},
                               h.chat_body(stream=True)))
        while b"tok1 " not in c.buf:
            check(c.recv_once(), "stream ended early")
        t0 = time.monotonic()
        c.abort() if how == "rst" else c.close()
        ok = h.wait_until(lambda: mock.stats()["connections_open"] <= open0, 1.5, interval=0.005)
        took.append(time.monotonic() - t0)
        check(ok, "client %s: upstream still open after 1.5 s", how)
    print("  upstream closed %.1f-%.1f ms after the client left" %
          (min(took) * 1000, max(took) * 1000), flush=True)
    check(h.wait_until(lambda: fd_count(r.pid) <= fds0, 2), "router fds %d, baseline %d",
          fd_count(r.pid), fds0)


# ---- smuggling and malformed framing ----------------------------------------------

_P = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
_B = b'{"model":"m","messages":[]}'
SMUGGLING = {
    "CL and TE": _P + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "TE and CL": _P + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    "duplicate CL, same": _P + b"Content-Length: 27\r\nContent-Length: 27\r\n\r\n" + _B,
    "duplicate CL, different": _P + b"Content-Length: 27\r\nContent-Length: 28\r\n\r\n" + _B,
    "CL list": _P + b"Content-Length: 27, 27\r\n\r\n" + _B,
    "CL with sign": _P + b"Content-Length: +27\r\n\r\n" + _B,
    "CL negative": _P + b"Content-Length: -1\r\n\r\n",
    "space before colon": _P + b"Content-Length : 27\r\n\r\n" + _B,
    "obs-fold": _P + b"X-A: a\r\n b\r\nContent-Length: 27\r\n\r\n" + _B,
    "bad chunk size": _P + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk size overflow": _P + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhi\r\n"
                           b"0\r\n\r\n",
    "control byte in chunk extension": _P + b"Transfer-Encoding: chunked\r\n\r\n1b;\x01\r\n" + _B +
                                       b"\r\n0\r\n\r\n",
    "chunk lines with bare LF": _P + b"Transfer-Encoding: chunked\r\n\r\n1b\n" + _B + b"\n0\n\n",
    "TE identity": _P + b"Transfer-Encoding: identity\r\nContent-Length: 27\r\n\r\n" + _B,
    "TE chunked, identity": _P + b"Transfer-Encoding: chunked, identity\r\n\r\n1b\r\n" + _B +
                            b"\r\n0\r\n\r\n",
    "TE xchunked": _P + b"Transfer-Encoding: xchunked\r\n\r\n1b\r\n" + _B + b"\r\n0\r\n\r\n",
    "TE twice": _P + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n1b\r\n" +
                _B + b"\r\n0\r\n\r\n",
    "bare LF line ends": b"POST /v1/chat/completions HTTP/1.1\nHost: x\nContent-Length: 27\n\n" + _B,
    "NUL in a header": _P + b"X-A: a\x00b\r\nContent-Length: 27\r\n\r\n" + _B,
    "CR in a header": _P + b"X-A: a\rb\r\nContent-Length: 27\r\n\r\n" + _B,
    "HTTP/1.2": b"POST /v1/chat/completions HTTP/1.2\r\nHost: x\r\nContent-Length: 27\r\n\r\n" + _B,
}


def read_until_closed(sock, timeout_s=3):
    """Everything the server sends until it closes; raises if it keeps the connection."""
    sock.settimeout(timeout_s)
    data = b""
    while True:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            raise h.Failure("the connection was kept open after %r" % data[:40])
        except ConnectionResetError:
            return data
        if not d:
            return data
        data += d


@h.timeout(60)
def test_smuggling_and_malformed_framing_refused(env):
    """Fault: requests whose framing two parsers could read differently. Must hold:
    each gets 400 and its connection is closed; none reaches the upstream; a request
    sent behind it on the same connection is never answered."""
    mock = env.mock()
    r = env.router(h.router_config(mock.addr))
    follow = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    for name, raw in SMUGGLING.items():
        s = socket.create_connection(("127.0.0.1", r.port))
        try:
            s.sendall(raw + follow)
            data = read_until_closed(s)
        finally:
            s.close()
        check(data.startswith(b"HTTP/1.1 400 "), "%s: got %r", name, data[:60])
        check(data.count(b"HTTP/1.1 ") == 1, "%s: more than one response: %r", name, data)
    check(mock.stats()["requests"] == 0, "a malformed request reached the upstream: %r",
          mock.stats())
    check(h.post_chat(r.port).status == 200, "the router no longer serves")


# ---- resource exhaustion ------------------------------------------------------------

def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@h.timeout(90)
def test_slowloris_does_not_starve_others(env):
    """Fault: 1,000 connections that send a request head one byte at a time. Must hold:
    other clients are still served meanwhile, and the slow ones are cut by the header
    timeout (408) rather than held forever."""
    raise_nofile(4096)  # for this process and the router it starts
    mock = env.mock()
    cfg = h.router_config(mock.addr, limits={"header_timeout_ms": 4000})
    r = env.router(cfg)
    slow = []
    try:
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", r.port))
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(s)
        for _ in range(3):
            for s in slow:
                try:
                    s.send(b"a")
                except OSError:
                    pass
            statuses = [h.post_chat(r.port).status for _ in range(10)]
            check(statuses == [200] * 10, "others while 1,000 trickle: %r", statuses)
            time.sleep(0.5)
        # The header timeout closes them.
        deadline = time.monotonic() + 10
        cut = 0
        for s in slow:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = s.recv(4096)
            except (socket.timeout, OSError):
                continue
            cut += data.startswith(b"HTTP/1.1 408") or data == b""
        check(cut >= 990, "only %d of 1,000 slow connections were cut by the header timeout", cut)
    finally:
        for s in slow:
            s.close()
    check(h.post_chat(r.port).status == 200, "the router no longer serves")


@h.timeout(90)
def test_fd_exhaustion_recovers(env):
    """Fault: a low file descriptor limit (ulimit -n 64) and more connections than it
    allows. Must hold: the connections over the cap get a 503 and are closed (no
    busy loop, no crash, logged), and the router serves again once the load drops."""
    mock = env.mock()
    cfg = h.router_config(mock.addr, redis={"enabled": False})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))  # the router inherits it
    try:
        r = env.router(cfg)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    raise_nofile(4096)
    check(h.post_chat(r.port).status == 200, "not serving before the fault")
    held, refused = [], 0
    try:
        for _ in range(120):
            s = socket.create_connection(("127.0.0.1", r.port), timeout=2)
            held.append(s)
        time.sleep(0.5)
        for s in held:
            s.setblocking(False)
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                refused += 1
                continue
            refused += data.startswith(b"HTTP/1.1 503") or data == b""
        c0 = cpu_seconds(r.pid)
        time.sleep(2.0)
        used = cpu_seconds(r.pid) - c0
        check(used < 0.5, "the router used %.2f s of CPU in 2 s holding its connections: a "
              "busy loop", used)
        check(r.alive(), "the router died when its file descriptors ran out")
        check(refused >= 60, "only %d of 120 connections over a 64-descriptor limit were "
              "refused", refused)
    finally:
        for s in held:
            s.close()
    ok = h.wait_until(lambda: h.post_chat(r.port).status == 200, 10, interval=0.2)
    check(ok, "the router does not serve again after the connections closed")
    check(r.wait_log("connection limit reached", timeout_s=1), "the cap is not in the log")


if __name__ == "__main__":
    sys.exit(h.run(globals()))
