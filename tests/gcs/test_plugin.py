# SPDX-License-Identifier: MIT
"""The GCS plugin through plugin-harness against the GCS emulator: round
trips, ranged reads, listing, names, metadata, deletion, integrity checks,
error reporting, retries, holds and retention."""
import filecmp
import http.client
import json
import re
import time
import urllib.parse

from conftest import (BUCKET, MiB, Harness, goog_hash, sha256_file,
                      write_random)


def put(harness, key, src, **kw):
    return harness.run("put", "--sha256", sha256_file(src), key, src, **kw)


def test_simple_round_trip(harness, emulator, tmp_path):
    src = write_random(tmp_path / "f", 100_000)
    out = put(harness, "a.db", src)
    assert "stored a.db 100000 bytes" in out.stdout
    log = emulator.log()
    assert [(e["method"], e["status"]) for e in log] == [("POST", 200)]
    assert "uploadType=media" in log[0]["path"]
    # No precondition: an unprotected object may be replaced.
    assert "ifGenerationMatch" not in log[0]["path"]
    harness.run("cat", "a.db", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)
    obj = emulator.object("test_simple_round_trip/a.db")
    assert obj["contentType"] == "application/octet-stream"
    st = harness.run("stat", "a.db").stdout.split()
    assert st[0:2] == ["size", "100000"]
    assert st[5] == obj["generation"]            # etag: the generation
    updated = time.strptime(obj["updated"][:19], "%Y-%m-%dT%H:%M:%S")
    assert int(st[3]) // 10**9 == int(time.mktime(updated) - time.timezone)


def test_empty_object(harness, tmp_path):
    src = tmp_path / "empty"
    src.write_bytes(b"")
    put(harness, "empty", src)
    assert harness.run("stat", "empty").stdout.startswith("size 0 ")
    assert harness.run("get", "empty", 0, 10, tmp_path / "o").stdout == "read 0\n"


def test_hashes_sent_and_checked(tmp_path, emulator, proxy):
    """X-Goog-Hash goes with a simple upload and with the last chunk of a
    resumable one, and only there."""
    h = Harness(tmp_path, proxy.url, "gcs://%s/hashes" % BUCKET,
                options={"chunk-size": "256K"})
    small = write_random(tmp_path / "s", 5000, seed=1)
    put(h, "small", small)
    [rq] = proxy.requests("POST")
    assert rq["headers"]["x-goog-hash"] == goog_hash(small.read_bytes())

    proxy.clear()
    big = write_random(tmp_path / "b", 700_000, seed=2)
    put(h, "big", big)
    chunks = [r for r in proxy.requests("PUT") if "upload_id=" in r["path"]]
    assert [r["headers"]["content-range"] for r in chunks] == [
        "bytes 0-262143/700000", "bytes 262144-524287/700000",
        "bytes 524288-699999/700000"]
    assert [("x-goog-hash" in r["headers"]) for r in chunks] == [False, False, True]
    assert chunks[-1]["headers"]["x-goog-hash"] == goog_hash(big.read_bytes())
    # Session URIs are capabilities: no token goes with them.
    assert not any("authorization" in r["headers"] for r in chunks)


