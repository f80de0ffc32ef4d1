# SPDX-License-Identifier: MIT
"""Bad input gets one clear line that says what is wrong and what to do, and
loses nothing: wrong key, missing key file, key file readable by others,
corrupt or truncated remote objects, unreachable backend, bad backend URL,
full cache disk, a second daemon on the same cache directory.  No read ever
returns wrong or silently short data."""
import errno
import os
import shutil
import subprocess

import pytest

from conftest import DRGW, PLUGINS, is_mounted, make_app_db, run, unmount


def one_line_error(p, *fragments):
    """stderr holds exactly one line, and it mentions every fragment."""
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode != 0
    assert len(lines) == 1, p.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def mount_fails(env, *args):
    env.mnt.mkdir(exist_ok=True)
    p = run("mount", "-f", *args, env.mnt, check=False, timeout=60)
    assert not is_mounted(env.mnt)
    return p


def replicate_one(env, name="a.db", rows=3000):
    gw = env.gateway().start()
    make_app_db(env.mnt / name, rows=rows)
    env.wait()
    gw.stop()
    return env.remote / env.objects()[0]


def test_missing_key_file(env):
    p = mount_fails(env, "--cache", env.cache, "--key-file", env.tmp / "nokey",
                    *env.backend_args(), "--plugin-dir", PLUGINS)
    one_line_error(p, "nokey does not exist", "drgw keygen")
    p = mount_fails(env, "--cache", env.cache, *env.backend_args(),
                    "--plugin-dir", PLUGINS)
    one_line_error(p, "no key", "--key-file")


def test_key_file_readable_by_others(env):
    os.chmod(env.key, 0o644)
    p = mount_fails(env, *env.common(), *env.backend_args())
    one_line_error(p, "accessible by group or others", "chmod 600")


def test_keygen_refuses_to_overwrite(env):
    before = env.key.read_bytes()
    p = run("keygen", env.key, check=False)
    one_line_error(p, "already exists")
    assert env.key.read_bytes() == before
    assert os.stat(env.key).st_mode & 0o777 == 0o600


def test_garbage_key_file(env):
    bad = env.tmp / "bad.key"
    bad.write_text("not a key\n")
    os.chmod(bad, 0o600)
    p = mount_fails(env, "--cache", env.cache, "--key-file", bad,
                    *env.backend_args(), "--plugin-dir", PLUGINS)
    one_line_error(p, "does not hold a drgw key")


def test_wrong_key(env):
    replicate_one(env)
    other = env.tmp / "other.key"
    run("keygen", other)
    p = mount_fails(env, "--restore", *env.common(env.tmp / "c2", other),
                    *env.backend_args())
    one_line_error(p, "wrong key file")
    p = env.client("restore", "a.db", env.tmp / "x.db", key=other, check=False)
    assert "wrong key file" in p.stderr
    assert not (env.tmp / "x.db").exists()


@pytest.mark.parametrize("url,fragment", [
    ("relative/path", "expected scheme://"),
    ("local://relative", "absolute path"),
    ("nosuch://bucket", "no plugin for nosuch:// URLs"),
    ("local:///tmp?fsync=no", "no option 'fsync'"),
])
def test_bad_backend_url(env, url, fragment):
    p = mount_fails(env, *env.common(), "--backend", f"x={url}")
    one_line_error(p, fragment)


def test_bad_config_file(env):
    conf = env.tmp / "drgw.conf"
    conf.write_text("[drgw]\nsettle-delay = whenever\n")
    p = mount_fails(env, "--config", conf, *env.common(), *env.backend_args())
    one_line_error(p, f"{conf}:2", "settle-delay")


def test_second_daemon_on_same_cache(env):
    gw = env.gateway().start()
    other_mnt = env.tmp / "mnt2"
    other_mnt.mkdir()
    p = run("mount", "-f", *env.common(), *env.backend_args(), other_mnt,
            check=False, timeout=30)
    one_line_error(p, "in use by another drgw", f"pid {gw.proc.pid}")
    assert not is_mounted(other_mnt)
    gw.stop()


def test_unreachable_backend_then_recovers(env, tmp_path):
    missing = tmp_path / "not-mounted-yet"
    gw = env.gateway(backends=env.backend_args(path=missing)).start()
    (env.mnt / "a.db").write_text("important\n")
    # Writing never blocks on the backend; the failure is visible.
    p = env.drgw("wait", "--timeout", "2s", check=False)
    assert p.returncode == 1 and "timed out" in p.stderr
    snap = env.ls()[0]
    rep = snap["replicas"]["nfs"]
    assert rep["state"] == "failing"
    assert "does not exist; create it or mount the volume" in rep["last_error"]
    human = env.drgw("ls").stdout
    assert "failing" in human and "next retry" in human
    status = env.drgw("status").stdout
    assert "failing" in status
    missing.mkdir()
    env.wait(timeout=30)
    assert env.objects(missing) == [snap["version"] + ".drgw"]
    gw.stop()


