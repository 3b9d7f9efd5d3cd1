#!/usr/bin/env python3
"""test_retry.py — retries and fallbacks (router/retry.h), with real mock backends on
loopback and the events in a real Redis: what is retried (connect failure, a reset
before the first byte, listed answers such as 503 with Retry-After), where (another
server, never the one that answered; then the variant's fallback upstream, with its
own model and credentials), and what never is (a reset after the first byte, a
streamed body, a first-byte timeout unless named). The variant stays the variant:
the event and the counters are the chosen variant's, with the tries listed."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


def config(env, redis, primary, fallback=None, retry=None, variant_extra=None, **extra):
    """Experiment `chat`, one variant `a` on upstream `prim` (servers `primary`), with
    `fallback` as its fallback upstream `fb` (model fb-model, its own key)."""
    ups = {"prim": {"servers": primary, "connect_timeout_ms": 500}}
    if retry is not None:
        ups["prim"]["retry"] = retry
    var = {"id": "a", "upstream": "prim", "model": "model-a", "weight": 1}
    if fallback is not None:
        ups["fb"] = {"servers": fallback, "headers": {"authorization": "Bearer fb-key"}}
        var["fallback"] = {"upstream": "fb", "model": "fb-model"}
    for k, v in (variant_extra or {}).items():
        if v is None:
            var.pop(k, None)
        else:
            var[k] = v
    cfg = {
        "listen": ["127.0.0.1:%d" % h.free_port()],
        "upstreams": ups,
        "experiments": [{
            "id": "chat",
            "match": {"method": "POST", "path_prefix": "/v1/chat/completions"},
            "control": "a",
            "variants": [var],
        }],
        "redis": {"url": redis.url},
        "data_dir": env.path("data"),
        "events": {"flush_ms": 20},
    }
    cfg.update(extra)
    return cfg


def request_events(redis, n, timeout_s=5):
    """The first n request events of the stream (waits for them)."""
    c = h.RedisClient(redis.sock)
    try:
        def got():
            evs = [f for _, f in c.stream() if f.get("event_type") == "request"]
            return evs if len(evs) >= n else None
        evs = h.wait_until(got, timeout_s)
        check(evs is not None, "fewer than %d request events in the stream", n)
        return evs
    finally:
        c.close()


def counters(redis):
    c = h.RedisClient(redis.sock)
    try:
        return c.hgetall("sy:{chat}:v:a")
    finally:
        c.close()


def dead_addr():
    """An address nothing listens on."""
    return "127.0.0.1:%d" % h.free_port()


@h.timeout(60)
def test_503_with_retry_after_goes_to_the_other_server(env):
    """A server that answers 503 with Retry-After: 1 and a healthy one: every client
    gets 200; each 503 was retried on the other server after at least a second; the
    event lists both tries."""
    redis = h.redis_server(env)
    bad = env.mock("--error-rate", "1", "--error-status", "503", "--retry-after", "1", name="bad")
    good = env.mock(name="good")
    r = env.router(config(env, redis, [bad.addr, good.addr],
                          retry={"on": ["connect", "reset", 503]}))
    times = []
    for i in range(4):
        t0 = time.monotonic()
        resp = h.post_chat(r.port, headers={"x-mock-echo": "1"})
        times.append(time.monotonic() - t0)
        check(resp.status == 200, "request %d: %s %r", i, resp.status, resp.body[:200])
        check(resp.header("x-mock-name") == "good", "request %d answered by %r", i,
              resp.header("x-mock-name"))
        check(resp.header("x-switchyard-variant") == "a", "variant %r",
              resp.header("x-switchyard-variant"))
    nbad = bad.stats()["requests"]
    check(nbad >= 1, "the 503 server got no request: round robin never reached it")
    slow = [t for t in times if t >= 0.9]
    check(len(slow) == nbad, "%d of the requests waited out Retry-After: 1, %d reached the 503 "
          "server (times %r)", len(slow), nbad, times)
    evs = request_events(redis, 4)
    retried = [e for e in evs if e.get("upstream_attempts")]
    check(len(retried) == nbad, "%d events say retried, the 503 server saw %d: %r",
          len(retried), nbad, evs)
    for e in retried:
        check(e["upstream_attempts"] == "2" and e["upstream_statuses"] == '["503","200"]' and
              e["fallback"] == "false" and e["upstream"] == "prim" and e["status"] == "200",
              "event of a retried request: %r", e)
    ctr = counters(redis)
    check(ctr.get("retried") == str(nbad) and "fallbacks" not in ctr and ctr.get("requests") == "4",
          "counters %r", ctr)


@h.timeout(60)
def test_answer_is_never_sent_twice_to_the_same_server(env):
    """Two servers that both answer 503, attempts: 3, no fallback: each gets the
    request once (never a second time after answering), and the client gets the last
    503 as it came."""
    redis = h.redis_server(env)
    b1 = env.mock("--error-rate", "1", "--error-status", "503", name="b1")
    b2 = env.mock("--error-rate", "1", "--error-status", "503", name="b2")
    r = env.router(config(env, redis, [b1.addr, b2.addr], retry={"attempts": 3}))
    resp = h.post_chat(r.port)
    check(resp.status == 503, "status %s: %r", resp.status, resp.body[:200])
    check(b1.stats()["requests"] == 1 and b2.stats()["requests"] == 1,
          "requests per server: b1 %d, b2 %d (each must answer once)",
          b1.stats()["requests"], b2.stats()["requests"])
    e = request_events(redis, 1)[0]
    check(e.get("upstream_statuses") == '["503","503"]' and e.get("upstream_attempts") == "2"
          and e.get("status") == "503", "event %r", e)


@h.timeout(60)
def test_reset_before_first_byte_and_refused_connect_fall_back(env):
    """The variant's upstream resets before any byte (then, in a second router,
    refuses connections): the fallback answers, with its own model and key; the event
    and the counters stay the variant's and say fallback."""
    redis = h.redis_server(env)
    resetter = env.mock("--reset-after", "-2", name="resetter")
    fb = env.mock(name="fb")
    r = env.router(config(env, redis, [resetter.addr], [fb.addr], retry={"attempts": 1}))
    resp = h.post_chat(r.port, headers={"x-mock-echo": "1", "authorization": "Bearer client"})
    check(resp.status == 200 and resp.header("x-mock-name") == "fb", "status %s from %r: %r",
          resp.status, resp.header("x-mock-name"), resp.body[:200])
    echo = resp.json()["mock_echo"]
    check(echo["body"]["model"] == "fb-model", "the fallback was asked for %r",
          echo["body"]["model"])
    check(echo["headers"].get("authorization") == "Bearer fb-key",
          "the fallback got authorization %r", echo["headers"].get("authorization"))
    check(resp.header("x-switchyard-variant") == "a", "variant %r",
          resp.header("x-switchyard-variant"))
    check(resetter.stats()["resets"] == 1, "resetter stats %r", resetter.stats())
    e = request_events(redis, 1)[0]
    check(e.get("variant") == "a" and e.get("upstream") == "fb" and e.get("fallback") == "true"
          and e.get("upstream_statuses") == '["reset","200"]', "event %r", e)
    ctr = counters(redis)
    check(ctr.get("fallbacks") == "1" and ctr.get("retried") == "1", "counters %r", ctr)
    r.stop()

    r2 = env.router(config(env, redis, [dead_addr()], [fb.addr], retry={"attempts": 2}),
                    name="refused")
    resp = h.post_chat(r2.port)
    check(resp.status == 200 and resp.header("x-mock-name") == "fb", "refused: %s from %r",
          resp.status, resp.header("x-mock-name"))
    e = request_events(redis, 2)[1]
    check(e.get("upstream_statuses") == '["connect","connect","200"]' and
          e.get("upstream_attempts") == "3", "refused: event %r", e)


