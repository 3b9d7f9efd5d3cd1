#!/usr/bin/env python3
"""test_egress_proxy.py — upstreams reached through an HTTP CONNECT proxy (`proxy:` per
upstream, or https_proxy / HTTPS_PROXY / http_proxy and no_proxy / NO_PROXY in the
router's environment), TLS end to end through the tunnel.

The proxy is a small real one written here (asyncio, on loopback): it records each
CONNECT line, its Proxy-Authorization, and the first byte the router sent through
each tunnel (0x16 for a TLS handshake record). It can answer a status of its choice
instead (407, 403, 502) or say nothing at all. The TLS servers and certificates are
test_tls_upstream.py's (a Python TLS terminator in front of bench/mock-llm).

Checked:
  - an https:// upstream through `proxy:` with credentials: 200 (completion and SSE);
    the proxy saw `CONNECT localhost:PORT HTTP/1.1` and Basic credentials, and only TLS
    through the tunnel; the TLS server saw SNI localhost; the credentials are in no log;
  - an http:// upstream through `proxy:`: CONNECT too, the request inside the tunnel;
  - keep-alive: sequential requests reuse one tunnel (one CONNECT);
  - HTTPS_PROXY in the router's environment; NO_PROXY naming the host, and `proxy:
    none`, go direct; the upper-case HTTP_PROXY is not used for http:// servers;
  - a proxy answering 407 or 403: 502 JSON naming the proxy's answer, not retried; a
    proxy that never answers: 502 within the connect timeout, retried as a connect;
  - check-config: a bad `proxy:` and a bad HTTPS_PROXY are errors naming them.
"""
import asyncio
import base64
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402
import test_tls_upstream as tu  # noqa: E402


