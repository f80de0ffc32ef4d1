# SPDX-License-Identifier: MIT
"""SIGTERM and unmount stop gracefully: closed files are sealed without the
settle delay, pending uploads get the drain timeout, and what is left
resumes on the next mount with the same cache."""
import os
import signal
import subprocess
from pathlib import Path

from conftest import is_mounted, make_app_db, unmount


def test_sigterm_seals_and_drains(env):
    # A settle delay far longer than the test: only the shutdown seals.
    gw = env.gateway(settle="1h").start()
    make_app_db(env.mnt / "last.db", rows=20000)
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(timeout=60) == 0
    gw.proc = None
    assert not is_mounted(env.mnt)
    assert "everything is replicated" in gw.log()
    assert len(env.objects()) == 1
    assert env.ls()[0]["replicas"]["nfs"]["state"] == "replicated"


def test_drain_timeout_leaves_queue_for_next_mount(env, tmp_path):
    offline = tmp_path / "offline"
    gw = env.gateway("--drain-timeout", "1s",
                     backends=env.backend_args(path=offline)).start()
    (env.mnt / "a.db").write_text("queued\n")
    gw.wait_log(r"cannot replicate a\.db")
    assert gw.stop() == 0
    assert "uploads still pending" in gw.log()
    p = env.drgw("wait", "--timeout", "1s", check=False)
    assert p.returncode == 1 and "no drgw daemon runs" in p.stderr
    status = env.drgw("status").stdout
    assert "not running" in status and "1 replicas" in status

    offline.mkdir()
    gw = env.gateway(name="again", backends=env.backend_args(path=offline)).start()
    env.wait()
    assert len(env.objects(offline)) == 1
    gw.stop()


def abort_connection(mountpoint):
    """What `echo 1 > .../abort` does to a hung FUSE mount."""
    ctl = Path("/sys/fs/fuse/connections")
    if not os.path.ismount(ctl):
        subprocess.run(["mount", "-t", "fusectl", "fusectl", str(ctl)], check=True)
    (ctl / str(os.minor(os.stat(mountpoint).st_dev)) / "abort").write_text("1")


def test_handles_lost_with_the_connection_are_released(env):
    """When the connection ends with files still open (an aborted mount; or
    an unmount that overtakes the kernel's background RELEASE of a file just
    closed), those files are sealed and replicated like closed ones."""
    gw = env.gateway(settle="1h").start()
    path = env.mnt / "open.db"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"written before the connection went away\n")
        os.fsync(fd)
        abort_connection(env.mnt)
        gw.wait_log(r"released 1 file handles the kernel did not close")
    finally:
        try:
            os.close(fd)
        except OSError:
            pass  # ENOTCONN: the connection is gone
    assert gw.proc.wait(timeout=60) == 0
    gw.proc = None
    unmount(env.mnt)
    assert "everything is replicated" in gw.log()
    snap = env.ls()[0]
    assert snap["name"] == "open.db" and snap["replicas"]["nfs"]["state"] == "replicated"
    out = env.tmp / "restored.db"
    env.client("restore", "open.db", out)
    assert out.read_bytes() == b"written before the connection went away\n"
