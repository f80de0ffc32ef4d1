# SPDX-License-Identifier: MIT
"""The AWS credential chain: order of the sources, each source's protocol,
refresh before expiry, ExpiredToken recovery, and no secret in messages."""
import threading
import time

import pytest

from conftest import Harness, write_random
from credstub import CredStub, IMDS_SESSION

MiB = 1 << 20


@pytest.fixture
def stub():
    s = CredStub()
    yield s
    s.close()


@pytest.fixture
def env_all(tmp_path, stub):
    """Every source configured: the chain must pick by order alone."""
    tokfile = tmp_path / "web-identity-token"
    tokfile.write_text("eyJ-web-identity-token-1\n")
    authfile = tmp_path / "container-auth"
    authfile.write_text("Bearer-pod-identity-secret")
    stub.container_auth = "Bearer-pod-identity-secret"
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = S3RVER\n"
                     "aws_secret_access_key = S3RVER\n"
                     "aws_session_token = profile-token\n"
                     "[prod]\naws_access_key_id = S3RVER\n"
                     "aws_secret_access_key = S3RVER\n"
                     "aws_session_token = prod-token\n")
    return {
        "AWS_ACCESS_KEY_ID": "S3RVER",
        "AWS_SECRET_ACCESS_KEY": "S3RVER",
        "AWS_SESSION_TOKEN": "env-token",
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(tokfile),
        "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/drgw",
        "AWS_ROLE_SESSION_NAME": "drgw-test",
        "AWS_ENDPOINT_URL_STS": stub.url + "/sts",
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": stub.url + "/container",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(authfile),
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": stub.url,
        "AWS_EC2_METADATA_DISABLED": "false",
    }


def harness_with(tmp_path, proxy, env, drop=(), **kw):
    h = Harness(tmp_path, proxy.url, "s3://drgw/creds", creds=False, **kw)
    h.env.update(env)
    for k in drop:
        h.env.pop(k, None)
    return h


def tokens_used(proxy):
    return [e["headers"].get("x-amz-security-token") for e in proxy.requests()]


CHAIN = [
    ((), "env-token", "environment"),
    (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
     "sts-1", "web identity"),
    (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
      "AWS_WEB_IDENTITY_TOKEN_FILE"), "profile-token", "profile default"),
    (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
      "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_SHARED_CREDENTIALS_FILE"),
     "container-1", "container"),
    (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
      "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_SHARED_CREDENTIALS_FILE",
      "AWS_CONTAINER_CREDENTIALS_FULL_URI"), "imds-3", "IMDS"),
]


@pytest.mark.parametrize("drop,token,source", CHAIN,
                         ids=[c[2] for c in CHAIN])
def test_chain_order(tmp_path, proxy, stub, env_all, drop, token, source):
    h = harness_with(tmp_path, proxy, env_all, drop)
    assert h.run("creds").stdout.strip() == source
    h.run("ping")
    assert tokens_used(proxy) == [token]


