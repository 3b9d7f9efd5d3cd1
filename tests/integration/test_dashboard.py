#!/usr/bin/env python3
"""test_dashboard.py — the live dashboard (router/dashboard.html, served at GET
/dashboard on the admin listener) in a real browser: Debian's Chromium driven by
playwright-core (tests/node/dashboard.mjs) against a real router, Redis and mock
backend. The page shows the experiment and its variants with the token from the URL
fragment (which then leaves the address bar), follows new traffic and outcomes within
a few seconds, draws its charts, guardrails and audit log, fetches nothing but the
router's own admin listener, logs no console error, asks for the token when there is
none or the router refuses it (401), and keeps its last data with the error shown when
the router goes away. The page itself is checked for size and for
references to anything outside. A screenshot is kept in BUILD/meson-logs/.

Needs node, tests/node/node_modules (cd tests/node && npm ci) and /usr/bin/chromium
(apt-get install chromium; deploy/install-deps): without them the test fails, saying so.
"""
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

TOKEN = "dash-" + secrets.token_hex(16)
TOKEN_ENV = "SY_DASH_TEST_TOKEN"
KEY = "dash-key-" + secrets.token_hex(16)
KEY_ENV = "SY_DASH_TEST_KEY"
os.environ[TOKEN_ENV] = TOKEN  # the routers this test starts inherit both
os.environ[KEY_ENV] = KEY

NODE_DIR = os.path.join(h.ROOT, "tests", "node")
SCRIPT = os.path.join(NODE_DIR, "dashboard.mjs")
CHROMIUM = os.environ.get("SY_CHROMIUM", "/usr/bin/chromium")
VARIANTS = ("a", "b", "c")
RATES = {"a": 0.3, "b": 0.6, "c": 0.2}  # simulated outcome rates
PAUSE_REASON = "dashboard test: <b>pause</b> & check"
RESUME_REASON = "dashboard test: resume"


def prerequisites():
    """Fails (never skips) unless node, playwright-core and Chromium are there."""
    node = shutil.which("node")
    check(node is not None, "node is not installed (apt-get install nodejs; deploy/install-deps)")
    check(os.path.isfile(os.path.join(NODE_DIR, "node_modules", "playwright-core", "package.json")),
          "%s/node_modules/playwright-core is missing: run `cd %s && npm ci`", NODE_DIR, NODE_DIR)
    check(os.access(CHROMIUM, os.X_OK),
          "%s is missing: apt-get install -y chromium (deploy/install-deps)", CHROMIUM)
    return node


def experiment():
    # A canary gate that never decides by itself here (min_samples far away, long
    # steps): the page shows its stages and guardrails; the audit log gets the
    # operator's pause and resume.
    gate = {"mode": "canary", "interval": "200ms", "ramp": [30], "step_min": "1h",
            "step_min_requests": 100000, "min_samples": 100000, "max_stale": "30s",
            "guardrails": {"latency_p95_ratio": 3, "error_rate_delta": 0.2, "tokens_ratio": 3}}
    return {"id": "support", "match": {"method": "POST", "path_prefix": "/v1/chat/completions"},
            "policy": "split", "control": "a",
            "outcome": {"metric": "resolved", "type": "binary", "window": "1h"},
            "variants": [{"id": v, "upstream": "mock", "model": "model-" + v} for v in VARIANTS],
            "gate": gate}


def start(env):
    redis = h.redis_server(env)
    mock = env.mock()
    admin_port = h.free_port()
    cfg = h.router_config(mock.addr, experiments=[experiment()], data_dir=env.path("data"),
                          redis={"url": redis.url}, events={"sync_ms": 200, "flush_ms": 5},
                          api_keys=[{"name": "web", "secret_env": KEY_ENV, "tenant": "acme"}],
                          admin={"listen": "127.0.0.1:%d" % admin_port, "token_env": TOKEN_ENV})
    r = env.router(cfg)
    r.admin_port = admin_port
    check(h.wait_until(lambda: h.port_accepts(admin_port), 5), "the admin port does not accept")
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    return r, rc