def test_resumable_round_trip(harness, emulator, tmp_path):
    """40 MiB in 1 MiB chunks, each at the offset the server confirmed."""
    src = write_random(tmp_path / "f", 40 * MiB, seed=3)
    tok = tmp_path / "tok"
    out = harness.run("put", "--token", tok, "--sha256", sha256_file(src),
                      "big.bin", src, options={"chunk-size": "1M"})
    assert "stored big.bin 41943040 bytes" in out.stdout
    log = emulator.log()
    assert log[0]["method"] == "POST" and "uploadType=resumable" in log[0]["path"]
    chunks = log[1:]
    assert len(chunks) == 40
    for i, e in enumerate(chunks):
        assert e["contentRange"] == "bytes %d-%d/%d" % (i * MiB, (i + 1) * MiB - 1, 40 * MiB)
        assert e["status"] == (308 if i < 39 else 200)
    # The token names the session and the last confirmed offset.
    lines = tok.read_text().splitlines()
    assert lines[0] == "drgw-gcs-resumable 1"
    assert lines[1] == "size %d sha256 %s" % (40 * MiB, sha256_file(src))
    assert urllib.parse.unquote(lines[2][8:]).startswith(emulator.url + "/upload/")
    assert lines[3] == "offset %d" % (39 * MiB)
    harness.run("cat", "big.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_ranged_reads(harness, emulator, tmp_path):
    src = write_random(tmp_path / "f", 3 * MiB + 17, seed=4)
    data = src.read_bytes()
    put(harness, "r", src)
    for off, n in [(0, 1), (1, 4096), (MiB - 3, 10), (3 * MiB, 17),
                   (3 * MiB + 10, 100), (3 * MiB + 17, 5), (5 * MiB, 1)]:
        out = harness.run("get", "r", off, n, tmp_path / "o")
        want = data[off:off + n]
        assert out.stdout == "read %d\n" % len(want)
        assert (tmp_path / "o").read_bytes() == want
    ranges = [e["range"] for e in emulator.log() if e["method"] == "GET"]
    assert ranges[:2] == ["bytes=0-0", "bytes=1-4096"]


def test_names_with_spaces_unicode_plus(harness, emulator, tmp_path):
    src = write_random(tmp_path / "f", 1000, seed=5)
    names = ["with space.db", "ünïcødé/日本語.db", "a+b=c&d?e#f.db",
             "dir/sub/percent%20.db", "~tilde'quote\".db"]
    for n in names:
        put(harness, n, src)
        harness.run("cat", n, tmp_path / "o")
        assert (tmp_path / "o").read_bytes() == src.read_bytes()
    assert set(emulator.object("test_names_with_spaces_unicode_plus/" + n)["name"]
               for n in names) == {"test_names_with_spaces_unicode_plus/" + n
                                   for n in names}
    listed = harness.run("list").stdout.splitlines()
    assert sorted(l.split("\t")[0] for l in listed) == sorted(names)
    for n in names:
        harness.run("rm", n)
    assert harness.run("list").stdout == ""


def test_bad_keys_refused(harness):
    p = harness.run("stat", "a\nb", check=False)
    assert "EINVAL: gcs: STAT gcs://drgw/test_bad_keys_refused: object key " \
           "is not valid UTF-8 without line breaks" in p.stderr
    p = harness.run("stat", "x" * 1025, check=False)
    assert "ENAMETOOLONG" in p.stderr


def test_list_pages(harness, emulator, tmp_path):
    """More than one 1000-item page; the prefix is the backend's."""
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port)
    names = ["k%04d" % i for i in range(1003)]
    for n in names + ["../outside"]:
        full = ("test_list_pages/" + n) if not n.startswith("..") else "other/x"
        conn.request("POST", "/upload/storage/v1/b/%s/o?uploadType=media&name=%s"
                     % (BUCKET, urllib.parse.quote(full, safe="")), body=b"x")
        r = conn.getresponse()
        r.read()
        assert r.status == 200
    conn.close()
    emulator.reset_log()
    p = harness.run("list")
    assert p.stdout.splitlines() == ["%s\t1" % n for n in names]
    assert "pages 2 keys 1003" in p.stderr
    lists = [e for e in emulator.log() if e["method"] == "GET"]
    assert len(lists) == 2
    assert "pageToken=" not in lists[0]["path"]
    assert "pageToken=" in lists[1]["path"]
    assert "prefix=test_list_pages%2F&" in lists[0]["path"]
    # A sub-prefix, and the callback's own stop.
    p = harness.run("list", "k100")
    assert p.stdout.splitlines() == ["k1000\t1", "k1001\t1", "k1002\t1"]
    # A range (the gateway lists large buckets in parallel ranges):
    # startOffset includes its name, the plugin leaves it out.
    emulator.reset_log()
    p = harness.run("list-range", "k0499", "k0600")
    assert p.stdout.splitlines() == ["k%04d\t1" % i for i in range(500, 600)]
    [page] = [e for e in emulator.log() if e["method"] == "GET"]
    assert "startOffset=test_list_pages%2Fk0499" in page["path"]
    assert "endOffset=test_list_pages%2Fk0600" in page["path"]
    p = harness.run("list-range", "k0999", "-")
    assert p.stdout.splitlines() == ["k1000\t1", "k1001\t1", "k1002\t1"]


