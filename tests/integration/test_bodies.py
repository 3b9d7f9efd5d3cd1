#!/usr/bin/env python3
"""test_bodies.py — request bodies of real size (long prompts, base64 images) through a
variant that rewrites them, and the worker's cap on the bodies it holds at once.

- A 20 MiB body with a base64 image reaches the upstream byte for byte, except the
  rewritten `model` and system prompt (the mock's `x-mock-digest: 1` answers with the
  length and SHA-256 of the body it received, compared with the expected bytes).
- 50 concurrent 10 MB bodies through one worker: with the default cap
  (limits.held_body_bytes, 256 MiB) every one is answered 200 (a 503 is retried after
  its Retry-After, as a client should), and the router's peak RSS stays within the
  bound the README documents: its RSS before the load + held_body_bytes +
  max_body_bytes + 32 MiB of slack (not checked under AddressSanitizer). With a low
  cap, the excess get 503 with a JSON error naming the limit and Retry-After, the rest
  200, the refusals are counted in /metrics, and the peak RSS stays within the same
  bound for the low cap.
- A 2 MB prompt through the config of deploy/examples/minimal.yaml is forwarded (it
  used to get 413 at the old 1 MiB default); a body over max_body_bytes still gets 413
  with its JSON error; a chunked body is charged as it arrives.
After each case the held-bytes gauge (switchyard_held_body_bytes) is back to 0.
"""
import base64
import hashlib
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

MiB = 1 << 20
PROMPT = "You are a careful assistant.\nDescribe \"what you see\"."
TOKEN = "test-admin-token-bodies-0123456789"
TOKEN_ENV = "SY_TEST_BODIES_ADMIN_TOKEN"
DEFAULT_MAX_BODY = 32 * MiB
DEFAULT_HELD = 256 * MiB
SLACK = 32 * MiB  # read buffers, write queues, allocator and libraries


def image_experiment():
    """Every chat completion goes to variant r, which rewrites `model` and the system
    prompt."""
    return {
        "id": "vision",
        "match": {"method": "POST", "path_prefix": "/v1/chat/completions"},
        "policy": "fixed",
        "control": "r",
        "variants": [
            {"id": "r", "upstream": "mock", "model": "model-r", "prompt_version": "careful-v1"},
            {"id": "s", "upstream": "mock", "model": "model-s"},
        ],
    }


def start(env, limits=None, experiment=None):
    os.environ[TOKEN_ENV] = TOKEN
    mock = env.mock()
    admin_port = h.free_port()
    cfg = h.router_config(mock.addr, prompts={"careful-v1": PROMPT},
                          experiments=[experiment or image_experiment()],
                          data_dir=env.path("data"),
                          admin={"listen": "127.0.0.1:%d" % admin_port, "token_env": TOKEN_ENV})
    if limits:
        cfg["limits"] = limits
    # Rewrites run on the worker's loop: under AddressSanitizer a burst of 10 MB bodies
    # can hold it long enough for the default 2 s connect timeout to fire.
    cfg["upstreams"]["mock"]["connect_timeout_ms"] = 20000
    router = env.router(cfg)
    router.admin_port = admin_port
    check(h.wait_until(lambda: h.port_accepts(admin_port), 5), "the admin port does not accept")
    return mock, router


def metric(router, name):
    c = h.Client(router.admin_port)
    try:
        r = c.request("GET", "/metrics", {"authorization": "Bearer " + TOKEN})
    finally:
        c.close()
    check(r.status == 200, "/metrics: %s", r.status)
    m = re.search(r"(?m)^%s (\d+)$" % re.escape(name), r.body.decode())
    check(m is not None, "no %s in /metrics", name)
    return int(m.group(1))


def check_gauge_zero(router):
    ok = h.wait_until(lambda: metric(router, "switchyard_held_body_bytes") == 0, 5)
    check(ok, "switchyard_held_body_bytes did not return to 0: %d",
          metric(router, "switchyard_held_body_bytes"))


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise h.Failure("no %s for pid %d" % (field, pid))


def image_body(raw_bytes, seed, model, system):
    """A chat request with a base64 image in its user message, laid out the way a
    client might (spacing, a number with a trailing zero); bytes."""
    data = base64.b64encode(seed.to_bytes(8, "big") + os.urandom(raw_bytes)).decode()
    return ('{"model": %s, "temperature": 0.70,\n "messages": [\n'
            '  {"role": "system", "content": %s},\n'
            '  {"role": "user", "content": [{"type": "text", "text": "What is in this photo?"},'
            ' {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,%s",'
            ' "detail": "high"}}]}],\n "max_tokens": 16}'
            % (json.dumps(model), json.dumps(system), data)).encode()


