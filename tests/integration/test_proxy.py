#!/usr/bin/env python3
"""test_proxy.py — JSON requests through switchyard to bench/mock-llm: routing to an
experiment's variant, request rewriting (model, system prompt, retrieval fields and
headers, extra headers), traceparent handling, sticky splits, the default route, and
HTTP/1.1 connection handling (keep-alive on both sides, pipelining, HTTP/1.0 clients,
HEAD, chunked request bodies, Expect: 100-continue).

The mock's `x-mock-echo: 1` makes it return what it received (body, headers, method,
path), so each test sees the request exactly as it left the proxy.
"""
import os
import subprocess
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

PROMPT = "You are a concise assistant."
TRACEPARENT_RX = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def rag_experiment():
    """Matched only with x-task-type: rag; policy fixed, so always variant r, which
    rewrites everything a variant can rewrite."""
    return {
        "id": "rag",
        "match": {"method": "POST", "path_prefix": "/v1/chat/completions",
                  "header": "x-task-type", "header_value": "rag"},
        "policy": "fixed",
        "control": "r",
        "variants": [
            {"id": "r", "upstream": "mock", "model": "model-r", "prompt_version": "concise-v2",
             "retrieval": {"body": {"top_k": 5, "index": "docs-v3", "rerank": True,
                                    "threshold": 0.5},
                           "headers": {"x-retrieval-index": "docs-v3"}},
             "headers": {"x-extra": "1"}},
            {"id": "s", "upstream": "mock", "model": "model-s", "weight": 100},
        ],
    }


def start(env, default_route=None, **extra):
    mock = env.mock()
    cfg = h.router_config(mock.addr, prompts={"concise-v2": PROMPT},
                          experiments=[rag_experiment(), h.chat_experiment()], **extra)
    if default_route is not None:
        cfg["default_route"] = default_route
    return mock, env.router(cfg)


def echo_of(r):
    check(r.status == 200, "status %s: %r", r.status, r.body[:300])
    e = r.json().get("mock_echo")
    check(isinstance(e, dict), "no mock_echo in %r", r.body[:300])
    return e


def test_json_through_proxy(env):
    mock, router = start(env)
    body = h.chat_body(max_tokens=16, user="end-user-1")
    r = h.post_chat(router.port, {"x-user-id": "user-1", "x-mock-echo": "1"}, body)
    check(r.status == 200, "status %s", r.status)
    check(r.header("content-type") == "application/json", "content-type %r",
          r.header("content-type"))
    check(r.header("x-mock-name") == "mock", "upstream header not forwarded: %r", r.headers)
    check(r.header("x-switchyard-experiment") == "chat", "experiment %r",
          r.header("x-switchyard-experiment"))
    variant = r.header("x-switchyard-variant")
    check(variant in ("a", "b"), "variant %r", variant)
    check(HEX32.match(r.header("x-switchyard-trace-id") or ""), "trace id %r",
          r.header("x-switchyard-trace-id"))
    j = r.json()
    want_model = "model-" + variant
    check(j["model"] == want_model, "mock answered for model %r, variant %s", j["model"], variant)
    check(j["object"] == "chat.completion" and j["choices"][0]["message"]["role"] == "assistant",
          "not a chat completion: %r", j)
    e = j["mock_echo"]
    check(e["method"] == "POST" and e["path"] == "/v1/chat/completions", "echo %r", e)
    check(e["body"]["model"] == want_model, "upstream saw model %r", e["body"]["model"])
    check(e["body"]["messages"] == body["messages"] and e["body"]["max_tokens"] == 16
          and e["body"]["user"] == "end-user-1",
          "other body fields changed: %r", e["body"])
    hdrs = e["headers"]
    check(hdrs.get("x-user-id") == "user-1", "x-user-id not forwarded: %r", hdrs)
    check("127.0.0.1" in hdrs.get("x-forwarded-for", ""), "x-forwarded-for %r", hdrs)
    check("transfer-encoding" not in hdrs, "transfer-encoding forwarded: %r", hdrs)
    # The rewrite splices: only the model's value changes, the client's bytes stay.
    sent = h.json.dumps(body)
    want_len = len(sent) - len(h.json.dumps(body["model"])) + len(h.json.dumps(want_model))
    check(int(hdrs["content-length"]) == want_len,
          "content-length %s, wanted %d (the client's body with only the model replaced)",
          hdrs["content-length"], want_len)


