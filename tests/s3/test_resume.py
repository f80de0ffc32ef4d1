# SPDX-License-Identifier: MIT
"""Multipart uploads that are interrupted and resumed: SIGKILL in the
middle, cancellation, uploads that vanished, ListParts reconciliation,
Complete's peculiar failure modes, and abort_put()."""
import filecmp
import re
import signal
import time
import urllib.parse

from conftest import Harness, Proxy, sha256_file, write_random

MiB = 1 << 20
OPTS = {"part-size": "5M", "upload-concurrency": "2"}


def token_parts(path):
    """{part number: etag} of a saved resume token."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    assert lines[0] == "drgw-s3-mpu 1"
    return {int(line.split()[0]): urllib.parse.unquote(line.split()[1])
            for line in lines[3:]}


def token_upload_id(path):
    line = path.read_text().splitlines()[2]
    assert line.startswith("upload ")
    return urllib.parse.unquote(line[7:])


def part_numbers(entries):
    return [int(re.search(r"partNumber=(\d+)", e["query"]).group(1))
            for e in entries]


def put(harness, tok, key, src, **kw):
    """The gateway's retry: same key, same object, same token store."""
    return harness.run("put", "--token", tok, "--sha256", sha256_file(src),
                       key, src, options=OPTS, **kw)


def start_and_kill(harness, proxy, src, tok, key, min_parts=3):
    """Starts an upload and SIGKILLs it once min_parts parts are saved."""
    proxy.add_fault(method="PUT", query=r"partNumber=", delay=0.3, times=None)
    proc = harness.popen("put", "--token", tok, "--sha256", sha256_file(src),
                         key, src, options=OPTS)
    deadline = time.time() + 60
    while len(token_parts(tok)) < min_parts:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    proxy.faults.clear()
    # Requests the dead process had already sent may still reach the
    # proxy; wait until they have, so later checks see only the resume.
    count = -1
    while count != len(proxy.requests()):
        count = len(proxy.requests())
        time.sleep(0.5)
    return token_parts(tok)


