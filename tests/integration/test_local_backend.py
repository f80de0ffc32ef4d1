# SPDX-License-Identifier: MIT
"""The local backend in a directory others can write to (a shared NFS/SMB
export): nothing planted there makes the daemon write through a symlink,
read one, or wait on a FIFO (issue 9, finding 3); and a put() of an
object that is already stored with the same bytes (a crash after the
rename, before the gateway recorded it) is done without a rewrite (issue
15, defect 2).  Driven through plugin-harness, the gateway's ABI path,
and through the daemon for the restore view."""
import os
import sys
import time
from pathlib import Path

import pytest

from conftest import BUILD, PLUGINS, make_app_db

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugin-harness"))
from harness import Harness, clean_env, write_random  # noqa: E402

HARNESS = BUILD / "tests" / "plugin-harness" / "plugin-harness"
PLUGIN = PLUGINS / "local" / "drgw-local.so"
VICTIM = b"a file of the host that the daemon must never touch\n"


@pytest.fixture
def backend(tmp_path):
    d = tmp_path / "backend"
    d.mkdir()
    return d


@pytest.fixture
def victim(tmp_path):
    v = tmp_path / "outside" / "victim"
    v.parent.mkdir()
    v.write_bytes(VICTIM)
    return v


def harness(tmp_path, backend):
    return Harness(str(HARNESS), str(PLUGIN), f"local://{backend}",
                   clean_env(tmp_path), {})


def local(h, *args, **kw):
    # The local plugin has none of the network plugins' options.
    kw.setdefault("options", {"retry-base-ms": None, "retry-cap-ms": None,
                              "connect-timeout": None})
    return h.run(*args, **kw)


def test_symlink_at_temp_name_is_not_followed(tmp_path, backend, victim):
    h = harness(tmp_path, backend)
    src = write_random(tmp_path / "src", 3 << 20, seed=1)
    (backend / ".v1.drgw.part").symlink_to(victim)
    local(h, "put", "v1.drgw", src)
    assert victim.read_bytes() == VICTIM
    obj = backend / "v1.drgw"
    assert obj.is_file() and not obj.is_symlink()
    assert obj.read_bytes() == src.read_bytes()
    assert not os.path.lexists(backend / ".v1.drgw.part")

    # Also when a resume token says the temp file holds a prefix: a
    # symlink there is no prefix of ours.
    token = tmp_path / "token"
    token.write_text("drgw-local-1:1024")
    (backend / ".v2.drgw.part").symlink_to(victim)
    local(h, "put", "--token", token, "v2.drgw", src)
    assert victim.read_bytes() == VICTIM
    assert (backend / "v2.drgw").read_bytes() == src.read_bytes()

    # A hard link at the temp name is not reused either (same file system:
    # the backend directory and the "host file" share it here).
    (backend / ".v3.drgw.part").hardlink_to(victim)
    local(h, "put", "--token", token, "v3.drgw", src)
    assert victim.read_bytes() == VICTIM
    assert (backend / "v3.drgw").read_bytes() == src.read_bytes()


def test_planted_objects_are_not_read(tmp_path, backend, victim):
    h = harness(tmp_path, backend)
    (backend / "v1.drgw").symlink_to(victim)
    for cmd in (("stat", "v1.drgw"), ("get", "v1.drgw", 0, 100, tmp_path / "o"),
                ("cat", "v1.drgw", tmp_path / "o")):
        p = local(h, *cmd, check=False)
        assert p.returncode == 1
        assert ("EIO: refusing to read %s/v1.drgw: not a regular file"
                % backend) in p.stderr, p.stderr
        assert "a file of the host" not in p.stdout
    assert not (tmp_path / "o").exists() or \
        VICTIM not in (tmp_path / "o").read_bytes()
    # Listing shows regular files only.
    write_random(backend / "v2.drgw", 10)
    assert local(h, "list").stdout.split("\n")[0] == "v2.drgw\t10"

    # A FIFO in an object's place: refused at once, never waited on.
    os.mkfifo(backend / "v3.drgw")
    t = time.monotonic()
    p = local(h, "get", "v3.drgw", 0, 10, tmp_path / "o", check=False,
              timeout=20)
    assert "not a regular file" in p.stderr
    assert time.monotonic() - t < 10


def test_symlinked_directory_in_a_key(tmp_path, backend, victim):
    """A key's directory replaced by a symlink: nothing is written, read
    or removed through it."""
    h = harness(tmp_path, backend)
    (backend / "sub").symlink_to(victim.parent)
    src = write_random(tmp_path / "src", 1000)
    p = local(h, "put", "sub/victim", src, check=False)
    assert p.returncode == 1
    assert "refusing to use %s/sub: not a directory" % backend in p.stderr
    p = local(h, "rm", "sub/victim", check=False)
    assert "refusing to use" in p.stderr
    p = local(h, "cat", "sub/victim", tmp_path / "o", check=False)
    assert p.returncode == 1
    assert victim.read_bytes() == VICTIM
    assert sorted(os.listdir(victim.parent)) == ["victim"]