def test_hop_by_hop_headers_not_forwarded(env):
    mock, router = start(env)
    r = h.post_chat(router.port, [("x-mock-echo", "1"), ("Connection", "keep-alive"),
                                  ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
                                  ("Proxy-Connection", "keep-alive"),
                                  ("X-Forwarded-For", "10.1.2.3"),
                                  ("x-custom", "kept")])
    hd = echo_of(r)["headers"]
    for name in ("connection", "keep-alive", "te", "proxy-connection"):
        check(name not in hd, "hop-by-hop header %s forwarded: %r", name, hd)
    check(hd.get("x-custom") == "kept", "end-to-end header dropped: %r", hd)
    check(hd.get("x-forwarded-for") == "10.1.2.3, 127.0.0.1", "x-forwarded-for %r",
          hd.get("x-forwarded-for"))
    check(r.header("keep-alive") is None and r.header("connection") is None,
          "hop-by-hop response headers: %r", r.headers)


def test_connection_named_headers_not_forwarded(env):
    # RFC 9110 7.6.1: a header named by Connection is hop-by-hop too.
    mock, router = start(env)
    r = h.post_chat(router.port, [("x-mock-echo", "1"), ("Connection", "keep-alive, X-Secret"),
                                  ("X-Secret", "hop-only"), ("x-custom", "kept")])
    hd = echo_of(r)["headers"]
    check("x-secret" not in hd, "header named by Connection forwarded: %r", hd)
    check(hd.get("x-custom") == "kept", "end-to-end header dropped: %r", hd)


def test_system_prompt_insert_and_retrieval(env):
    mock, router = start(env)
    msgs = [{"role": "user", "content": "what is switchyard?"}]
    r = h.post_chat(router.port, {"x-task-type": "rag", "x-mock-echo": "1", "x-extra": "client",
                                  "x-user-id": "u"}, h.chat_body(messages=msgs, top_k=1))
    check(r.header("x-switchyard-experiment") == "rag" and r.header("x-switchyard-variant") == "r",
          "routed to %r/%r", r.header("x-switchyard-experiment"), r.header("x-switchyard-variant"))
    e = echo_of(r)
    b = e["body"]
    check(b["model"] == "model-r", "model %r", b["model"])
    check(b["messages"] == [{"role": "system", "content": PROMPT}] + msgs,
          "system prompt not inserted first: %r", b["messages"])
    check(b.get("top_k") == 5 and b.get("index") == "docs-v3" and b.get("rerank") is True
          and b.get("threshold") == 0.5, "retrieval body fields: %r", b)
    hd = e["headers"]
    check(hd.get("x-retrieval-index") == "docs-v3", "retrieval header: %r", hd)
    check(hd.get("x-extra") == "1", "variant header must replace the client's: %r",
          hd.get("x-extra"))
    check(hd.get("x-task-type") == "rag", "client header dropped: %r", hd)


def test_system_prompt_replace(env):
    mock, router = start(env)
    msgs = [{"role": "user", "content": "first"},
            {"role": "system", "content": "You are verbose."},
            {"role": "assistant", "content": "ok"}]
    r = h.post_chat(router.port, {"x-task-type": "rag", "x-mock-echo": "1"},
                    h.chat_body(messages=msgs))
    got = echo_of(r)["body"]["messages"]
    want = [msgs[0], {"role": "system", "content": PROMPT}, msgs[2]]
    check(got == want, "system message not replaced in place: %r", got)


def test_fixed_policy_sends_all_to_control(env):
    mock, router = start(env)
    c = h.Client(router.port)
    for i in range(30):
        r = c.request("POST", "/v1/chat/completions",
                      {"x-task-type": "rag", "x-user-id": "user-%d" % i}, h.chat_body())
        check(r.status == 200 and r.header("x-switchyard-variant") == "r",
              "request %d: %s variant %r", i, r.status, r.header("x-switchyard-variant"))
        check(r.json()["model"] == "model-r", "model %r", r.json()["model"])
    c.close()


