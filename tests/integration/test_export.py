#!/usr/bin/env python3
"""test_export.py — `switchyard export` end to end (proto/WAREHOUSE.md), with a real
redis-server, a real router serving traffic and taking feedback and outcomes through its
API, and real databases: an SQLite file, and a PostgreSQL server this test starts
(initdb into a temporary directory, pg_ctl on a private port and socket directory, as
the user nobody when the test runs as root: postgres refuses root).

For each sink: the rows equal the traces served, with their outcomes, feedback and
shadow comparisons joined; consent none leaves no content and no ids, even from an
event that carries them (a synthetic schema 4 producer); the exporter killed with
SIGKILL in the middle of a big backlog and restarted loses and doubles nothing;
--retain and --tenant; --follow's lag line and clean SIGTERM. Also: a trimmed stream
is reported with a count, and bad arguments exit 2 naming the flag.
"""
import csv
import hashlib
import io
import json
import os
import pwd
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

ACME_KEY = "acme-" + secrets.token_hex(16)
os.environ["SY_EXPTEST_KEY_ACME"] = ACME_KEY
EXPORT_FILL = os.environ.get("SY_EXPORT_FILL") or os.path.join(h.ROOT, "build", "bench",
                                                                "export-fill")
PG_BIN = "/usr/lib/postgresql/15/bin"
EMAIL_COMMENT = "mail me at jane.doe@example.com please"
BINARY = {"metric": "resolved", "type": "binary"}
NULL = "<sy-null>"


# ---- sinks ---------------------------------------------------------------------------

class SqliteSink:
    """An SQLite file in the test's directory."""

    name = "sqlite"

    def __init__(self, env, name="warehouse"):
        self.path = env.path(name + ".db")
        self.url = "sqlite:" + self.path

    def rows(self, sql):
        """The query's rows as dicts of str (None for NULL)."""
        if not os.path.exists(self.path):
            return []
        c = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=10)
        try:
            try:
                cur = c.execute(sql)
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):
                    return []  # the exporter has not created it yet
                raise
            cols = [d[0] for d in cur.description]
            return [{k: (None if v is None else str(v)) for k, v in zip(cols, r)}
                    for r in cur.fetchall()]
        finally:
            c.close()


