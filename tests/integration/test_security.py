# SPDX-License-Identifier: MIT
"""Regression tests for the findings of the security review (issue 9):
each reproduces what an attacker or an unlucky operator would do and
checks what they would see."""
import hashlib
import os
import subprocess

from conftest import PLUGINS, run


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def versions_of(env, name):
    return [v for v in env.ls("--versions") if v["name"] == name]


def test_rewrite_that_keeps_size_and_mtime_is_a_new_version(env, tmp_path):
    """cp -p, rsync -t and touch -r put size and mtime back: two different
    files copied under one name must still give two versions."""
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    a.write_bytes(os.urandom(100_000))
    b.write_bytes(os.urandom(100_000))
    subprocess.run(["touch", "-d", "2026-01-01 00:00:00", a, b], check=True)
    gw = env.gateway().start()
    subprocess.run(["cp", "-p", a, env.mnt / "app.db"], check=True)
    env.wait(timeout=60)
    subprocess.run(["cp", "-p", b, env.mnt / "app.db"], check=True)
    env.wait(timeout=60)
    gw.stop()
    # The same again while no daemon runs: the start-up scan must see it.
    subprocess.run(["cp", "-p", a, env.cache / "files" / "app.db"], check=True)
    gw.start()
    env.wait(timeout=60)
    gw.stop()

    vs = versions_of(env, "app.db")
    assert len(vs) == 3, vs
    got = []
    for v in vs:
        out = tmp_path / f"out-{v['version']}"
        env.client("restore", "--version", v["version"], "app.db", out)
        got.append(sha256(out))
    assert sorted(got) == sorted([sha256(a), sha256(b), sha256(a)])
