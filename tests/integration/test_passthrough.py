# SPDX-License-Identifier: MIT
"""How the gateway mount moves file data (issue 17): FUSE passthrough where
libfuse (>= 3.17) and the kernel offer it, else the kernel's writeback cache,
and which one is in use, from `drgw status` and the log.  With passthrough,
writes no longer reach drgw, so what depended on seeing them is checked
here: a change while the file is encoded (through mmap, which never passes
drgw), one file open several times at once (the kernel allows one backing
file per inode), and a writer that fills the cache disk.

tests/debian13/run runs these and the other mount-level tests in a Debian 13
root, where passthrough must be on (DRGW_EXPECT_IO); on Debian 12 (libfuse
3.14) the same tests check the fallback."""
import filecmp
import json
import mmap
import os
import subprocess
import time

import pytest

from conftest import DRGW, EXPECT_IO, make_app_db, passthrough_built
from test_reliability import fill, small_fs  # noqa: F401 (fixture)


def mount_io(env, cache=None):
    return json.loads(env.drgw("status", "--json", cache=cache).stdout)["mount"]


def log_io(gw):
    line = [ln for ln in gw.log().splitlines() if "gateway I/O:" in ln][-1]
    return line.split("gateway I/O: ")[1].split()[0]


def expected_io():
    """What a default mount must use here, or None if either is fine (a
    passthrough build on a kernel that may lack it, outside CI)."""
    if EXPECT_IO:
        return EXPECT_IO
    return None if passthrough_built() else "writeback-cache"


def need_passthrough():
    if not passthrough_built():
        pytest.skip("built without passthrough (libfuse < 3.17); "
                    "tests/debian13/run runs this with libfuse 3.17")


def test_status_and_log_name_the_io_path(env):
    gw = env.gateway().start()
    m = mount_io(env)
    assert m["io"] == log_io(gw)
    if expected_io():
        assert m["io"] == expected_io(), m
    if m["io"] == "passthrough":
        assert f"straight to the files in {env.cache}/files" in m["detail"], m
    if not passthrough_built():
        assert "built with libfuse 3." in m["detail"], m
    human = env.drgw("status").stdout
    assert f"mount I/O:        {m['io']} (" in human, human
    (env.mnt / "a.db").write_bytes(b"x" * 100000)
    env.wait()
    gw.stop()
    # No daemon, no mount: nothing stale is shown.
    assert mount_io(env) is None
    assert "mount I/O" not in env.drgw("status").stdout


def works_on_the_writeback_cache(env, tmp_path, gw, why):
    """gw says it fell back to the writeback cache, and why, and backs up."""
    m = mount_io(env)
    assert m["io"] == "writeback-cache", m
    assert why in m["detail"], m
    assert "gateway I/O: writeback-cache" in gw.log()
    make_app_db(env.mnt / "app.db", rows=3000)
    env.wait()
    gw.stop()
    out = tmp_path / "out.db"
    env.client("restore", "app.db", out)
    assert filecmp.cmp(out, env.cache / "files" / "app.db", shallow=False)


def test_passthrough_off_falls_back_to_the_writeback_cache(env, tmp_path):
    gw = env.gateway("--passthrough", "off").start()
    works_on_the_writeback_cache(env, tmp_path, gw,
                                 "turned off (passthrough = off)")


def test_a_kernel_without_passthrough_falls_back_to_the_writeback_cache(
        env, tmp_path, monkeypatch):
    """libfuse 3.17 on a kernel that does not offer passthrough (a test
    hook hides the kernel's flag): the mount says why and works as it
    does with libfuse 3.14."""
    need_passthrough()
    monkeypatch.setenv("DRGW_TEST_KERNEL_WITHOUT_PASSTHROUGH", "1")
    gw = env.gateway(expect_io=None).start()
    works_on_the_writeback_cache(env, tmp_path, gw,
                                 "the kernel does not offer it")


