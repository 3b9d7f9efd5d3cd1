"""test_upstream_dns.py — upstream servers named by host name follow their name.

The router runs in a mount namespace of its own (unshare -m) whose /etc/hosts is a
file of this test, so a name can move between addresses without touching the
machine's. Three mock backends listen on the same port at 127.0.0.2, .3 and .4. While
clients keep sending requests:

  - the name moves from .2 to .3: within the resolve interval (300 ms here) the
    answers come from the new address, and the old backend can then go away;
  - the name stops resolving: the router keeps the last good address (one warning);
  - a reload (SIGHUP) points the experiment at a new name: the new config becomes
    current only once that name is resolved (off the loop), so no request is sent
    to a server without an address.

No request may fail at any point.
"""

import os
import signal
import sys
import threading
import time

import harness as h
from harness import check

WRAP_CMD = 'mount --bind "$0" /etc/hosts && exec "$@"'


class Traffic:
    """Client threads; counts answers per mock (x-mock-name) and failures."""

    def __init__(self, port, threads=2):
        self.port = port
        self.by = {}
        self.failed = []
        self.stop = False
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, i):
        c = h.Client(self.port)
        while not self.stop:
            try:
                r = c.request("POST", "/v1/chat/completions", {}, h.chat_body())
                with self.lock:
                    if r.status == 200:
                        name = r.header("x-mock-name")
                        self.by[name] = self.by.get(name, 0) + 1
                    else:
                        self.failed.append((r.status, r.body[:200]))
            except Exception as e:  # a failed request is what this test looks for
                with self.lock:
                    self.failed.append(repr(e))
                c.close()
                c = h.Client(self.port)
            time.sleep(0.003)
        c.close()

    def count(self, name):
        with self.lock:
            return self.by.get(name, 0)

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()


def write_hosts(path, lines):
    # In place: the bind mount follows the inode, not the name.
    with open(path, "w") as f:
        f.write("127.0.0.1 localhost\n" + "".join(l + "\n" for l in lines))


def config(port, mock_port, host):
    cfg = h.router_config("%s:%d" % (host, mock_port), port=port, redis={"enabled": False})
    cfg["upstreams"]["mock"]["resolve_interval_ms"] = 300
    return cfg


@h.timeout(60)
def test_a_name_that_moves_is_followed(env):
    mock_port = h.free_port()
    mocks = {}
    for n, ip in (("m2", "127.0.0.2"), ("m3", "127.0.0.3"), ("m4", "127.0.0.4")):
        mocks[n] = env.mock("--host", ip, "--port", str(mock_port), name=n)
    hosts = env.path("hosts")
    write_hosts(hosts, ["127.0.0.2 llm.test"])
    port = h.free_port()
    cfg = config(port, mock_port, "llm.test")
    router = env.router(cfg, wrap=["unshare", "-m", "sh", "-c", WRAP_CMD, hosts])
    traffic = Traffic(router.port)
    try:
        check(h.wait_until(lambda: traffic.count("m2") > 20, 5), "no answers from m2: %r",
              traffic.by)
        # The name moves.
        write_hosts(hosts, ["127.0.0.3 llm.test"])
        t0 = time.monotonic()
        check(h.wait_until(lambda: traffic.count("m3") > 0, 5), "the router did not follow the "
              "name to 127.0.0.3 within 5 s: %r", traffic.by)
        moved_in = time.monotonic() - t0
        m2_then = traffic.count("m2")
        time.sleep(0.5)
        check(traffic.count("m2") == m2_then, "answers still from the old address: %r",
              traffic.by)
        mocks["m2"].stop()
        time.sleep(0.5)
        # The name stops resolving: the last good address is kept.
        write_hosts(hosts, [])
        m3_before = traffic.count("m3")
        time.sleep(1.5)
        check(traffic.count("m3") > m3_before + 20, "no answers while the name did not resolve: "
              "%r", traffic.by)
        warned = [l for l in router.logs() if "cannot resolve llm.test" in str(l.get("msg"))]
        check(len(warned) == 1, "the failed resolution was logged %d times: %r", len(warned),
              [l.get("msg") for l in warned])
        # A reload to a name the router has never resolved.
        write_hosts(hosts, ["127.0.0.3 llm.test", "127.0.0.4 other.test"])
        router.write_config(config(port, mock_port, "other.test"))
        router.signal(signal.SIGHUP)
        check(h.wait_until(lambda: traffic.count("m4") > 20, 5), "no answers from the reloaded "
              "config's server: %r", traffic.by)
    finally:
        traffic.finish()
    check(not traffic.failed, "%d failed requests: %r", len(traffic.failed), traffic.failed[:5])
    print("  followed the move in %.2f s; answers %r; 0 failed" % (moved_in, traffic.by),
          flush=True)


@h.timeout(30)
def test_an_unknown_name_stops_the_start(env):
    """A name that does not resolve when the router starts is a clear error (as a
    typo should be), not a router that starts and fails every request."""
    hosts = env.path("hosts")
    write_hosts(hosts, [])
    cfg = config(h.free_port(), 9, "nowhere.test")
    router = env.router(cfg, wait=False, wrap=["unshare", "-m", "sh", "-c", WRAP_CMD, hosts])
    rc = router.wait(10)
    check(rc is not None and rc != 0, "the router started with an unresolvable upstream: rc %r",
          rc)
    check("cannot resolve upstream server nowhere.test" in router.stderr_text(),
          "no clear error: %s", router.stderr_tail())
    router.stopped = True
    router.stop(expect_rc=None)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
