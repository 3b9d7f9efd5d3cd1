"""harness.py — the integration-test harness: real processes, real loopback sockets.

Python 3 standard library only. It gives the test files:

- paths of the binaries under test (SY_SWITCHYARD, SY_MOCK_LLM, SY_SOURCE_ROOT);
- free_port() and a tiny YAML writer (to_yaml) for temporary configs;
- Mock (bench/mock-llm on a free port, parsed from its `listening on` line) and
  Router (switchyard serve, started when its port accepts), both with stderr captured
  to a file; stopping is SIGTERM, then SIGKILL of the process group after a timeout;
  a stopped process's stderr is checked for sanitizer reports (ASan, UBSan, LSan);
- FakeUpstream, a scripted upstream (closes, answers garbage, or a canned response,
  optionally closing a kept-alive connection unanswered after N requests);
- Client, a raw-socket HTTP/1.1 client that reads responses framed by Content-Length,
  chunked encoding or connection close, and records when each recv() arrived so
  tests can see whether streamed chunks were merged;
- run(): a tiny test runner. Each test is a function taking an Env (a temp dir plus
  the processes it started). Each runs under a watchdog (SIGALRM, 30 s unless the
  test says otherwise); whatever a test started is stopped afterwards. Prints
  `ok NAME` or `FAIL NAME: reason` per test, then `N passed, M failed`; exits 1 if
  any test failed.
"""