def admin(r, method, path, body=None, token=TOKEN):
    headers = {"Authorization": "Bearer " + token} if token is not None else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    c = h.Client(r.admin_port)
    try:
        return c.request(method, path, headers, body)
    finally:
        c.close()


def api_variants(r):
    resp = admin(r, "GET", "/api/experiments/support")
    check(resp.status == 200, "GET /api/experiments/support: %d %r", resp.status, resp.body[:300])
    return {v["id"]: v for v in resp.json()["experiment"]["variants"]}


class Traffic:
    """Chat requests through the router and, for most of them, an outcome."""

    def __init__(self, r, rc):
        self.r, self.rc = r, rc
        self.rnd = random.Random(11)
        self.requests = {v: 0 for v in VARIANTS}
        self.outcomes = {v: 0 for v in VARIANTS}

    def send(self, n):
        c = h.Client(self.r.port)
        served = []
        try:
            for _ in range(n):
                resp = c.request("POST", "/v1/chat/completions", {"x-switchyard-tenant": "acme"},
                                 h.chat_body())
                check(resp.status == 200, "chat: %d %r", resp.status, resp.body[:200])
                v = resp.header("x-switchyard-variant")
                check(v in VARIANTS, "variant header %r", v)
                self.requests[v] += 1
                served.append((resp.header("x-switchyard-trace-id"), v))
            for i, (tid, v) in enumerate(served):
                if i % 4 == 3:
                    continue  # a quarter without an outcome
                check(h.wait_until(lambda: self.rc.trace(tid) != {}, 5),
                      "trace %s never reached Redis", tid)
                value = 1 if self.rnd.random() < RATES[v] else 0
                resp = c.request("POST", "/switchyard/v1/outcome",
                                 {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"},
                                 {"trace_id": tid, "metric": "resolved", "value": value})
                check(resp.status == 200 and resp.json().get("applied") is True,
                      "outcome: %d %r", resp.status, resp.body[:200])
                self.outcomes[v] += 1
        finally:
            c.close()

    def api_caught_up(self):
        vs = api_variants(self.r)
        ok = all(vs[v]["requests"] == self.requests[v] and vs[v]["outcomes"] == self.outcomes[v]
                 for v in VARIANTS)
        return vs if ok else None


def build_dir():
    """The meson build dir of the binary under test (BUILD/router/switchyard), or None."""
    d = os.path.dirname(os.path.dirname(os.path.abspath(h.SWITCHYARD)))
    return d if os.path.isdir(os.path.join(d, "meson-logs")) else None


def test_page_is_self_contained(env):
    """GET /dashboard needs no token, is small and references nothing outside; the API
    it reads does need the token."""
    r, _ = start(env)
    resp = admin(r, "GET", "/dashboard", token=None)
    check(resp.status == 200, "GET /dashboard without a token: %d", resp.status)
    check((resp.header("content-type") or "").startswith("text/html"),
          "content-type %r", resp.header("content-type"))
    page = resp.body.decode("utf-8")
    check(len(resp.body) < 40 * 1024, "the page is %d bytes (budget 40 KB)", len(resp.body))
    with open(os.path.join(h.ROOT, "router", "dashboard.html"), "rb") as f:
        check(f.read() == resp.body, "GET /dashboard is not router/dashboard.html as built")
    urls = set(re.findall(r"(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"'<>)]*", page))
    check(urls <= {"http://www.w3.org/2000/svg"}, "the page references outside URLs: %r",
          sorted(urls))
    for bad in ("<script src", "<link rel=\"stylesheet", "@import", "url(", "innerHTML",
                "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        check(bad not in page, "the page contains %r", bad)
    resp = admin(r, "GET", "/api/experiments", token=None)
    check(resp.status == 401 and resp.json()["error"]["type"] == "unauthorized",
          "GET /api/experiments without a token: %d %r", resp.status, resp.body[:200])


@h.timeout(180)
def test_dashboard_in_chromium(env):
    node = prerequisites()
    r, rc = start(env)
    # Two operator actions through the API the page's buttons use: the audit log.
    for act, reason in (("pause", PAUSE_REASON), ("resume", RESUME_REASON)):
        resp = admin(r, "POST", "/api/experiments/support/" + act, {"reason": reason})
        check(resp.status == 200 and resp.json().get("result") == "done",
              "%s: %d %r", act, resp.status, resp.body[:300])
    traffic = Traffic(r, rc)
    traffic.send(45)
    vs = h.wait_until(traffic.api_caught_up, 10, interval=0.1)
    check(vs is not None, "the API never showed requests %r / outcomes %r: %r",
          traffic.requests, traffic.outcomes, api_variants(r))
    check(h.wait_until(lambda: all(v["share"] is not None for v in api_variants(r).values()), 5,
                       interval=0.1), "no traffic share in the API: %r", api_variants(r))

    shot = env.path("dashboard.png")
    url = "http://127.0.0.1:%d/dashboard" % r.admin_port
    err_path = env.path("node.stderr")
    with open(err_path, "wb") as err:
        p = subprocess.Popen([node, SCRIPT, url, TOKEN, shot], cwd=NODE_DIR, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=err, start_new_session=True,
                             env=dict(os.environ, SY_CHROMIUM=CHROMIUM))

    def node_err():
        with open(err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def read_tagged(tag, timeout_s):
        line = h._read_line(p.stdout, timeout_s).decode("utf-8", "replace").strip()
        if not line.startswith(tag + " "):
            rest = b""
            if p.poll() is not None:
                rest = p.stdout.read()
            raise h.Failure("dashboard.mjs: wanted %s, got %r%s\nstderr: %s" % (
                tag, line[:3000], rest.decode("utf-8", "replace")[:3000], node_err()))
        return json.loads(line[len(tag) + 1:])

    try:
        ready = read_tagged("READY", 90)
        shown = ready["experiments"].get("support")
        check(shown is not None and sorted(shown["variants"]) == list(VARIANTS),
              "the page at READY: %r", ready)
        for v in VARIANTS:
            check(shown["variants"][v]["requests"] == traffic.requests[v],
                  "the page shows %r requests for %s, the router served %d",
                  shown["variants"][v]["requests"], v, traffic.requests[v])
        traffic.send(30)
        expect = {"support": {v: {"requests": traffic.requests[v], "outcomes": traffic.outcomes[v]}
                              for v in VARIANTS}}
        p.stdin.write((json.dumps({"expect": expect, "timeout_ms": 8000, "down_phase": True})
                       + "\n").encode())
        p.stdin.flush()
        read_tagged("STOP", 90)
        r.stop()  # the page must keep the last data and say the update failed
        p.stdin.write(b"stopped\n")
        p.stdin.flush()
        res = read_tagged("RESULT", 60)
        rc_node = p.wait(30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        p.stdout.close()
        p.stdin.close()

    check(not res.get("fatal"), "dashboard.mjs failed: %s\nstderr: %s", res.get("fatal"), node_err())
    check(rc_node == 0, "dashboard.mjs exit status %s: %s", rc_node, node_err())
    check(not res["problems"], "dashboard.mjs: %r", res["problems"])
    check(res["dashboard_status"] == 200, "GET /dashboard in the browser: %r", res["dashboard_status"])
    # Nothing fetched from anywhere but the admin listener; no console error.
    base = "http://127.0.0.1:%d/" % r.admin_port
    check(not res["outside"], "the page requested outside URLs: %r", res["outside"])
    others = [u for u in res["requests"] if not u.split(" ", 1)[1].startswith(base)]
    check(not others, "requests not to the admin listener: %r", others)
    check(any("/api/experiments/support" in u for u in res["requests"]),
          "no per-experiment API request: %r", res["requests"][:20])
    check(not res["console_errors_main"], "console errors: %r", res["console_errors_main"])
    # The token: taken from the fragment, kept in sessionStorage, gone from the URL.
    check(not res["token_in_url"], "the token is still in the address bar: %s",
          res["url_after_load"])
    check(res["token_in_session"], "the token was not kept in sessionStorage")
    check(not res["login_visible_with_data"], "the token form is shown next to the data")

    # The page followed the new traffic and outcomes within the time given.
    after = res["after"]["experiments"].get("support", {})
    check(res["updated_in_time"],
          "the page never showed requests %r / outcomes %r within 8 s; it shows %r",
          traffic.requests, traffic.outcomes, after.get("variants"))
    for v in VARIANTS:
        got = after["variants"][v]
        check(got["requests"] == traffic.requests[v] and got["outcomes"] == traffic.outcomes[v],
              "variant %s on the page: %r, wanted %d requests, %d outcomes", v, got,
              traffic.requests[v], traffic.outcomes[v])
        check(got["stage"].startswith("live") or got["stage"].startswith("canary"),
              "stage of %s: %r", v, got["stage"])
        for k in ("mean", "p_best", "share"):
            check(isinstance(got[k], (int, float)), "%s of %s on the page: %r", k, v, got[k])
    check(res["after"]["redis"] == "redis up", "redis state on the page: %r", res["after"]["redis"])
    check(res["after"]["error_banner"] is None, "error banner: %r", res["after"]["error_banner"])
    check(after["status"] == "running", "experiment status on the page: %r", after["status"])
    charts = after["charts"]
    check(charts == {"share_lines": 3, "outcome_marks": 3, "pbest_bars": 3},
          "charts on the page: %r", charts)
    for v in ("b", "c"):
        for g in ("latency_p95_ratio", "error_rate_delta", "tokens_ratio"):
            st = after["guard_cells"].get("%s.%s" % (v, g))
            check(st in ("ok", "near", "breach", "unknown"), "guardrail %s of %s: %r (all: %r)",
                  g, v, st, after["guard_cells"])
    check(not any(k.startswith("a.") for k in after["guard_cells"]),
          "guardrails shown for the control: %r", after["guard_cells"])
    # The audit log, newest first: the resume, then the pause; reasons as text.
    check(after["audit_rows"] >= 2, "audit rows on the page: %r", after["audit_rows"])
    first = after["audit_first"]
    check(len(first) >= 5 and first[1] == "resume" and first[4] == RESUME_REASON,
          "newest audit row: %r", first)
    # A wrong token brings up the token form (401) and no data; the form then works.
    wt = res["wrong_token"]
    check(wt["login_shown"] and wt["state"] == "login" and wt["experiments_visible"] == 0,
          "with a wrong token: %r", wt)
    check("401" in wt["message"], "the form does not say the token was refused: %r", wt["message"])
    check(not wt["other_console_errors"], "console errors with a wrong token: %r",
          wt["other_console_errors"])
    check(res["relogin_shows_data"], "the data did not appear after entering the token in the form")
    nt = res["no_token"]
    check(nt["login_shown"] and nt["api_calls"] == 0 and not nt["console_errors"],
          "without a token: %r", nt)

    # With the router gone, the page keeps the last data and shows the error.
    down = res["down"]
    check(down["error_shown"] and down["state"] == "error", "router stopped: %r", down)
    check(down["experiments"] == ["support"] and down["variants"] is not None
          and all(down["variants"][v]["requests"] == traffic.requests[v] for v in VARIANTS),
          "router stopped: the last data is not shown: %r", down)
    check(not down["other_console_errors"], "console errors with the router stopped: %r",
          down["other_console_errors"])

    # The screenshot: a PNG, kept in the build's meson-logs.
    with open(shot, "rb") as f:
        png = f.read()
    check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000, "screenshot: %d bytes", len(png))
    kept = shot
    bd = build_dir()
    if bd is not None:
        kept = os.path.join(bd, "meson-logs", "dashboard.png")
        shutil.copyfile(shot, kept)
        shutil.copyfile(down["screenshot"], os.path.join(bd, "meson-logs", "dashboard-down.png"))
    print("screenshot: %s (page updated %d ms after the new traffic)" % (kept, res["update_wait_ms"]),
          flush=True)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
