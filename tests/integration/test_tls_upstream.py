#!/usr/bin/env python3
"""test_tls_upstream.py — upstreams over TLS (`https://` servers, the `tls:` block,
`host_header:`), against real TLS servers on loopback.

The test makes its own CA and certificates with the openssl command: good (localhost
and 127.0.0.1), expired, for another name, for alpha.test and beta.test (two names on
one address), a client certificate, and an unrelated CA. The TLS servers are Python
asyncio/ssl terminators in this process that relay to bench/mock-llm; each records the
SNI name of every handshake, whether it resumed a session, and the Host header of
every request it relays.

Checked:
  - a chat completion and an SSE stream through a verified TLS upstream; SNI and Host
    carry the server's name (host_header's default for a name);
  - unknown CA, expired, another name, a plain HTTP server on the TLS port, a stalled
    handshake: a 502 JSON error naming the problem (the stall within the connect
    timeout), nothing sent in clear, counted in switchyard_upstream_tls_errors_total,
    logged once per upstream however often it happens;
  - SNI: two names on one address with two certificates (tls.server_name), each
    verified, each seen by the server; host_header: a literal, and client (a numeric
    address's default);
  - resumption: concurrent requests force new pooled connections, which resume the
    first one's session (counted by the server and in the router's metrics);
  - mTLS: a server that requires a client certificate accepts the configured one and
    refuses a router without one;
  - the official OpenAI SDK (tests/node) through a TLS upstream.
"""
import asyncio
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

TOKEN_ENV = "SY_TEST_ADMIN_TOKEN"
TOKEN = "tls-test-admin-token-0123456789"

# ---- certificates ---------------------------------------------------------------------

CERTS = {  # name: (subjectAltName, days)
    "good": ("DNS:localhost,IP:127.0.0.1", "30"),
    "expired": ("DNS:localhost,IP:127.0.0.1", "-1"),
    "othername": ("DNS:other.example", "30"),
    "alpha": ("DNS:alpha.test", "30"),
    "beta": ("DNS:beta.test", "30"),
    "client": ("DNS:client.test", "30"),
}


def make_certs(d):
    """A CA, the certificates of CERTS signed by it, and an unrelated CA, in d."""
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    cmds = ["openssl req -x509 %s -keyout ca.key -out ca.pem -days 30 -subj '/CN=sy test CA'" % ec,
            "openssl req -x509 %s -keyout other-ca.key -out other-ca.pem -days 30 "
            "-subj '/CN=another CA'" % ec]
    for name, (san, days) in CERTS.items():
        cmds.append("openssl req %s -keyout %s.key -out %s.csr -subj '/CN=%s' && "
                    "printf 'subjectAltName=%s\\n' > %s.ext && "
                    "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                    "-out %s.pem -days %s -extfile %s.ext"
                    % (ec, name, name, name, san, name, name, name, days, name))
    for c in cmds:
        p = subprocess.run(c, shell=True, cwd=d, capture_output=True)
        check(p.returncode == 0, "openssl failed: %s: %s", c, p.stderr.decode()[-500:])
    return lambda name: os.path.join(d, name)


# ---- TLS servers ------------------------------------------------------------------------

