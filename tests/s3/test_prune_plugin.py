# SPDX-License-Identifier: MIT
"""What drgw prune asks of the S3 plugin, through plugin-harness against
s3rver behind the recording proxy: DeleteObjects batches with the
Content-MD5 S3 requires, retries, per-key errors inside a 200, a 403 that
names the missing permission, and the retention ctl on a bucket without
Object Lock.  Object Lock itself needs radosgw
(tests/integration/test_prune_lock.py)."""
import base64
import hashlib
import re

from conftest import BUCKET
from s3proxy import error_xml
from test_plugin import assert_wire_signed


def put_objects(harness, tmp_path, names):
    src = tmp_path / "obj"
    src.write_bytes(b"x" * 100)
    for n in names:
        harness.run("put", n, src)


def listed(harness):
    return sorted(line.split("\t")[0]
                  for line in harness.run("list").stdout.splitlines())


def test_delete_objects_batch(harness, proxy, tmp_path):
    names = ["%04d.drgw" % i for i in range(30)]
    put_objects(harness, tmp_path, names)
    proxy.clear()
    out = harness.run("rm-many", *names[:25], "never-was.drgw")
    assert out.stdout.count("\tok") == 26
    posts = proxy.requests("POST", query=r"^delete=?$")
    assert len(posts) == 1
    body = posts[0]["body"]
    want = base64.b64encode(hashlib.md5(body).digest()).decode()
    assert posts[0]["headers"]["content-md5"] == want
    assert body.count(b"<Key>") == 26
    assert b"<Quiet>true</Quiet>" in body
    assert not proxy.requests("DELETE")
    assert listed(harness) == names[25:]
    assert_wire_signed(proxy)


def test_delete_objects_retried(harness, proxy, tmp_path):
    # c.drgw stays: s3rver races itself removing the directory of the
    # last objects under a prefix (a spurious 500 on DeleteObjects).
    put_objects(harness, tmp_path, ["a.drgw", "b.drgw", "c.drgw"])
    proxy.clear()
    proxy.add_fault(method="POST", query="delete", times=2, status=503,
                    code="SlowDown")
    harness.run("rm-many", "a.drgw", "b.drgw")
    assert len(proxy.requests("POST", query="delete")) == 3
    assert listed(harness) == ["c.drgw"]


def test_delete_objects_key_errors_inside_200(harness, proxy, tmp_path):
    put_objects(harness, tmp_path, ["a.drgw", "b.drgw"])
    prefix = harness.url.split("/", 3)[3]
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><DeleteResult>"
            "<Error><Key>%s/b.drgw</Key><Code>AccessDenied</Code>"
            "<Message>Access Denied</Message></Error></DeleteResult>" % prefix)
    proxy.add_fault(method="POST", query="delete", times=1, status=200,
                    body=body.encode())
    p = harness.run("rm-many", "a.drgw", "b.drgw", check=False)
    assert p.returncode == 1
    assert "a.drgw\tok" in p.stdout and "b.drgw\tEACCES" in p.stdout
    # One line that says which key, what S3 said and which permission.
    err = p.stderr.strip()
    assert "\n" not in err
    assert "b.drgw" in err and "AccessDenied" in err
    assert "s3:DeleteObject" in err


def test_delete_denied_names_the_permission(harness, proxy, tmp_path):
    put_objects(harness, tmp_path, ["a.drgw"])
    proxy.add_fault(method="POST", query="delete", times=None, status=403,
                    code="AccessDenied")
    p = harness.run("rm-many", "a.drgw", check=False)
    assert p.returncode == 1
    err = p.stderr.strip()
    assert "\n" not in err
    assert re.search(r"403 AccessDenied.*lack s3:DeleteObject on %s/" % BUCKET, err)
    assert listed(harness) == ["a.drgw"]


def test_retention_without_object_lock(harness, proxy):
    # s3rver has no Object Lock (NotImplemented): nothing can be locked.
    out = harness.run("retention").stdout
    assert out.startswith("flags 0 period 0")
    assert proxy.requests("GET", query=r"^object-lock=?$")


def test_retention_of_own_lock_options(harness):
    out = harness.run("retention", options={
        "object-lock-mode": "GOVERNANCE", "object-lock-retain-days": "30"}).stdout
    flags, period = re.match(r"flags (\d+) period (\d+)", out).groups()
    assert int(flags) & 1
    assert int(period) == 30 * 86400 * 10**9
    assert "object-lock-retain-days=30" in out


def test_stat_reports_no_lock_without_object_lock(harness, tmp_path):
    put_objects(harness, tmp_path, ["a.drgw"])
    assert harness.run("lock", "a.drgw").stdout.strip() == "known 1 hold 0 until 0"


def test_stat_asks_the_object_when_the_bucket_lock_is_unknown(harness, proxy, tmp_path):
    """A pruner refused GetObjectLockConfiguration cannot assume nothing
    is locked (on a versioned bucket its delete would hide a locked
    object): it asks the object, and refused that too, it fails."""
    put_objects(harness, tmp_path, ["a.drgw"])
    proxy.add_fault(method="GET", query=r"^object-lock=?$", times=None,
                    status=403, code="AccessDenied")
    proxy.add_fault(method="GET", query=r"^retention=?$", times=None,
                    status=403, code="AccessDenied")
    p = harness.run("prune-lock", "a.drgw", check=False)
    assert p.returncode == 1, p.stdout
    assert "s3:GetObjectRetention" in p.stderr, p.stderr
    assert proxy.requests("GET", query=r"^retention=?$")
