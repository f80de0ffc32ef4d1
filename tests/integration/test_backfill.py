# SPDX-License-Identifier: MIT
"""drgw backfill: a backend added later gets the snapshots the others hold,
copied as stored and read back before they count."""
import filecmp
import os
import shutil

from conftest import make_app_db, sqlite


def write_snapshots(env, reference):
    """Three snapshots on backend "a", one of them in two versions."""
    gw = env.gateway(backends=env.backend_args("a")).start()
    reference.mkdir()
    for i, name in enumerate(["x.db", "y.db", "z.db"]):
        make_app_db(env.mnt / name, rows=3000, seed=i)
    env.wait()
    make_app_db(env.mnt / "x.db", rows=2000, seed=9)  # a second version
    env.wait()
    for name in ["x.db", "y.db", "z.db"]:
        shutil.copy(env.mnt / name, reference / name)
    gw.stop()


def test_backfill_fills_a_new_backend(env, tmp_path):
    reference = tmp_path / "reference"
    write_snapshots(env, reference)
    b = tmp_path / "b"
    b.mkdir()
    both = [*env.backend_args("a"), *env.backend_args("b", b)]

    # The daemon, now with b configured, says what b lacks and what to run.
    gw = env.gateway(backends=both, name="gateway-ab").start()
    gw.wait_log(r"backend b does not have the newest version of 3 snapshots, "
                r"encoded before it was configured; 'drgw backfill b' copies them")
    gw.stop()

    dry = env.client("backfill", "--dry-run", "b", backends=both, cache=env.cache)
    assert dry.stdout.count("would copy") == 3
    assert "3 to copy, 0 already on b" in dry.stdout
    assert env.objects(b) == []

    p = env.client("backfill", "b", backends=both, cache=env.cache)
    assert "3 copied and verified, 0 already on b, 0 failed" in p.stdout
    latest = {s["name"]: s["version"] for s in env.ls()}
    assert env.objects(b) == sorted(v + ".drgw" for v in latest.values())
    # The catalog of the gateway's cache knows where the copies are, and
    # the daemon no longer asks for a backfill.
    for s in env.ls():
        assert s["replicas"]["b"]["state"] == "replicated", s
    gw = env.gateway(backends=both, name="gateway-ab2").start()
    gw.stop()
    assert "drgw backfill" not in gw.log()

    # Backend b alone, on a new machine: every file back, byte for byte.
    view = env.restore_view(backends=env.backend_args("b", b)).start()
    assert sorted(os.listdir(view.mountpoint)) == ["x.db", "y.db", "z.db"]
    for n in os.listdir(view.mountpoint):
        assert filecmp.cmp(view.mountpoint / n, reference / n, shallow=False), n
        assert sqlite(view.mountpoint / n, "PRAGMA integrity_check;") == "ok"
    view.stop()

    # Older versions on request; then nothing is left to do.
    p = env.client("backfill", "--all-versions", "b", backends=both, cache=env.cache)
    assert "1 copied and verified, 3 already on b" in p.stdout
    assert env.objects(b) == env.objects() and len(env.objects(b)) == 4
    p = env.client("backfill", "--all-versions", "b", backends=both, cache=env.cache)
    assert "0 copied and verified, 4 already on b, 0 failed" in p.stdout


def test_backfill_rebuilds_a_lost_backend_without_the_catalog(env, tmp_path):
    reference = tmp_path / "reference"
    write_snapshots(env, reference)
    # Keep a surviving copy, then lose backend a and the cache with it.
    survivor = tmp_path / "survivor"
    shutil.copytree(env.remote, survivor)
    shutil.rmtree(env.remote)
    env.remote.mkdir()
    shutil.rmtree(env.cache)

    both = [*env.backend_args("a"), *env.backend_args("s", survivor)]
    p = env.client("backfill", "--all-versions", "--from", "s", "a", backends=both)
    assert "4 copied and verified, 0 already on a, 0 failed" in p.stdout
    assert "from s to a" in p.stdout
    assert env.objects() == env.objects(survivor)
    restored = tmp_path / "restored.db"
    env.client("restore", "z.db", restored, backends=env.backend_args("a"))
    assert filecmp.cmp(restored, reference / "z.db", shallow=False)


def test_backfill_does_not_keep_a_copy_that_does_not_read_back(env, tmp_path):
    reference = tmp_path / "reference"
    write_snapshots(env, reference)
    # Rot in the middle of one object on a: its tail (what a scan reads)
    # is intact, so only reading the copy back finds it.
    y = next(s for s in env.ls() if s["name"] == "y.db")["version"] + ".drgw"
    obj = env.remote / y
    data = bytearray(obj.read_bytes())
    data[len(data) // 3] ^= 0x55
    obj.write_bytes(bytes(data))
    b = tmp_path / "b"
    b.mkdir()
    both = [*env.backend_args("a"), *env.backend_args("b", b)]

    p = env.client("backfill", "b", backends=both, check=False)
    assert p.returncode == 1
    assert "2 copied and verified, 0 already on b, 1 failed" in p.stdout
    assert f"the copy of version {y[:-5]} on b does not read back, removed it" in p.stderr
    assert "failed authentication" in p.stderr
    assert y not in env.objects(b) and len(env.objects(b)) == 2


def test_backfill_refuses_an_unknown_backend(env):
    p = env.client("backfill", "nowhere", check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == ("drgw: no backend named nowhere is configured "
                                "(--backend NAME=URL or the config)")

