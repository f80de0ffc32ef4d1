# SPDX-License-Identifier: MIT
"""drgw prune after a year of backups: the real daemon, under libfaketime,
seals about 400 snapshots over 13 months (one to three a day, gaps, a
nine-day outage, a state.json rewritten weekly) and uploads them to a local
directory, s3rver and the GCS emulator.  Then each backend is pruned with
its own policy from one config file, and the result is checked against the
expected kept set computed in the test (restic_policy.py, from the
backends' object lists), with the reasons: the local backend also against
the restore view, `drgw ls` and the metrics; S3 and GCS from the bucket
alone, then with a prune killed in the middle (after S3 applied a batch,
and amid parallel GCS deletes) that the next run finishes where one
uninterrupted run ends."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import prune_sim
from conftest import DRGW, PLUGINS, Env, run
from gcsserver import BUCKET as GCS_BUCKET
from gcsserver import GcsEmulator
from gcsserver import backend_url as gcs_url
from s3server import BUCKET, CREDS, Proxy, S3rver
from s3server import backend_url as s3_url

pytestmark = [
    pytest.mark.skipif(not prune_sim.FAKETIME.exists(),
                       reason="needs libfaketime (scripts/install-deps)"),
    pytest.mark.skipif(not (PLUGINS / "s3" / "drgw-s3.so").exists() or
                       not (PLUGINS / "gcs" / "drgw-gcs.so").exists(),
                       reason="built without the s3 or gcs plugin"),
]

DAYS = 390
SEED = 20261203
GFS = {"daily": 7, "weekly": 5, "monthly": 12, "yearly": 2}
POLICIES = {
    # [drgw] for every backend without its own
    "s3": GFS,
    "nfs": {"daily": 14, "monthly": 6, "within": "3d"},
    "gcs": {"last": 3, "within-daily": "10d", "monthly": -1},
}


def gcs_keys(emu, prefix):
    keys, token = [], None
    while True:
        q = {"prefix": prefix + "/", "maxResults": "1000"}
        if token:
            q["pageToken"] = token
        with urllib.request.urlopen("%s/storage/v1/b/%s/o?%s" % (
                emu.url, GCS_BUCKET, urllib.parse.urlencode(q))) as r:
            page = json.load(r)
        keys += [i["name"][len(prefix) + 1:] for i in page.get("items", [])
                 if i["name"].endswith(".drgw")]   # not the index records
        token = page.get("nextPageToken")
        if not token:
            return sorted(keys)


def s3_client(endpoint):
    import botocore.config
    import botocore.session
    return botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=CREDS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDS["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(s3={"addressing_style": "path"}))


def s3_keys(endpoint, prefix):
    keys = []
    pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=prefix + "/")
    for page in pages:
        keys += [o["Key"][len(prefix) + 1:] for o in page.get("Contents", [])
                 if o["Key"].endswith(".drgw")]   # not the index records
    return sorted(keys)


class Year:
    """The world after the simulated year."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.env = Env(tmp)
        self.clock = prune_sim.FakeClock(tmp / "faketime")
        end = time.time() - 2 * 86400
        self.plan = prune_sim.schedule(SEED, end, DAYS)
        self.s3 = self.gcs = None
        self.urls = {}

    def start_servers(self):
        with prune_sim.environ(self.clock.env()):
            # s3rver checks request times against its own clock.
            self.s3 = S3rver(self.tmp / "s3rver").start()
        self.gcs = GcsEmulator(self.tmp / "gcs").start()
        self.urls = {
            "nfs": "local://%s" % self.env.remote,
            "s3": s3_url(self.s3.url, "year"),
            "gcs": gcs_url(self.gcs, "year"),
        }

    def config(self, path, urls=None):
        """The prune configuration: GFS for all, nfs and gcs their own."""
        def lines(p):
            return ["keep-%s = %s" % (k, "unlimited" if v == -1 else v)
                    for k, v in p.items()]
        text = ["[drgw]", *lines(GFS)]
        for name, url in (urls or self.urls).items():
            text += ['[backend "%s"]' % name, "url = " + url]
            if POLICIES[name] is not GFS:
                text += lines(POLICIES[name])
        path.write_text("\n".join(text) + "\n")
        return path

    def simulate(self):
        backends = []
        for name, url in self.urls.items():
            backends += ["--backend", "%s=%s" % (name, url)]
        gw = self.env.gateway("--settle-delay", "0", "--upload-workers", "8",
                              "--backend-concurrency", "4", backends=backends)
        with prune_sim.environ(self.clock.env()):
            gw.start()
        try:
            prune_sim.run_year(self.clock, self.env.mnt, self.env.cache, self.plan)
            self.env.wait(timeout=300)
        finally:
            self.clock.real()
            gw.stop()

    def keys(self, backend):
        if backend == "nfs":
            return self.env.objects()
        if backend == "s3":
            return s3_keys(self.s3.url, "year")
        return gcs_keys(self.gcs, "year")

    def prune(self, *args, cache=None, check=True, timeout=300):
        cfg = self.config(self.tmp / "prune.conf")
        extra = ["--cache", cache] if cache else []
        return run("prune", "--config", cfg, "--key-file", self.env.key,
                   "--plugin-dir", PLUGINS, *extra, *args, check=check,
                   timeout=timeout)

    def stop(self):
        self.env.cleanup()
        if self.s3:
            self.s3.stop()
        if self.gcs:
            self.gcs.stop()


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("needs root and /dev/fuse")
    mp = pytest.MonkeyPatch()
    for k, v in CREDS.items():
        mp.setenv(k, v)
    tmp = tmp_path_factory.mktemp("year")
    mp.setenv("AWS_CONFIG_FILE", str(tmp / "none"))
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "none"))
    y = Year(tmp)
    try:
        y.start_servers()
        t0 = time.time()
        y.simulate()
        y.sim_seconds = time.time() - t0
        yield y
    finally:
        y.stop()
        mp.undo()


