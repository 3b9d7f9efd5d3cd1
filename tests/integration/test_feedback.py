#!/usr/bin/env python3
"""test_feedback.py — the Redis feedback loop end to end, with real processes and a real
redis-server (the router's embedded one, or a standalone one): feedback and outcomes
move the statistics of the variant that served the trace, once; the API's errors; the
attribution window (410, then 404); the sweeper that counts missing outcomes as
failures; comment scrubbing by consent; two routers sharing one Redis converge on one
posterior; the embedded Redis stops with the router and its data survives a restart;
`switchyard status` reports what Redis holds.
"""
import json
import os
import signal
import secrets
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

# API key secrets: the config names the environment variables, the router reads them
# at load time; the harness passes this process's environment to its children.
ACME_KEY = "acme-" + secrets.token_hex(16)
OTHER_KEY = "other-" + secrets.token_hex(16)
os.environ["SY_FBTEST_KEY_ACME"] = ACME_KEY
os.environ["SY_FBTEST_KEY_OTHER"] = OTHER_KEY

BINARY = {"metric": "resolved", "type": "binary"}
EMAIL_COMMENT = "reach me at jane.doe@example.com or +1 415 555 0100"


# ---- configs -------------------------------------------------------------------------

def experiment(eid="chat", policy="split", outcome=None, header_value=None):
    """Experiment eid, variants a (control) and b on upstream mock; with header_value,
    it only matches requests with x-exp: header_value."""
    match = {"method": "POST", "path_prefix": "/v1/chat/completions"}
    if header_value is not None:
        match.update({"header": "x-exp", "header_value": header_value})
    e = {"id": eid, "match": match, "policy": policy, "control": "a",
         "variants": [{"id": "a", "upstream": "mock", "model": "model-a"},
                      {"id": "b", "upstream": "mock", "model": "model-b"}]}
    if outcome is not None:
        e["outcome"] = outcome
    return e


def config(env, mock, experiments, data="data", **extra):
    """A router config: the experiments, both API keys (tenants acme and other), and
    data_dir ENV/data (absolute, so neither the router nor `status --config` depends on
    the working directory)."""
    cfg = h.router_config(mock.addr, experiments=experiments, data_dir=env.path(data),
                          api_keys=[
                              {"name": "acme", "secret_env": "SY_FBTEST_KEY_ACME",
                               "tenant": "acme"},
                              {"name": "other", "secret_env": "SY_FBTEST_KEY_OTHER",
                               "tenant": "other"}])
    cfg.update(extra)
    return cfg


def embedded(env, router, data="data"):
    """A client of the router's embedded Redis (socket DATA/redis.sock)."""
    sock = os.path.join(env.path(data), "redis.sock")
    check(h.wait_until(lambda: h.redis_ping(sock), 5), "embedded redis not answering on %s:\n%s",
          sock, router.stderr_tail())
    rc = h.RedisClient(sock)
    env.closers.append(rc.close)
    return rc


# ---- HTTP ----------------------------------------------------------------------------

def chat(port, headers=None):
    """One chat completion; returns (trace id, variant)."""
    r = h.post_chat(port, headers or {"x-switchyard-tenant": "acme"})
    check(r.status == 200, "chat: status %s: %r", r.status, r.body[:200])
    tid, var = r.header("x-switchyard-trace-id"), r.header("x-switchyard-variant")
    check(tid is not None and len(tid) == 32, "trace id header %r", tid)
    check(var in ("a", "b"), "variant header %r", var)
    return tid, var


def api(port, what, body, key=ACME_KEY, method="POST", headers=None):
    """POST /switchyard/v1/WHAT with body (a JSON-able object, or str/bytes sent as is)."""
    hdrs = dict(headers or {})
    if key is not None:
        hdrs["Authorization"] = "Bearer " + key
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    c = h.Client(port)
    try:
        return c.request(method, "/switchyard/v1/" + what, hdrs, body)
    finally:
        c.close()


def feedback(port, tid, ftype="thumbs", value=1, key=ACME_KEY, **more):
    body = {"trace_id": tid, "type": ftype}
    if value is not None:
        body["value"] = value
    body.update(more)
    return api(port, "feedback", body, key=key)


def outcome(port, tid, value, metric="resolved", key=ACME_KEY):
    return api(port, "outcome", {"trace_id": tid, "metric": metric, "value": value}, key=key)


def check_applied(r, kind):
    check(r.status == 200, "%s: status %s: %r", kind, r.status, r.body[:300])
    b = r.json()
    check(b.get("applied") is True and b.get("duplicate") is False and b.get("kind") == kind,
          "%s not applied: %r", kind, b)


def check_duplicate(r, kind):
    check(r.status == 200, "repeated %s: status %s: %r", kind, r.status, r.body[:300])
    b = r.json()
    check(b.get("applied") is False and b.get("duplicate") is True and b.get("kind") == kind,
          "repeated %s not a duplicate: %r", kind, b)
    check(isinstance(b.get("first_event_id"), str) and b["first_event_id"],
          "duplicate without first_event_id: %r", b)
    return b["first_event_id"]


# ---- Redis ---------------------------------------------------------------------------

def wait_trace(rc, tid, timeout_s=3):
    """Waits until the trace record has reached Redis (the journal flushes every
    events.flush_ms, asynchronously to the response)."""
    check(h.wait_until(lambda: rc.trace(tid) != {}, timeout_s),
          "trace record of %s never reached Redis", tid)