def test_sigkill_then_resume(harness, proxy, tmp_path):
    src = write_random(tmp_path / "big", 40 * MiB, seed=11)
    tok = tmp_path / "token"
    done = start_and_kill(harness, proxy, src, tok, "big.bin")
    upload_id = token_upload_id(tok)
    assert 3 <= len(done) < 8
    n_before = len(proxy.requests())

    out = put(harness, tok, "big.bin", src)
    assert "stored big.bin" in out.stdout
    after = proxy.requests()[n_before:]
    # No new upload; finished parts not sent again; the rest sent once.
    assert not [e for e in after if e["query"] == "uploads="]
    resent = part_numbers([e for e in after if "partNumber=" in e["query"]])
    assert sorted(resent) == sorted(set(range(1, 9)) - set(done))
    for e in after:
        if "uploadId=" in e["query"]:
            assert urllib.parse.unquote(
                re.search(r"uploadId=([^&]*)", e["query"]).group(1)) == upload_id
    completes = [e for e in after if e["method"] == "POST"]
    assert len(completes) == 1
    body = completes[0]["body"].decode()
    assert body.count("<Part>") == 8
    for n, etag in done.items():
        assert "<PartNumber>%d</PartNumber><ETag>&quot;%s&quot;</ETag>" % (n, etag) in body

    harness.run("cat", "big.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_cancel_saves_token_and_resumes(harness, proxy, tmp_path):
    src = write_random(tmp_path / "big", 30 * MiB, seed=12)
    tok, cancel = tmp_path / "token", tmp_path / "cancel"
    proxy.add_fault(method="PUT", query=r"partNumber=", delay=0.3, times=None)
    proc = harness.popen("put", "--token", tok, "--cancel-file", cancel,
                         "c.bin", src, options=OPTS)
    while len(token_parts(tok)) < 2:
        assert proc.poll() is None
        time.sleep(0.02)
    cancel.touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "put: ECANCELED: s3: PUT drgw/test_cancel_saves_token_and_resumes/c.bin: upload cancelled" in err
    done = token_parts(tok)
    assert 2 <= len(done) < 6
    # It stopped: not every part was sent.
    assert len(proxy.requests("PUT", "partNumber=")) < 6
    cancel.unlink()
    proxy.faults.clear()
    n_before = len(proxy.requests())
    harness.run("put", "--token", tok, "c.bin", src, options=OPTS)
    resent = part_numbers([e for e in proxy.requests()[n_before:]
                           if "partNumber=" in e["query"]])
    assert not set(resent) & set(done)
    harness.run("cat", "c.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_upload_gone_starts_over(harness, proxy, tmp_path):
    """NoSuchUpload on resume: a new upload, and the old one aborted."""
    src = write_random(tmp_path / "big", 20 * MiB, seed=13)
    tok = tmp_path / "token"
    start_and_kill(harness, proxy, src, tok, "g.bin", min_parts=1)
    old = token_upload_id(tok)
    proxy.add_fault(method="PUT", query=re.escape("uploadId=" + urllib.parse.quote(old, safe="~")),
                    status=404, code="NoSuchUpload", times=None)
    n_before = len(proxy.requests())
    put(harness, tok, "g.bin", src)
    after = proxy.requests()[n_before:]
    creates = [e for e in after if e["query"] == "uploads="]
    aborts = [e for e in after if e["method"] == "DELETE"]
    assert len(creates) == 1 and len(aborts) == 1
    assert old in urllib.parse.unquote(aborts[0]["query"])
    assert token_upload_id(tok) != old
    harness.run("cat", "g.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_listparts_vanished_upload(tmp_path, mpu_proxy):
    """Where ListParts exists and says the upload is gone, start over."""
    h = Harness(tmp_path, mpu_proxy.url, "s3://drgw/lp-gone")
    src = write_random(tmp_path / "big", 20 * MiB, seed=14)
    tok = tmp_path / "token"
    start_and_kill(h, mpu_proxy, src, tok, "v.bin", min_parts=1)
    old = token_upload_id(tok)
    mpu_proxy.aborted.add(old)       # e.g. a lifecycle rule
    n_before = len(mpu_proxy.requests())
    put(h, tok, "v.bin", src)
    after = mpu_proxy.requests()[n_before:]
    assert after[0]["method"] == "GET" and "uploadId=" in after[0]["query"]
    assert after[0]["status"] == 404
    assert len([e for e in after if e["query"] == "uploads="]) == 1
    assert sorted(part_numbers([e for e in after if "partNumber=" in e["query"]])) == [1, 2, 3, 4]
    h.run("cat", "v.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_listparts_drops_missing_part(tmp_path, mpu_proxy):
    h = Harness(tmp_path, mpu_proxy.url, "s3://drgw/lp-missing")
    src = write_random(tmp_path / "big", 30 * MiB, seed=15)
    tok = tmp_path / "token"
    done = start_and_kill(h, mpu_proxy, src, tok, "m.bin", min_parts=3)
    upload_id = token_upload_id(tok)
    lost = min(done)
    del mpu_proxy.uploads[upload_id][lost]
    n_before = len(mpu_proxy.requests())
    put(h, tok, "m.bin", src)
    after = mpu_proxy.requests()[n_before:]
    resent = part_numbers([e for e in after if "partNumber=" in e["query"]])
    assert lost in resent
    assert not (set(done) - {lost}) & set(resent)
    h.run("cat", "m.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_abort_put(tmp_path, proxy, mpu_proxy):
    for px, status in ((proxy, 405), (mpu_proxy, 204)):
        h = Harness(tmp_path, px.url, "s3://drgw/abort-%d" % status)
        src = write_random(tmp_path / "big", 15 * MiB, seed=16)
        tok = tmp_path / ("token-%d" % status)
        start_and_kill(h, px, src, tok, "a.bin", min_parts=1)
        upload_id = token_upload_id(tok)
        h.run("abort", "a.bin", tok)
        deletes = px.requests("DELETE")
        assert len(deletes) == 1 and deletes[0]["status"] == status
        assert urllib.parse.unquote(deletes[0]["query"]) == "uploadId=" + upload_id
    # A token of a single PUT, or none, leaves nothing to abort.
    empty = tmp_path / "empty-token"
    empty.write_bytes(b"")
    h.run("abort", "x", empty)


def test_complete_200_with_error_is_retried(harness, proxy, tmp_path):
    src = write_random(tmp_path / "big", 11 * MiB, seed=17)
    proxy.add_fault(method="POST", query=r"^uploadId=", status=200, body=(
        b"<?xml version=\"1.0\"?>\n\n<Error><Code>InternalError</Code>"
        b"<Message>We encountered an internal error.</Message></Error>"))
    harness.run("put", "c.bin", src, options=OPTS)
    completes = proxy.requests("POST", r"^uploadId=")
    assert [e["status"] for e in completes] == [200, 200]
    harness.run("cat", "c.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_complete_200_with_permanent_error(harness, proxy, tmp_path):
    src = write_random(tmp_path / "big", 11 * MiB, seed=18)
    proxy.add_fault(method="POST", query=r"^uploadId=", status=200, times=None,
                    body=(b"<Error><Code>InvalidPartOrder</Code><Message>The "
                          b"list of parts was not in ascending order.</Message>"
                          b"</Error>"))
    p = harness.run("put", "c.bin", src, options=OPTS, check=False)
    assert p.returncode == 1
    assert "EIO: s3: CompleteMultipartUpload drgw/test_complete_200_with_permanent_error/c.bin: " \
           "200 InvalidPartOrder: The list of parts was not in ascending order." in p.stderr


def test_retried_complete_already_done(harness, proxy, tmp_path):
    """The first Complete went through but its answer was lost; the retry
    finds no upload, and a HEAD with the right size settles it."""
    src = write_random(tmp_path / "big", 11 * MiB, seed=19)
    proxy.add_fault(method="POST", query=r"^uploadId=", forward_first=True,
                    status=500, code="InternalError")
    proxy.add_fault(method="POST", query=r"^uploadId=", status=404,
                    code="NoSuchUpload")
    harness.run("put", "d.bin", src, options=OPTS)
    methods = [e["method"] for e in proxy.requests()]
    assert methods[-3:] == ["POST", "POST", "HEAD"]
    harness.run("cat", "d.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_token_of_another_object(harness, proxy, tmp_path):
    a = write_random(tmp_path / "a", 12 * MiB, seed=20)
    b = write_random(tmp_path / "b", 13 * MiB, seed=21)
    tok = tmp_path / "token"
    start_and_kill(harness, proxy, a, tok, "k.bin", min_parts=1)
    stale = token_upload_id(tok)
    n_before = len(proxy.requests())
    put(harness, tok, "k.bin", b)
    after = proxy.requests()[n_before:]
    assert after[0]["method"] == "DELETE" and stale in urllib.parse.unquote(after[0]["query"])
    assert len([e for e in after if e["query"] == "uploads="]) == 1
    harness.run("cat", "k.bin", tmp_path / "back")
    assert filecmp.cmp(b, tmp_path / "back", shallow=False)


def test_sha256_checksums_in_complete(harness, proxy, tmp_path):
    import base64
    import hashlib
    src = write_random(tmp_path / "big", 11 * MiB, seed=22)
    harness.run("put", "s.bin", src, options=dict(OPTS, checksum="sha256"))
    assert proxy.requests("POST", "^uploads=$")[0]["headers"][
        "x-amz-checksum-algorithm"] == "SHA256"
    data = src.read_bytes()
    body = proxy.requests("POST", "^uploadId=")[0]["body"].decode()
    for n in range(3):
        part = data[n * 5 * MiB:(n + 1) * 5 * MiB]
        b64 = base64.b64encode(hashlib.sha256(part).digest()).decode()
        assert "<ChecksumSHA256>%s</ChecksumSHA256>" % b64 in body


def test_growing_source_streams_parts(harness, proxy, tmp_path):
    """A source that is still being written (the gateway encoding it) goes
    up part by part as it grows; the upload completes with the final size
    only once the source says it is complete."""
    src = write_random(tmp_path / "grow", 23 * MiB + 5, seed=11)
    t0 = time.time()
    out = harness.run("put", "--growing", str(20 * MiB), "--size-hint",
                      str(30 * MiB), "g.bin", src, options=OPTS)
    assert "stored g.bin %d bytes" % (23 * MiB + 5) in out.stdout
    assert time.time() - t0 > 1.0      # it waited for the growth
    parts = proxy.requests("PUT", r"partNumber=")
    assert sorted(part_numbers(parts)) == [1, 2, 3, 4, 5]
    assert [e["body_len"] for e in parts if "partNumber=5&" in e["query"]] == [3 * MiB + 5]
    assert len(proxy.requests("POST", r"^uploads=$")) == 1
    harness.run("cat", "g.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_small_growing_source_is_one_put(harness, proxy, tmp_path):
    src = write_random(tmp_path / "small", 100_000, seed=12)
    harness.run("put", "--growing", str(MiB), "s.bin", src, options=OPTS)
    assert [e["method"] for e in proxy.requests()] == ["PUT"]
    harness.run("cat", "s.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_abandoned_growing_source_leaves_nothing(harness, proxy, tmp_path):
    """The file changed while it was encoded: the upload is aborted and no
    object appears under the key."""
    src = write_random(tmp_path / "grow", 30 * MiB, seed=13)
    p = harness.run("put", "--growing", str(20 * MiB), "--abandon-at",
                    str(12 * MiB), "a.bin", src, options=OPTS, check=False)
    assert p.returncode == 1
    assert "put: ESTALE: s3: PUT " in p.stderr and "abandoned" in p.stderr, p.stderr
    assert len(proxy.requests("PUT", r"partNumber=")) >= 1
    assert len(proxy.requests("DELETE", r"uploadId=")) == 1
    assert not proxy.requests("POST", r"^uploadId=")     # never completed
    assert harness.run("stat", "a.bin", check=False).returncode == 1


def wait_forwarded(proxy, query, timeout=60):
    """Waits until a request matching query reached the server."""
    deadline = time.time() + timeout
    while not [e for e in proxy.requests(query=query)
               if e.get("upstream_status")]:
        assert time.time() < deadline, "never forwarded: %s" % query
        time.sleep(0.02)


def test_killed_between_complete_and_its_answer(server_harness, server_proxy,
                                                tmp_path):
    """Issue 15, defect 2: CompleteMultipartUpload reached the server, the
    process died before it heard back (the gateway would not have
    recorded it either).  The saved upload no longer exists; the put()
    that resumes the token must find the object done (size and ETag or
    checksum), not retry Complete for ever nor upload it again."""
    h, proxy = server_harness, server_proxy
    src = write_random(tmp_path / "big", 12 * MiB, seed=31)
    tok = tmp_path / "token"
    proxy.add_fault(method="POST", query=r"^uploadId=", stall=60)
    proc = h.popen("put", "--token", tok, "--sha256", sha256_file(src),
                   "c.bin", src, options=OPTS)
    try:
        wait_forwarded(proxy, r"^uploadId=")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert len(token_parts(tok)) == 3
    proxy.clear_faults()
    n_before = len(proxy.requests())

    out = put(h, tok, "c.bin", src)
    assert "stored c.bin" in out.stdout
    after = proxy.requests()[n_before:]
    assert [e["method"] for e in after] == ["HEAD"], \
        [(e["method"], e["query"], e["status"]) for e in after]
    h.run("cat", "c.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_completed_object_of_other_bytes_is_not_taken(radosgw, tmp_path,
                                                      request):
    """The same check must not accept an object that merely has the right
    size: another object under the key is replaced by a new upload.  (On
    radosgw: s3rver answers a Complete of a finished upload with a 500 that
    cannot be told from a transient one.)"""
    proxy = Proxy(radosgw.port)
    request.addfinalizer(proxy.close)
    h = Harness(tmp_path, proxy.url, "s3://drgw/other-bytes",
                env={"AWS_ACCESS_KEY_ID": radosgw.access_key,
                     "AWS_SECRET_ACCESS_KEY": radosgw.secret_key})
    src = write_random(tmp_path / "big", 12 * MiB, seed=32)
    other = write_random(tmp_path / "other", 12 * MiB, seed=33)
    tok = tmp_path / "token"
    proxy.add_fault(method="POST", query=r"^uploadId=", stall=60)
    proc = h.popen("put", "--token", tok, "--sha256", sha256_file(src),
                   "d.bin", src, options=OPTS)
    try:
        wait_forwarded(proxy, r"^uploadId=")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    proxy.clear_faults()
    h.run("put", "d.bin", other, options=OPTS)  # someone else's bytes
    put(h, tok, "d.bin", src)
    h.run("cat", "d.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def rgw_harness(radosgw, tmp_path, request, prefix):
    proxy = Proxy(radosgw.port)
    request.addfinalizer(proxy.close)
    h = Harness(tmp_path, proxy.url, "s3://drgw/" + prefix,
                env={"AWS_ACCESS_KEY_ID": radosgw.access_key,
                     "AWS_SECRET_ACCESS_KEY": radosgw.secret_key})
    return h, proxy


def test_lost_create_answer_leaves_no_upload(radosgw, tmp_path, request):
    """Issue 15, defect 7: CreateMultipartUpload went through but its
    answer was lost; the retry creates a second upload.  The first must
    not stay behind (on radosgw, which has ListMultipartUploads)."""
    h, proxy = rgw_harness(radosgw, tmp_path, request, "lost-create")
    src = write_random(tmp_path / "big", 12 * MiB, seed=34)
    proxy.add_fault(method="POST", query=r"^uploads=$", forward_first=True,
                    drop=True)
    put(h, tmp_path / "token", "k.bin", src)
    assert len(proxy.requests(method="POST", query=r"^uploads=$")) == 2
    assert radosgw.multipart_uploads("drgw", "lost-create/") == []
    h.run("cat", "k.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def kill_during_create(h, proxy, src, tok, key):
    proxy.clear()
    proxy.add_fault(method="POST", query=r"^uploads=$", stall=60)
    proc = h.popen("put", "--token", tok, "--sha256", sha256_file(src),
                   key, src, options=OPTS)
    try:
        wait_forwarded(proxy, r"^uploads=$")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    proxy.clear_faults()


def test_killed_before_the_upload_id_was_saved(radosgw, tmp_path, request):
    """A crash between CreateMultipartUpload and saving its id: the next
    put() (or abort_put()) finds the token that says an upload was being
    created, and aborts it."""
    h, proxy = rgw_harness(radosgw, tmp_path, request, "unsaved")
    src = write_random(tmp_path / "big", 12 * MiB, seed=35)
    tok = tmp_path / "token"
    kill_during_create(h, proxy, src, tok, "k.bin")
    assert len(radosgw.multipart_uploads("drgw", "unsaved/")) == 1
    put(h, tok, "k.bin", src)
    assert radosgw.multipart_uploads("drgw", "unsaved/") == []

    tok2 = tmp_path / "token2"
    kill_during_create(h, proxy, src, tok2, "k2.bin")
    assert len(radosgw.multipart_uploads("drgw", "unsaved/k2.bin")) == 1
    h.run("abort", "k2.bin", tok2)
    assert radosgw.multipart_uploads("drgw", "unsaved/") == []
