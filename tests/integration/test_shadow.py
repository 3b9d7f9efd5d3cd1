#!/usr/bin/env python3
"""test_shadow.py — shadow traffic end to end, with a real redis-server, mock-llm backends
and scripted ones: mirrored copies are rewritten for the shadow variant and recorded as
`shadow` events of the primary's trace, with the comparison; `x-switchyard-shadow: off`
and the experiment's shadow_skip rules are never mirrored (counted as skipped); a dead or
blackholed shadow backend changes nothing for the primaries (statuses, latency) and its
legs are bounded and counted; max_inflight and the token budget hold; a router stopped
with shadows in flight exits cleanly.
"""
import json
import os
import re
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


# ---- configs -------------------------------------------------------------------------

def shadow_conf(**kw):
    conf = {"fraction": 1}
    conf.update(kw)
    return conf


def experiment(shadow, skip=None):
    """Experiment chat: variant a (control, live, upstream live, model-a) and variant s
    (weight 0: never live; upstream shadowup, model-s, prompt, retrieval, a header) that
    receives shadow copies."""
    e = {"id": "chat", "match": {"method": "POST", "path_prefix": "/v1/chat/completions"},
         "policy": "split", "control": "a",
         "variants": [
             {"id": "a", "upstream": "live", "model": "model-a", "weight": 1},
             {"id": "s", "upstream": "shadowup", "model": "model-s", "weight": 0,
              "version": "7", "prompt_version": "terse", "headers": {"x-team": "shadow-team"},
              "retrieval": {"body": {"top_k": 8}}, "shadow": shadow}]}
    if skip is not None:
        e["shadow_skip"] = skip
    return e


def config(env, redis, live_addr, shadow_addr, shadow, skip=None, shadow_upstream=None):
    up = {"servers": [shadow_addr]}
    up.update(shadow_upstream or {})
    return h.router_config(
        live_addr,
        upstreams={"live": {"servers": [live_addr]}, "shadowup": up},
        prompts={"terse": "Answer in one word."},
        experiments=[experiment(shadow, skip)],
        redis={"url": redis.url}, data_dir=env.path("data"),
        events={"flush_ms": 2})


def start(env, live_addr, shadow_addr, shadow, **kw):
    redis = h.redis_server(env)
    router = env.router(config(env, redis, live_addr, shadow_addr, shadow, **kw))
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    return router, rc


# ---- backends ------------------------------------------------------------------------

def completion_response(text):
    body = json.dumps({"id": "chatcmpl-rec", "object": "chat.completion", "model": "rec-model",
                       "choices": [{"index": 0, "message": {"role": "assistant",
                                                            "content": text},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 11, "completion_tokens": 5,
                                 "total_tokens": 16}}).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body)) + body


class Recorder(h.FakeUpstream):
    """A FakeUpstream that keeps each request's head and body: (head bytes, body bytes)."""

    def __init__(self, response):
        super().__init__(response)
        self.seen = []

    def _read_request(self, conn, data):
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return None, b""
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        need = int(m.group(1)) if m else 0
        while len(rest) < need:
            chunk = conn.recv(4096)
            if not chunk:
                return None, b""
            rest += chunk
        self.seen.append((head, rest[:need]))
        return head, rest[need:]