def var_stats(rc, v, exp="chat"):
    """sy:{EXP}:v:V with numbers as floats."""
    return {k: float(x) for k, x in rc.hgetall("sy:{%s}:v:%s" % (exp, v)).items()}


def total(rc, field, exp="chat"):
    return sum(var_stats(rc, v, exp).get(field, 0.0) for v in ("a", "b"))


def events_of(rc, tid=None, etype=None):
    """The stream's events (field dicts), optionally only of one trace and/or type."""
    return [f for _, f in rc.stream("sy:events")
            if (tid is None or f.get("trace_id") == tid)
            and (etype is None or f.get("event_type") == etype)]


def wait_events(rc, tid, etype, count, timeout_s=3):
    got = h.wait_until(lambda: len(events_of(rc, tid, etype)) >= count and
                       events_of(rc, tid, etype), timeout_s)
    check(got, "%d %s event(s) of trace %s never appeared: %r", count, etype, tid,
          events_of(rc, tid))
    return got


def close(a, b, eps=1e-9):
    return abs(a - b) <= eps


def pid_alive(pid):
    """True if pid is a live process (not a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def health(port):
    c = h.Client(port)
    try:
        r = c.request("GET", "/switchyard/v1/health")
        check(r.status == 200, "health: status %s: %r", r.status, r.body[:200])
        return r.json()
    finally:
        c.close()


def status_cmd(*args):
    """Runs `switchyard status ARGS`; returns (exit status, stdout, stderr)."""
    p = subprocess.run([h.SWITCHYARD, "status"] + list(args), capture_output=True, text=True,
                       timeout=15, env=h._child_env())
    check(not any(m in p.stderr for m in h.SANITIZER_MARKERS),
          "sanitizer report from switchyard status:\n%s", p.stderr)
    return p.returncode, p.stdout, p.stderr


def status_json(*args):
    rc, out, err = status_cmd(*(list(args) + ["--json"]))
    check(rc == 0, "switchyard status --json: exit %d: %s", rc, err)
    try:
        return json.loads(out)
    except ValueError:
        raise h.Failure("switchyard status --json printed no JSON: %r" % out[:500])


def status_variants(doc, exp="chat"):
    """{variant id: its JSON object} of experiment exp in a status document."""
    for e in doc.get("experiments", []):
        if e.get("id") == exp:
            return {v["id"]: v for v in e["variants"]}
    raise h.Failure("experiment %s not in status output: %r" % (exp, doc))


# ---- the tests -----------------------------------------------------------------------

def test_feedback_moves_the_right_variant_once(env):
    mock = env.mock()
    out = dict(BINARY, proxies={"thumbs": 0.5})
    router = env.router(config(env, mock, [experiment(outcome=out)]))
    rc = embedded(env, router)
    tid, var = chat(router.port)
    other = "b" if var == "a" else "a"
    wait_trace(rc, tid)
    rec = rc.trace(tid)
    check(rec.get("e") == "chat" and rec.get("v") == var and rec.get("tn") == "acme",
          "trace record %r (served by %s)", rec, var)

    check_applied(feedback(router.port, tid, "thumbs", 1), "feedback")
    first_fb = check_duplicate(feedback(router.port, tid, "thumbs", 1), "feedback")
    # A thumbs down after the thumbs up is the same (trace, type): also a duplicate.
    check_duplicate(feedback(router.port, tid, "thumbs", -1), "feedback")
    st = var_stats(rc, var)
    check(close(st.get("fb:thumbs:n", 0), 1) and close(st.get("fb:thumbs:sum", 0), 1),
          "fb:thumbs of %s: %r", var, st)
    check(close(st.get("n", 0), 0.5) and close(st.get("sum", 0), 0.5)
          and close(st.get("sumsq", 0), 0.5), "thumbs up with weight 0.5 on %s: %r", var, st)
    check("outcomes" not in st, "feedback counted as an outcome: %r", st)
    ost = var_stats(rc, other)
    for f in ("fb:thumbs:n", "fb:thumbs:sum", "n", "sum", "sumsq", "outcomes"):
        check(f not in ost, "the other variant %s got %s: %r", other, f, ost)

    check_applied(outcome(router.port, tid, True), "outcome")
    first_out = check_duplicate(outcome(router.port, tid, True), "outcome")
    check_duplicate(outcome(router.port, tid, 0), "outcome")
    st = var_stats(rc, var)
    check(close(st.get("n", 0), 1.5) and close(st.get("sum", 0), 1.5)
          and close(st.get("outcomes", 0), 1), "after the outcome, %s: %r", var, st)
    check(close(st.get("fb:thumbs:n", 0), 1), "fb:thumbs:n moved again: %r", st)
    ost = var_stats(rc, other)
    check(not any(f in ost for f in ("n", "sum", "outcomes")), "other variant moved: %r", ost)

    applied = rc.hgetall("sy:{chat}:applied:" + tid)
    check(set(applied) == {"fb:thumbs", "out:resolved"}, "applied hash %r", applied)
    check(applied["fb:thumbs"] == first_fb and applied["out:resolved"] == first_out,
          "first_event_id %s/%s vs applied hash %r", first_fb, first_out, applied)
    ttl = rc.command("TTL", "sy:{chat}:applied:" + tid)
    check(86000 < ttl <= 90000, "applied hash TTL %s, wanted the trace record's (1 d + 1 h)", ttl)

    wait_events(rc, tid, "request", 1)
    evs = events_of(rc, tid)
    kinds = sorted(e.get("event_type") for e in evs)
    check(kinds == ["feedback", "outcome", "request"], "events of the trace: %r", kinds)
    fb = events_of(rc, tid, "feedback")[0]
    check(fb.get("event_id") == first_fb and fb.get("feedback_type") == "thumbs"
          and float(fb.get("feedback_value", "nan")) == 1 and fb.get("variant") == var
          and fb.get("experiment") == "chat" and fb.get("tenant_id") == "acme",
          "feedback event %r", fb)
    oe = events_of(rc, tid, "outcome")[0]
    check(oe.get("event_id") == first_out and oe.get("outcome_metric_name") == "resolved"
          and float(oe.get("outcome_metric_value", "nan")) == 1 and oe.get("variant") == var,
          "outcome event %r", oe)
    req = events_of(rc, tid, "request")[0]
    check(req.get("variant") == var and req.get("status") == "200"
          and req.get("tenant_id") == "acme", "request event %r", req)


def test_schema4_trace_record_still_takes_feedback(env):
    """A rolling upgrade: a trace routed by a schema 4 router (its record the old
    sy:trace:T hash) gets feedback and an outcome from a schema 5 router, once each,
    and the stream then holds schema 4's and schema 5's layouts side by side."""
    mock = env.mock()
    out = dict(BINARY, proxies={"thumbs": 1})
    router = env.router(config(env, mock, [experiment(outcome=out)]))
    rc = embedded(env, router)
    tid5, var5 = chat(router.port)  # a schema 5 record beside it
    wait_trace(rc, tid5)
    tid = "4" * 31 + "1"
    now = int(time.time() * 1000)
    rc.command("HSET", "sy:trace:" + tid, "e", "chat", "v", "b", "ver", "1", "tn", "acme",
               "t", str(now), "p", "0.5", "s", "", "cs", "metrics", "w", "86400")
    rc.command("EXPIRE", "sy:trace:" + tid, "90000")
    rec = rc.trace(tid)
    check(rec.get("v") == "b" and rec.get("e") == "chat", "schema 4 record read as %r", rec)
    before = var_stats(rc, "b")
    check_applied(feedback(router.port, tid, "thumbs", 1), "feedback")
    check_duplicate(feedback(router.port, tid, "thumbs", 1), "feedback")
    check_applied(outcome(router.port, tid, 1), "outcome")
    st = var_stats(rc, "b")
    check(close(st.get("fb:thumbs:n", 0) - before.get("fb:thumbs:n", 0), 1)
          and close(st.get("outcomes", 0) - before.get("outcomes", 0), 1)
          and close(st.get("iw", 0) - before.get("iw", 0), 4),  # two observations, 1/0.5 each
          "variant b after feedback on a schema 4 trace: %r (before %r)", st, before)
    fb = events_of(rc, tid, "feedback")
    check(len(fb) == 1 and fb[0].get("variant") == "b" and fb[0].get("schema_version") == "5"
          and fb[0].get("experiment") == "chat", "feedback event of the schema 4 trace %r", fb)
    raw = [dict(zip(x[0::2], x[1::2])) for _, x in rc.command("XRANGE", "sy:events", "-", "+")]
    check(any("e" in f for f in raw) and any("event_type" in f for f in raw),
          "the stream should hold both layouts: %r", raw[:3])
    # and the schema 5 trace, as a control
    check_applied(feedback(router.port, tid5, "thumbs", 1), "feedback")


def test_outcome_right_after_the_response(env):
    """proto/API.md: 404 is for a trace never routed or far past its window. A client
    that reports an outcome as soon as it has the response (an automated check, say)
    must not get 404 because the trace record is still in the router's journal queue."""
    mock = env.mock()
    router = env.router(config(env, mock, [experiment(outcome=BINARY)]))
    rc = embedded(env, router)
    statuses = []
    for _ in range(20):
        tid, var = chat(router.port)
        r = outcome(router.port, tid, 1)  # at once: no waiting for the journal
        statuses.append(r.status)
    check(statuses.count(200) == 20, "outcomes sent right after their responses: %r (404: "
          "the trace record had not reached Redis yet)", statuses)
    check(close(total(rc, "outcomes"), 20), "outcomes in Redis: %s", total(rc, "outcomes"))


