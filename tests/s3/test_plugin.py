# SPDX-License-Identifier: MIT
"""The S3 plugin through plugin-harness against s3rver, behind the
recording proxy: round trips, ranges, listings, odd keys, errors, and every
request checked against botocore as it arrived on the wire."""
import filecmp
import os
import subprocess
import time
import urllib.parse

import pytest

from conftest import BUCKET, SECRET_KEY, Harness, sha256_file, write_random
from sigcheck import check_wire

MiB = 1 << 20


def assert_wire_signed(proxy):
    """Every request the plugin sent is canonical and botocore-signed."""
    entries = proxy.requests()
    assert entries
    for e in entries:
        check_wire(e["method"], proxy.url, e["raw"], e["headers"], SECRET_KEY)


def test_small_round_trip(harness, proxy, tmp_path):
    src = write_random(tmp_path / "small", 1000)
    out = harness.run("put", "--sha256", sha256_file(src), "a.db", src)
    assert "stored a.db 1000 bytes" in out.stdout
    assert len(proxy.requests("PUT")) == 1
    harness.run("cat", "a.db", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)
    st = harness.run("stat", "a.db").stdout.split()
    assert st[0:2] == ["size", "1000"] and int(st[3]) > 0
    assert_wire_signed(proxy)


def test_empty_object(harness, tmp_path):
    src = tmp_path / "empty"
    src.write_bytes(b"")
    harness.run("put", "empty", src)
    assert harness.run("stat", "empty").stdout.startswith("size 0 ")
    p = harness.run("cat", "empty", tmp_path / "o")
    assert p.stdout.strip() == "read 0"
    # No ranged GET here: s3rver answers a range on an empty object with a
    # 206 announcing one byte it never sends; S3 answers 416, which
    # test_ranged_reads covers past the end of an object.


def test_multipart_round_trip(harness, proxy, tmp_path):
    src = write_random(tmp_path / "big", 40 * MiB + 12345, seed=1)
    tok = tmp_path / "token"
    harness.run("put", "--token", tok, "--sha256", sha256_file(src), "big.bin",
                src, options={"part-size": "5M", "upload-concurrency": "4"})
    parts = proxy.requests("PUT", r"partNumber=")
    assert sorted(int(e["query"].split("partNumber=")[1].split("&")[0])
                  for e in parts) == list(range(1, 10))
    assert all(e["body_len"] == 5 * MiB for e in parts
               if "partNumber=9&" not in e["query"])
    assert len(proxy.requests("POST", r"^uploads=$")) == 1
    assert len(proxy.requests("POST", r"^uploadId=")) == 1
    harness.run("cat", "big.bin", tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)
    assert_wire_signed(proxy)


def test_ranged_reads(harness, tmp_path):
    size = 6 * MiB + 7
    src = write_random(tmp_path / "obj", size, seed=2)
    data = src.read_bytes()
    harness.run("put", "r.bin", src)
    for off, length in [(0, 1), (0, 10), (1, 1), (12345, 4096),
                        (5 * MiB - 3, 100), (size - 10, 10), (size - 10, 100),
                        (size - 1, 1), (size, 5), (size + 100, 5),
                        (0, size), (0, size + 10)]:
        out = tmp_path / "part"
        p = harness.run("get", "r.bin", off, length, out)
        want = data[off:off + length]
        assert p.stdout.strip() == "read %d" % len(want), (off, length)
        assert out.read_bytes() == want, (off, length)