def rewritten(original_model, original_system, body):
    """What the variant must send: the same bytes with the model and the system
    prompt's content replaced (json_scan splices; compact JSON quoting)."""
    out = body.replace(json.dumps(original_model).encode(), json.dumps("model-r").encode(), 1)
    return out.replace(json.dumps(original_system).encode(),
                       json.dumps(PROMPT, ensure_ascii=False).encode(), 1)


def post(port, body, headers=None, timeout_s=60):
    c = h.Client(port, timeout_s=timeout_s)
    try:
        hd = {"x-mock-digest": "1", "content-type": "application/json"}
        hd.update(headers or {})
        return c.request("POST", "/v1/chat/completions", hd, body)
    finally:
        c.close()


def check_delivered(r, expected, what):
    check(r.status == 200, "%s: status %s %r", what, r.status, r.body[:300])
    got = r.json().get("mock_body")
    check(isinstance(got, dict), "%s: no mock_body in the answer %r", what, r.body[:300])
    check(got["bytes"] == len(expected), "%s: the upstream received %d bytes, expected %d", what,
          got["bytes"], len(expected))
    check(got["sha256"] == hashlib.sha256(expected).hexdigest(),
          "%s: the upstream received other bytes than expected (same length %d)", what,
          len(expected))


@h.timeout(60)
def test_20mib_image_rewritten_byte_exact(env):
    mock, router = start(env)
    body = image_body(15 * MiB, 1, "client-model", "old prompt")
    check(len(body) >= 20 * MiB, "the body is %d bytes", len(body))
    expected = rewritten("client-model", "old prompt", body)
    check(expected != body and abs(len(expected) - len(body)) < 100, "bad expectation")
    cpu0 = sum(int(x) for x in open("/proc/%d/stat" % router.proc.pid).read().split()[13:15])
    t0 = time.monotonic()
    r = post(router.port, body)
    dt = time.monotonic() - t0
    cpu = sum(int(x) for x in open("/proc/%d/stat" % router.proc.pid).read().split()[13:15]) - cpu0
    check_delivered(r, expected, "20 MiB image")
    check(r.json()["model"] == "model-r", "answered for model %r", r.json()["model"])
    check(r.header("x-switchyard-variant") == "r", "variant %r", r.header("x-switchyard-variant"))
    print("20 MiB body: %.2f s end to end, router cpu %.2f s, peak RSS %d KiB"
          % (dt, cpu / os.sysconf("SC_CLK_TCK"), rss_kib(router.proc.pid, "VmHWM")))
    # A second one on a kept-alive connection is the same (the buffers were released).
    body2 = image_body(15 * MiB, 2, "other-model", "another old prompt")
    c = h.Client(router.port, timeout_s=60)
    try:
        for _ in range(2):
            r = c.request("POST", "/v1/chat/completions", {"x-mock-digest": "1"}, body2)
            check_delivered(r, rewritten("other-model", "another old prompt", body2), "kept alive")
    finally:
        c.close()
    check_gauge_zero(router)


def run_concurrent(port, bodies, retry):
    """POSTs every body at once, one thread and connection each; with retry, a 503 is
    sent again after its Retry-After. Returns [(final response, attempts)] and the
    503 responses seen."""
    results = [None] * len(bodies)
    refusals = []
    lock = threading.Lock()
    go = threading.Event()

    def one(i):
        go.wait()
        attempts = 0
        while True:
            attempts += 1
            try:
                r = post(port, bodies[i], {"x-mock-latency-ms": "300"}, timeout_s=120)
            except Exception as e:  # noqa: BLE001 — reported below
                results[i] = (e, attempts)
                return
            if r.status == 503:
                with lock:
                    refusals.append(r)
                if retry and attempts < 200:
                    time.sleep(float(r.header("retry-after") or "1"))
                    continue
            results[i] = (r, attempts)
            return

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(bodies))]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(600)
    return results, refusals


def sample_rss(pid, stop, peak):
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], rss_kib(pid))
        except (OSError, h.Failure):
            return
        time.sleep(0.01)