class TlsFront:
    """A TLS server on a free loopback port relaying to backend_port (mock-llm). certs:
    [(name or None, cert, key)]: the first is the default, the others are chosen by SNI.
    client_ca: require a client certificate signed by it."""

    def __init__(self, certs, backend_port, client_ca=None, idle_close_s=None):
        self.port = h.free_port()
        self.idle_close_s = idle_close_s  # close (close_notify) a connection idle this long
        self.backend_port = backend_port
        self.sni, self.reused, self.hosts, self.errors = [], [], [], []
        self.lock = threading.Lock()
        self.ctxs = {}
        for name, cert, key in certs:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            if client_ca is not None:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(client_ca)
            self.ctxs[name] = ctx
        first = self.ctxs[certs[0][0]]
        first.sni_callback = self._on_sni
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda loop, c: self._note(c.get("message")))
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(first,), daemon=True)
        self.thread.start()
        check(self.ready.wait(10), "the TLS server did not start")

    def _note(self, what):
        with self.lock:
            self.errors.append(what)

    def _on_sni(self, sslobj, name, ctx):
        with self.lock:
            self.sni.append(name)
        if name in self.ctxs:
            sslobj.context = self.ctxs[name]
        return None

    def _run(self, ctx):
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                     ssl=ctx, ssl_handshake_timeout=5)
            self.ready.set()
        self.loop.run_until_complete(start())
        self.loop.run_forever()

    async def _pipe(self, r, w, spy):
        try:
            while True:
                data = await asyncio.wait_for(r.read(65536), self.idle_close_s if spy else None)
                if not data:
                    break
                if spy:
                    with self.lock:
                        self.hosts += re.findall(rb"(?im)^host:[ \t]*([^\r\n]*)\r$", data)
                w.write(data)
                await w.drain()
        except (OSError, ssl.SSLError, ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            try:
                w.close()
            except (OSError, RuntimeError):
                pass

    async def _handle(self, reader, writer):
        sslobj = writer.get_extra_info("ssl_object")
        with self.lock:
            self.reused.append(bool(sslobj.session_reused))
        try:
            br, bw = await asyncio.open_connection("127.0.0.1", self.backend_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, bw, True), self._pipe(br, writer, False))

    def seen(self):
        with self.lock:
            return list(self.sni), list(self.reused), [x.decode() for x in self.hosts]

    def stop(self):
        async def close():
            self.server.close()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class RawServer:
    """A TCP server that keeps what it receives: `answer` (bytes) is sent to each
    connection after its first bytes, or nothing (None: a handshake that stalls)."""

    def __init__(self, answer=None):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.conns = []
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    return
                self.received += data
                if self.answer is not None:
                    c.sendall(self.answer)
                    c.close()
                    return
        except OSError:
            return

    def stop(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


# ---- the router --------------------------------------------------------------------------

def experiment_for(upstreams):
    """An experiment per upstream, chosen by the request's x-up header."""
    return [{"id": "e-" + u, "match": {"method": "POST", "path_prefix": "/v1/chat/completions",
                                       "header": "x-up", "header_value": u},
             "control": "a", "variants": [{"id": "a", "upstream": u, "model": "model-a"}]}
            for u in upstreams]


def start_router(env, upstreams, workers=1):
    os.environ[TOKEN_ENV] = TOKEN
    admin_port = h.free_port()
    cfg = {"listen": ["127.0.0.1:%d" % h.free_port()], "workers": workers,
           "upstreams": upstreams, "experiments": experiment_for(upstreams),
           "redis": {"enabled": False},
           "admin": {"listen": "127.0.0.1:%d" % admin_port, "token_env": TOKEN_ENV}}
    r = env.router(cfg)
    r.admin_port = admin_port
    check(h.wait_until(lambda: h.port_accepts(admin_port), 5), "the admin port does not accept")
    return r


def metric(r, name, upstream):
    c = h.Client(r.admin_port)
    try:
        resp = c.request("GET", "/metrics", {"authorization": "Bearer " + TOKEN})
    finally:
        c.close()
    check(resp.status == 200, "/metrics %d", resp.status)
    m = re.search(r'^%s\{upstream="%s"\} (\d+)$' % (name, re.escape(upstream)),
                  resp.body.decode(), re.M)
    return int(m.group(1)) if m else None


def chat(port, up, stream=False, headers=None):
    hd = {"x-up": up}
    hd.update(headers or {})
    return h.post_chat(port, hd, h.chat_body(stream=stream))


# ---- the tests ------------------------------------------------------------------------------

@h.timeout(90)
def test_chat_and_stream_over_verified_tls(env):
    f = make_certs(env.dir)
    mock = env.mock()
    front = TlsFront([(None, f("good.pem"), f("good.key"))], mock.port)
    env.closers.append(front.stop)
    up = {"secure": {"servers": ["https://localhost:%d" % front.port],
                     "tls": {"ca_file": f("ca.pem")}}}
    r = start_router(env, up)
    resp = chat(r.port, "secure")
    check(resp.status == 200, "chat over TLS: %s %r", resp.status, resp.body[:300])
    check(resp.json()["choices"][0]["message"]["content"] == "mock answer from mock",
          "chat content %r", resp.body[:300])
    resp = chat(r.port, "secure", stream=True)
    check(resp.status == 200, "stream over TLS: %s %r", resp.status, resp.body[:300])
    check((resp.header("content-type") or "").startswith("text/event-stream"),
          "stream content-type %r", resp.header("content-type"))
    events = resp.sse_events()
    check(len(events) >= 3 and events[-1] == "[DONE]", "SSE events %r", events)
    # An HTTP/1.0 client that sends no Host: the server's goes in all the same.
    c = h.Client(r.port)
    try:
        c.send(h.build_request("POST", "/v1/chat/completions", {"x-up": "secure"},
                               h.chat_body(), version="HTTP/1.0", host=False))
        resp = c.read_response("POST")
    finally:
        c.close()
    check(resp.status == 200, "HTTP/1.0 without Host: %s %r", resp.status, resp.body[:300])
    sni, reused, hosts = front.seen()
    check(sni and all(n == "localhost" for n in sni), "SNI names %r", sni)
    want = "localhost:%d" % front.port
    check(hosts == [want] * 3, "Host headers the server saw %r, wanted %r three times", hosts,
          want)
    check(metric(r, "switchyard_upstream_tls_handshakes_total", "secure") >= 1,
          "no TLS handshake counted")
    check(metric(r, "switchyard_upstream_tls_errors_total", "secure") == 0,
          "TLS errors counted for a working upstream")


@h.timeout(90)
def test_tls_failures_are_502_naming_the_problem(env):
    f = make_certs(env.dir)
    mock = env.mock()
    unknown = TlsFront([(None, f("good.pem"), f("good.key"))], mock.port)
    expired = TlsFront([(None, f("expired.pem"), f("expired.key"))], mock.port)
    other = TlsFront([(None, f("othername.pem"), f("othername.key"))], mock.port)
    for s in (unknown, expired, other):
        env.closers.append(s.stop)
    plain = RawServer(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    stall = RawServer(None)
    env.closers += [plain.stop, stall.stop]
    ca = {"ca_file": f("ca.pem")}
    ups = {
        "unknownca": {"servers": ["https://localhost:%d" % unknown.port],
                      "tls": {"ca_file": f("other-ca.pem")}},
        "expired": {"servers": ["https://localhost:%d" % expired.port], "tls": ca},
        "othername": {"servers": ["https://localhost:%d" % other.port], "tls": ca},
        "plain": {"servers": ["https://localhost:%d" % plain.port], "tls": ca},
        "stall": {"servers": ["https://localhost:%d" % stall.port], "tls": ca,
                  "connect_timeout_ms": 700},
    }
    r = start_router(env, ups)
    cases = [("unknownca", "unknown CA"), ("expired", "certificate expired"),
             ("othername", "certificate is for another name"),
             ("plain", "does not speak TLS"), ("stall", "did not finish within 700 ms")]
    for up, words in cases:
        for _ in range(3):  # logged once, however often
            t0 = time.monotonic()
            resp = chat(r.port, up)
            took = time.monotonic() - t0
            e = h.check_error_body(resp, 502, "upstream_tls_error")
            check(words in e["message"], "%s: error message %r does not say %r", up,
                  e["message"], words)
            if up == "stall":
                check(1.3 < took < 3, "the stalled handshake (tried twice) answered after "
                      "%.2f s", took)
        # A stalled handshake is retried as a connect failure (retry: on connect, by
        # default twice); a certificate refused is not.
        want = 6 if up == "stall" else 3
        check(metric(r, "switchyard_upstream_tls_errors_total", up) == want,
              "%s: tls_errors_total %r, wanted %d", up,
              metric(r, "switchyard_upstream_tls_errors_total", up), want)
        logged = [l for l in r.logs() if "upstream %s:" % up in str(l.get("msg"))]
        check(len(logged) == 1 and words in logged[0]["msg"],
              "%s: logged %d times: %r", up, len(logged), [l.get("msg") for l in logged])
    # Nothing went out in clear: the servers that do not finish a handshake saw only
    # TLS records (a ClientHello), never the request.
    for name, srv in (("plain", plain), ("stall", stall)):
        check(srv.received.startswith(b"\x16\x03"), "%s: the first bytes are not a TLS record: "
              "%r", name, srv.received[:16])
        check(b"POST" not in srv.received and b"chat" not in srv.received,
              "%s: the request was sent in clear: %r", name, srv.received[:200])
    for name, s in (("unknownca", unknown), ("expired", expired), ("othername", other)):
        check(not s.seen()[2], "%s: the server received a request: %r", name, s.seen()[2])


@h.timeout(90)
def test_sni_two_names_one_address_and_host_header(env):
    f = make_certs(env.dir)
    mock = env.mock()
    front = TlsFront([("alpha.test", f("alpha.pem"), f("alpha.key")),
                      ("beta.test", f("beta.pem"), f("beta.key"))], mock.port)
    env.closers.append(front.stop)
    addr = "https://127.0.0.1:%d" % front.port
    ups = {"alpha": {"servers": [addr], "tls": {"ca_file": f("ca.pem"), "server_name": "alpha.test"}},
           "beta": {"servers": [addr], "tls": {"ca_file": f("ca.pem"), "server_name": "beta.test"},
                    "host_header": "beta.example"}}
    r = start_router(env, ups)
    for up in ("alpha", "beta", "alpha", "beta"):
        resp = chat(r.port, up)
        check(resp.status == 200, "%s: %s %r", up, resp.status, resp.body[:300])
    sni, _, hosts = front.seen()
    check(sorted(set(sni)) == ["alpha.test", "beta.test"], "SNI names %r", sni)
    check(hosts.count("alpha.test:%d" % front.port) == 2 and hosts.count("beta.example") == 2,
          "Host headers %r", hosts)
    # A name the certificate of that SNI does not carry fails, so the certificate
    # each name got was checked: gamma.test is served alpha's (the default).
    r.stop()
    ups = {"gamma": {"servers": [addr], "tls": {"ca_file": f("ca.pem"), "server_name": "gamma.test"}}}
    r = start_router(env, ups)
    e = h.check_error_body(chat(r.port, "gamma"), 502, "upstream_tls_error")
    check("another name" in e["message"], "gamma: %r", e["message"])


@h.timeout(90)
def test_pooled_connections_resume_the_session(env):
    f = make_certs(env.dir)
    mock = env.mock("--latency-ms", "150")
    front = TlsFront([(None, f("good.pem"), f("good.key"))], mock.port)
    env.closers.append(front.stop)
    # A numeric address: verified against the certificate's IP; Host is the client's.
    ups = {"ip": {"servers": ["https://127.0.0.1:%d" % front.port], "tls": {"ca_file": f("ca.pem")}}}
    r = start_router(env, ups)
    check(chat(r.port, "ip").status == 200, "first request failed")
    time.sleep(0.3)  # the session ticket arrives after the handshake, on the idle connection
    results = []

    def one():  # the client's Host goes on as it came
        results.append(chat(r.port, "ip", headers={"host": "client.example"}).status)
    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(results == [200] * 6, "concurrent requests: %r", results)
    sni, reused, hosts = front.seen()
    check(not [n for n in sni if n], "SNI sent for an IP address: %r", sni)
    check(len(reused) >= 4, "only %d TLS connections: the requests did not force new ones",
          len(reused))
    check(not reused[0] and all(reused[1:]), "resumed per connection %r: the later ones must "
          "all resume", reused)
    check(hosts[1:] == ["client.example"] * 6, "Host headers %r (wanted the client's)", hosts)
    n = metric(r, "switchyard_upstream_tls_resumed_total", "ip")
    check(n == len(reused) - 1, "resumed_total %r, the server saw %d", n, len(reused) - 1)


@h.timeout(60)
def test_server_closing_idle_connections(env):
    """The server ends idle pooled connections with close_notify: the router drops
    them and the next request opens a new connection, without a failure or a warning."""
    f = make_certs(env.dir)
    mock = env.mock()
    front = TlsFront([(None, f("good.pem"), f("good.key"))], mock.port, idle_close_s=0.3)
    env.closers.append(front.stop)
    r = start_router(env, {"s": {"servers": ["https://localhost:%d" % front.port],
                                 "tls": {"ca_file": f("ca.pem")}}})
    for i in range(3):
        resp = chat(r.port, "s")
        check(resp.status == 200, "request %d: %s %r", i, resp.status, resp.body[:300])
        time.sleep(0.8)
    _, reused, _ = front.seen()
    check(len(reused) == 3 and reused[1] and reused[2], "connections %r: wanted three, the "
          "later two resumed", reused)
    warned = [l.get("msg") for l in r.logs() if l.get("level") in ("warn", "error")]
    check(not warned, "warnings: %r", warned)


@h.timeout(90)
def test_mtls_client_certificate(env):
    f = make_certs(env.dir)
    mock = env.mock()
    front = TlsFront([(None, f("good.pem"), f("good.key"))], mock.port, client_ca=f("ca.pem"))
    env.closers.append(front.stop)
    srv = "https://localhost:%d" % front.port
    ups = {"mtls": {"servers": [srv], "tls": {"ca_file": f("ca.pem"), "cert_file": f("client.pem"),
                                             "key_file": f("client.key")}},
           "nocert": {"servers": [srv], "tls": {"ca_file": f("ca.pem")}}}
    r = start_router(env, ups)
    resp = chat(r.port, "mtls")
    check(resp.status == 200, "with the client certificate: %s %r", resp.status, resp.body[:300])
    resp = chat(r.port, "nocert")
    # TLS 1.3: the client's handshake is over before the server refuses it, so the
    # refusal (an alert, or just the server closing) comes as the answer.
    h.check_error_body(resp, 502)
    check(metric(r, "switchyard_upstream_tls_handshakes_total", "mtls") >= 1,
          "no handshake counted for the mTLS upstream")


@h.timeout(150)
def test_openai_sdk_through_tls(env):
    import test_openai_sdk as sdk
    node = sdk.node_binary()
    sdk.check_node_modules()
    f = make_certs(env.dir)
    mock = env.mock()
    front = TlsFront([(None, f("good.pem"), f("good.key"))], mock.port)
    env.closers.append(front.stop)
    cfg = h.router_config("https://localhost:%d" % front.port, redis={"enabled": False})
    cfg["upstreams"]["mock"]["tls"] = {"ca_file": f("ca.pem")}
    r = env.router(cfg)
    res = sdk.run_client(env, node, r.port, "sdk-tls-user")
    c, s = res["completion"], res["stream"]
    sdk.check_headers(c["headers"], "completion")
    check(c["content"] == "mock answer from mock", "completion content %r", c["content"])
    sdk.check_headers(s["headers"], "stream")
    want = "".join("tok%d " % i for i in range(sdk.CHUNKS))
    check(s["text"] == want, "streamed text %r, wanted %r", s["text"], want)
    check(front.seen()[1], "no TLS connection reached the server")


if __name__ == "__main__":
    sys.exit(h.run(globals()))
