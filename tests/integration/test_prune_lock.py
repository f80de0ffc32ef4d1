# SPDX-License-Identifier: MIT
"""drgw prune and locked objects.  On S3 (radosgw: a real Object Lock
implementation; a DELETE there does not fail on a locked object, it hides
it behind a delete marker) a retained or legally held snapshot is kept
and reported "locked" with its retain-until time, never hidden; on GCS
(the emulator) holds and retention are seen in the listing itself.  The
retention settings are checked against the policy's windows at the
start."""
import datetime as dt
import json
import re
import urllib.parse
import urllib.request

import pytest

import rgw
from conftest import PLUGINS
from gcsserver import BUCKET as GCS_BUCKET
from gcsserver import GcsEmulator
from gcsserver import backend_url as gcs_url

LOCKED = "drgw-locked"


@pytest.fixture(scope="module")
def radosgw(tmp_path_factory):
    if not (PLUGINS / "s3" / "drgw-s3.so").exists():
        pytest.skip("built without the s3 plugin")
    if not rgw.available():
        pytest.skip("needs Ceph's radosgw (scripts/install-deps)")
    srv = rgw.Radosgw(tmp_path_factory.mktemp("rgw")).start()
    yield srv
    srv.stop()


def client(srv):
    import botocore.config
    import botocore.session
    return botocore.session.get_session().create_client(
        "s3", endpoint_url=srv.url, region_name="us-east-1",
        aws_access_key_id=rgw.ACCESS_KEY, aws_secret_access_key=rgw.SECRET_KEY,
        config=botocore.config.Config(s3={"addressing_style": "path"}))


def backup(env, backends, names):
    gw = env.gateway(backends=backends).start()
    for n in names:
        (env.mnt / n).write_bytes(n.encode() * 100)
        env.drgw("wait", "--timeout", "60s", timeout=90)
    gw.stop()
    return {s["name"]: s["version"] for s in env.ls("--versions")}


def json_lines(out):
    return [json.loads(line) for line in out.splitlines()]


def test_s3_object_lock(env, radosgw, monkeypatch):
    for k, v in radosgw.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(env.tmp / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(env.tmp / "none"))
    s3 = client(radosgw)
    s3.create_bucket(Bucket=LOCKED, ObjectLockEnabledForBucket=True)
    url = "s3://%s/app?endpoint=%s&retry-base-ms=20&retry-cap-ms=200" % (
        LOCKED, radosgw.url)
    backends = ["--backend", "rgw=" + url]
    vids = backup(env, backends, ["app-%d.db" % i for i in range(1, 6)])
    until = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + \
        dt.timedelta(days=2)
    s3.put_object_retention(Bucket=LOCKED, Key="app/%s.drgw" % vids["app-1.db"],
                            Retention={"Mode": "GOVERNANCE",
                                       "RetainUntilDate": until})
    s3.put_object_legal_hold(Bucket=LOCKED, Key="app/%s.drgw" % vids["app-2.db"],
                             LegalHold={"Status": "ON"})

    p = env.client("prune", "--keep-last", "1", "--json", backends=backends,
                   cache=env.cache)
    out = {x["name"]: x for x in json_lines(p.stdout)}
    assert out["app-1.db"]["action"] == "keep"
    assert out["app-1.db"]["reasons"] == ["locked"]
    assert out["app-1.db"]["retain_until"] == until.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert out["app-2.db"]["reasons"] == ["locked"]
    assert out["app-2.db"]["hold"] is True
    for n in ("app-3.db", "app-4.db"):
        assert out[n]["action"] == "remove" and out[n]["removed"] is True
    assert out["app-5.db"]["reasons"] == ["last", "newest"]
    # Locked is no error, but worth a line.
    assert "2 snapshots the policy would remove are locked" in p.stderr

    # Nothing locked was hidden: no delete marker in front of them, and
    # the listing (what a restore sees) still has them.
    listed = sorted(o["Key"] for o in s3.list_objects_v2(
        Bucket=LOCKED, Prefix="app/")["Contents"]
        if o["Key"].endswith(".drgw"))     # not the index records
    assert listed == sorted("app/%s.drgw" % vids[n]
                            for n in ("app-1.db", "app-2.db", "app-5.db"))
    markers = {m["Key"] for m in s3.list_object_versions(
        Bucket=LOCKED, Prefix="app/").get("DeleteMarkers", [])
        if m["Key"].endswith(".drgw")}   # old index records get some
    assert markers == {"app/%s.drgw" % vids[n] for n in ("app-3.db", "app-4.db")}
    # A restore still finds the locked ones.
    remote = json.loads(env.client("ls", "--remote", "--versions", "--json",
                                   backends=backends).stdout)
    assert sorted(r["name"] for r in remote) == ["app-1.db", "app-2.db", "app-5.db"]

    # The lock period is checked against the policy's windows at start.
    s3.put_object_lock_configuration(
        Bucket=LOCKED, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    p = env.client("prune", "--keep-weekly", "4", "--dry-run",
                   backends=backends, cache=env.cache)
    assert re.search(r"objects are locked for 1d\S* \(bucket default retention "
                     r"GOVERNANCE 1 days\) but the policy keeps snapshots up "
                     r"to 28d", p.stderr), p.stderr
    s3.put_object_legal_hold(Bucket=LOCKED, Key="app/%s.drgw" % vids["app-2.db"],
                             LegalHold={"Status": "OFF"})


def test_gcs_holds_and_retention(env, tmp_path):
    if not (PLUGINS / "gcs" / "drgw-gcs.so").exists():
        pytest.skip("built without the gcs plugin")
    emu = GcsEmulator(tmp_path / "gcs").start()
    try:
        backends = ["--backend", "gcs=" + gcs_url(emu, "app")]
        vids = backup(env, backends, ["app-%d.db" % i for i in range(1, 5)])

        def patch(name, fields):
            obj = urllib.parse.quote("app/%s.drgw" % vids[name], safe="")
            req = urllib.request.Request(
                "%s/storage/v1/b/%s/o/%s" % (emu.url, GCS_BUCKET, obj),
                data=json.dumps(fields).encode(), method="PATCH",
                headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req).read()
        patch("app-1.db", {"temporaryHold": True})
        patch("app-2.db", {"retention": {"mode": "Unlocked",
                                         "retainUntilTime": "2099-01-01T00:00:00Z"}})
        urllib.request.urlopen(urllib.request.Request(
            emu.url + "/_emulator/reset-log", data=b"", method="POST")).read()
        p = env.client("prune", "--keep-last", "1", "--json", backends=backends,
                       cache=env.cache)
        out = {x["name"]: x for x in json_lines(p.stdout)}
        assert out["app-1.db"]["reasons"] == ["locked"] and out["app-1.db"]["hold"]
        assert out["app-2.db"]["reasons"] == ["locked"]
        assert out["app-2.db"]["retain_until"] == "2099-01-01T00:00:00Z"
        assert out["app-3.db"]["removed"] is True
        # The listing told: no object was asked for its metadata.
        log = emu.log()
        assert not [e for e in log if e["method"] == "GET" and "/o/" in e["path"]
                    and "alt=media" not in e["path"]]
        assert [e["method"] for e in log].count("DELETE") == 1
        remote = json.loads(env.client("ls", "--remote", "--versions", "--json",
                                       backends=backends).stdout)
        assert sorted(r["name"] for r in remote) == ["app-1.db", "app-2.db", "app-4.db"]
    finally:
        emu.stop()
