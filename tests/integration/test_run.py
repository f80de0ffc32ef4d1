# SPDX-License-Identifier: MIT
"""`drgw run` (the backup Job's wrapper), metrics, and `drgw drill`: exit
codes for success, a failed command and a drain timeout; SIGTERM during
replication and a later mount finishing the queue; metrics scraped with
curl and checked by promtool; a drill that finds a corrupted replica."""
import json
import os
import signal
import socket
import subprocess
import time

from conftest import DRGW, make_app_db, run, sqlite, unmount


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drgw_run(env, script, *extra, backends=None, timeout=180, check_rc=None):
    args = [str(DRGW), "run", *map(str, env.common()),
            *(backends or env.backend_args()), "--settle-delay", "0.2s",
            "--retry-min", "0.2s", "--retry-max", "1s", *map(str, extra),
            "--mount", str(env.mnt), "--", "sh", "-c", script]
    env.mnt.mkdir(exist_ok=True)
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    finally:
        unmount(env.mnt)  # only does something if drgw run failed to
    if check_rc is not None:
        assert p.returncode == check_rc, p.stderr
    return p


def backup_script(db, mnt, name):
    return (f"sqlite3 '{db}' \".backup '{mnt}/{name}'\" && "
            f"ls -t {mnt}/*.db | tail -n +8 | xargs -r rm")


def test_run_success_means_replicated(env, tmp_path):
    db = tmp_path / "app.db"
    make_app_db(db, rows=3000)
    for day in range(1, 4):
        p = drgw_run(env, backup_script(db, env.mnt, f"app-{day}.db"), check_rc=0)
        assert "every snapshot of this run is replicated" in p.stderr
        # When drgw run returns 0, the backup is already on the backend.
        assert len(env.objects()) == day
    assert not os.path.ismount(env.mnt)
    assert all(s["replicas"]["nfs"]["state"] == "replicated" for s in env.ls())


def test_run_passes_the_command_status_on(env, tmp_path):
    p = drgw_run(env, f"echo partial > {env.mnt}/half.db; exit 7", check_rc=7)
    # What the failed command did write is still replicated.
    assert len(env.objects()) == 1
    p = drgw_run(env, "kill -KILL $$")
    assert p.returncode == 128 + signal.SIGKILL


def test_run_drain_timeout_exits_3_and_next_run_finishes(env, tmp_path):
    offline = tmp_path / "offline"
    p = drgw_run(env, f"echo data > {env.mnt}/a.db", "--drain-timeout", "1s",
                 backends=env.backend_args(path=offline), check_rc=3)
    assert "replication incomplete" in p.stderr
    status = json.loads(env.drgw("status", "--json").stdout)
    assert status["replicas_pending"] == 1
    offline.mkdir()
    # The next run (the next day's Job) finishes yesterday's queue too.
    drgw_run(env, "true", backends=env.backend_args(path=offline), check_rc=0)
    env.wait(timeout=30)
    assert len(env.objects(offline)) == 1


def test_run_min_backends(env, tmp_path):
    offline = tmp_path / "offline"
    backends = [*env.backend_args(), *env.backend_args("far", offline)]
    drgw_run(env, f"echo x > {env.mnt}/a.db", "--min-backends", "1",
             "--drain-timeout", "3s", backends=backends, check_rc=0)
    drgw_run(env, f"echo y > {env.mnt}/b.db", "--drain-timeout", "1s",
             backends=backends, check_rc=3)


def test_sigterm_during_replication_then_restart(env, tmp_path):
    offline = tmp_path / "offline"
    args = [str(DRGW), "run", *map(str, env.common()),
            *env.backend_args(path=offline), "--settle-delay", "0.2s",
            "--retry-min", "0.2s", "--retry-max", "1s", "--drain-timeout", "2s",
            "--mount", str(env.mnt), "--", "sh", "-c",
            f"echo one > {env.mnt}/one.db; exec sleep 600"]
    env.mnt.mkdir(exist_ok=True)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            p = env.drgw("status", "--json", check=False)
            if p.returncode == 0 and json.loads(p.stdout)["replicas_failing"] >= 1:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        unmount(env.mnt)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "passing SIGTERM to the command" in err
    assert not os.path.ismount(env.mnt)
    assert json.loads(env.drgw("status", "--json").stdout)["replicas_pending"] == 1
    offline.mkdir()
    gw = env.gateway(backends=env.backend_args(path=offline)).start()
    env.wait(timeout=30)
    assert len(env.objects(offline)) == 1
    gw.stop()


def test_metrics_endpoint_and_promtool(env, tmp_path):
    port = free_port()
    scrape = tmp_path / "scrape.txt"
    script = (f"echo x > {env.mnt}/a.db && sleep 1 && "
              f"curl -sf http://127.0.0.1:{port}/healthz && "
              f"curl -sf http://127.0.0.1:{port}/readyz && "
              f"curl -sf -o {scrape} http://127.0.0.1:{port}/metrics")
    p = drgw_run(env, script, "--metrics-listen", f"127.0.0.1:{port}", check_rc=0)
    assert "ok" in p.stdout and "ready" in p.stdout
    text = scrape.read_text()
    assert 'drgw_backend_pending_replicas{backend="nfs"}' in text
    assert "drgw_up 1" in text
    check = subprocess.run(["promtool", "check", "metrics"], input=text,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    # The same text from the command line, for a textfile collector.
    out = env.drgw("status", "--prometheus").stdout
    assert 'drgw_backend_rpo_seconds{backend="nfs"}' in out
    check = subprocess.run(["promtool", "check", "metrics"], input=out,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_json_logs(env, tmp_path):
    p = drgw_run(env, f"echo x > {env.mnt}/a.db", "--log-format", "json", check_rc=0)
    lines = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")]
    assert lines and all({"time", "level", "msg"} <= set(l) for l in lines)
    assert any("replicated a.db" in l["msg"] for l in lines)


def test_drill_ok_then_finds_corruption(env, tmp_path):
    db = tmp_path / "app.db"
    make_app_db(db, rows=20000)
    drgw_run(env, backup_script(db, env.mnt, "app-20260101.db"), check_rc=0)
    # A day of changes: the second backup is an increment of the first.
    sqlite(db, "UPDATE applications SET doc = json_set(doc, '$.day', 2) "
           "WHERE id % 20 = 0")
    drgw_run(env, backup_script(db, env.mnt, "app-20260102.db"), check_rc=0)
    drill_cache = tmp_path / "drill-cache"

    def drill(*extra):
        return env.client("drill", "--check-sql", "SELECT COUNT(*) FROM applications",
                          "--json", *extra, cache=drill_cache, check=False)

    p = drill()
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert len(rows) == 1
    assert rows[0]["ok"] and rows[0]["probe"] == "20000"
    assert rows[0]["snapshot"] == "app-20260102.db"  # the newest
    assert rows[0]["pattern"] == "app-*.db"

    newest = [v for v in env.ls() if v["name"] == "app-20260102.db"][0]
    obj = env.remote / newest["replicas"]["nfs"]["key"]
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x40
    obj.write_bytes(bytes(data))
    p = drill()
    assert p.returncode == 1
    rows = json.loads(p.stdout)
    assert any(not r["ok"] and "failed authentication" in r["issues"]
               for r in rows), rows
    metrics = run("status", "--prometheus", "--cache", drill_cache).stdout
    assert 'drgw_drill_last_success{backend="nfs",pattern="app-*.db"} 0' in metrics

    # Human output names the problem too.
    p = env.client("drill", cache=drill_cache, check=False)
    assert p.returncode == 1 and "failed authentication" in p.stdout