def test_traceparent_forwarded(env):
    mock, router = start(env)
    tid, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    r = h.post_chat(router.port, {"traceparent": "00-%s-%s-01" % (tid, span),
                                  "x-mock-echo": "1"})
    check(r.header("x-switchyard-trace-id") == tid, "trace id %r, wanted %s",
          r.header("x-switchyard-trace-id"), tid)
    tp = echo_of(r)["headers"].get("traceparent", "")
    m = TRACEPARENT_RX.match(tp)
    check(m is not None, "forwarded traceparent malformed: %r", tp)
    check(m.group(1) == tid, "forwarded trace id %s, wanted %s", m.group(1), tid)
    check(m.group(3) == "01", "trace flags %s, wanted 01", m.group(3))


def test_traceparent_generated(env):
    mock, router = start(env)
    ids = set()
    for bad in (None, "00-zz-not-a-traceparent", "00-" + "0" * 32 + "-00f067aa0ba902b7-01"):
        hdrs = {"x-mock-echo": "1"}
        if bad is not None:
            hdrs["traceparent"] = bad
        r = h.post_chat(router.port, hdrs)
        tid = r.header("x-switchyard-trace-id") or ""
        check(HEX32.match(tid) and tid != "0" * 32, "generated trace id %r", tid)
        tp = echo_of(r)["headers"].get("traceparent", "")
        m = TRACEPARENT_RX.match(tp)
        check(m is not None, "forwarded traceparent malformed: %r (incoming %r)", tp, bad)
        check(m.group(1) == tid, "forwarded trace id %s != response's %s", m.group(1), tid)
        ids.add(tid)
    check(len(ids) == 3, "generated trace ids repeat: %r", ids)


def test_sticky_same_user_same_variant(env):
    mock, router = start(env)
    c = h.Client(router.port)
    for user in ("alice", "bob"):
        seen = set()
        for _ in range(50):
            r = c.request("POST", "/v1/chat/completions", {"x-user-id": user}, h.chat_body())
            check(r.status == 200, "status %s", r.status)
            v = r.header("x-switchyard-variant")
            check(r.json()["model"] == "model-%s" % v, "model %r for variant %r",
                  r.json()["model"], v)
            seen.add(v)
        check(len(seen) == 1, "user %s got variants %r over 50 requests", user, seen)
    c.close()


def test_sticky_users_spread_over_variants(env):
    mock, router = start(env)
    c = h.Client(router.port)
    counts = {"a": 0, "b": 0}
    for i in range(200):
        r = c.request("POST", "/v1/chat/completions", {"x-user-id": "user-%d" % i},
                      h.chat_body())
        counts[r.header("x-switchyard-variant")] += 1
    c.close()
    # 50/50 over 200 users: outside 60..140 has odds far below one in a million.
    check(60 <= counts["a"] <= 140, "split of 200 users is %r", counts)


def test_default_route_pass_through(env):
    mock, router = start(env, default_route={"upstream": "mock"})
    c = h.Client(router.port)
    body = {"model": "client-model", "prompt": "hi"}
    r = c.request("POST", "/v1/completions", {"x-mock-echo": "1"}, body)
    e = echo_of(r)
    check(e["body"] == body, "default route changed the body: %r", e["body"])
    check(e["path"] == "/v1/completions", "path %r", e["path"])
    check(r.header("x-switchyard-experiment") is None and r.header("x-switchyard-variant") is None,
          "experiment headers on a default-route response: %r", r.headers)
    check(HEX32.match(r.header("x-switchyard-trace-id") or ""), "no trace id: %r", r.headers)
    # GET does not match the POST-only experiments: passed through to the mock.
    r = c.request("GET", "/v1/chat/completions?x=1")
    check(r.status == 404 and r.header("x-mock-name") == "mock",
          "GET should reach the mock (its 404): %s %r", r.status, r.headers)
    check(r.header("x-switchyard-experiment") is None, "GET matched an experiment")
    c.close()


def test_no_route_404(env):
    mock = env.mock()
    for name, default in (("absent", None), ("status", {"status": 404})):
        cfg = h.router_config(mock.addr)
        if default is not None:
            cfg["default_route"] = default
        router = env.router(cfg, name="switchyard-" + name)
        before = mock.stats()["requests"]
        c = h.Client(router.port)
        r = c.request("POST", "/v1/embeddings", {}, {"input": "x"})
        h.check_error_body(r, 404)
        check(HEX32.match(r.header("x-switchyard-trace-id") or ""), "404 without trace id")
        # The connection stays usable after a 404.
        r = c.request("POST", "/v1/chat/completions", {}, h.chat_body())
        check(r.status == 200, "after 404: %s", r.status)
        c.close()
        check(mock.stats()["requests"] == before + 1, "the 404 reached the upstream")
        router.stop()