def concurrent_case(env, limits, retry):
    mock, router = start(env, limits)
    pid = router.proc.pid
    # Warm up (first allocations, the admin page) before the baseline is read.
    small = image_body(64 * 1024, 0, "client-model", "old prompt")
    check_delivered(post(router.port, small), rewritten("client-model", "old prompt", small),
                    "warm-up")
    metric(router, "switchyard_held_body_bytes")
    base = rss_kib(pid)
    bodies = [image_body(7_500_000, i, "client-model", "old prompt") for i in range(50)]
    check(all(9_900_000 < len(b) < 10_100_000 for b in bodies), "bodies are not ~10 MB")
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=sample_rss, args=(pid, stop, peak), daemon=True)
    sampler.start()
    results, refusals = run_concurrent(router.port, bodies, retry)
    stop.set()
    sampler.join(5)
    hwm = rss_kib(pid, "VmHWM")
    held = (limits or {}).get("held_body_bytes", DEFAULT_HELD)
    max_body = (limits or {}).get("max_body_bytes", DEFAULT_MAX_BODY)
    bound = base + (held + max_body + SLACK) // 1024
    print("50 x 10 MB, held_body_bytes %d MiB: baseline RSS %d KiB, peak sampled %d KiB, "
          "VmHWM %d KiB, bound %d KiB; %d refusals"
          % (held // MiB, base, peak[0], hwm, bound, len(refusals)))
    for i, (r, attempts) in enumerate(results):
        check(not isinstance(r, Exception), "request %d failed: %r", i, r)
    # Under AddressSanitizer memory figures mean little (shadow memory, quarantine).
    check(h.sanitized(pid) or hwm <= bound,
          "router peak RSS %d KiB over the documented bound %d KiB", hwm, bound)
    check_gauge_zero(router)
    return router, bodies, results, refusals


def check_refusals(router, refusals):
    """Each 503 is the documented one, and /metrics counted every one."""
    for r in refusals:
        check_refusal(r)
    counted = metric(router, "switchyard_held_body_refused_total")
    check(counted == len(refusals), "refusals counted %d, seen %d", counted, len(refusals))


def check_refusal(r):
    check(r.status == 503, "status %s", r.status)
    j = r.json()
    err = j.get("error") or {}
    check(err.get("code") == "held_body_limit" and err.get("type") == "overloaded_error",
          "503 error %r", j)
    check("limits.held_body_bytes" in err.get("message", ""), "the 503 does not name the limit: %r",
          err.get("message"))
    check(r.header("retry-after") == "1", "Retry-After %r", r.header("retry-after"))


@h.timeout(240)
def test_50_concurrent_10mb_default_cap(env):
    router, bodies, results, refusals = concurrent_case(env, None, retry=True)
    for i, (r, attempts) in enumerate(results):
        check_delivered(r, rewritten("client-model", "old prompt", bodies[i]), "body %d" % i)
    check_refusals(router, refusals)


@h.timeout(240)
def test_50_concurrent_10mb_low_cap(env):
    limits = {"held_body_bytes": 64 * MiB, "max_body_bytes": 16 * MiB}
    router, bodies, results, refusals = concurrent_case(env, limits, retry=False)
    ok = [i for i, (r, _) in enumerate(results) if r.status == 200]
    refused = [r for r, _ in results if r.status == 503]
    check(len(ok) + len(refused) == 50, "statuses %r", sorted(r.status for r, _ in results))
    check(len(refused) > 0, "no 503 with 50 x 10 MB against a 64 MiB cap")
    check(len(ok) >= 6, "only %d answered 200: the cap holds six 10 MB bodies", len(ok))
    for i in ok:
        check_delivered(results[i][0], rewritten("client-model", "old prompt", bodies[i]),
                        "body %d" % i)
    check_refusals(router, refused)


@h.timeout(60)
def test_minimal_example_2mb_prompt_and_413(env):
    """The chat experiment of deploy/examples/minimal.yaml (a model rewrite) with the
    default limits."""
    mock, router = start(env, experiment=h.chat_experiment())
    words = ("lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 40000)[:2_000_000]
    body = json.dumps({"model": "client-model",
                       "messages": [{"role": "user", "content": words}]}).encode()
    r = post(router.port, body, {"x-user-id": "u1"})
    variant = r.header("x-switchyard-variant")
    check(variant in ("a", "b"), "variant %r (status %s %r)", variant, r.status, r.body[:200])
    expected = body.replace(b'"client-model"', json.dumps("model-" + variant).encode(), 1)
    check_delivered(r, expected, "2 MB prompt")
    # Chunked: charged as it arrives, forwarded the same.
    c = h.Client(router.port, timeout_s=60)
    try:
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536])
                          for i in range(0, len(body), 65536)) + b"0\r\n\r\n"
        r = c.request("POST", "/v1/chat/completions",
                      {"x-user-id": "u1", "x-mock-digest": "1", "transfer-encoding": "chunked"},
                      chunks)
        check_delivered(r, expected, "2 MB prompt, chunked")
    finally:
        c.close()
    # Over max_body_bytes: 413 with its JSON error, before the body is read.
    big = b'{"model": "m", "messages": [], "pad": "' + b"x" * DEFAULT_MAX_BODY + b'"}'
    r = post(router.port, big, {"x-user-id": "u1"})
    check(r.status == 413, "a body over max_body_bytes: status %s", r.status)
    err = r.json().get("error") or {}
    check(err.get("code") == "payload_too_large" and str(DEFAULT_MAX_BODY) in err.get("message", ""),
          "413 error %r", err)
    check_gauge_zero(router)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
