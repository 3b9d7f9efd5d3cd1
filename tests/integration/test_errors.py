#!/usr/bin/env python3
"""test_errors.py — switchyard's error answers: 413 (Content-Length and chunked bodies
over limits.max_body_bytes), 431 (head over limits.max_header_bytes), 408 (request not
complete within limits.header_timeout_ms), silent close of idle keep-alive clients,
502 (nothing listening upstream, an upstream that closes or answers garbage), 504
(no first byte within first_byte_timeout_ms), 400 for a malformed request (connection
closed) and for an invalid JSON body on a rewriting route. Every error body is an
OpenAI-style {"error": {"message", "type", "code"}}, and the proxy keeps serving.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

MAX_BODY = 1024
MAX_HEAD = 2048


def exp(eid, path, upstream):
    return {"id": eid, "match": {"path_prefix": path}, "control": "v",
            "variants": [{"id": "v", "upstream": upstream}]}


def start(env, mock_upstream=None, **limits):
    mock = env.mock()
    garbage = env.fake_upstream("garbage")
    closing = env.fake_upstream("close")
    lim = {"max_body_bytes": MAX_BODY, "max_header_bytes": MAX_HEAD,
           "header_timeout_ms": 500, "idle_timeout_ms": 800}
    lim.update(limits)
    cfg = h.router_config(mock.addr, limits=lim)
    cfg["upstreams"] = {
        "mock": dict({"servers": [mock.addr], "first_byte_timeout_ms": 300},
                     **(mock_upstream or {})),
        "dead": {"servers": ["127.0.0.1:%d" % h.free_port()], "connect_timeout_ms": 500},
        "garbage": {"servers": [garbage.addr]},
        "closing": {"servers": [closing.addr]},
    }
    cfg["experiments"] += [exp("dead", "/v1/dead", "dead"),
                           exp("garbage", "/v1/garbage", "garbage"),
                           exp("closing", "/v1/closing", "closing")]
    return mock, env.router(cfg)


def still_serves(router):
    r = h.post_chat(router.port, {"x-user-id": "after"}, h.chat_body())
    check(r.status == 200 and r.json()["model"] in ("model-a", "model-b"),
          "proxy stopped serving: %s %r", r.status, r.body[:200])


def check_closed_error(c, r, status, code):
    """An error after which the proxy closes the connection."""
    h.check_error_body(r, status, code)
    check((r.header("connection") or "").lower() == "close", "%d without Connection: close: %r",
          status, r.headers)
    check(c.closed_by_peer(2), "connection still open after %d", status)


def test_413_content_length(env):
    mock, router = start(env)
    c = h.Client(router.port)
    c.send(h.build_request("POST", "/v1/chat/completions",
                           {"Content-Length": str(MAX_BODY + 1)}))  # no body sent at all
    c.settimeout(3)
    r = c.read_response("POST")
    check_closed_error(c, r, 413, "payload_too_large")
    c.close()
    # Exactly at the limit is fine.
    pad = MAX_BODY - len(h.json.dumps(h.chat_body(pad="")))
    body = h.json.dumps(h.chat_body(pad="p" * pad))
    check(len(body) == MAX_BODY, "test body is %d bytes", len(body))
    r = h.post_chat(router.port, {}, body)
    check(r.status == 200, "body of exactly max_body_bytes: %s %r", r.status, r.body[:200])
    check(mock.stats()["requests"] == 1, "the 413 request reached the upstream")
    still_serves(router)


def test_413_chunked(env):
    mock, router = start(env)
    c = h.Client(router.port)
    c.send(h.build_request("POST", "/v1/chat/completions", {"Transfer-Encoding": "chunked"}))
    piece = b"x" * 400
    for _ in range(3):  # 1200 bytes > 1024
        c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    c.settimeout(3)
    r = c.read_response("POST")
    check_closed_error(c, r, 413, "payload_too_large")
    c.close()
    check(mock.stats()["requests"] == 0, "the 413 request reached the upstream")
    still_serves(router)


def test_431_header_too_large(env):
    mock, router = start(env)
    for hdrs in ({"x-big": "v" * (MAX_HEAD + 100)},
                 {"x-h%02d" % i: "v" * 50 for i in range(60)}):
        c = h.Client(router.port)
        c.send(h.build_request("POST", "/v1/chat/completions", hdrs, h.chat_body()))
        c.settimeout(3)
        r = c.read_response("POST")
        check_closed_error(c, r, 431, "header_fields_too_large")
        c.close()
    # Just under the limit passes.
    c = h.Client(router.port)
    r = c.request("POST", "/v1/chat/completions", {"x-big": "v" * (MAX_HEAD - 300)},
                  h.chat_body())
    check(r.status == 200, "head under the limit: %s", r.status)
    c.close()
    still_serves(router)


def timed_408(c):
    t0 = time.monotonic()
    c.settimeout(5)
    r = c.read_response("POST")
    took = time.monotonic() - t0
    check_closed_error(c, r, 408, None)
    check(0.35 <= took <= 2.0, "408 after %.2f s, header_timeout_ms is 500", took)


def test_408_incomplete_head(env):
    mock, router = start(env)
    c = h.Client(router.port)
    c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
    timed_408(c)
    c.close()
    still_serves(router)


def test_408_incomplete_body(env):
    mock, router = start(env)
    c = h.Client(router.port)
    c.send(h.build_request("POST", "/v1/chat/completions", {"Content-Length": "100"}) + b"{\"mo")
    timed_408(c)
    c.close()
    check(mock.stats()["requests"] == 0, "an incomplete request reached the upstream")
    still_serves(router)


def test_408_silent_new_connection(env):
    mock, router = start(env)
    c = h.Client(router.port)
    timed_408(c)  # sends nothing at all
    c.close()
    still_serves(router)


def test_408_slow_trickle(env):
    """A head trickled byte by byte never resets the timeout (a slowloris)."""
    mock, router = start(env)
    c = h.Client(router.port)
    t0 = time.monotonic()
    req = h.build_request("POST", "/v1/chat/completions", {"x-pad": "p" * 100}, h.chat_body())
    for b in req:
        try:
            c.send(bytes([b]))
        except OSError:
            break
        c.sock.settimeout(0.03)
        try:
            if c.recv_once():
                break
        except h.ReadTimeout:
            pass
        if c.eof or time.monotonic() - t0 > 3:
            break
    c.settimeout(3)
    r = c.read_response("POST")
    h.check_error_body(r, 408)
    check(time.monotonic() - t0 < 2.0, "slow request ran %.1f s", time.monotonic() - t0)
    c.close()
    still_serves(router)


def test_idle_keepalive_closed_silently(env):
    mock, router = start(env)
    c = h.Client(router.port)
    r = c.request("POST", "/v1/chat/completions", {}, h.chat_body())
    check(r.status == 200, "status %s", r.status)
    t0 = time.monotonic()
    check(not c.closed_by_peer(0.4), "idle connection closed before idle_timeout_ms (800)")
    check(c.closed_by_peer(2.0), "idle connection still open 2.4 s later")
    took = time.monotonic() - t0
    check(0.6 <= took <= 2.0, "idle close after %.2f s, idle_timeout_ms is 800", took)
    c.close()
    still_serves(router)


def test_502_nothing_listening(env):
    mock, router = start(env)
    c = h.Client(router.port)
    t0 = time.monotonic()
    r = c.request("POST", "/v1/dead", {}, h.chat_body())
    e = h.check_error_body(r, 502, "upstream_connect_failed")
    check(e["type"] == "upstream_error", "type %r", e["type"])
    check(time.monotonic() - t0 < 1.5, "502 took %.2f s", time.monotonic() - t0)
    check(r.header("x-switchyard-trace-id"), "502 without a trace id")
    # Keep-alive survives an upstream error.
    r = c.request("POST", "/v1/dead", {}, h.chat_body())
    h.check_error_body(r, 502)
    r = c.request("POST", "/v1/chat/completions", {}, h.chat_body())
    check(r.status == 200, "same connection after 502: %s", r.status)
    c.close()
    still_serves(router)


def test_502_upstream_closes_or_garbles(env):
    mock, router = start(env)
    c = h.Client(router.port)
    for path, code in (("/v1/garbage", "upstream_protocol_error"),
                       ("/v1/closing", "upstream_closed")):
        r = c.request("POST", path, {}, h.chat_body())
        h.check_error_body(r, 502, code)
    c.close()
    still_serves(router)


def test_504_first_byte_timeout(env):
    mock, router = start(env, idle_timeout_ms=5000)
    c = h.Client(router.port)
    t0 = time.monotonic()
    r = c.request("POST", "/v1/chat/completions", {"x-mock-latency-ms": "1200"}, h.chat_body())
    took = time.monotonic() - t0
    e = h.check_error_body(r, 504, "upstream_timeout")
    check(e["type"] == "timeout_error", "type %r", e["type"])
    check(0.25 <= took <= 1.0, "504 after %.2f s, first_byte_timeout_ms is 300", took)
    # The late answer of the timed-out request must never be given to a later one.
    for i in range(2):
        r = c.request("POST", "/v1/chat/completions", {"x-mock-echo": "1", "x-seq": str(i)},
                      h.chat_body())
        check(r.status == 200, "after 504: %s", r.status)
        seq = r.json()["mock_echo"]["headers"].get("x-seq")
        check(seq == str(i), "request %d got the answer of %r", i, seq)
        time.sleep(1.0)
    # Same for a stream that stays silent too long before its first byte.
    r = c.request("POST", "/v1/chat/completions", {"x-mock-latency-ms": "800"},
                  h.chat_body(stream=True))
    h.check_error_body(r, 504)
    c.close()
    still_serves(router)


def test_upstream_silent_mid_stream_cut(env):
    """Silence longer than the upstream's idle_timeout_ms after the head went out: the
    client's stream is cut visibly (no terminating chunk), never ended cleanly."""
    mock, router = start(env, mock_upstream={"idle_timeout_ms": 300})
    c = h.Client(router.port)
    t0 = time.monotonic()
    r = c.request("POST", "/v1/chat/completions",
                  {"x-mock-chunks": "4", "x-mock-interval-ms": "1000"}, h.chat_body(stream=True),
                  allow_abort=True)
    took = time.monotonic() - t0
    check(r.status == 200 and not r.complete, "stream not cut: %r", r)
    check(c.eof, "connection not closed")
    check(len(r.sse_events()) == 1, "events %r", r.sse_events())
    check(0.25 <= took <= 0.9, "cut after %.2f s, idle_timeout_ms is 300", took)
    c.close()
    still_serves(router)


