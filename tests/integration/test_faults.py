# SPDX-License-Identifier: MIT
"""Faults per request while the seed's backup job runs and while its
snapshots are restored (issue 15, "make the campaign part of the
project").

For every backend (local through the faults:// wrapper plugin, S3 through
the fault-injecting proxy in front of s3rver and radosgw, GCS through the
proxy in front of the emulator) and every kind of fault (the Nth request
fails, throttling answers, a connection reset in the middle of a request
or response body, an answer lost after the server applied the request, a
stall, a corrupted response byte, a full outage), the backup job
(sqlite3 .backup into the mount, then the seed's `ls -t | tail | rm`)
runs two days while the fault hits the uploads, then a restore view over
an empty cache is read while the fault hits the reads.  A user must see:
every snapshot eventually replicated; every restored file byte-identical
(sha256) and passing PRAGMA integrity_check; and never a wrong byte: a
read either fails (EIO, and a retry succeeds) or returns the right bytes.
"""
import errno
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PLUGINS, make_app_db, sqlite
from gcsserver import GcsEmulator
from s3server import Proxy, Radosgw, S3rver
from s3server import backend_url as s3_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gcs"))
from gcsproxy import Proxy as GcsProxy  # noqa: E402

BACKUP_JOB = """
set -eu
sqlite3 "$DB" ".backup '$MNT/app-$TS.db'"
ls -t "$MNT"/*.db | tail -n +8 | xargs -r rm
"""

# The kinds of fault, each as (what hits the uploads, what hits the reads)
# per backend.  Upload requests are S3 PUTs (objects and parts) and GCS
# uploads; reads are ranged GETs of objects (the view reads each object's
# tail when it mounts, so reads are counted from the third on).
S3_UP = dict(method="PUT")
S3_RD = dict(method="GET", path=r"\.drgw$", skip=2)
GCS_UP = dict(path=r"/upload/")
GCS_RD = dict(method="GET", path=r"alt=media", skip=2)

KINDS = {
    # The Nth request fails with a server error; throttling answers.
    "errors": {
        "local": ("put@2:error=EAGAIN;put@3:error=EIO",
                  "get@4:error=ECONNRESET;get@5:error=EAGAIN"),
        "s3": ([dict(S3_UP, skip=1, status=503, code="SlowDown"),
                dict(S3_UP, status=500, code="InternalError"),
                dict(S3_UP, status=429)],
               [dict(S3_RD, skip=1, status=500, code="InternalError"),
                dict(S3_RD, status=503, code="SlowDown", times=2)]),
        "gcs": ([dict(GCS_UP, skip=1, status=503),
                 dict(GCS_UP, status=429, times=2)],
                [dict(GCS_RD, skip=1, status=500),
                 dict(GCS_RD, status=429, times=2)]),
    },
    # Connections reset in the middle of a request body (an upload) and of
    # a response body (a read); answers lost after the server applied the
    # request (an upload, a CompleteMultipartUpload).
    "resets": {
        "local": ("put@1:cut=100000", "get@3:cut=1"),
        "s3": ([dict(S3_UP, reset="request"),
                dict(S3_UP, skip=1, forward_first=True, drop=True),
                dict(method="POST", query=r"^uploadId=", forward_first=True,
                     drop=True)],
               [dict(S3_RD, reset="response")]),
        "gcs": ([dict(GCS_UP, method="PUT", reset="request"),
                 dict(GCS_UP, method="PUT", skip=1, forward_first=True,
                      drop=True)],
                [dict(GCS_RD, reset="response")]),
    },
    # (A stall is only latency to the plugins' HTTP code, which the other
    # kinds exercise on GCS already: local and S3 suffice.)
    "stall": {
        "local": ("put@1:stall=400", "get@3:stall=400"),
        "s3": ([dict(S3_UP, delay=0.4)], [dict(S3_RD, delay=0.4)]),
    },
    "corrupt-byte": {
        "local": ("", "get@3:corrupt;get@5:corrupt"),
        "s3": ([], [dict(S3_RD, corrupt=True, times=2)]),
        "gcs": ([], [dict(GCS_RD, corrupt=True, times=2)]),
    },
    # Every connection refused or reset for a while.
    "outage": {
        "local": ("any@1:outage=1000", "get@3:outage=1000"),
        "s3": ("outage", "outage"),
        "gcs": ("outage", "outage"),
    },
}
# radosgw verifies signatures and has real multipart semantics (a lost
# Complete answer meets NoSuchUpload there): the resets run there too.
RADOSGW_KINDS = ("resets",)

