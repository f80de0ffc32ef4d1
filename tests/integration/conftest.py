# SPDX-License-Identifier: MIT
"""Fixtures for the integration suite: they run the real drgw binary, mount
the real FUSE file system and talk to real backends (a local directory here;
s3rver and the GCS emulator in their own suites).

Every mount is unmounted in teardown, even when a test fails or killed the
daemon, and every daemon log is checked for sanitizer reports: a test that
leaves an AddressSanitizer or UBSan report behind fails.

Two variables fit the suite to where it runs (tests/debian13/run sets both):
DRGW_EXPECT_IO=passthrough makes every gateway mount check that it moves
file data the way the environment promises, from drgw's own log line;
DRGW_TEST_SERVERS=none leaves out the tests that need the npm test servers
(the s3 and gcs fixtures).
"""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("DRGW_BUILD", ROOT / "build")).resolve()
DRGW = BUILD / "gateway" / "drgw"
PLUGINS = BUILD / "plugins"

EXPECT_IO = os.environ.get("DRGW_EXPECT_IO")
IO_RE = re.compile(r"gateway I/O: (\S+)")

SANITIZER_RE = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    r"WARNING: ThreadSanitizer|SUMMARY: UndefinedBehaviorSanitizer")


def pytest_configure(config):
    if not DRGW.exists():
        raise pytest.UsageError(f"{DRGW} not found: build first (DRGW_BUILD)")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("DRGW_TEST_SERVERS") != "none":
        return
    keep, drop = [], []
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        (drop if uses & {"s3", "gcs"} else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def passthrough_built():
    """Whether this build has FUSE passthrough (libfuse >= 3.17)."""
    header = (BUILD / "drgw-build.h").read_text()
    return "#define DRGW_FUSE_PASSTHROUGH 1" in header


@pytest.fixture(autouse=True)
def need_fuse():
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("needs root and /dev/fuse")


def run(*args, check=True, timeout=120, **kw):
    """Runs drgw with args; returns the CompletedProcess (text mode)."""
    p = subprocess.run([str(DRGW), *map(str, args)], capture_output=True,
                       text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(
            f"drgw {' '.join(map(str, args))} exited {p.returncode}\n"
            f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def unmount(path):
    for cmd in (["fusermount3", "-u", str(path)],
                ["umount", "-l", str(path)]):
        if not is_mounted(path):
            return
        subprocess.run(cmd, capture_output=True)
        for _ in range(100):
            if not is_mounted(path):
                return
            time.sleep(0.05)


def check_sanitizers(text, what):
    m = SANITIZER_RE.search(text)
    if m:
        start = max(0, m.start() - 200)
        raise AssertionError(f"sanitizer report in {what}:\n"
                             f"{text[start:start + 4000]}")


class Daemon:
    """One `drgw mount -f` process and its mount point."""

    def __init__(self, tmp, name, args, mountpoint, expect_io=None):
        self.args = [str(a) for a in args]
        # The I/O path its log must name at each start (None: no check).
        self.expect_io = expect_io
        self.mountpoint = Path(mountpoint)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.log_path = tmp / f"{name}.log"
        self.proc = None
        self.starts = 0

    def start(self, wait=True, timeout=20):
        self.starts += 1
        mark = len(self.log())
        logf = open(self.log_path, "a")
        logf.write(f"--- start {self.starts}: {' '.join(self.args)}\n")
        logf.flush()
        self.proc = subprocess.Popen(
            [str(DRGW), "mount", "-f", *self.args, str(self.mountpoint)],
            stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        if not wait:
            return self
        deadline = time.time() + timeout
        while not is_mounted(self.mountpoint):
            if self.proc.poll() is not None:
                raise AssertionError(f"drgw mount exited {self.proc.returncode}:\n{self.log()}")
            if time.time() > deadline:
                raise AssertionError(f"mount did not appear:\n{self.log()}")
            time.sleep(0.02)
        if self.expect_io:
            self.wait_log(IO_RE.pattern, timeout=timeout, start=mark)
            used = IO_RE.search(self.log()[mark:]).group(1)
            assert used == self.expect_io, \
                f"the mount uses {used}, not {self.expect_io}:\n{self.log()[mark:]}"
        return self

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, pattern, timeout=60, start=0):
        """Waits until the log (from offset start) matches pattern."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if rx.search(self.log()[start:]):
                return
            if self.proc and self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"log never matched {pattern!r}:\n{self.log()[-4000:]}")

    def stop(self, timeout=90):
        """Graceful stop: unmount, then the daemon drains and exits."""
        if self.proc is None:
            return 0
        unmount(self.mountpoint)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        check_sanitizers(self.log(), self.log_path.name)
        return rc

    def kill(self):
        """SIGKILL, as a crash or the OOM killer would."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        unmount(self.mountpoint)

    def cleanup(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        unmount(self.mountpoint)
        check_sanitizers(self.log(), self.log_path.name)


class Env:
    """A scratch world: a key, a cache dir, a local backend, mount points."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.key = tmp / "key"
        run("keygen", self.key)
        self.cache = tmp / "cache"
        self.remote = tmp / "remote"
        self.remote.mkdir()
        self.mnt = tmp / "mnt"
        self.daemons = []

    def backend_args(self, name="nfs", path=None):
        return ["--backend", f"{name}=local://{path or self.remote}"]

    def common(self, cache=None, key=None):
        return ["--cache", cache or self.cache, "--key-file", key or self.key,
                "--plugin-dir", PLUGINS]

    def gateway(self, *extra, cache=None, backends=None, name="gateway",
                mountpoint=None, settle="0.2s", expect_io=EXPECT_IO):
        args = [*self.common(cache), *(backends or self.backend_args()),
                "--settle-delay", settle, "--retry-min", "0.2s",
                "--retry-max", "1s", "--drain-timeout", "30s", *extra]
        if "--passthrough" in args:
            expect_io = None
        d = Daemon(self.tmp, name, args, mountpoint or self.mnt, expect_io)
        self.daemons.append(d)
        return d

    def restore_view(self, *extra, backends=None, cache=None, key=None,
                     name="restore", mountpoint=None):
        cache = cache or self.tmp / f"{name}-cache"
        args = ["--restore", *self.common(cache, key),
                *(backends or self.backend_args()), *extra]
        d = Daemon(self.tmp, name, args, mountpoint or self.tmp / f"{name}-mnt")
        self.daemons.append(d)
        return d

    def drgw(self, *args, check=True, cache=None, timeout=120):
        return run(*args, "--cache", cache or self.cache, check=check,
                   timeout=timeout)

    def client(self, *args, check=True, backends=None, cache=None, key=None,
               timeout=300):
        """A command that reads the backends (restore, verify, ls --remote)."""
        return run(*args, *self.common(cache or self.tmp / "client-cache", key),
                   *(backends or self.backend_args()), check=check,
                   timeout=timeout)

    def wait(self, timeout=120):
        return self.drgw("wait", "--timeout", f"{timeout}s", timeout=timeout + 30)

    def ls(self, *args):
        return json.loads(self.drgw("ls", "--json", *args).stdout)

    def objects(self, remote=None):
        """Objects in a local backend directory (no temp files)."""
        root = Path(remote or self.remote)
        return sorted(p.name for p in root.rglob("*.drgw") if p.is_file())

    def cleanup(self):
        errors = []
        for d in reversed(self.daemons):
            try:
                d.cleanup()
            except AssertionError as e:
                errors.append(str(e))
        if errors:
            raise AssertionError("\n".join(errors))


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.cleanup()


def sqlite(*args, check=True):
    p = subprocess.run(["sqlite3", *map(str, args)], capture_output=True,
                       text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"sqlite3 {args} failed: {p.stderr}")
    return p.stdout.strip()


def make_app_db(path, rows=5000, seed=0):
    """An application-like database: text, JSON-ish strings, small blobs."""
    sqlite(path,
           "CREATE TABLE IF NOT EXISTS applications(id INTEGER PRIMARY KEY, "
           "name TEXT, state TEXT, doc TEXT, blob BLOB);"
           f"INSERT INTO applications(name, state, doc, blob) "
           f"SELECT 'app-' || (value + {seed}), "
           f"CASE value % 3 WHEN 0 THEN 'new' WHEN 1 THEN 'review' ELSE 'done' END, "
           f"json_object('id', value, 'seed', {seed}, 'tags', json_array('a','b')), "
           f"randomblob(64) FROM generate_series(1, {rows});")
