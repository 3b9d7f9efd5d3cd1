"""event5.py — a reader of the events stream, every schema: turns a stream entry into
the fields of proto/events.def, named and valued as schema 4 wrote them. The
reference for dashboards and scripts (proto/EVENTS.md, "Schema 5 in Redis"); the
integration tests read the stream through it. Python 3 standard library only.

    fields = decode(entry_fields, refs)   # entry_fields: {field: value} of one entry
                                          # refs: {ref id: definition} (HGETALL sy:refs)
"""
import base64
import datetime
import os
import re
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TYPES = {"q": "request", "f": "feedback", "o": "outcome", "s": "shadow", "d": "decision"}
BITS = {"REQ": ["q"], "FB": ["f"], "OUT": ["o"], "SHADOW": ["s"], "DECISION": ["d"],
        "ALL": ["q", "f", "o", "s", "d"]}
HEAD = ["event_id", "event_type", "schema_version", "router_instance", "timestamp"]
REF = ["experiment", "variant", "variant_version", "prompt_version", "model_id", "task_type",
       "config_hash"]


def _fields():
    out = []
    for line in open(os.path.join(HERE, "events.def")):
        m = re.match(r"SY_EVENT_FIELD\((\w+), (\w+), (\w+), ", line)
        if m:
            types = set()
            for part in m.group(3).split("_"):
                types.update(BITS.get(part, []))
            out.append((m.group(1), m.group(2), types))
    return out


FIELDS = _fields()
# slot lists per type code: the fields the type carries, minus the head's and the ref's
SLOTS = {t: [f for f in FIELDS if t in f[2] and f[0] not in HEAD and f[0] not in REF]
         for t in TYPES}


def _unesc(s):
    if len(s) == 23 and s[0] == "~":  # a packed id: 32 hex digits as base64url
        return base64.urlsafe_b64decode(s[1:] + "==").hex()
    return urllib.parse.unquote(s, errors="surrogateescape")


def decode(entry, refs=None, entry_id=None):
    """The event's fields ({name: value string}) of one stream entry (any schema);
    entry_id: the entry's stream id, the event_id of a journal event."""
    v = entry.get("e")
    if v is None or len(entry) != 1 or not v.startswith("5|"):
        return dict(entry)  # schema 1-4, and schema 5's field-by-field entries
    parts = v.split("|")
    code = parts[1]
    out = {"event_type": TYPES.get(code, code), "schema_version": "5",
           "router_instance": _unesc(parts[3])}
    if parts[2] != "" or entry_id is not None:
        out["event_id"] = _unesc(parts[2]) if parts[2] != "" else entry_id
    ms = int(parts[4])
    ts = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    out["timestamp"] = ts.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)
    ref = (refs or {}).get(parts[5])
    refvals = ref.split("|") if ref is not None else []
    types = {f[0]: f for f in FIELDS}
    for i, name in enumerate(REF):
        if i < len(refvals) and refvals[i] != "" and code in types[name][2]:
            out[name] = _unesc(refvals[i])
    for i, (name, typ, _) in enumerate(SLOTS.get(code, [])):
        if 6 + i >= len(parts) or parts[6 + i] == "":
            continue
        raw = parts[6 + i]
        if typ == "BOOL":
            out[name] = "true" if raw == "1" else "false"
        elif typ == "LIST":
            out[name] = "[" + ",".join('"%s"' % _unesc(x).replace("\\", "\\\\").replace('"', '\\"')
                                       for x in raw.split(",")) + "]"
        elif name == "consent_scope" and raw in ("0", "1", "2"):
            out[name] = ("none", "metrics", "content")[int(raw)]
        else:
            out[name] = _unesc(raw)
    return out


# ---- trace records (proto/KEYS.md, "Trace records") ----------------------------------

SLICE_MS, N0 = 3600000, 8
CONSENT = {"0": "none", "1": "metrics", "2": "content"}


def trace_bucket(g, tid_bin):
    """The bucket of a 16-byte trace id in generation g of a slice."""
    return int.from_bytes(tid_bin[-6:], "big") % (N0 * 2 ** g)


def trace_record(cmd, trace_hex, now_ms, back_ms=26 * 3600 * 1000):
    """(key, {field: value}) of trace trace_hex's record, found as the router finds it
    (its hour's bucket, else schema 4's sy:trace:T hash); cmd(*args) sends one Redis
    command. (None, {}) when there is none."""
    tid = bytes.fromhex(trace_hex)
    top, low = (now_ms + 300000) // SLICE_MS, (now_ms - back_ms) // SLICE_MS
    for sl in range(top, low - 1, -1):
        st = cmd("HMGET", "sy:tr:%d" % sl, "g0", "g")
        if st[0] is None:
            continue
        key = v = None
        for g in range(int(st[1]), int(st[0]) - 1, -1):
            key = "sy:tr:%d:%d:%d" % (sl, g, trace_bucket(g, tid))
            v = cmd("HGET", key, tid)
            if v is not None:
                break
        if v is None:
            continue
        f = v.split("|")
        t, w = int(f[1]), int(f[2])
        if now_ms > t + (w + min(w, 3600)) * 1000:
            return None, {}  # past its window and grace: gone, though its bucket lives on
        d = (cmd("HGET", "sy:refs", f[0]) or "").split("|")
        d += [""] * (6 - len(d))
        return key, {"ref": f[0], "t": f[1], "w": f[2], "p": f[3], "s": _unesc(f[4]),
                     "tn": _unesc(f[5]), "cs": CONSENT.get(f[6], "metrics"),
                     "e": _unesc(d[0]), "v": _unesc(d[1]), "ver": _unesc(d[2])}
    old = cmd("HGETALL", "sy:trace:" + trace_hex) or []  # schema 4's record
    if old:
        return "sy:trace:" + trace_hex, dict(zip(old[0::2], old[1::2]))
    return None, {}
