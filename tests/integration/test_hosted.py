#!/usr/bin/env python3
"""test_hosted.py — the shapes hosted LLM APIs want, against the mock backend on
loopback (which echoes what it received): Azure OpenAI's deployment path and
api-version query (an upstream's path: rewrite), its api-key header with the
client's own Authorization dropped (authorization: drop), and what a path rewrite
must leave alone."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


def echo(port, path="/v1/chat/completions", headers=None):
    hd = {"x-mock-echo": "1"}
    hd.update(headers or {})
    c = h.Client(port)
    try:
        r = c.request("POST", path, hd, h.chat_body())
    finally:
        c.close()
    check(r.status == 200, "%s: status %s: %r", path, r.status, r.body[:200])
    return r.json()["mock_echo"]


@h.timeout(60)
def test_azure_deployment_path_and_api_key(env):
    """path: {strip_prefix: /v1, add_prefix: /openai/deployments/D, query: api-version=V}
    and headers: {api-key: ...} with authorization: drop — the request Azure wants,
    from an OpenAI client's /v1/chat/completions with its own Authorization."""
    mock = env.mock()
    os.environ["SY_TEST_AZURE_KEY"] = "azure-key-0123456789"
    cfg = h.router_config(mock.addr, redis={"enabled": False},
                          default_route={"upstream": "mock"})
    cfg["upstreams"]["mock"].update({
        "path": {"strip_prefix": "/v1", "add_prefix": "/openai/deployments/gpt-4o-mini",
                 "query": "api-version=2024-10-21"},
        "headers": {"api-key": "${env:SY_TEST_AZURE_KEY}"},
        "authorization": "drop",
    })
    r = env.router(cfg)
    e = echo(r.port, headers={"authorization": "Bearer sk-client-openai-key"})
    check(e["path"] == "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
          "path %r", e["path"])
    check(e["headers"].get("api-key") == "azure-key-0123456789", "api-key %r",
          e["headers"].get("api-key"))
    check("authorization" not in {k.lower() for k in e["headers"]},
          "the client's Authorization reached the upstream: %r", e["headers"])
    # a query the client sent is kept, the api-version added after it
    e = echo(r.port, path="/v1/chat/completions?trace=1")
    check(e["path"] == "/openai/deployments/gpt-4o-mini/chat/completions?trace=1&"
          "api-version=2024-10-21", "path with a query %r", e["path"])
    # a path outside the prefix is not stripped (/v10 is not /v1), only prefixed
    e = echo(r.port, path="/v10/chat/completions")
    check(e["path"] == "/openai/deployments/gpt-4o-mini/v10/chat/completions?api-version=2024-10-21",
          "path outside the prefix %r", e["path"])


@h.timeout(60)
def test_without_path_rewrite_the_target_is_untouched(env):
    """No path: block: the target goes as the client sent it (query included), and
    authorization: replace (the default) with no upstream Authorization keeps the
    client's."""
    mock = env.mock()
    cfg = h.router_config(mock.addr, redis={"enabled": False})
    r = env.router(cfg)
    e = echo(r.port, path="/v1/chat/completions?a=%2F&b", headers={"authorization": "Bearer c"})
    check(e["path"] == "/v1/chat/completions?a=%2F&b", "path %r", e["path"])
    check(e["headers"].get("authorization") == "Bearer c", "authorization %r",
          e["headers"].get("authorization"))


if __name__ == "__main__":
    sys.exit(h.run(globals()))
