# SPDX-License-Identifier: MIT
"""The plugin's requests, as sigv4-dump prints them from the plugin's own
builders and signer, against botocore and an independent strict encoder."""
import hashlib
import json
import os
import subprocess

import pytest

from conftest import SIGV4_DUMP, base_env
from sigcheck import botocore_sign, enc, strict_query, parse_authorization

EPOCH = 1369353600  # 2013-05-24T00:00:00Z
AMZ_DATE = "20130524T000000Z"
AKID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEJr//////////wEaDOv+token/with=odd+chars=="
TRICKY_KEYS = [
    "plain.db",
    "dir/sub dir/file with spaces.db",
    "a+b=c&d?e#f%g~h!i'j(k)l*m,n;o:p@q$r",
    "caf\u00e9/\u65e5\u672c\u8a9e/\U0001F4BE.bin",
    "../dots/./x/..//y",
]
TOKENS = ["1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=",
          "AbC+dEf/GhI=", "plain"]
UPLOAD_ID = "VXBsb2FkIElEIGZvciA2aWWpZ+/=mW5n.LW1vdmllLm0ydHM-_~"


def dump(tmp_path, url, op, *args, options=None, token=None):
    argv = [SIGV4_DUMP]
    for k, v in (options or {}).items():
        argv += ["-o", "%s=%s" % (k, v)]
    argv += [url, str(EPOCH), op] + [str(a) for a in args]
    env = base_env(tmp_path)
    env.update(AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET)
    if token:
        env["AWS_SESSION_TOKEN"] = token
    p = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def headers_of(d):
    out = {}
    for line in d["headers"]:
        name, _, value = line.partition(": ")
        assert name.lower() not in out, "duplicate header %s" % name
        out[name.lower()] = value
    return out


def check(d, host_url, path, query_pairs, token=None, region="us-east-1",
          method=None):
    """URL built independently; signature recomputed by botocore."""
    q = strict_query(query_pairs)
    want_url = host_url + path + ("?" + q if q else "")
    assert d["url"] == want_url
    if method:
        assert d["method"] == method
    h = headers_of(d)
    auth = parse_authorization(h["authorization"])
    assert auth["akid"] == AKID and auth["region"] == region
    assert h["x-amz-date"] == AMZ_DATE
    assert h["host"] == host_url.split("://", 1)[1]
    assert h["x-amz-content-sha256"] == d["payload_hash"]
    if token:
        assert h["x-amz-security-token"] == token
    else:
        assert "x-amz-security-token" not in h
    assert auth["signed"] == sorted(k for k in h if k != "authorization")
    signed = {k: h[k] for k in auth["signed"]}
    cr, sig = botocore_sign(d["method"], want_url, signed, AMZ_DATE, AKID,
                            SECRET, token, region)
    assert d["canonical_request"] == cr
    assert auth["signature"] == sig
    return h


ENDPOINT = "http://127.0.0.1:9000"
PATH_OPTS = {"endpoint": ENDPOINT}


@pytest.mark.parametrize("key", TRICKY_KEYS)
@pytest.mark.parametrize("token", [None, TOKEN])
def test_put_get_head_delete(tmp_path, key, token):
    body = tmp_path / "body"
    body.write_bytes(b"Welcome to Amazon S3." * 100)
    url = "s3://bkt/pre fix"
    path = "/bkt/" + enc("pre fix/" + key, keep_slash=True)

    d = dump(tmp_path, url, "put", key, body, options=PATH_OPTS, token=token)
    h = check(d, ENDPOINT, path, [], token, method="PUT")
    assert d["payload_hash"] == hashlib.sha256(body.read_bytes()).hexdigest()
    import base64
    assert h["content-md5"] == base64.b64encode(
        hashlib.md5(body.read_bytes()).digest()).decode()
    assert h["content-type"] == "application/octet-stream"

    d = dump(tmp_path, url, "get", key, 5, 1048580, options=PATH_OPTS, token=token)
    h = check(d, ENDPOINT, path, [], token, method="GET")
    assert h["range"] == "bytes=5-1048580"
    assert d["payload_hash"] == hashlib.sha256(b"").hexdigest()

    d = dump(tmp_path, url, "head", key, options=PATH_OPTS, token=token)
    check(d, ENDPOINT, path, [], token, method="HEAD")
    d = dump(tmp_path, url, "delete", key, options=PATH_OPTS, token=token)
    check(d, ENDPOINT, path, [], token, method="DELETE")