def test_web_identity_protocol(tmp_path, proxy, stub, env_all):
    h = harness_with(tmp_path, proxy, env_all,
                     ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    h.run("ping")
    call = stub.calls["sts"][0]
    assert call["authorization"] is None          # unsigned
    assert call["content_type"].startswith("application/x-www-form-urlencoded")
    assert call["form"] == {
        "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
        "RoleArn": "arn:aws:iam::123456789012:role/drgw",
        "RoleSessionName": "drgw-test",
        "WebIdentityToken": "eyJ-web-identity-token-1"}


def test_imds_v2_protocol(tmp_path, proxy, stub, env_all):
    h = harness_with(tmp_path, proxy, env_all, [k for k in env_all if
                                                 not k.startswith("AWS_EC2")])
    h.run("ping")
    paths = [c["path"] for c in stub.calls["imds"]]
    assert paths == ["/latest/api/token",
                     "/latest/meta-data/iam/security-credentials/",
                     "/latest/meta-data/iam/security-credentials/drgw-node-role"]
    assert all(c.get("token") == IMDS_SESSION for c in stub.calls["imds"][1:])


def test_no_source_at_all(tmp_path, proxy):
    h = Harness(tmp_path, proxy.url, "s3://drgw/creds", creds=False)
    p = h.run("ping", check=False)
    assert p.returncode == 1
    assert "open: EINVAL: s3: no AWS credentials" in p.stderr


def test_imds_unreachable(tmp_path, proxy):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    h = Harness(tmp_path, proxy.url, "s3://drgw/creds", creds=False, env={
        "AWS_EC2_METADATA_DISABLED": "false",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:%d" % port})
    assert h.run("creds").stdout.strip() == "IMDS"
    p = h.run("ping", check=False)
    assert ("ping: ECONNREFUSED: s3: no AWS credentials in the environment, "
            "web identity, profile or container settings, and EC2 instance "
            "metadata at http://127.0.0.1:%d failed" % port) in p.stderr
    assert not proxy.requests()


def test_explicit_profile(tmp_path, proxy, stub, env_all):
    h = harness_with(tmp_path, proxy, env_all, options={"profile": "prod"})
    assert h.run("creds").stdout.strip() == "profile prod"
    h.run("ping")
    assert tokens_used(proxy) == ["prod-token"]
    p = h.run("ping", check=False, options={"profile": "staging"})
    assert "EINVAL: s3: AWS profile 'staging' not found" in p.stderr
    h.env["AWS_PROFILE"] = "prod"
    assert h.run("creds", options={"profile": None}).stdout.strip() == "environment"


def test_container_rejects_remote_http(tmp_path, proxy, env_all):
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://203.0.113.7/creds"}
    h = Harness(tmp_path, proxy.url, "s3://drgw/creds", creds=False, env=env)
    p = h.run("ping", check=False)
    assert "EINVAL: s3: AWS_CONTAINER_CREDENTIALS_FULL_URI must be https" in p.stderr


def test_refresh_before_expiry(tmp_path, proxy, stub, env_all):
    """Credentials within 15 minutes of expiry are refreshed on use, the
    token file is read again each time, and long-lived ones are reused."""
    h = harness_with(tmp_path, proxy, env_all,
                     ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    src = write_random(tmp_path / "f", 16 * MiB)
    opts = {"part-size": "5M", "upload-concurrency": "1"}

    stub.sts_ttl = 3600
    h.run("put", "long.bin", src, options=opts)
    assert len(stub.calls["sts"]) == 1
    assert set(tokens_used(proxy)) == {"sts-1"}

    stub.sts_ttl = 14 * 60
    proxy.clear()
    proxy.add_fault(method="PUT", query="partNumber=", delay=0.3, times=None)
    tokfile = tmp_path / "web-identity-token"

    def rotate():
        while len(stub.calls["sts"]) < 3:
            time.sleep(0.01)
        # Atomically, as kubelet does (it swaps a symlink).
        tmp = tmp_path / "token.new"
        tmp.write_text("eyJ-web-identity-token-2")
        tmp.replace(tokfile)
    t = threading.Thread(target=rotate)
    t.start()
    h.run("put", "short.bin", src, options=opts)
    t.join()
    used = tokens_used(proxy)
    assert len(used) == 6                     # create, 4 parts, complete
    assert len(set(used)) == 6                # a fresh fetch each time
    sent = [c["form"]["WebIdentityToken"] for c in stub.calls["sts"][1:]]
    assert sent[0] == "eyJ-web-identity-token-1"
    assert sent[-1] == "eyJ-web-identity-token-2"


def test_refresh_failure_keeps_valid_credentials(tmp_path, proxy, stub, env_all):
    """An STS outage within the advisory window is survived."""
    h = harness_with(tmp_path, proxy, env_all,
                     ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    stub.sts_ttl = 12 * 60
    src = write_random(tmp_path / "f", 11 * MiB)
    proxy.add_fault(method="POST", query="^uploads=$", delay=0.2)

    def break_sts():
        while not stub.calls["sts"]:
            time.sleep(0.01)
        stub.sts_fail = (503, "ServiceUnavailable", "down")
    t = threading.Thread(target=break_sts)
    t.start()
    h.run("put", "k.bin", src, options={"part-size": "5M"})
    t.join()
    assert set(tokens_used(proxy)) == {"sts-1"}


def test_expired_token_refreshes(tmp_path, proxy, stub, env_all):
    h = harness_with(tmp_path, proxy, env_all,
                     ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    proxy.add_fault(method="PUT", status=400, code="ExpiredToken")
    src = tmp_path / "f"
    src.write_bytes(b"x")
    h.run("put", "k", src)
    assert tokens_used(proxy) == ["sts-1", "sts-2"]

    # The refresh gets its attempt even when only one is allowed.
    proxy.clear()
    proxy.add_fault(method="PUT", status=400, code="ExpiredToken")
    h.run("put", "k", src, options={"max-attempts": "1"})
    used = tokens_used(proxy)
    assert len(used) == 2 and used[0] != used[1], used

    # Static keys cannot be refreshed: report at once.
    proxy.clear()
    proxy.add_fault(method="PUT", status=400, code="ExpiredToken")
    h2 = harness_with(tmp_path, proxy, env_all)
    p = h2.run("put", "k", src, check=False)
    assert "EACCES: s3: PUT drgw/creds/k: 400 ExpiredToken" in p.stderr
    assert len(proxy.requests()) == 1


def test_sts_refusal_is_clear_and_secret_free(tmp_path, proxy, stub, env_all):
    h = harness_with(tmp_path, proxy, env_all,
                     ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    stub.sts_fail = (403, "AccessDenied",
                     "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    p = h.run("ping", check=False, verbose=True)
    assert p.returncode == 1
    assert ("ping: EACCES: s3: web identity credentials: STS "
            "AssumeRoleWithWebIdentity for arn:aws:iam::123456789012:role/drgw: "
            "403 AccessDenied: Not authorized to perform "
            "sts:AssumeRoleWithWebIdentity") in p.stderr
    assert "eyJ-web-identity-token" not in p.stderr + p.stdout
    assert not proxy.requests()


def test_secrets_never_logged(tmp_path, proxy, stub, env_all):
    for drop in [c[0] for c in CHAIN]:
        h = harness_with(tmp_path, proxy, env_all, drop)
        p = h.run("ping", verbose=True)
        text = p.stdout + p.stderr
        for secret in ("eyJ-web-identity-token", "Bearer-pod-identity-secret",
                       IMDS_SESSION, "env-token", "profile-token", "sts-",
                       "container-1", "imds-3", "Signature="):
            assert secret not in text, (drop, secret)