import atexit
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.environ.get("SY_SOURCE_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "proto"))
import event5  # noqa: E402  (proto/event5.py: the events stream's reader)
SWITCHYARD = os.environ.get("SY_SWITCHYARD") or os.path.join(ROOT, "build", "router", "switchyard")
MOCK_LLM = os.environ.get("SY_MOCK_LLM") or os.path.join(ROOT, "build", "bench", "mock-llm")

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
DEFAULT_TIMEOUT = 30

# Every child process still running, so that an interpreter exit (even after an
# unexpected exception) never leaves one behind.
_LIVE = set()


class Failure(AssertionError):
    """A test assertion that failed; its message is the reason printed."""


class WatchdogExpired(BaseException):
    """Raised in the main thread by SIGALRM when a test overruns its watchdog."""


def check(cond, msg, *args):
    """Fails the current test with msg % args unless cond holds."""
    if not cond:
        raise Failure(msg % args if args else msg)


def timeout(seconds):
    """Decorator: this test's watchdog fires after `seconds` instead of the default."""
    def wrap(fn):
        fn.watchdog_seconds = seconds
        return fn
    return wrap


def wait_until(pred, timeout_s, interval=0.02):
    """Polls pred() until it returns a true value (returned) or timeout_s passes (None)."""
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# ---- ports and configs -----------------------------------------------------

_HANDED_OUT = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, and that this
    process has not handed out before: nothing holds a port between this call and
    the bind of whoever uses it, so two calls could otherwise return the same port
    (and SO_REUSEPORT would let a router bind it twice)."""
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def port_accepts(port, host="127.0.0.1"):
    """True if a TCP connect to host:port succeeds now."""
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


def _yaml_scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def _yaml_key(k):
    return k if _PLAIN_KEY.match(k) else json.dumps(k)


def _yaml_emit(obj, indent, out):
    pad = " " * indent
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, _yaml_key(k)))
                _yaml_emit(v, indent + 2, out)
            else:
                empty = "{}" if isinstance(v, dict) else "[]" if isinstance(v, list) else None
                out.append("%s%s: %s" % (pad, _yaml_key(k), empty or _yaml_scalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                sub = []
                _yaml_emit(item, indent + 2, sub)
                sub[0] = pad + "- " + sub[0][indent + 2:]
                out.extend(sub)
            else:
                out.append("%s- %s" % (pad, _yaml_scalar(item)))
    else:
        out.append(pad + _yaml_scalar(obj))


def to_yaml(obj):
    """Block-style YAML for nested dicts/lists/scalars (one key per line)."""
    out = []
    _yaml_emit(obj, 0, out)
    return "\n".join(out) + "\n"


def write_file(path, text):
    """Writes text to path atomically (a reader never sees half a file)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ---- processes -------------------------------------------------------------

def _child_env():
    env = dict(os.environ)
    # Leak checking on, whatever else the caller (e.g. meson test) asked for.
    asan = env.get("ASAN_OPTIONS", "")
    if "detect_leaks=" not in asan:
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "detect_leaks=1"
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


class Process:
    """A child process with stderr captured to WORKDIR/NAME.stderr."""

    def __init__(self, name, argv, workdir, stdout=subprocess.DEVNULL):
        self.name = name
        self.argv = argv
        self.stderr_path = os.path.join(workdir, name + ".stderr")
        self._err = open(self.stderr_path, "wb")
        # A session of its own: SIGKILL can then reach forked workers too.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout,
                                     stderr=self._err, env=_child_env(),
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.killed = False
        self.stopped = False
        self.leftovers = []  # group members still running when the process had exited
        _LIVE.add(self)

    def alive(self):
        return self.proc.poll() is None

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, lines=25):
        return "\n".join(self.stderr_text().splitlines()[-lines:])

    def sanitizer_report(self):
        """The first sanitizer line in the captured stderr, or None."""
        for line in self.stderr_text().splitlines():
            if any(m in line for m in SANITIZER_MARKERS):
                return line.strip()
        return None

    def signal(self, signum):
        if self.alive():
            os.kill(self.pid, signum)

    def wait(self, timeout_s):
        """Exit status, or None if still running after timeout_s."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout_s=10):
        """SIGTERM, then SIGKILL (whole process group) after timeout_s. Returns the
        exit status. Raises Failure if the stderr holds a sanitizer report."""
        if not self.stopped:
            self.stopped = True
            if self.alive():
                self.signal(signal.SIGTERM)
                if self.wait(timeout_s) is None:
                    self.killed = True
                    try:
                        os.killpg(self.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    self.proc.wait()
            else:
                self.proc.wait()
            self.leftovers = group_members(self.pid)
            self._err.close()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            _LIVE.discard(self)
            self._reap_group()
        report = self.sanitizer_report()
        check(report is None, "%s: sanitizer report in stderr: %s", self.name, report)
        return self.proc.returncode

    def _reap_group(self):
        # Forked children (workers) must not outlive the test either.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass


def group_members(pgid):
    """Pids of live (not zombie) processes in process group pgid (Linux /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            out.append(int(d))
    return out


def sanitized(pid):
    """True if process pid runs with AddressSanitizer (its memory figures mean little)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def _kill_all_live():
    for p in list(_LIVE):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass


atexit.register(_kill_all_live)


def _read_line(stream, timeout_s):
    """One line from a pipe, or b'' if none within timeout_s (or EOF)."""
    deadline = time.monotonic() + timeout_s
    line = b""
    fd = stream.fileno()
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b""
        ch = os.read(fd, 1)
        if not ch:
            return b""
        line += ch
    return line


class Mock(Process):
    """bench/mock-llm on a free port; extra argv are mock flags (--chunks 5 ...)."""

    def __init__(self, workdir, *args, name="mock"):
        self._stats_client = None
        super().__init__(name, [MOCK_LLM, "--port", "0", "--name", name] + list(args),
                         workdir, stdout=subprocess.PIPE)
        line = _read_line(self.proc.stdout, 10).decode("utf-8", "replace").strip()
        m = re.match(r"^listening on (\S+):(\d+)$", line)
        if not m:
            self.stop()
            raise Failure("mock-llm did not start (%r): %s" % (line, self.stderr_tail()))
        self.host = m.group(1)
        self.port = int(m.group(2))
        self.addr = "%s:%d" % (self.host, self.port)

    def stats(self):
        """GET /stats over one kept-alive connection (so it counts as one)."""
        for _ in range(2):
            if self._stats_client is None:
                self._stats_client = Client(self.port)
            try:
                r = self._stats_client.request("GET", "/stats")
                check(r.status == 200, "mock /stats: status %s", r.status)
                return r.json()
            except (OSError, ConnectionClosed):
                self._stats_client.close()
                self._stats_client = None
        raise Failure("mock /stats unreachable")

    def stop(self, timeout_s=10):
        if self._stats_client is not None:
            self._stats_client.close()
            self._stats_client = None
        return super().stop(timeout_s)


class Router(Process):
    """switchyard serve --config WORKDIR/NAME.yaml; waits until the port accepts."""

    def __init__(self, workdir, config, name="switchyard", wait=True, wrap=()):
        """wrap: argv put before switchyard's (a command that execs it in place, so the
        pid stays switchyard's, e.g. unshare)."""
        self.config_path = os.path.join(workdir, name + ".yaml")
        self.write_config(config)
        listen = config["listen"][0] if isinstance(config, dict) else None
        self.port = int(listen.rsplit(":", 1)[1]) if listen else None
        super().__init__(name, list(wrap) + [SWITCHYARD, "serve", "--config", self.config_path],
                         workdir)
        if wait:
            self.wait_ready()

    def write_config(self, config):
        write_file(self.config_path, config if isinstance(config, str) else to_yaml(config))

    def wait_ready(self, timeout_s=10):
        ok = wait_until(lambda: not self.alive() or port_accepts(self.port), timeout_s)
        check(ok and self.alive(), "switchyard did not start listening on %s: %s",
              self.port, self.stderr_tail())

    def logs(self):
        """The JSON log lines written so far (non-JSON lines are skipped)."""
        out = []
        for line in self.stderr_text().splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def wait_log(self, pattern, count=1, timeout_s=5):
        """Waits until `count` log lines' msg match the regex; returns them."""
        rx = re.compile(pattern)

        def found():
            hits = [l for l in self.logs() if rx.search(str(l.get("msg", "")))]
            return hits if len(hits) >= count else None
        hits = wait_until(found, timeout_s)
        check(hits is not None, "no log line matching %r (x%d) within %ss; stderr:\n%s",
              pattern, count, timeout_s, self.stderr_tail())
        return hits

    def stop(self, timeout_s=10, expect_rc=0):
        """Stops the router and fails unless it exited by itself with expect_rc."""
        rc = super().stop(timeout_s)
        check(not self.killed, "switchyard did not exit within %ss of SIGTERM", timeout_s)
        check(not self.leftovers, "processes of switchyard still running after it exited: %r",
              self.leftovers)
        check(expect_rc is None or rc == expect_rc, "switchyard exit status %s, wanted %s: %s",
              rc, expect_rc, self.stderr_tail())
        return rc


def router_config(upstream_addr, port=None, **extra):
    """A config dict: one listener on a free port, upstream `mock`, the `chat` experiment
    (variants a/b, models model-a/model-b, 50/50, sticky on x-user-id). Keyword
    arguments replace or add top-level keys."""
    cfg = {
        "listen": ["127.0.0.1:%d" % (port or free_port())],
        "upstreams": {"mock": {"servers": [upstream_addr]}},
        "experiments": [chat_experiment()],
    }
    cfg.update(extra)
    return cfg


def chat_experiment(model_a="model-a", model_b="model-b"):
    """The `chat` experiment of deploy/examples/minimal.yaml, with the given models."""
    return {
        "id": "chat",
        "match": {"method": "POST", "path_prefix": "/v1/chat/completions"},
        "sticky_header": "x-user-id",
        "control": "a",
        "variants": [
            {"id": "a", "upstream": "mock", "model": model_a, "weight": 50},
            {"id": "b", "upstream": "mock", "model": model_b, "weight": 50},
        ],
    }


# ---- a scripted upstream -----------------------------------------------------

class FakeUpstream:
    """A scripted upstream, one thread per connection. behaviour: 'close' reads the
    request head and closes; 'garbage' answers bytes that are not HTTP; bytes: a canned
    response sent for every request of a kept-alive connection; with per_conn=N, a
    connection's request N+1 is read and then the connection closed unanswered (as a
    server whose keep-alive timeout raced with the request does)."""

    def __init__(self, behaviour, per_conn=None):
        self.behaviour = behaviour
        self.per_conn = per_conn
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.accepted = 0
        self.requests = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _read_request(self, conn, data):
        """(head, rest) of the next request, or (None, b'') at EOF."""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return None, b""
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        need = int(m.group(1)) if m else 0
        while len(rest) < need:
            chunk = conn.recv(4096)
            if not chunk:
                return None, b""
            rest += chunk
        return head, rest[need:]

    def _conn(self, conn):
        data = b""
        answered = 0
        try:
            conn.settimeout(1)
            while not self._stop.is_set():
                try:
                    head, data = self._read_request(conn, data)
                except socket.timeout:
                    continue
                if head is None:
                    return
                self.requests.append(head)
                if self.behaviour == "close":
                    return
                if self.behaviour == "garbage":
                    conn.sendall(b"THIS IS NOT HTTP\r\n\r\n")
                    return
                if self.per_conn is not None and answered >= self.per_conn:
                    return
                conn.sendall(self.behaviour)
                answered += 1
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


# ---- the HTTP client -----------------------------------------------------------

class ConnectionClosed(Exception):
    """The server closed the connection before a response head arrived."""


class ReadTimeout(Failure):
    """Nothing arrived from the server within the socket timeout."""


def build_request(method, path, headers=None, body=None, version="HTTP/1.1", host=True):
    """Request bytes. headers: list of (name, value) or dict. A body (bytes, str or a
    JSON-able object) gets a Content-Length unless a Transfer-Encoding is given."""
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    names = {k.lower() for k, _ in hdrs}
    if host and "host" not in names:
        hdrs.insert(0, ("Host", "127.0.0.1"))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    head = "%s %s %s\r\n" % (method, path, version)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in hdrs) + "\r\n"
    return head.encode("latin-1") + (body or b"")