class ConnectProxy:
    """An HTTP CONNECT proxy on a free loopback port. answer: None to open tunnels,
    else a status line's rest ("407 Proxy Authentication Required") sent to every
    CONNECT; "silent": read the CONNECT and never answer. auth: the Proxy-Authorization
    value required (else 407)."""

    def __init__(self, answer=None, auth=None):
        self.port = h.free_port()
        self.answer, self.auth = answer, auth
        self.connects, self.auths, self.first_bytes = [], [], []
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        check(self.ready.wait(10), "the proxy did not start")

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            self.ready.set()
        self.loop.run_until_complete(start())
        self.loop.run_forever()

    async def _pipe(self, r, w, spy):
        first = spy
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                if first:
                    first = False
                    with self.lock:
                        self.first_bytes.append(data[0])
                w.write(data)
                await w.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            try:
                w.close()
            except (OSError, RuntimeError):
                pass

    async def _handle(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        auth = None
        for line in lines[1:]:
            if line.lower().startswith("proxy-authorization:"):
                auth = line.split(":", 1)[1].strip()
        with self.lock:
            self.connects.append(lines[0])
            self.auths.append(auth)
        if self.answer == "silent":
            await asyncio.sleep(30)
            writer.close()
            return
        answer = self.answer
        if answer is None and self.auth is not None and auth != self.auth:
            answer = "407 Proxy Authentication Required"
        parts = lines[0].split(" ")
        if answer is None and (len(parts) != 3 or parts[0] != "CONNECT"):
            answer = "400 Bad Request"
        if answer is not None:
            writer.write(("HTTP/1.1 %s\r\nProxy-Authenticate: Basic realm=\"t\"\r\n"
                          "Content-Length: 0\r\nConnection: close\r\n\r\n" % answer).encode())
            await writer.drain()
            writer.close()
            return
        host, port = parts[1].rsplit(":", 1)
        host = host.strip("[]")
        try:
            br, bw = await asyncio.open_connection("127.0.0.1" if host == "localhost" else host,
                                                   int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(self._pipe(reader, bw, True), self._pipe(br, writer, False))

    def seen(self):
        with self.lock:
            return list(self.connects), list(self.auths), list(self.first_bytes)

    stop = tu.TlsFront.stop  # the same server, loop and thread


class environ:
    """Sets (value) or removes (None) environment variables of this process, which the
    router inherits, for a with block."""

    def __init__(self, **kv):
        self.kv, self.old = kv, {}

    def __enter__(self):
        for k, v in self.kv.items():
            self.old[k] = os.environ.get(k)
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def __exit__(self, *exc):
        for k, v in self.old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


CLEAN = {k: None for k in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY",
                           "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY")}


def setup(env, proxy_kw=None):
    f = tu.make_certs(env.dir)
    mock = env.mock()
    front = tu.TlsFront([(None, f("good.pem"), f("good.key"))], mock.port)
    env.closers.append(front.stop)
    proxy = ConnectProxy(**(proxy_kw or {}))
    env.closers.append(proxy.stop)
    return f, mock, front, proxy


@h.timeout(90)
def test_https_and_http_through_proxy_with_keepalive(env):
    f, mock, front, proxy = setup(env, {"auth": "Basic " + base64.b64encode(b"u:p@ss").decode()})
    purl = "http://u:p%%40ss@127.0.0.1:%d" % proxy.port
    ups = {"secure": {"servers": ["https://localhost:%d" % front.port],
                      "tls": {"ca_file": f("ca.pem")}, "proxy": purl},
           "plain": {"servers": ["http://127.0.0.1:%d" % mock.port], "proxy": purl + "/"}}
    with environ(**CLEAN):
        r = tu.start_router(env, ups)
    resp = tu.chat(r.port, "secure")
    check(resp.status == 200, "chat through the proxy: %s %r", resp.status, resp.body[:300])
    check(resp.json()["choices"][0]["message"]["content"] == "mock answer from mock",
          "content %r", resp.body[:300])
    resp = tu.chat(r.port, "secure", stream=True)
    check(resp.status == 200 and resp.sse_events()[-1] == "[DONE]", "stream: %s %r",
          resp.status, resp.body[:300])
    for _ in range(5):  # keep-alive: the tunnel is reused
        check(tu.chat(r.port, "secure").status == 200, "a later request failed")
    connects, auths, first = proxy.seen()
    want = "CONNECT localhost:%d HTTP/1.1" % front.port
    check(connects == [want], "CONNECTs %r, wanted one %r (keep-alive reuses the tunnel)",
          connects, want)
    check(auths == [proxy.auth], "Proxy-Authorization %r", auths)
    check(first == [0x16], "first bytes through the tunnel %r: not a TLS handshake", first)
    sni, _, hosts = front.seen()
    check(sni == ["localhost"], "SNI the TLS server saw %r", sni)
    check(hosts == ["localhost:%d" % front.port] * 7, "Host headers %r", hosts)
    check(tu.metric(r, "switchyard_upstream_tls_handshakes_total", "secure") == 1,
          "handshakes counted")
    # A plain http:// server through the proxy: a tunnel as well, the request inside.
    for _ in range(3):
        resp = tu.chat(r.port, "plain")
        check(resp.status == 200, "plain through the proxy: %s %r", resp.status, resp.body[:300])
    connects, auths, first = proxy.seen()
    check(connects[1:] == ["CONNECT 127.0.0.1:%d HTTP/1.1" % mock.port], "CONNECTs %r", connects)
    check(first[1:] == [ord("P")], "first bytes %r: the request was not sent in the tunnel", first)
    stderr = r.stderr_text()
    check("p@ss" not in stderr and "p%40ss" not in stderr and proxy.auth[6:] not in stderr,
          "the proxy's credentials are in the router's log")


@h.timeout(90)
def test_environment_proxy_and_no_proxy(env):
    f, mock, front, proxy = setup(env)
    dead = h.free_port()
    ca = {"ca_file": f("ca.pem")}
    ups = {"secure": {"servers": ["https://localhost:%d" % front.port], "tls": ca},
           "direct": {"servers": ["https://localhost:%d" % front.port], "tls": ca,
                      "proxy": "none"},
           "plain": {"servers": ["http://127.0.0.1:%d" % mock.port]}}
    env_vars = dict(CLEAN, HTTPS_PROXY="http://127.0.0.1:%d" % proxy.port,
                    NO_PROXY="example.com, .other.test",
                    HTTP_PROXY="http://127.0.0.1:%d" % dead)  # upper case: ignored (httpoxy)
    with environ(**env_vars):
        r = tu.start_router(env, ups)
    for up in ("secure", "direct", "plain"):
        resp = tu.chat(r.port, up)
        check(resp.status == 200, "%s: %s %r", up, resp.status, resp.body[:300])
    connects, _, first = proxy.seen()
    check(connects == ["CONNECT localhost:%d HTTP/1.1" % front.port] and first == [0x16],
          "HTTPS_PROXY: CONNECTs %r, first bytes %r", connects, first)
    r.stop()
    # NO_PROXY naming the host (with its port, then as a suffix): direct.
    for no in ("localhost:%d" % front.port, "example.com,LOCALHOST", "*"):
        env_vars["NO_PROXY"] = no
        with environ(**env_vars):
            r = tu.start_router(env, ups)
        check(tu.chat(r.port, "secure").status == 200, "NO_PROXY=%s: request failed", no)
        r.stop()
        check(len(proxy.seen()[0]) == 1, "NO_PROXY=%s: the proxy was used: %r", no,
              proxy.seen()[0])
    # https_proxy (lower case) wins over HTTPS_PROXY, as in curl.
    env_vars.update(NO_PROXY=None, https_proxy="http://127.0.0.1:%d" % proxy.port,
                    HTTPS_PROXY="http://127.0.0.1:%d" % dead)
    with environ(**env_vars):
        r = tu.start_router(env, ups)
    check(tu.chat(r.port, "secure").status == 200, "https_proxy: request failed")
    check(len(proxy.seen()[0]) == 2, "https_proxy was not used: %r", proxy.seen()[0])


@h.timeout(90)
def test_proxy_refusals_are_502_naming_the_answer(env):
    f = tu.make_certs(env.dir)
    mock = env.mock()
    front = tu.TlsFront([(None, f("good.pem"), f("good.key"))], mock.port)
    env.closers.append(front.stop)
    p407 = ConnectProxy(answer="407 Proxy Authentication Required")
    p403 = ConnectProxy(answer="403 Forbidden")
    p502 = ConnectProxy(answer="502 Bad Gateway")
    silent = ConnectProxy(answer="silent")
    for p in (p407, p403, p502, silent):
        env.closers.append(p.stop)
    srv = ["https://localhost:%d" % front.port]
    ca = {"ca_file": f("ca.pem")}

    def up(p, **kw):
        d = {"servers": srv, "tls": ca, "proxy": "http://127.0.0.1:%d" % p.port}
        d.update(kw)
        return d
    ups = {"p407": up(p407), "p403": up(p403), "p502": up(p502),
           "silent": up(silent, connect_timeout_ms=600),
           "gone": {"servers": srv, "tls": ca, "proxy": "http://127.0.0.1:%d" % h.free_port()}}
    with environ(**CLEAN):
        r = tu.start_router(env, ups)
    cases = [("p407", p407, "egress proxy answered 407 Proxy Authentication Required", 1),
             ("p403", p403, "egress proxy answered 403 Forbidden", 1),
             ("p502", p502, "egress proxy answered 502 Bad Gateway", 2),  # retried as a connect
             ("silent", silent, "egress proxy did not answer CONNECT within 600 ms", 2),
             ("gone", None, "cannot connect to egress proxy", 2)]
    for name, p, words, connects in cases:
        t0 = time.monotonic()
        resp = tu.chat(r.port, name)
        took = time.monotonic() - t0
        e = h.check_error_body(resp, 502, "egress_proxy_error")
        check(words in e["message"] and "CONNECT localhost:%d" % front.port in e["message"],
              "%s: error message %r does not say %r", name, e["message"], words)
        if p is not None:
            check(len(p.seen()[0]) == connects, "%s: %d CONNECTs, wanted %d", name,
                  len(p.seen()[0]), connects)
        if name == "silent":
            check(1.1 < took < 3, "the silent proxy (tried twice) answered after %.2f s", took)
    check(not front.seen()[0], "the TLS server was reached: %r", front.seen()[0])


@h.timeout(60)
def test_check_config_names_the_proxy(env):
    def run(cfg, extra_env):
        path = env.path("cc.yaml")
        h.write_file(path, h.to_yaml(cfg))
        e = dict(os.environ)
        for k in CLEAN:
            e.pop(k, None)
        e.update(extra_env)
        p = subprocess.run([h.SWITCHYARD, "check-config", path], env=e, capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=30)
        return p.returncode, (p.stdout + p.stderr).decode()
    base = h.router_config("https://api.example.com")
    for bad, words in (("https://proxy.example:3128", "not supported"),
                       ("http://proxy.example:99999", "host"),
                       ("http://proxy.example/path", "no path"),
                       ("http://user@proxy.example", "user:password")):
        base["upstreams"]["mock"]["proxy"] = bad
        rc, out = run(base, {})
        check(rc != 0 and "proxy" in out and words in out, "proxy: %s: rc %d: %s", bad, rc, out)
    base["upstreams"]["mock"]["proxy"] = "http://u:secret@proxy.example:3128"
    rc, out = run(base, {})
    check(rc == 0, "a good proxy: rc %d: %s", rc, out)
    del base["upstreams"]["mock"]["proxy"]
    rc, out = run(base, {"HTTPS_PROXY": "socks5://proxy.example:1080"})
    check(rc != 0 and "HTTPS_PROXY" in out, "a bad HTTPS_PROXY: rc %d: %s", rc, out)
    rc, out = run(base, {"HTTPS_PROXY": "socks5://proxy.example:1080",
                         "NO_PROXY": "example.com"})
    check(rc == 0, "a bad HTTPS_PROXY but NO_PROXY excludes the server: rc %d: %s", rc, out)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
