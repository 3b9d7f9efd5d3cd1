#!/usr/bin/env python3
"""quickstart-driver.py — the traffic, the delayed feedback and the live screen of
./deploy/quickstart (Python 3 standard library only).

It plays the users of a support bot behind switchyard:

- senders post chat completions through the router at a steady rate; each response
  names the variant that served it (x-switchyard-variant) and its trace id;
- each response gets an outcome: "resolved" with the simulated success probability of
  the variant that served it (--rates; an HTTP error never resolves anything), posted
  to POST /switchyard/v1/outcome after a short random delay, as a real outcome would
  arrive later; a share of them (--thumbs) also gets a thumbs up or down on
  POST /switchyard/v1/feedback;
- every --refresh seconds it reads `switchyard status --json` and `switchyard history
  --json` and redraws the screen (plain lines when stdout is not a terminal);
- when the gate concludes the experiment it stops the traffic, prints the decision
  with the numbers behind it, and exits 0. No decision within --timeout: exit 3.
  The router unreachable, or a command failing: exit 1. SIGINT/SIGTERM: exit 130/143.
"""
import argparse
import heapq
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

QUESTIONS = [
    "How do I reset my password?",
    "My invoice shows the wrong VAT number.",
    "Can I move my subscription to another account?",
    "The export to CSV stops at 10,000 rows.",
    "Why was my card declined?",
    "How do I add a second admin to our team?",
]

EXIT_DECIDED, EXIT_ERROR, EXIT_TIMEOUT = 0, 1, 3


class Stop(Exception):
    pass


def parse_rates(text):
    rates = {}
    for part in text.split(","):
        name, _, p = part.partition("=")
        try:
            rates[name.strip()] = float(p)
        except ValueError:
            raise argparse.ArgumentTypeError("expected NAME=P,NAME=P,... got %r" % text)
        if not 0 <= rates[name.strip()] <= 1:
            raise argparse.ArgumentTypeError("a rate must be in [0, 1]: %r" % part)
    return rates


def parse_hostport(text):
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.http_errors = 0
        self.conn_errors = 0
        self.outcomes = 0
        self.resolved = 0
        self.thumbs = 0
        self.post_failures = 0
        self.last_ok = time.monotonic()
        self.last_error = ""

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


class Poster:
    """Posts outcomes and feedback when they fall due (a heap ordered by due time)."""

    def __init__(self, args, counters, stop):
        self.args, self.counters, self.stop = args, counters, stop
        self.heap = []
        self.cond = threading.Condition()
        self.seq = 0
        # several connections, so that slow answers (a busy machine, Redis) do not
        # hold the outcomes back: their delay is the simulation's, not the driver's
        self.threads = [threading.Thread(target=self.run, daemon=True)
                        for _ in range(args.posters)]

    def start(self):
        for t in self.threads:
            t.start()

    def pending(self):
        with self.cond:
            return len(self.heap)

    def put(self, due, path, body, tries=0):
        with self.cond:
            self.seq += 1
            heapq.heappush(self.heap, (due, self.seq, path, body, tries))
            self.cond.notify()

    def run(self):
        host, port = self.args.router
        conn = None
        key = os.environ.get(self.args.key_env, "")
        while not self.stop.is_set():
            with self.cond:
                while not self.stop.is_set():
                    now = time.monotonic()
                    if self.heap and self.heap[0][0] <= now:
                        due, _, path, body, tries = heapq.heappop(self.heap)
                        break
                    self.cond.wait(0.2 if not self.heap else min(0.2, self.heap[0][0] - now))
                else:
                    return
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=10)
                conn.request("POST", path, json.dumps(body),
                             {"Authorization": "Bearer " + key,
                              "Content-Type": "application/json"})
                r = conn.getresponse()
                text = r.read()
                status = r.status
            except (OSError, http.client.HTTPException) as e:
                if conn is not None:
                    conn.close()
                conn = None
                status, text = 0, str(e).encode()
            if status == 200:
                if path.endswith("/outcome"):
                    self.counters.add(outcomes=1, resolved=1 if body["value"] else 0)
                else:
                    self.counters.add(thumbs=1)
            elif status in (0, 404, 503) and tries < 3:
                # 404: the trace record may not be in Redis yet; 503: Redis busy
                self.put(time.monotonic() + 1.0, path, body, tries + 1)
            else:
                self.counters.add(post_failures=1)
                with self.counters.lock:
                    self.counters.last_error = "%s %s: %s" % (
                        path, status, text[:160].decode("utf-8", "replace"))


