# SPDX-License-Identifier: MIT
"""SQLite checks at ingest, through the real mount with the real sqlite3:
the seed's job on a healthy database is ok and a text file is not checked;
`cp` of a live WAL database (with its -wal, or torn by a checkpoint in the
middle of the copy), a database with an overwritten b-tree page, a
truncated copy and a hot journal each get their own verdict, are still
replicated, and show in `drgw ls`, its JSON and the metrics; `drgw run`
exits 5 when a snapshot it wrote failed; `drgw restore` and the restore
view warn and name the newest version that passed."""
import json
import os
import shutil
import sqlite3 as pysqlite
import subprocess
import sys
import threading
import time

import pytest

from conftest import DRGW, ROOT, make_app_db, run, sqlite, unmount

DECODER = ROOT / "tools" / "drgw-decode"


def snaps_by_name(env):
    return {s["name"]: s for s in env.ls("--versions")}


def ls_check_column(env):
    """name -> what the CHECK column of the human `drgw ls` shows."""
    lines = env.drgw("ls").stdout.splitlines()
    col = lines[0].index("CHECK")
    return {line.split()[0]: line[col:].strip() for line in lines[1:] if line.strip()}


def corrupt_btree_page(path):
    """Overwrites the cell pointers of a table b-tree leaf page (the last
    page of a fresh table) so that quick_check reports it."""
    page_size = int(sqlite(path, "PRAGMA page_size"))
    pages = int(sqlite(path, "PRAGMA page_count"))
    with open(path, "r+b") as f:
        f.seek((pages - 1) * page_size + 8)
        f.write(b"\xff" * 32)
    assert sqlite(f"file:{path}?immutable=1", "PRAGMA quick_check(1)",
                  check=False) != "ok"


def test_seed_job_healthy_database_and_a_text_file(env, tmp_path):
    db = tmp_path / "app.db"
    make_app_db(db, rows=3000)
    gw = env.gateway().start()
    # The seed's backup job, unchanged; and a file that is no database.
    subprocess.run(["sqlite3", str(db), f".backup '{env.mnt}/app-20260101-020000.db'"],
                   check=True, timeout=60)
    (env.mnt / "notes-1.txt").write_text("not a database\n")
    env.wait()
    snaps = snaps_by_name(env)
    check = snaps["app-20260101-020000.db"]["check"]
    # The default depth: quick_check ran and passed.
    assert check == {"verdict": "ok", "level": "quick", "failed": False}, check
    assert snaps["notes-1.txt"]["check"]["verdict"] == "not_sqlite"
    assert not snaps["notes-1.txt"]["check"]["failed"]
    col = ls_check_column(env)
    assert col == {"app-20260101-020000.db": "ok", "notes-1.txt": "-"}, col
    assert "failed its SQLite check" not in gw.log()
    assert "sqlite check of app-20260101-020000.db" in gw.log()
    metrics = env.drgw("status", "--prometheus").stdout
    assert 'drgw_sqlite_check_newest_ok{pattern="app-*-*.db"} 1' in metrics
    assert 'drgw_sqlite_check_versions{verdict="ok"} 1' in metrics
    assert 'drgw_sqlite_check_versions{verdict="not_sqlite"} 1' in metrics
    # A text file makes no series.
    assert not [l for l in metrics.splitlines()
                if l.startswith("drgw_sqlite_check") and "notes-*.txt" in l]
    p = subprocess.run(["promtool", "check", "metrics"], input=metrics,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    gw.stop()


class Writer:
    """An application writing to its WAL-mode database, as in production:
    one connection, commits in a loop, the WAL never checkpointed while
    the test copies."""

    def __init__(self, path):
        self.path = path
        self.db = pysqlite.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self.db.execute("CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, doc TEXT)")
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = None

    def commit(self, rows=50):
        with self.lock:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO events(doc) VALUES(?)",
                                [(os.urandom(200).hex(),) for _ in range(rows)])
            self.db.execute("COMMIT")

    def checkpoint(self):
        with self.lock:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def start(self):
        def loop():
            while not self.stop.is_set():
                self.commit(5)
                time.sleep(0.005)
        self.thread = threading.Thread(target=loop)
        self.thread.start()
        return self

    def close(self):
        self.stop.set()
        if self.thread:
            self.thread.join()
        self.db.close()


