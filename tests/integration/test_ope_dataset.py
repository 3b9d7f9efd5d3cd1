#!/usr/bin/env python3
"""test_ope_dataset.py — `switchyard evaluate` and `switchyard dataset build` on real
SQLite files. Each test writes a warehouse with the contract's DDL (the `trace` table of
schema version 1, as `switchyard export` creates it) and inserts its rows directly: this
tests the readers, not the exporter.

evaluate: the estimates equal an independent Python computation of IPS, SNIPS and the
cross-fitted DR on the same rows (reward rules: outcome_value, 0 when counted missing, rows
without either or without a propensity left out and counted); the text table; greedy;
warnings; exit 2 naming the problem for each kind of bad input.
dataset: byte-identical files when built twice and when rebuilt from the manifest, the
manifest's hash is the file's, the open `until` is pinned (a later row stays out of a
rebuild), a changed row makes a rebuild exit 1, the filter's grammar refuses what it must.
"""
import calendar
import hashlib
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS trace (
  trace_id TEXT, experiment TEXT, variant TEXT, variant_version TEXT, config_hash TEXT,
  prompt_version TEXT, model_id TEXT, model_version TEXT, task_type TEXT, task_id TEXT,
  tenant_id TEXT, user_id TEXT, session_id TEXT, consent_scope TEXT, country TEXT,
  ts_ms INTEGER, propensity REAL, status INTEGER, server_latency_ms REAL,
  input_tokens INTEGER, output_tokens INTEGER, outcome_metric TEXT, outcome_value REAL,
  outcome_missing INTEGER, outcome_ts_ms INTEGER, feedback TEXT, feedback_n INTEGER,
  feedback_comment TEXT, shadow TEXT, request_event_id TEXT, updated_ms INTEGER,
  PRIMARY KEY (trace_id, experiment));