def sender(args, counters, poster, stop, pace, rnd_seed):
    rnd = random.Random(rnd_seed)
    host, port = args.router
    conn = None
    headers = {"Content-Type": "application/json", "x-switchyard-tenant": "demo"}
    while not stop.is_set():
        with pace["lock"]:
            now = time.monotonic()
            slot = max(now, pace["next"])
            pace["next"] = slot + 1.0 / args.rps
        if slot > now and stop.wait(slot - now):
            break
        body = {"model": "client-model",
                "messages": [{"role": "user", "content": rnd.choice(QUESTIONS)}]}
        h = dict(headers)
        h["x-switchyard-user"] = "user-%d" % rnd.randrange(2000)
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=15)
            conn.request("POST", "/v1/chat/completions", json.dumps(body), h)
            r = conn.getresponse()
            r.read()
        except (OSError, http.client.HTTPException) as e:
            if conn is not None:
                conn.close()
            conn = None
            counters.add(conn_errors=1)
            with counters.lock:
                counters.last_error = "router: %s" % e
            stop.wait(0.2)
            continue
        counters.add(requests=1)
        if stop.is_set():
            break
        with counters.lock:
            counters.last_ok = time.monotonic()
        variant = r.getheader("x-switchyard-variant")
        trace = r.getheader("x-switchyard-trace-id")
        if r.status >= 400:
            counters.add(http_errors=1)
        if not variant or not trace:
            continue
        # The simulated user: an answer that failed resolves nothing; otherwise the
        # variant's quality decides.
        resolved = r.status < 400 and rnd.random() < args.rates.get(variant, 0.0)
        due = time.monotonic() + rnd.uniform(*args.delay)
        poster.put(due, "/switchyard/v1/outcome",
                   {"trace_id": trace, "metric": args.metric, "value": resolved})
        if rnd.random() < args.thumbs:
            # Users who got their answer mostly say so; some click at random.
            up = resolved if rnd.random() < 0.85 else rnd.random() < 0.5
            poster.put(due + rnd.uniform(0, 1), "/switchyard/v1/feedback",
                       {"trace_id": trace, "type": "thumbs", "value": 1 if up else 0})
    if conn is not None:
        conn.close()


