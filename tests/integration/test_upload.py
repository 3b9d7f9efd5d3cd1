#!/usr/bin/env python3
"""test_upload.py — request bodies that no rewrite needs and that are chunked or over
64 KiB are streamed upstream as they arrive, not held: the upstream sees the request
head before the client has finished sending; the bytes arrive intact (Content-Length
and chunked); limits.max_stream_body_bytes answers 413; a rewriting route still holds
its body and keeps limits.max_body_bytes; an upstream that answers before the upload
ends gets its answer through, and the connection is closed after it; keep-alive
survives a streamed upload.
"""
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


class RecordingUpstream:
    """Reads each request in full (Content-Length or chunked), records when its head and
    its last body byte arrived, and answers {"received": N, "sha256": ...}. With
    early=True it answers 413 right after the head and closes."""

    def __init__(self, early=False):
        self.early = early
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.accepted = 0
        self.heads = []        # (head bytes, monotonic time)
        self.bodies_done = []  # (length, monotonic time)
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _recv(self, conn, buf):
        d = conn.recv(65536)
        if not d:
            raise EOFError
        return buf + d

    def _conn(self, conn):
        buf = b""
        conn.settimeout(10)
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    buf = self._recv(conn, buf)
                head, buf = buf.split(b"\r\n\r\n", 1)
                self.heads.append((head, time.monotonic()))
                if self.early:
                    conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n"
                                 b"Connection: close\r\n\r\nnope")
                    return
                body = b""
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if m:
                    need = int(m.group(1))
                    while len(buf) < need:
                        buf = self._recv(conn, buf)
                    body, buf = buf[:need], buf[need:]
                elif re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
                    while True:
                        while b"\r\n" not in buf:
                            buf = self._recv(conn, buf)
                        line, buf = buf.split(b"\r\n", 1)
                        size = int(line.split(b";")[0], 16)
                        while len(buf) < size + 2:
                            buf = self._recv(conn, buf)
                        body += buf[:size]
                        buf = buf[size + 2:]
                        if size == 0:
                            break
                self.bodies_done.append((len(body), time.monotonic()))
                out = json.dumps({"received": len(body),
                                  "sha256": hashlib.sha256(body).hexdigest()}).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(out), out))
        except (EOFError, OSError, ValueError):
            pass
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        self.sock.close()


def start(env, early=False, **limits):
    up = RecordingUpstream(early=early)
    env.cleanups = getattr(env, "cleanups", [])
    lim = {"max_body_bytes": 1024, "header_timeout_ms": 3000}
    lim.update(limits)
    mock = env.mock()
    cfg = h.router_config(mock.addr, limits=lim)
    cfg["upstreams"]["rec"] = {"servers": [up.addr]}
    cfg["default_route"] = {"upstream": "rec"}
    return up, env.router(cfg)


def test_large_body_streams_before_it_is_complete(env):
    up, router = start(env)
    body = os.urandom(300000)
    c = h.Client(router.port)
    c.send(h.build_request("POST", "/v1/files", [("Content-Length", str(len(body)))]))
    c.send(body[:100000])
    # The upstream has the head while two thirds of the body are still with the client.
    check(h.wait_until(lambda: len(up.heads) == 1, 3), "upstream did not see the head early")
    check(not up.bodies_done, "upstream already had the whole body")
    head = up.heads[0][0].decode()
    check(re.search(r"(?im)^content-length: 300000$", head), "framing upstream: %r", head)
    time.sleep(0.2)
    c.send(body[100000:])
    r = c.read_response("POST")
    check(r.status == 200, "status %s %r", r.status, r.body[:200])
    got = r.json()
    check(got == {"received": len(body), "sha256": hashlib.sha256(body).hexdigest()},
          "body changed on the way: %r", got)
    # Keep-alive survives, on both sides.
    r = c.request("POST", "/v1/files", [], b"x" * 200)
    check(r.status == 200 and r.json()["received"] == 200, "next request: %s", r.status)
    check(up.accepted == 1, "upstream connections: %d", up.accepted)
    c.close()
    up.stop()


