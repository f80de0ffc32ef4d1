# SPDX-License-Identifier: MIT
"""Regression tests for defects a code review found: each one reproduces
the scenario the fix is about."""
import json
import os
import subprocess
import time

from conftest import PLUGINS, is_mounted, make_app_db, run, unmount


def test_background_daemon_and_cli_share_the_catalog(env, tmp_path):
    """The daemon forks into the background after opening its catalog;
    SQLite's locks do not follow a fork, so a CLI closing the catalog used
    to delete the live WAL and every later write of the daemon was lost."""
    env.mnt.mkdir(exist_ok=True)
    run("mount", *env.common(), *env.backend_args(), "--settle-delay", "0.2s",
        env.mnt)
    try:
        for i in range(3):
            (env.mnt / f"f{i}.db").write_text(f"version {i}\n")
            env.wait(timeout=30)   # opens and closes the catalog each time
            # While the daemon runs, the CLI sees what it wrote.
            seen = {s["name"]: s["replicas"]["nfs"]["state"] for s in env.ls()}
            assert seen.get(f"f{i}.db") == "replicated", seen
    finally:
        unmount(env.mnt)
    deadline = time.time() + 30
    while time.time() < deadline and json.loads(
            env.drgw("status", "--json").stdout)["daemon_running"]:
        time.sleep(0.1)
    names = sorted(s["name"] for s in env.ls())
    assert names == ["f0.db", "f1.db", "f2.db"]
    assert all(s["replicas"]["nfs"]["state"] == "replicated" for s in env.ls())
    assert len(env.objects()) == 3


def test_removed_before_encoding_is_still_replicated(env, tmp_path):
    """rm of a sealed file whose version is still queued for encoding (a
    slow encoder, or a full cache disk) must not lose that snapshot."""
    gw = env.gateway("--compression-level", "19", "--encode-threads", "1").start()
    make_app_db(tmp_path / "big.db", rows=60000)
    subprocess.run(["cp", tmp_path / "big.db", env.mnt / "first.db"], check=True)
    (env.mnt / "second.db").write_text("small and short-lived\n")
    gw.wait_log(r"sealed second\.db")
    assert "encoded second.db" not in gw.log()
    os.unlink(env.mnt / "second.db")
    env.wait(timeout=120)
    assert sorted(s["name"] for s in env.ls()) == ["first.db", "second.db"]
    out = tmp_path / "second.out"
    env.client("restore", "second.db", out)
    assert out.read_text() == "small and short-lived\n"
    assert not os.listdir(env.cache / "held")
    gw.stop()


def test_directory_rename_does_not_leave_settling_files(env):
    gw = env.gateway(settle="1s").start()
    d = env.mnt / "incoming"
    d.mkdir()
    (d / "a.db").write_text("a\n")
    os.rename(d, env.mnt / "done")
    env.wait(timeout=30)
    assert [s["name"] for s in env.ls()] == ["done/a.db"]
    gw.stop()


def test_names_that_cannot_be_restored_are_refused(env):
    gw = env.gateway().start()
    (env.mnt / "bad\x01name.db").write_text("x\n")
    (env.mnt / "good.db").write_text("y\n")
    env.wait(timeout=30)
    assert [s["name"] for s in env.ls()] == ["good.db"]
    assert "not valid UTF-8 or has control characters" in gw.log()
    gw.stop()
