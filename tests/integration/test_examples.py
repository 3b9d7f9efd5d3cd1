#!/usr/bin/env python3
"""test_examples.py — every shipped config, deploy/examples/*.yaml, passes
`switchyard check-config`. One test per file, so a broken example is named.

The examples keep their secrets out of the file and name environment variables
instead (secret_env, token_env, hash_key_env, ${env:NAME} in headers); this test finds those names in each
file and sets them to throwaway values of a valid length, plus SWITCHYARD_HASH_KEY.
A last test shows the check has teeth: with one of those variables unset the same
file is refused, naming the file and the line.
"""
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

EXAMPLES = sorted(glob.glob(os.path.join(h.ROOT, "deploy", "examples", "*.yaml")))
# The examples the README and deploy/ refer to; a missing one is a failure too.
EXPECTED = ("minimal", "model-bandit", "prompt-ab", "retrieval-canary", "multi-tenant", "openai",
            "azure-openai", "anthropic", "vllm-fallback", "sentinel")
ENV_REF = re.compile(r"\b(?:secret_env|token_env|hash_key_env|password_env|sentinel_password_env)"
                     r"\s*:\s*([A-Za-z_][A-Za-z0-9_]*)"
                     r"|\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def env_names(path):
    """The environment variables the config at path names for its secrets."""
    with open(path) as f:
        return sorted({a or b for a, b in ENV_REF.findall(f.read())})


def secrets_env(names):
    """os.environ plus a distinct 32-character value for each name."""
    env = dict(os.environ)
    env["SWITCHYARD_HASH_KEY"] = "examples-test-hash-key-0123456789"
    for i, n in enumerate(names):
        env[n] = "examples-test-secret-%02d-abcdefgh" % i
    return env


def check_config(path, env):
    p = subprocess.run([h.SWITCHYARD, "check-config", path], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace").strip()


def test_expected_examples_exist(env):
    have = {os.path.splitext(os.path.basename(p))[0] for p in EXAMPLES}
    missing = [n for n in EXPECTED if n not in have]
    check(not missing, "deploy/examples lacks %s", ", ".join(n + ".yaml" for n in missing))


def _example_test(path):
    def test(env):
        rc, out = check_config(path, secrets_env(env_names(path)))
        check(rc == 0, "check-config %s: exit %d: %s", os.path.relpath(path, h.ROOT), rc, out)
        check(out.endswith(": ok") or ": ok (" in out, "check-config %s said %r", path, out)
    test.__name__ = "test_" + re.sub(r"[^A-Za-z0-9]", "_",
                                     os.path.splitext(os.path.basename(path))[0])
    return test


for _p in EXAMPLES:
    _t = _example_test(_p)
    globals()[_t.__name__] = _t


def test_unset_secret_is_refused(env):
    # The first example that names a secret variable, checked without it.
    with_secrets = [p for p in EXAMPLES if env_names(p)]
    check(with_secrets, "no example names a secret variable (secret_env / token_env)")
    path = with_secrets[0]
    names = env_names(path)
    e = secrets_env(names)
    del e[names[0]]
    rc, out = check_config(path, e)
    check(rc == 1, "check-config without %s: exit %d, wanted 1: %s", names[0], rc, out)
    base = os.path.basename(path)
    check(re.search(re.escape(base) + r":\d+: ", out) and names[0] in out,
          "the error does not name %s:LINE and %s: %r", base, names[0], out)


if __name__ == "__main__":
    sys.exit(h.run(globals()))