"""
COLS = ["trace_id", "experiment", "variant", "variant_version", "config_hash", "tenant_id",
        "ts_ms", "propensity", "status", "server_latency_ms", "outcome_value",
        "outcome_missing", "feedback", "feedback_n", "shadow", "updated_ms"]
T0 = 1796600000000  # 2026-12-06T23:33:20Z, in ms


def make_db(path, rows):
    db = sqlite3.connect(path)
    db.executescript(DDL)
    db.execute("INSERT INTO meta VALUES ('warehouse_schema_version', '1')")
    for r in rows:
        db.execute("INSERT INTO trace (%s) VALUES (%s)" % (", ".join(COLS), ", ".join("?" * len(COLS))),
                   [r.get(c) for c in COLS])
    db.commit()
    db.close()


def chat_rows(n=900, seed=7):
    """Rows of `chat` logged by a policy that drifts (like a bandit's), plus the cases the
    reader must leave out, a variant the config no longer has, and another experiment."""
    rnd = random.Random(seed)
    truth = {"a": 0.30, "b": 0.55, "c": 0.45}
    rows = []
    for i in range(n):
        frac = i / n
        probs = {"a": 0.5 - 0.3 * frac, "b": 0.3 + 0.4 * frac, "c": 0.2 - 0.1 * frac}
        u, acc, v = rnd.random(), 0.0, "c"
        for k in ("a", "b", "c"):
            acc += probs[k]
            if u < acc:
                v = k
                break
        r = {"trace_id": "t%05d" % rnd.randrange(100000) + "-%d" % i, "experiment": "chat",
             "variant": v, "variant_version": "2" if v == "b" else "1",
             "config_hash": "cfg-%d" % (0 if i < n // 2 else 1),
             "tenant_id": "t1" if i % 3 else "t2", "ts_ms": T0 + i * 1000 + rnd.randrange(3),
             "propensity": probs[v], "status": 200, "server_latency_ms": 12.5 + i % 7 / 10,
             "updated_ms": T0 + 10 ** 7 + rnd.randrange(1000),
             "feedback": json.dumps({"thumbs": {"n": 1, "sum": 1, "weight": 0.3, "last": 1}})
             if i % 5 == 0 else None, "feedback_n": 1 if i % 5 == 0 else 0,
             "shadow": None}
        kind = rnd.random()
        if kind < 0.08:
            pass  # no outcome yet: not used
        elif kind < 0.15:
            r["outcome_missing"] = 1  # counted missing: reward 0
        else:
            r["outcome_value"] = 1.0 if rnd.random() < truth[v] else 0.0
        rows.append(r)
    # A trace whose request has not arrived (a feedback made the row): no variant, no ts.
    rows.append({"trace_id": "early", "experiment": "chat", "feedback_n": 1, "outcome_value": 1.0})
    # A request logged without a propensity.
    rows.append({"trace_id": "noprop", "experiment": "chat", "variant": "a", "ts_ms": T0 + 5,
                 "outcome_value": 1.0})
    # A variant the config no longer has.
    rows.append({"trace_id": "retired", "experiment": "chat", "variant": "old", "ts_ms": T0 + 7,
                 "propensity": 0.1, "outcome_value": 1.0})
    # Another experiment.
    rows.append({"trace_id": "other", "experiment": "search", "variant": "x", "ts_ms": T0 + 9,
                 "propensity": 1.0, "outcome_value": 0.0})
    return rows


def config(env, variants=("a", "b", "c")):
    cfg = {"listen": ["127.0.0.1:%d" % h.free_port()],
           "upstreams": {"mock": {"servers": ["127.0.0.1:9"]}},
           "experiments": [{"id": "chat", "match": {"path_prefix": "/v1/chat"}, "control": "a",
                            "variants": [{"id": v, "upstream": "mock"} for v in variants]},
                           {"id": "search", "match": {"path_prefix": "/v1/search"},
                            "control": "x", "variants": [{"id": "x", "upstream": "mock"}]}]}
    path = env.path("cfg.yaml")
    with open(path, "w") as f:
        f.write(h.to_yaml(cfg))
    return path


def sy(*args):
    p = subprocess.run([h.SWITCHYARD] + list(args), capture_output=True, text=True, timeout=60)
    for marker in h.SANITIZER_MARKERS:
        check(marker not in p.stderr, "switchyard %r: sanitizer report:\n%s", args, p.stderr[-3000:])
    return p


def expected(rows, pi, names):
    """IPS, SNIPS, cross-fitted DR and the logged mean (policies/ope.h), independently."""
    used = []
    for r in sorted([r for r in rows if r.get("experiment") == "chat"],
                    key=lambda r: (r.get("ts_ms") is not None, r.get("ts_ms") or 0, r["trace_id"])):
        if r.get("variant") is None or r.get("propensity") is None:
            continue
        if r.get("outcome_value") is not None:
            y = r["outcome_value"]
        elif r.get("outcome_missing") == 1:
            y = 0.0
        else:
            continue
        used.append((r["variant"], r["propensity"], y))
    n = len(used)
    folds = [used[0::2], used[1::2]]

    def mean(fold, a):
        ys = [y for v, _, y in fold if v == a]
        if ys:
            return sum(ys) / len(ys)
        return sum(y for _, _, y in fold) / len(fold) if fold else 0.0

    w = [pi.get(v, 0.0) / p for v, p, _ in used]
    ips_t = [wi * y for wi, (_, _, y) in zip(w, used)]
    d = []
    for i, (v, p, y) in enumerate(used):
        other = folds[1 - i % 2]
        dm = sum(pi[a] * mean(other, a) for a in names)
        d.append(dm + w[i] * (y - mean(other, v)))
    sw = sum(w)
    sn = sum(wi * y for wi, (_, _, y) in zip(w, used)) / sw

    def se(xs):
        m = sum(xs) / len(xs)
        return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs))
    return {"n": n, "ips": sum(ips_t) / n, "ips_se": se(ips_t), "snips": sn,
            "snips_se": math.sqrt(sum(wi * wi * (y - sn) ** 2 for wi, (_, _, y) in zip(w, used))) / sw,
            "dr": sum(d) / n, "dr_se": se(d), "logged": sum(y for _, _, y in used) / n,
            "ess": sw * sw / sum(x * x for x in w)}


def close(a, b, what):
    check(a is not None and abs(a - b) < 1e-6 * max(1, abs(b)), "%s: %r, expected %r", what, a, b)


def test_evaluate_matches_independent_estimates(env):
    rows = chat_rows()
    make_db(env.path("w.db"), rows)
    cfg = config(env)
    for spec, pi in (("always:b", {"a": 0, "b": 1, "c": 0}),
                     ("split:a=70,b=30", {"a": 0.7, "b": 0.3, "c": 0}),
                     ("uniform", {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})):
        p = sy("evaluate", "chat", "--config", cfg, "--from", "sqlite:" + env.path("w.db"),
               "--policy", spec, "--json")
        check(p.returncode == 0, "evaluate %s: exit %d: %s", spec, p.returncode, p.stderr)
        j = json.loads(p.stdout)
        e = expected(rows, pi, ["a", "b", "c"])
        check(j["rows"]["used"] == e["n"], "%s: used %r, expected %d", spec, j["rows"], e["n"])
        check(j["rows"]["seen"] == len(rows) - 1, "seen %r", j["rows"])
        check(j["rows"]["no_propensity"] == 2, "no_propensity %r", j["rows"])
        no_outcome = sum(1 for r in rows if r.get("experiment") == "chat" and r.get("variant")
                         and r.get("propensity") is not None and r.get("outcome_value") is None
                         and r.get("outcome_missing") != 1)
        check(j["rows"]["no_outcome"] == no_outcome, "no_outcome %r vs %d", j["rows"], no_outcome)
        est = j["estimates"]
        close(est["ips"]["value"], e["ips"], spec + " ips")
        close(est["ips"]["se"], e["ips_se"], spec + " ips se")
        close(est["snips"]["value"], e["snips"], spec + " snips")
        close(est["snips"]["se"], e["snips_se"], spec + " snips se")
        close(est["dr"]["value"], e["dr"], spec + " dr")
        close(est["dr"]["se"], e["dr_se"], spec + " dr se")
        close(est["logged"]["value"], e["logged"], spec + " logged")
        close(j["ess"], e["ess"], spec + " ess")
        close(est["dr"]["lo"], e["dr"] - 1.959963984540054 * e["dr_se"], spec + " dr lo")
        old = [v for v in j["variants"] if v["variant"] == "old"]
        check(len(old) == 1 and old[0]["in_config"] is False and old[0]["target_pi"] == 0,
              "the retired variant: %r", j["variants"])
        check(j["warnings"] == [], "%s: unexpected warnings %r", spec, j["warnings"])


def test_evaluate_text_and_greedy(env):
    make_db(env.path("w.db"), chat_rows())
    cfg = config(env)
    p = sy("evaluate", "chat", "--config", cfg, "--from", "sqlite:" + env.path("w.db"),
           "--policy", "always:a")
    check(p.returncode == 0, "exit %d: %s", p.returncode, p.stderr)
    for s in ("experiment chat, target policy always:a", " used of 903 seen", "IPS", "SNIPS",
              "DR", "logged", "effective sample size", "warnings: none", "(not in the config)"):
        check(s in p.stdout, "no %r in:\n%s", s, p.stdout)
    p = sy("evaluate", "chat", "--config", cfg, "--from", "sqlite:" + env.path("w.db"),
           "--policy", "greedy", "--json")
    check(p.returncode == 0, "greedy: exit %d: %s", p.returncode, p.stderr)
    j = json.loads(p.stdout)
    check(j["greedy"]["choice"] == "b" and j["greedy"]["fold_choices"] == ["b", "b"],
          "greedy chose %r (b is best by 0.1)", j["greedy"])
    # greedy = always:b here (both halves chose b), so the estimates agree.
    q = json.loads(sy("evaluate", "chat", "--config", cfg, "--from", "sqlite:" + env.path("w.db"),
                      "--policy", "always:b", "--json").stdout)
    close(j["estimates"]["snips"]["value"], q["estimates"]["snips"]["value"], "greedy vs always:b")


def test_evaluate_warnings(env):
    rnd = random.Random(3)
    rows = []
    for i in range(200):
        v = "a" if i % 50 == 0 else "b"
        rows.append({"trace_id": "w%03d" % i, "experiment": "chat", "variant": v,
                     "ts_ms": T0 + i, "propensity": 0.005 if v == "a" else 0.995,
                     "outcome_value": float(rnd.random() < 0.5)})
    make_db(env.path("w.db"), rows)
    cfg = config(env)
    p = sy("evaluate", "chat", "--config", cfg, "--from", "sqlite:" + env.path("w.db"),
           "--policy", "always:a", "--json")
    check(p.returncode == 0, "exit %d: %s", p.returncode, p.stderr)
    names = [w["name"] for w in json.loads(p.stdout)["warnings"]]
    check("min_propensity" in names and "low_ess" in names, "warnings %r", names)
    p = sy("evaluate", "chat", "--config", cfg, "--from", "sqlite:" + env.path("w.db"),
           "--policy", "always:c")
    check(p.returncode == 0 and "no_support" in p.stdout and "(variant c)" in p.stdout,
          "always:c (never logged): %d %s", p.returncode, p.stdout)


def test_evaluate_bad_input(env):
    make_db(env.path("w.db"), chat_rows(100))
    cfg = config(env)
    src = "sqlite:" + env.path("w.db")
    with open(env.path("empty.db"), "w"):
        pass
    cases = [
        (["chat", "--config", cfg, "--from", src, "--policy", "always:z"], "unknown variant 'z'"),
        (["chat", "--config", cfg, "--from", src, "--policy", "split:a=0,b=0"], "sum to more than 0"),
        (["chat", "--config", cfg, "--from", src, "--policy", "split:a=x"], "weight of 'a'"),
        (["nope", "--config", cfg, "--from", src, "--policy", "uniform"], "unknown experiment 'nope'"),
        (["chat", "--config", cfg, "--policy", "uniform"], "--from"),
        (["chat", "--from", src, "--policy", "uniform"], "--config"),
        (["chat", "--config", cfg, "--from", src], "--policy"),
        (["chat", "--config", cfg, "--from",
          "postgresql://u:secret@/db?host=%s" % env.path("no-such-dir"), "--policy", "uniform"],
         "--from postgresql://u@/db"),
        (["chat", "--config", cfg, "--from", "sqlite:" + env.path("missing.db"), "--policy",
          "uniform"], "missing.db"),
        (["chat", "--config", cfg, "--from", "sqlite:" + env.path("empty.db"), "--policy",
          "uniform"], "no `trace` table"),
        (["chat", "--config", cfg, "--from", "mysql:x", "--policy", "uniform"],
         "expected sqlite:FILE or postgresql://"),
        (["chat", "--config", cfg, "--from", src, "--policy", "best"], "unknown policy 'best'"),
        (["chat", "--config", cfg, "--from", src, "--policy", "uniform", "--min-ess", "-1"],
         "--min-ess"),
    ]
    for args, needle in cases:
        p = sy("evaluate", *args)
        check("secret" not in p.stderr, "a password in a message: %r", p.stderr)
        check(p.returncode == 2 and needle in p.stderr,
              "evaluate %r: exit %d (want 2), stderr %r (want %r)", args, p.returncode,
              p.stderr[:300], needle)
    # Known experiment, no row: nothing to evaluate, exit 1.
    make_db(env.path("w2.db"), [])
    p = sy("evaluate", "search", "--config", cfg, "--from", "sqlite:" + env.path("w2.db"),
           "--policy", "uniform")
    check(p.returncode == 1 and "no usable row" in p.stderr, "empty: %d %r", p.returncode, p.stderr)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_dataset_reproducible(env):
    rows = chat_rows()
    db = env.path("w.db")
    make_db(db, rows)
    where = "experiment=chat,variant=b,tenant=t1,since=%d,outcome=present" % (T0 + 100000)
    d1, d2, d3 = env.path("d1"), env.path("d2"), env.path("d3")
    for d in (d1, d2):
        p = sy("dataset", "build", "--from", "sqlite:" + db, "--to", d, "--where", where)
        check(p.returncode == 0, "build: exit %d: %s", p.returncode, p.stderr)
    for f in ("rows.jsonl", "manifest.json"):
        check(read(os.path.join(d1, f)) == read(os.path.join(d2, f)), "%s differs between builds", f)
    data = read(os.path.join(d1, "rows.jsonl"))
    m = json.loads(read(os.path.join(d1, "manifest.json")))
    check(hashlib.sha256(data).hexdigest() == m["rows_sha256"], "manifest hash is not the file's")
    want = sorted([r for r in rows if r.get("experiment") == "chat" and r.get("variant") == "b"
                   and r.get("tenant_id") == "t1" and r.get("ts_ms") is not None
                   and r["ts_ms"] >= T0 + 100000 and r.get("outcome_value") is not None],
                  key=lambda r: (r["ts_ms"], r["trace_id"]))
    lines = data.decode().splitlines()
    check(len(lines) == len(want) == m["row_count"] and len(want) > 50,
          "rows %d, expected %d, manifest %d", len(lines), len(want), m["row_count"])
    for line, r in zip(lines, want):
        j = json.loads(line)
        check(list(j) == sorted(j), "keys not sorted: %s", line[:200])
        check("updated_ms" not in j, "updated_ms in a dataset row")
        check(j["trace_id"] == r["trace_id"] and j["ts_ms"] == r["ts_ms"], "order: %s vs %s",
              j["trace_id"], r["trace_id"])
        check(j["propensity"] == r["propensity"] and j["outcome_value"] == r["outcome_value"],
              "values: %s", line[:200])
        if r.get("feedback"):
            check(j["feedback"] == json.loads(r["feedback"]), "feedback not embedded: %s", line)
    check(m["variant_versions"] == {"chat": {"b": {"2": len(want)}}}, "versions %r", m["variant_versions"])
    check(sum(m["config_hashes"].values()) == len(want), "config hashes %r", m["config_hashes"])
    check(m["where"] == where and "until=%d" % (want[-1]["ts_ms"] + 1) in m["filter"],
          "filter not pinned: %r", m["filter"])
    check("?" in m["query"] and "t1" not in m["query"] and "t1" in m["query_params"],
          "values must be bound, not spliced: %r", m["query"])
    # A row exported later (after the pinned until) stays out of a rebuild.
    con = sqlite3.connect(db)
    con.execute("INSERT INTO trace (trace_id, experiment, variant, tenant_id, ts_ms, propensity, "
                "outcome_value) VALUES ('late', 'chat', 'b', 't1', ?, 0.5, 1.0)", (T0 + 10 ** 8,))
    con.commit()
    p = sy("dataset", "build", "--manifest", os.path.join(d1, "manifest.json"), "--to", d3)
    check(p.returncode == 0, "rebuild: exit %d: %s", p.returncode, p.stderr)
    for f in ("rows.jsonl", "manifest.json"):
        check(read(os.path.join(d1, f)) == read(os.path.join(d3, f)), "%s differs after rebuild", f)
    # A row in the dataset changes (a late outcome): the rebuild says so and exits 1.
    con.execute("UPDATE trace SET outcome_value = 1 - outcome_value WHERE trace_id = ?",
                (want[3]["trace_id"],))
    con.commit()
    con.close()
    p = sy("dataset", "build", "--manifest", os.path.join(d1, "manifest.json"), "--to", env.path("d4"))
    check(p.returncode == 1 and "differ from the manifest" in p.stderr, "changed rows: %d %r",
          p.returncode, p.stderr)


def test_dataset_filters_and_errors(env):
    rows = chat_rows(300)
    db = env.path("w.db")
    make_db(db, rows)
    src = "sqlite:" + db
    # ISO times; outcome=missing; an empty where selects every row with a request.
    p = sy("dataset", "build", "--from", src, "--to", env.path("m"), "--where",
           " experiment=chat , since=2026-12-06T23:34:00.500Z, outcome=missing")
    check(p.returncode == 0, "exit %d: %s", p.returncode, p.stderr)
    since = calendar.timegm((2026, 12, 6, 23, 34, 0)) * 1000 + 500
    n = sum(1 for r in rows if r.get("experiment") == "chat" and r.get("ts_ms") is not None
            and r["ts_ms"] >= since and r.get("outcome_value") is None)
    m = json.loads(read(env.path("m/manifest.json")))
    check(m["row_count"] == n, "outcome=missing: %d rows, expected %d", m["row_count"], n)
    check(n > 10, "the fixture has %d rows for outcome=missing", n)
    check(m["filter"].startswith("experiment=chat,since=%d,until=" % since),
          "ISO since not in ms: %r", m["filter"])
    p = sy("dataset", "build", "--from", src, "--to", env.path("all"))
    check(p.returncode == 0, "empty where: %d %s", p.returncode, p.stderr)
    n_all = sum(1 for r in rows if r.get("ts_ms") is not None)
    check(json.loads(read(env.path("all/manifest.json")))["row_count"] == n_all, "all rows")
    bad = [("experiment=chat;drop table trace", "not allowed"),
           ("experiment=a' OR '1'='1", "not allowed"),
           ("colour=red", "unknown key 'colour'"),
           ("experiment=chat,experiment=x", "given twice"),
           ("since=yesterday", "since"),
           ("outcome=maybe", "outcome must be"),
           ("since=2000,until=1000", "until must be after since"),
           ("experiment=chat,", "empty clause"),
           ("experiment", "KEY=VALUE")]
    for where, needle in bad:
        p = sy("dataset", "build", "--from", src, "--to", env.path("bad"), "--where", where)
        check(p.returncode == 2 and needle in p.stderr, "where %r: exit %d, %r (want %r)", where,
              p.returncode, p.stderr[:200], needle)
    con = sqlite3.connect(db)
    check(con.execute("SELECT COUNT(*) FROM trace").fetchone()[0] == len(rows), "table changed")
    con.close()
    for args, needle in ((["build", "--to", env.path("x")], "--from"),
                         (["build", "--from", src], "--to"),
                         (["make"], "expected `build`"),
                         (["build", "--manifest", env.path("nope.json"), "--to", env.path("x")],
                          "nope.json"),
                         (["build", "--manifest", env.path("m/manifest.json"), "--to",
                           env.path("x"), "--where", "variant=a"], "--where cannot")):
        p = sy("dataset", *args)
        check(p.returncode == 2 and needle in p.stderr, "dataset %r: %d %r", args, p.returncode,
              p.stderr[:200])


# ---- PostgreSQL: the same warehouse in a real server --------------------------------

PG_BIN = "/usr/lib/postgresql/15/bin"
PG_DDL = DDL.replace("INTEGER", "BIGINT").replace("REAL", "DOUBLE PRECISION")


class Postgres:
    """A private PostgreSQL 15 (Debian's postgresql-15) on a unix socket in its own
    directory and a free port number; as the `postgres` user when the test runs as root
    (the server refuses root)."""

    def __init__(self, env):
        import pwd
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="sy-pg-")
        self.port = h.free_port()
        self.as_user = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        data = os.path.join(self.dir, "data")
        p = subprocess.run(self.as_user + [PG_BIN + "/initdb", "-D", data, "-A", "trust", "-U",
                           "postgres", "--no-sync"], capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, "initdb: %s", p.stderr[-2000:])
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(
            self.as_user + [PG_BIN + "/postgres", "-D", data, "-k", self.dir, "-p", str(self.port),
                            "-c", "listen_addresses=", "-c", "fsync=off"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        env.closers.append(self.stop)
        for _ in range(300):
            if os.path.exists(os.path.join(self.dir, ".s.PGSQL.%d" % self.port)) and \
                    self.psql("postgres", "SELECT 1").returncode == 0:
                return
            check(self.proc.poll() is None, "postgres exited: %s", self.tail())
            time.sleep(0.1)
        raise h.Failure("postgres did not start: " + self.tail())

    def tail(self):
        with open(os.path.join(self.dir, "server.log")) as f:
            return f.read()[-2000:]

    def psql(self, db, sql):
        return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-p",
                               str(self.port), "-U", "postgres", "-d", db],
                              input=sql, capture_output=True, text=True, timeout=120)

    def url(self, db, password=None):
        import urllib.parse
        return "postgresql://postgres%s@/%s?host=%s&port=%d" % (
            ":" + password if password else "", db, urllib.parse.quote(self.dir, safe=""), self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # smart shutdown; fast enough with no client left
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)
        self.log.close()
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def load_pg(pg, db, rows):
    sql = ["CREATE DATABASE %s;" % db, "\\c %s" % db, PG_DDL,
           "INSERT INTO meta VALUES ('warehouse_schema_version', '1');"]
    for r in rows:
        sql.append("INSERT INTO trace (%s) VALUES (%s);" % (", ".join(COLS), ", ".join(
            pg_literal(r.get(c)) for c in COLS)))
    p = pg.psql("postgres", "\n".join(sql))
    check(p.returncode == 0, "psql: %s", p.stderr[-2000:])


def test_postgresql_same_answers_as_sqlite(env):
    rows = chat_rows()
    make_db(env.path("w.db"), rows)
    pg = Postgres(env)
    load_pg(pg, "warehouse", rows)
    cfg = config(env)
    for spec in ("always:b", "greedy", "split:a=70,c=30"):
        out = []
        for src in ("sqlite:" + env.path("w.db"), pg.url("warehouse", "secret")):
            p = sy("evaluate", "chat", "--config", cfg, "--from", src, "--policy", spec, "--json")
            check(p.returncode == 0, "evaluate %s from %s: %d %s", spec, src, p.returncode, p.stderr)
            check("secret" not in p.stdout, "the password in the report")
            j = json.loads(p.stdout)
            del j["from"]
            out.append(j)
        check(out[0] == out[1], "%s: SQLite and PostgreSQL answers differ:\n%r\n%r", spec,
              out[0]["estimates"], out[1]["estimates"])
    where = "experiment=chat,tenant=t1,outcome=any"
    d_sq, d_pg, d_pg2 = env.path("sq"), env.path("pg"), env.path("pg2")
    p = sy("dataset", "build", "--from", "sqlite:" + env.path("w.db"), "--to", d_sq, "--where", where)
    check(p.returncode == 0, "sqlite build: %s", p.stderr)
    p = sy("dataset", "build", "--from", pg.url("warehouse", "secret"), "--to", d_pg, "--where", where)
    check(p.returncode == 0, "postgresql build: %s", p.stderr)
    check(read(os.path.join(d_sq, "rows.jsonl")) == read(os.path.join(d_pg, "rows.jsonl")),
          "rows.jsonl differs between SQLite and PostgreSQL")
    m = json.loads(read(os.path.join(d_pg, "manifest.json")))
    check(m["from"] == pg.url("warehouse"), "manifest from %r (password not removed?)", m["from"])
    p = sy("dataset", "build", "--manifest", os.path.join(d_pg, "manifest.json"), "--to", d_pg2)
    check(p.returncode == 0, "postgresql rebuild: %s", p.stderr)
    for f in ("rows.jsonl", "manifest.json"):
        check(read(os.path.join(d_pg, f)) == read(os.path.join(d_pg2, f)), "%s differs", f)
    p = sy("evaluate", "chat", "--config", cfg, "--from", pg.url("nodb"), "--policy", "uniform")
    check(p.returncode == 2 and "nodb" in p.stderr, "missing database: %d %r", p.returncode, p.stderr)


test_postgresql_same_answers_as_sqlite.watchdog_seconds = 120


if __name__ == "__main__":
    sys.exit(h.run(globals()))
