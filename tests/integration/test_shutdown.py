# SPDX-License-Identifier: MIT
"""SIGTERM and unmount stop gracefully: closed files are sealed without the
settle delay, pending uploads get the drain timeout, and what is left
resumes on the next mount with the same cache."""
import signal

from conftest import is_mounted, make_app_db


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