def test_error_statuses(env):
    mock = env.mock()
    router = env.router(config(env, mock, [experiment(outcome=dict(BINARY,
                                                                   proxies={"thumbs": 1}))]))
    rc = embedded(env, router)
    tid, var = chat(router.port)
    wait_trace(rc, tid)
    port = router.port

    def err(r, status, code=None):
        h.check_error_body(r, status, code)

    unknown = secrets.token_hex(16)
    err(feedback(port, unknown), 404, "unknown_trace")
    err(outcome(port, unknown, 1), 404, "unknown_trace")
    err(api(port, "feedback", "{not json"), 400, "invalid_json")
    err(api(port, "outcome", ""), 400, "invalid_json")
    bad_bodies = [
        ("feedback", [1, 2]),
        ("feedback", {"type": "thumbs", "value": 1}),                       # no trace_id
        ("feedback", {"trace_id": tid, "value": 1}),                        # no type
        ("feedback", {"trace_id": tid, "type": "bogus", "value": 1}),
        ("feedback", {"trace_id": tid, "type": "thumbs"}),                  # no value
        ("feedback", {"trace_id": tid, "type": "thumbs", "value": 7}),
        ("feedback", {"trace_id": tid, "type": "thumbs", "value": "up"}),
        ("feedback", {"trace_id": tid, "type": "custom", "value": 1}),      # no name
        ("feedback", {"trace_id": tid, "type": "thumbs", "value": 1, "comment": 5}),
        ("feedback", {"trace_id": tid, "type": "thumbs", "value": 1, "extra": 1}),
        ("feedback", {"trace_id": "zz" * 16, "type": "thumbs", "value": 1}),
        ("feedback", {"trace_id": "0" * 32, "type": "thumbs", "value": 1}),
        ("feedback", {"trace_id": tid[:31], "type": "thumbs", "value": 1}),
        ("outcome", {"trace_id": tid, "value": 1}),                         # no metric
        ("outcome", {"trace_id": tid, "metric": "resolved"}),               # no value
        ("outcome", {"trace_id": tid, "metric": "resolved", "value": None}),
    ]
    for what, body in bad_bodies:
        r = api(port, what, body)
        check(r.status == 400, "%s %r: status %s, wanted 400: %r", what, body, r.status,
              r.body[:200])
        err(r, 400, "invalid_body")
    # Checked against the trace's experiment: the metric's name and type.
    err(outcome(port, tid, 0.5), 400, "invalid_value")
    err(outcome(port, tid, 1, metric="revenue"), 400, "invalid_value")
    # Authentication and ownership.
    err(feedback(port, tid, key=None), 401, "invalid_api_key")
    err(feedback(port, tid, key="not-a-key-of-this-router-0123456789"), 401, "invalid_api_key")
    err(api(port, "outcome", {"trace_id": tid, "metric": "resolved", "value": 1}, key=None,
            headers={"Authorization": ACME_KEY}), 401, "invalid_api_key")  # no "Bearer "
    err(feedback(port, tid, key=OTHER_KEY), 403, "wrong_tenant")
    err(outcome(port, tid, 1, key=OTHER_KEY), 403, "wrong_tenant")
    err(api(port, "outcome", {"trace_id": tid, "metric": "resolved", "value": 1}, key=None,
            headers={"x-switchyard-key": OTHER_KEY}), 403, "wrong_tenant")
    err(api(port, "feedback", None, method="GET"), 405, "method_not_allowed")
    err(api(port, "nosuch", {}), 404, "not_found")

    # None of that moved anything or wrote an event.
    for v in ("a", "b"):
        st = var_stats(rc, v)
        moved = [f for f in st if f in ("n", "sum", "outcomes") or f.startswith("fb:")]
        check(not moved, "a refused call moved %s of %s: %r", moved, v, st)
    check(rc.command("EXISTS", "sy:{chat}:applied:" + tid) == 0, "applied hash after errors")
    wait_events(rc, tid, "request", 1)
    check([e["event_type"] for e in events_of(rc)] == ["request"],
          "events after refused calls: %r", events_of(rc))
    # And the right key, in the x-switchyard-key header, still works afterwards.
    check_applied(api(port, "outcome", {"trace_id": tid, "metric": "resolved", "value": False},
                      key=None, headers={"x-switchyard-key": ACME_KEY}), "outcome")
    st = var_stats(rc, var)
    check(close(st.get("n", 0), 1) and close(st.get("sum", -1), 0), "outcome 0: %r", st)