class Postgres:
    """One PostgreSQL server for every test of this file (initdb costs seconds): a
    temporary directory, a private port, its socket in DIR/sock, no TCP listener."""

    def __init__(self):
        self.dir = None
        self.error = None
        self.n = 0

    def _run(self, argv, **kw):
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "nobody", "--"] + argv
        return subprocess.run(argv, capture_output=True, text=True, cwd="/", **kw)

    def start(self):
        if self.dir is not None or self.error is not None:
            return
        if not os.access(os.path.join(PG_BIN, "initdb"), os.X_OK):
            self.error = "%s/initdb not found (Debian's postgresql-15 package)" % PG_BIN
            return
        self.dir = tempfile.mkdtemp(prefix="sy-itest-pg-")
        os.chmod(self.dir, 0o755)
        self.data, self.sock = os.path.join(self.dir, "data"), os.path.join(self.dir, "sock")
        os.mkdir(self.sock)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
            os.chown(self.sock, nobody.pw_uid, nobody.pw_gid)
        r = self._run([PG_BIN + "/initdb", "-D", self.data, "-U", "sy", "--auth=trust",
                       "-E", "UTF8", "--no-sync"], timeout=120)
        if r.returncode != 0:
            self.error = "initdb failed (%d): %s" % (r.returncode, r.stderr[-1000:])
            return
        self.port = h.free_port()
        opts = "-p %d -k %s -c listen_addresses='' -c fsync=off" % (self.port, self.sock)
        r = self._run([PG_BIN + "/pg_ctl", "-D", self.data, "-l",
                       os.path.join(self.dir, "postgres.log"), "-o", opts, "-w", "-t", "60",
                       "start"], timeout=90)
        if r.returncode != 0:
            self.error = "pg_ctl start failed (%d): %s %s" % (r.returncode, r.stdout[-500:],
                                                             self.log_tail())
            return

    def restart(self):
        # -l: the server must not inherit pg_ctl's pipes (run() would wait for it)
        r = self._run([PG_BIN + "/pg_ctl", "-D", self.data, "-l",
                       os.path.join(self.dir, "postgres.log"), "-m", "fast", "-w", "-t", "60",
                       "restart"], timeout=90)
        check(r.returncode == 0, "pg_ctl restart: %s %s", r.stderr, self.log_tail())

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "postgres.log")) as f:
                return f.read()[-1500:]
        except OSError:
            return ""

    def stop(self):
        if self.dir is None:
            return
        self._run([PG_BIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"], timeout=60)
        try:  # still there (pg_ctl failed)? its postmaster.pid names it
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                os.kill(int(f.readline()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def url(self, db):
        return "postgresql:///%s?host=%s&port=%d&user=sy" % (db, self.sock, self.port)

    def psql(self, db, sql):
        """The query's output as CSV; None when a table it names does not exist yet."""
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--csv",
                            "-P", "null=" + NULL, "-d", self.url(db), "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0 and "relation" in r.stderr and "does not exist" in r.stderr:
            return None  # the exporter has not created it yet
        check(r.returncode == 0, "psql %r: %s", sql, r.stderr)
        return r.stdout


PG = Postgres()


class PgSink:
    """A fresh database of the shared server."""

    name = "postgresql"

    def __init__(self, env):
        PG.start()
        check(PG.error is None, "PostgreSQL could not be started: %s", PG.error)
        PG.n += 1
        self.db = "t%d_%s" % (PG.n, secrets.token_hex(3))
        PG.psql("postgres", "CREATE DATABASE %s" % self.db)
        self.url = PG.url(self.db)

    def rows(self, sql):
        out = PG.psql(self.db, sql)
        if out is None or not out.strip():
            return []
        rd = csv.DictReader(io.StringIO(out))
        return [{k: (None if v == NULL else v) for k, v in r.items()} for r in rd]


# ---- helpers -------------------------------------------------------------------------

def count(sink, sql):
    """A count(*) AS n query's answer (0 before the exporter made the database)."""
    rows = sink.rows(sql)
    return int(rows[0]["n"]) if rows else 0


def export(env, cfg, to, *args, name="export", timeout_s=120, expect=0):
    """Runs switchyard export --config CFG --to TO ARGS... to its end; returns
    (stdout, stderr)."""
    out = env.path(name + ".stdout")
    with open(out, "wb") as f:
        p = h.Process(name, [h.SWITCHYARD, "export", "--config", cfg, "--to", to] + list(args),
                      env.dir, stdout=f)
        env.procs.append(p)
        rc = p.wait(timeout_s)
        check(rc is not None, "%s still running after %d s: %s", name, timeout_s,
              p.stderr_tail())
        p.stop()
    with open(out) as f:
        text = f.read()
    check(rc == expect, "%s: exit %s (wanted %d): %s %s", name, rc, expect, text,
          p.stderr_tail())
    return text, p.stderr_text()


def summary(text):
    """The numbers of export's summary line."""
    line = [l for l in text.splitlines() if l.startswith("export: ")][-1]
    words = line.replace(",", "").replace(";", "").split()
    return {"read": int(words[1]), "applied": int(words[4]), "dups": int(words[6]),
            "other_tenant": int(words[9]), "unreadable": int(words[13])}


def fill(redis, n, *args):
    r = subprocess.run([EXPORT_FILL, "--redis", redis.url, "-n", str(n)] + list(args),
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "export-fill: %s", r.stderr)
    return int(dict(l.split("=") for l in r.stdout.split())["filled_events"])


def filled_counts(n):
    """(events, feedback events, outcome events) export-fill writes for n traces."""
    fb, out = (n + 3) // 4, (n + 4) // 5
    return n + fb + out, fb, out


def bare_config(env, redis, name="export.yaml"):
    """A config that only says where Redis is (what export reads of it)."""
    path = env.path(name)
    h.write_file(path, h.to_yaml(h.router_config("127.0.0.1:1", experiments=[],
                                                 redis={"url": redis.url},
                                                 data_dir=env.path("data"))))
    return path


def group_pending(rc, group="sy-export", stream="sy:events"):
    for g in rc.command("XINFO", "GROUPS", stream) or []:
        d = dict(zip(g[0::2], g[1::2]))
        if d.get("name") == group:
            return d["pending"]
    return None


# ---- the router's traffic, exported ---------------------------------------------------

def router_config(env, mock, redis):
    shadowed = {"id": "sh", "match": {"method": "POST", "path_prefix": "/v1/chat/completions",
                                      "header": "x-exp", "header_value": "sh"},
                "policy": "split", "control": "a",
                "variants": [{"id": "a", "upstream": "mock", "model": "model-a", "weight": 1},
                             {"id": "s", "upstream": "mock", "model": "model-a", "weight": 0,
                              "shadow": {"fraction": 1}}]}
    chat = {"id": "chat", "match": {"method": "POST", "path_prefix": "/v1/chat/completions"},
            "policy": "split", "control": "a", "outcome": BINARY,
            "variants": [{"id": "a", "upstream": "mock", "model": "model-a"},
                         {"id": "b", "upstream": "mock", "model": "model-b"}]}
    return h.router_config(mock.addr, experiments=[shadowed, chat], redis={"url": redis.url},
                           data_dir=env.path("data"), events={"flush_ms": 2},
                           api_keys=[{"name": "acme", "secret_env": "SY_EXPTEST_KEY_ACME",
                                      "tenant": "acme"}])


def api(port, what, body):
    c = h.Client(port)
    try:
        r = c.request("POST", "/switchyard/v1/" + what,
                      {"Authorization": "Bearer " + ACME_KEY,
                       "Content-Type": "application/json"}, body)
    finally:
        c.close()
    check(r.status == 200 and r.json().get("applied") is True, "%s: %s %r", what, r.status,
          r.body[:300])


def legacy_events(rc):
    """Field-by-field (schema 4 layout) events of a producer that keeps ids and a
    comment with consent none, plus a config hash and a decision; returns the trace id."""
    tid = secrets.token_hex(16)
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    common = ["schema_version", "4", "timestamp", ts, "trace_id", tid, "experiment", "legacy",
              "variant", "x", "variant_version", "3", "tenant_id", "acme",
              "consent_scope", "none", "user_id", "u" * 32, "session_id", "s" * 32]
    rc.command("XADD", "sy:events", "*", "event_id", "legacy-req", "event_type", "request",
               *common, "propensity", "0.25", "status", "200", "config_hash", "cfg-abc123")
    rc.command("XADD", "sy:events", "*", "event_id", "legacy-fb", "event_type", "feedback",
               *common, "feedback_type", "rating", "feedback_value", "2",
               "feedback_weight", "0.5", "feedback_comment", "call 555 0100")
    # bytes that are not UTF-8 (PostgreSQL refuses them in text: U+FFFD instead)
    rc.command("XADD", "sy:events", "*", "event_id", "legacy-out", "event_type", "outcome",
               *common, "country", b"F\xe9R", "outcome_metric_name", "resolved",
               "outcome_metric_value", "1")
    rc.command("XADD", "sy:events", "*", "event_id", "legacy-dec", "event_type", "decision",
               "schema_version", "4", "timestamp", ts, "experiment", "legacy",
               "decision", "promote", "variant", "x")
    return tid


def traffic_case(env, sink):
    redis = h.redis_server(env)
    mock = env.mock()
    router = env.router(router_config(env, mock, redis))
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    scopes = ("content", "metrics", "none")
    served = {}  # trace id -> (variant, consent)
    for i in range(30):
        r = h.post_chat(router.port, {"x-switchyard-tenant": "acme",
                                      "x-switchyard-user": "jane.doe@example.com",
                                      "x-switchyard-consent": scopes[i % 3]})
        check(r.status == 200, "chat %d: %s", i, r.status)
        served[r.header("x-switchyard-trace-id")] = (r.header("x-switchyard-variant"),
                                                     scopes[i % 3])
    shadowed = []
    for i in range(3):
        r = h.post_chat(router.port, {"x-switchyard-tenant": "acme", "x-exp": "sh"})
        check(r.status == 200, "shadowed chat: %s", r.status)
        shadowed.append(r.header("x-switchyard-trace-id"))
    tids = list(served)
    for tid in tids:
        check(h.wait_until(lambda: rc.trace(tid) != {}, 5), "trace %s never reached Redis", tid)
    fb_sent, out_sent = {}, {}
    for i, tid in enumerate(tids):
        if i % 2 == 0:
            api(router.port, "feedback", {"trace_id": tid, "type": "thumbs", "value": 1,
                                          "comment": EMAIL_COMMENT})
            fb_sent.setdefault(tid, {})["thumbs"] = 1.0
        if i % 4 == 0:
            api(router.port, "feedback", {"trace_id": tid, "type": "rating", "value": 4})
            fb_sent.setdefault(tid, {})["rating"] = 4.0
        if i % 3 == 0:
            api(router.port, "outcome", {"trace_id": tid, "metric": "resolved", "value": i % 2})
            out_sent[tid] = float(i % 2)
    n_fb = sum(len(v) for v in fb_sent.values())
    want = {"request": 33, "feedback": n_fb, "outcome": len(out_sent), "shadow": 3}

    def types():
        got = {}
        for _, e in rc.stream("sy:events"):
            got[e.get("event_type")] = got.get(e.get("event_type"), 0) + 1
        return got
    check(h.wait_until(lambda: all(types().get(k, 0) >= v for k, v in want.items()), 10),
          "events in the stream %r, wanted %r", types(), want)
    legacy = legacy_events(rc)
    xlen = rc.command("XLEN", "sy:events")

    out, _ = export(env, router.config_path, sink.url, "--once")
    s = summary(out)
    check(s["read"] == xlen and s["applied"] == xlen and s["unreadable"] == 0,
          "summary %r, stream length %d", s, xlen)
    check(count(sink, "SELECT count(*) AS n FROM events") == xlen, "events rows != XLEN %d", xlen)
    rows = {r["trace_id"]: r for r in sink.rows("SELECT * FROM trace WHERE experiment = 'chat'")}
    check(set(rows) == set(served), "trace rows %d, traces served %d (missing %r, extra %r)",
          len(rows), len(served), set(served) - set(rows), set(rows) - set(served))
    now_ms = time.time() * 1000
    for tid, (variant, scope) in served.items():
        r = rows[tid]
        check(r["variant"] == variant and r["consent_scope"] == scope and r["tenant_id"] == "acme",
              "trace %s: %r (served %s, consent %s)", tid, r, variant, scope)
        check(r["model_id"] == "model-" + variant and r["variant_version"] is not None
              and r["status"] == "200" and r["request_event_id"] is not None,
              "request columns of %s: %r", tid, r)
        check(0 < float(r["propensity"]) <= 1 and abs(float(r["ts_ms"]) - now_ms) < 120000,
              "propensity/ts of %s: %r", tid, r)
        check((r["user_id"] is None) == (scope == "none")
              and (r["session_id"] is None or scope != "none"),
              "ids of %s with consent %s: %r", tid, scope, r)
        if tid in out_sent:
            check(r["outcome_metric"] == "resolved" and float(r["outcome_value"]) == out_sent[tid]
                  and r["outcome_missing"] == "0", "outcome of %s: %r", tid, r)
        else:
            check(r["outcome_value"] is None, "outcome without one sent: %r", r)
        sent = fb_sent.get(tid, {})
        check(int(r["feedback_n"] or 0) == len(sent), "feedback_n of %s: %r, sent %r", tid, r,
              sent)
        fb = json.loads(r["feedback"]) if r["feedback"] else {}
        check(set(fb) == set(sent) and all(fb[k]["n"] == 1 and fb[k]["sum"] == v
                                           and fb[k]["last"] == v for k, v in sent.items()),
              "feedback of %s: %r, sent %r", tid, fb, sent)
        comment = r["feedback_comment"]
        if "thumbs" in sent and scope == "content":
            check(comment is not None and "[email]" in comment and "jane" not in comment,
                  "comment of %s: %r", tid, comment)
        else:
            check(comment is None, "consent %s kept a comment: %r", scope, comment)
    # the raw log follows the same consent rules
    for e in sink.rows("SELECT fields FROM events"):
        f = json.loads(e["fields"])
        if f.get("consent_scope") == "none":
            check("user_id" not in f and "session_id" not in f, "ids in %r", f)
        if f.get("consent_scope") != "content":
            check("feedback_comment" not in f, "comment in %r", f)
        check("jane.doe" not in e["fields"], "raw address in %r", f)
    # the legacy producer's ids and comment, dropped; its config hash kept
    lg = sink.rows("SELECT * FROM trace WHERE experiment = 'legacy'")
    check(len(lg) == 1 and lg[0]["trace_id"] == legacy and lg[0]["user_id"] is None
          and lg[0]["session_id"] is None and lg[0]["feedback_comment"] is None
          and lg[0]["config_hash"] == "cfg-abc123" and float(lg[0]["propensity"]) == 0.25
          and json.loads(lg[0]["feedback"])["rating"]["weight"] == 0.5,
          "legacy trace row %r", lg)
    check(float(lg[0]["outcome_value"]) == 1.0, "legacy outcome %r", lg)
    bad = sink.rows("SELECT fields FROM events WHERE event_id = 'legacy-out'")
    check(len(bad) == 1 and json.loads(bad[0]["fields"])["country"] == "F\ufffdR",
          "invalid UTF-8 kept as %r", bad)
    # the config hash the router had loaded (proto/EVENTS.md: config_hash)
    with open(router.config_path, "rb") as f:
        cfg_hash = hashlib.sha256(f.read()).hexdigest()[:16]
    check(all(r["config_hash"] == cfg_hash for r in rows.values()), "config_hash %r, wanted %s",
          {r["config_hash"] for r in rows.values()}, cfg_hash)
    dec = sink.rows("SELECT * FROM events WHERE event_type = 'decision'")
    check(len(dec) == 1 and dec[0]["event_id"] == "legacy-dec" and dec[0]["trace_id"] is None,
          "decision row %r", dec)
    # shadow comparisons joined to their primary's row
    sh = {r["trace_id"]: r for r in sink.rows("SELECT * FROM trace WHERE experiment = 'sh'")}
    check(set(sh) == set(shadowed), "shadowed rows %r", list(sh))
    for r in sh.values():
        cmp = json.loads(r["shadow"] or "[]")
        check(r["variant"] == "a" and len(cmp) == 1 and cmp[0]["variant"] == "s"
              and cmp[0]["status"] == 200 and cmp[0]["exact_match"] is True
              and cmp[0]["similarity"] == 1, "shadow of %s: %r", r["trace_id"], r)
    # what `switchyard evaluate` (the warehouse's reader) makes of these rows
    r = subprocess.run([h.SWITCHYARD, "evaluate", "chat", "--config", router.config_path,
                        "--from", sink.url, "--policy", "always:a", "--json"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "evaluate: %d %s %s", r.returncode, r.stdout, r.stderr)
    ev = json.loads(r.stdout)["rows"]
    check(ev["seen"] == len(served) and ev["used"] == len(out_sent)
          and ev["no_outcome"] == len(served) - len(out_sent), "evaluate's rows %r", ev)
    # once more: nothing new, nothing doubled, nothing left pending
    out, _ = export(env, router.config_path, sink.url, "--once", name="export2")
    check(summary(out)["read"] == 0, "second run: %s", out)
    check(count(sink, "SELECT count(*) AS n FROM events") == xlen, "events rows changed")
    check(group_pending(rc) == 0, "entries left pending: %r", group_pending(rc))
    meta = sink.rows("SELECT value FROM meta WHERE key = 'warehouse_schema_version'")
    check(meta == [{"value": "1"}], "meta %r", meta)
    router.stop()


@h.timeout(120)
def test_sqlite_traffic(env):
    traffic_case(env, SqliteSink(env))


@h.timeout(150)
def test_pg_traffic(env):
    traffic_case(env, PgSink(env))


# ---- SIGKILL in the middle of a backlog -----------------------------------------------

def sigkill_case(env, sink, n):
    redis = h.redis_server(env)
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    total, n_fb, n_out = filled_counts(n)
    check(fill(redis, n) == total, "export-fill wrote a different count")
    cfg = bare_config(env, redis)
    kills, pending_seen, last = 0, 0, 0
    for k in range(3):
        out = open(env.path("kill%d.stdout" % k), "wb")
        p = h.Process("kill%d" % k, [h.SWITCHYARD, "export", "--config", cfg, "--to", sink.url,
                                     "--once", "--batch", "500"], env.dir, stdout=out)
        env.procs.append(p)
        # after at least one more commit than last time (a batch is 500 entries)
        got = h.wait_until(lambda: not p.alive() or
                           count(sink, "SELECT count(*) AS n FROM events") > last + 600, 60,
                           interval=0.01)
        check(got and p.alive(), "export ended before it could be killed: %s", p.stderr_tail())
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        p.stopped = True
        out.close()
        kills += 1
        last = count(sink, "SELECT count(*) AS n FROM events")
        pend = group_pending(rc)
        pending_seen += pend or 0
        check(last < total, "kill %d came after the end (%d rows)", k, last)
    text, _ = export(env, cfg, sink.url, "--once", "--batch", "500", name="resume")
    s = summary(text)
    check(count(sink, "SELECT count(*) AS n FROM events") == total,
          "events rows %d, entries %d", count(sink, "SELECT count(*) AS n FROM events"), total)
    check(count(sink, "SELECT count(*) AS n FROM trace") == n, "trace rows != %d", n)
    fbn = sink.rows("SELECT sum(feedback_n) AS s, max(feedback_n) AS m FROM trace")[0]
    check(int(fbn["s"]) == n_fb and int(fbn["m"]) == 1, "feedback after kills %r, sent %d",
          fbn, n_fb)
    check(count(sink, "SELECT count(outcome_value) AS n FROM trace") == n_out, "outcomes")
    check(count(sink, "SELECT count(*) AS n FROM trace WHERE request_event_id IS NULL") == 0,
          "rows without their request")
    check(count(sink, "SELECT count(*) AS n FROM trace WHERE config_hash = 'c0ffee00c0ffee00'")
          == n, "config hash of export-fill's refs")
    check(group_pending(rc) == 0, "pending after the resume: %r", group_pending(rc))
    # the killed runs left delivered, unacknowledged entries: the resume read them again
    check(pending_seen > 0, "no kill left pending entries (%d kills)", kills)
    check(s["read"] >= total - last, "resume read %r, rows were %d of %d", s, last, total)
    print("    %s: %d kills, %d entries pending at the kills, resume: %r"
          % (sink.name, kills, pending_seen, s), flush=True)
    # every entry delivered again (the group rewound): all seen, none applied twice
    rc.command("XGROUP", "SETID", "sy:events", "sy-export", "0")
    text, _ = export(env, cfg, sink.url, "--once", name="replay")
    s = summary(text)
    check(s["read"] == total and s["dups"] == total and s["applied"] == 0, "replay %r", s)
    fbn2 = sink.rows("SELECT sum(feedback_n) AS s, max(feedback_n) AS m FROM trace")[0]
    check(fbn2 == fbn and count(sink, "SELECT count(*) AS n FROM events") == total,
          "a replay changed the rows: %r -> %r", fbn, fbn2)


@h.timeout(180)
def test_sqlite_sigkill(env):
    sigkill_case(env, SqliteSink(env), 30000)


@h.timeout(240)
def test_pg_sigkill(env):
    sigkill_case(env, PgSink(env), 8000)


# ---- --retain, --tenant ---------------------------------------------------------------

def retain_tenant_case(env, sink, sink2):
    redis = h.redis_server(env)
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    day = 86400 * 1000
    now = int(time.time() * 1000)
    old_events = fill(redis, 200, "--seed", "1", "--ts-ms", str(now - 60 * day))
    new_events = fill(redis, 200, "--seed", "2", "--ts-ms", str(now - 1000))
    cfg = bare_config(env, redis)
    export(env, cfg, sink.url, "--once")
    check(count(sink, "SELECT count(*) AS n FROM events") == old_events + new_events, "all rows")
    check(count(sink, "SELECT count(*) AS n FROM trace") == 400, "all traces")
    # retention at start: the 60-day-old rows go
    _, err = export(env, cfg, sink.url, "--once", "--retain", "30d", name="retain")
    check(count(sink, "SELECT count(*) AS n FROM events") == new_events,
          "events after --retain 30d: %d, wanted %d (log %s)",
          count(sink, "SELECT count(*) AS n FROM events"), new_events, err[-500:])
    check(count(sink, "SELECT count(*) AS n FROM trace") == 200, "traces after --retain")
    check(count(sink, "SELECT count(*) AS n FROM trace WHERE ts_ms < %d" % (now - 30 * day)) == 0,
          "old traces left")
    # old entries that arrive later are not imported at all
    fill(redis, 100, "--seed", "3", "--ts-ms", str(now - 45 * day))
    out, _ = export(env, cfg, sink.url, "--once", "--retain", "30d", name="retain2")
    check(count(sink, "SELECT count(*) AS n FROM trace") == 200, "old traces imported: %s", out)
    # --tenant: its own group, only acme's rows, the others acknowledged too
    out, _ = export(env, cfg, sink2.url, "--once", "--tenant", "acme", "--group", "acme",
                    name="tenant")
    s = summary(out)
    tn = sink2.rows("SELECT tenant_id, count(*) AS n FROM trace GROUP BY tenant_id")
    check(tn == [{"tenant_id": "acme", "n": "250"}], "tenants exported %r", tn)
    check(count(sink2, "SELECT count(*) AS n FROM events WHERE fields NOT LIKE "
                       "'%\"tenant_id\":\"acme\"%'") == 0, "other tenants' events")
    check(s["other_tenant"] > 0 and s["read"] == rc.command("XLEN", "sy:events"),
          "tenant run %r", s)
    check(group_pending(rc, "acme") == 0, "other tenants' entries left pending")


@h.timeout(120)
def test_sqlite_retain_tenant(env):
    retain_tenant_case(env, SqliteSink(env), SqliteSink(env, "acme"))


@h.timeout(150)
def test_pg_retain_tenant(env):
    retain_tenant_case(env, PgSink(env), PgSink(env))


# ---- --follow -------------------------------------------------------------------------

def follow_case(env, sink):
    redis = h.redis_server(env)
    cfg = bare_config(env, redis)
    out = open(env.path("follow.stdout"), "wb")
    p = h.Process("follow", [h.SWITCHYARD, "export", "--config", cfg, "--to", sink.url,
                             "--follow", "--lag-every", "1"], env.dir, stdout=out)
    env.procs.append(p)
    check(h.wait_until(lambda: "lag stream=sy:events" in p.stderr_text(), 10),
          "no lag line: %s", p.stderr_tail())
    total = fill(redis, 2000)
    check(h.wait_until(lambda: count(sink, "SELECT count(*) AS n FROM events") == total, 60),
          "follow exported %d of %d", count(sink, "SELECT count(*) AS n FROM events"), total)
    total += fill(redis, 500, "--seed", "9")
    check(h.wait_until(lambda: count(sink, "SELECT count(*) AS n FROM events") == total, 60),
          "follow missed the second fill")
    # Redis restarted (empty: no persistence), and the database too: it reconnects
    redis.stop()
    if isinstance(sink, PgSink):
        PG.restart()
    check(h.wait_until(lambda: "retrying" in p.stderr_text(), 10), "no retry: %s",
          p.stderr_tail())
    redis = h.redis_server(env)
    total += fill(redis, 300, "--seed", "10")
    check(h.wait_until(lambda: count(sink, "SELECT count(*) AS n FROM events") == total, 60),
          "follow after the restart: %d of %d rows: %s",
          count(sink, "SELECT count(*) AS n FROM events"), total, p.stderr_tail())
    p.signal(signal.SIGTERM)
    rc = p.wait(10)
    out.close()
    p.stop()
    check(rc == 0, "export --follow exited %r after SIGTERM: %s", rc, p.stderr_tail())
    rcl = h.RedisClient(redis.sock)
    env.closers.append(rcl.close)
    check(group_pending(rcl) == 0, "left pending after SIGTERM: %r", group_pending(rcl))
    check("XACK failed" not in p.stderr_text(), "%s", p.stderr_tail())
    with open(env.path("follow.stdout")) as f:
        check(summary(f.read())["applied"] == total, "summary after SIGTERM")


@h.timeout(120)
def test_sqlite_follow(env):
    follow_case(env, SqliteSink(env))


@h.timeout(120)
def test_pg_follow(env):
    follow_case(env, PgSink(env))


# ---- trimming, bad arguments ----------------------------------------------------------

@h.timeout(60)
def test_trimmed_stream_warns(env):
    redis = h.redis_server(env)
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    total = fill(redis, 1000)
    rc.command("XTRIM", "sy:events", "MAXLEN", "100")
    sink = SqliteSink(env)
    out, err = export(env, bare_config(env, redis), sink.url, "--once")
    check("about %d entries were trimmed" % (total - 100) in err, "no trim warning: %s", err)
    check(count(sink, "SELECT count(*) AS n FROM events") == 100, "rows of a trimmed stream")
    # trimmed past the group's position later: the next run says how many it missed
    more = fill(redis, 1000, "--seed", "2")
    rc.command("XTRIM", "sy:events", "MAXLEN", "300")
    out, err = export(env, bare_config(env, redis), sink.url, "--once", name="export2")
    check("about %d entries were trimmed" % (more - 300) in err, "no trim warning: %s", err)
    check(count(sink, "SELECT count(*) AS n FROM events") == 400, "rows after the second trim")
    out, err = export(env, bare_config(env, redis), sink.url, "--once", name="export3")
    check("trimmed" not in err and summary(out)["read"] == 0, "a warning again: %s", err)


@h.timeout(60)
def test_two_streams(env):
    """Per-experiment streams (Redis Cluster's sy:{E}:events): one group reads them all."""
    redis = h.redis_server(env)
    rc = h.RedisClient(redis.sock)
    env.closers.append(rc.close)
    na = fill(redis, 700, "--stream", "sy:{chat}:events", "--experiment", "chat")
    nb = fill(redis, 300, "--stream", "sy:{search}:events", "--experiment", "search",
              "--seed", "2")
    sink = SqliteSink(env)
    out, _ = export(env, bare_config(env, redis), sink.url, "--once", "--batch", "100",
                    "--stream", "sy:{chat}:events", "--stream", "sy:{search}:events")
    got = sink.rows("SELECT stream, experiment, count(*) AS n FROM events "
                    "GROUP BY stream, experiment ORDER BY stream")
    check(got == [{"stream": "sy:{chat}:events", "experiment": "chat", "n": str(na)},
                  {"stream": "sy:{search}:events", "experiment": "search", "n": str(nb)}],
          "rows by stream %r (%s)", got, out)
    check(count(sink, "SELECT count(*) AS n FROM trace") == 1000, "traces of both streams")
    for st in ("sy:{chat}:events", "sy:{search}:events"):
        check(group_pending(rc, stream=st) == 0, "pending in %s", st)


@h.timeout(60)
def test_bad_arguments(env):
    redis = h.redis_server(env)
    cfg = bare_config(env, redis)
    db = "sqlite:" + env.path("x.db")
    cases = [
        (["--config", cfg, "--once"], "--to"),
        (["--config", cfg, "--to", "mysql://u:secret@h/db", "--once"], "--to"),
        (["--config", cfg, "--to", db, "--once", "--follow"], "--once"),
        (["--config", cfg, "--to", db], "--follow"),
        (["--config", cfg, "--to", db, "--once", "--retain", "30x"], "--retain"),
        (["--config", cfg, "--to", db, "--once", "--batch", "0"], "--batch"),
        (["--to", db, "--once"], "--config"),
    ]
    for args, flag in cases:
        r = subprocess.run([h.SWITCHYARD, "export"] + args, capture_output=True, text=True,
                           timeout=30)
        first = r.stderr.splitlines()[0] if r.stderr else ""
        check(r.returncode == 2 and flag in first, "%r: exit %d, %r", args, r.returncode, first)
        check("secret" not in r.stderr, "the password was printed: %r", first)
    check(not os.path.exists(env.path("x.db")), "a bad command created the database")


if __name__ == "__main__":
    try:
        status = h.run(globals())
    finally:
        PG.stop()
    sys.exit(status)