def test_keepalive_reuse_both_sides(env):
    mock, router = start(env)
    base = mock.stats()["connections_accepted"]
    c = h.Client(router.port)
    for i in range(40):
        r = c.request("POST", "/v1/chat/completions", {"x-user-id": "u%d" % i}, h.chat_body())
        check(r.status == 200, "request %d: %s", i, r.status)
        check((r.header("connection") or "").lower() != "close", "proxy closed after %d", i)
    check(not c.eof and len(c.arrivals) >= 40, "client connection was not kept")
    c.close()
    # New client connections, one after another, still share the pooled upstream one.
    for i in range(10):
        r = h.post_chat(router.port, {"x-user-id": "v%d" % i})
        check(r.status == 200, "fresh connection %d: %s", i, r.status)
    st = mock.stats()
    check(st["requests"] >= 50, "mock saw %d requests", st["requests"])
    grew = st["connections_accepted"] - base
    check(grew <= 1, "50 sequential requests opened %d upstream connections", grew)


def test_upstream_close_and_restart(env):
    """An upstream that closes after answering, or restarts, costs no failed request:
    a pooled connection the server closed is never used for the next request."""
    mock, router = start(env)
    c = h.Client(router.port)
    for i in range(3):
        r = c.request("POST", "/v1/chat/completions", {"x-mock-close": "1"}, h.chat_body())
        check(r.status == 200, "answer with upstream Connection: close: %s", r.status)
        check((r.header("connection") or "").lower() != "close",
              "upstream's Connection: close leaked to the client: %r", r.headers)
    check(mock.stats()["connections_accepted"] >= 4, "upstream closes were not honoured")
    r = c.request("POST", "/v1/chat/completions", {}, h.chat_body())
    check(r.status == 200, "after upstream closes: %s", r.status)
    port = mock.port
    mock.stop()
    mock2 = env.mock("--port", str(port), name="mock2")
    check(mock2.port == port, "mock restarted on %d, wanted %d", mock2.port, port)
    for i in range(5):
        r = c.request("POST", "/v1/chat/completions", {}, h.chat_body())
        check(r.status == 200, "request %d after an upstream restart: %s %r", i, r.status,
              r.body[:200])
    check(mock2.stats()["requests"] == 5, "mock2 saw %r", mock2.stats())
    c.close()


def test_stale_pooled_connection_retried(env):
    """The upstream closes a kept-alive connection just as the next request arrives
    on it: the proxy retries once on a fresh connection; the client sees no error."""
    fake = env.fake_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", per_conn=1)
    mock = env.mock()
    cfg = h.router_config(mock.addr, default_route={"upstream": "fake"})
    cfg["upstreams"]["fake"] = {"servers": [fake.addr]}
    router = env.router(cfg)
    c = h.Client(router.port, timeout_s=5)
    for i in range(4):
        r = c.request("POST", "/v1/other", {}, {"n": i})
        check(r.status == 200 and r.body == b"ok", "request %d: %s %r", i, r.status, r.body)
    c.close()
    # Each request after the first was sent on a pooled connection, refused, retried.
    check(len(fake.requests) == 7 and fake.accepted == 4,
          "upstream saw %d requests on %d connections", len(fake.requests), fake.accepted)