def test_in_a_user_namespace_falls_back_to_the_writeback_cache(env, tmp_path):
    """Root of a user namespace (a rootless container) may mount FUSE but
    may not hand the kernel backing files: the daemon says so and works
    as before.  Its mount lives in its own mount namespace, where nsenter
    takes the writer."""
    src = tmp_path / "src.db"
    make_app_db(src, rows=3000)
    log = tmp_path / "userns.log"
    env.mnt.mkdir()
    args = [*env.common(), *env.backend_args(), "--settle-delay", "0.2s"]
    with open(log, "w") as logf:
        proc = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--mount", str(DRGW),
             "mount", "-f", *map(str, args), str(env.mnt)],
            stdout=logf, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while "gateway I/O:" not in log.read_text():
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.05)
        m = mount_io(env)
        assert m["io"] == "writeback-cache", m
        if passthrough_built():
            assert "user namespace" in m["detail"], m
        subprocess.run(["nsenter", "-t", str(proc.pid), "-U", "-m", "--",
                        "cp", str(src), str(env.mnt / "app.db")], check=True)
        env.wait()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert "everything is replicated" in log.read_text()
    out = tmp_path / "out.db"
    env.client("restore", "app.db", out)
    assert filecmp.cmp(out, src, shallow=False)


def overlay(tmp, name, lower, upper_parent):
    """Mounts an overlay of lower (read-only) and a new upper directory."""
    up, work, mnt = (upper_parent / f"{name}-{x}" for x in ("up", "work", "mnt"))
    for p in (up, work, mnt):
        p.mkdir(parents=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={up},workdir={work}", mnt],
                   check=True)
    return mnt


@pytest.fixture
def overlays(tmp_path):
    """Overlay file systems: one (stacking depth 1, a container without a
    volume for the cache) and one over it (depth 2, deeper than
    passthrough can stack)."""
    lower = tmp_path / "lower"
    lower.mkdir()
    ups = tmp_path / "ups"
    ups.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", ups], check=True)
    one = two = None
    try:
        one = overlay(tmp_path, "one", lower, ups)
        two = overlay(tmp_path, "two", one, ups)
        yield one, two
    finally:
        for m in (two, one, ups):
            if m:
                subprocess.run(["umount", "-l", m])