@h.timeout(60)
def test_a_large_held_body_reaches_the_fallback_whole(env):
    """A 3 MB body that the variant rewrites (held, and freed once the primary request
    is built): after a reset the fallback gets all of it, with its own model."""
    redis = h.redis_server(env)
    resetter = env.mock("--reset-after", "-2", name="resetter")
    fb = env.mock(name="fb")
    r = env.router(config(env, redis, [resetter.addr], [fb.addr], retry={"attempts": 1}))
    text = "".join(chr(97 + (i * 7) % 26) for i in range(3 * 1024 * 1024))
    body = h.chat_body(messages=[{"role": "user", "content": text}])
    resp = h.post_chat(r.port, headers={"x-mock-echo": "1"}, body=body)
    check(resp.status == 200 and resp.header("x-mock-name") == "fb", "status %s from %r: %r",
          resp.status, resp.header("x-mock-name"), resp.body[:200])
    got = resp.json()["mock_echo"]["body"]
    check(got["model"] == "fb-model", "model %r", got["model"])
    check(got["messages"][-1]["content"] == text, "the fallback got %d of %d characters",
          len(got["messages"][-1]["content"]), len(text))


@h.timeout(60)
def test_what_is_never_retried(env):
    """A reset after the first byte reaches the client as a cut stream; a streamed
    (unbuffered) body is not sent again; a first-byte timeout is not retried unless
    `timeout` is listed. The fallback gets none of them."""
    redis = h.redis_server(env)
    fb = env.mock(name="fb")
    cutter = env.mock("--reset-after", "2", name="cutter")
    r = env.router(config(env, redis, [cutter.addr], [fb.addr]))
    c = h.Client(r.port)
    try:
        resp = c.request("POST", "/v1/chat/completions", None, h.chat_body(stream=True),
                         allow_abort=True)
    finally:
        c.close()
    check(resp.status == 200 and not resp.complete and resp.header("x-mock-name") == "cutter",
          "a stream cut after 2 events: %r", resp)
    check(fb.stats()["requests"] == 0, "a reset after the first byte went to the fallback")
    r.stop()

    # A large body goes upstream as it arrives (the variant rewrites nothing): kept
    # by nobody, so never retried.
    resetter = env.mock("--reset-after", "-2", name="resetter")
    r = env.router(config(env, redis, [resetter.addr], [fb.addr],
                          variant_extra={"model": None}), name="streamed")
    big = h.chat_body(messages=[{"role": "user", "content": "x" * 300000}])
    resp = h.post_chat(r.port, body=big)
    check(resp.status == 502, "streamed body: status %s: %r", resp.status, resp.body[:200])
    check(fb.stats()["requests"] == 0, "a streamed body was sent again to the fallback")
    r.stop()

    slow = env.mock("--latency-ms", "3000", name="slow")
    cfg = config(env, redis, [slow.addr], [fb.addr])
    cfg["upstreams"]["prim"]["first_byte_timeout_ms"] = 300
    r = env.router(cfg, name="timeout")
    resp = h.post_chat(r.port)
    check(resp.status == 504, "first-byte timeout: status %s", resp.status)
    check(fb.stats()["requests"] == 0, "a first-byte timeout was retried without `timeout`")
    r.stop()
    cfg["upstreams"]["prim"]["retry"] = {"on": ["timeout"]}
    r = env.router(cfg, name="timeout2")
    resp = h.post_chat(r.port)
    check(resp.status == 200 and resp.header("x-mock-name") == "fb",
          "with on: [timeout]: %s from %r", resp.status, resp.header("x-mock-name"))


