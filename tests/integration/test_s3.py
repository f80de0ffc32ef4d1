# SPDX-License-Identifier: MIT
"""The gateway with the S3 plugin against s3rver on loopback: the seed's
backup job through the mount with s3 alone and with s3 + local, `drgw ls`,
a restore view over an empty cache; the AWS CLI as a cross-check of what
drgw reports; SIGKILL during a multipart upload; the server down while
snapshots are written.  The core tests also run against radosgw, which
verifies every SigV4 signature and has real multipart semantics; there no
incomplete multipart upload may be left at the end."""
import filecmp
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import PLUGINS, make_app_db, sqlite
from s3server import BUCKET, CREDS, Proxy, Radosgw, S3rver, backend_url

pytestmark = pytest.mark.skipif(not (PLUGINS / "s3" / "drgw-s3.so").exists(),
                                reason="built without the s3 plugin (-Dplugins)")


@pytest.fixture
def s3(tmp_path, monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-creds"))
    srv = S3rver(tmp_path / "s3rver").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def rgw(tmp_path_factory):
    if not Radosgw.available():
        pytest.skip("Ceph radosgw is not installed (scripts/install-deps)")
    srv = Radosgw(tmp_path_factory.mktemp("radosgw")).start()
    yield srv
    srv.stop()


@pytest.fixture(params=["s3rver", "radosgw"])
def any_s3(request, tmp_path, monkeypatch):
    """s3rver (per test), then radosgw (per module, a prefix per test)."""
    if request.param == "s3rver":
        return request.getfixturevalue("s3")
    srv = request.getfixturevalue("rgw")
    for k, v in srv.creds.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-creds"))
    return srv


def test_write_only_keys(env, any_s3, tmp_path):
    from test_write_only import round_trip
    round_trip(env, tmp_path, ["--backend", "offsite=" + backend_url(any_s3.url, "wo")])


def no_leftover_uploads(srv, prefix):
    """Where the server can list them: no incomplete multipart upload."""
    if srv.name == "radosgw":
        assert srv.uploads(prefix + "/") == []


def aws(s3, *args):
    p = subprocess.run(["aws", "--endpoint-url", s3.url, "s3", *map(str, args)],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def backup_days(env, db, reference, days):
    for day in days:
        make_app_db(db, rows=2000, seed=day * 1000)
        name = f"app-202601{day:02d}.db"
        subprocess.run(["bash", "-c",
                        f"sqlite3 '{db}' \".backup '{env.mnt}/{name}'\" && "
                        f"ls -t {env.mnt}/*.db | tail -n +8 | xargs -r rm"],
                       check=True, timeout=120)
        sqlite(db, f".backup '{reference / name}'")


def test_backup_job_to_s3_and_local(env, any_s3, tmp_path):
    s3 = any_s3
    db, reference = tmp_path / "app.db", tmp_path / "reference"
    reference.mkdir()
    s3_backend = ["--backend", "offsite=" + backend_url(s3.url, "app")]
    gw = env.gateway(backends=[*s3_backend, *env.backend_args()]).start()
    backup_days(env, db, reference, range(1, 10))
    env.wait()
    snaps = env.ls()
    assert len(snaps) == 9
    for s in snaps:
        assert s["replicas"]["offsite"]["state"] == "replicated"
        assert s["replicas"]["nfs"]["state"] == "replicated"
    human = env.drgw("ls").stdout
    assert "offsite" in human and "nfs" in human
    gw.stop()

    # The AWS CLI sees exactly the objects drgw reports, under the prefix.
    listing = aws(s3, "ls", f"s3://{BUCKET}/app/").decode()
    # (PRE index/: the index records, not snapshots)
    keys = sorted(line.split()[-1] for line in listing.splitlines()
                  if not line.split()[0] == "PRE")
    assert keys == sorted(s["replicas"]["offsite"]["key"] for s in snaps)
    # Objects downloaded by `aws s3 cp` decode with drgw (an incremental
    # one with the objects it takes blocks from).
    one = snaps[4]
    dl = tmp_path / "downloaded"
    dl.mkdir()
    aws(s3, "cp", "--recursive", f"s3://{BUCKET}/app/", dl)
    env.client("restore", one["name"], tmp_path / "from-aws.db",
               backends=["--backend", f"dl=local://{dl}"])
    assert filecmp.cmp(tmp_path / "from-aws.db", reference / one["name"], shallow=False)

    # Disaster: restore view over an empty cache, S3 only.
    shutil.rmtree(env.cache)
    view = env.restore_view(backends=s3_backend).start()
    names = sorted(os.listdir(view.mountpoint))
    assert names == sorted(os.listdir(reference))
    for n in names:
        assert filecmp.cmp(view.mountpoint / n, reference / n, shallow=False), n
        assert sqlite(view.mountpoint / n, "PRAGMA integrity_check;") == "ok"
    view.stop()
    verify = env.client("verify", backends=[*s3_backend, *env.backend_args()])
    assert "18 replicas ok, 0 problems" in verify.stdout
    no_leftover_uploads(s3, "app")


def test_server_down_while_writing(env, s3, tmp_path):
    s3_backend = ["--backend", "offsite=" + backend_url(s3.url, "down")]
    gw = env.gateway(backends=s3_backend).start()
    s3.stop()
    for i in range(3):
        # Writes never wait for the backend.
        make_app_db(env.mnt / f"while-down-{i}.db", rows=500, seed=i)
    p = env.drgw("wait", "--timeout", "2s", check=False)
    assert p.returncode == 1
    reps = [s["replicas"]["offsite"] for s in env.ls()]
    assert all(r["state"] in ("failing", "pending", "uploading") for r in reps)
    assert any("Connection refused" in (r.get("last_error") or "") or
               "connect" in (r.get("last_error") or "").lower() for r in reps), reps
    s3.start()
    env.wait(timeout=60)
    listing = aws(s3, "ls", f"s3://{BUCKET}/down/").decode().splitlines()
    assert len([l for l in listing if l.endswith(".drgw")]) == 3, listing
    gw.stop()


def test_sigkill_during_multipart_upload_resumes(env, any_s3, tmp_path):
    s3 = any_s3
    proxy = Proxy(s3.port)
    try:
        url = backend_url(proxy.url, "mpu", **{"part-size": "5M",
                                               "upload-concurrency": "2"})
        src = tmp_path / "big.bin"
        with open(src, "wb") as f:
            f.write(os.urandom(120 << 20))
        # Stream uploads would start the upload during the encode, before
        # the resume token exists: this test is about resuming a spooled one.
        gw = env.gateway("--streaming", "off",
                         backends=["--backend", f"offsite={url}"]).start()
        shutil.copy(src, env.mnt / "big.bin")

        def parts_done():
            return {e["query"] for e in proxy.requests(method="PUT", query="partNumber=")
                    if e["status"] == 200}
        deadline = time.time() + 120
        while len(parts_done()) < 6 and time.time() < deadline:
            time.sleep(0.01)
        assert len(parts_done()) >= 6, gw.log()[-3000:]
        gw.kill()
        time.sleep(1)  # let requests in flight land in the log
        # The parts the catalog's resume token says are stored.  (A part the
        # server acknowledged in the instant before the kill, before it was
        # recorded, is legitimately sent again.)
        token = subprocess.run(
            ["sqlite3", env.cache / "catalog.db",
             "SELECT resume_token FROM replicas WHERE backend = 'offsite'"],
            capture_output=True, text=True, check=True).stdout.splitlines()
        assert token and token[0] == "drgw-s3-mpu 1", token
        recorded = {int(line.split()[0]) for line in token[3:] if line.strip()}
        assert len(recorded) >= 4
        n_before = len(proxy.requests())
        creates_before = len(proxy.requests(method="POST", query="uploads="))

        gw = env.gateway("--streaming", "off", name="gateway2",
                         backends=["--backend", f"offsite={url}"]).start()
        env.wait(timeout=120)
        after = proxy.requests()[n_before:]
        assert "resuming upload of big.bin" in gw.log()
        # The same multipart upload continued: no new one was created, and
        # no part that had been stored was sent again.
        assert len(proxy.requests(method="POST", query="uploads=")) == creates_before
        resent = {int(re.search(r"partNumber=(\d+)", e["query"]).group(1))
                  for e in after if e["method"] == "PUT" and "partNumber=" in e["query"]}
        assert not (resent & recorded), sorted(resent & recorded)
        stored = env.ls()[0]["stored_size"]
        assert recorded | resent == set(range(1, -(-stored // (5 << 20)) + 1))
        gw.stop()
        out = tmp_path / "restored.bin"
        env.client("restore", "big.bin", out,
                   backends=["--backend", f"offsite={backend_url(s3.url, 'mpu')}"])
        assert filecmp.cmp(out, src, shallow=False)
        no_leftover_uploads(s3, "mpu")
    finally:
        proxy.close()


def wait_multipart_started(proxy, gw, name, mark):
    """Waits until a multipart upload exists while the encoder still works
    on name: the upload follows the encoder."""
    deadline = time.time() + 60
    while not proxy.requests(method="POST", query="^uploads="):
        assert f"encoded {name}" not in gw.log()[mark:], \
            "the encoder finished before the upload began"
        assert time.time() < deadline, gw.log()[-2000:]
        time.sleep(0.01)


def upload_ids(proxy, method, query):
    return {re.search(r"uploadId=([^&]+)", e["query"]).group(1)
            for e in proxy.requests(method=method, query=query)}


def test_streamed_upload_abandoned_and_interrupted(env, s3, tmp_path):
    """Through S3: a file changed mid-stream has its multipart upload
    aborted; a SIGKILL mid-stream has it aborted on the next start; every
    upload ever created is either completed or aborted.  (On radosgw,
    test_s3_crash.py checks with ListMultipartUploads.)"""
    proxy = Proxy(s3.port)
    try:
        url = backend_url(proxy.url, "stream", **{"part-size": "5M"})
        backends = ["--backend", f"offsite={url}"]
        slow = ("--compression-level", "19", "--encode-threads", "1")
        gw = env.gateway(*slow, backends=backends).start()
        make_app_db(tmp_path / "v1.db", rows=80000)
        path = env.mnt / "moving.db"
        mark = len(gw.log())
        shutil.copy(tmp_path / "v1.db", path)
        wait_multipart_started(proxy, gw, "moving.db", mark)
        with open(path, "r+b") as f:
            f.seek(0, 2)
            f.write(b"appended while streaming")
        env.wait(timeout=180)
        assert "changed while it was being encoded" in gw.log()
        assert "streamed while encoding" in gw.log()
        assert len(upload_ids(proxy, "DELETE", "uploadId=")) == 1

        mark = len(gw.log())
        shutil.copy(tmp_path / "v1.db", env.mnt / "second.db")
        deadline = time.time() + 60
        # Killed once the catalog knows of the upload by its id: from then
        # on a crash must not leave it behind even on s3rver, which cannot
        # list uploads (before, the token only says one is being created;
        # radosgw shows that case in test_s3_crash.py).
        while "\nupload " not in sqlite(env.cache / "catalog.db",
                                        "SELECT token FROM streams;"):
            assert "encoded second.db" not in gw.log()[mark:]
            assert time.time() < deadline
            time.sleep(0.01)
        gw.kill()
        gw = env.gateway(name="gateway2", backends=backends).start()
        env.wait(timeout=180)
        assert "discarded an upload to offsite" in gw.log()
        gw.stop()

        done = upload_ids(proxy, "POST", "^uploadId=")
        aborted = upload_ids(proxy, "DELETE", "uploadId=")
        assert len(aborted) == 2 and not (done & aborted)
        assert len(done) + len(aborted) == \
            len(proxy.requests(method="POST", query="^uploads="))
        v1 = (tmp_path / "v1.db").read_bytes()
        for name, want in [("moving.db", v1 + b"appended while streaming"),
                           ("second.db", v1)]:
            out = tmp_path / f"restored-{name}"
            env.client("restore", name, out,
                       backends=["--backend",
                                 f"offsite={backend_url(s3.url, 'stream')}"])
            assert out.read_bytes() == want
    finally:
        proxy.close()


def test_backfill_to_s3_in_parts(env, s3, tmp_path):
    """Snapshots made before S3 was configured reach it with drgw backfill,
    in a multipart upload, and restore from S3 alone."""
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        f.write(os.urandom(24 << 20))
    gw = env.gateway().start()
    shutil.copy(src, env.mnt / "big.bin")
    env.wait()
    gw.stop()
    proxy = Proxy(s3.port)
    try:
        offsite = ["--backend", "offsite=" + backend_url(proxy.url, "late", **{"part-size": "5M"})]
        p = env.client("backfill", "offsite", backends=[*env.backend_args(), *offsite],
                       cache=env.cache)
        assert "1 copied and verified, 0 already on offsite, 0 failed" in p.stdout
        parts = proxy.requests(method="PUT", query="partNumber=")
        assert len(parts) == 5 and all(e["status"] == 200 for e in parts)
        assert len(proxy.requests(method="POST", query="uploadId=")) == 1  # completed
    finally:
        proxy.close()
    assert env.ls()[0]["replicas"]["offsite"]["state"] == "replicated"
    restored = tmp_path / "restored.bin"
    env.client("restore", "big.bin", restored,
               backends=["--backend", "offsite=" + backend_url(s3.url, "late")])
    assert filecmp.cmp(restored, src, shallow=False)


def test_backfill_falls_back_to_another_source(env, s3, tmp_path):
    """A source that fails while its object is copied is replaced by the
    next backend holding the same version."""
    proxy = Proxy(s3.port)
    try:
        src = ["--backend", "src=" + backend_url(proxy.url, "fb")]
        gw = env.gateway(backends=[*src, *env.backend_args("a")]).start()
        make_app_db(env.mnt / "x.db", rows=3000)
        env.wait()
        gw.stop()
        b = tmp_path / "b"
        b.mkdir()
        backends = [*src, *env.backend_args("a"), *env.backend_args("b", b)]
        # A first scan caches the objects' footers: the next one only lists.
        env.client("backfill", "--dry-run", "b", backends=backends)
        proxy.add_fault(method="GET", path=r"\.drgw$", status=403,
                        code="AccessDenied", times=None)
        p = env.client("backfill", "--from", "src", "b", backends=backends)
        assert "AccessDenied" in p.stderr and "from src to b" in p.stderr
        assert "copied x.db" in p.stdout and "from a to b" in p.stdout
        assert "1 copied and verified, 0 already on b, 0 failed" in p.stdout
    finally:
        proxy.close()
    restored = tmp_path / "x.db"
    env.client("restore", "x.db", restored, backends=env.backend_args("b", b))
    assert sqlite(restored, "PRAGMA integrity_check;") == "ok"


def test_hostile_server_error_stays_one_line(env, s3, tmp_path):
    """An error Code with line breaks in it (a hostile or broken server) is
    shown on one line by drgw ls and the CLI."""
    proxy = Proxy(s3.port)
    try:
        backends = ["--backend", "offsite=" + backend_url(proxy.url, "hostile")]
        proxy.add_fault(method="PUT", status=403, code="Denied\nlevel=error msg=forged",
                        times=None)
        gw = env.gateway(backends=backends).start()
        make_app_db(env.mnt / "a.db", rows=100)
        deadline = time.time() + 60
        while time.time() < deadline:
            snaps = env.ls()   # replicas appear once it is encoded
            rep = snaps[0]["replicas"].get("offsite", {}) if snaps else {}
            if rep.get("state") == "failing":
                break
            time.sleep(0.1)
        assert rep["state"] == "failing", gw.log()[-2000:]
        assert "Denied level=error msg=forged" in rep["last_error"]
        assert "\n" not in rep["last_error"]
        human = env.drgw("ls").stdout
        assert "Denied level=error msg=forged" in human
        # Every log line is one event: the forged text is inside a quoted
        # msg, never at the start of a line.
        assert not any(line.startswith("level=error msg=forged")
                       for line in gw.log().splitlines())
        gw.kill()  # a drain would wait out --drain-timeout
    finally:
        proxy.close()
