# SPDX-License-Identifier: MIT
"""HTTPS endpoints: certificate verification on by default, ca-bundle to
trust a private CA, tls-verify=off working but warned about."""
import shutil
import subprocess

import pytest

from conftest import Harness, S3rver


@pytest.fixture(scope="module")
def tls_s3rver(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"),
                    "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    (d / "data").mkdir()
    srv = S3rver(d / "data", tls=(d / "key.pem", d / "cert.pem"))
    srv.cert = d / "cert.pem"
    yield srv
    srv.stop()


def test_unknown_ca_refused(tmp_path, tls_s3rver):
    h = Harness(tmp_path, tls_s3rver.url, "s3://drgw/tls")
    p = h.run("ping", check=False)
    assert p.returncode == 1
    assert "ping: EIO: s3: LIST drgw: SSL certificate problem" in p.stderr
    assert "set ca-bundle=" in p.stderr


def test_ca_bundle(tmp_path, tls_s3rver):
    h = Harness(tmp_path, tls_s3rver.url, "s3://drgw/tls",
                options={"ca-bundle": str(tls_s3rver.cert)})
    src = tmp_path / "f"
    src.write_bytes(b"over tls")
    h.run("put", "k", src)
    h.run("cat", "k", tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == b"over tls"
    assert "warning" not in h.run("ping").stderr


def test_tls_verify_off_warns(tmp_path, tls_s3rver):
    h = Harness(tmp_path, tls_s3rver.url, "s3://drgw/tls",
                options={"tls-verify": "off"})
    p = h.run("ping")
    assert "[warning] s3: TLS certificate verification is off for %s" \
        % tls_s3rver.url in p.stderr