def test_cp_of_a_live_wal_database(env, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    writer = Writer(data / "app.db")
    gw = env.gateway(settle="1s").start()
    try:
        writer.commit(2000)
        writer.checkpoint()
        writer.commit(100)  # committed, in the -wal only
        writer.start()
        # A naive backup job: copy the database and whatever lies beside it.
        subprocess.run(f"cp {data}/app.db* {env.mnt}/", shell=True, check=True)

        # cp of the database file racing a checkpoint that grows it: the
        # copy has the old first page and the new length.
        with open(data / "app.db", "rb") as src, open(env.mnt / "torn.db", "wb") as dst:
            dst.write(src.read(8192))
            writer.commit(2000)
            writer.checkpoint()
            dst.write(src.read())
    finally:
        writer.close()
    env.wait()
    snaps = snaps_by_name(env)
    assert "app.db-wal" not in snaps and "app.db-shm" not in snaps
    check = snaps["app.db"]["check"]
    assert check["verdict"] == "wal" and check["failed"], (check, gw.log()[-3000:])
    assert "app.db-wal beside it holds" in check["message"]
    assert "drgw does not back up -wal files" in check["message"]
    torn = snaps["torn.db"]["check"]
    assert torn["verdict"] == "torn", torn
    assert "more than its header says" in torn["message"]
    # Marked, not held back: both are on the backend.
    assert snaps["app.db"]["replicas"]["nfs"]["state"] == "replicated"
    assert snaps["torn.db"]["replicas"]["nfs"]["state"] == "replicated"
    col = ls_check_column(env)
    assert col["app.db"].startswith("wal: app.db-wal beside it"), col
    assert col["torn.db"].startswith("torn: the file has"), col
    assert "app.db (version" in gw.log() and "failed its SQLite check: wal:" in gw.log()
    gw.stop()


def test_corrupt_truncated_and_hot_journal(env, tmp_path):
    src = tmp_path / "app.db"
    make_app_db(src, rows=3000)
    bad = tmp_path / "bad.db"
    shutil.copy(src, bad)
    corrupt_btree_page(bad)
    gw = env.gateway("--check-sqlite", "quick").start()
    shutil.copy(bad, env.mnt / "corrupt.db")
    # A copy cut short, as a full volume leaves it.
    size = src.stat().st_size
    with open(src, "rb") as f, open(env.mnt / "short.db", "wb") as out:
        out.write(f.read(size // 2))
    # A copy taken in the middle of a transaction, with its hot journal.
    db = pysqlite.connect(src, isolation_level=None)
    db.execute("PRAGMA cache_size=5")
    db.execute("BEGIN")
    db.execute("UPDATE applications SET doc = doc || 'x'")
    subprocess.run(f"cp {src} {src}-journal {env.mnt}/", shell=True, check=True)
    db.execute("ROLLBACK")
    db.close()
    env.wait()
    snaps = snaps_by_name(env)
    c = snaps["corrupt.db"]["check"]
    assert c["verdict"] == "corrupt" and c["level"] == "quick", c
    # quick_check's own first message, naming the page.
    assert "page" in c["message"].lower() and "***" not in c["message"], c
    s = snaps["short.db"]["check"]
    assert s["verdict"] == "truncated", s
    assert f"but the file has {size // 2} bytes" in s["message"] or "ends inside page" in s["message"], s
    h = snaps["app.db"]["check"]
    assert h["verdict"] == "hot_journal", h
    assert "app.db-journal beside it is a hot journal" in h["message"]
    for name in ("corrupt.db", "short.db", "app.db"):
        assert snaps[name]["replicas"]["nfs"]["state"] == "replicated", name
    col = ls_check_column(env)
    assert col["corrupt.db"].startswith("corrupt: "), col
    assert col["short.db"].startswith("truncated: "), col
    assert col["app.db"].startswith("hot journal: "), col
    metrics = env.drgw("status", "--prometheus").stdout
    assert 'drgw_sqlite_check_versions{verdict="corrupt"} 1' in metrics
    assert 'drgw_sqlite_check_newest_ok{pattern="corrupt.db"} 0' in metrics
    # No version of corrupt.db ever passed: no age to show.
    assert 'drgw_sqlite_check_good_age_seconds{pattern="corrupt.db"}' not in metrics
    gw.stop()
    # The verdict travels in each object's authenticated footer, for a
    # restore that has no catalog: the independent decoder reads it.
    for name, want in (("corrupt.db", "corrupt: "), ("short.db", "truncated: ")):
        key = snaps[name]["replicas"]["nfs"]["key"]
        p = subprocess.run([sys.executable, DECODER, "--key", env.key, env.remote / key],
                           capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr
        info = json.loads(p.stderr.decode().splitlines()[-1])
        assert info["check"] == "failed" and info["check_message"].startswith(want), info


def test_header_level_does_not_run_sqlite(env, tmp_path):
    bad = tmp_path / "bad.db"
    make_app_db(bad, rows=3000)
    corrupt_btree_page(bad)
    gw = env.gateway("--check-sqlite", "header").start()
    shutil.copy(bad, env.mnt / "bad.db")
    env.wait()
    check = env.ls()[0]["check"]
    # The header is fine; only quick_check could see the page.
    assert check == {"verdict": "ok", "level": "header", "failed": False}, check
    assert ls_check_column(env) == {"bad.db": "ok (header)"}
    gw.stop()
    gw = env.gateway("--check-sqlite", "off").start()
    shutil.copy(bad, env.mnt / "off.db")
    env.wait()
    assert snaps_by_name(env)["off.db"]["check"]["verdict"] == "not_checked"
    assert ls_check_column(env)["off.db"] == "not checked"
    gw.stop()


def drgw_run(env, script, timeout=180, where=("--mount",)):
    """drgw run through the mount at env.mnt, or where=("--no-mount",
    "--dir") into the plain directory env.mnt."""
    args = [str(DRGW), "run", *map(str, env.common()), *env.backend_args(),
            "--settle-delay", "0.2s", "--retry-min", "0.2s", "--retry-max", "1s",
            *where, str(env.mnt), "--", "sh", "-c", script]
    env.mnt.mkdir(exist_ok=True)
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    finally:
        unmount(env.mnt)


def test_run_exits_5_when_a_snapshot_fails_its_check(env, tmp_path):
    good = tmp_path / "app.db"
    make_app_db(good, rows=2000)
    bad = tmp_path / "bad.db"
    shutil.copy(good, bad)
    corrupt_btree_page(bad)
    p = drgw_run(env, f"sqlite3 '{good}' \".backup '{env.mnt}/app-1.db'\"")
    assert p.returncode == 0, p.stderr
    # Yesterday's good snapshot does not hide today's bad one, and a bad
    # one from an earlier run does not fail today's good run.
    p = drgw_run(env, f"cp '{bad}' {env.mnt}/app-2.db")
    assert p.returncode == 5, p.stderr
    assert "snapshots of this run that failed their SQLite check: 1;" in p.stderr
    assert len(env.objects()) == 2  # replicated all the same
    p = drgw_run(env, f"sqlite3 '{good}' \".backup '{env.mnt}/app-3.db'\"")
    assert p.returncode == 0, p.stderr
    # The command's own failure still wins.
    p = drgw_run(env, f"cp '{bad}' {env.mnt}/app-4.db; exit 7")
    assert p.returncode == 7, p.stderr


def test_restore_warns_and_names_the_newest_good_version(env, tmp_path):
    good = tmp_path / "app.db"
    make_app_db(good, rows=2000)
    bad = tmp_path / "bad.db"
    shutil.copy(good, bad)
    corrupt_btree_page(bad)
    gw = env.gateway().start()
    subprocess.run(["sqlite3", str(good), f".backup '{env.mnt}/app-1.db'"], check=True)
    env.wait()
    shutil.copy(bad, env.mnt / "app-2.db")
    env.wait()
    gw.stop()
    snaps = snaps_by_name(env)
    good_vid = snaps["app-1.db"]["version"]
    bad_vid = snaps["app-2.db"]["version"]
    assert snaps["app-2.db"]["check"]["verdict"] == "corrupt"
    metrics = env.drgw("status", "--prometheus").stdout
    assert 'drgw_sqlite_check_newest_ok{pattern="app-*.db"} 0' in metrics
    assert 'drgw_sqlite_check_good_age_seconds{pattern="app-*.db"}' in metrics

    # drgw restore with the gateway's catalog: restores, warns, exit 0.
    out = tmp_path / "restored.db"
    p = env.client("restore", "app-2.db", out, cache=env.cache)
    assert out.read_bytes() == bad.read_bytes()
    assert f"app-2.db version {bad_vid} failed its SQLite check at ingest (corrupt:" in p.stderr
    assert f"is app-1.db version {good_vid}" in p.stderr
    assert f"drgw restore --version {good_vid} app-1.db" in p.stderr
    # The good one restores without a word.
    p = env.client("restore", "app-1.db", tmp_path / "good.db", cache=env.cache)
    assert "SQLite check" not in p.stderr
    # Without the catalog (a restore after losing the cluster), the
    # objects say the same.
    p = env.client("restore", "app-2.db", tmp_path / "nocat.db")
    assert f"app-2.db version {bad_vid} failed its SQLite check at ingest (as its object records)" in p.stderr
    assert f"drgw restore --version {good_vid} app-1.db" in p.stderr

    # The restore view over the same cache: at mount, and at each open.
    view = env.restore_view(cache=env.cache).start()
    assert f"app-2.db version {bad_vid} failed its SQLite check" in view.log()
    mark = len(view.log())
    shutil.copy(view.mountpoint / "app-2.db", tmp_path / "from-view.db")
    view.wait_log(f"is app-1.db version {good_vid}", start=mark)
    assert view.stop() == 0


def test_prune_keeps_the_newest_good_snapshot(env, tmp_path):
    good = tmp_path / "app.db"
    make_app_db(good, rows=500)
    bad = tmp_path / "bad.db"
    shutil.copy(good, bad)
    corrupt_btree_page(bad)
    gw = env.gateway().start()
    subprocess.run(["sqlite3", str(good), f".backup '{env.mnt}/app-1.db'"], check=True)
    env.wait()
    subprocess.run(["sqlite3", str(good), f".backup '{env.mnt}/app-2.db'"], check=True)
    env.wait()
    for n in (3, 4):
        shutil.copy(bad, env.mnt / f"app-{n}.db")
        env.wait()
    gw.stop()
    vids = {s["name"]: s["version"] for s in env.ls("--versions")}
    # What drgw ls says prune will do is what it does.
    table = {line.split()[0]: line for line in
             env.drgw("ls", "--versions", "--keep-last", "1").stdout.splitlines()[1:]
             if line.startswith("app-")}
    assert "kept" in table["app-2.db"] and "to remove" in table["app-1.db"], table
    # The prune job of deploy/ has no catalog: the objects (their index
    # record, their footers) say the same.
    for tag in ("index", "footers"):
        if tag == "footers":
            for ix in (env.remote / "index").iterdir():
                ix.unlink()
        dry = [json.loads(line) for line in env.client(
            "prune", "--keep-last", "1", "--json", "--dry-run",
            cache=tmp_path / f"empty-{tag}").stdout.splitlines()]
        assert {x["name"]: x["reasons"] for x in dry}["app-2.db"] == ["good"], (tag, dry)
    out = [json.loads(line) for line in env.client(
        "prune", "--keep-last", "1", "--json", cache=env.cache).stdout.splitlines()]
    actions = {x["name"]: (x["action"], x["reasons"]) for x in out}
    # The policy keeps app-4 alone; the newest good one stays as well.
    assert actions["app-4.db"] == ("keep", ["last", "newest"]), actions
    assert actions["app-2.db"] == ("keep", ["good"]), actions
    assert actions["app-1.db"][0] == "remove" and actions["app-3.db"][0] == "remove", actions
    assert env.objects() == sorted(vids[n] + ".drgw" for n in ("app-2.db", "app-4.db"))


def test_without_the_mount_the_journal_beside_a_copy_is_seen(env, tmp_path):
    """drgw run --no-mount checks what lies beside the file as the mount
    does: a copy taken mid-transaction with its hot journal fails."""
    src = tmp_path / "app.db"
    make_app_db(src, rows=3000)
    db = pysqlite.connect(src, isolation_level=None)
    db.execute("PRAGMA cache_size=5")
    db.execute("BEGIN")
    db.execute("UPDATE applications SET doc = doc || 'x'")
    try:
        p = drgw_run(env, f"cp {src} {src}-journal {env.mnt}/",
                     where=("--no-mount", "--dir"))
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert p.returncode == 5, p.stderr
    h = snaps_by_name(env)["app.db"]["check"]
    assert h["verdict"] == "hot_journal", h
    assert "app.db-journal beside it is a hot journal" in h["message"]