def test_stat_and_missing_object(harness, tmp_path):
    p = harness.run("stat", "nope", check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == (
        "plugin-harness: stat: ENOENT: gcs: STAT drgw/test_stat_and_missing_object/nope: "
        "404 notFound: No such object: drgw/test_stat_and_missing_object/nope")
    p = harness.run("get", "nope", 0, 10, tmp_path / "o", check=False)
    assert "get: ENOENT: gcs: GET drgw/test_stat_and_missing_object/nope: 404 notFound" in p.stderr


def test_missing_bucket(tmp_path, emulator):
    h = Harness(tmp_path, emulator.url, "gcs://no-such-bucket/p")
    p = h.run("ping", check=False)
    assert "ping: EINVAL: gcs: LIST no-such-bucket/p/: 404 notFound: " \
           "The specified bucket does not exist." in p.stderr


def test_delete(harness, emulator, tmp_path):
    src = write_random(tmp_path / "f", 10)
    put(harness, "d", src)
    harness.run("rm", "d")
    assert emulator.object("test_delete/d") is None
    # Deleting what is not there succeeds (a retried DELETE, say).
    harness.run("rm", "d")
    p = harness.run("rm", "d", read_only=True, check=False)
    assert "EROFS: gcs: gcs://drgw/test_delete is read-only" in p.stderr


def test_describe_ping_caps(harness, emulator):
    assert harness.run("describe").stdout == \
        "gcs://drgw/test_describe_ping_caps at %s\n" % emulator.url
    harness.run("ping")
    [e] = emulator.log()
    assert "maxResults=1&" in e["path"]
    assert harness.run("ctl-u64", "0x4702").stdout == "0x23\n"
    assert harness.run("ctl-msg", "0x4701").stdout == \
        "none (custom endpoint without credentials)\n"
    p = harness.run("ctl-msg", "4242", check=False)
    assert p.stderr.strip() == \
        "plugin-harness: ctl-msg: EOPNOTSUPP: Operation not supported"


def test_server_down_fails_fast(tmp_path):
    """A refused connection is final at once: the gateway's scheduler, not
    the request, waits for the endpoint to come back."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    h = Harness(tmp_path, "http://127.0.0.1:%d" % port, "gcs://drgw/p",
                options={"retry-base-ms": "1000", "max-attempts": "5"})
    src = write_random(tmp_path / "f", 100)
    p = h.run("put", "k", src, check=False, verbose=True)
    assert p.returncode == 1
    assert re.search(r"put: ECONNREFUSED: gcs: UPLOAD drgw/p/k: Failed to connect "
                     r"to 127\.0\.0\.1 port %d" % port, p.stderr), p.stderr
    assert len(re.findall(r"gcs: UPLOAD drgw/p/k: attempt \d", p.stderr)) == 1
    big = write_random(tmp_path / "b", 600_000)
    p = h.run("put", "big", big, check=False, verbose=True,
              options={"chunk-size": "256K"})
    assert "put: ECONNREFUSED: gcs: START UPLOAD drgw/p/big: Failed to connect" in p.stderr
    assert len(re.findall(r"attempt \d", p.stderr)) == 1
    for args in (("stat", "k"), ("get", "k", 0, 1, tmp_path / "o"), ("list",),
                 ("rm", "k"), ("ping",)):
        p = h.run(*args, check=False)
        assert ": ECONNREFUSED: gcs: " in p.stderr, p.stderr


def test_transient_errors_retried(harness, emulator, tmp_path):
    src = write_random(tmp_path / "f", 5000)
    for status in (408, 429, 500, 502, 503, 504):
        emulator.reset_log()
        emulator.fail(status=status, method="POST")
        put(harness, "k", src)
        assert [e["status"] for e in emulator.log()] == [status, 200]
    # Not retried: 501 and the 4xx other than 408 and 429.
    for status in (400, 409, 501):
        emulator.reset_log()
        emulator.fail(status=status, method="POST")
        assert harness.run("put", "k", src, check=False).returncode == 1
        assert len(emulator.log()) == 1


def test_503_retried_then_success(harness, emulator, tmp_path):
    src = write_random(tmp_path / "f", 5000)
    put(harness, "k", src)
    emulator.reset_log()
    emulator.fail(count=3, status=503, method="GET")
    harness.run("cat", "k", tmp_path / "o")
    statuses = [e["status"] for e in emulator.log()]
    assert statuses == [503, 503, 503, 200, 206]   # stat x4, then the read
    emulator.reset_log()
    emulator.fail(count=3, status=503, method="POST")
    put(harness, "k", src)
    assert [e["status"] for e in emulator.log()] == [503, 503, 503, 200]


def test_retries_give_up(harness, emulator, tmp_path):
    emulator.fail(count=10, status=503, method="GET")
    p = harness.run("stat", "k", check=False)
    assert p.stderr.strip() == (
        "plugin-harness: stat: EAGAIN: gcs: STAT drgw/test_retries_give_up/k: "
        "503 backendError: Injected fault: 503 Service Unavailable")
    assert len(emulator.log()) == 4          # max-attempts default
    emulator.clear_faults()
    emulator.reset_log()
    emulator.fail(count=10, status=503, method="GET")
    harness.run("stat", "k", check=False, options={"max-attempts": "2"})
    assert len(emulator.log()) == 2


def test_lost_answers_and_resets(harness, emulator, tmp_path):
    """The request took effect but the answer was lost; a connection cut
    mid-body.  Both are retried and the object is right."""
    src = write_random(tmp_path / "f", 200_000, seed=6)
    emulator.fail(status=503, mode="after", method="POST")
    put(harness, "k", src)
    emulator.fail(mode="reset", bytes=1000, method="POST")
    put(harness, "k", src)
    harness.run("cat", "k", tmp_path / "o")
    assert filecmp.cmp(src, tmp_path / "o", shallow=False)
    emulator.fail(mode="reset", bytes=0, method="GET", path="alt=media")
    harness.run("get", "k", 100, 1000, tmp_path / "o")
    assert (tmp_path / "o").read_bytes() == src.read_bytes()[100:1100]


def test_auth_errors_reported_at_once(harness, emulator):
    emulator.fail(status=403, method="GET")
    p = harness.run("stat", "k", check=False)
    assert p.stderr.strip() == (
        "plugin-harness: stat: EACCES: gcs: STAT drgw/test_auth_errors_reported_at_once/k: "
        "403 forbidden: Injected fault: 403 Forbidden")
    assert len(emulator.log()) == 1
    emulator.reset_log()
    # Without credentials there is nothing to refresh: at once too.
    emulator.fail(status=401, method="GET")
    p = harness.run("stat", "k", check=False)
    assert "stat: EACCES: gcs: STAT drgw/test_auth_errors_reported_at_once/k: " \
           "401 authError: Injected fault: 401 Unauthorized" in p.stderr
    assert len(emulator.log()) == 1


def test_hash_mismatch_refused(harness, emulator, tmp_path):
    src = write_random(tmp_path / "f", 100)
    p = harness.run("put", "--sha256", "00" * 31 + "01", "k", src, check=False)
    assert p.stderr.strip() == (
        "plugin-harness: put: EIO: gcs: UPLOAD drgw/test_hash_mismatch_refused/k: "
        "the spool object does not match its SHA-256")
    assert emulator.log() == []
    # Resumable: nothing is finalized either.
    big = write_random(tmp_path / "b", 600_000)
    p = harness.run("put", "--sha256", "00" * 32, "k", big, check=False,
                    options={"chunk-size": "256K"})
    assert p.returncode == 0     # all-zero means "not given"
    p = harness.run("put", "--sha256", "11" * 32, "k2", big, check=False,
                    options={"chunk-size": "256K"})
    assert "the spool object does not match its SHA-256" in p.stderr
    assert emulator.object("test_hash_mismatch_refused/k2") is None


def test_stored_object_checked(tmp_path):
    """A server that stores something else than was sent is caught."""
    import http.server
    import threading

    class Liar(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"name": "p/k", "size": "3", "generation": "5",
                               "crc32c": "AAAAAA==", "md5Hash": "x"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_DELETE(self):
            self.server.deleted = self.path
            self.send_response(204)
            self.end_headers()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Liar)
    srv.deleted = None
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        h = Harness(tmp_path, "http://127.0.0.1:%d" % srv.server_address[1],
                    "gcs://drgw/p")
        src = tmp_path / "f"
        src.write_bytes(b"abc")
        p = h.run("put", "k", src, check=False)
        assert ("put: EIO: gcs: UPLOAD drgw/p/k: stored object does not match "
                "the upload (size 3 crc32c AAAAAA== md5 x, expected 3 ") in p.stderr
        # The bad generation is deleted, and only that one.
        assert srv.deleted == "/storage/v1/b/drgw/o/p%2Fk?ifGenerationMatch=5"
    finally:
        srv.shutdown()
        srv.server_close()


def test_unknown_option_lists_valid_ones(tmp_path, emulator):
    h = Harness(tmp_path, emulator.url, "gcs://drgw/p",
                options={"chunk_size": "1M"})
    p = h.run("ping", check=False)
    assert p.returncode == 1
    assert "open: EINVAL: unknown GCS option 'chunk_size' (known: endpoint, " \
           "credentials-file, access-token-file, metadata-host, token-uri, " \
           "chunk-size, max-attempts, ca-bundle, tls-verify, temporary-hold, " \
           "event-based-hold, retention-mode, retain-days, connect-timeout, " \
           "read-timeout, retry-base-ms, retry-cap-ms)" in p.stderr


def test_tls_verify_off_warns(tmp_path, emulator):
    h = Harness(tmp_path, emulator.url, "gcs://drgw/p",
                options={"tls-verify": "off"})
    p = h.run("ping")
    assert "[warning] gcs: TLS certificate verification is off for " in p.stderr


def test_holds_and_retention(tmp_path, emulator):
    """Protected uploads: metadata in the upload, never replace, the same
    bytes again succeed, other bytes are refused."""
    h = Harness(tmp_path, emulator.url, "gcs://drgw/held",
                options={"temporary-hold": "on", "retention-mode": "Unlocked",
                         "retain-days": "2"})
    src = write_random(tmp_path / "f", 3000, seed=7)
    put(h, "k", src)
    log = emulator.log()
    assert "uploadType=multipart" in log[0]["path"]
    assert "ifGenerationMatch=0" in log[0]["path"]
    obj = emulator.object("held/k")
    assert obj["temporaryHold"] is True
    assert obj["retention"]["mode"] == "Unlocked"
    until = time.mktime(time.strptime(obj["retention"]["retainUntilTime"],
                                      "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(until - time.time() - 2 * 86400) < 120
    assert h.run("ctl-u64", "0x4702").stdout == "0x3b\n"   # + IMMUTABLE, CONDITIONAL

    # Uploading the same object again (a retry after a lost answer) works.
    emulator.reset_log()
    put(h, "k", src)
    assert [e["status"] for e in emulator.log()] == [412, 200]
    # Other bytes under the same name are refused, and so is deleting.
    other = write_random(tmp_path / "g", 3000, seed=8)
    p = h.run("put", "k", other, check=False)
    assert "put: EEXIST: gcs: UPLOAD drgw/held/k: a different object already " \
           "exists under this protected name (holds or retention); not replaced" in p.stderr
    p = h.run("rm", "k", check=False)
    assert "rm: EACCES: gcs: DELETE drgw/held/k: 403 forbidden: Object " \
           "'drgw/held/k' is under active Temporary hold" in p.stderr

    # Resumable uploads carry the same metadata in the initiation.
    big = write_random(tmp_path / "b", 600_000, seed=9)
    emulator.reset_log()
    put(h, "big", big, options={"chunk-size": "256K"})
    log = emulator.log()
    assert "uploadType=resumable" in log[0]["path"]
    assert "ifGenerationMatch=0" in log[0]["path"]
    assert emulator.object("held/big")["temporaryHold"] is True
    assert emulator.object("held/big")["retention"]["mode"] == "Unlocked"
    put(h, "big", big, options={"chunk-size": "256K"})


def test_growing_source_streams_chunks(tmp_path, emulator, proxy):
    """A source still being written goes up chunk by chunk with an unknown
    total; the last chunk carries the total and the hashes."""
    h = Harness(tmp_path, proxy.url, "gcs://%s/grow" % BUCKET,
                options={"chunk-size": "1M"})
    size = 3 * MiB + 300_000     # its last bytes come 0.15 s after the rest
    src = write_random(tmp_path / "g", size, seed=21)
    t0 = time.time()
    out = h.run("put", "--growing", str(2 * MiB), "--size-hint",
                str(4 * MiB), "g.bin", src)
    assert "stored g.bin %d bytes" % size in out.stdout
    assert time.time() - t0 > 1.0
    [start] = proxy.requests("POST")
    assert "uploadType=resumable" in start["path"]
    assert "x-upload-content-length" not in start["headers"]
    chunks = [r for r in proxy.requests("PUT") if "upload_id=" in r["path"]]
    assert [r["headers"]["content-range"] for r in chunks] == [
        "bytes 0-1048575/*", "bytes 1048576-2097151/*",
        "bytes 2097152-3145727/*", "bytes 3145728-%d/%d" % (size - 1, size)]
    assert chunks[-1]["headers"]["x-goog-hash"] == goog_hash(src.read_bytes())
    h.run("cat", "g.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_small_growing_source_is_one_upload(harness, emulator, tmp_path):
    src = write_random(tmp_path / "s", 50_000, seed=22)
    harness.run("put", "--growing", str(MiB), "s.bin", src)
    assert [(e["method"], e["status"]) for e in emulator.log()] == [("POST", 200)]
    harness.run("cat", "s.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)


def test_abandoned_growing_source_cancels_session(tmp_path, emulator, proxy):
    h = Harness(tmp_path, proxy.url, "gcs://%s/abandon" % BUCKET,
                options={"chunk-size": "256K"})
    src = write_random(tmp_path / "g", 4 * MiB, seed=23)
    p = h.run("put", "--growing", str(2 * MiB), "--abandon-at", str(2 * MiB),
              "a.bin", src, check=False)
    assert p.returncode == 1
    assert "put: ESTALE: gcs: UPLOAD drgw/abandon/a.bin: object abandoned while it was written" \
        in p.stderr, p.stderr
    chunks = [r for r in proxy.requests("PUT") if "upload_id=" in r["path"]]
    assert chunks and all(r["headers"]["content-range"].endswith("/*") for r in chunks)
    assert len([r for r in proxy.requests("DELETE") if "upload_id=" in r["path"]]) == 1
    assert h.run("stat", "a.bin", check=False).returncode == 1