def json_lines(out):
    return [json.loads(line) for line in out.splitlines()]


def check_plan(year, backend, lines, dry_run):
    """The lines drgw printed for backend are the expected plan, reasons
    and all; returns the expected kept set."""
    snaps = prune_sim.snapshots_of(year.keys(backend), year.plan)
    want = prune_sim.expected(POLICIES[backend], snaps, time.time())
    mine = [x for x in lines if x["backend"] == backend]
    assert len(mine) == len(snaps)
    for x in mine:
        t, name = snaps[x["version"]]
        assert x["name"] == name
        assert x["group"] == prune_sim.name_pattern(name)
        assert x["time"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        if x["version"] in want:
            assert x["action"] == "keep", x
            assert set(x["reasons"]) == want[x["version"]], x
        else:
            assert x["action"] == "remove" and x["reasons"] == [], x
            assert x.get("dry_run") is (True if dry_run else None)
            if not dry_run:
                assert x["removed"] is True, x
    return want


def test_the_year_was_sealed_when_the_schedule_says(year):
    keys = year.env.objects()
    snaps = prune_sim.snapshots_of(keys, year.plan)
    assert len(snaps) == len(year.plan)
    # Each sealed within seconds of its time in the schedule.
    for (t, name), (want, want_name) in zip(sorted(snaps.values()),
                                            sorted(year.plan)):
        assert name == want_name and 0 <= t - want < 30, (name, t, want)
    for b in ("s3", "gcs"):
        assert year.keys(b) == keys, b
    # Several per day, gaps, a long outage: the schedule the policy meets.
    days = {time.strftime("%Y%m%d", time.gmtime(t)) for t, _ in year.plan}
    assert DAYS - 80 < len(days) < DAYS - 9
    print("simulated %d snapshots over %d days in %.1fs" %
          (len(year.plan), DAYS, year.sim_seconds))


def test_local_backend(year, tmp_path):
    before = year.keys("nfs")
    dry = year.prune("--backend", "nfs", "--dry-run", "--json",
                     cache=year.env.cache)
    want = check_plan(year, "nfs", json_lines(dry.stdout), True)
    assert year.keys("nfs") == before  # a dry run changes nothing
    assert 0 < len(want) < len(before) / 5

    out = year.prune("--backend", "nfs", "--json", cache=year.env.cache)
    check_plan_after(year, "nfs", json_lines(out.stdout), want, before)
    kept_keys = sorted(v + ".drgw" for v in want)
    assert year.keys("nfs") == kept_keys

    # ls --remote (from the objects, empty cache) lists exactly the kept.
    remote = json.loads(year.env.client("ls", "--remote", "--versions",
                                        "--json").stdout)
    assert sorted(r["version"] for r in remote) == sorted(want)
    # The catalog of the backup's cache knows what went: pruned, not lost.
    ls = year.env.ls("--versions")
    for v in ls:
        state = v["replicas"]["nfs"]["state"]
        assert state == ("replicated" if v["version"] in want else "pruned"), v
        # The other backends were not touched.
        assert v["replicas"]["s3"]["state"] == "replicated"
    # The restore view of the pruned backend, over an empty cache: the
    # newest kept version of every name, and it reads.
    view = year.env.restore_view(name="view").start()
    try:
        snaps = prune_sim.snapshots_of(kept_keys, year.plan)
        assert sorted(os.listdir(view.mountpoint)) == \
            sorted({n for _, n in snaps.values()})
        state = (view.mountpoint / "state.json").read_bytes()
        last_state = max(i for i, (t, n) in enumerate(year.plan) if n == "state.json")
        assert state == ("state.json %d\n" % last_state).encode() * 8
    finally:
        view.stop()
    # Metrics and status of the cache the prune recorded into.
    prom = year.env.drgw("status", "--prometheus").stdout
    removed = len(before) - len(want)
    assert 'drgw_prune_removed_snapshots{backend="nfs"} %d' % removed in prom
    assert 'drgw_prune_last_success{backend="nfs"} 1' in prom
    assert 'drgw_prune_policy_shortest_window_seconds{backend="nfs"} 259200.000' in prom
    # Nothing more to do on a second run.
    again = json_lines(year.prune("--backend", "nfs", "--json").stdout)
    assert {x["action"] for x in again} == {"keep"}


def check_plan_after(year, backend, lines, want, before):
    mine = [x for x in lines if x["backend"] == backend]
    assert len(mine) == len(before)
    for x in mine:
        assert x["action"] == ("keep" if x["version"] in want else "remove"), x
        if x["action"] == "keep":
            assert set(x["reasons"]) == want[x["version"]], x
        else:
            assert x["removed"] is True and "error" not in x, x


def dry_run_from_the_bucket_alone(year, backend):
    """The plan, reasons and all, from the bucket and the key alone (no
    cache: a new cluster); the expected kept set."""
    before = year.keys(backend)
    dry = year.prune("--backend", backend, "--dry-run", "--json")
    want = check_plan(year, backend, json_lines(dry.stdout), True)
    assert year.keys(backend) == before
    table = year.prune("--backend", backend, "--dry-run").stdout
    assert ("%s (" % backend) in table and ("kept %d" % len(want)) in table
    assert ("would remove %d" % (len(before) - len(want))) in table
    return before, want


def oldest_removals(keys, want, plan):
    """The oldest snapshot of each group where the plan removes it."""
    oldest = {}
    for vid, (t, name) in prune_sim.snapshots_of(keys, plan).items():
        g = prune_sim.name_pattern(name)
        if g not in oldest or t < oldest[g][0]:
            oldest[g] = (t, vid)
    return {vid for t, vid in oldest.values() if vid not in want}


def test_s3_then_sigkill_after_a_batch_was_applied(year, tmp_path):
    """The backend applied the batch, the prune died before it heard; the
    next prune finishes and ends where one uninterrupted run would."""
    before, want = dry_run_from_the_bucket_alone(year, "s3")
    proxy = Proxy(year.s3.port)
    cache = tmp_path / "cache"
    urls = dict(year.urls, s3=s3_url(proxy.url, "year"))
    cfg = year.config(tmp_path / "crash.conf", urls)
    argv = [str(DRGW), "prune", "--config", str(cfg), "--key-file",
            str(year.env.key), "--plugin-dir", str(PLUGINS), "--cache",
            str(cache), "--backend", "s3"]
    forward = proxy.forward

    def applied_then_silent(method, raw, headers, body):
        answer = forward(method, raw, headers, body)
        if method == "POST" and "delete" in raw:
            time.sleep(60)
        return answer
    proxy.forward = applied_then_silent
    try:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while s3_keys(year.s3.url, "year") == before:
            assert time.time() < deadline and p.poll() is None
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.wait()
        # Each group's oldest goes in a last batch, after the others
        # (prune.c, remove_planned): it is still there.
        held = oldest_removals(before, want, year.plan)
        assert s3_keys(year.s3.url, "year") == sorted(v + ".drgw" for v in set(want) | held)
        # The catalog says "removing", not "removed": nothing half-true.
        ls = sqlite_rows(cache, "SELECT state, COUNT(*) FROM pruned GROUP BY state")
        assert ls == [("removing", len(before) - len(want) - len(held))]
        proxy.forward = forward
        out = run(*argv[1:], "--json", timeout=300)
    finally:
        proxy.close()
    lines = json_lines(out.stdout)
    assert {x["version"] for x in lines} == set(want) | held
    assert {x["version"] for x in lines if x["action"] == "keep"} == set(want)
    assert s3_keys(year.s3.url, "year") == sorted(v + ".drgw" for v in want)
    assert sqlite_rows(cache, "SELECT state, COUNT(*) FROM pruned GROUP BY state") == \
        [("removed", len(before) - len(want))]


def test_gcs_then_sigkill_amid_parallel_deletes(year, tmp_path):
    """Some deletes done, some never sent, when the prune dies; the next
    prune finishes and ends where one uninterrupted run would."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gcs"))
    from gcsproxy import Proxy as GcsProxy
    before, want = dry_run_from_the_bucket_alone(year, "gcs")
    proxy = GcsProxy(int(year.gcs.url.rsplit(":", 1)[1]))
    release = threading.Event()
    lock = threading.Lock()
    seen = []

    def intercept(rec):
        if rec["method"] != "DELETE":
            return None
        with lock:
            seen.append(rec)
            n = len(seen)
        if n <= 12:
            return None
        release.wait(120)
        return (503, [("Content-Type", "text/plain")], b"stopped by the test")
    proxy.intercept = intercept
    cache = tmp_path / "cache"
    urls = dict(year.urls, gcs=gcs_url_of(proxy.url, "year"))
    cfg = year.config(tmp_path / "crash.conf", urls)
    argv = [str(DRGW), "prune", "--config", str(cfg), "--key-file",
            str(year.env.key), "--plugin-dir", str(PLUGINS), "--cache",
            str(cache), "--backend", "gcs"]
    try:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while len(gcs_keys(year.gcs, "year")) > len(before) - 12:
            assert time.time() < deadline and p.poll() is None
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.wait()
        release.set()
        left = gcs_keys(year.gcs, "year")
        assert len(want) < len(left) < len(before)
        # Whatever was removed, each group's oldest was not.
        assert oldest_removals(before, want, year.plan) <= {k[:-5] for k in left}
        proxy.intercept = None
        out = run(*argv[1:], "--json", timeout=300)
    finally:
        release.set()
        proxy.close()
    lines = json_lines(out.stdout)
    assert {x["version"] for x in lines} == {k[:-5] for k in left}
    assert {x["version"] for x in lines if x["action"] == "keep"} == set(want)
    assert gcs_keys(year.gcs, "year") == sorted(v + ".drgw" for v in want)
    assert sqlite_rows(cache, "SELECT state, COUNT(*) FROM pruned GROUP BY state") == \
        [("removed", len(before) - len(want))]


def gcs_url_of(endpoint, prefix):
    class E:
        url = endpoint
    return gcs_url(E, prefix)


def sqlite_rows(cache, sql):
    import sqlite3
    db = sqlite3.connect(str(cache / "catalog.db"), timeout=10)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()