def test_corrupt_remote_object_gives_eio(env):
    obj = replicate_one(env, rows=40000)
    data = bytearray(obj.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside a chunk
    obj.write_bytes(bytes(data))
    view = env.restore_view().start()
    with pytest.raises(OSError) as e:
        (view.mountpoint / "a.db").read_bytes()
    assert e.value.errno == errno.EIO
    assert "failed authentication" in view.log()
    view.stop()
    p = env.client("verify", check=False)
    assert p.returncode == 1
    assert "failed authentication" in p.stdout
    p = env.client("restore", "a.db", env.tmp / "out.db", check=False)
    assert p.returncode == 1 and "failed authentication" in p.stderr
    assert not (env.tmp / "out.db").exists()
    assert not list(env.tmp.glob("out.db*")), "partial restore left behind"


def test_truncated_remote_object_is_never_served_short(env):
    gw = env.gateway().start()
    make_app_db(env.mnt / "a.db", rows=40000)
    make_app_db(env.mnt / "b.db", rows=100)
    env.wait()
    gw.stop()
    obj = env.remote / (env.ls(
        "a.db")[0]["version"] + ".drgw")
    with open(obj, "r+b") as f:
        f.truncate(obj.stat().st_size // 2)
    p = env.client("verify", check=False)
    assert p.returncode == 1
    assert "truncated" in p.stdout and "1 problems" in p.stdout
    # A truncated object is unreadable: the restore view reports it and
    # hides it rather than serving a short file.
    view = env.restore_view().start()
    assert sorted(os.listdir(view.mountpoint)) == ["b.db"]
    assert "truncated" in view.log()
    view.stop()
    # With nothing readable at all, the restore mount refuses to start.
    obj_b = env.remote / (env.ls("b.db")[0]["version"] + ".drgw")
    obj_b.write_bytes(obj_b.read_bytes()[:100])
    p = mount_fails(env, "--restore", *env.common(env.tmp / "c3"),
                    *env.backend_args())
    one_line_error(p, "none of the 2 objects", "truncated")


def test_chunk_truncated_under_an_open_file_gives_eio(env):
    obj = replicate_one(env, rows=40000)
    view = env.restore_view("--readahead", "0").start()
    with open(view.mountpoint / "a.db", "rb") as f:
        head = f.read(4096)
        assert head.startswith(b"SQLite format 3")
        # The object shrinks after it was opened (tail still cached).
        data = obj.read_bytes()
        obj.write_bytes(data[:200000] + data[-64 << 10:])
        with pytest.raises(OSError) as e:
            f.seek(4 << 20)
            f.read(1 << 20)
        assert e.value.errno == errno.EIO
    view.stop()


def test_hostile_object_names_are_ignored(env):
    replicate_one(env)
    (env.remote / "..%2f..%2fetc%2fpasswd.drgw").write_bytes(b"x" * 300)
    (env.remote / "notes.txt").write_text("operator notes\n")
    (env.remote / "sub").mkdir()
    (env.remote / "sub" / "20260101T000000Z-deadbeef.drgw").write_bytes(os.urandom(500))
    view = env.restore_view().start()
    assert sorted(os.listdir(view.mountpoint)) == ["a.db"]
    view.stop()


def test_full_cache_disk(env, tmp_path):
    cache = tmp_path / "small-cache"
    cache.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", cache], check=True)
    try:
        gw = env.gateway("--retry-max", "0.5s", cache=cache).start()
        # Fits in the working set, but its encoded copy does not fit too.
        (env.mnt / "big.bin").write_bytes(os.urandom(30 << 20))
        gw.wait_log(r"cache disk full")
        assert "cache disk full" in env.drgw("ls", "--json", cache=cache).stdout
        # The writer of a file that does not fit gets ENOSPC, not a short file.
        with pytest.raises(OSError) as e:
            (env.mnt / "huge.bin").write_bytes(os.urandom(40 << 20))
        assert e.value.errno == errno.ENOSPC
        os.unlink(env.mnt / "huge.bin")
        # Make room: the retry encodes and replicates it.
        subprocess.run(["mount", "-o", "remount,size=128m", cache], check=True)
        env.drgw("wait", "--timeout", "60s", cache=cache, timeout=90)
        assert len(env.objects()) == 1
        gw.stop()
    finally:
        for d in env.daemons:
            d.cleanup()
        subprocess.run(["umount", "-l", cache])


def test_dead_mount_point_is_explained(env):
    gw = env.gateway().start()
    gw.proc.kill()
    gw.proc.wait()
    gw.proc = None
    p = run("mount", "-f", *env.common(), *env.backend_args(), env.mnt,
            check=False, timeout=30)
    one_line_error(p, "already a drgw mount", "fusermount3 -u")
    unmount(env.mnt)
    # Once unmounted, the same cache mounts again.
    gw.start()
    gw.stop()
