# SPDX-License-Identifier: MIT
"""The SIGKILL sweep: the daemon kills itself at each phase of a backup
(kill points of a -Dtest_hooks build, see gateway/testhook.h), is started
again, and must end with every snapshot replicated exactly once, byte for
byte, with nothing left behind.

In CI each point is hit once on the local backend and the upload points
on S3 (s3rver).  The longer run (DRGW_SWEEP=long) also hits each point at
its 2nd..4th pass, with several files per run, on both backends:

    DRGW_SWEEP=long DRGW_BUILD=build python3 -m pytest -q -s \\
        tests/integration/test_kill_sweep.py

It prints points tried, lost, corrupt, duplicated and stuck.
"""
import hashlib
import json
import os
import subprocess
import time

import pytest

from conftest import DRGW, make_app_db, sqlite, unmount
from test_s3 import s3  # noqa: F401 (fixture)
from s3server import backend_url

LONG = os.environ.get("DRGW_SWEEP") == "long"

# (point, which pass of it kills): every phase from the seal to the
# catalog commit after an upload.
# A "/after" suffix: uploads only after encoding (--streaming off), the
# path every retry and every resumed upload takes.
LOCAL_POINTS = ["seal-before-record", "seal-recorded", "encode-chunk:2",
                "encode-published", "encode-committed", "stream-read:2",
                "upload-finished", "replica-recorded",
                "upload-progress/after", "upload-finished/after"]
S3_POINTS = ["stream-read:2", "encode-committed", "upload-finished",
             "upload-progress/after", "upload-finished/after",
             "replica-recorded/after"]

RESULTS = {"tried": 0, "lost": 0, "corrupt": 0, "duplicated": 0, "stuck": 0}


def has_hooks():
    out = subprocess.run([str(DRGW), "--version"], capture_output=True,
                         text=True).stdout
    return "test hooks" in out


pytestmark = pytest.mark.skipif(
    not has_hooks(), reason="drgw built without -Dtest_hooks=true "
    "(tests/run-tests builds with it)")


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def points(base):
    if not LONG:
        return base
    out = []
    for p in base:
        name, _, mode = p.partition("/")
        name = name.split(":")[0]
        out += [f"{name}:{n}" + (f"/{mode}" if mode else "")
                for n in (1, 2, 3, 4)]
    return out


def sweep_one(env, tmp_path, point, backends, files):
    """One kill at point, a restart, and the checks.  Returns the
    problems found (empty when all is well)."""
    RESULTS["tried"] += 1
    work = tmp_path / point.replace(":", "-").replace("/", "-")
    work.mkdir()
    cache = work / "cache"
    extra = ["--chunk-size", "256KiB", "--compression-level", "1"]
    point, _, mode = point.partition("/")
    if mode == "after":
        extra += ["--streaming", "off"]
    os.environ["DRGW_TEST_KILL_AT"] = point
    try:
        gw = env.gateway(*extra, cache=cache, backends=backends,
                         name=f"gw-{point}", mountpoint=work / "mnt").start()
    finally:
        del os.environ["DRGW_TEST_KILL_AT"]
    written = set()
    for name, src in files.items():
        p = subprocess.run(["sqlite3", src, f".backup '{work}/mnt/{name}'"],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            break       # the daemon died under the writer: fine
        written.add(name)
    try:
        gw.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"kill point {point} was never reached:\n"
                             f"{gw.log()[-3000:]}")
    gw.proc = None
    unmount(gw.mountpoint)
    # Files the writer finished before the crash are in the working set;
    # the ones it did not get to are written now, after the restart.
    gw.start()
    for name, src in files.items():
        if name not in written:
            sqlite(src, f".backup '{work}/mnt/{name}'")
    # What the working set holds is what must come back (a .backup copy
    # is not byte-identical to its source: header counters differ).
    want = {name: sha256(work / "mnt" / name) for name in files}
    problems = []
    p = env.drgw("wait", "--timeout", "90s", cache=cache, check=False,
                 timeout=150)
    if p.returncode != 0:
        RESULTS["stuck"] += 1
        problems.append(f"stuck: {p.stderr.strip()}")
    gw.stop()
    versions = json.loads(env.drgw("ls", "--json", "--versions",
                                   cache=cache).stdout)
    for name, digest in want.items():
        mine = [v for v in versions if v["name"] == name]
        if not mine:
            RESULTS["lost"] += 1
            problems.append(f"lost: {name}")
            continue
        if len(mine) > 1:
            RESULTS["duplicated"] += 1
            problems.append(f"duplicated: {name} has {len(mine)} versions")
        out = work / f"restored-{name}"
        r = env.client("restore", name, out, backends=backends,
                       cache=work / "client", check=False)
        if r.returncode != 0 or sha256(out) != digest or \
                sqlite(out, "PRAGMA integrity_check") != "ok":
            RESULTS["corrupt"] += 1
            problems.append(f"corrupt: {name}: {r.stderr.strip()} "
                            f"{sha256(out) if out.exists() else 'none'} "
                            f"{digest} {mine}")
    leftovers = os.listdir(cache / "spool") + os.listdir(cache / "held")
    if leftovers:
        problems.append(f"left in the cache: {leftovers}")
    return problems