def test_cache_on_overlayfs_uses_passthrough(env, overlays, tmp_path):
    need_passthrough()
    one, _ = overlays
    gw = env.gateway(cache=one / "cache", expect_io=None).start()
    m = mount_io(env, cache=one / "cache")
    assert m["io"] == (expected_io() or "passthrough"), m
    data = os.urandom(1 << 20)
    (env.mnt / "a.db").write_bytes(data)
    assert (env.mnt / "a.db").read_bytes() == data
    env.drgw("wait", "--timeout", "60s", cache=one / "cache")
    gw.stop()
    env.client("restore", "a.db", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data


def test_a_backing_file_the_kernel_refuses_falls_back_to_write_through(
        env, overlays, tmp_path):
    """On overlay over overlay the kernel refuses the first backing file
    (stacked too deep) after passthrough was agreed on: the mount goes on
    with data through drgw, and says so."""
    need_passthrough()
    _, two = overlays
    cache = two / "cache"
    gw = env.gateway(cache=cache, expect_io=None).start()
    data = os.urandom(1 << 20)
    (env.mnt / "a.db").write_bytes(data)
    assert (env.mnt / "a.db").read_bytes() == data
    m = mount_io(env, cache=cache)
    if EXPECT_IO == "passthrough" or "gateway I/O: passthrough" in gw.log():
        assert m["io"] == "write-through", m
        assert "the kernel refused the first backing file" in m["detail"], m
        assert "level=warning" in gw.log()
    make_app_db(env.mnt / "app.db", rows=2000)
    env.drgw("wait", "--timeout", "60s", cache=cache)
    gw.stop()
    env.client("restore", "a.db", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    env.client("restore", "app.db", tmp_path / "app.db")
    assert filecmp.cmp(tmp_path / "app.db", cache / "files" / "app.db",
                       shallow=False)


def test_one_file_open_several_times_at_once(env, tmp_path):
    """Writers, readers, a second name (hard link) and a mapping of one
    file, all open together: every open succeeds and all see one file."""
    gw = env.gateway().start()
    path, link = env.mnt / "shared.db", env.mnt / "link.db"
    want = b"MMAP" + b"a" * 4092 + b"b" * 4096
    w = open(path, "w+b")
    w.write(b"a" * 8192)
    w.flush()
    os.link(path, link)
    r = open(path, "rb")
    w2 = open(path, "r+b")
    m = mmap.mmap(w2.fileno(), 8192)
    m[0:4] = b"MMAP"
    m.flush()
    w2.seek(4096)
    w2.write(b"b" * 4096)
    w2.flush()
    assert r.read() == want
    # The other name is another inode to FUSE, the same file below.
    lw, lr = open(link, "r+b"), open(link, "rb")
    m.close()
    for f in (w, r, w2, lw, lr):
        f.close()
    env.wait()
    gw.stop()
    out = tmp_path / "out"
    env.client("restore", "shared.db", out)
    assert out.read_bytes() == want


def test_change_in_place_is_a_new_version(env, tmp_path):
    """Opened for writing without truncation and changed in place, as
    SQLite changes a database: with passthrough drgw sees the open and the
    close only, and that must be enough for a new version."""
    gw = env.gateway().start()
    path = env.mnt / "app.db"
    path.write_bytes(b"a" * 100000)
    env.wait()
    with open(path, "r+b") as f:
        f.seek(50000)
        f.write(b"changed in place")
    env.wait()
    gw.stop()
    versions = [v["version"] for v in env.ls("--versions")]
    assert len(versions) == 2, versions
    env.client("restore", "app.db", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == \
        b"a" * 50000 + b"changed in place" + b"a" * 49984


def test_file_changed_while_being_encoded_and_held_open_is_resealed(env, tmp_path):
    """A writer opens the file while the encoder reads it, changes it in
    place through a mapping (which never passes drgw, nor, with
    passthrough, does write()) and keeps it open past the end of the
    encode: the half-read object must be discarded, not shipped."""
    gw = env.gateway("--compression-level", "19", "--encode-threads", "1").start()
    path = env.mnt / "moving.db"
    make_app_db(tmp_path / "v1.db", rows=80000)
    v1 = (tmp_path / "v1.db").read_bytes()
    mark = len(gw.log())
    subprocess.run(["cp", tmp_path / "v1.db", path], check=True)
    gw.wait_log(r"sealed moving\.db", start=mark)
    time.sleep(0.2)
    mark = len(gw.log())
    with open(path, "r+b") as f:
        m = mmap.mmap(f.fileno(), 0)
        assert "encoded moving.db" not in gw.log()[mark:], "too late to test"
        m[4096:4112] = b"changed via mmap"
        m.flush()
        gw.wait_log(r"changed while it was being encoded|encoded moving\.db",
                    start=mark)
        m.close()
    final = path.read_bytes()
    env.wait()
    assert "changed while it was being encoded" in gw.log()[mark:]
    gw.stop()
    for v in env.ls("--versions"):
        out = tmp_path / v["version"]
        env.client("restore", "--version", v["version"], "moving.db", out)
        assert out.read_bytes() in (v1, final), f"{v['version']} is torn"
    assert out.read_bytes() == final


def test_writer_that_fills_the_cache_disk_is_not_a_good_backup(env, small_fs):
    """A writer that fills the disk gets ENOSPC (with passthrough from the
    cache disk itself, at write()); drgw cannot see that write fail, but
    the disk is full when the writer closes: the version is marked."""
    cache = small_fs / "cache"
    gw = env.gateway("--write-through-below", "0", "--drain-timeout", "5s",
                     cache=cache, settle="0.5s").start()
    fill(small_fs / "filler")
    size = os.stat(small_fs / "filler").st_size
    os.truncate(small_fs / "filler", size - (3 << 20))
    p = subprocess.run(["dd", "if=/dev/urandom", f"of={env.mnt}/full.bin",
                        "bs=1M", "count=8"], capture_output=True, text=True)
    assert p.returncode != 0 and "No space left" in p.stderr, p.stderr
    os.unlink(small_fs / "filler")
    gw.wait_log(r"sealed full\.bin .*not a good backup")
    gw.stop()
    [v] = json.loads(env.drgw("ls", "--json", "--versions", cache=cache).stdout)
    assert v["problem"].startswith("incomplete:"), v
    assert "incomplete" in env.drgw("ls", cache=cache).stdout