def ipv6_loopback():
    try:
        s = h.socket.socket(h.socket.AF_INET6, h.socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def test_listeners_and_upstream_servers(env):
    """Several listeners all serve; an upstream's servers share the load, and a server
    with nothing listening costs no failed request (the next server is tried)."""
    m1, m2 = env.mock(), env.mock(name="mock2")
    cfg = h.router_config(m1.addr)
    second = ("[::1]", "::1") if ipv6_loopback() else ("127.0.0.1", "127.0.0.1")
    port2 = h.free_port()
    cfg["listen"].append("%s:%d" % (second[0], port2))
    cfg["upstreams"]["mock"]["servers"] = ["127.0.0.1:%d" % h.free_port(), m1.addr, m2.addr]
    router = env.router(cfg)
    for host, port in (("127.0.0.1", router.port), (second[1], port2)):
        for i in range(15):
            c = h.Client(port, host=host)
            r = c.request("POST", "/v1/chat/completions", {"x-user-id": "u%d" % i},
                          h.chat_body())
            c.close()
            check(r.status == 200, "via %s:%d request %d: %s %r", host, port, i, r.status,
                  r.body[:200])
    n1, n2 = m1.stats()["requests"], m2.stats()["requests"]
    check(n1 + n2 == 30 and n1 >= 5 and n2 >= 5, "requests per server: %d and %d", n1, n2)


def test_pipelined_requests_in_order(env):
    mock, router = start(env, default_route={"upstream": "mock"})
    c = h.Client(router.port)
    reqs = b""
    for i, latency in enumerate((300, 0, 100, 0)):
        hdrs = {"x-mock-echo": "1", "x-seq": str(i), "x-mock-latency-ms": str(latency)}
        reqs += h.build_request("POST", "/v1/chat/completions", hdrs, h.chat_body())
    reqs += h.build_request("GET", "/health")
    c.send(reqs)  # all five in one write
    for i in range(4):
        r = c.read_response("POST")
        check(echo_of(r)["headers"].get("x-seq") == str(i), "response %d answers request %r",
              i, echo_of(r)["headers"].get("x-seq"))
    r = c.read_response("GET")
    check(r.status == 200 and r.json() == {"status": "ok"}, "last pipelined: %r", r)
    c.close()


def test_pipelined_over_pending_cap(env):
    """More pipelined bytes than the proxy keeps while a response is in flight (64 KB):
    it must stop reading, not drop bytes, and answer every request in order."""
    mock, router = start(env, default_route={"upstream": "mock"})
    n = 1500
    reqs = b"".join(h.build_request("POST", "/v1/completions",
                                    {"x-mock-echo": "1", "x-seq": str(i)}, {"prompt": "p%d" % i})
                    for i in range(n))
    check(len(reqs) > 2 * 65536, "only %d bytes pipelined", len(reqs))
    c = h.Client(router.port, timeout_s=10)
    sender = h.threading.Thread(target=c.send, args=(reqs,), daemon=True)
    sender.start()  # blocks while the proxy stops reading; we read meanwhile
    for i in range(n):
        r = c.read_response("POST")
        check(r.status == 200, "pipelined request %d: %s %r", i, r.status, r.body[:200])
        seq = r.json()["mock_echo"]["headers"].get("x-seq")
        check(seq == str(i), "response %d answers request %r", i, seq)
    sender.join(5)
    c.close()


def test_http10_client(env):
    mock, router = start(env)
    # Plain 1.0: answered as 1.0, then closed.
    c = h.Client(router.port)
    r = c.request("POST", "/v1/chat/completions", {"x-user-id": "u"}, h.chat_body(),
                  version="HTTP/1.0")
    check(r.status == 200 and r.version == "HTTP/1.0", "1.0 answer: %s %s", r.version, r.status)
    check(r.json()["model"] in ("model-a", "model-b"), "model %r", r.json()["model"])
    check(c.closed_by_peer(2), "HTTP/1.0 connection not closed after the response")
    c.close()
    # 1.0 with keep-alive: two requests on one connection.
    c = h.Client(router.port)
    for _ in range(2):
        r = c.request("POST", "/v1/chat/completions", {"Connection": "keep-alive"},
                      h.chat_body(), version="HTTP/1.0")
        check(r.status == 200 and (r.header("connection") or "").lower() == "keep-alive",
              "1.0 keep-alive: %s %r", r.status, r.headers)
    c.close()
    # 1.0 stream: the chunked SSE body arrives decoded and close-delimited.
    c = h.Client(router.port)
    r = c.request("POST", "/v1/chat/completions", {"x-mock-chunks": "3"},
                  h.chat_body(stream=True), version="HTTP/1.0")
    check(r.status == 200 and r.header("transfer-encoding") is None,
          "1.0 stream framing: %r", r.headers)
    ev = r.sse_events()
    check(len(ev) == 5 and ev[-1] == "[DONE]", "1.0 stream events: %r", ev)
    check(c.eof and not c.reset, "1.0 stream not ended by a clean close")
    c.close()


def test_head_and_get_pass_through(env):
    mock, router = start(env, default_route={"upstream": "mock"})
    c = h.Client(router.port)
    r = c.request("GET", "/health")
    check(r.status == 200 and r.json() == {"status": "ok"}, "GET /health: %r", r)
    # The mock answers HEAD with a body (it only knows GET /health): the proxy must
    # send the head only, and the connection must stay in sync.
    r = c.request("HEAD", "/health")
    check(r.status == 404 and r.header("x-mock-name") == "mock", "HEAD: %r", r)
    check(int(r.header("content-length") or "0") > 0, "HEAD lost its Content-Length: %r", r)
    check(c.buf == b"", "bytes after a HEAD response: %r", c.buf)
    r = c.request("GET", "/health")
    check(r.status == 200 and r.json() == {"status": "ok"}, "GET after HEAD: %r", r)
    r = c.request("GET", "/stats")
    check(r.status == 200 and "connections_open" in r.json(), "GET /stats: %r", r)
    c.close()


def test_head_with_content_length(env):
    """A correct upstream answers HEAD with a Content-Length and no body: the proxy must
    not wait for those bytes, and both legs stay usable."""
    fake = env.fake_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX-Fake: 1\r\n\r\n")
    mock = env.mock()
    cfg = h.router_config(mock.addr, default_route={"upstream": "fake"})
    cfg["upstreams"]["fake"] = {"servers": [fake.addr]}
    router = env.router(cfg)
    c = h.Client(router.port, timeout_s=3)
    for i in range(3):
        r = c.request("HEAD", "/doc/%d" % i)
        check(r.status == 200 and r.header("x-fake") == "1", "HEAD %d: %r", i, r)
        check(r.header("content-length") == "1234", "HEAD Content-Length %r",
              r.header("content-length"))
        check(c.buf == b"", "bytes after a HEAD response: %r", c.buf)
    c.close()
    check(len(fake.requests) == 3 and all(q.startswith(b"HEAD /doc/") for q in fake.requests),
          "upstream saw %r", fake.requests)
    check(fake.accepted == 1, "3 HEADs used %d upstream connections", fake.accepted)


def test_chunked_request_body(env):
    mock, router = start(env)
    raw = h.json.dumps(h.chat_body(messages=[{"role": "user", "content": "x" * 3000}]))
    pieces = [raw[:10], raw[10:1500], raw[1500:]]
    body = "".join("%x\r\n%s\r\n" % (len(p), p) for p in pieces) + "0\r\n\r\n"
    c = h.Client(router.port)
    c.send(h.build_request("POST", "/v1/chat/completions",
                           [("Transfer-Encoding", "chunked"), ("x-mock-echo", "1"),
                            ("x-user-id", "u")]))
    for i in range(0, len(body), 700):  # the body trickles in over several writes
        c.send(body[i:i + 700].encode())
    r = c.read_response("POST")
    e = echo_of(r)
    check(e["body"]["messages"][0]["content"] == "x" * 3000, "body lost bytes")
    check(e["body"]["model"] == "model-" + r.header("x-switchyard-variant"),
          "chunked body not rewritten: %r", e["body"]["model"])
    hd = e["headers"]
    check("transfer-encoding" not in hd and "content-length" in hd,
          "upstream framing of a chunked request: %r", hd)
    r = c.request("POST", "/v1/chat/completions", {}, h.chat_body())
    check(r.status == 200, "next request after a chunked one: %s", r.status)
    c.close()


def test_expect_100_continue(env):
    mock, router = start(env)
    body = h.json.dumps(h.chat_body()).encode()
    c = h.Client(router.port)
    c.send(h.build_request("POST", "/v1/chat/completions",
                           [("Expect", "100-continue"), ("Content-Length", str(len(body))),
                            ("x-mock-echo", "1")]))
    c.settimeout(3)
    while b"\r\n\r\n" not in c.buf:
        check(c.recv_once(), "connection closed waiting for 100 Continue")
    check(c.buf.startswith(b"HTTP/1.1 100"), "first bytes were not 100 Continue: %r", c.buf[:80])
    c.send(body)
    r = c.read_response("POST")
    check(r.interim == [100], "interim responses %r", r.interim)
    e = echo_of(r)
    check("expect" not in e["headers"], "Expect forwarded upstream: %r", e["headers"])
    check(e["body"]["messages"] == h.chat_body()["messages"], "body %r", e["body"])
    c.close()



# ---- provider credentials -----------------------------------------------------------

PROVIDER_KEY = "sk-provider-secret-0123456789"
VARIANT_KEY = "azure-key-secret-9876543210"


def credentials_config(mock, redis, auth=None):
    cfg = h.router_config(mock.addr, redis={"url": redis.url})
    up = cfg["upstreams"]["mock"]
    up["headers"] = {"authorization": "Bearer ${env:SY_TEST_PROVIDER_KEY}"}
    if auth:
        up["authorization"] = auth
    cfg["experiments"][0]["variants"][1]["headers"] = {"api-key": "${env:SY_TEST_VARIANT_KEY}"}
    return cfg


def test_provider_credentials_from_the_environment(env):
    """An upstream's headers carry the provider key from the environment; it replaces the
    client's Authorization; a variant adds its own key; neither appears in a log line
    or an event."""
    os.environ["SY_TEST_PROVIDER_KEY"] = PROVIDER_KEY
    os.environ["SY_TEST_VARIANT_KEY"] = VARIANT_KEY
    mock = env.mock()
    redis = h.redis_server(env)
    router = env.router(credentials_config(mock, redis))
    seen = {}
    for i in range(40):
        r = h.post_chat(router.port, {"x-user-id": "u%d" % i, "x-mock-echo": "1",
                                      "authorization": "Bearer client-token"})
        e = echo_of(r)["headers"]
        seen[r.header("x-switchyard-variant")] = e
    check(set(seen) == {"a", "b"}, "both variants served: %r", sorted(seen))
    for v, hs in seen.items():
        check(hs.get("authorization") == "Bearer " + PROVIDER_KEY,
              "variant %s: the upstream got authorization %r", v, hs.get("authorization"))
    check(seen["b"].get("api-key") == VARIANT_KEY and "api-key" not in seen["a"],
          "the variant's own key: %r / %r", seen["b"].get("api-key"), seen["a"].get("api-key"))
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    check(h.wait_until(lambda: len(rc.stream()) >= 40, 5), "events missing")
    dump = repr(rc.stream())
    router.stop()
    for secret in (PROVIDER_KEY, VARIANT_KEY):
        check(secret not in router.stderr_text(), "a provider key is in the log")
        check(secret not in dump, "a provider key is in an event")


def test_authorization_passthrough(env):
    """authorization: passthrough keeps the client's own key; the upstream's is used only
    for a client that sent none."""
    os.environ["SY_TEST_PROVIDER_KEY"] = PROVIDER_KEY
    os.environ["SY_TEST_VARIANT_KEY"] = VARIANT_KEY
    mock = env.mock()
    redis = h.redis_server(env)
    router = env.router(credentials_config(mock, redis, auth="passthrough"))
    e = echo_of(h.post_chat(router.port, {"x-mock-echo": "1", "authorization": "Bearer mine"}))
    check(e["headers"].get("authorization") == "Bearer mine", "client's key replaced: %r",
          e["headers"].get("authorization"))
    e = echo_of(h.post_chat(router.port, {"x-mock-echo": "1"}))
    check(e["headers"].get("authorization") == "Bearer " + PROVIDER_KEY,
          "no key sent upstream for a client without one: %r", e["headers"].get("authorization"))


def test_missing_credential_variable_is_a_config_error(env):
    os.environ.pop("SY_TEST_MISSING_KEY", None)
    cfg = h.router_config("127.0.0.1:9")
    cfg["upstreams"]["mock"]["headers"] = {"authorization": "Bearer ${env:SY_TEST_MISSING_KEY}"}
    path = env.path("missing.yaml")
    h.write_file(path, h.to_yaml(cfg))
    p = subprocess.run([h.SWITCHYARD, "check-config", path], capture_output=True, text=True)
    check(p.returncode != 0 and "environment variable SY_TEST_MISSING_KEY is not set" in p.stderr
          and "upstreams.mock.headers.authorization" in p.stderr,
          "check-config: rc %s, %r", p.returncode, p.stderr)

if __name__ == "__main__":
    sys.exit(h.run(globals()))