CASES = [(b, k) for k in KINDS for b in ("local", "s3", "gcs") if b in KINDS[k]]
CASES += [("radosgw", k) for k in RADOSGW_KINDS]

MiB = 1 << 20


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def s3rver(tmp_path_factory):
    srv = S3rver(tmp_path_factory.mktemp("s3rver")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def rgw(tmp_path_factory):
    if not Radosgw.available():
        pytest.skip("Ceph radosgw is not installed (scripts/install-deps)")
    srv = Radosgw(tmp_path_factory.mktemp("radosgw")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory):
    emu = GcsEmulator(tmp_path_factory.mktemp("gcs")).start()
    yield emu
    emu.stop()


class Backend:
    """One backend under test and the knobs that make it misbehave."""

    def __init__(self, kind, prefix):
        self.kind, self.prefix = kind, prefix
        self.proxy = None
        self.server = None
        self.hits = []          # proxy faults, to check they acted

    def url(self, faults):
        """The backend URL for the gateway (faults: the local backend's
        rules; the proxies get theirs from arm())."""
        raise NotImplementedError

    def arm(self, specs):
        """Injects specs into the proxy: a list of fault rules or
        "outage".  (The local backend's rules are in its URL.)"""
        if self.proxy is None:
            return
        if specs == "outage":
            self.proxy.outage(1.0)
            self.hits.append(None)
            return
        for spec in specs:
            self.hits.append(self.proxy.add_fault(**spec))

    def check_hit(self):
        if self.proxy is not None:
            assert all(f is None or f.hits for f in self.hits), \
                "an injected fault never matched a request"
            self.proxy.clear_faults()
            self.hits = []

    def close(self):
        if self.proxy is not None:
            self.proxy.close()


class LocalBackend(Backend):
    def __init__(self, env, prefix):
        super().__init__("local", prefix)
        self.dir = env.tmp / "remote-faults"
        self.dir.mkdir()

    def url(self, faults):
        return f"faults://local://{self.dir}?faults={faults}"


class S3Backend(Backend):
    def __init__(self, server, prefix, monkeypatch, tmp_path):
        super().__init__("s3", prefix)
        self.server = server
        for k, v in server.creds.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        self.proxy = Proxy(server.port)

    def url(self, faults):
        return s3_url(self.proxy.url, self.prefix, **{"part-size": "5M"})


class GcsBackend(Backend):
    def __init__(self, emu, prefix, monkeypatch):
        super().__init__("gcs", prefix)
        for k in ("GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST",
                  "STORAGE_EMULATOR_HOST"):
            monkeypatch.delenv(k, raising=False)
        self.proxy = GcsProxy(int(emu.url.rsplit(":", 1)[1]))

    def url(self, faults):
        q = {"endpoint": self.proxy.url, "chunk-size": "1M",
             "retry-base-ms": "20", "retry-cap-ms": "200",
             "connect-timeout": "2"}
        return f"gcs://drgw/{self.prefix}?" + "&".join(
            f"{k}={v}" for k, v in q.items())


@pytest.fixture
def backend(request, env, tmp_path, monkeypatch):
    which = request.param
    plugin = {"local": "faults", "radosgw": "s3"}.get(which, which)
    if not (PLUGINS / plugin / f"drgw-{plugin}.so").exists():
        pytest.skip(f"built without the {plugin} plugin (-Dplugins)")
    prefix = "faults-" + request.node.callspec.id.replace("/", "-")
    if which == "local":
        b = LocalBackend(env, prefix)
    elif which == "s3":
        b = S3Backend(request.getfixturevalue("s3rver"), prefix, monkeypatch,
                      tmp_path)
    elif which == "radosgw":
        b = S3Backend(request.getfixturevalue("rgw"), prefix, monkeypatch,
                      tmp_path)
    else:
        b = GcsBackend(request.getfixturevalue("gcs_emulator"), prefix,
                       monkeypatch)
    yield b
    b.close()


def read_until_right(path, want, attempts=20):
    """Reads path from the view until it works; every read that returns
    must return exactly the right bytes.  Returns the failed attempts."""
    failed = []
    for _ in range(attempts):
        try:
            data = path.read_bytes()
        except OSError as e:
            assert e.errno == errno.EIO, e
            failed.append(e)
            time.sleep(0.3)
            continue
        assert len(data) == len(want) and sha256(data) == sha256(want), \
            f"{path.name}: a read returned wrong bytes"
        return failed
    raise AssertionError(f"{path.name} never read back: {failed}")


@pytest.mark.parametrize("backend,kind", CASES, indirect=["backend"],
                         ids=[f"{b}-{k}" for b, k in CASES])
def test_backup_and_restore_under_faults(env, backend, kind, tmp_path):
    spec = KINDS[kind]["s3" if backend.kind in ("s3", "radosgw") else
                       backend.kind]
    up, rd = spec
    db, reference = tmp_path / "app.db", tmp_path / "reference"
    reference.mkdir()
    name = "off"

    # Debug logs: the faults plugin says there which calls it hit.
    gw = env.gateway("--log-level", "debug",
                     backends=["--backend", f"{name}={backend.url(up)}"])
    backend.arm(up)
    gw.start()
    # Two days of the backup job: a small database (one request) and one
    # that takes several (S3 parts of 5 MiB, GCS chunks of 1 MiB).
    for day, rows in ((1, 3000), (2, 80000)):
        make_app_db(db, rows=rows, seed=day * 1000)
        ts = f"2026010{day}-020000"
        subprocess.run(["bash", "-c", BACKUP_JOB], check=True, timeout=120,
                       env={**os.environ, "DB": str(db), "MNT": str(env.mnt),
                            "TS": ts})
        sqlite(db, f".backup '{reference / f'app-{ts}.db'}'")
    env.wait(timeout=120)
    snaps = env.ls()
    assert sorted(s["name"] for s in snaps) == sorted(os.listdir(reference))
    assert all(s["replicas"][name]["state"] == "replicated" for s in snaps)
    assert gw.stop() == 0
    backend.check_hit()
    if backend.kind == "local":
        assert not [p for p in backend.dir.iterdir() if p.name.startswith(".")]
        if up:
            assert "faults: put #" in gw.log() or "faults: any #" in gw.log()
    if backend.kind == "radosgw":
        assert backend.server.uploads(backend.prefix + "/") == []

    # Disaster: an empty cache, the reads under fire.
    shutil.rmtree(env.cache)
    view = env.restore_view("--log-level", "debug",
                            backends=["--backend", f"{name}={backend.url(rd)}"])
    view.start()
    names = sorted(os.listdir(view.mountpoint))
    assert names == sorted(os.listdir(reference))
    backend.arm(rd)
    for n in names:
        want = (reference / n).read_bytes()
        read_until_right(view.mountpoint / n, want)
        out = tmp_path / "restored" / n
        out.parent.mkdir(exist_ok=True)
        shutil.copy(view.mountpoint / n, out)
        assert sha256(out.read_bytes()) == sha256(want)
        assert sqlite(out, "PRAGMA integrity_check;") == "ok"
    view.stop()
    backend.check_hit()
    if backend.kind == "local" and rd:
        assert "faults: get #" in view.log()
    # A corrupted answer was delivered (check_hit) and every read that
    # returned gave the right bytes: the reader refused it (EIO to the
    # user, or a refetch when the kernel's read-ahead took the error).
