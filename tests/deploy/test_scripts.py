# SPDX-License-Identifier: MIT
"""The scripts the pods run, taken from the rendered drgw-scripts ConfigMap,
run against the real drgw, with the cluster made of directories (conftest
World): the app's volume holds a live SQLite database in WAL mode, the
backends are two local directories.

Nine daily backups (the date is simulated, the runs are real) through
backup.sh and `drgw run`: seven stay local, all nine are on both backends.
Then restore.sh on an empty cache puts the newest back, drill.sh passes, and
fails once one replica is corrupted.  Metrics go to a Pushgateway stand-in.

The config is the shipped drgw.conf and each script gets the key settings
of its CronJob (conftest World): write-only keys, so the backups are made
with the recipients alone and only restore, drill and prune get the
identity; the symmetric variant and the migration from it have a test of
their own.
"""
import hashlib
import http.server
import json
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import (DRGW, World, check_sanitizers, is_mounted, kubelet_volume,
                      parse_conf, require_drgw, unmount)

DAYS = 9
KEEP = 7
DAY0 = 1767225600  # 2026-01-01T00:00:00Z


def test_scripts_are_posix_sh(scripts):
    for script in sorted(scripts.glob("*.sh")):
        text = script.read_text()
        assert text.startswith("#!/bin/sh\n"), script.name
        assert "\nset -eu\n" in text, script.name
        p = subprocess.run(["dash", "-n", str(script)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    sc = subprocess.run(["shellcheck", "--version"], capture_output=True)
    if sc.returncode != 0:
        pytest.fail("shellcheck not installed: run scripts/install-deps")
    p = subprocess.run(["shellcheck", "-s", "sh", "-x",
                        *sorted(s.name for s in scripts.glob("*.sh"))],
                       capture_output=True, text=True, cwd=scripts)
    assert p.returncode == 0, p.stdout + p.stderr


class Pushgateway:
    """Records the pushes of push-metrics.sh, answers like a Pushgateway."""

    def __init__(self):
        self.pushes = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.pushes.append((self.path, body.decode()))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def take(self):
        out, self.pushes = self.pushes, []
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def samples(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        assert m, f"bad sample line {line!r}"
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def check_metrics(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(db):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return c.execute("SELECT COUNT(*) FROM applications").fetchone()[0]


class Backups:
    """The module's world after DAYS daily backups."""

    def __init__(self, tmp, scripts, rendered_base, symmetric=False):
        self.world = World(tmp, scripts, rendered_base, symmetric)
        self.pushgw = Pushgateway()
        self.app = None
        self.shim = tmp / "shim"
        self.shim.mkdir()
        # The simulated clock of the backup command's `date`.
        (self.shim / "date").write_text(
            '#!/bin/sh\nexec /bin/date -u -d "@$FAKE_NOW" "$@"\n')
        os.chmod(self.shim / "date", 0o755)
        self.names = []
        self.runs = []

    def open_app(self):
        """The application: a database in WAL mode, a connection kept open."""
        self.app = sqlite3.connect(self.world.data / "app.db", isolation_level=None)
        self.app.execute("PRAGMA journal_mode=WAL")
        self.app.execute("CREATE TABLE applications (id INTEGER PRIMARY KEY, name TEXT)")

    def backup(self, day, **extra):
        now = DAY0 + day * 86400 + 2 * 3600 + 17 * 60
        env = {"PATH": f"{self.shim}:{os.environ['PATH']}", "FAKE_NOW": now, **extra}
        p = self.world.sh("backup.sh", **env)
        self.runs.append(p)
        name = time.strftime("app-%Y%m%d-%H%M%S.db", time.gmtime(now))
        return p, name

    def local(self):
        return sorted(p.name for p in (self.world.cache / "files").glob("app-*.db"))

    def remote(self):
        w = self.world
        p = subprocess.run([str(DRGW), "ls", "--remote", "--json", "--config",
                            str(w.config), "--cache", str(w.tmp / "ls-cache"),
                            *w.decrypt_args()],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return {e["name"]: e for e in json.loads(p.stdout)}

    def close(self):
        if self.app:
            self.app.close()
        self.pushgw.close()
        self.world.cleanup()


@pytest.fixture(scope="module")
def backups(tmp_path_factory, scripts, rendered):
    require_drgw()
    b = Backups(tmp_path_factory.mktemp("world"), scripts, rendered["base"])
    try:
        b.open_app()
        for day in range(1, DAYS + 1):
            b.app.execute("INSERT INTO applications (name) VALUES (?)", (f"day {day}",))
            extra = {}
            if day == DAYS:
                # The last run as in the CronJob: metrics served while it
                # runs, and pushed at the end.
                extra = {"DRGW_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
                         "DRGW_PUSHGATEWAY_URL": b.pushgw.url,
                         "POD_NAMESPACE": "testns"}
            p, name = b.backup(day, **extra)
            assert p.returncode == 0, f"day {day}: exit {p.returncode}\n{p.stderr[-4000:]}"
            assert "backup: written and replicated" in p.stderr
            assert not is_mounted(b.world.backup), "drgw run unmounts"
            b.names.append(name)
            assert b.local() == b.names[-KEEP:], f"day {day}: local retention"
        yield b
    finally:
        b.close()


def test_backup_keeps_seven_locally_and_replicates_all(backups):
    assert len(backups.names) == DAYS
    assert backups.local() == backups.names[-KEEP:]
    remote = backups.remote()
    assert sorted(remote) == backups.names
    for name, entry in remote.items():
        assert set(entry["backends"]) == {"primary", "second"}, name
    # The newest local copy is what was replicated.
    newest = backups.world.cache / "files" / backups.names[-1]
    assert remote[backups.names[-1]]["sha256"] == sha256(newest)
    assert rows(newest) == DAYS, "the backup has the rows still in the WAL"


def test_backup_pushes_its_metrics(backups):
    pushes = backups.pushgw.take()
    assert [path for path, _ in pushes] == \
        ["/metrics/job/drgw/namespace/testns/instance/backup"]
    body = pushes[0][1]
    check_metrics(body)
    s = samples(body)
    for backend in ("primary", "second"):
        lab = frozenset({("backend", backend)})
        assert s[("drgw_backend_up", lab)] == 1
        assert s[("drgw_backend_pending_replicas", lab)] == 0
        assert 0 <= s[("drgw_backend_rpo_seconds", lab)] < 3600
    # .backup of a live WAL database: checked at ingest, and good.
    assert s[("drgw_sqlite_check_newest_ok", frozenset({("pattern", "app-*-*.db")}))] == 1
    assert s[("drgw_sqlite_check_versions", frozenset({("verdict", "ok")}))] == DAYS
    assert not [k for k in s if k[0].startswith("drgw_drill_")]


def test_restore_newest_into_place(backups):
    w = backups.world
    newest = w.cache / "files" / backups.names[-1]
    # The application is stopped (runbook); its last WAL is stale now.
    backups.app.close()
    backups.app = None
    db = w.data / "app.db"
    os.chmod(db, 0o640)
    before = sha256(db)
    (w.data / "app.db-wal").write_bytes(b"stale wal of the lost database")
    assert not (w.tmp / "restore-cache").exists(), "an empty cache"
    p = w.sh("restore.sh")
    assert p.returncode == 0, p.stderr[-4000:]
    assert not is_mounted(w.restore), "the restore view is unmounted"
    assert sha256(db) == sha256(newest)
    assert not (w.data / "app.db-wal").exists()
    assert (w.data / "app.db.pre-restore-wal").read_bytes() == \
        b"stale wal of the lost database"
    assert sha256(w.data / "app.db.pre-restore") == before
    assert oct(db.stat().st_mode & 0o777) == oct(0o640), "the old database's mode"
    out = subprocess.run(["sqlite3", str(db), "PRAGMA integrity_check;"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "ok"
    assert rows(db) == DAYS


def test_restore_a_named_snapshot_from_an_empty_world(backups, tmp_path):
    """A new cluster: an empty data volume, a new cache; the snapshot of day
    1, which is only on the backends any more."""
    w = backups.world
    data = tmp_path / "new-data"
    data.mkdir()
    first = backups.names[0]
    assert first not in backups.local()
    p = w.sh("restore.sh", DATA_DIR=data, RESTORE_SNAPSHOT=first,
             RESTORE_CACHE=tmp_path / "cache", RESTORE_DIR=tmp_path / "view")
    try:
        assert p.returncode == 0, p.stderr[-4000:]
        assert rows(data / "app.db") == 1
        assert oct((data / "app.db").stat().st_mode & 0o777) == oct(0o644)
        assert not (data / "app.db.pre-restore").exists()
    finally:
        unmount(tmp_path / "view")
    assert not is_mounted(tmp_path / "view")


def test_restore_of_nothing_fails_cleanly(backups, tmp_path):
    w = backups.world
    p = w.sh("restore.sh", DATA_DIR=tmp_path, RESTORE_SNAPSHOT="app-19990101-000000.db",
             RESTORE_CACHE=tmp_path / "cache", RESTORE_DIR=tmp_path / "view")
    try:
        assert p.returncode == 1
        assert "no snapshot app-19990101-000000.db" in p.stderr
        assert not (tmp_path / "app.db").exists()
    finally:
        unmount(tmp_path / "view")
    assert not is_mounted(tmp_path / "view")


def test_drill_passes_then_catches_a_corrupt_replica(backups, tmp_path):
    w = backups.world
    env = {"DRGW_PUSHGATEWAY_URL": backups.pushgw.url, "POD_NAMESPACE": "testns"}
    backups.pushgw.take()

    # As in the pod: the scratch space under the drill's cache volume.
    p = w.sh("drill.sh", DRILL_CACHE=tmp_path / "drill-ok",
             TMPDIR=tmp_path / "drill-ok" / "tmp", **env)
    assert p.returncode == 0, p.stdout + p.stderr[-4000:]
    ((path, body),) = backups.pushgw.take()
    assert path == "/metrics/job/drgw/namespace/testns/instance/drill"
    check_metrics(body)
    s = samples(body)
    assert {k[0] for k in s} <= {"drgw_drill_last_success", "drgw_drill_restore_seconds",
                                 "drgw_drill_last_run_timestamp_seconds"}
    ok = {dict(k[1])["backend"]: v for k, v in s.items()
          if k[0] == "drgw_drill_last_success"}
    assert ok == {"primary": 1, "second": 1}

    # Flip bytes in the middle of the newest snapshot's object on "second".
    remote = backups.remote()
    obj_name = remote[backups.names[-1]]["backends"]["second"]
    (obj,) = [o for o in w.objects("second") if o.name == obj_name]
    original = obj.read_bytes()
    mid = len(original) // 2
    obj.write_bytes(original[:mid] + bytes(b ^ 0xFF for b in original[mid:mid + 16])
                    + original[mid + 16:])
    try:
        p = w.sh("drill.sh", DRILL_CACHE=tmp_path / "drill-bad",
                 TMPDIR=tmp_path / "drill-bad" / "tmp", **env)
    finally:
        obj.write_bytes(original)
    assert p.returncode == 1, p.stdout + p.stderr[-4000:]
    assert "drill: FAILED" in p.stderr
    ((path, body),) = backups.pushgw.take()
    s = samples(body)
    ok = {dict(k[1])["backend"]: v for k, v in s.items()
          if k[0] == "drgw_drill_last_success"}
    assert ok == {"primary": 1, "second": 0}


def test_backup_sigterm_as_pid_1(backups, tmp_path):
    """The kubelet's SIGTERM reaches PID 1 of the container, the shell: it
    must hand it to drgw run, which stops the backup command, drains and
    unmounts.  Here the shell is PID 1 of a new PID namespace, which, like a
    container's, ignores signals it has no handler for."""
    w = backups.world
    marker = tmp_path / "started"
    shim = tmp_path / "bin"
    shim.mkdir()
    # A backup command that hangs: sqlite3 that never finishes.
    (shim / "sqlite3").write_text(f'#!/bin/sh\ntouch "{marker}"\nexec sleep 300\n')
    os.chmod(shim / "sqlite3", 0o755)
    env = w.env(PATH=f"{shim}:{os.environ['PATH']}")
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", "/bin/sh",
         str(w.scripts / "backup.sh")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "backup command never started"
            time.sleep(0.05)
        assert is_mounted(w.backup)
        children = [int(x) for x in open(
            f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()]
        (sh_pid,) = children  # PID 1 inside the namespace
        os.kill(sh_pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
        check_sanitizers(err, "backup.sh")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        unmount(w.backup)
    assert proc.returncode not in (0, 3), err
    assert "backup: failed with status" in err, err[-4000:]
    assert not is_mounted(w.backup), "drgw run unmounted"


def test_prune_script_pushes_its_metrics(backups, tmp_path):
    """prune.sh, as the drgw-prune CronJob runs it, on copies of the
    backends: the policy of the config applies, the record is its own empty
    cache's, and only drgw_prune_* metrics are pushed, as instance=prune."""
    import shutil
    w = backups.world
    copies = {}
    for name, path in w.remotes.items():
        copies[name] = tmp_path / name
        shutil.copytree(path, copies[name])
    conf = tmp_path / "prune.conf"
    text = w.config_text().replace("[drgw]\n", "[drgw]\nkeep-last = 3\n", 1)
    for name, path in w.remotes.items():
        text = text.replace(f"local://{path}", f"local://{copies[name]}")
    conf.write_text(text)
    # The names and times the policy needs are encrypted: without the
    # identity (as the backup pod) prune refuses, removing nothing.
    p = w.sh("prune.sh", DRGW_CONFIG=conf, PRUNE_CACHE=tmp_path / "cache0",
             DRGW_IDENTITY_DIR="")
    assert p.returncode == 1, p.stdout + p.stderr[-4000:]
    assert "recipients only encrypt; reading backups needs the identity" in p.stderr
    for name in w.remotes:
        assert len(list(copies[name].rglob("*.drgw"))) == DAYS
    backups.pushgw.take()
    p = w.sh("prune.sh", DRGW_CONFIG=conf, PRUNE_CACHE=tmp_path / "cache",
             DRGW_PUSHGATEWAY_URL=backups.pushgw.url, POD_NAMESPACE="testns")
    assert p.returncode == 0, p.stdout + p.stderr[-4000:]
    assert "prune: every backend pruned" in p.stderr
    for name in w.remotes:
        assert len(list(copies[name].rglob("*.drgw"))) == 3
        assert len(w.objects(name)) == DAYS, "the originals are untouched"
    ((path, body),) = backups.pushgw.take()
    assert path == "/metrics/job/drgw/namespace/testns/instance/prune"
    check_metrics(body)
    s = samples(body)
    assert {k[0] for k in s} <= {
        "drgw_prune_last_run_timestamp_seconds", "drgw_prune_last_success",
        "drgw_prune_kept_snapshots", "drgw_prune_removed_snapshots",
        "drgw_prune_locked_snapshots", "drgw_prune_kept_bytes",
        "drgw_prune_removed_bytes", "drgw_prune_newest_snapshot_timestamp_seconds",
        "drgw_prune_policy_shortest_window_seconds"}
    removed = {dict(k[1])["backend"]: v for k, v in s.items()
               if k[0] == "drgw_prune_removed_snapshots"}
    assert removed == {"primary": DAYS - 3, "second": DAYS - 3}

    # Without a policy: exit 2, nothing removed.
    p = w.sh("prune.sh", PRUNE_CACHE=tmp_path / "cache2")
    assert p.returncode == 2 and "no retention policy" in p.stderr


def restore_into(world, tmp, **extra):
    """restore.sh into a new data volume, from an empty cache."""
    data = tmp / "data"
    data.mkdir(parents=True)
    p = world.sh("restore.sh", DATA_DIR=data, RESTORE_CACHE=tmp / "cache",
                 RESTORE_DIR=tmp / "view", **extra)
    unmount(tmp / "view")
    assert not is_mounted(tmp / "view")
    return p, data / "app.db"


def test_backup_holds_no_secret(backups):
    """Write-only keys: the backups above were made with the shipped
    drgw.conf, which names no key file and no identity, by a backup.sh that
    got no identity; the recipients in drgw-config are all it had.  What it
    wrote opens with the identity only."""
    w = backups.world
    settings = dict(parse_conf(w.config.read_text())["drgw"])
    assert "key-file" not in settings and "identity" not in settings
    assert settings["recipient-file"] == f"{w.config.parent}/recipients"
    assert w.job_env["backup.sh"] == {}
    for script in ("restore.sh", "drill.sh", "prune.sh"):
        assert w.job_env[script] == {"DRGW_IDENTITY_DIR": str(w.secret)}, script
    p = subprocess.run([str(DRGW), "ls", "--remote", "--config", str(w.config),
                        "--cache", str(w.tmp / "ls-writer")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "recipients only encrypt; reading backups needs the identity" in p.stderr


def test_restore_needs_the_identity(backups, tmp_path):
    """Without the Secret's identity (the backup pod's situation) a restore
    fails in one clear line and touches nothing; an empty Secret is named."""
    w = backups.world
    p, db = restore_into(w, tmp_path / "none", DRGW_IDENTITY_DIR="")
    assert p.returncode == 1, p.stderr[-4000:]
    assert "recipients only encrypt; reading backups needs the identity" in p.stderr
    assert not db.exists()
    empty = tmp_path / "empty-secret"
    kubelet_volume(empty, {}, 0o400)
    p, db = restore_into(w, tmp_path / "empty", DRGW_IDENTITY_DIR=empty)
    assert p.returncode == 1
    assert f"restore: no identity in {empty} (the Secret drgw-identity)" in p.stderr
    assert not db.exists()
    p = w.sh("drill.sh", DRILL_CACHE=tmp_path / "drill", TMPDIR=tmp_path / "drill",
             DRGW_IDENTITY_DIR="")
    assert p.returncode != 0 and "needs the identity" in p.stderr


def test_symmetric_variant_and_migration(tmp_path, scripts, rendered):
    """The symmetric variant (patch-symmetric-key.yaml: the backup mounts
    drgw-identity too, holding master.key) can prune in the backup Job,
    DRGW_PRUNE=on.  Then the migration to write-only keys of
    deploy/README.md: the base's drgw.conf and recipients, the backup
    without the Secret, the old key kept as master.key next to the identity:
    the old backups and the new one restore; without master.key the old
    ones do not."""
    require_drgw()
    (tmp_path / "world").mkdir()
    b = Backups(tmp_path / "world", scripts, rendered["base"], symmetric=True)
    w = b.world
    try:
        assert w.job_env["backup.sh"] == {"DRGW_IDENTITY_DIR": str(w.secret)}
        assert "recipient" not in w.config_text()
        cfg = w.config.resolve()
        cfg.write_text(cfg.read_text().replace("[drgw]\n", "[drgw]\nkeep-last = 2\n", 1))
        b.open_app()
        for day in range(1, 5):
            b.app.execute("INSERT INTO applications (name) VALUES (?)", (f"day {day}",))
            p, name = b.backup(day, DRGW_PRUNE="on")
            assert p.returncode == 0, p.stderr[-4000:]
            b.names.append(name)
        assert sorted(b.remote()) == b.names[-2:]
        for backend in w.remotes:
            assert len(w.objects(backend)) == 2
        assert "prune: backend primary: kept 2" in b.runs[-1].stderr

        # The migration: write-only keys, the old key kept for old backups.
        both = {"identity": w.identity.read_bytes(),
                "master.key": w.master_key.read_bytes()}
        w.layout(False, secret=both)
        assert w.job_env["backup.sh"] == {}
        b.app.execute("INSERT INTO applications (name) VALUES ('day 5')")
        p, name = b.backup(5)
        assert p.returncode == 0, p.stderr[-4000:]
        b.names.append(name)
        assert sorted(b.remote()) == b.names[-3:]
        for day, snapshot in ((4, b.names[-2]), (5, b.names[-1])):
            p, db = restore_into(w, tmp_path / f"r{day}", RESTORE_SNAPSHOT=snapshot)
            assert p.returncode == 0, p.stderr[-4000:]
            assert rows(db) == day
        p = w.sh("drill.sh", DRILL_CACHE=tmp_path / "drill", TMPDIR=tmp_path / "drill")
        assert p.returncode == 0, p.stdout + p.stderr[-4000:]

        # The identity alone reads the new backup, not the old ones.
        w.layout(False)
        p, db = restore_into(w, tmp_path / "old", RESTORE_SNAPSHOT=b.names[-2])
        assert p.returncode == 1 and not db.exists(), p.stderr[-4000:]
        p, db = restore_into(w, tmp_path / "new", RESTORE_SNAPSHOT=b.names[-1])
        assert p.returncode == 0, p.stderr[-4000:]
    finally:
        b.close()