def test_listing_pages(harness, proxy, tmp_path):
    src = tmp_path / "tiny"
    src.write_bytes(b"x")
    # 1003 objects through the plugin would take a while; the listing is
    # what is tested, so create them through the same s3rver directly.
    import http.client
    from sigcheck import botocore_sign  # noqa: F401  (botocore present)
    import botocore.session
    s = botocore.session.get_session()
    client = s.create_client("s3", endpoint_url=proxy.url.replace(
        str(proxy.port), str(proxy.upstream_port)), region_name="us-east-1",
        aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
        config=botocore.config.Config(s3={"addressing_style": "path"}))
    prefix = harness.url.split("/", 3)[3] + "/"
    for i in range(1003):
        client.put_object(Bucket=BUCKET, Key="%sk%04d" % (prefix, i), Body=b"x")
    client.put_object(Bucket=BUCKET, Key=prefix.rstrip("/") + "-sibling", Body=b"")
    p = harness.run("list")
    keys = [line.split("\t")[0] for line in p.stdout.splitlines()]
    assert keys == ["k%04d" % i for i in range(1003)]
    assert "pages 2 keys 1003" in p.stderr
    lists = proxy.requests("GET", r"list-type=2")
    assert len(lists) == 2 and "continuation-token=" in lists[1]["query"]
    assert_wire_signed(proxy)
    p = harness.run("list", "k100")
    assert p.stdout.split() == ["k1000", "1", "k1001", "1", "k1002", "1"]
    # A range (the gateway lists large buckets in parallel ranges): from
    # start-after, stopping at its end, in one page.
    proxy.clear()
    p = harness.run("list-range", "k0499", "k0600")
    assert [line.split("\t")[0] for line in p.stdout.splitlines()] == \
        ["k%04d" % i for i in range(500, 600)]
    [page] = proxy.requests("GET", r"list-type=2")
    assert "start-after=" + urllib.parse.quote(prefix + "k0499", safe="") in page["query"]
    p = harness.run("list-range", "k0999", "-")
    assert p.stdout.split() == ["k1000", "1", "k1001", "1", "k1002", "1"]
    assert_wire_signed(proxy)


@pytest.mark.parametrize("key", ["with space/and+plus.db",
                                 "unicod\u00e9/\u65e5\u672c/\U0001F4BE.bin",
                                 "sym=bols&more~(x)!'*,;:@$.db",
                                 "percent%20not%2Fdecoded.db"])
def test_odd_keys(harness, proxy, tmp_path, key):
    src = write_random(tmp_path / "f", 3000, seed=3)
    harness.run("put", key, src)
    harness.run("cat", key, tmp_path / "back")
    assert filecmp.cmp(src, tmp_path / "back", shallow=False)
    p = harness.run("list")
    assert p.stdout == "%s\t3000\n" % key
    harness.run("rm", key)
    assert harness.run("list").stdout == ""
    assert_wire_signed(proxy)


def test_missing_object(harness):
    p = harness.run("stat", "nope.db", check=False)
    assert p.returncode == 1
    assert "ENOENT: s3: HEAD drgw/test_missing_object/nope.db: 404 Not Found" in p.stderr
    p = harness.run("get", "nope.db", 0, 10, "/dev/null", check=False)
    assert "ENOENT: s3: GET drgw/test_missing_object/nope.db: 404 NoSuchKey: " \
           "The specified key does not exist." in p.stderr
    harness.run("rm", "nope.db")  # deleting nothing is fine


def test_bad_keys(harness, proxy, tmp_path):
    p = harness.run("stat", "", check=False)
    assert "stat: EINVAL: s3: HEAD s3://drgw/test_bad_keys: empty object key" in p.stderr
    p = harness.run("stat", "k" * 1020, check=False)
    assert "ENAMETOOLONG: s3: HEAD s3://drgw/test_bad_keys: key longer than " \
        "S3's 1024 bytes: test_bad_keys/kkk" in p.stderr
    assert not proxy.requests()


def test_missing_bucket(tmp_path, proxy):
    h = Harness(tmp_path, proxy.url, "s3://no-such-bucket/x")
    p = h.run("ping", check=False)
    assert p.returncode == 1
    assert "EINVAL: s3: LIST no-such-bucket: 404 NoSuchBucket" in p.stderr