def run_json(args, cmd):
    p = subprocess.run([args.switchyard] + cmd + ["--config", args.config],
                       capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        raise RuntimeError("switchyard %s: exit %d: %s" % (cmd[0], p.returncode,
                                                            p.stderr.strip()[-400:]))
    return p.stdout


def read_status(args):
    doc = json.loads(run_json(args, ["status", args.experiment, "--json"]))
    for e in doc.get("experiments", []):
        if e.get("id") == args.experiment:
            return e
    return None


def read_history(args):
    out = run_json(args, ["history", args.experiment, "--json"])
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# ---- the screen -------------------------------------------------------------

class Style:
    def __init__(self, on):
        self.on = on

    def __call__(self, code, text):
        return "\x1b[%sm%s\x1b[0m" % (code, text) if self.on else text

    def bold(self, t):
        return self("1", t)

    def dim(self, t):
        return self("2", t)

    def green(self, t):
        return self("32", t)

    def red(self, t):
        return self("31", t)

    def yellow(self, t):
        return self("33", t)


def mmss(s):
    s = max(0, int(s))
    return "%d:%02d" % (s // 60, s % 60)


def fnum(x, fmt="%.3f", none="-"):
    return none if x is None else fmt % x


def decision_line(row, t0_ms, st):
    """One audit entry as a short line: when (since the driver started), what, why."""
    try:
        when = mmss((float(row.get("ts_ms")) - t0_ms) / 1000.0)
    except (TypeError, ValueError):
        when = "?"
    what = {"promote": "promoted", "remove": "removed", "rollback": "rolled back",
            "start": "started", "ramp": "ramped", "pause": "paused", "resume": "resumed",
            "halt": "halted"}.get(row.get("decision"), row.get("decision"))
    name = row.get("variant") or ""
    text = "%5s  %s %s — %s" % (when, what, name, row.get("reason", ""))
    if row.get("decision") == "promote":
        return st.green(text)
    if row.get("decision") in ("remove", "rollback", "halt"):
        return st.yellow(text)
    return text


def explain(row):
    """The numbers behind a bandit decision: per live arm its mean and outcomes, the
    evidence that it is not the best (log e, finite-sample: valid however often the gate
    looks) against the threshold log(K/alpha), and a guardrail it breaches against the
    control."""
    stats = row.get("stats") or {}
    arms = {k: v for k, v in stats.items() if isinstance(v, dict) and "mean" in v}
    if not arms:
        return [json.dumps(stats)[:200]] if stats else []
    lines = []
    for k, v in sorted(arms.items(), key=lambda kv: -(kv[1].get("mean") or 0)):
        if v.get("live") is False:
            continue
        head = "%-9s %s resolved (%s outcomes)" % (
            k, fnum(v.get("mean")), fnum(v.get("n"), "%.0f"))
        breached = [g for g in ("latency_p95", "error_rate", "tokens")
                    if isinstance(v.get(g), dict) and v[g].get("breached")]
        # the closure's log e decides (policies/gate.h); older audits have log_e only
        le, thr = v.get("log_e_closed", v.get("log_e")), v.get("log_threshold")
        if breached:
            lines.append(head + " breaches the %s guardrail against the control" % breached[0])
        elif row.get("decision") == "promote" and k == row.get("variant"):
            lines.append(head + " the winner")
        elif v.get("not_best"):
            lines.append(head + " certainly not the best (log e %s >= %s)" % (
                fnum(le, "%.1f"), fnum(thr, "%.1f")))
        elif le is not None:
            lines.append(head + " not certain yet (log e %s of %s)" % (
                fnum(le, "%.1f"), fnum(thr, "%.1f")))
        else:
            lines.append(head + " not judged yet: too few outcomes")
    return lines


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values, width=20):
    """values in [0, 1] (None: unknown), squeezed into at most width cells by averaging."""
    vals = [v for v in values if v is not None]
    if not vals:
        return ""
    if len(vals) > width:
        step = len(vals) / width
        vals = [sum(vals[int(i * step):int((i + 1) * step)] or [0]) /
                max(1, len(vals[int(i * step):int((i + 1) * step)])) for i in range(width)]
    return "".join(SPARK[min(7, int(v * 8))] for v in vals)


def render(args, st, e, hist, counters, t0, t0_ms, poster, shares, final=False):
    el = time.monotonic() - t0
    out = [st.bold("switchyard quickstart") + " · which variant of the support bot resolves "
           "most tasks? · %s" % mmss(el)]
    if e is None:
        out.append("waiting for the first statistics from Redis ...")
        return out
    status = e.get("status") or "-"
    scol = st.green if status == "concluded" else (st.yellow if status != "running" else str)
    out.append("experiment %s · policy %s · gate %s · %s%s"
               % (st.bold(e.get("id")), e.get("policy"), e.get("gate"), scol(status),
                  (", winner " + st.green(st.bold(e["winner"]))) if e.get("winner") else ""))
    out.append("")
    variants = e.get("variants", [])
    ctl = next((v for v in variants if v.get("id") == e.get("control")), None)
    out.append(st.bold("%-18s %-8s %-25s  %-17s %7s" % (
        "variant", "stage", "traffic share (over time)", "resolved   95% CI", "P(best)")))
    for v in variants:
        name = v["id"] + (" (control)" if v is ctl else "")
        share = v.get("share")
        stage = v.get("stage") or "-"
        mean = v.get("mean")
        iv = ("%.3f [%.2f,%.2f]" % (mean, v.get("lo") or 0, v.get("hi") or 0)
              if mean is not None else "-")
        row = "%-18s %-8s %4s %-20s  %-17s %7s" % (
            name[:18], stage, ("%d%%" % round(100 * share)) if share is not None else "-",
            sparkline(shares.get(v["id"], [])), iv, fnum(v.get("p_best"), "%.2f"))
        if stage in ("removed", "rolled_back"):
            row = st.dim(row)
        elif stage == "promoted":
            row = st.green(row)
        out.append(row)
    out.append(st.dim("share: of the traffic, now and over time · P(best): chance it is best"))
    out.append(st.dim("the truth, unknown to switchyard: ")
               + ", ".join("%s %.2f" % kv for kv in args.rates.items()))
    out.append("")
    out.append(st.bold("%-18s %8s %8s %7s %8s %7s %8s" % (
        "guardrail readings", "requests", "outcomes", "p95 ms", "vs ctl", "errors", "vs ctl")))
    for v in variants:
        req = v.get("requests") or 0
        err = (v.get("errors") or 0) / req if req else None
        p95 = v.get("latency_p95_ms")
        rel_lat = rel_err = ""
        if ctl is not None and v is not ctl:
            cp = ctl.get("latency_p95_ms")
            if p95 and cp:
                rel_lat = "x%.2f" % (p95 / cp)
            creq = ctl.get("requests") or 0
            if err is not None and creq:
                rel_err = "%+.1f pt" % (100 * (err - (ctl.get("errors") or 0) / creq))
        out.append("%-18s %8s %8s %7s %8s %7s %8s" % (
            v["id"][:18], fnum(req, "%.0f"), fnum(v.get("outcomes"), "%.0f"), fnum(p95, "%.0f"),
            rel_lat, fnum(None if err is None else 100 * err, "%.1f%%"), rel_err))
    out.append(st.dim("(a canary gate rolls back on these; a bandit gate removes the variant)"))
    out.append("")
    with counters.lock:
        c = dict(requests=counters.requests, http_errors=counters.http_errors,
                 outcomes=counters.outcomes, thumbs=counters.thumbs,
                 conn_errors=counters.conn_errors, post_failures=counters.post_failures,
                 last_error=counters.last_error)
    out.append("traffic:  %d requests (%.0f/s), %d answered with an error"
               % (c["requests"], c["requests"] / el if el > 0 else 0, c["http_errors"]))
    out.append("feedback: %d outcomes posted %g-%g s after the answer (%d on their way), "
               "%d thumbs" % (c["outcomes"], args.delay[0], args.delay[1], poster.pending(),
                              c["thumbs"]))
    if c["post_failures"] or c["conn_errors"]:
        out.append(st.red("  %d posts refused, %d connection errors; last: %s"
                          % (c["post_failures"], c["conn_errors"], c["last_error"])))
    if final:
        return out
    out.append("")
    out.append(st.bold("gate decisions") + st.dim(" (switchyard history %s)" % args.experiment))
    shown = [r for r in hist if r.get("decision") != "start"]
    if not shown:
        out.append(st.dim("  none yet: a variant is judged from %s outcomes on, and removed "
                          "once it is" % args.min_samples))
        out.append(st.dim("  certainly not the best, or breaching a guardrail against the control"))
    for r in shown:
        out.append("  " + decision_line(r, t0_ms, st))
    return out


class Screen:
    """Redraws in place on a terminal: cursor home, each line cleared to its end."""

    def __init__(self):
        self.first = True

    def show(self, lines):
        buf = ["\x1b[2J\x1b[H" if self.first else "\x1b[H"]
        for ln in lines:
            buf.append(ln + "\x1b[K\n")
        buf.append("\x1b[J")
        sys.stdout.write("".join(buf))
        sys.stdout.flush()
        self.first = False


def plain_line(e, el, counters, poster):
    parts = []
    for v in e.get("variants", []):
        share = v.get("share")
        parts.append("%s %s %s%s" % (
            v["id"], v.get("stage") or "-",
            ("%d%%" % round(100 * share)) if share is not None else "-",
            (" %.3f" % v["mean"]) if v.get("mean") is not None else ""))
    return "%5s  %-9s %5d requests %5d outcomes (%d on their way)  %s" % (
        mmss(el), e.get("status") or "-", counters.requests, counters.outcomes, poster.pending(),
        " | ".join(parts))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--switchyard", required=True, help="the switchyard binary")
    ap.add_argument("--config", required=True, help="the router's config (for status/history)")
    ap.add_argument("--router", type=parse_hostport, default=("127.0.0.1", 8080))
    ap.add_argument("--experiment", default="support-bot")
    ap.add_argument("--metric", default="resolved")
    ap.add_argument("--rates", type=parse_rates,
                    default=parse_rates("baseline=0.30,stepwise=0.40,terse=0.22"),
                    help="per variant: the probability that an answer resolves the task")
    ap.add_argument("--rps", type=float, default=60, help="requests per second")
    ap.add_argument("--concurrency", type=int, default=16,
                    help="connections sending (enough for --rps at the slowest backend)")
    ap.add_argument("--posters", type=int, default=8,
                    help="connections posting outcomes and feedback")
    ap.add_argument("--delay", default="0.5,3",
                    help="outcomes arrive uniformly this many seconds (MIN,MAX) later")
    ap.add_argument("--thumbs", type=float, default=0.3, help="share of answers rated")
    ap.add_argument("--key-env", default="SWITCHYARD_DEMO_KEY",
                    help="the environment variable holding the API key")
    ap.add_argument("--timeout", type=float, default=420, help="seconds until giving up")
    ap.add_argument("--refresh", type=float, default=2)
    ap.add_argument("--min-samples", default="100", help="shown while nothing is decided")
    ap.add_argument("--plain", action="store_true", help="plain lines even on a terminal")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    lo, _, hi = args.delay.partition(",")
    args.delay = (float(lo), float(hi or lo))
    if not os.environ.get(args.key_env):
        print("quickstart-driver: %s is not set (the API key for outcomes)" % args.key_env,
              file=sys.stderr)
        return EXIT_ERROR

    def on_signal(signum, frame):
        raise Stop(signum)
    signal.signal(signal.SIGTERM, on_signal)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        # (run in the background by ./deploy/quickstart, SIGINT is ignored: the
        # script stops the driver with SIGTERM)
        signal.signal(signal.SIGINT, on_signal)

    try:  # a terminal that cannot show a character gets a "?", not an exception
        sys.stdout.reconfigure(errors="replace")
    except (AttributeError, ValueError):
        pass
    tty = sys.stdout.isatty() and not args.plain and os.environ.get("TERM") != "dumb"
    st = Style(tty)
    screen = Screen()
    shares = {}
    counters = Counters()
    stop = threading.Event()
    poster = Poster(args, counters, stop)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    pace = {"lock": threading.Lock(), "next": time.monotonic()}
    senders = [threading.Thread(target=sender, args=(args, counters, poster, stop, pace,
                                                     seed * 100 + i), daemon=True)
               for i in range(args.concurrency)]
    t0 = time.monotonic()
    t0_ms = int(time.time() * 1000)
    poster.start()
    for t in senders:
        t.start()
    e, hist, last_plain_hist = None, [], 0
    rc = EXIT_TIMEOUT
    try:
        while True:
            try:
                e = read_status(args)
                hist = read_history(args)
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as err:
                if time.monotonic() - t0 > 15:
                    print("quickstart-driver: %s" % err, file=sys.stderr)
                    rc = EXIT_ERROR
                    break
            el = time.monotonic() - t0
            for v in (e or {}).get("variants", []):
                shares.setdefault(v["id"], []).append(v.get("share"))
            if tty:
                screen.show(render(args, st, e, hist, counters, t0, t0_ms, poster, shares))
            elif e is not None:
                print(plain_line(e, el, counters, poster), flush=True)
                if counters.post_failures or counters.conn_errors:
                    print("       %d posts refused, %d connection errors; last: %s"
                          % (counters.post_failures, counters.conn_errors, counters.last_error),
                          flush=True)
                shown = [r for r in hist if r.get("decision") != "start"]
                for r in shown[last_plain_hist:]:
                    print("       gate: " + decision_line(r, t0_ms, st), flush=True)
                last_plain_hist = len(shown)
            with counters.lock:
                silent = time.monotonic() - counters.last_ok
            if silent > 15:
                print("quickstart-driver: no answer from the router at %s:%d for %.0f s (%s)"
                      % (args.router[0], args.router[1], silent, counters.last_error),
                      file=sys.stderr)
                rc = EXIT_ERROR
                break
            if e is not None and e.get("status") == "concluded":
                rc = EXIT_DECIDED
                break
            if e is not None and e.get("status") in ("halted", "paused"):
                pass  # shown on the screen; an operator may resume it
            if el > args.timeout:
                rc = EXIT_TIMEOUT
                break
            time.sleep(max(0.1, args.refresh - (time.monotonic() - t0 - el)))
    except Stop as s:
        stop.set()
        print("\nquickstart-driver: stopped by signal %d" % s.args[0], file=sys.stderr)
        return 128 + s.args[0]
    finally:
        stop.set()
    # let the requests in flight finish (a cut one would be recorded as a client gone)
    deadline = time.monotonic() + 3
    for t in senders:
        t.join(max(0, deadline - time.monotonic()))
    el = time.monotonic() - t0
    if tty and e is not None:
        # The final screen, with the traffic stopped; the decisions follow in full.
        screen.show(render(args, st, e, hist, counters, t0, t0_ms, poster, shares,
                           final=rc == EXIT_DECIDED))
    print()
    if rc == EXIT_DECIDED:
        print(st.bold("The gate's decision") + " (after %s, %d requests, %d outcomes):"
              % (mmss(el), counters.requests, counters.outcomes))
        print(st.dim("  (from `switchyard history`; means inverse-propensity weighted; log e is"))
        print(st.dim("  the evidence that a variant is not the best, valid however often the"))
        print(st.dim("  gate looks, with no large-sample approximation)"))
        for r in hist:
            if r.get("decision") in ("remove", "promote", "rollback"):
                print("  " + decision_line(r, t0_ms, st))
                for ln in explain(r):
                    print("         " + ln)
                print(st.dim("         decided by %s (the router holding the gate's lease)"
                             % r.get("by", "?")))
        win = e["winner"]
        best = max(args.rates, key=args.rates.get) if args.rates else None
        print()
        print("%s %s now gets all the traffic; the experiment is concluded." % (
            st.green(st.bold("Winner:")), st.bold(win)))
        if best is not None:
            print("The simulated truth %s: %s resolves %.0f%% of tasks, %s." % (
                "agrees" if win == best else "disagrees", best, 100 * args.rates[best],
                ", ".join("%s %.0f%%" % (k, 100 * r) for k, r in args.rates.items()
                          if k != best)))
    elif rc == EXIT_TIMEOUT:
        print(st.red("No decision within %.0f s." % args.timeout)
              + " The gate needs %s outcomes per variant and a clear difference; see the "
              "numbers above." % args.min_samples, file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
