# SPDX-License-Identifier: MIT
"""The daemon killed at the S3 upload steps that a crash used to make
stick or leak (issue 15, defects 2 and 7), through the real mount, on
s3rver and on radosgw (real multipart semantics: NoSuchUpload, Abort,
ListMultipartUploads):

- SIGKILL after CompleteMultipartUpload reached the server and before the
  daemon heard back (so before its catalog commit): the next start finds
  the object done, instead of retrying Complete for ever (s3rver answers
  500, AWS NoSuchUpload) or uploading it again;
- SIGKILL at Create (answer held back), between parts and at Complete,
  restart, drain: no incomplete multipart upload is left on radosgw, and
  everything restores byte for byte.
"""
import filecmp
import os
import shutil
import time

import pytest

from conftest import PLUGINS
from s3server import Proxy, Radosgw, S3rver, backend_url

pytestmark = pytest.mark.skipif(not (PLUGINS / "s3" / "drgw-s3.so").exists(),
                                reason="built without the s3 plugin (-Dplugins)")

MiB = 1 << 20


@pytest.fixture(scope="module")
def rgw(tmp_path_factory):
    if not Radosgw.available():
        pytest.skip("Ceph radosgw is not installed (scripts/install-deps)")
    srv = Radosgw(tmp_path_factory.mktemp("radosgw")).start()
    yield srv
    srv.stop()


@pytest.fixture(params=["s3rver", "radosgw"])
def server(request, tmp_path, monkeypatch):
    if request.param == "s3rver":
        srv = S3rver(tmp_path / "s3rver").start()
        request.addfinalizer(srv.stop)
    else:
        srv = request.getfixturevalue("rgw")
    for k, v in srv.creds.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-creds"))
    return srv


@pytest.fixture
def proxy(server, request):
    p = Proxy(server.port)
    request.addfinalizer(p.close)
    return p


def until(cond, what, gw, timeout=60):
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, f"never {what}:\n{gw.log()[-3000:]}"
        time.sleep(0.01)


def forwarded(proxy, method, query):
    return [e for e in proxy.requests(method=method, query=query)
            if e.get("upstream_status")]


def random_file(path, size, seed):
    import random
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def test_killed_between_complete_and_catalog_commit(env, server, proxy,
                                                    tmp_path, request):
    """Issue 15, defect 2, through the daemon."""
    prefix = "complete-" + server.name
    url = backend_url(proxy.url, prefix, **{"part-size": "5M"})
    backends = ["--backend", f"offsite={url}"]
    src = random_file(tmp_path / "big.bin", 12 * MiB, seed=1)
    # A spooled upload (a streamed one is discarded after a crash).
    gw = env.gateway("--streaming", "off", backends=backends).start()
    proxy.add_fault(method="POST", query=r"^uploadId=", stall=60)
    shutil.copy(src, env.mnt / "big.bin")
    until(lambda: forwarded(proxy, "POST", r"^uploadId="),
          "sent CompleteMultipartUpload", gw)
    gw.kill()
    proxy.clear_faults()
    assert env.ls()[0]["replicas"]["offsite"]["state"] != "replicated"
    n_before = len(proxy.requests())

    gw = env.gateway("--streaming", "off", name="gateway2",
                     backends=backends).start()
    env.wait(timeout=60)
    after = [e for e in proxy.requests()[n_before:]
             if "/index/" not in e["path"]]   # the index record is new
    # Done from what the server has: no Complete again, no new upload.
    assert not [e for e in after if e["method"] in ("POST", "PUT")], \
        [(e["method"], e["query"], e["status"]) for e in after]
    gw.stop()
    out = tmp_path / "restored.bin"
    env.client("restore", "big.bin", out,
               backends=["--backend", f"offsite={backend_url(server.url, prefix)}"])
    assert filecmp.cmp(out, src, shallow=False)
    if server.name == "radosgw":
        assert server.uploads(prefix + "/") == []


def test_no_upload_outlives_crashes_and_a_drain(env, rgw, tmp_path,
                                                monkeypatch, request):
    """Issue 15, defect 7, on radosgw: SIGKILLs while Create's answer is
    held back (the upload exists, its id is not saved yet), between parts
    of a spooled and of a streamed upload, and while Complete's answer is
    held back; then a restart and a drain.  ListMultipartUploads is empty
    afterwards, and every file restores byte for byte."""
    for k, v in rgw.creds.items():
        monkeypatch.setenv(k, v)
    proxy = Proxy(rgw.port)
    request.addfinalizer(proxy.close)
    prefix = "drain"
    url = backend_url(proxy.url, prefix, **{"part-size": "5M",
                                            "upload-concurrency": "2"})
    backends = ["--backend", f"offsite={url}"]
    files = {f"f{i}.bin": random_file(tmp_path / f"f{i}.bin", 16 * MiB, seed=i)
             for i in range(4)}
    # Parts are slowed down so that kills land between them.
    proxy.add_fault(method="PUT", query=r"partNumber=", delay=0.15, times=None)

    kills = [
        # Create went through, its answer is held back.
        ("f0.bin", ("--streaming", "off"),
         dict(method="POST", query=r"^uploads=$", stall=60),
         lambda: forwarded(proxy, "POST", r"^uploads=$")),
        # Two parts of a spooled upload are stored.
        ("f1.bin", ("--streaming", "off"), None,
         lambda: len(forwarded(proxy, "PUT", r"partNumber=")) >= 2),
        # A streamed upload (following the encoder) has a part stored.
        ("f2.bin", ("--encode-threads", "1", "--compression-level", "19"), None,
         lambda: len(forwarded(proxy, "PUT", r"partNumber=")) >= 1),
        # Complete went through, its answer is held back.
        ("f3.bin", ("--streaming", "off"),
         dict(method="POST", query=r"^uploadId=", stall=60),
         lambda: forwarded(proxy, "POST", r"^uploadId=")),
    ]
    left = []
    for i, (name, extra, fault, cond) in enumerate(kills):
        proxy.clear()
        if fault:
            proxy.add_fault(**fault)
        gw = env.gateway(*extra, name=f"gateway{i}", backends=backends).start()
        shutil.copy(files[name], env.mnt / name)
        until(cond, f"reached the kill point of {name}", gw)
        gw.kill()
        # Looked at before the next start, which may clean some up.
        left += rgw.uploads(prefix + "/")
        proxy.faults.clear()
        proxy.add_fault(method="PUT", query=r"partNumber=", delay=0.15,
                        times=None)
    assert left, "no kill left an upload to clean up"

    proxy.faults.clear()
    gw = env.gateway(name="final", backends=backends).start()
    env.wait(timeout=120)
    assert gw.stop() == 0
    assert rgw.uploads(prefix + "/") == []
    for name, src in files.items():
        out = tmp_path / ("restored-" + name)
        env.client("restore", name, out,
                   backends=["--backend", f"offsite={backend_url(rgw.url, prefix)}"])
        assert filecmp.cmp(out, src, shallow=False), name
    assert not os.listdir(env.cache / "spool")