@h.timeout(40)
def test_window_closes(env):
    mock = env.mock()
    router = env.router(config(env, mock, [experiment(outcome=dict(BINARY, window=2,
                                                                   proxies={"thumbs": 1}))]))
    rc = embedded(env, router)
    t0 = time.time()
    tid, var = chat(router.port)
    wait_trace(rc, tid)
    rec = rc.trace(tid)
    w = int(rec["w"])
    left = (int(rec["t"]) + (w + min(w, 3600)) * 1000) / 1000 - time.time()
    check(2.5 <= left <= 4.2, "trace record lives %.2f s more, wanted window + min(window, 1h)"
          " = 4 s from the request", left)
    check_applied(outcome(router.port, tid, 1), "outcome")  # within the window

    time.sleep(max(0, t0 + 2.5 - time.time()))
    h.check_error_body(feedback(router.port, tid), 410, "window_closed")
    time.sleep(max(0, t0 + 3.4 - time.time()))
    h.check_error_body(feedback(router.port, tid), 410, "window_closed")
    h.check_error_body(outcome(router.port, tid, 1), 410, "window_closed")

    def gone():
        r = feedback(router.port, tid)
        check(r.status in (404, 410), "late feedback: status %s: %r", r.status, r.body[:200])
        return r if r.status == 404 else None
    r = h.wait_until(gone, t0 + 7 - time.time(), interval=0.1)
    check(r is not None, "the trace is still known %.1f s after the request", time.time() - t0)
    elapsed = time.time() - t0
    check(elapsed >= 3.9, "404 already %.2f s after the request (TTL is 4 s)", elapsed)
    h.check_error_body(r, 404, "unknown_trace")
    st = var_stats(rc, var)
    check(close(st.get("n", 0), 1) and close(st.get("outcomes", 0), 1)
          and "fb:thumbs:n" not in st, "late calls moved the statistics: %r", st)


