# SPDX-License-Identifier: MIT
"""Uploads that follow the encoder: the object goes up while it is being
compressed and encrypted, only ever appears complete under its key, and a
change of the file or a crash mid-stream leaves nothing half done on the
backend.  Compression level 19 makes the encoder slow enough to watch."""
import filecmp
import shutil
import time

from conftest import make_app_db, sqlite

SLOW = ("--compression-level", "19", "--encode-threads", "1")


def part_files(env):
    """Temp files of snapshot uploads in progress on the local backend (an
    index record may be written at any time after uploads)."""
    return [p for p in env.remote.rglob("*.part")
            if p.is_file() and p.parent.name != "index"]


def wait_streaming(env, gw, name, mark):
    """Waits until the upload of name has bytes on the backend while the
    encoder is still at it; returns the temp file's size then."""
    deadline = time.time() + 60
    while time.time() < deadline:
        sizes = [p.stat().st_size for p in part_files(env)]
        if sizes and max(sizes) > 0 and \
                f"encoded {name}" not in gw.log()[mark:]:
            return max(sizes)
        assert f"encoded {name}" not in gw.log()[mark:], \
            "the encoder finished before any byte went up"
        time.sleep(0.01)
    raise AssertionError("no upload followed the encoder:\n" + gw.log()[-2000:])


def test_upload_follows_the_encoder(env, tmp_path):
    gw = env.gateway(*SLOW).start()
    make_app_db(tmp_path / "app.db", rows=80000)
    mark = len(gw.log())
    shutil.copy(tmp_path / "app.db", env.mnt / "app.db")
    wait_streaming(env, gw, "app.db", mark)
    assert env.objects() == [], "the object was visible before it was complete"
    env.wait()
    assert "streamed while encoding" in gw.log()
    assert part_files(env) == []
    [snap] = env.ls()
    assert snap["replicas"]["nfs"]["state"] == "replicated"
    gw.stop()
    out = tmp_path / "restored.db"
    env.client("restore", "app.db", out)
    assert filecmp.cmp(out, tmp_path / "app.db", shallow=False)
    assert sqlite(out, "PRAGMA integrity_check;") == "ok"


def test_streaming_off_uploads_after_the_encode(env, tmp_path):
    gw = env.gateway("--streaming", "off").start()
    make_app_db(env.mnt / "app.db", rows=2000)
    env.wait()
    log = gw.log()
    assert "replicated app.db" in log and "streamed while encoding" not in log
    gw.stop()


def test_file_changed_mid_stream_leaves_no_torn_object(env, tmp_path):
    """The writer comes back while the object streams: that upload is
    abandoned and removed, and only the final content is ever stored."""
    gw = env.gateway(*SLOW).start()
    make_app_db(tmp_path / "v1.db", rows=80000)
    path = env.mnt / "moving.db"
    mark = len(gw.log())
    shutil.copy(tmp_path / "v1.db", path)
    wait_streaming(env, gw, "moving.db", mark)
    with open(path, "r+b") as f:
        f.seek(0, 2)
        f.write(b"appended while streaming")
    env.wait(timeout=180)
    assert "changed while it was being encoded" in gw.log()
    assert part_files(env) == []
    versions = env.ls("--versions")
    assert [v["size"] for v in versions] == [path.stat().st_size]
    assert len(env.objects()) == 1
    gw.stop()
    out = tmp_path / "restored.db"
    env.client("restore", "moving.db", out)
    assert out.read_bytes() == (tmp_path / "v1.db").read_bytes() + \
        b"appended while streaming"


def test_sigkill_mid_stream_recovers(env, tmp_path):
    """A crash while an object streams: the next start removes the partial
    upload, encodes the file again and stores it whole."""
    gw = env.gateway(*SLOW).start()
    make_app_db(tmp_path / "app.db", rows=80000)
    mark = len(gw.log())
    shutil.copy(tmp_path / "app.db", env.mnt / "app.db")
    wait_streaming(env, gw, "app.db", mark)
    gw.kill()
    assert part_files(env), "the kill came too late to test anything"
    gw = env.gateway(name="gateway2").start()
    env.wait(timeout=180)
    assert "discarded an upload to nfs that a stop interrupted" in gw.log()
    assert part_files(env) == []
    assert len(env.objects()) == 1
    gw.stop()
    out = tmp_path / "restored.db"
    env.client("restore", "app.db", out)
    assert filecmp.cmp(out, tmp_path / "app.db", shallow=False)