@h.timeout(60)
def test_retry_after_beyond_the_limit_is_not_waited(env):
    """A 503 with Retry-After: 60 (over retry_after_max_ms): not retried on the same
    upstream; the fallback answers at once."""
    redis = h.redis_server(env)
    bad = env.mock("--error-rate", "1", "--error-status", "503", "--retry-after", "60", name="bad")
    other = env.mock(name="other")
    fb = env.mock(name="fb")
    r = env.router(config(env, redis, [bad.addr, other.addr], [fb.addr]))
    for _ in range(4):
        t0 = time.monotonic()
        resp = h.post_chat(r.port)
        took = time.monotonic() - t0
        check(resp.status == 200, "status %s", resp.status)
        check(took < 5, "a request took %.1f s: Retry-After: 60 was waited for", took)
    nbad = bad.stats()["requests"]
    check(nbad >= 1, "the 503 server got no request")
    check(fb.stats()["requests"] == nbad, "fallback got %d, the 503 server %d",
          fb.stats()["requests"], nbad)


@h.timeout(60)
def test_client_gone_while_a_retry_waits(env):
    """The client leaves while its retry waits out Retry-After: the retry is dropped
    (nothing is sent for it), the event says 499, and the router serves on."""
    redis = h.redis_server(env)
    bad = env.mock("--error-rate", "1", "--error-status", "503", "--retry-after", "2", name="bad")
    good = env.mock(name="good")
    r = env.router(config(env, redis, [bad.addr, good.addr]))
    # Find a request that reaches bad first: its retry waits 2 s; leave after 0.3 s.
    left = 0
    for i in range(4):
        before = bad.stats()["requests"]
        c = h.Client(r.port, timeout_s=0.3)
        try:
            c.request("POST", "/v1/chat/completions", {"x-mock-echo": "1"}, h.chat_body())
        except (h.ReadTimeout, OSError, h.ConnectionClosed):
            left += 1
        finally:
            c.close()
        if bad.stats()["requests"] > before:
            break
    check(left == 1, "%d requests timed out on the client side (want the one that met bad)", left)
    served = good.stats()["requests"]
    time.sleep(2.3)  # past the Retry-After: a retry that was not dropped would reach good now
    check(good.stats()["requests"] == served, "the dropped retry reached the good server")
    check(h.post_chat(r.port).status == 200, "the router does not serve after the drop")
    evs = request_events(redis, 1 + i)
    check(any(e.get("status") == "499" and e.get("upstream_statuses") == '["503"]' for e in evs),
          "no 499 event with the one try: %r", evs)