def source_files(tmp_path, n):
    files = {}
    for i in range(n):
        src = tmp_path / f"src{i}.db"
        make_app_db(src, rows=4000, seed=i)
        # Incompressible pages too, so S3 uploads are multipart (5 MiB
        # parts below) and local uploads save resume tokens.
        sqlite(src, "CREATE TABLE IF NOT EXISTS pad(b); INSERT INTO pad "
               "SELECT randomblob(4000) FROM generate_series(1, 3000)")
        files[f"app-{i}.db"] = src
    return files


def report(label):
    print(f"\nkill sweep ({label}): {RESULTS}")


@pytest.mark.parametrize("point", points(LOCAL_POINTS))
def test_kill_sweep_local(env, tmp_path, point):
    files = source_files(tmp_path, 4 if LONG else 1)
    problems = sweep_one(env, tmp_path, point, env.backend_args(), files)
    report("local")
    assert not problems, problems
    assert not [p for p in env.remote.rglob("*") if p.name.startswith(".")]


@pytest.mark.parametrize("point", points(S3_POINTS))
def test_kill_sweep_s3(env, s3, tmp_path, point):
    files = source_files(tmp_path, 4 if LONG else 1)
    backends = ["--backend",
                "offsite=" + backend_url(s3.url, "app", **{"part-size": "5M"})]
    problems = sweep_one(env, tmp_path, point, backends, files)
    report("s3")
    assert not problems, problems


@pytest.mark.parametrize("point", ["encode-chunk:1", "encode-published",
                                   "encode-committed", "stream-read:1",
                                   "upload-finished/after",
                                   "replica-recorded"])
def test_kill_during_an_incremental(env, tmp_path, point):
    """The same phases for a version stored as an increment of the one
    before: after the restart both restore byte for byte, once each."""
    kill_during_an_incremental(env, tmp_path, point, None)


@pytest.mark.parametrize("point", ["stream-read:1", "upload-finished/after"])
def test_kill_during_an_incremental_on_s3(env, s3, tmp_path, point):
    kill_during_an_incremental(env, tmp_path, point, [
        "--backend", "offsite=" + backend_url(s3.url, "inc", **{"part-size": "5M"})])


def kill_during_an_incremental(env, tmp_path, point, backends):
    from test_incremental import day_of_changes
    point, _, mode = point.partition("/")
    RESULTS["tried"] += 1
    src = tmp_path / "src.db"
    make_app_db(src, rows=20000)
    extra = ["--streaming", "off"] if mode == "after" else []
    gw = env.gateway(*extra, backends=backends).start()
    sqlite(src, f".backup '{env.mnt}/app-1.db'")
    env.wait(timeout=60)
    day_of_changes(src, 2)
    os.environ["DRGW_TEST_KILL_AT"] = point
    try:
        gw.stop()
        gw.start()
    finally:
        del os.environ["DRGW_TEST_KILL_AT"]
    sqlite(src, f".backup '{env.mnt}/app-2.db'")
    try:
        gw.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"kill point {point} was never reached")
    gw.proc = None
    unmount(gw.mountpoint)
    gw.start()
    want = {n: sha256(env.mnt / n) for n in ("app-1.db", "app-2.db")}
    env.wait(timeout=90)
    gw.stop()
    vs = env.ls("--versions")
    assert sorted(v["name"] for v in vs) == ["app-1.db", "app-2.db"], vs
    assert [v for v in vs if v["name"] == "app-2.db"][0]["stored_as"] == \
        "incremental"
    for name, digest in want.items():
        out = tmp_path / f"restored-{name}"
        env.client("restore", name, out, cache=tmp_path / f"c-{name}",
                   backends=backends)
        assert sha256(out) == digest, name
    assert not os.listdir(env.cache / "spool")