@h.timeout(40)
def test_missing_failure_sweeper(env):
    mock = env.mock()
    fail = experiment("chat", outcome=dict(BINARY, window=2, missing="failure"))
    ign = experiment("ign", outcome=dict(BINARY, window=2, missing="ignore"), header_value="ign")
    router = env.router(config(env, mock, [fail, ign], events={"sync_ms": 200}))
    rc = embedded(env, router)
    t0 = time.time()
    traces = [chat(router.port) for _ in range(4)]
    ign_traces = [chat(router.port, {"x-switchyard-tenant": "acme", "x-exp": "ign"})
                  for _ in range(3)]
    for tid, _ in traces + ign_traces:
        wait_trace(rc, tid)
    check(all(rc.trace(t)["e"] == "ign" for t, _ in ign_traces),
          "x-exp: ign did not route to experiment ign")
    check_applied(outcome(router.port, traces[0][0], 1), "outcome")
    check_applied(outcome(router.port, ign_traces[0][0], 1), "outcome")
    pending = rc.command("ZRANGE", "sy:{chat}:pending", 0, -1)
    want = sorted("%s|%s|" % (t, v) for t, v in traces[1:])
    check(time.time() - t0 < 2, "too slow to see the pending set in the window")
    check(sorted(pending) == want, "pending in the window: %r, wanted %r", pending, want)
    check(rc.command("EXISTS", "sy:{ign}:pending") == 0, "missing: ignore keeps a pending set")
    check(close(total(rc, "n"), 1), "n before the window closed: %s", total(rc, "n"))

    def swept():
        return total(rc, "missing_failures") >= 3
    check(h.wait_until(swept, 6, interval=0.1), "sweeper did not count 3 failures: %r",
          [var_stats(rc, v) for v in ("a", "b")])
    check(time.time() - t0 >= 2, "failures counted before the window closed")
    time.sleep(0.6)  # a few more sweeps: nothing is counted twice
    check(close(total(rc, "n"), 4), "n %s, wanted 1 outcome + 3 failures", total(rc, "n"))
    check(close(total(rc, "missing_failures"), 3), "missing_failures %s",
          total(rc, "missing_failures"))
    check(close(total(rc, "sum"), 1) and close(total(rc, "outcomes"), 1),
          "sum %s outcomes %s", total(rc, "sum"), total(rc, "outcomes"))
    for v in ("a", "b"):
        want_mf = sum(1 for _, tv in traces[1:] if tv == v)
        check(close(var_stats(rc, v).get("missing_failures", 0), want_mf),
              "variant %s: missing_failures %r, wanted %d", v, var_stats(rc, v), want_mf)
    check(rc.command("ZCARD", "sy:{chat}:pending") == 0, "pending not empty after the sweep")
    missing = [e for e in events_of(rc, etype="outcome") if e.get("outcome_missing") == "true"]
    check(sorted((e["trace_id"], e["variant"]) for e in missing) == sorted(traces[1:]),
          "missing-outcome events %r, wanted %r", missing, traces[1:])
    check(all(e.get("outcome_metric_value") == "0" and e.get("experiment") == "chat"
              for e in missing), "missing-outcome events: %r", missing)
    # missing: ignore: only the outcome that arrived counts, after the window too.
    check(close(total(rc, "n", "ign"), 1) and close(total(rc, "sum", "ign"), 1)
          and total(rc, "missing_failures", "ign") == 0,
          "ign after the window: %r", [var_stats(rc, v, "ign") for v in ("a", "b")])


def test_comment_scrubbing(env):
    mock = env.mock()
    router = env.router(config(env, mock, [experiment(outcome=BINARY)]))
    rc = embedded(env, router)
    base = {"x-switchyard-tenant": "acme", "x-switchyard-user": "jane.doe@example.com"}
    tid_c, _ = chat(router.port, dict(base, **{"x-switchyard-consent": "content"}))
    tid_m, _ = chat(router.port, base)                     # consent metrics (the default)
    tid_n, _ = chat(router.port, dict(base, **{"x-switchyard-consent": "none"}))
    for tid in (tid_c, tid_m, tid_n):
        wait_trace(rc, tid)
        check_applied(feedback(router.port, tid, comment=EMAIL_COMMENT), "feedback")

    fb = wait_events(rc, tid_c, "feedback", 1)[0]
    comment = fb.get("feedback_comment")
    check(comment is not None, "consent content: no feedback_comment: %r", fb)
    check("[email]" in comment and "[phone]" in comment, "comment not scrubbed: %r", comment)
    for raw in ("jane", "example.com", "@", "415", "555", "0100"):
        check(raw not in comment, "scrubbed comment still holds %r: %r", raw, comment)
    check(comment.startswith("reach me at "), "the rest of the comment was lost: %r", comment)
    flags = json.loads(fb.get("redaction_flags", "null"))
    check(isinstance(flags, list) and "email" in flags and "phone" in flags
          and "comment" not in flags, "redaction_flags %r", flags)
    check(fb.get("consent_scope") == "content", "consent_scope %r", fb.get("consent_scope"))

    for tid, scope in ((tid_m, "metrics"), (tid_n, "none")):
        fb = wait_events(rc, tid, "feedback", 1)[0]
        check("feedback_comment" not in fb, "consent %s kept the comment: %r", scope, fb)
        flags = json.loads(fb.get("redaction_flags", "null"))
        check(isinstance(flags, list) and "comment" in flags, "consent %s: flags %r", scope, flags)
        check(fb.get("consent_scope") == scope, "consent_scope %r, wanted %s",
              fb.get("consent_scope"), scope)

    # The raw address appears nowhere in Redis's stream; user ids are keyed hashes,
    # and absent with consent none.
    for tid in (tid_c, tid_m, tid_n):
        wait_events(rc, tid, "request", 1)
    for e in events_of(rc):
        for k, v in e.items():
            check("jane.doe" not in v and "555 0100" not in v, "raw text in %s of %r", k, e)
    for tid, has_user in ((tid_c, True), (tid_m, True), (tid_n, False)):
        req = events_of(rc, tid, "request")[0]
        uid = req.get("user_id")
        if has_user:
            check(uid is not None and len(uid) == 32, "user_id %r of %s", uid, tid)
        else:
            check(uid is None, "consent none stored user_id %r", uid)