def test_server_down_fails_fast(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Default backoff: a retry would be visible as a second attempt.
    h = Harness(tmp_path, "http://127.0.0.1:%d" % port, "s3://drgw/x",
                options={"retry-base-ms": None, "retry-cap-ms": None})
    src = tmp_path / "f"
    src.write_bytes(b"data")
    for args in (("put", "k", src), ("stat", "k"), ("list",), ("ping",)):
        p = h.run(*args, check=False, verbose=True)
        assert p.returncode == 1
        assert "ECONNREFUSED: s3: " in p.stderr
        assert "127.0.0.1 port %d" % port in p.stderr
        assert ": attempt 1: " in p.stderr and ": attempt 2: " not in p.stderr


def test_retries_then_succeeds(harness, proxy, tmp_path):
    proxy.add_fault(method="PUT", status=503, code="SlowDown", times=2)
    src = tmp_path / "f"
    src.write_bytes(b"retry me")
    harness.run("put", "k", src)
    assert [e["status"] for e in proxy.requests("PUT")] == [503, 503, 200]


def test_retries_give_up(harness, proxy, tmp_path):
    proxy.add_fault(method="GET", status=500, code="InternalError", times=None)
    p = harness.run("get", "k", 0, 1, "/dev/null", check=False,
                    options={"max-attempts": "2"})
    assert "EAGAIN: s3: GET drgw/test_retries_give_up/k: 500 InternalError" in p.stderr
    assert len(proxy.requests("GET")) == 2


def test_access_denied_not_retried(harness, proxy, tmp_path):
    proxy.add_fault(method="PUT", status=403, body=(
        b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
        b"</Error>"), times=None)
    src = tmp_path / "f"
    src.write_bytes(b"x")
    p = harness.run("put", "k", src, check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == ("plugin-harness: put: EACCES: s3: PUT "
                                "drgw/test_access_denied_not_retried/k: 403 "
                                "AccessDenied: Access Denied")
    assert len(proxy.requests("PUT")) == 1


def test_connection_drop_retried(harness, proxy, tmp_path):
    proxy.add_fault(method="GET", drop=True, times=1)
    src = write_random(tmp_path / "f", 5000)
    harness.run("put", "k", src)
    p = harness.run("get", "k", 10, 100, tmp_path / "o")
    assert p.stdout.strip() == "read 100"
    assert [e["status"] for e in proxy.requests("GET")] == ["dropped", 206]


def test_stalled_server_times_out(harness, proxy, tmp_path):
    # Without the low-speed limit the HEAD would get its 404 after 3 s.
    proxy.add_fault(method="HEAD", delay=3, times=None)
    p = harness.run("stat", "k", check=False,
                    options={"read-timeout": "1", "max-attempts": "1"})
    assert "stat: ETIMEDOUT: s3: HEAD drgw/test_stalled_server_times_out/k: " \
        "Operation too slow" in p.stderr


def test_describe_ping_caps(harness, proxy):
    p = harness.run("describe")
    assert p.stdout.strip() == ("s3://drgw/test_describe_ping_caps at %s "
                                "(region us-east-1)" % proxy.url)
    harness.run("ping")
    assert proxy.requests()[-1]["query"].startswith("list-type=2&max-keys=1&")
    assert harness.run("caps").stdout.strip() == "0x27"
    p = harness.run("caps", options={"object-lock-mode": "GOVERNANCE",
                                     "object-lock-retain-days": "1"})
    assert p.stdout.strip() == "0x2f"


def test_unknown_option(harness):
    p = harness.run("ping", check=False, options={"bogus": "1"})
    assert p.returncode == 1
    assert "open: EINVAL: unknown S3 option 'bogus'" in p.stderr


def test_object_headers(harness, proxy, tmp_path):
    src = write_random(tmp_path / "f", 100)
    harness.run("put", "k", src, options={
        "storage-class": "STANDARD_IA", "object-lock-mode": "COMPLIANCE",
        "object-lock-retain-days": "2", "checksum": "sha256"})
    h = proxy.requests("PUT")[0]["headers"]
    assert h["x-amz-storage-class"] == "STANDARD_IA"
    assert h["x-amz-object-lock-mode"] == "COMPLIANCE"
    until = time.strptime(h["x-amz-object-lock-retain-until-date"],
                          "%Y-%m-%dT%H:%M:%SZ")
    assert abs(time.mktime(until) - time.mktime(time.gmtime()) - 2 * 86400) < 120
    import base64
    import hashlib
    assert h["content-md5"] == base64.b64encode(
        hashlib.md5(src.read_bytes()).digest()).decode()
    assert h["x-amz-checksum-sha256"] == base64.b64encode(
        hashlib.sha256(src.read_bytes()).digest()).decode()
    assert_wire_signed(proxy)


def test_sha256_mismatch_refused(harness, proxy, tmp_path):
    src = write_random(tmp_path / "f", 100)
    p = harness.run("put", "--sha256", "00" * 31 + "01", "k", src, check=False)
    assert "EIO: s3: PUT drgw/test_sha256_mismatch_refused/k: the spool " \
           "object does not match its SHA-256" in p.stderr
    assert not proxy.requests("PUT")


def test_aws_cli_cross_check(harness, proxy, s3rver, tmp_path):
    """Objects the plugin wrote are where the AWS CLI expects them."""
    aws = "/usr/bin/aws"
    if not os.path.exists(aws):
        pytest.skip("awscli not installed")
    small = write_random(tmp_path / "small", 4096, seed=5)
    big = write_random(tmp_path / "big", 12 * MiB + 1, seed=6)
    harness.run("put", "dir/small file.db", small)
    harness.run("put", "big.bin", big, options={"part-size": "5M"})
    env = dict(harness.env, AWS_DEFAULT_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true")
    prefix = "s3://%s/test_aws_cli_cross_check/" % BUCKET
    ls = subprocess.run([aws, "--endpoint-url", s3rver.url, "s3", "ls",
                         "--recursive", prefix], env=env, capture_output=True,
                        text=True, check=True).stdout
    assert "test_aws_cli_cross_check/dir/small file.db" in ls
    assert "test_aws_cli_cross_check/big.bin" in ls
    for name, src in (("dir/small file.db", small), ("big.bin", big)):
        out = tmp_path / "cli-copy"
        subprocess.run([aws, "--endpoint-url", s3rver.url, "s3", "cp",
                        prefix + name, str(out)], env=env, check=True,
                       capture_output=True)
        assert filecmp.cmp(src, out, shallow=False)
    # And the other way round: what the CLI wrote, the plugin reads.
    subprocess.run([aws, "--endpoint-url", s3rver.url, "s3", "cp", str(small),
                    prefix + "from-cli.db"], env=env, check=True,
                   capture_output=True)
    harness.run("cat", "from-cli.db", tmp_path / "back")
    assert filecmp.cmp(small, tmp_path / "back", shallow=False)


def test_read_only_refuses_writes(harness, proxy, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(b"x")
    for args in (("put", "k", src), ("rm", "k")):
        p = harness.run(*args, check=False, read_only=True)
        assert p.returncode == 1
        assert "EROFS: s3: s3://drgw/test_read_only_refuses_writes is read-only" in p.stderr
    assert not proxy.requests()


def test_no_secrets_in_logs(harness, proxy, tmp_path):
    harness.env["AWS_SESSION_TOKEN"] = "SeSsIoNtOkEnVaLuE"
    harness.env["AWS_SECRET_ACCESS_KEY"] = "S3RVER"
    proxy.add_fault(method="PUT", status=503, code="SlowDown", times=1)
    src = write_random(tmp_path / "f", 6 * MiB)
    p = harness.run("put", "k", src, verbose=True, options={"part-size": "5M"})
    p2 = harness.run("get", "nope", 0, 1, "/dev/null", verbose=True,
                     check=False)
    text = p.stdout + p.stderr + p2.stdout + p2.stderr
    assert "[debug]" in text
    assert "SeSsIoNtOkEnVaLuE" not in text
    assert "Signature=" not in text and "Credential=" not in text
