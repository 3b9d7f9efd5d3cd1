#!/usr/bin/env python3
"""test_listener_tls.py — TLS on the client-facing listener (a `listen:` entry
{address, tls: {cert_file, key_file}}), with Python's ssl client verifying the
router's certificate against a CA this test makes with the openssl command.

Checked:
  - a chat completion and an SSE stream over TLS (the certificate verified, its name
    checked: localhost), ALPN http/1.1, and the plain listener beside it still plain;
  - HTTP keep-alive over TLS: two requests on one TLS connection;
  - plain HTTP sent to the TLS port gets a plain 400 and is closed, counted in
    switchyard_listener_tls_errors_total; the router keeps serving TLS;
  - a client that opens a connection and never sends a handshake is closed after the
    header timeout (counted);
  - SIGHUP after the certificate files were replaced in place: an open keep-alive TLS
    connection keeps working (same socket, same certificate), a new connection gets
    the new certificate (serial compared); a reload with a key that does not match
    keeps the certificate in use and logs why;
  - the official OpenAI SDK (tests/node) through the TLS listener (NODE_EXTRA_CA_CERTS).
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

TOKEN_ENV = "SY_TEST_ADMIN_TOKEN"
TOKEN = "ltls-test-admin-token-0123456789"


def make_certs(d):
    """A CA; two certificates for localhost/127.0.0.1 (one, two) signed by it; a key of
    nothing (other.key)."""
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    cmds = ["openssl req -x509 %s -keyout ca.key -out ca.pem -days 30 -subj '/CN=sy test CA'" % ec,
            "openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out other.key"]
    for name in ("one", "two"):
        cmds.append("openssl req %s -keyout %s.key -out %s.csr -subj '/CN=%s' && "
                    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > %s.ext && "
                    "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                    "-out %s.pem -days 30 -extfile %s.ext"
                    % (ec, name, name, name, name, name, name, name))
    for c in cmds:
        p = subprocess.run(c, shell=True, cwd=d, capture_output=True)
        check(p.returncode == 0, "openssl failed: %s: %s", c, p.stderr.decode()[-500:])
    return lambda name: os.path.join(d, name)


def start(env, f, header_timeout_ms=None):
    """The router: a plain listener, a TLS one (cert.pem/key.pem in env.dir, copies of
    one.pem/one.key) and the admin API."""
    shutil.copy(f("one.pem"), f("cert.pem"))
    shutil.copy(f("one.key"), f("key.pem"))
    os.environ[TOKEN_ENV] = TOKEN
    mock = env.mock()
    cfg = h.router_config(mock.addr, redis={"enabled": False})
    tls_port = h.free_port()
    cfg["listen"].append({"address": "127.0.0.1:%d" % tls_port,
                          "tls": {"cert_file": f("cert.pem"), "key_file": f("key.pem")}})
    admin_port = h.free_port()
    cfg["admin"] = {"listen": "127.0.0.1:%d" % admin_port, "token_env": TOKEN_ENV}
    if header_timeout_ms:
        cfg["limits"] = {"header_timeout_ms": header_timeout_ms}
    r = env.router(cfg)
    r.tls_port, r.admin_port, r.tls_mock = tls_port, admin_port, mock
    check(h.wait_until(lambda: h.port_accepts(tls_port), 5), "the TLS port does not accept")
    return r


def tls_conn(f, port, host="localhost"):
    ctx = ssl.create_default_context(cafile=f("ca.pem"))
    ctx.set_alpn_protocols(["http/1.1"])
    return http.client.HTTPSConnection(host, port, context=ctx, timeout=10)


def post(conn, stream=False):
    conn.request("POST", "/v1/chat/completions", json.dumps(h.chat_body(stream=stream)),
                 {"content-type": "application/json"})
    resp = conn.getresponse()
    return resp, resp.read()


def serial(conn):
    der = conn.sock.getpeercert(binary_form=True)
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                       capture_output=True)
    return p.stdout.decode().strip()


def file_serial(path):
    p = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-serial"], capture_output=True)
    return p.stdout.decode().strip()


def tls_errors(r):
    c = h.Client(r.admin_port)
    try:
        resp = c.request("GET", "/metrics", {"authorization": "Bearer " + TOKEN})
    finally:
        c.close()
    check(resp.status == 200, "/metrics %d", resp.status)
    m = re.search(r"^switchyard_listener_tls_errors_total (\d+)$", resp.body.decode(), re.M)
    check(m is not None, "no switchyard_listener_tls_errors_total in /metrics")
    return int(m.group(1))


@h.timeout(60)
def test_chat_stream_keepalive_over_tls(env):
    f = make_certs(env.dir)
    r = start(env, f)
    conn = tls_conn(f, r.tls_port)
    resp, body = post(conn)
    check(resp.status == 200, "chat over TLS: %s %r", resp.status, body[:300])
    check(json.loads(body)["choices"][0]["message"]["content"] == "mock answer from mock",
          "chat content %r", body[:300])
    check(conn.sock.selected_alpn_protocol() == "http/1.1", "ALPN %r",
          conn.sock.selected_alpn_protocol())
    check(conn.sock.getpeercert()["subject"][0][0][1] == "one", "certificate %r",
          conn.sock.getpeercert())
    sock = conn.sock
    resp, body = post(conn, stream=True)  # keep-alive: the same TLS connection
    check(conn.sock is sock, "the second request opened a new connection")
    check(resp.status == 200 and resp.getheader("content-type", "").startswith("text/event-stream"),
          "stream over TLS: %s %r", resp.status, body[:300])
    text = body.decode()
    check("data: [DONE]" in text and text.count("data: ") >= 3, "SSE body %r", text[:500])
    conn.close()
    # The name is checked: a client that wants another name refuses the certificate.
    ctx = ssl.create_default_context(cafile=f("ca.pem"))
    raw = socket.create_connection(("127.0.0.1", r.tls_port), timeout=10)
    try:
        ctx.wrap_socket(raw, server_hostname="other.example").close()
        failed = False
    except ssl.SSLCertVerificationError:
        failed = True
    raw.close()
    check(failed, "a certificate for localhost was accepted for other.example")
    # The plain listener stays plain.
    check(h.post_chat(r.port).status == 200, "plain listener")


@h.timeout(60)
def test_plain_http_and_stalled_handshake(env):
    f = make_certs(env.dir)
    r = start(env, f, header_timeout_ms=500)
    c = h.Client(r.tls_port)
    c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    try:
        while True:
            d = c.sock.recv(4096)
            if not d:
                break
            got += d
    except OSError:
        pass
    c.close()
    check(got.startswith(b"HTTP/1.1 400 ") and b"speaks TLS" in got, "plain HTTP got %r", got)
    check(tls_errors(r) == 1, "tls errors %d after plain HTTP", tls_errors(r))
    # A client that says nothing is closed after the header timeout.
    s = socket.create_connection(("127.0.0.1", r.tls_port))
    s.settimeout(5)
    t0 = time.monotonic()
    check(s.recv(100) == b"", "a silent client got bytes")
    check(time.monotonic() - t0 < 3, "the silent client was held %.1fs", time.monotonic() - t0)
    s.close()
    check(tls_errors(r) == 2, "tls errors %d after the stalled handshake", tls_errors(r))
    conn = tls_conn(f, r.tls_port)
    resp, body = post(conn)
    check(resp.status == 200, "TLS after the failures: %s %r", resp.status, body[:200])
    conn.close()
    r.wait_log("TLS listener: connection from .* closed: the client does not speak TLS")
    logged = [l for l in r.logs() if "TLS listener:" in str(l.get("msg"))]
    check(len(logged) == 1, "two failures within a minute logged %d times: %r", len(logged),
          logged)


def tls_client(f, port, rcvbuf=None):
    """A harness Client (its response parsing, recv arrivals) over a verified TLS
    connection."""
    c = h.Client(port, timeout_s=20, rcvbuf=rcvbuf)
    ctx = ssl.create_default_context(cafile=f("ca.pem"))
    c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
    return c


def stream_headers(chunks, interval_ms):
    return {"x-mock-chunks": str(chunks), "x-mock-interval-ms": str(interval_ms),
            "x-user-id": "streamer"}


@h.timeout(90)
def test_streaming_pipelining_backpressure_client_gone_over_tls(env):
    f = make_certs(env.dir)
    r = start(env, f)
    # Each upstream event reaches the client when it is sent, not merged later.
    c = tls_client(f, r.tls_port)
    resp = c.request("POST", "/v1/chat/completions", stream_headers(5, 100),
                     h.chat_body(stream=True))
    check(resp.status == 200 and resp.complete, "stream: %s", resp.status)
    check(len(resp.chunks) == 7, "%d chunks, wanted 7", len(resp.chunks))
    recvs = [idx for _, _, idx in resp.chunks[:5]]
    check(len(set(recvs)) == 5, "content events merged into one read: %r", recvs)
    times = [t for _, t, _ in resp.chunks[:5]]
    gaps = [round((b - a) * 1000) for a, b in zip(times, times[1:])]
    check(all(60 <= g <= 400 for g in gaps), "gaps between events (ms) %r, wanted ~100", gaps)
    # Two pipelined requests in one write: two answers, in order, on the same connection.
    req = h.build_request("POST", "/v1/chat/completions", {"x-user-id": "p"}, h.chat_body())
    c.send(req + req)
    for i in range(2):
        resp = c.read_response("POST")
        check(resp.status == 200 and resp.complete, "pipelined %d: %s", i, resp.status)
    c.close()
    # A client that stops reading: nothing lost once it reads again.
    chunks = 30000
    c = tls_client(f, r.tls_port, rcvbuf=32768)
    c.send(h.build_request("POST", "/v1/chat/completions", stream_headers(chunks, 0),
                           h.chat_body(stream=True)))
    time.sleep(1.0)
    resp = c.read_response("POST")
    ev = resp.sse_events()
    check(resp.complete and len(ev) == chunks + 2 and ev[-1] == "[DONE]",
          "slow reader: %d events, wanted %d", len(ev), chunks + 2)
    for i in range(0, chunks, 997):
        check(json.loads(ev[i])["choices"][0]["delta"]["content"] == "tok%d " % i,
              "event %d: %r", i, ev[i][:200])
    c.close()
    # A client gone mid-stream: its upstream request is cancelled (the router closes
    # that upstream connection rather than return it to its pool).
    c = tls_client(f, r.tls_port)
    c.send(h.build_request("POST", "/v1/chat/completions", stream_headers(100, 50),
                           h.chat_body(stream=True)))
    while b"tok1 " not in c.buf:
        check(c.recv_once(), "stream ended early")
    during = r.tls_mock.stats()["connections_open"]
    c.close()
    back = h.wait_until(lambda: r.tls_mock.stats()["connections_open"] <= during - 1, 1.5)
    check(back, "client gone mid-stream: the upstream stream still open after 1.5 s: %r "
          "(%d open during the stream)", r.tls_mock.stats(), during)


@h.timeout(60)
def test_reload_new_certificate(env):
    f = make_certs(env.dir)
    r = start(env, f)
    check(file_serial(f("one.pem")) != file_serial(f("two.pem")), "the two serials are equal")
    old = tls_conn(f, r.tls_port)
    resp, _ = post(old)
    check(resp.status == 200, "before the reload: %s", resp.status)
    check(serial(old) == file_serial(f("one.pem")), "first certificate %s", serial(old))
    sock = old.sock
    # Replaced in place, as a renewal tool does, then SIGHUP.
    shutil.copy(f("two.pem"), f("cert.pem"))
    shutil.copy(f("two.key"), f("key.pem"))
    r.signal(signal.SIGHUP)
    r.wait_log("new connections get the certificate")
    r.wait_log("config reloaded")
    resp, body = post(old)
    check(resp.status == 200, "the open connection after the reload: %s %r", resp.status, body[:200])
    check(old.sock is sock, "the open connection was replaced")
    check(serial(old) == file_serial(f("one.pem")), "the open connection's certificate changed")
    new = tls_conn(f, r.tls_port)
    resp, _ = post(new)
    check(resp.status == 200, "a new connection after the reload: %s", resp.status)
    check(serial(new) == file_serial(f("two.pem")), "new connection's certificate %s, wanted %s",
          serial(new), file_serial(f("two.pem")))
    # A key of something else: the reload is refused, the certificate in use stays.
    shutil.copy(f("other.key"), f("key.pem"))
    r.signal(signal.SIGHUP)
    hits = r.wait_log("reload rejected")
    check("key_file" in hits[0]["msg"] and "does not match" in hits[0]["msg"],
          "reload error %r", hits[0]["msg"])
    third = tls_conn(f, r.tls_port)
    resp, _ = post(third)
    check(resp.status == 200 and serial(third) == file_serial(f("two.pem")),
          "after a bad reload: %s, certificate %s", resp.status, serial(third))
    resp, _ = post(old)
    check(resp.status == 200 and old.sock is sock, "the first connection after two reloads")
    for c in (old, new, third):
        c.close()


@h.timeout(150)
def test_openai_sdk_over_tls_listener(env):
    import test_openai_sdk as sdk
    node = sdk.node_binary()
    sdk.check_node_modules()
    f = make_certs(env.dir)
    r = start(env, f)
    res = sdk.run_client(env, node, r.tls_port, "sdk-ltls-user",
                         base_url="https://localhost:%d/v1" % r.tls_port,
                         extra_env={"NODE_EXTRA_CA_CERTS": f("ca.pem")})
    c, s = res["completion"], res["stream"]
    sdk.check_headers(c["headers"], "completion")
    check(c["content"] == "mock answer from mock", "completion content %r", c["content"])
    want = "".join("tok%d " % i for i in range(sdk.CHUNKS))
    check(s["text"] == want, "streamed text %r, wanted %r", s["text"], want)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
