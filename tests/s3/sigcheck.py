# SPDX-License-Identifier: MIT
"""An independent SigV4 oracle: botocore (Debian's python3-botocore).

botocore signs whatever URL it is given without re-encoding it, so a
request is only proven right when (1) its path and query are exactly the
strict S3 encoding of their decoded form, built here independently, and
(2) botocore, fed that URL, the signed headers and the timestamp, computes
the same canonical request and signature.
"""
import re
from urllib.parse import quote, unquote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def enc(s, keep_slash=False):
    """AWS UriEncode: everything but A-Za-z0-9-._~ (and '/') escaped."""
    return quote(s, safe="/~" if keep_slash else "~")


def strict_query(pairs):
    """Canonical query of raw (name, value) pairs."""
    encoded = sorted((enc(k), enc(v)) for k, v in pairs)
    return "&".join("%s=%s" % kv for kv in encoded)


def split_query(query):
    pairs = []
    for part in query.split("&") if query else []:
        k, _, v = part.partition("=")
        pairs.append((unquote(k), unquote(v)))
    return pairs


def parse_authorization(value):
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/"
                     r"aws4_request, SignedHeaders=([a-z0-9;-]+), "
                     r"Signature=([0-9a-f]{64})", value)
    assert m, "malformed Authorization: %r" % value
    return {"akid": m.group(1), "date": m.group(2), "region": m.group(3),
            "signed": m.group(4).split(";"), "signature": m.group(5)}


def botocore_sign(method, url, headers, amz_date, akid, secret, token,
                  region):
    req = AWSRequest(method=method, url=url, headers=headers)
    req.context["timestamp"] = amz_date
    auth = S3SigV4Auth(Credentials(akid, secret, token), "s3", region)
    cr = auth.canonical_request(req)
    sts = auth.string_to_sign(req, cr)
    return cr, auth.signature(sts, req)


def check_wire(method, scheme_host, raw_path_query, headers, secret,
               region=None):
    """Checks one request as it arrived on the wire.

    headers: the request's headers, lower-case names.
    Returns the parsed Authorization.
    """
    auth = parse_authorization(headers["authorization"])
    path, _, query = raw_path_query.partition("?")
    strict_path = enc(unquote(path), keep_slash=True)
    assert path == strict_path, "path not canonical: %r vs %r" % (path, strict_path)
    assert query == strict_query(split_query(query)), \
        "query not canonical: %r" % query
    signed = {h: headers[h] for h in auth["signed"]}
    for h in ("host", "x-amz-date", "x-amz-content-sha256"):
        assert h in signed, "%s not signed" % h
    for h in headers:
        if h.startswith("x-amz-") or h in ("content-md5", "content-type",
                                           "range"):
            assert h in signed, "header %s sent but not signed" % h
    token = headers.get("x-amz-security-token")
    _, sig = botocore_sign(method, scheme_host + raw_path_query, signed,
                           headers["x-amz-date"], auth["akid"], secret, token,
                           region or auth["region"])
    assert sig == auth["signature"], "signature differs from botocore's"
    return auth


def url_parts(url):
    u = urlsplit(url)
    return "%s://%s" % (u.scheme, u.netloc), u.path + ("?" + u.query if u.query else "")
