# SPDX-License-Identifier: MIT
"""SIGKILL at any moment loses nothing: on the next mount with the same cache
the daemon resumes sealing, encoding and replication where it stopped, and
every snapshot ends up on the backend exactly once and byte-identical."""
import filecmp
import os
import random
import subprocess
import threading
import time

from conftest import DRGW, make_app_db, sqlite, unmount


def write_file(path, size, seed=1):
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rnd.randbytes(n))
            left -= n


def restored_equal(env, name, local, tmp_path):
    out = tmp_path / ("restored-" + name.replace("/", "_"))
    env.client("restore", "--force", name, out)
    return filecmp.cmp(out, local, shallow=False)


def test_kill_during_encoding(env, tmp_path):
    src = tmp_path / "big.db"
    make_app_db(src, rows=120000)
    # Level 19 on one thread makes encoding slow enough to be caught.
    gw = env.gateway("--compression-level", "19", "--encode-threads", "1").start()
    mark = len(gw.log())
    subprocess.run(["cp", src, env.mnt / "big.db"], check=True)
    gw.wait_log(r"sealed big\.db", start=mark)
    time.sleep(0.3)
    assert "encoded big.db" not in gw.log()
    gw.kill()
    assert list((env.cache / "spool").glob("*.tmp")), "encoding was not in progress"

    gw = env.gateway(name="gateway2").start()
    env.wait()
    assert len(env.objects()) == 1
    assert not list((env.cache / "spool").iterdir()), "spool not cleaned up"
    assert restored_equal(env, "big.db", src, tmp_path)
    gw.stop()


def test_kill_during_replication_resumes(env, tmp_path):
    src = tmp_path / "random.bin"
    write_file(src, 512 << 20)
    # The upload of an encoded object (test_streaming.py covers uploads
    # that follow the encoder).
    gw = env.gateway("--streaming", "off").start()
    subprocess.run(["cp", src, env.mnt / "random.bin"], check=True)
    # The local backend saves its progress every 64 MiB; kill after that.
    part = None
    deadline = time.time() + 120
    while time.time() < deadline:
        parts = list(env.remote.glob(".*.part"))
        if parts and parts[0].stat().st_size > 80 << 20:
            part = parts[0]
            break
        time.sleep(0.002)
    assert part, "upload was never caught in progress:\n" + gw.log()[-2000:]
    gw.kill()
    assert not env.objects(), "upload finished before the kill"

    gw = env.gateway("--streaming", "off", name="gateway2").start()
    env.wait()
    assert "resuming upload of random.bin" in gw.log()
    assert len(env.objects()) == 1
    assert not list(env.remote.glob(".*"))
    assert restored_equal(env, "random.bin", src, tmp_path)
    gw.stop()


def test_random_kills_during_backup_jobs(env, tmp_path):
    """Backup jobs run in a loop while the daemon is killed at random
    moments, six times.  Whatever each kill left behind, the end state is
    consistent: every local file's content is on the backend, every object
    on the backend is in the catalog, and everything verifies."""
    db = tmp_path / "app.db"
    make_app_db(db, rows=60000)
    rnd = random.Random(42)
    stop = threading.Event()

    def jobs():
        n = 0
        while not stop.is_set():
            n += 1
            subprocess.run(
                ["sqlite3", str(db), f".backup '{env.mnt}/app-{n:03d}.db'"],
                capture_output=True, timeout=60)
            time.sleep(rnd.uniform(0, 0.2))

    for i in range(6):
        gw = env.gateway(name=f"gateway{i}").start()
        t = threading.Thread(target=jobs)
        t.start()
        time.sleep(rnd.uniform(0.3, 2.0))
        gw.kill()
        stop.set()
        t.join()
        stop.clear()

    gw = env.gateway(name="final").start()
    env.wait()
    snaps = {s["version"]: s for s in env.ls("--versions")}
    objects = env.objects()
    assert sorted(v + ".drgw" for v in snaps) == objects
    for s in snaps.values():
        assert s["replicas"]["nfs"]["state"] == "replicated"
    # The newest version of each local file is its current content.
    for f in sorted(env.mnt.glob("app-*.db")):
        assert restored_equal(env, f.name, f, tmp_path), f.name
    verify = env.client("verify", "--all-versions")
    assert "0 problems" in verify.stdout
    gw.stop()


def test_kill_during_a_restore(env, tmp_path, monkeypatch):
    """drgw restore killed mid-copy leaves no file under the name asked
    for (the copy goes to a temporary name, renamed when complete); the
    restore view killed mid-read leaves a dead mount, which a new one
    names with the command that clears it.  Either, run again, gives the
    bytes."""
    gw = env.gateway().start()
    write_file(env.mnt / "big.bin", 20 << 20)
    env.wait()
    gw.stop()
    local = env.cache / "files" / "big.bin"
    out = tmp_path / "out.bin"
    monkeypatch.setenv("DRGW_TEST_KILL_AT", "restore-read:2")
    p = env.client("restore", "big.bin", out, check=False)
    assert p.returncode == -9, (p.returncode, p.stderr)
    assert not out.exists()
    assert [f.name for f in tmp_path.glob("out.bin.drgw-restore-*")]
    monkeypatch.delenv("DRGW_TEST_KILL_AT")
    env.client("restore", "big.bin", out)
    assert filecmp.cmp(out, local, shallow=False)

    view = env.restore_view().start()
    reader = subprocess.Popen(["dd", f"if={view.mountpoint}/big.bin",
                               "of=/dev/null", "bs=64k"],
                              stderr=subprocess.DEVNULL)
    time.sleep(0.05)
    view.proc.kill()  # the mount stays, dead: "not connected"
    view.proc.wait()
    reader.wait(timeout=30)
    p = subprocess.run([str(DRGW), "mount", "-f", *view.args, str(view.mountpoint)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "dead mount" in p.stderr, p.stderr
    assert f"fusermount3 -u {view.mountpoint}" in p.stderr, p.stderr
    unmount(view.mountpoint)
    view = env.restore_view(name="restore2", mountpoint=view.mountpoint).start()
    assert filecmp.cmp(view.mountpoint / "big.bin", local, shallow=False)
    view.stop()