@h.timeout(60)
def test_two_routers_converge(env):
    redis = h.redis_server(env)
    mock = env.mock()
    exp = experiment(policy="thompson", outcome=BINARY)
    port1, port2 = h.free_port(), h.free_port()
    cfg1 = config(env, mock, [exp], data="data1", redis={"url": redis.url},
                  events={"sync_ms": 200}, listen=["127.0.0.1:%d" % port1])
    cfg2 = dict(cfg1, listen=["127.0.0.1:%d" % port2], data_dir=env.path("data2"))
    r1 = env.router(cfg1, name="router1")
    r2 = env.router(cfg2, name="router2")
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)

    # Traces first (no outcomes yet, so the posterior is flat): 40 of each variant.
    got = {"a": [], "b": []}
    sent = 0
    c = h.Client(r1.port)
    while (len(got["a"]) < 40 or len(got["b"]) < 40) and sent < 1000:
        r = c.request("POST", "/v1/chat/completions", {"x-switchyard-tenant": "acme"},
                      h.chat_body())
        check(r.status == 200, "router 1: status %s", r.status)
        got[r.header("x-switchyard-variant")].append(r.header("x-switchyard-trace-id"))
        sent += 1
    c.close()
    check(len(got["a"]) >= 40 and len(got["b"]) >= 40, "a flat posterior served %r",
          {k: len(v) for k, v in got.items()})
    for tid in got["a"][-1:] + got["b"][-1:]:
        wait_trace(rc, tid)
    rates = {"a": 4, "b": 36}  # successes out of 40: 0.1 and 0.9
    for v in ("a", "b"):
        for i, tid in enumerate(got[v][:40]):
            check_applied(outcome(r1.port, tid, 1 if i < rates[v] else 0), "outcome")
    t_last = time.monotonic()

    for v in ("a", "b"):
        st = var_stats(rc, v)
        check(close(st.get("n", 0), 40) and close(st.get("sum", 0), rates[v])
              and close(st.get("outcomes", 0), 40), "variant %s in Redis: %r", v, st)

    def status_agrees():
        vs = status_variants(status_json("--redis", redis.url))
        ok = all(vs[v]["n"] == 40 and vs[v]["outcomes"] == 40 for v in ("a", "b"))
        ok = ok and vs["a"]["requests"] + vs["b"]["requests"] == sent
        return vs if ok else None
    vs = h.wait_until(status_agrees, 3, interval=0.1)
    check(vs is not None, "status never showed n/outcomes 40/40 and %d requests: %r", sent,
          status_variants(status_json("--redis", redis.url)))
    # Binary: the mean of the Beta(1 + sum, 1 + n - sum) posterior (stats/summary.h).
    check(abs(vs["a"]["mean"] - 5 / 42) < 1e-9 and abs(vs["b"]["mean"] - 37 / 42) < 1e-9,
          "status means %r / %r, wanted 5/42 / 37/42", vs["a"]["mean"], vs["b"]["mean"])
    check(vs["b"]["p_best"] > 0.99, "status P(best) of b %r", vs["b"]["p_best"])

    # Router 2 saw none of this traffic: it learns b is better from Redis alone.
    def r2_prefers_b():
        n = 0
        c2 = h.Client(r2.port)
        for _ in range(20):
            r = c2.request("POST", "/v1/chat/completions", {}, h.chat_body())
            check(r.status == 200, "router 2: status %s", r.status)
            n += r.header("x-switchyard-variant") == "b"
        c2.close()
        return n >= 19
    check(h.wait_until(r2_prefers_b, 2.0, interval=0.05),
          "router 2 did not follow the shared posterior within 2 s")
    check(time.monotonic() - t_last < 4, "router 2 took %.1f s", time.monotonic() - t_last)
    counts = {"a": 0, "b": 0}
    c2 = h.Client(r2.port)
    for _ in range(200):
        r = c2.request("POST", "/v1/chat/completions", {}, h.chat_body())
        counts[r.header("x-switchyard-variant")] += 1
    c2.close()
    check(counts["b"] >= 190, "router 2 over 200 requests: %r", counts)


