# SPDX-License-Identifier: MIT
"""HTTPS endpoints: certificate verification on by default, ca-bundle to
trust a private CA, tls-verify=off working but warned about."""
import shutil
import subprocess

import pytest

from conftest import Harness, S3rver
from credstub import CredStub
from harness import self_signed_cert


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


# Credential endpoints are verified with the system's CA store whatever
# tls-verify and ca-bundle say: those are for a storage endpoint with a
# private certificate, and must not send the web identity token (or take
# credentials) from whoever answers on the path (issue 9, finding 4).

@pytest.fixture
def tls_stub(tmp_path):
    key, cert = self_signed_cert(tmp_path / "stub-tls")
    stub = CredStub(tls=(key, cert))
    stub.cert = cert
    yield stub
    stub.close()


def web_identity(tmp_path, proxy, sts_url, options):
    tok = tmp_path / "web-identity-token"
    tok.write_text("eyJ-web-identity-token-1\n")
    return Harness(tmp_path, proxy.url, "s3://drgw/tls", creds=False,
                   options=options,
                   env={"AWS_WEB_IDENTITY_TOKEN_FILE": str(tok),
                        "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/drgw",
                        "AWS_ENDPOINT_URL_STS": sts_url})


@pytest.mark.parametrize("options", [{"tls-verify": "off"},
                                     {"ca-bundle": "STUB-CERT"}],
                         ids=["tls-verify-off", "ca-bundle"])
def test_sts_is_verified_whatever_the_storage_options(tmp_path, proxy,
                                                      tls_stub, options):
    if options.get("ca-bundle"):
        options = {"ca-bundle": str(tls_stub.cert)}
    h = web_identity(tmp_path, proxy, tls_stub.url + "/sts", options)
    p = h.run("ping", check=False)
    assert p.returncode == 1
    assert "s3: web identity credentials: STS at %s/sts/: SSL certificate problem" \
        % tls_stub.url in p.stderr, p.stderr
    assert not tls_stub.calls["sts"] and not proxy.requests()


def test_container_endpoint_is_verified_with_tls_verify_off(tmp_path, proxy,
                                                            tls_stub):
    h = Harness(tmp_path, proxy.url, "s3://drgw/tls", creds=False,
                options={"tls-verify": "off"},
                env={"AWS_CONTAINER_CREDENTIALS_FULL_URI": tls_stub.url + "/container"})
    p = h.run("ping", check=False)
    assert "s3: container credentials: SSL certificate problem" in p.stderr, p.stderr
    assert not tls_stub.calls["container"] and not proxy.requests()


@pytest.mark.parametrize("env,msg", [
    ({"AWS_ENDPOINT_URL_STS": "http://192.0.2.7/"},
     "s3: AWS_ENDPOINT_URL_STS=http://192.0.2.7/: the web identity token "
     "goes only to an https URL (plain http only to a loopback address)"),
    ({"AWS_EC2_METADATA_DISABLED": "false",
      "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://192.0.2.7"},
     "s3: AWS_EC2_METADATA_SERVICE_ENDPOINT=http://192.0.2.7: instance "
     "metadata must be https, or http on 169.254.169.254"),
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1.nip.io/creds"},
     "s3: AWS_CONTAINER_CREDENTIALS_FULL_URI must be https"),
], ids=["sts", "imds", "container"])
def test_plain_http_credentials_only_on_loopback(tmp_path, proxy, env, msg):
    if "AWS_ENDPOINT_URL_STS" in env:
        h = web_identity(tmp_path, proxy, env["AWS_ENDPOINT_URL_STS"], {})
    else:
        h = Harness(tmp_path, proxy.url, "s3://drgw/tls", creds=False, env=env)
    p = h.run("ping", check=False)
    assert p.returncode == 1
    assert "open: EINVAL: " + msg in p.stderr, p.stderr


def test_tls_verify_off_warning_says_what_it_covers(tmp_path, tls_s3rver):
    h = Harness(tmp_path, tls_s3rver.url, "s3://drgw/tls",
                options={"tls-verify": "off"})
    p = h.run("ping")
    assert "(storage requests only; STS, container and instance metadata " \
        "credentials are always verified against the system's CA store)" \
        in p.stderr
