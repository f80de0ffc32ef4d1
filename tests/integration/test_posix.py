# SPDX-License-Identifier: MIT
"""The mount behaves like a normal directory for the tools a backup job uses
(cp, rsync, tar, mv, mkdir, truncate, fsync, POSIX locks), and what it seals
is what those tools meant to write: journals and temp files are never
replicated, a rename into place is, rm removes only the local copy, and a
name written again becomes a new version with the old one still
restorable."""
import fcntl
import filecmp
import os
import subprocess
import tarfile
import time

import pytest

from conftest import make_app_db, sqlite


@pytest.fixture
def gw(env):
    d = env.gateway().start()
    yield d
    d.stop()


def names(env):
    return sorted(s["name"] for s in env.ls())


def test_common_tools(env, gw, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(os.urandom(300000))
    m = env.mnt

    # Moved right away: a copy left for the settle delay (0.2 s) is
    # sealed under its first name too.
    os.mkdir(m / "dir")
    subprocess.run(["cp", "-a", src / "a.txt", m / "copied.txt"], check=True)
    subprocess.run(["mv", m / "copied.txt", m / "dir" / "moved.txt"], check=True)
    subprocess.run(["rsync", "-a", f"{src}/", f"{m}/rsynced/"], check=True)
    with tarfile.open(tmp_path / "t.tar", "w") as tar:
        tar.add(src, arcname="tarred")
    subprocess.run(["tar", "-xf", tmp_path / "t.tar", "-C", m], check=True)
    (m / "trunc.bin").write_bytes(b"x" * 10000)
    subprocess.run(["truncate", "-s", "100", m / "trunc.bin"], check=True)
    with open(m / "synced.txt", "w") as f:
        f.write("durable\n")
        f.flush()
        os.fsync(f.fileno())
    os.symlink("dir/moved.txt", m / "link")
    os.chmod(m / "dir" / "moved.txt", 0o600)

    assert (m / "dir" / "moved.txt").read_text() == "alpha\n"
    assert os.stat(m / "dir" / "moved.txt").st_mode & 0o777 == 0o600
    assert os.readlink(m / "link") == "dir/moved.txt"
    assert os.path.getsize(m / "trunc.bin") == 100
    assert filecmp.cmp(m / "rsynced" / "sub" / "b.bin", src / "sub" / "b.bin", shallow=False)
    assert filecmp.cmp(m / "tarred" / "sub" / "b.bin", src / "sub" / "b.bin", shallow=False)
    assert os.stat(m / "rsynced" / "a.txt").st_mtime_ns == os.stat(src / "a.txt").st_mtime_ns

    env.wait()
    assert names(env) == sorted([
        "dir/moved.txt", "rsynced/a.txt", "rsynced/sub/b.bin",
        "synced.txt", "tarred/a.txt", "tarred/sub/b.bin", "trunc.bin"])
    # rsync's ".a.txt.XXXXXX" temp files never became snapshots.
    assert all("/." not in s["name"] for s in env.ls("--versions"))

    # The restore view shows the same tree with the same bytes.
    gw.stop()
    view = env.restore_view().start()
    v = view.mountpoint
    assert filecmp.cmp(v / "tarred" / "sub" / "b.bin", src / "sub" / "b.bin", shallow=False)
    assert (v / "trunc.bin").read_bytes() == b"x" * 100
    assert os.stat(v / "rsynced" / "a.txt").st_mtime_ns == os.stat(src / "a.txt").st_mtime_ns
    view.stop()
    gw.start()


def test_sqlite_journal_and_wal_are_not_snapshots(env, gw, tmp_path):
    db = env.mnt / "live.db"
    sqlite(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
    make_app_db(tmp_path / "app.db", rows=2000)
    sqlite(tmp_path / "app.db", f".backup '{env.mnt}/backup.db'")
    env.wait()
    versions = [s["name"] for s in env.ls("--versions")]
    assert "backup.db" in versions
    assert not [n for n in versions if n.endswith(("-journal", "-wal", "-shm"))]


def test_posix_locks_between_processes(env, gw):
    path = env.mnt / "locked.db"
    path.write_bytes(b"\0" * 4096)
    with open(path, "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other = subprocess.run(
            ["python3", "-c",
             "import fcntl,sys\n"
             f"f=open({str(path)!r},'r+b')\n"
             "try:\n fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB)\nexcept OSError:\n sys.exit(3)\n"],
            timeout=30)
        assert other.returncode == 3, "second process got a conflicting lock"
        fcntl.lockf(f, fcntl.LOCK_UN)


def test_rm_removes_only_the_local_copy(env, gw):
    (env.mnt / "gone.txt").write_text("keep me offsite\n")
    env.wait()
    os.unlink(env.mnt / "gone.txt")
    assert not (env.mnt / "gone.txt").exists()
    env.wait()
    assert len(env.objects()) == 1
    assert [s["name"] for s in env.ls()] == ["gone.txt"]
    out = env.tmp / "back.txt"
    env.client("restore", "gone.txt", out)
    assert out.read_text() == "keep me offsite\n"


def test_same_name_again_is_a_new_version(env, gw):
    f = env.mnt / "daily.db"
    f.write_text("monday\n")
    env.wait()
    f.write_text("tuesday\n")
    env.wait()
    versions = env.ls("--versions")
    assert [v["name"] for v in versions] == ["daily.db", "daily.db"]
    old, new = versions
    assert len(env.objects()) == 2
    out = env.tmp / "old.db"
    env.client("restore", "--version", old["version"], "daily.db", out)
    assert out.read_text() == "monday\n"
    env.client("restore", "--force", "daily.db", out)
    assert out.read_text() == "tuesday\n"


def test_reading_does_not_make_versions(env, gw):
    f = env.mnt / "ro.db"
    make_app_db(f, rows=500)
    env.wait()
    before = len(env.ls("--versions"))
    # sqlite3 opens read-write even to read; nothing changes, no version.
    assert sqlite(f, "PRAGMA integrity_check;") == "ok"
    time.sleep(0.6)
    env.wait()
    assert len(env.ls("--versions")) == before


def test_file_written_while_being_encoded_is_resealed(env, tmp_path):
    """A writer reopens the file while the encoder reads it: the half-read
    object is discarded and the final content is what gets replicated."""
    gw = env.gateway("--compression-level", "19", "--encode-threads", "1").start()
    path = env.mnt / "moving.db"
    make_app_db(tmp_path / "v1.db", rows=80000)
    subprocess.run(["cp", tmp_path / "v1.db", path], check=True)
    mark = len(gw.log())
    gw.wait_log(r"sealed moving\.db", start=mark)
    time.sleep(0.2)
    with open(path, "r+b") as f:
        f.seek(0, 2)
        f.write(b"appended while encoding")
    env.wait()
    assert "changed while it was being encoded" in gw.log()
    out = env.tmp / "final.db"
    env.client("restore", "moving.db", out)
    assert filecmp.cmp(out, path, shallow=False)
    for v in env.ls("--versions"):
        assert v["size"] == os.path.getsize(path), "a stale version was shipped"
    gw.stop()


def test_file_written_through_a_hard_link_while_being_encoded_is_resealed(env, tmp_path):
    """Writes through another name of the same file during its encode: the
    half-read object is discarded, never shipped half old, half new."""
    gw = env.gateway("--compression-level", "19", "--encode-threads", "1").start()
    path = env.mnt / "big.db"
    make_app_db(tmp_path / "v1.db", rows=80000)
    mark = len(gw.log())
    subprocess.run(["cp", tmp_path / "v1.db", path], check=True)
    os.link(path, env.mnt / "link.db")
    gw.wait_log(r"sealed big\.db", start=mark)
    time.sleep(0.2)
    size = os.path.getsize(path)
    with open(env.mnt / "link.db", "r+b") as f:
        f.write(b"\0" * size)
    env.wait()
    assert "big.db changed while it was being encoded" in gw.log()
    for name in ("big.db", "link.db"):
        out = env.tmp / f"final-{name}"
        env.client("restore", name, out)
        assert filecmp.cmp(out, path, shallow=False), name
    gw.stop()