class Response:
    """A parsed response. chunks: for a chunked body, (payload, arrival time, recv index)
    per chunk; complete: the framing ended cleanly (terminating chunk, full length)."""

    def __init__(self):
        self.version = self.reason = ""
        self.status = 0
        self.headers = []
        self.body = b""
        self.chunks = []
        self.complete = False
        self.interim = []
        self.t_head = None

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise Failure("response body is not JSON: %r" % self.body[:300])

    def sse_events(self):
        """The `data:` payloads of an SSE body, in order."""
        return [l[5:].strip() for l in self.body.decode("utf-8", "replace").split("\n")
                if l.startswith("data:")]

    def __repr__(self):
        return "<Response %s %r %d body bytes complete=%s>" % (
            self.status, self.headers, len(self.body), self.complete)


class Client:
    """One client connection. Every recv() is recorded in `arrivals` as
    (monotonic time, byte count), so a test can tell separate arrivals from merged ones."""

    def __init__(self, port, host="127.0.0.1", timeout_s=10, rcvbuf=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the TCP window is sized from it
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout_s)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._data = bytearray()  # received bytes; those before _pos are consumed
        self._pos = 0
        self.eof = False
        self.reset = False
        self.arrivals = []

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Closes with an RST (SO_LINGER 0), as a client that vanishes does."""
        try:
            linger = struct.pack("ii", 1, 0)  # on, 0 s: close() sends an RST
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        except OSError:
            pass
        self.close()

    def recv_once(self):
        """One recv() into buf (recorded in arrivals); False at EOF or reset; raises
        ReadTimeout if nothing comes within the socket timeout."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        except socket.timeout:
            raise ReadTimeout("nothing from the server for %s s; unparsed so far: %r"
                              % (self.sock.gettimeout(), self.buf[:200]))
        if not data:
            self.eof = True
            return False
        self.arrivals.append((time.monotonic(), len(data)))
        self._data += data
        return True

    @property
    def buf(self):
        """The bytes received and not parsed yet."""
        return bytes(self._data[self._pos:])

    def _unread(self):
        return len(self._data) - self._pos

    def _find(self, sep):
        i = self._data.find(sep, self._pos)
        return -1 if i < 0 else i - self._pos

    def _take(self, n):
        out = bytes(self._data[self._pos:self._pos + n])
        self._pos += len(out)
        if self._pos > 65536 and self._pos * 2 > len(self._data):
            del self._data[:self._pos]
            self._pos = 0
        return out

    def _line(self):
        while self._find(b"\r\n") < 0:
            if not self.recv_once():
                return None
        line = self._take(self._find(b"\r\n"))
        self._take(2)
        return line

    def _exact(self, n):
        while self._unread() < n:
            if not self.recv_once():
                return None
        return self._take(n)

    def _head(self, r):
        while self._find(b"\r\n\r\n") < 0:
            if not self.recv_once():
                if self._unread():
                    raise Failure("connection closed inside a response head: %r" % self.buf[:200])
                raise ConnectionClosed("connection closed before a response")
        r.t_head = self.arrivals[-1][0] if self.arrivals else time.monotonic()
        head = self._take(self._find(b"\r\n\r\n")).decode("latin-1")
        self._take(4)
        lines = head.split("\r\n")
        m = re.match(r"^(HTTP/\d\.\d) (\d{3}) ?(.*)$", lines[0])
        check(m is not None, "bad status line %r", lines[0])
        r.version, r.status, r.reason = m.group(1), int(m.group(2)), m.group(3)
        r.headers = []
        for l in lines[1:]:
            k, sep, v = l.partition(":")
            check(sep == ":", "bad header line %r", l)
            r.headers.append((k.strip(), v.strip()))

    def _chunked(self, r):
        try:
            self._chunk_loop(r)
        finally:
            r.body = b"".join(p for p, _, _ in r.chunks)

    def _chunk_loop(self, r):
        while True:
            line = self._line()
            if line is None:
                return
            size = int(line.split(b";")[0].strip() or b"x", 16)
            if size == 0:
                while True:
                    t = self._line()
                    if t is None:
                        return
                    if t == b"":
                        r.complete = True
                        return
            data = self._exact(size + 2)
            if data is None:
                return
            check(data.endswith(b"\r\n"), "chunk not followed by CRLF: %r", data[-10:])
            r.chunks.append((data[:-2], self.arrivals[-1][0], len(self.arrivals) - 1))

    def read_response(self, method="GET", allow_abort=False):
        """Reads one response (skipping 1xx ones, kept in .interim). A body cut short
        raises Failure unless allow_abort; then .complete tells."""
        r = Response()
        while True:
            self._head(r)
            if not 100 <= r.status < 200:
                break
            r.interim.append(r.status)
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        if method == "HEAD" or r.status in (204, 304):
            r.complete = True
        elif "chunked" in te:
            self._chunked(r)
        elif cl is not None:
            data = self._exact(int(cl))
            if data is None:
                r.body = self._take(self._unread())
            else:
                r.body, r.complete = data, True
        else:
            while self.recv_once():
                pass
            r.body = self._take(self._unread())
            r.complete = not self.reset
        check(r.complete or allow_abort, "response body cut short: %r (got %d bytes)",
              r, len(r.body))
        return r

    def request(self, method, path, headers=None, body=None, version="HTTP/1.1", **kw):
        """Sends one request and reads its response."""
        self.send(build_request(method, path, headers, body, version))
        return self.read_response(method, **kw)

    def closed_by_peer(self, timeout_s=1.0):
        """True if the server closes (EOF or RST) within timeout_s with no bytes sent;
        raises Failure if bytes arrive; False on timeout."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout_s)
        try:
            got = self.recv_once()
        except ReadTimeout:
            return False
        finally:
            if not self.eof:
                self.sock.settimeout(old)
        check(not got, "unexpected bytes from the server: %r", self.buf[:200])
        return True


def chat_body(stream=False, messages=None, **extra):
    """A small chat completion request body."""
    body = {"model": "client-model",
            "messages": messages or [{"role": "user", "content": "hello"}]}
    if stream:
        body["stream"] = True
    body.update(extra)
    return body


def post_chat(port, headers=None, body=None, **kw):
    """One POST /v1/chat/completions on a fresh connection; the response."""
    c = Client(port)
    try:
        return c.request("POST", "/v1/chat/completions", headers, body or chat_body(), **kw)
    finally:
        c.close()


class Load:
    """Client threads on keep-alive connections, counting every response."""

    def __init__(self, port, threads=4, pause_s=0.002):
        self.port = port
        self.pause_s = pause_s
        self.ok = 0
        self.failed = []
        self.stop = False
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]

    def run(self, i):
        c = Client(self.port)
        n = 0
        while not self.stop:
            n += 1
            try:
                r = c.request("POST", "/v1/chat/completions", {"x-user-id": "u%d-%d" % (i, n)},
                              chat_body())
                with self.lock:
                    if r.status == 200:
                        self.ok += 1
                    else:
                        self.failed.append(r.status)
            except Exception as e:  # a failed request is what this test looks for
                with self.lock:
                    self.failed.append(repr(e))
                c.close()
                c = Client(self.port)
            time.sleep(self.pause_s)
        c.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        for t in self.threads:
            t.join()


def check_error_body(r, status, code=None):
    """Checks an OpenAI-style JSON error response: status, error.message/type/code."""
    check(r.status == status, "status %s, wanted %s: %r", r.status, status, r.body[:300])
    check((r.header("content-type") or "").startswith("application/json"),
          "error content-type %r", r.header("content-type"))
    e = r.json().get("error")
    check(isinstance(e, dict), "no error object: %r", r.body)
    for k in ("message", "type", "code"):
        check(isinstance(e.get(k), str) and e.get(k), "error.%s missing or empty: %r", k, r.body)
    check(code is None or e["code"] == code, "error.code %r, wanted %r", e["code"], code)
    return e


# ---- the runner ---------------------------------------------------------------

class Env:
    """What one test owns: a temp dir and the processes it started (all stopped and
    checked for sanitizer reports when the test ends)."""

    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix="sy-itest-%s-" % name)
        self.procs = []
        self.closers = []

    def mock(self, *args, name="mock"):
        m = Mock(self.dir, *args, name=name)
        self.procs.append(m)
        return m

    def router(self, config, name="switchyard", wait=True, wrap=()):
        r = Router(self.dir, config, name=name, wait=wait, wrap=wrap)
        self.procs.append(r)
        return r

    def fake_upstream(self, behaviour, per_conn=None):
        f = FakeUpstream(behaviour, per_conn)
        self.closers.append(f.stop)
        return f

    def path(self, name):
        return os.path.join(self.dir, name)

    def tails(self):
        parts = []
        for p in self.procs:
            t = p.stderr_tail(15)
            if t.strip():
                parts.append("--- %s stderr (%s):\n%s" % (p.name, p.stderr_path, t))
        return "\n".join(parts)

    def close(self):
        """Stops everything; returns a list of problems found (sanitizer reports, a
        router that had to be killed or exited non-zero)."""
        problems = []
        for f in self.closers:
            f()
        for p in reversed(self.procs):
            if p.stopped:
                continue  # the test stopped it and has seen its checks
            try:
                p.stop()
            except Failure as e:
                problems.append(str(e))
        return problems


def _on_alarm(signum, frame):
    raise WatchdogExpired()


def _run_one(fn):
    name = fn.__name__
    seconds = getattr(fn, "watchdog_seconds", DEFAULT_TIMEOUT)
    env = Env(name)
    reason = None
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(seconds)
    try:
        fn(env)
    except WatchdogExpired:
        reason = "watchdog: still running after %d s" % seconds
    except Failure as e:
        reason = str(e)
    except Exception:  # noqa: BLE001 - any error fails the test with its traceback
        reason = traceback.format_exc(limit=6).strip()
    finally:
        signal.alarm(0)
    _kill_on_watchdog(env, reason)
    try:
        signal.alarm(30)  # the cleanup has a watchdog of its own
        problems = env.close()
    except WatchdogExpired:
        problems = ["cleanup did not finish within 30 s"]
    finally:
        signal.alarm(0)
    if reason is None and problems:
        reason = "; ".join(problems)
    elif reason is not None and problems:
        reason += "\n" + "\n".join(problems)
    if reason is not None:
        reason += "\n" + env.tails() if env.tails() else ""
        print("FAIL %s: %s" % (name, reason.replace("\n", "\n    ")), flush=True)
        print("    (work dir kept: %s)" % env.dir, flush=True)
        return False
    shutil.rmtree(env.dir, ignore_errors=True)
    print("ok %s" % name, flush=True)
    return True


def _kill_on_watchdog(env, reason):
    if reason is not None and reason.startswith("watchdog"):
        for p in env.procs:
            if not p.stopped:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass


def run(namespace):
    """Runs every function named test_* in namespace (definition order), or only
    those named on the command line. Prints per-test lines and a summary; returns
    the process exit status (1 if any test failed)."""
    tests = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    only = sys.argv[1:]
    if only:
        tests = [t for t in tests if t.__name__ in only]
    for binary in (SWITCHYARD, MOCK_LLM):
        if not os.access(binary, os.X_OK):
            print("FAIL setup: %s is not an executable (set SY_SWITCHYARD / SY_MOCK_LLM)" % binary)
            print("0 passed, 1 failed")
            return 1
    passed = failed = 0
    for t in tests:
        if _run_one(t):
            passed += 1
        else:
            failed += 1
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


# ---- Redis helpers ----------------------------------------------------------------
# A tiny RESP2 client (standard library only) and a standalone redis-server, for the
# tests that look at what switchyard keeps in Redis (proto/KEYS.md).

class RedisError(Failure):
    """Redis answered a command with an error reply."""


class RedisClient:
    """One connection to Redis: a unix socket path, or (host, port). command() sends one
    command and returns its reply: str (simple or bulk string, UTF-8), int, list, None
    (nil); an error reply raises RedisError."""

    def __init__(self, where, timeout_s=5):
        if isinstance(where, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        self.sock.connect(where)
        self._buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def command(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(parts))
        return self._reply()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Failure("redis closed the connection")
        self._buf += data

    def _line(self):
        while b"\r\n" not in self._buf:
            self._fill()
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            raise RedisError("redis: %s" % rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self._buf) < n + 2:
                self._fill()
            data, self._buf = self._buf[:n], self._buf[n + 2:]
            return data.decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise Failure("unexpected RESP reply %r" % line[:100])

    def hgetall(self, key):
        """The hash at key as a dict of strings ({} if there is none)."""
        flat = self.command("HGETALL", key) or []
        return dict(zip(flat[0::2], flat[1::2]))

    def trace(self, tid):
        """Trace tid's record as {field: value} ({} if there is none), found as the
        router finds it (proto/event5.py trace_record)."""
        return event5.trace_record(self.command, tid, int(time.time() * 1000))[1]

    def trace_key(self, tid):
        """The key that holds trace tid's record (its hour's bucket), or None."""
        return event5.trace_record(self.command, tid, int(time.time() * 1000))[0]

    def stream(self, key="sy:events"):
        """Every entry of a stream, oldest first, as (id, {field: value}); schema 5's
        compact events are decoded into their fields (proto/event5.py)."""
        out = []
        refs = None
        for entry_id, flat in self.command("XRANGE", key, "-", "+") or []:
            entry = dict(zip(flat[0::2], flat[1::2]))
            if "e" in entry and refs is None:
                refs = self.hgetall("sy:refs")
            out.append((entry_id, event5.decode(entry, refs, entry_id)))
        return out


def redis_ping(where):
    """True if a Redis server answers PING at where (socket path or (host, port))."""
    try:
        c = RedisClient(where, timeout_s=1)
    except OSError:
        return False
    try:
        return c.command("PING") == "PONG"
    except (OSError, Failure):
        return False
    finally:
        c.close()


def redis_server(env, name="redis", extra=()):
    """Starts a standalone redis-server (no TCP port, no persistence) on the unix socket
    ENV/NAME.sock as a Process owned by env; waits until it answers PING. Returns the
    process; its socket path is .sock and a router's redis.url for it .url."""
    sock = env.path(name + ".sock")
    p = Process(name, ["redis-server", "--port", "0", "--unixsocket", sock,
                       "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                       "--dir", env.dir, "--daemonize", "no"] + list(extra), env.dir)
    env.procs.append(p)
    ok = wait_until(lambda: not p.alive() or redis_ping(sock), 10)
    check(ok and p.alive(), "redis-server did not start: %s", p.stderr_tail())
    p.sock = sock
    p.url = "unix://" + sock
    return p