@h.timeout(60)
def test_embedded_restart_reuses_data(env):
    mock = env.mock()
    cfg = config(env, mock, [experiment(outcome=BINARY)])
    a = env.router(cfg, name="router_a")
    rc = embedded(env, a)
    tid, var = chat(a.port)
    wait_events(rc, tid, "request", 1)
    rc.close()
    data = env.path("data")
    with open(os.path.join(data, "redis.pid")) as f:
        pid = int(f.read().strip())
    check(pid_alive(pid), "redis.pid %d is not running", pid)
    with open("/proc/%d/comm" % pid) as f:
        comm = f.read().strip()
    check(comm.startswith("redis-server"), "redis.pid %d is %r", pid, comm)
    check(health(a.port).get("redis") == "up", "router A's health: %r", health(a.port))

    a.stop()  # SIGTERM; fails unless it exits 0 by itself, with nothing of its group left
    check(not pid_alive(pid), "embedded redis-server %d still running after the router exited",
          pid)
    check(not h.redis_ping(os.path.join(data, "redis.sock")), "something still answers")
    check(not os.path.exists(os.path.join(data, "redis.pid")),
          "redis.pid left behind: not a clean shutdown")

    b = env.router(cfg, name="router_b")
    check(h.wait_until(lambda: health(b.port).get("redis") == "up", 5, interval=0.05),
          "router B's health: %r", health(b.port))
    rc = embedded(env, b)
    with open(os.path.join(data, "redis.pid")) as f:
        pid_b = int(f.read().strip())
    check(pid_b != pid and pid_alive(pid_b), "router B's redis-server pid %d (A's was %d)",
          pid_b, pid)
    check(rc.command("XLEN", "sy:events") >= 1, "the stream is empty after the restart")
    reqs = events_of(rc, tid, "request")
    check(len(reqs) == 1 and reqs[0].get("variant") == var, "A's request event: %r", reqs)
    check(rc.trace(tid).get("v") == var, "A's trace record is gone")
    check(close(var_stats(rc, var).get("requests", 0), 1), "A's counters: %r", var_stats(rc, var))
    # The reused data is live: router B applies an outcome to A's trace.
    check_applied(outcome(b.port, tid, 1), "outcome")
    check(close(var_stats(rc, var).get("outcomes", 0), 1), "outcome on A's trace via B")


def test_status_command(env):
    mock = env.mock()
    router = env.router(config(env, mock, [experiment(outcome=dict(BINARY, window=3600))],
                               events={"sync_ms": 200}))
    rc = embedded(env, router)
    served = [chat(router.port) for _ in range(8)]
    want_req = {v: sum(1 for _, sv in served if sv == v) for v in ("a", "b")}
    want_out = {"a": 0, "b": 0}
    want_sum = {"a": 0, "b": 0}
    for i, (tid, v) in enumerate(served[:5]):
        wait_trace(rc, tid)
        check_applied(outcome(router.port, tid, i % 2), "outcome")
        want_out[v] += 1
        want_sum[v] += i % 2
    cfg_path = router.config_path

    def agrees():
        vs = status_variants(status_json("--config", cfg_path))
        return vs if all(vs[v]["requests"] == want_req[v] for v in ("a", "b")) else None
    vs = h.wait_until(agrees, 5, interval=0.1)
    check(vs is not None, "status requests never matched %r: %r", want_req,
          status_json("--config", cfg_path))
    for v in ("a", "b"):
        check(vs[v]["outcomes"] == want_out[v] and vs[v]["n"] == want_out[v]
              and vs[v]["errors"] == 0, "variant %s: %r, wanted %d outcomes", v, vs[v],
              want_out[v])
        if want_out[v]:  # the Beta(1 + sum, 1 + n - sum) posterior's mean
            want_mean = (1 + want_sum[v]) / (2 + want_out[v])
            check(abs(vs[v]["mean"] - want_mean) < 1e-9 and vs[v]["lo"] < want_mean < vs[v]["hi"],
                  "mean of %s: %r, wanted %r", v, vs[v], want_mean)
        else:
            check(vs[v]["mean"] is None, "mean of %s without outcomes: %r", v, vs[v])
        check(vs[v]["share"] is not None and abs(vs[v]["share"] - 0.5) < 1e-6,
              "share of %s under a 50/50 split: %r", v, vs[v]["share"])
    doc = status_json("--config", cfg_path)
    e = doc["experiments"][0]
    check(len(doc["experiments"]) == 1 and e["id"] == "chat" and e["metric"] == "resolved"
          and e["policy"] == "split" and e["type"] == "binary" and e["control"] == "a",
          "experiment header: %r", {k: v for k, v in e.items() if k != "variants"})
    check([x["id"] for x in e["variants"]] == ["a", "b"], "variants %r", e["variants"])

    code, out, err = status_cmd("--config", cfg_path)
    check(code == 0, "status (text): exit %d: %s", code, err)
    check("experiment chat" in out and "policy split" in out and "metric resolved" in out,
          "status text header: %r", out)
    rows = {}
    lines = out.splitlines()
    head = next((l for l in lines if l.split()[:3] == ["variant", "stage", "requests"]), None)
    check(head is not None, "no table header in %r", out)
    for line in lines:
        cells = line.split()
        if cells and cells[0] in ("a", "b"):
            rows[cells[0]] = cells
    check(set(rows) == {"a", "b"}, "variant rows in %r", out)
    check(rows["a"][1] == "(control)" and rows["a"][2] == "live" and rows["b"][1] == "live"
          and int(rows["a"][3]) == want_req["a"] and int(rows["b"][2]) == want_req["b"],
          "stage and requests columns: %r, wanted %r", rows, want_req)
    check("state: running, gate off" in out, "state line in %r", out)
    code, out, err = status_cmd("nosuch", "--config", cfg_path)
    check(code == 1 and "nosuch" in err, "status of an unknown experiment: %d %r %r", code,
          out, err)