def test_chunked_upload_streams(env):
    up, router = start(env)
    pieces = [os.urandom(3000 + i) for i in range(20)]
    c = h.Client(router.port)
    c.send(h.build_request("POST", "/v1/audio/transcriptions",
                           [("Transfer-Encoding", "chunked")]))
    for i, p in enumerate(pieces):
        c.send(b"%x\r\n%s\r\n" % (len(p), p))
        if i == 4:
            check(h.wait_until(lambda: len(up.heads) == 1, 3),
                  "upstream did not see a chunked upload's head before its end")
        time.sleep(0.02)
    c.send(b"0\r\n\r\n")
    r = c.read_response("POST")
    whole = b"".join(pieces)
    check(r.status == 200 and r.json() == {"received": len(whole),
                                           "sha256": hashlib.sha256(whole).hexdigest()},
          "chunked upload: %s %r", r.status, r.body[:200])
    head = up.heads[0][0].decode()
    check(re.search(r"(?im)^transfer-encoding: chunked$", head) and "content-length" not in
          head.lower(), "upstream framing of a chunked upload: %r", head)
    c.close()
    up.stop()


def test_stream_limit_413(env):
    up, router = start(env, max_stream_body_bytes=200000)
    c = h.Client(router.port)
    r = c.request("POST", "/v1/files", [("Content-Length", "300000")], None)
    h.check_error_body(r, 413, "payload_too_large")
    check(c.closed_by_peer(2), "connection open after 413")
    # Chunked: refused once it passes the limit.
    c = h.Client(router.port)
    c.send(h.build_request("POST", "/v1/files", [("Transfer-Encoding", "chunked")]))
    try:
        for _ in range(30):
            c.send(b"%x\r\n%s\r\n" % (10000, b"z" * 10000))
    except OSError:
        pass  # the proxy may close while we are still sending
    r = c.read_response("POST", allow_abort=True)
    check(r.status == 413, "chunked upload past the limit: %s", r.status)
    check(not up.bodies_done, "upstream received a complete over-limit body")
    up.stop()


def test_rewriting_route_keeps_buffer_limit(env):
    up, router = start(env)
    body = json.dumps(h.chat_body(messages=[{"role": "user", "content": "y" * 100000}]))
    r = h.post_chat(router.port, {"x-user-id": "u"}, body)
    h.check_error_body(r, 413, "payload_too_large")
    up.stop()


def test_early_upstream_answer_during_upload(env):
    up, router = start(env, early=True)
    c = h.Client(router.port)
    c.send(h.build_request("POST", "/v1/files", [("Content-Length", "500000")]))
    c.send(b"a" * 100000)
    r = c.read_response("POST")
    check(r.status == 413 and r.body == b"nope", "early answer: %s %r", r.status, r.body)
    check(c.closed_by_peer(3), "connection kept open with an unfinished upload")
    r = h.post_chat(router.port, {"x-user-id": "v"}, h.chat_body())
    check(r.status == 200, "proxy stopped serving: %s", r.status)
    up.stop()


def test_client_leaves_mid_upload(env):
    up, router = start(env)
    c = h.Client(router.port)
    c.send(h.build_request("POST", "/v1/files", [("Content-Length", "400000")]))
    c.send(b"b" * 150000)
    check(h.wait_until(lambda: len(up.heads) == 1, 3), "upstream did not see the head")
    c.abort()
    time.sleep(0.3)
    check(not up.bodies_done, "upstream got a complete body from a client that left")
    r = h.post_chat(router.port, {"x-user-id": "w"}, h.chat_body())
    check(r.status == 200, "proxy stopped serving: %s", r.status)
    up.stop()


if __name__ == "__main__":
    sys.exit(h.run(globals()))