@pytest.mark.parametrize("ctoken", TOKENS)
def test_list_with_continuation_token(tmp_path, ctoken):
    d = dump(tmp_path, "s3://bkt/app", "list", "sub dir/+x", ctoken,
             options=PATH_OPTS)
    q = [("list-type", "2"), ("max-keys", "1000"),
         ("prefix", "app/sub dir/+x"), ("continuation-token", ctoken)]
    check(d, ENDPOINT, "/bkt", q, method="GET")
    assert "%2B" in d["url"] or "+" not in ctoken
    d = dump(tmp_path, "s3://bkt", "list", "", options=PATH_OPTS)
    check(d, ENDPOINT, "/bkt", [("list-type", "2"), ("max-keys", "1000"),
                                ("prefix", "")])


def test_multipart_requests(tmp_path):
    key = "big/obj ect+1.bin"
    path = "/bkt/" + enc("p/" + key, keep_slash=True)
    part = tmp_path / "part"
    part.write_bytes(os.urandom(70000))
    xml = tmp_path / "complete.xml"
    xml.write_text('<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>'
                   '<ETag>"abc"</ETag></Part></CompleteMultipartUpload>')
    opts = dict(PATH_OPTS, **{"storage-class": "STANDARD_IA",
                              "object-lock-mode": "COMPLIANCE",
                              "object-lock-retain-days": "7",
                              "checksum": "sha256"})

    d = dump(tmp_path, "s3://bkt/p", "create-mpu", key, options=opts, token=TOKEN)
    h = check(d, ENDPOINT, path, [("uploads", "")], TOKEN, method="POST")
    assert h["x-amz-storage-class"] == "STANDARD_IA"
    assert h["x-amz-object-lock-mode"] == "COMPLIANCE"
    assert h["x-amz-object-lock-retain-until-date"] == "2013-05-31T00:00:00Z"
    assert h["x-amz-checksum-algorithm"] == "SHA256"

    d = dump(tmp_path, "s3://bkt/p", "upload-part", key, UPLOAD_ID, 17, part,
             options=opts, token=TOKEN)
    h = check(d, ENDPOINT, path, [("partNumber", "17"), ("uploadId", UPLOAD_ID)],
              TOKEN, method="PUT")
    import base64
    assert h["x-amz-checksum-sha256"] == base64.b64encode(
        hashlib.sha256(part.read_bytes()).digest()).decode()

    d = dump(tmp_path, "s3://bkt/p", "complete-mpu", key, UPLOAD_ID, xml,
             options=opts, token=TOKEN)
    h = check(d, ENDPOINT, path, [("uploadId", UPLOAD_ID)], TOKEN, method="POST")
    assert h["content-type"] == "application/xml"
    assert d["payload_hash"] == hashlib.sha256(xml.read_bytes()).hexdigest()

    d = dump(tmp_path, "s3://bkt/p", "abort-mpu", key, UPLOAD_ID, options=opts)
    check(d, ENDPOINT, path, [("uploadId", UPLOAD_ID)], method="DELETE")

    d = dump(tmp_path, "s3://bkt/p", "list-parts", key, UPLOAD_ID, options=opts)
    check(d, ENDPOINT, path, [("uploadId", UPLOAD_ID), ("max-parts", "1000")],
          method="GET")
    d = dump(tmp_path, "s3://bkt/p", "list-parts", key, UPLOAD_ID, 1000,
             options=opts)
    check(d, ENDPOINT, path, [("uploadId", UPLOAD_ID), ("max-parts", "1000"),
                              ("part-number-marker", "1000")])


def test_virtual_host_and_region(tmp_path):
    d = dump(tmp_path, "s3://my-bucket/x", "get", "a b", 0, 9,
             options={"region": "eu-west-1"})
    check(d, "https://my-bucket.s3.eu-west-1.amazonaws.com",
          "/" + enc("x/a b", keep_slash=True), [], region="eu-west-1")
    d = dump(tmp_path, "s3://my-bucket", "list", "", "tok/+=",
             options={"region": "eu-west-1"})
    check(d, "https://my-bucket.s3.eu-west-1.amazonaws.com", "/",
          [("list-type", "2"), ("max-keys", "1000"), ("prefix", ""),
           ("continuation-token", "tok/+=")], region="eu-west-1")


def test_custom_port_and_ipv6(tmp_path):
    d = dump(tmp_path, "s3://bkt", "head", "k",
             options={"endpoint": "https://[::1]:8443"})
    check(d, "https://[::1]:8443", "/bkt/k", [])
    d = dump(tmp_path, "s3://bkt", "head", "k",
             options={"endpoint": "https://minio.example:9000",
                      "addressing": "virtual"})
    check(d, "https://bkt.minio.example:9000", "/k", [])