def test_status_minimize(env):
    """A metric to minimise: status says so and P(best) goes to the lower mean."""
    mock = env.mock()
    lat = experiment("lat", outcome={"metric": "seconds", "type": "continuous",
                                     "direction": "minimize"})
    router = env.router(config(env, mock, [lat], events={"sync_ms": 200}))
    rc = embedded(env, router)
    values = {"a": [10, 11, 12, 13], "b": [1, 2, 3, 4]}  # b is clearly lower
    seen = {"a": [], "b": []}
    for _ in range(200):
        if min(len(x) for x in seen.values()) >= 4:
            break
        tid, v = chat(router.port)
        seen[v].append(tid)
    for v in ("a", "b"):
        check(len(seen[v]) >= 4, "too few traces of %s: %r", v, seen)
        for tid, x in zip(seen[v], values[v]):
            wait_trace(rc, tid)
            check_applied(outcome(router.port, tid, x, metric="seconds"), "outcome")
    check(h.wait_until(lambda: rc.command("EXISTS", "sy:{lat}:meta"), 3), "no meta hash")
    e = status_json("lat", "--config", router.config_path)["experiments"][0]
    check(e["direction"] == "minimize", "direction %r", e["direction"])
    vs = {v["id"]: v for v in e["variants"]}
    check(abs(vs["a"]["mean"] - 11.5) < 1e-9 and abs(vs["b"]["mean"] - 2.5) < 1e-9,
          "means %r / %r", vs["a"]["mean"], vs["b"]["mean"])
    check(vs["b"]["p_best"] is not None and vs["b"]["p_best"] > 0.99,
          "P(best) with direction minimize: a %r, b %r (b has the lower mean)",
          vs["a"]["p_best"], vs["b"]["p_best"])
    code, out, err = status_cmd("lat", "--config", router.config_path)
    check(code == 0 and "lower is better" in out, "status text for a minimised metric: %r", out)


@h.timeout(60)
def test_rate_limit_per_key(env):
    """A key over its rate limit gets 429 with Retry-After and a JSON error, and what it
    sent over the limit changes nothing; another key is not affected; the bucket
    refills."""
    mock = env.mock()
    cfg = config(env, mock, [experiment(outcome=BINARY)])
    cfg["api_keys"][0].update({"rate_limit": 2, "burst": 3})
    router = env.router(cfg)
    rc = embedded(env, router)
    tids = [chat(router.port)[0] for _ in range(6)]
    for t in tids:
        wait_trace(rc, t)
    resps = [outcome(router.port, t, 1) for t in tids]
    statuses = [r.status for r in resps]
    check(statuses[:3] == [200] * 3 and 429 in statuses[3:], "statuses %r (burst 3, 2/s)",
          statuses)
    refused = [t for t, s in zip(tids, statuses) if s == 429]
    r = resps[statuses.index(429)]
    check(r.header("retry-after") == "1", "no Retry-After on 429")
    doc = r.json()
    check(doc["error"]["type"] == "rate_limit_error" and "acme" in doc["error"]["message"],
          "429 body %r", doc)
    # The other key (tenant other) is not limited by acme's bucket.
    t2 = chat(router.port, {"x-switchyard-tenant": "other"})[0]
    wait_trace(rc, t2)
    check(outcome(router.port, t2, 1, key=OTHER_KEY).status == 200, "the other key was limited")
    applied = total(rc, "n")
    time.sleep(1.6)  # 2/s refills at least 3 tokens (capped by the burst)
    late = [outcome(router.port, t, 1).status for t in refused[:3]]
    check(late.count(200) >= 2, "the bucket did not refill: %r", late)
    check(total(rc, "n") == applied + late.count(200), "n moved by %r after %d applied",
          total(rc, "n") - applied, late.count(200))



@h.timeout(40)
def test_client_gone_while_redis_answers(env):
    """A client that sends feedback and goes away while the router waits for Redis:
    the answer that arrives later must find nothing of the freed connection (under
    ASan a use after free stops the router; here it must keep serving and exit 0)."""
    mock = env.mock()
    redis = h.redis_server(env)
    cfg = config(env, mock, [experiment("chat")], redis={"url": redis.url, "timeout_ms": 5000})
    router = env.router(cfg)
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    tid, _ = chat(router.port)
    check(h.wait_until(lambda: rc.trace(tid) != {}, 5), "no trace record")
    rc.close()
    redis.signal(signal.SIGSTOP)
    try:
        for _ in range(5):
            c = h.Client(router.port)
            body = json.dumps({"trace_id": tid, "type": "thumbs", "value": 1}).encode()
            c.send(h.build_request("POST", "/switchyard/v1/feedback",
                                   {"Authorization": "Bearer " + ACME_KEY,
                                    "Content-Type": "application/json"}, body))
            time.sleep(0.1)
            c.abort()
        time.sleep(0.3)
    finally:
        redis.signal(signal.SIGCONT)
    time.sleep(1.0)
    tid2, _ = chat(router.port)
    check(tid2, "the router stopped serving")
    router.stop()

if __name__ == "__main__":
    sys.exit(h.run(globals()))