@h.timeout(60)
def test_fallback_rate_in_metrics_and_admin(env):
    """The fallback rate per variant: Prometheus counters and the admin API."""
    os.environ["SY_TEST_RETRY_TOKEN"] = "t0k3n-for-tests-0123456789"
    redis = h.redis_server(env)
    resetter = env.mock("--reset-after", "-2", name="resetter")
    fb = env.mock(name="fb")
    admin_port = h.free_port()
    cfg = config(env, redis, [resetter.addr], [fb.addr], retry={"attempts": 1},
                 admin={"listen": "127.0.0.1:%d" % admin_port, "token_env": "SY_TEST_RETRY_TOKEN"})
    r = env.router(cfg)
    check(h.wait_until(lambda: h.port_accepts(admin_port), 5), "the admin port does not accept")
    for _ in range(3):
        check(h.post_chat(r.port).status == 200, "not served by the fallback")
    c = h.Client(admin_port)
    try:
        m = c.request("GET", "/metrics", {"authorization": "Bearer t0k3n-for-tests-0123456789"})
    finally:
        c.close()
    text = m.body.decode() if isinstance(m.body, bytes) else m.body
    check('switchyard_fallbacks_total{experiment="chat",variant="a"} 3' in text,
          "no fallback count in /metrics: %s", [l for l in text.splitlines() if "fallback" in l])
    check('switchyard_retried_total{experiment="chat",variant="a"} 3' in text,
          "no retried count in /metrics")
    # status and the admin API read the variant's counters in Redis (after the flush)
    def status_variant():
        p = subprocess.run([h.SWITCHYARD, "status", "--redis", redis.url, "--json"],
                           capture_output=True, text=True, timeout=15, env=h._child_env())
        check(p.returncode == 0, "switchyard status: exit %d: %s", p.returncode, p.stderr)
        vs = json.loads(p.stdout)["experiments"][0]["variants"]
        return vs[0] if vs and vs[0].get("fallbacks") == 3 else None
    v = h.wait_until(status_variant, 5, interval=0.2)
    check(v is not None and v["fallback_rate"] == 1 and v["retried"] == 3,
          "status: %r", v)
    c = h.Client(admin_port)
    try:
        doc = c.request("GET", "/api/experiments/chat",
                        {"authorization": "Bearer t0k3n-for-tests-0123456789"}).json()
    finally:
        c.close()
    av = doc["experiment"]["variants"][0]
    check(av.get("fallbacks") == 3 and av.get("fallback_rate") == 1, "admin API: %r", av)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
