# SPDX-License-Identifier: MIT
"""drgw without FUSE, as an unprivileged user: `drgw run --no-mount`,
`drgw watch` and `drgw restore --latest`.

Every drgw here runs as `nobody` with no capability, no new privileges
and, in a mount namespace of its own, /dev/null where /dev/fuse was
(setpriv, unshare), from a copy of this build's binary and plugins that
nobody may read.  When the suite itself runs as an ordinary user, drgw
runs as that user.

The seed's backup job through `drgw run --no-mount` to a local directory,
s3rver and the GCS emulator, restored byte for byte with `drgw restore
--latest`; files left open for writing by the command; files changed,
copied with cp -p, deleted and excluded; SIGKILL while the run waits for
a file, then the next run; `drgw watch` with concurrent writers; and a
backend that holds snapshots from the mount and from --no-mount alike.
"""
import filecmp
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import DRGW, PLUGINS, ROOT, check_sanitizers, sqlite

NOBODY = "nobody"
BACKUP_JOB = """
set -eu
sqlite3 "$DB" ".backup '$BACKUP/app-$TS.db'"
ls -t "$BACKUP"/*.db | tail -n +8 | xargs -r rm
"""


@pytest.fixture(autouse=True)
def need_fuse():
    """Overrides the suite's: nothing here needs FUSE or root."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class World:
    """A scratch world that nobody owns: key, cache, the backup directory,
    a local backend, and drgw itself copied where nobody can run it."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="drgw-nomount-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.privileged = os.geteuid() == 0
        # The binary and the plugins, root's and read-only, as installed.
        self.bin = self.root / "bin"
        (self.bin / "plugins").mkdir(parents=True)
        shutil.copy2(DRGW, self.bin / "drgw")
        for so in PLUGINS.rglob("drgw-*.so"):
            shutil.copy2(so, self.bin / "plugins" / so.name)
        shutil.copy2(ROOT / "tests" / "lsan.supp", self.bin / "lsan.supp")
        self.home = self.root / "home"
        self.home.mkdir()
        if self.privileged:
            u = pwd.getpwnam(NOBODY)
            os.chown(self.home, u.pw_uid, u.pw_gid)
        self.key = self.home / "key"
        self.cache = self.home / "cache"
        self.dir = self.home / "backup"
        self.remote = self.home / "remote"
        self.db = self.home / "app.db"
        self.procs = []
        self.as_user(["mkdir", str(self.dir), str(self.remote)])
        p = self.drgw("keygen", self.key)
        assert p.returncode == 0, p.stderr

    def wrap(self, argv):
        """argv as nobody, without capabilities or /dev/fuse."""
        if not self.privileged:
            return list(map(str, argv))
        return ["unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c",
                '[ ! -e /dev/fuse ] || mount --bind /dev/null /dev/fuse; exec "$@"',
                "sh", "setpriv", f"--reuid={NOBODY}", "--regid=nogroup",
                "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                "--no-new-privs", "--", *map(str, argv)]

    def env(self, extra=None):
        env = dict(os.environ, HOME=str(self.home))
        if "LSAN_OPTIONS" in env:
            env["LSAN_OPTIONS"] = f"suppressions={self.bin / 'lsan.supp'}"
        env.update(extra or {})
        return env

    def as_user(self, argv, check=True, **kw):
        p = subprocess.run(self.wrap(argv), capture_output=True, text=True,
                           env=self.env(kw.pop("env", None)), timeout=120, **kw)
        if check:
            assert p.returncode == 0, p.stderr
        return p

    def drgw(self, *args, timeout=180, env=None):
        p = subprocess.run(self.wrap([self.bin / "drgw", *args]),
                           capture_output=True, text=True, timeout=timeout,
                           env=self.env(env))
        check_sanitizers(p.stderr, f"drgw {args[0]}")
        return p

    def common(self, cache=None):
        return ["--cache", cache or self.cache, "--key-file", self.key,
                "--plugin-dir", self.bin / "plugins"]

    def backends(self):
        return ["--backend", f"nfs=local://{self.remote}"]

    def run(self, script, *extra, backends=None, rc=0, env=None, timeout=180):
        """drgw run --no-mount --dir DIR -- sh -c script."""
        p = self.drgw("run", *self.common(), *(backends or self.backends()),
                      "--retry-min", "0.2s", "--retry-max", "1s", *extra,
                      "--no-mount", "--dir", self.dir, "--", "sh", "-c", script,
                      env=env, timeout=timeout)
        if rc is not None:
            assert p.returncode == rc, p.stderr
        return p

    def popen(self, argv, **kw):
        p = subprocess.Popen(self.wrap(argv), env=self.env(kw.pop("env", None)),
                             **kw)
        self.procs.append(p)
        return p

    def watch(self, *opts, env=None):
        """drgw watch on dir, logging to home/watch.log, once it watches;
        (process, log path)."""
        log = self.home / "watch.log"
        with open(log, "w") as f:
            proc = self.popen([self.bin / "drgw", "watch", *self.common(),
                               *self.backends(), *opts, self.dir], stderr=f,
                              env=env)
        while "watching" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        return proc, log

    def stop_watch(self, proc, log):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        check_sanitizers(log.read_text(), "drgw watch")

    def ls(self, *args, cache=None):
        p = self.drgw("ls", "--json", "--cache", cache or self.cache, *args)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def restore(self, pattern, dest, *extra, backends=None):
        """drgw restore --latest from the backends alone (empty cache)."""
        scratch = Path(tempfile.mkdtemp(dir=self.home))
        if self.privileged:
            u = pwd.getpwnam(NOBODY)
            os.chown(scratch, u.pw_uid, u.pw_gid)
        p = self.drgw("restore", "--latest", *self.common(scratch / "cache"),
                      *(backends or self.backends()), *extra, pattern, dest)
        assert p.returncode == 0, p.stderr
        return p

    def objects(self, remote=None):
        return sorted(p.name for p in Path(remote or self.remote).rglob("*.drgw")
                      if p.is_file())

    def app_db(self, rows, seed):
        """The application's database, nobody's like the job that reads it."""
        self.db.unlink(missing_ok=True)
        self.as_user(["sqlite3", self.db,
                      "CREATE TABLE applications(id INTEGER PRIMARY KEY, name TEXT, doc TEXT, blob BLOB);"
                      f"INSERT INTO applications(name, doc, blob) SELECT 'app-' || (value + {seed}), "
                      f"json_object('id', value, 'seed', {seed}), randomblob(64) "
                      f"FROM generate_series(1, {rows});"])

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def world():
    w = World()
    yield w
    w.cleanup()


def test_runs_unprivileged(world):
    """The wrapper really takes everything away: uid, capabilities, FUSE."""
    if not world.privileged:
        pytest.skip("already unprivileged; nothing to take away")
    p = world.as_user(["sh", "-c", "id -u; grep -E '^Cap(Eff|Prm|Bnd):' /proc/self/status; "
                       "stat -Lc 'dev=%t:%T' /dev/fuse 2>/dev/null || echo dev=none"])
    lines = p.stdout.split()
    assert lines[0] == str(pwd.getpwnam(NOBODY).pw_uid)
    assert p.stdout.count("0000000000000000") == 3, p.stdout
    assert lines[-1] in ("dev=1:3", "dev=none"), p.stdout  # /dev/null, not FUSE
    # And a key others may read is still refused, as with the mount.
    world.as_user(["chmod", "0640", world.key])
    p = world.run("true", rc=1)
    assert "accessible by group or others" in p.stderr
    world.as_user(["chmod", "0600", world.key])


def test_seed_backup_job_nine_days(world):
    """The seed's two lines through drgw run --no-mount: every run exits 0
    only with its backup on the backend; 7 stay local, all 9 remote, and
    each comes back byte for byte from the backend alone."""
    reference = {}
    for day in range(1, 10):
        world.app_db(rows=1500, seed=day * 1000)
        ts = f"202601{day:02d}-021700"
        p = world.run(BACKUP_JOB, env={"DB": str(world.db), "BACKUP": str(world.dir),
                                       "TS": ts})
        assert "every snapshot of this run is replicated" in p.stderr
        assert len(world.objects()) == day, p.stderr
        name = f"app-{ts}.db"
        reference[name] = sha256(world.dir / name)
        # Exactly one new snapshot per run: the older local copies the
        # retention line kept are not sealed again.
        assert f"sealed {name} as version" in p.stderr
        assert p.stderr.count("sealed ") == 1, p.stderr
    local = sorted(p.name for p in world.dir.glob("*.db"))
    assert len(local) == 7 and local[0] == "app-20260103-021700.db", local
    snaps = world.ls("--versions")
    assert sorted(s["name"] for s in snaps) == sorted(reference)
    for s in snaps:
        assert s["replicas"]["nfs"]["state"] == "replicated"
        assert s["sha256"] == reference[s["name"]]
    p = world.drgw("status", "--json", "--cache", world.cache)
    status = json.loads(p.stdout)
    assert status["replicas_pending"] == 0 and not status["daemon_running"]
    assert world.drgw("wait", "--cache", world.cache, "--timeout", "5s").returncode == 0

    # A restore Job without FUSE: the newest app-*.db, from an empty cache.
    out = world.home / "restored.db"
    p = world.restore("app-*.db", out)
    assert "app-20260109-021700.db" in p.stdout
    assert sha256(out) == reference["app-20260109-021700.db"]
    assert sqlite(out, "PRAGMA integrity_check;") == "ok"
    # Every day is there, also the two no longer kept locally.
    for name in ("app-20260101-021700.db", "app-20260105-021700.db"):
        world.restore(name, world.home / name)
        assert sha256(world.home / name) == reference[name]


def writer_during_run(world, name, tag, pause):
    """A process that is not the command's (another container, a cron job)
    opens name once the command says go, writes, tells the command it
    may exit, then writes again after pause and closes.  Returns it and
    the command that goes with it."""
    d = world.dir
    writer = world.popen(["sh", "-c",
                          f"while [ ! -e {d}/.go{tag} ]; do sleep 0.02; done; "
                          f"exec 3>{d}/{name}; printf {tag}1 >&3; touch {d}/.ready{tag}; "
                          f"sleep {pause}; printf -- -{tag}2 >&3"])
    command = (f"touch {d}/.go{tag}; echo quick > {d}/quick{tag}.db; "
               f"while [ ! -e {d}/.ready{tag} ]; do sleep 0.02; done")
    return writer, command


def test_open_writer_sealed_when_closed(world):
    """A file another process still has open for writing when the command
    exits is sealed once closed, with all its content; one still open at
    the drain deadline is reported, the run exits 3, and the next run
    seals it."""
    writer, command = writer_during_run(world, "late.db", "a", 2)
    p = world.run(command, "--drain-timeout", "30s")
    assert re.search(r"late\.db is still open for writing by pid \d+ \(sh\); sealing it once",
                     p.stderr), p.stderr
    assert writer.wait(timeout=10) == 0
    out = world.home / "late.out"
    world.restore("late.db", out)
    assert out.read_bytes() == b"a1-a2"
    assert len(world.objects()) == 2

    writer, command = writer_during_run(world, "stuck.db", "b", 4)
    p = world.run(command, "--drain-timeout", "1s", rc=3)
    assert re.search(r"stuck\.db is still open for writing by pid \d+ \(sh\): not sealed",
                     p.stderr), p.stderr
    assert len(world.objects()) == 3  # quickb.db, not stuck.db
    assert writer.wait(timeout=10) == 0
    p = world.run("true")
    assert "earlier run" in p.stderr and "sealed stuck.db" in p.stderr, p.stderr
    assert "sealed quickb.db" not in p.stderr, p.stderr
    world.restore("stuck.db", out, "--force")
    assert out.read_bytes() == b"b1-b2"


def test_command_leftover_processes_are_waited_for(world):
    """What the command started in the background and did not wait for is
    waited for (drgw is its subreaper, also across a double fork), so a
    file it creates after the command exited is still sealed."""
    d = world.dir
    p = world.run(f"( (sleep 1; echo late > {d}/bg.db) & ) ; echo now > {d}/fg.db")
    assert "the command left 1 processes running" in p.stderr, p.stderr
    assert sorted(s["name"] for s in world.ls()) == ["bg.db", "fg.db"]
    # One that outlives the drain deadline: exit 3, and the next run seals
    # what it wrote.
    p = world.run(f"( (sleep 3; echo later > {d}/bg2.db) & )", "--drain-timeout", "1s",
                  rc=3)
    assert "what they write from now on is backed up by the next run" in p.stderr
    time.sleep(3)
    p = world.run("true")
    assert "sealed bg2.db" in p.stderr, p.stderr


def test_changed_copied_deleted_excluded(world):
    """What was there before is left alone unless the command changes it:
    rewritten, replaced by cp -p (same size and mtime: only the ctime
    differs), or appended; deleted files are the user's business; journals,
    WAL/SHM, temp and dot files are never sealed."""
    d = world.dir
    world.as_user(["sh", "-c", f"cd {d} && echo same > same.db && echo old > rewritten.db "
                   f"&& echo aaaa > copied.db && echo bbbb > copy-src && touch -r copied.db copy-src "
                   f"&& echo log > app.log && echo gone > gone.db"])
    time.sleep(0.05)
    script = (f"cd {d} && echo new > rewritten.db && cp -p copy-src copied.db && "
              "echo more >> app.log && rm gone.db && "
              "for f in a.db-journal a.db-wal a.db-shm x.tmp .hidden y~ z.swp; do echo x > $f; done && "
              "mkdir -p sub/deeper && echo s > sub/deeper/s.db")
    p = world.run(script)
    snaps = {s["name"]: s for s in world.ls()}
    assert sorted(snaps) == ["app.log", "copied.db", "rewritten.db", "sub/deeper/s.db"], p.stderr
    out = world.home / "copied.out"
    world.restore("copied.db", out)
    assert out.read_bytes() == b"bbbb\n"
    # Nothing new: nothing sealed, not even what was there before.
    p = world.run("true")
    assert "sealed" not in p.stderr.replace("sealing", ""), p.stderr
    assert len(world.ls("--versions")) == 4


def test_unreadable_files_are_reported(world):
    """A file drgw may not read is not silently skipped: the run says which
    and exits 3; a directory it may not read (lost+found on a volume's
    root) is a warning, and the rest is backed up."""
    d = world.dir
    if world.privileged:
        (d / "lost+found").mkdir(mode=0o700)
    p = world.run(f"echo ok > {d}/ok.db; echo x > {d}/locked.db; chmod 000 {d}/locked.db",
                  rc=3)
    assert f"cannot read {d}/locked.db: Permission denied; it is not backed up" in p.stderr, \
        p.stderr
    if world.privileged:
        assert f"cannot read directory {d}/lost+found" in p.stderr, p.stderr
    assert [s["name"] for s in world.ls()] == ["ok.db"]
    # Readable again: the next run backs it up.
    world.as_user(["chmod", "600", d / "locked.db"])
    p = world.run("true")
    assert "sealed locked.db" in p.stderr, p.stderr


def test_sigkill_while_sealing_then_next_run(world):
    """SIGKILL after the command exited, while drgw waits to seal a file
    still being written: the next run seals that file before its command
    runs (which writes the same name again), and what the killed run had
    sealed is not sealed again."""
    writer, command = writer_during_run(world, "late.db", "part", 3)
    log = world.home / "run1.log"
    with open(log, "w") as f:
        proc = world.popen([world.bin / "drgw", "run", *world.common(), *world.backends(),
                            "--drain-timeout", "60s", "--no-mount", "--dir", world.dir,
                            "--", "sh", "-c", f"echo early > {world.dir}/early.db; {command}"],
                           stderr=f)
        deadline = time.time() + 30
        while "late.db is still open for writing" not in log.read_text():
            assert time.time() < deadline, log.read_text()
            assert proc.poll() is None, log.read_text()
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert writer.wait(timeout=10) == 0
    assert "sealed early.db" in log.read_text()
    assert "late.db" not in [s["name"] for s in world.ls()]

    p = world.run(f"echo next > {world.dir}/late.db")
    assert "sealed early.db" not in p.stderr, p.stderr
    assert "what the earlier run left is backed up" in p.stderr, p.stderr
    versions = world.ls("--versions")
    assert sorted(v["name"] for v in versions) == \
        ["early.db", "late.db", "late.db", "quickpart.db"]
    assert all(v["replicas"]["nfs"]["state"] == "replicated" for v in versions)
    assert len(world.objects()) == 4
    late = sorted((v for v in versions if v["name"] == "late.db"),
                  key=lambda v: v["mtime_ns"])  # vids of one second do not sort by time
    out = world.home / "late.out"
    p = world.drgw("restore", "--version", late[0]["version"],
                   *world.common(world.home / "restore-cache"),
                   *world.backends(), "late.db", out)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == b"part1-part2"
    out.unlink()
    world.restore("late.db", out)
    assert out.read_bytes() == b"next\n"


def test_watch_concurrent_writers(world):
    """drgw watch: files there at start are sealed; several writers append
    at once, one keeps its file open and quiet for longer than the settle
    delay, one saves atomically through a dot file and rename; every file
    ends up replicated with its final content, no version was sealed from
    a file still open for writing, and a restart seals nothing twice."""
    world.as_user(["sh", "-c", f"echo before > {world.dir}/before.db"])
    port = free_port()
    log = world.home / "watch.log"
    args = [world.bin / "drgw", "watch", *world.common(), *world.backends(),
            "--settle-delay", "0.3s", "--metrics-listen", f"127.0.0.1:{port}", world.dir]
    with open(log, "w") as f:
        proc = world.popen(args, stderr=f)
    deadline = time.time() + 20
    while "sealed before.db" not in log.read_text():
        assert time.time() < deadline and proc.poll() is None, log.read_text()
        time.sleep(0.05)

    writers = []
    for i in range(4):
        writers.append(world.popen(["sh", "-c",
                                    f"for j in $(seq 1 30); do echo w{i}-$j >> {world.dir}/w{i}.log; "
                                    "sleep 0.02; done"]))
    # Held open for writing the whole time; another process appends and
    # closes in the middle, which schedules a seal that must wait.
    writers.append(world.popen(["sh", "-c",
                                f"exec 3>>{world.dir}/held.db; printf half >&3; "
                                f"printf -- -mid >> {world.dir}/held.db; sleep 1.5; "
                                "printf -- -whole >&3"]))
    writers.append(world.popen(["sh", "-c",
                                f"mkdir -p {world.dir}/sub && echo v1 > {world.dir}/sub/.cfg.tmp && "
                                f"mv {world.dir}/sub/.cfg.tmp {world.dir}/sub/cfg.json"]))
    for w in writers:
        assert w.wait(timeout=60) == 0
    p = world.drgw("wait", "--cache", world.cache, "--timeout", "60s", timeout=90)
    assert p.returncode == 0, p.stderr + log.read_text()
    status = json.loads(world.drgw("status", "--json", "--cache", world.cache).stdout)
    assert status["daemon_running"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert 'drgw_backend_pending_replicas{backend="nfs"} 0' in metrics

    versions = world.ls("--versions")
    names = sorted({v["name"] for v in versions})
    assert names == ["before.db", "held.db", "sub/cfg.json",
                     "w0.log", "w1.log", "w2.log", "w3.log"], log.read_text()
    for v in versions:
        assert v["replicas"]["nfs"]["state"] == "replicated"
        if v["name"] == "held.db":
            assert v["size"] == len("half-mid-whole"), log.read_text()
    # Not even sealed (let alone encoded) while it was open for writing.
    sealed = re.findall(r"sealed held\.db as version \S+ \((\d+) bytes\)", log.read_text())
    assert sealed and set(sealed) == {str(len("half-mid-whole"))}, log.read_text()
    for name in names:
        dest = world.home / name.replace("/", "_")
        world.restore(name, dest)
        assert filecmp.cmp(dest, world.dir / name, shallow=False), name

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()
    check_sanitizers(log.read_text(), "drgw watch")
    # A restart scans, finds everything sealed, seals nothing.
    with open(log, "a") as f:
        proc = world.popen(args, stderr=f)
    deadline = time.time() + 20
    while "watching" not in log.read_text().split("got signal")[-1]:
        assert time.time() < deadline and proc.poll() is None, log.read_text()
        time.sleep(0.05)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert len(world.ls("--versions")) == len(versions)
    check_sanitizers(log.read_text(), "drgw watch")


def test_watch_seals_what_fell_due_while_it_sealed_others(world):
    """A file written just after a batch falls due while the batch is
    being sealed; a deadline that has passed meanwhile means "now", not a
    poll that sleeps until the next event (none comes: the writer is
    done)."""
    proc, log = world.watch("--settle-delay", "0.2s")
    batch = [f"b{i:03d}.db" for i in range(200)]
    world.as_user([sys.executable, "-c",
                   "import os, sys, time\n"
                   "os.chdir(sys.argv[1])\n"
                   "for n in sys.argv[2:]:\n"
                   "    open(n, 'w').write(n)\n"
                   "time.sleep(0.02)\n"
                   "open('z.db', 'w').write('last')\n",
                   world.dir, *batch])
    assert world.drgw("wait", "--cache", world.cache, "--timeout", "30s",
                      timeout=60).returncode == 0, log.read_text()[-3000:]
    assert sorted(s["name"] for s in world.ls()) == batch + ["z.db"]
    world.stop_watch(proc, log)


def test_watch_sees_hard_links_and_chmod(world):
    """A new name made with ln and a chmod are versions, as in the mount;
    neither writes or closes the file, so only their own events tell."""
    proc, log = world.watch("--settle-delay", "0.2s")
    world.as_user(["sh", "-c", f"echo data > {world.dir}/a.db"])
    assert world.drgw("wait", "--cache", world.cache, "--timeout", "30s",
                      timeout=60).returncode == 0, log.read_text()
    world.as_user(["sh", "-c", f"ln {world.dir}/a.db {world.dir}/b.db && "
                   f"chmod 600 {world.dir}/a.db"])
    deadline = time.time() + 30
    while True:
        names = sorted(s["name"] for s in world.ls("--versions"))
        if names.count("a.db") >= 2 and "b.db" in names:
            break
        assert time.time() < deadline, (names, log.read_text()[-3000:])
        time.sleep(0.1)
    world.stop_watch(proc, log)


def test_watch_writer_does_not_wait_for_the_sqlite_check(world):
    """The encoder lets go of its read lease once it has read every byte: a
    writer that opens the database while its SQLite check still runs goes
    on at once (before, it waited for the check), the verdict on bytes
    that changed under the check is dropped, and the version, not yet
    recorded as encoded, is encoded again with what the writer wrote."""
    proc, log = world.watch("--settle-delay", "0.2s",
                            env={"DRGW_TEST_PAUSE_AT": "sqlcheck-run:3000"})
    db = f"{world.dir}/app.db"
    world.as_user(["sqlite3", db, "CREATE TABLE t(x); INSERT INTO t VALUES(1);"])
    deadline = time.time() + 30
    while "test hook: pausing" not in log.read_text():
        assert time.time() < deadline, log.read_text()
        time.sleep(0.05)
    time.sleep(0.5)  # the encoder has read the little file by now
    world.as_user(["sqlite3", db, "INSERT INTO t VALUES(2);"])
    assert world.drgw("wait", "--cache", world.cache, "--timeout", "60s",
                      timeout=90).returncode == 0, log.read_text()
    text = log.read_text()
    assert "app.db changed while its SQLite check ran" in text, text
    out = world.home / "out.db"
    world.restore("app.db", out)
    assert sqlite(out, "SELECT group_concat(x) FROM t") == "1,2"
    [v] = [v for v in world.ls("--versions") if v["name"] == "app.db"]
    assert v["check"]["verdict"] == "ok", v
    world.stop_watch(proc, log)


def test_watch_queue_overflow_rescans(world):
    """Events lost to an inotify queue overflow (drgw stopped while 9000
    temp files are created, then three real ones) are made up for by a
    scan: the three are sealed all the same."""
    proc, log = world.watch("--settle-delay", "0.2s")
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        # Two events per file, more than the default queue (16384) holds.
        world.as_user(["sh", "-c", f"cd {world.dir} && seq 1 9000 | "
                       "xargs -n 500 sh -c 'for i; do : > t$i.tmp; done' sh && "
                       "echo a > a.db && echo b > b.db && echo c > c.db"])
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert world.drgw("wait", "--cache", world.cache, "--timeout", "60s",
                      timeout=90).returncode == 0, log.read_text()
    deadline = time.time() + 30
    while sorted(s["name"] for s in world.ls()) != ["a.db", "b.db", "c.db"]:
        assert time.time() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
    assert "inotify queue overflow" in log.read_text()
    world.stop_watch(proc, log)


def test_watch_file_changed_while_encoded(world):
    """A file rewritten in place while drgw watch encodes it (slowly, at
    zstd level 19): the encode is abandoned and done again, every version
    on the backend is the old or the new content, never a mix, and the
    newest is the new content.  The settle delay outlasts the encode, so
    it is the encoder's own check that must notice, not a new seal."""
    big = world.dir / "big.db"
    proc, log = world.watch("--settle-delay", "3s", "--encode-threads", "1",
                            "--compression-level", "19")
    world.as_user(["sh", "-c", f"head -c 24M /dev/urandom > {big}"])
    old = sha256(big)
    while "sealed big.db" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        time.sleep(0.01)
    # Same size, new bytes, through a descriptor opened now.
    world.as_user(["sh", "-c", f"head -c 24M /dev/zero | dd of={big} conv=notrunc bs=1M status=none"])
    new = sha256(big)
    assert world.drgw("wait", "--cache", world.cache, "--timeout", "300s",
                      timeout=330).returncode == 0, log.read_text()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert "big.db changed while it was being encoded" in log.read_text()
    versions = world.ls("--versions")
    assert versions and {v["sha256"] for v in versions} <= {old, new}, versions
    out = world.home / "big.out"
    world.restore("big.db", out)
    assert sha256(out) == new
    check_sanitizers(log.read_text(), "drgw watch")


def test_writer_drgw_may_not_see_is_reported(world):
    """The documented limit: drgw watch, as nobody, can neither take a lease
    on root's file nor see root's descriptors in /proc, and says so."""
    if not world.privileged:
        pytest.skip("needs a second user")
    proc, log = world.watch("--settle-delay", "0.2s")
    path = world.dir / "roots.db"
    with open(path, "w") as held:
        held.write("x")
        held.flush()
        os.chmod(path, 0o644)
        with open(path, "a") as other:  # its close is the event
            other.write("y")
        deadline = time.time() + 20
        while "cannot see the open files of" not in log.read_text():
            assert time.time() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.05)
    world.stop_watch(proc, log)


@pytest.mark.skipif(not (PLUGINS / "s3" / "drgw-s3.so").exists() or
                    not (PLUGINS / "gcs" / "drgw-gcs.so").exists(),
                    reason="built without the s3 or gcs plugin (-Dplugins)")
def test_seed_backup_job_to_s3_gcs_and_local(world, monkeypatch):
    """The same job to s3rver, the GCS emulator and a directory at once,
    each restored on its own with drgw restore --latest."""
    from gcsserver import GcsEmulator, backend_url as gcs_url
    from s3server import CREDS, S3rver, backend_url as s3_url

    s3 = S3rver(world.root / "s3rver").start()
    gcs = GcsEmulator(world.root / "gcs").start()
    try:
        env = dict(CREDS, STORAGE_EMULATOR_HOST=gcs.url,
                   AWS_CONFIG_FILE=str(world.home / "none"),
                   AWS_SHARED_CREDENTIALS_FILE=str(world.home / "none"))
        for k in ("GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST"):
            monkeypatch.delenv(k, raising=False)
        s3b = ["--backend", "aws=" + s3_url(s3.url, "app")]
        gcsb = ["--backend", "gcp=" + gcs_url(gcs, "app")]
        backends = [*s3b, *gcsb, *world.backends()]
        reference = {}
        for day in range(1, 4):
            world.app_db(rows=1500, seed=day)
            ts = f"202602{day:02d}-021700"
            world.run(BACKUP_JOB, backends=backends,
                      env={**env, "DB": str(world.db), "BACKUP": str(world.dir), "TS": ts})
            reference[f"app-{ts}.db"] = sha256(world.dir / f"app-{ts}.db")
        for s in world.ls("--versions"):
            assert {b: r["state"] for b, r in s["replicas"].items()} == \
                {"aws": "replicated", "gcp": "replicated", "nfs": "replicated"}
        for b in (s3b, gcsb, world.backends()):
            out = world.home / f"restored-{b[1].split('=')[0]}.db"
            scratch = Path(tempfile.mkdtemp(dir=world.home))
            if world.privileged:
                u = pwd.getpwnam(NOBODY)
                os.chown(scratch, u.pw_uid, u.pw_gid)
            p = world.drgw("restore", "--latest", *world.common(scratch / "c"), *b,
                           "app-*.db", out, env=env)
            assert p.returncode == 0, p.stderr
            assert sha256(out) == reference["app-20260203-021700.db"]
            assert sqlite(out, "PRAGMA integrity_check;") == "ok"
    finally:
        s3.stop()
        gcs.stop()


def test_same_objects_as_the_mount(world, env):
    """A snapshot made without FUSE is one the mount could have made: the
    same object format and footer, side by side on one backend, read by the
    restore view and drgw verify alike."""
    if not (os.geteuid() == 0 and os.path.exists("/dev/fuse")):
        pytest.skip("the mount half needs root and /dev/fuse")
    src = world.home / "src.db"
    world.as_user(["sh", "-c", f"head -c 3000000 /dev/urandom > {src}; "
                   f"touch -d '2026-01-01 00:00:00' {src}"])
    world.run(f"cp -p {src} {world.dir}/nomount.db")
    shutil.copyfile(world.key, env.key)  # one key for both
    gw = env.gateway(backends=["--backend", f"nfs=local://{world.remote}"]).start()
    shutil.copy2(src, env.mnt / "mount.db")
    env.wait()
    assert gw.stop() == 0
    remote = {s["name"]: s for s in json.loads(env.client(
        "ls", "--remote", "--json",
        backends=["--backend", f"nfs=local://{world.remote}"]).stdout)}
    a, b = remote["nomount.db"], remote["mount.db"]
    for field in ("size", "mtime", "sha256"):
        assert a[field] == b[field], field
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", a["version"])
    objs = {k: (world.remote / s["backends"]["nfs"]).read_bytes()
            for k, s in remote.items()}
    x, y = objs["nomount.db"], objs["mount.db"]
    # Same header fields (magic, version, cipher, chunk size, key id),
    # same trailer magic, same size for the same content (zstd output
    # aside, within a few bytes).
    assert x[:8] == b"DRGWOBJ\n" and x[:24] == y[:24] and x[-8:] == y[-8:]
    assert abs(len(x) - len(y)) < 64
    view = env.restore_view(backends=["--backend", f"nfs=local://{world.remote}"]).start()
    for name in ("nomount.db", "mount.db"):
        assert filecmp.cmp(view.mountpoint / name, src, shallow=False)
    assert view.stop() == 0
    p = env.client("verify", backends=["--backend", f"nfs=local://{world.remote}"])
    assert "2 replicas ok, 0 problems" in p.stdout
