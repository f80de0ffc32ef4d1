# SPDX-License-Identifier: MIT
"""The defects of the fault campaign (issue 15), each reproduced as an
operator's worst week would: a full cache disk, failed write-back, stalled
backends.  Every test checks what a user would check: is the file on the
backend, does it restore byte for byte, what does drgw say."""
import hashlib
import json
import os
import subprocess
import time

import pytest

from conftest import run
from test_s3 import s3  # noqa: F401 (fixture)


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def small_fs(tmp_path):
    """A 16 MiB file system for the cache, so it can be filled."""
    d = tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700",
                    "tmpfs", d], check=True)
    yield d
    subprocess.run(["umount", "-l", d])


def fill(path):
    """Writes path until the file system is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass


def test_seal_is_retried_after_the_cache_disk_was_full(env, small_fs, tmp_path):
    cache = small_fs / "cache"
    gw = env.gateway(cache=cache, settle="1s").start()
    data = os.urandom(1 << 20)
    with open(env.mnt / "a.db", "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    fill(small_fs / "filler")          # during a.db's settle delay
    gw.wait_log(r"cannot record snapshot a\.db in the catalog: No space left")
    # While nothing can be sealed, nothing may claim to be replicated.
    p = env.drgw("wait", "--timeout", "2s", cache=cache, check=False)
    assert p.returncode != 0, p.stdout
    space_back_then_replicated(env, small_fs, gw, tmp_path, data)


def space_back_then_replicated(env, small_fs, gw, tmp_path, data):
    """The filler goes: a.db is sealed, replicated and restores as data."""
    os.unlink(small_fs / "filler")
    env.drgw("wait", "--timeout", "60s", cache=small_fs / "cache")
    gw.stop()
    out = tmp_path / "out"
    env.client("restore", "a.db", out)
    assert out.read_bytes() == data


def test_a_file_closed_on_a_full_cache_disk_is_still_waited_for(env, small_fs, tmp_path):
    """The disk fills before the file is closed: the catalog cannot even
    record it as settling, and drgw wait and status must not say done."""
    cache = small_fs / "cache"
    gw = env.gateway(cache=cache, settle="1s").start()
    data = os.urandom(1 << 20)
    f = open(env.mnt / "a.db", "wb")
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
    fill(small_fs / "filler")
    f.close()
    p = env.drgw("wait", "--timeout", "2s", cache=cache, check=False)
    assert p.returncode != 0, (p.stdout, gw.log()[-2000:])
    status = json.loads(env.drgw("status", "--json", cache=cache).stdout)
    assert status["files_settling"] >= 1, status
    space_back_then_replicated(env, small_fs, gw, tmp_path, data)


def test_stop_with_an_unsealable_file_does_not_claim_replicated(env, small_fs):
    cache = small_fs / "cache"
    gw = env.gateway("--drain-timeout", "2s", cache=cache, settle="1s").start()
    (env.mnt / "a.db").write_bytes(os.urandom(1 << 20))
    fill(small_fs / "filler")
    gw.wait_log(r"cannot record snapshot a\.db")
    gw.stop()
    assert "everything is replicated" not in gw.log()
    assert "still pending" in gw.log()


def test_writers_see_enospc_at_write_when_the_cache_is_low(env, small_fs, tmp_path):
    """docs/OPERATIONS.md promises ENOSPC like on any disk: SQLite says
    "database or disk is full", dd fails at write(), and the mount never
    shows a file bigger than the disk could hold."""
    from conftest import sqlite
    cache = small_fs / "cache"
    gw = env.gateway("--drain-timeout", "1s", cache=cache, settle="0.5s").start()
    src = tmp_path / "big.db"
    sqlite(src, "CREATE TABLE t(b); INSERT INTO t SELECT randomblob(8000) "
           "FROM generate_series(1, 2500)")   # 20 MiB, more than the cache
    p = subprocess.run(["sqlite3", src, f".backup '{env.mnt}/c4.db'"],
                       capture_output=True, text=True)
    assert p.returncode != 0
    assert "database or disk is full" in p.stderr, p.stderr
    p = subprocess.run(["dd", "if=/dev/zero", f"of={env.mnt}/dd.bin",
                        "bs=1M", "count=40"], capture_output=True, text=True)
    # At write() (dd: "error writing"), not only at close.
    assert p.returncode != 0 and "error writing" in p.stderr, p.stderr
    assert "No space left" in p.stderr, p.stderr
    assert os.stat(env.mnt / "dd.bin").st_size < 16 << 20
    gw.stop()


def test_failed_writes_and_unclean_closes_are_not_good_backups(env, small_fs):
    cache = small_fs / "cache"
    gw = env.gateway("--drain-timeout", "5s", cache=cache, settle="0.5s").start()
    # A good version first, as yesterday's backup.
    (env.mnt / "full.bin").write_bytes(os.urandom(1 << 20))
    env.drgw("wait", "--timeout", "60s", cache=cache)
    # A writer that hits a full disk gets an error; what is left of the
    # file is sealed (it may be all there is) but marked.
    fill(small_fs / "filler")
    size = os.stat(small_fs / "filler").st_size
    os.truncate(small_fs / "filler", size - (3 << 20))
    p = subprocess.run(["dd", "if=/dev/urandom", f"of={env.mnt}/full.bin",
                        "bs=1M", "count=8"], capture_output=True, text=True)
    assert p.returncode != 0, p.stderr
    os.unlink(small_fs / "filler")
    gw.wait_log(r"sealed full\.bin .*not a good backup")
    # A file open for writing when the daemon dies.
    f = open(env.mnt / "open.db", "wb")
    f.write(os.urandom(100000))
    f.flush()
    os.fsync(f.fileno())
    time.sleep(1)
    gw.kill()
    try:
        f.close()
    except OSError:
        pass
    gw.start()
    env.drgw("wait", "--timeout", "60s", cache=cache)
    gw.stop()
    vs = {v["name"]: v for v in json.loads(
        env.drgw("ls", "--json", "--versions", cache=cache).stdout)}
    assert "writing it failed (No space left on device)" in vs["full.bin"]["problem"], vs
    assert "stopped while it was open for writing" in vs["open.db"]["problem"], vs
    out = env.drgw("ls", cache=cache).stdout
    assert "incomplete" in out, out
    # Not good for the alert, the drill or retention either.
    metrics = env.drgw("status", "--prometheus", cache=cache).stdout
    assert 'drgw_snapshot_newest_incomplete{pattern="full.bin"} 1' in metrics, metrics
    drill = env.client("drill", check=False, cache=cache)
    assert drill.returncode == 1, drill.stdout
    assert "marked incomplete: writing it failed" in drill.stdout, drill.stdout
    # With the writer's catalog, and from the bucket alone (the prune
    # job of deploy/): the objects carry the mark too.
    for c in (cache, env.tmp / "empty-cache"):
        plan = [json.loads(line) for line in env.client(
            "prune", "--keep-last", "1", "--dry-run", "--json", cache=c).stdout.splitlines()]
        bad = vs["full.bin"]["version"]
        full = {x["version"]: x for x in plan if x["name"] == "full.bin"}
        assert [x["action"] for x in full.values()] == ["keep", "keep"], (c, full)
        assert "good" not in full.pop(bad)["reasons"], (c, full)
        assert "good" in list(full.values())[0]["reasons"], (c, full)


def test_ls_shows_a_retry_in_progress_as_failing(env):
    gw = env.gateway().start()
    (env.mnt / "a.db").write_text("a\n")
    env.wait(timeout=60)
    gw.stop()
    # The catalog as it stands while the 6th attempt runs.
    subprocess.run(["sqlite3", env.cache / "catalog.db",
                    "UPDATE replicas SET state='uploading', attempts=5, "
                    "bytes_done=0, last_error='connection reset by peer'"],
                   check=True)
    out = env.drgw("ls").stdout
    assert "uploading 0%" not in out, out
    assert "failing" in out and "connection reset by peer" in out, out
    assert "attempt 6 in progress" in out, out
    [snap] = env.ls()
    assert snap["replicas"]["nfs"]["state"] == "failing", snap
    assert snap["replicas"]["nfs"]["last_error"] == "connection reset by peer"


def test_restore_reads_fail_over_from_a_stalled_backend(env, s3, tmp_path):
    """Every connection to the first backend stalls: reads give up at the
    read deadline and the next backend holding the version serves them,
    instead of hanging for attempts x timeouts (182 s before)."""
    from s3server import Proxy, backend_url
    proxy = Proxy(s3.port)
    try:
        offsite = ["--backend", "offsite=" + backend_url(proxy.url, "app")]
        gw = env.gateway(backends=[*offsite, *env.backend_args()]).start()
        data = os.urandom(3 << 20)
        (env.mnt / "app.db").write_bytes(data)
        (env.mnt / "other.db").write_bytes(data[:1 << 20])
        env.wait(timeout=60)
        gw.stop()
        backends = [*offsite, *env.backend_args()]
        # A scan before the stall, so the restore knows the object is
        # on offsite (and tries it first) without reading it.
        env.client("ls", "--remote", backends=backends)
        proxy.add_fault(method="GET", path=r"\.drgw$", times=None, delay=600)
        out = tmp_path / "out"
        p = env.client("restore", "--read-deadline", "2s", "app.db", out,
                       backends=backends, timeout=60)
        assert "from nfs" in p.stdout, p.stdout + p.stderr
        assert "offsite" in p.stderr and "timed out" in p.stderr, p.stderr
        assert out.read_bytes() == data
        view = env.restore_view("--read-deadline", "2s",
                                backends=backends).start()
        assert (view.mountpoint / "app.db").read_bytes() == data
        # The view remembers: the next file does not wait out offsite's
        # deadline again.
        assert (view.mountpoint / "other.db").read_bytes() == data[:1 << 20]
        view.stop()
        offsite_failures = [l for l in view.log().splitlines()
                            if "level=error" in l and "offsite" in l]
        assert len(offsite_failures) == 1, offsite_failures
    finally:
        proxy.close()