def test_put_of_what_is_already_stored(tmp_path, backend):
    """After a crash between the rename and the gateway's catalog commit,
    put() is called again: the object is there with the same bytes, so
    nothing is rewritten.  Other bytes of the same size are."""
    h = harness(tmp_path, backend)
    src = write_random(tmp_path / "src", 5 << 20, seed=3)
    local(h, "put", "v1.drgw", src)
    before = os.stat(backend / "v1.drgw")
    local(h, "put", "v1.drgw", src)
    after = os.stat(backend / "v1.drgw")
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # Also with a token of the progress saved before the rename (objects
    # of 64 MiB and more): its temp file is gone, the object is there.
    token = tmp_path / "token"
    token.write_text("drgw-local-1:1048576")
    local(h, "put", "--token", token, "v1.drgw", src)
    after = os.stat(backend / "v1.drgw")
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    other = write_random(tmp_path / "other", 5 << 20, seed=4)
    local(h, "put", "v1.drgw", other)
    assert (backend / "v1.drgw").read_bytes() == other.read_bytes()


def test_ranged_listing(tmp_path, backend):
    """list_range(), which the gateway uses to list a large bucket in
    parallel: only the keys strictly between the bounds, across pages."""
    h = harness(tmp_path, backend)
    (backend / "sub").mkdir()
    for i in range(2100):
        (backend / ("k%04d" % i)).write_bytes(b"x")
    (backend / "sub" / "k0500").write_bytes(b"x")
    p = local(h, "list-range", "k0499", "k1800")
    assert p.stdout.splitlines() == ["k%04d\t1" % i for i in range(500, 1800)]
    assert "pages 2 keys 1300" in p.stderr
    p = local(h, "list-range", "-", "k0002")
    assert p.stdout.splitlines() == ["k0000\t1", "k0001\t1"]
    p = local(h, "list-range", "k2098", "-")
    assert p.stdout.splitlines() == ["k2099\t1", "sub/k0500\t1"]


def test_restore_refuses_a_planted_symlink(env, tmp_path):
    """Through the daemon's restore: an object replaced by a symlink (here
    to its own bytes, moved elsewhere) is neither listed nor read; the
    user gets one clear line, and the snapshot next to it restores."""
    gw = env.gateway().start()
    make_app_db(env.mnt / "a.db", rows=2000, seed=1)
    make_app_db(env.mnt / "b.db", rows=2000, seed=2)
    env.wait()
    gw.stop()
    objs = {s["name"]: env.remote / s["replicas"]["nfs"]["key"] for s in env.ls()}
    elsewhere = tmp_path / "elsewhere.drgw"
    os.rename(objs["a.db"], elsewhere)
    os.symlink(elsewhere, objs["a.db"])
    out = tmp_path / "a.db"
    p = env.client("restore", "a.db", out, cache=env.cache, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr.count("\n") == 1 and \
        ("no snapshot named a.db" in p.stderr or
         "not a regular file" in p.stderr), p.stderr
    assert not out.exists()
    env.client("restore", "b.db", tmp_path / "b.db", cache=env.cache)
    assert (tmp_path / "b.db").read_bytes() == \
        (env.cache / "files" / "b.db").read_bytes()


@pytest.mark.skipif(not (PLUGINS / "faults" / "drgw-faults.so").exists(),
                    reason="built without the faults test plugin (-Dplugins)")
def test_killed_between_rename_and_catalog_commit(env, tmp_path):
    """Issue 15, defect 2, for the local backend, through the daemon: the
    faults:// wrapper SIGKILLs the daemon right after the local plugin
    renamed the object into place.  The next start finds it stored with
    the same bytes and records it, without writing it again."""
    url = f"faults://local://{env.remote}?faults=put@1:kill"
    gw = env.gateway("--streaming", "off",
                     backends=["--backend", f"nfs={url}"]).start()
    make_app_db(env.mnt / "a.db", rows=20000, seed=5)
    gw.proc.wait(timeout=60)
    gw.kill()
    [obj] = [p for p in env.remote.iterdir() if not p.name.startswith(".")]
    before = os.stat(obj)
    assert env.ls()[0]["replicas"]["nfs"]["state"] != "replicated"

    gw = env.gateway("--streaming", "off", name="gateway2").start()
    env.wait()
    assert env.ls()[0]["replicas"]["nfs"]["state"] == "replicated"
    after = os.stat(obj)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    gw.stop()
    out = tmp_path / "a.db"
    env.client("restore", "a.db", out)
    assert out.read_bytes() == (env.cache / "files" / "a.db").read_bytes()