class Blackhole:
    """A listening socket that never accepts: connects complete (up to the backlog) and
    then nothing is ever answered; beyond the backlog, connects hang."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(2)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def headers_of(head):
    out = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        out[k.strip().lower().decode()] = v.strip().decode()
    return out


# ---- Redis ---------------------------------------------------------------------------

def events(rc, etype=None, tid=None):
    return [f for _, f in rc.stream("sy:events")
            if (etype is None or f.get("event_type") == etype)
            and (tid is None or f.get("trace_id") == tid)]


def var_stats(rc, v):
    return {k: float(x) for k, x in rc.hgetall("sy:{chat}:v:%s" % v).items()}


def wait_stat(rc, v, field, want, timeout_s=5, at_least=False):
    def ok():
        got = var_stats(rc, v).get(field, 0)
        return got >= want if at_least else got == want
    check(h.wait_until(ok, timeout_s), "sy:{chat}:v:%s %s never reached %s: %r", v, field, want,
          var_stats(rc, v))
    return var_stats(rc, v)


def chat(port, headers=None, body=None):
    """One primary request; returns (response, seconds)."""
    t = time.monotonic()
    r = h.post_chat(port, headers or {}, body)
    return r, time.monotonic() - t


# ---- the tests -----------------------------------------------------------------------

def test_shadow_event_joined_and_exact(env):
    """Primary and shadow answered by the same mock: the texts are identical."""
    mock = env.mock(name="live")
    router, rc = start(env, mock.addr, mock.addr, shadow_conf())
    tids = []
    for _ in range(3):
        r, _ = chat(router.port)
        check(r.status == 200 and r.header("x-switchyard-variant") == "a",
              "primary: %s %r", r.status, r.header("x-switchyard-variant"))
        tids.append(r.header("x-switchyard-trace-id"))
    st = wait_stat(rc, "s", "shadow_requests", 3)
    check(st.get("shadow_errors", 0) == 0 and st.get("shadow_compared") == 3
          and st.get("shadow_exact") == 3 and abs(st.get("shadow_sim_sum", 0) - 3) < 1e-9,
          "shadow counters of s: %r", st)
    check(st.get("shadow_lat_ms_sum", 0) > 0 and st.get("shadow_tokens_out", 0) > 0,
          "shadow latency/tokens of s: %r", st)
    check("requests" not in st, "shadow traffic counted as live requests of s: %r", st)
    check(var_stats(rc, "a").get("requests") == 3, "live requests of a: %r", var_stats(rc, "a"))
    for tid in tids:
        sh = events(rc, "shadow", tid)
        req = events(rc, "request", tid)
        check(len(sh) == 1 and len(req) == 1, "trace %s: %d shadow, %d request events", tid,
              len(sh), len(req))
        e, q = sh[0], req[0]
        check(e["experiment"] == "chat" and e["variant"] == "s" and e["variant_version"] == "7"
              and e["primary_variant"] == "a", "shadow event routing: %r", e)
        check(e["model_id"] == "model-s" and e["model_version"] == "model-s"
              and q["model_version"] == "model-a" and e["prompt_version"] == "terse",
              "rewrite: shadow model %r/%r, primary %r", e.get("model_id"),
              e.get("model_version"), q.get("model_version"))
        check(e["status"] == "200" and e["primary_status"] == "200", "statuses: %r", e)
        check(e["exact_match"] == "true" and float(e["similarity"]) == 1.0, "comparison: %r", e)
        check(int(e["output_length"]) == int(e["primary_output_length"]) == len(
            "mock answer from live"), "lengths: %r", e)
        check(float(e["server_latency_ms"]) > 0 and float(e["primary_latency_ms"]) > 0
              and int(e["output_tokens"]) >= 0 and e.get("primary_output_tokens") is not None,
              "measures: %r", e)
        for f in ("input_hash", "task_type", "consent_scope", "schema_version", "event_id",
                  "router_instance", "timestamp"):
            check(e.get(f) == q.get(f) or f in ("event_id", "timestamp"),
                  "envelope field %s: shadow %r, request %r", f, e.get(f), q.get(f))
            check(e.get(f), "shadow event without %s: %r", f, e)
    check(mock.stats()["requests"] == 6, "mock saw %r completions, wanted 3 + 3",
          mock.stats()["requests"])


def test_shadow_rewrite_reaches_backend(env):
    """A different shadow answer; the recorded shadow request shows the rewrite."""
    mock = env.mock(name="live")
    rec = Recorder(completion_response("mock answer from recorder"))
    env.closers.append(rec.stop)
    router, rc = start(env, mock.addr, rec.addr, shadow_conf())
    r, _ = chat(router.port, {"x-switchyard-user": "u1"},
                h.chat_body(messages=[{"role": "user", "content": "hello"}], temperature=0.7))
    check(r.status == 200, "primary %s", r.status)
    tid = r.header("x-switchyard-trace-id")
    wait_stat(rc, "s", "shadow_requests", 1)
    check(len(rec.seen) == 1, "recorder saw %d requests", len(rec.seen))
    head, body = rec.seen[0]
    hd = headers_of(head)
    b = json.loads(body)
    check(b["model"] == "model-s" and b["top_k"] == 8 and b["temperature"] == 0.7,
          "shadow body %r", b)
    check(b["messages"][0] == {"role": "system", "content": "Answer in one word."}
          and b["messages"][1]["content"] == "hello", "shadow messages %r", b["messages"])
    check(hd.get("x-switchyard-shadow") == "1" and hd.get("x-team") == "shadow-team",
          "shadow headers %r", hd)
    tp = hd.get("traceparent", "").split("-")
    check(len(tp) == 4 and tp[1] == tid, "traceparent %r, trace %s", hd.get("traceparent"), tid)
    e = h.wait_until(lambda: events(rc, "shadow", tid), 3)
    check(e, "no shadow event for %s", tid)
    e = e[0]
    # {mock, answer, from, live} against {mock, answer, from, recorder}: 3 of 5 words.
    check(e["exact_match"] == "false" and abs(float(e["similarity"]) - 0.6) < 1e-9,
          "comparison %r", e)
    check(e["output_tokens"] == "5" and e["input_tokens"] == "11"
          and e["output_id"] == "chatcmpl-rec" and e.get("user_id"), "shadow measures %r", e)
    st = var_stats(rc, "s")
    check(st.get("shadow_exact", 0) == 0 and abs(st.get("shadow_sim_sum", 0) - 0.6) < 1e-9
          and st.get("shadow_tokens_in") == 11, "counters %r", st)


def test_skip_rules(env):
    mock = env.mock(name="live")
    skip = {"body_keys": ["tools", "functions"],
            "headers": [{"name": "x-no-mirror"}, {"name": "x-tier", "value": "gold"}]}
    router, rc = start(env, mock.addr, mock.addr, shadow_conf(), skip=skip)
    skipped = [
        ({"x-switchyard-shadow": "off"}, None),
        ({"X-Switchyard-Shadow": "OFF"}, None),
        ({"x-switchyard-shadow": "1"}, None),  # itself a shadow copy: never again
        ({}, h.chat_body(tools=[{"type": "function", "function": {"name": "f"}}])),
        ({}, h.chat_body(functions=[])),
        ({"x-no-mirror": "anything"}, None),
        ({"x-tier": "gold"}, None),
    ]
    tids = []
    for hdrs, body in skipped:
        r, _ = chat(router.port, hdrs, body)
        check(r.status == 200, "primary %r: %s", hdrs, r.status)
        tids.append(r.header("x-switchyard-trace-id"))
    # Mirrored: a rule's value that does not match, a tools key below the top level.
    mirrored = [({"x-tier": "silver"}, None),
                ({}, h.chat_body(metadata={"tools": 1}))]
    for hdrs, body in mirrored:
        r, _ = chat(router.port, hdrs, body)
        check(r.status == 200, "primary %r: %s", hdrs, r.status)
    st = wait_stat(rc, "s", "shadow_requests", len(mirrored))
    st = wait_stat(rc, "s", "shadow_skipped", len(skipped))
    time.sleep(0.2)
    st = var_stats(rc, "s")
    check(st.get("shadow_requests") == len(mirrored) and st.get("shadow_skipped") == len(skipped),
          "counters %r", st)
    for tid in tids:
        check(not events(rc, "shadow", tid), "skipped request %s was mirrored", tid)
    check(mock.stats()["requests"] == len(skipped) + 2 * len(mirrored),
          "mock completions %r", mock.stats()["requests"])


def measure(port, n):
    """n pairs of primaries, interleaved: with x-switchyard-shadow: off and without.
    Returns (latencies off, latencies mirrored)."""
    off, on = [], []
    for _ in range(n):
        r, t = chat(port, {"x-switchyard-shadow": "off"})
        check(r.status == 200, "primary without shadow: %s", r.status)
        off.append(t)
        r, t = chat(port)
        check(r.status == 200 and r.header("x-switchyard-variant") == "a",
              "primary with a broken shadow: %s %r", r.status, r.body[:200])
        on.append(t)
    return off, on


def check_primaries_unharmed(off, on, timeout_ms, what):
    med_off, med_on = statistics.median(off), statistics.median(on)
    check(max(on) < timeout_ms / 1000.0,
          "%s: a primary took %.3f s, longer than the shadow timeout", what, max(on))
    check(abs(med_on - med_off) < 0.020, "%s: median %.1f ms mirrored vs %.1f ms not", what,
          med_on * 1000, med_off * 1000)


@h.timeout(60)
def test_dead_shadow_backend(env):
    mock = env.mock(name="live")
    dead = "127.0.0.1:%d" % h.free_port()  # nothing listens there
    router, rc = start(env, mock.addr, dead, shadow_conf(max_inflight=4, timeout_ms=1500))
    off, on = measure(router.port, 40)
    check_primaries_unharmed(off, on, 1500, "dead shadow")
    n = len(on)

    def settled():
        st = var_stats(rc, "s")
        done = st.get("shadow_requests", 0) + st.get("shadow_dropped_inflight", 0)
        return st if done == n else None
    st = h.wait_until(settled, 5)
    check(st is not None, "shadow legs + drops never reached %d: %r", n, var_stats(rc, "s"))
    check(st.get("shadow_errors") == st.get("shadow_requests") and st["shadow_requests"] > 0,
          "a dead backend's legs are errors: %r", st)
    check(st.get("shadow_skipped") == n, "x-switchyard-shadow: off counted as skipped: %r", st)
    e = events(rc, "shadow")[0]
    check(e["status"] == "0" and e["primary_status"] == "200" and "exact_match" not in e,
          "a failed shadow's event: %r", e)
    a = var_stats(rc, "a")
    check(a.get("requests") == 2 * n and a.get("errors", 0) == 0, "primaries' counters %r", a)


@h.timeout(60)
def test_blackholed_shadow_backend(env):
    mock = env.mock(name="live")
    hole = Blackhole()
    env.closers.append(hole.close)
    router, rc = start(env, mock.addr, hole.addr, shadow_conf(max_inflight=4, timeout_ms=700),
                       shadow_upstream={"connect_timeout_ms": 700})
    off, on = measure(router.port, 40)
    check_primaries_unharmed(off, on, 700, "blackholed shadow")
    n = len(on)

    def settled():
        st = var_stats(rc, "s")
        done = st.get("shadow_requests", 0) + st.get("shadow_dropped_inflight", 0)
        return st if done == n else None
    st = h.wait_until(settled, 5)
    check(st is not None, "shadow legs + drops never reached %d: %r", n, var_stats(rc, "s"))
    check(st.get("shadow_dropped_inflight", 0) > 0 and
          st.get("shadow_errors") == st.get("shadow_requests"),
          "a blackholed backend: legs time out, the rest is dropped: %r", st)
    for e in events(rc, "shadow"):
        check(float(e["server_latency_ms"]) < 700 + 500, "a leg outlived its bound: %r", e)
    # Stopping with legs in flight: they are cancelled and the router exits 0 (the
    # harness fails on a kill, a non-zero exit or a sanitizer report).
    for _ in range(3):
        r, _ = chat(router.port)
        check(r.status == 200, "primary %s", r.status)
    router.stop()


@h.timeout(60)
def test_max_inflight(env):
    mock = env.mock(name="live")
    slow = env.mock("--latency-ms", "1500", name="slow")
    router, rc = start(env, mock.addr, slow.addr, shadow_conf(max_inflight=3))
    t0 = time.monotonic()
    for _ in range(12):
        r, t = chat(router.port)
        check(r.status == 200 and t < 1.0, "primary %s in %.3f s", r.status, t)
    elapsed = time.monotonic() - t0
    at_slow = slow.stats()["requests"]
    # At most 3 in flight: within one latency period at most 3 copies start.
    limit = 3 * (1 + int(elapsed / 1.5))
    check(3 <= at_slow <= limit, "the slow shadow got %d copies in %.2f s (limit %d)", at_slow,
          elapsed, limit)
    st = wait_stat(rc, "s", "shadow_requests", at_slow, timeout_s=5)
    check(st.get("shadow_dropped_inflight") == 12 - at_slow and st.get("shadow_errors", 0) == 0,
          "counters %r", st)
    # Once the legs are done, copies go out again.
    r, _ = chat(router.port)
    check(r.status == 200, "primary %s", r.status)
    wait_stat(rc, "s", "shadow_requests", at_slow + 1, timeout_s=5)


def test_token_budget(env):
    mock = env.mock(name="live")
    # One completed shadow spends the budget (the mock reports > 10 tokens).
    router, rc = start(env, mock.addr, mock.addr, shadow_conf(tokens_per_minute=10))
    r, _ = chat(router.port)
    check(r.status == 200, "primary %s", r.status)
    st = wait_stat(rc, "s", "shadow_requests", 1)
    check(st.get("shadow_tokens_in", 0) + st.get("shadow_tokens_out", 0) > 10,
          "the mock's usage is too small for this test: %r", st)
    for _ in range(5):
        r, _ = chat(router.port)
        check(r.status == 200, "primary %s", r.status)
    st = wait_stat(rc, "s", "shadow_dropped_budget", 4, at_least=True)
    # A minute boundary may fall inside the test: then one more copy goes out.
    check(st.get("shadow_requests", 0) + st.get("shadow_dropped_budget", 0) >= 5
          and st.get("shadow_requests", 0) <= 2, "budget counters %r", st)


def test_streamed_body_not_mirrored(env):
    """A body streamed upstream (no rewrite on the live variant, > 64 KiB) is not kept,
    so it is not mirrored, and counted as skipped."""
    mock = env.mock(name="live")
    redis = h.redis_server(env)
    cfg = config(env, redis, mock.addr, mock.addr, shadow_conf())
    del cfg["experiments"][0]["variants"][0]["model"]  # a: nothing rewrites the body
    router = env.router(cfg)
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    big = h.chat_body(messages=[{"role": "user", "content": "x" * 100000}])
    r, _ = chat(router.port, {}, big)
    check(r.status == 200, "primary %s", r.status)
    r, _ = chat(router.port)  # small: buffered, mirrored
    check(r.status == 200, "primary %s", r.status)
    st = wait_stat(rc, "s", "shadow_requests", 1)
    st = wait_stat(rc, "s", "shadow_skipped", 1)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
