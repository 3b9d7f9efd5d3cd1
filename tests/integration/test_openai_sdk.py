#!/usr/bin/env python3
"""test_openai_sdk.py — the official OpenAI Node SDK (tests/node, `openai` ^6) as a real
client of switchyard: bench/mock-llm behind a 50/50 split experiment, and
tests/node/openai_client.mjs with its baseURL pointing at switchyard sending one chat
completion and one streamed completion (stream: true, stream_options.include_usage).
The script prints what the SDK saw as JSON; this file makes the assertions: the
content arrives, switchyard's response headers (experiment, variant, trace id) reach
the SDK, the streamed chunks arrive intact and in order (their text is exactly what
mock-llm sends, bench/mock_reply.c), and the usage of the final chunk.

Needs node (SY_NODE, or `node` on PATH) and tests/node/node_modules (./tests/run runs
`npm ci` there); without them the test fails and says so, it never skips.
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

NODE_DIR = os.path.join(h.ROOT, "tests", "node")
SCRIPT = os.path.join(NODE_DIR, "openai_client.mjs")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
CHUNKS = 6  # content chunks mock-llm is asked for (x-mock-chunks)


def node_binary():
    """The node to run: SY_NODE, else `node` on PATH; fails the test if there is none."""
    node = os.environ.get("SY_NODE") or shutil.which("node")
    check(node is not None and os.access(node, os.X_OK),
          "node not found (set SY_NODE or put node on PATH; ./deploy/install-deps installs it)")
    return node


def check_node_modules():
    pkg = os.path.join(NODE_DIR, "node_modules", "openai", "package.json")
    check(os.path.isfile(pkg),
          "%s is missing: run `npm ci --no-audit --no-fund` in %s (./tests/run does)",
          os.path.dirname(pkg), NODE_DIR)


def run_client(env, node, port, user, base_url=None, extra_env=None):
    """Runs openai_client.mjs with node against switchyard on port (or base_url); returns
    its JSON result. extra_env: more environment (NODE_EXTRA_CA_CERTS)."""
    penv = dict(os.environ, SY_BASE_URL=base_url or "http://127.0.0.1:%d/v1" % port,
                SY_USER_ID=user, SY_STREAM_CHUNKS=str(CHUNKS), **(extra_env or {}))
    # The SDK must not be sent through a proxy from the environment.
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        penv.pop(k, None)
    penv["NO_PROXY"] = penv["no_proxy"] = "127.0.0.1,localhost"
    p = subprocess.run([node, SCRIPT], cwd=NODE_DIR, env=penv, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    out = p.stdout.decode("utf-8", "replace").strip()
    err = p.stderr.decode("utf-8", "replace").strip()
    with open(env.path("node.stderr"), "w") as f:
        f.write(err)
    try:
        result = json.loads(out.splitlines()[-1]) if out else None
    except ValueError:
        result = None
    check(p.returncode == 0 and isinstance(result, dict) and "error" not in result,
          "openai_client.mjs exited %d; stdout: %s; stderr: %s", p.returncode, out[-2000:],
          err[-2000:])
    return result


def check_headers(hd, what):
    check(hd.get("status") == 200, "%s: status %r", what, hd.get("status"))
    check(hd.get("experiment") == "chat", "%s: x-switchyard-experiment %r", what,
          hd.get("experiment"))
    check(hd.get("variant") in ("a", "b"), "%s: x-switchyard-variant %r", what, hd.get("variant"))
    check(HEX32.match(hd.get("trace_id") or "") and hd["trace_id"] != "0" * 32,
          "%s: x-switchyard-trace-id %r", what, hd.get("trace_id"))


@h.timeout(120)
def test_openai_sdk_chat_and_stream(env):
    node = node_binary()
    check_node_modules()
    mock = env.mock()
    cfg = h.router_config(mock.addr, data_dir=env.path("data"))
    router = env.router(cfg)
    res = run_client(env, node, router.port, "sdk-user-1")

    # 1. The plain completion: content, switchyard's headers, the variant's model.
    c = res["completion"]
    check_headers(c["headers"], "completion")
    check((c["headers"]["content_type"] or "").startswith("application/json"),
          "completion content-type %r", c["headers"]["content_type"])
    variant = c["headers"]["variant"]
    check(c["object"] == "chat.completion", "completion object %r", c["object"])
    check(c["content"] == "mock answer from mock", "completion content %r", c["content"])
    check(c["finish_reason"] == "stop", "finish_reason %r", c["finish_reason"])
    check(c["model"] == "model-" + variant,
          "the backend answered for model %r, but the variant is %r", c["model"], variant)
    u = c["usage"] or {}
    check(u.get("prompt_tokens", 0) > 0 and u.get("total_tokens") ==
          u.get("prompt_tokens", 0) + u.get("completion_tokens", -1),
          "completion usage %r", c["usage"])

    # 2. The stream: same experiment and (sticky user) variant, a new trace.
    s = res["stream"]
    check_headers(s["headers"], "stream")
    check((s["headers"]["content_type"] or "").startswith("text/event-stream"),
          "stream content-type %r", s["headers"]["content_type"])
    check(s["headers"]["variant"] == variant,
          "sticky user moved from variant %s to %s", variant, s["headers"]["variant"])
    check(s["headers"]["trace_id"] != c["headers"]["trace_id"],
          "two requests share trace id %s", c["headers"]["trace_id"])

    # mock-llm sends CHUNKS content chunks "tok0 ", "tok1 ", ... (the first with the
    # role, the last with finish_reason stop), then a chunk with no choices and the
    # usage, then [DONE] (which the SDK consumes).
    chunks = s["chunks"]
    check(len(chunks) == CHUNKS + 1, "%d chunks, wanted %d: %r", len(chunks), CHUNKS + 1, chunks)
    want_text = "".join("tok%d " % i for i in range(CHUNKS))
    check(s["text"] == want_text, "streamed text %r, wanted %r", s["text"], want_text)
    for i, ch in enumerate(chunks[:CHUNKS]):
        check(ch["object"] == "chat.completion.chunk" and ch["content"] == "tok%d " % i,
              "chunk %d: %r", i, ch)
        check(ch["model"] == "model-" + variant, "chunk %d model %r", i, ch["model"])
        check(ch["role"] == ("assistant" if i == 0 else None), "chunk %d role %r", i, ch["role"])
        check(ch["finish_reason"] == ("stop" if i == CHUNKS - 1 else None),
              "chunk %d finish_reason %r", i, ch["finish_reason"])
        check(not ch["has_usage"], "chunk %d carries usage: %r", i, ch)
    check(len({ch["id"] for ch in chunks}) == 1, "chunk ids differ: %r", chunks)
    last = chunks[-1]
    check(last["nchoices"] == 0 and last["has_usage"], "final chunk %r is not a usage chunk", last)
    u = s["usage"] or {}
    check(u.get("completion_tokens") == CHUNKS and u.get("prompt_tokens", 0) > 0 and
          u.get("total_tokens") == u["prompt_tokens"] + CHUNKS, "stream usage %r", s["usage"])

    # What the backend received for the stream (x-mock-echo in the usage chunk): the
    # variant's model, the SDK's stream options intact, switchyard's trace context.
    e = s["echo"]
    check(isinstance(e, dict), "no mock_echo in the final chunk")
    body = e["body"]
    check(body.get("model") == "model-" + variant, "upstream saw model %r", body.get("model"))
    check(body.get("stream") is True and body.get("stream_options") == {"include_usage": True},
          "stream fields changed on the way: %r", body)
    tp = e["headers"].get("traceparent", "")
    check(tp.split("-")[1:2] == [s["headers"]["trace_id"]],
          "upstream traceparent %r does not carry the trace id %s", tp, s["headers"]["trace_id"])

    # Exactly two requests reached the backend (no SDK retries), one of them a stream.
    st = mock.stats()
    check(st["requests"] == 2 and st["streams"] == 1, "mock stats %r", st)
    router.stop()


if __name__ == "__main__":
    sys.exit(h.run(globals()))