def test_long_exchanges_not_cut_by_client_timeouts(env):
    """header_timeout_ms (500) and idle_timeout_ms (800) bound the client's silences,
    not the time the upstream takes."""
    mock, router = start(env)
    c = h.Client(router.port)
    r = c.request("POST", "/v1/chat/completions",
                  {"x-mock-chunks": "12", "x-mock-interval-ms": "100"}, h.chat_body(stream=True))
    check(r.complete and len(r.sse_events()) == 14, "1.2 s stream cut: %r", r)
    for _ in range(4):
        r = c.request("POST", "/v1/chat/completions", {"x-mock-latency-ms": "250"},
                      h.chat_body())
        check(r.status == 200, "slow-ish answer: %s", r.status)
    c.close()


def test_malformed_request_400(env):
    mock, router = start(env)
    for raw in (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
                b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\n"
                b"Content-Length: 7\r\n\r\nhello"):
        c = h.Client(router.port)
        c.send(raw)
        c.settimeout(3)
        r = c.read_response("GET")
        check_closed_error(c, r, 400, "bad_request")
        c.close()
    check(mock.stats()["requests"] == 0, "a malformed request reached the upstream")
    still_serves(router)


def test_invalid_json_body_400(env):
    mock, router = start(env)
    c = h.Client(router.port)
    for body, what in ((b"{\"model\": ", "truncated JSON"), (b"[1, 2]", "an array"),
                       (b"", "an empty body")):
        r = c.request("POST", "/v1/chat/completions", {"x-user-id": "u"}, body)
        h.check_error_body(r, 400, "invalid_body")
        check(r.header("x-switchyard-trace-id"), "400 without a trace id")
        check((r.header("connection") or "").lower() != "close", "400 for %s closed the "
              "connection", what)
    r = c.request("POST", "/v1/chat/completions", {}, h.chat_body())
    check(r.status == 200, "same connection after 400s: %s", r.status)
    c.close()
    check(mock.stats()["requests"] == 1, "invalid bodies reached the upstream")
    still_serves(router)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
