# SPDX-License-Identifier: MIT
"""Credentials: service-account JWTs checked by a token endpoint stand-in,
authorized-user refresh tokens, the metadata server (Metadata-Flavor both
ways), access-token files, refresh before expiry and after a 401, the
order of the sources, anonymous access to emulators, and secrets kept out
of every message and log line.

The emulator runs with --token-file, which the token stand-in rewrites
with each token it issues: the emulator accepts only the newest token, so
a request with an outdated one would fail."""
import json
import threading
import time
from pathlib import Path

import pytest

from authstub import METADATA_PATH, AuthStub, make_key
from conftest import BUCKET, Harness, write_random

READ_WRITE = "https://www.googleapis.com/auth/devstorage.read_write"
READ_ONLY = "https://www.googleapis.com/auth/devstorage.read_only"
FULL_CONTROL = "https://www.googleapis.com/auth/devstorage.full_control"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


@pytest.fixture(scope="session")
def sa_key(tmp_path_factory):
    """A throwaway RSA key, made with the openssl CLI; never committed."""
    return make_key(tmp_path_factory.mktemp("sa-key"))


@pytest.fixture(scope="session")
def other_key(tmp_path_factory):
    return make_key(tmp_path_factory.mktemp("other-key"))


def key_file(path, key_pem, email, token_uri, kid="kid-1"):
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "drgw-test",
        "private_key_id": kid, "private_key": Path(key_pem).read_text(),
        "client_email": email, "client_id": "1234",
        "token_uri": token_uri}))
    return path


class Env:
    """An emulator that wants the stand-in's newest token, and the stand-in."""

    def __init__(self, own_emulator, tmp_path, pub):
        self.tokfile = tmp_path / "accepted-tokens"
        self.tokfile.write_text("")
        self.emu = own_emulator("--token-file", str(self.tokfile))
        self.stub = AuthStub(pub, self.tokfile)
        self.tmp = tmp_path

    def harness(self, prefix="auth", options=None, env=None):
        return Harness(self.tmp, self.emu.url, "gcs://%s/%s" % (BUCKET, prefix),
                       options=options, env=env)

    def key(self, name, key_pem, email, token_uri=None, kid="kid-1"):
        return key_file(self.tmp / name, key_pem, email,
                        token_uri or self.stub.token_uri, kid)


@pytest.fixture
def env(own_emulator, tmp_path, sa_key):
    e = Env(own_emulator, tmp_path, sa_key[1])
    yield e
    e.stub.close()


EMAIL = "drgw-backup@drgw-test.iam.gserviceaccount.com"


def test_service_account_jwt(env, sa_key, tmp_path):
    key = env.key("sa.json", sa_key[0], EMAIL)
    env.stub.kid = "kid-1"
    env.stub.expect = {"iss": EMAIL, "aud": env.stub.token_uri, "scope": READ_WRITE}
    h = env.harness(options={"credentials-file": key})
    src = write_random(tmp_path / "f", 5000)
    h.run("put", "k", src)
    [call] = env.stub.fetches("sa")
    assert call["content_type"] == "application/x-www-form-urlencoded"
    assert call["form"]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert call["header"] == {"alg": "RS256", "typ": "JWT", "kid": "kid-1"}
    assert call["claims"]["exp"] - call["claims"]["iat"] == 3600
    assert h.run("ctl-msg", "0x4701").stdout == \
        "service account %s (credentials-file %s)\n" % (EMAIL, key)

    # Restore mounts ask for read-only access, protected uploads for
    # full control (holds and retention are object metadata).
    env.stub.expect["scope"] = READ_ONLY
    h.run("cat", "k", tmp_path / "o")
    assert (tmp_path / "o").read_bytes() == src.read_bytes()
    env.stub.expect["scope"] = FULL_CONTROL
    h.run("put", "held", src, options={"event-based-hold": "on"})
    assert len(env.stub.fetches("sa")) == 3
    assert [e["status"] for e in env.emu.log() if e["status"] == 401] == []


def test_token_uri_option(env, sa_key):
    """token-uri= moves where the assertion goes, not what it says."""
    key = env.key("sa.json", sa_key[0], EMAIL, token_uri=GOOGLE_TOKEN_URI)
    env.stub.expect = {"aud": GOOGLE_TOKEN_URI}
    h = env.harness(options={"credentials-file": key,
                             "token-uri": env.stub.token_uri})
    h.run("ping")
    assert len(env.stub.fetches("sa")) == 1


def test_bad_signature_refused_clearly(env, other_key):
    key = env.key("sa.json", other_key[0], EMAIL)
    h = env.harness(options={"credentials-file": key})
    p = h.run("ping", check=False, verbose=True)
    assert p.returncode == 1
    assert ("ping: EACCES: gcs: service account %s: token endpoint %s: "
            "400 invalid_grant: Invalid JWT Signature." % (EMAIL, env.stub.token_uri)) in p.stderr
    assert env.emu.log() == []
    # Neither the assertion nor the key appear anywhere.
    out = p.stdout + p.stderr
    pem = Path(other_key[0]).read_text().splitlines()
    assert "eyJ" not in out
    assert not any(line in out for line in pem[1:-1])


def test_authorized_user(env):
    creds = env.tmp / "adc.json"
    creds.write_text(json.dumps({"type": "authorized_user", "client_id": "cid.apps",
                                 "client_secret": "csecret", "refresh_token": "1//rt"}))
    env.stub.user = ("cid.apps", "csecret", "1//rt")
    h = env.harness(options={"credentials-file": creds,
                             "token-uri": env.stub.token_uri})
    h.run("ping")
    [call] = env.stub.fetches("user")
    assert call["form"]["grant_type"] == "refresh_token"


def test_metadata_server(env, tmp_path):
    import urllib.error
    import urllib.request
    # The stand-in refuses what Google's refuses.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(env.stub.url + METADATA_PATH, timeout=10)
    assert e.value.code == 403

    h = env.harness(env={"GCE_METADATA_HOST": env.stub.host})
    assert h.run("ctl-msg", "0x4701").stdout == \
        "metadata server %s\n" % env.stub.host
    src = write_random(tmp_path / "f", 1000)
    h.run("put", "k", src)
    [call] = env.stub.fetches("md")
    assert call["flavor"] == "Google"
    # metadata-host= does the same.
    h = env.harness(options={"metadata-host": env.stub.host})
    h.run("stat", "k")
    assert len(env.stub.fetches("md")) == 2


def test_metadata_server_impostor(env):
    """Whatever answers on the metadata address must say it is one."""
    env.stub.metadata_flavor_reply = False
    h = env.harness(options={"metadata-host": env.stub.host})
    p = h.run("ping", check=False)
    assert ("ping: EIO: gcs: metadata server %s: answer (200) lacks "
            "\"Metadata-Flavor: Google\": not a Google metadata server" % env.stub.host) in p.stderr
    assert env.emu.log() == []


def test_metadata_server_errors(env):
    env.stub.fail = (404, b"not found")
    h = env.harness(options={"metadata-host": env.stub.host})
    p = h.run("ping", check=False)
    assert ("ping: EACCES: gcs: metadata server %s: 404 (no service account "
            "for this instance or pod): not found" % env.stub.host) in p.stderr
    # A metadata server that is not there (yet): retried, then reported.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    h = env.harness(options={"metadata-host": "127.0.0.1:%d" % port})
    p = h.run("ping", check=False, verbose=True)
    assert "ping: ECONNREFUSED: gcs: metadata server 127.0.0.1:%d: Failed to connect" % port in p.stderr


def test_refresh_before_expiry(env, sa_key):
    """A token is refetched before it expires (at half its life when it is
    short), and requests carry the new one."""
    env.stub.expires_in = 8
    key = env.key("sa.json", sa_key[0], EMAIL)
    h = env.harness(options={"credentials-file": key})
    p = h.run("batch", stdin="ping\nsleep 4500\nping\nping\n")
    assert p.returncode == 0, p.stderr
    first, second = env.stub.fetches("sa")
    # Fetched again once half the life was gone, before the first expired.
    assert 4 <= second["time"] - first["time"] < 8
    # The emulator accepts only the newest token: no request failed.
    assert [e["status"] for e in env.emu.log()] == [200, 200, 200]


def test_refresh_failure_keeps_valid_token(env, sa_key):
    """A token endpoint outage while the token still has a quarter of its
    life left is survived.  16 s tokens are refreshed from 8 s on and kept
    until 12 s; the failing refresh (three tries) ends well before."""
    env.stub.expires_in = 16
    key = env.key("sa.json", sa_key[0], EMAIL)
    h = env.harness(options={"credentials-file": key})

    def break_endpoint():
        while not env.stub.fetches("sa"):
            time.sleep(0.01)
        env.stub.fail = (503, {"error": "internal_failure"})
    t = threading.Thread(target=break_endpoint)
    t.start()
    p = h.run("batch", stdin="ping\nsleep 8500\nping\n")
    t.join()
    assert p.returncode == 0, p.stderr
    assert len(env.stub.fetches("sa")) == 1
    assert [c for c in env.stub.calls if c["kind"] == "fail"]
    assert [e["status"] for e in env.emu.log()] == [200, 200]


def test_401_refreshes_once(env, sa_key):
    key = env.key("sa.json", sa_key[0], EMAIL)
    h = env.harness(options={"credentials-file": key})
    env.emu.fail(status=401, method="GET")
    h.run("ping")
    assert [e["status"] for e in env.emu.log()] == [401, 200]
    assert len(env.stub.fetches("sa")) == 2
    # Even with max-attempts=1.
    env.emu.reset_log()
    env.emu.fail(status=401, method="GET")
    h.run("ping", options={"max-attempts": "1"})
    assert [e["status"] for e in env.emu.log()] == [401, 200]


def test_token_always_refused(own_emulator, tmp_path, sa_key):
    emu = own_emulator("--require-token", "not-any-issued-token")
    stub = AuthStub(sa_key[1])
    try:
        key = key_file(tmp_path / "sa.json", sa_key[0], EMAIL, stub.token_uri)
        h = Harness(tmp_path, emu.url, "gcs://%s/p" % BUCKET,
                    options={"credentials-file": key})
        p = h.run("stat", "k", check=False)
        assert p.stderr.splitlines()[-1] == (
            "plugin-harness: stat: EACCES: gcs: STAT drgw/p/k: 401 authError: "
            "Invalid Credentials")
        assert [e["status"] for e in emu.log()] == [401, 401]
        assert len(stub.fetches("sa")) == 2
    finally:
        stub.close()


def test_access_token_file(own_emulator, tmp_path):
    """The plugin re-reads the file when it changes, as sidecars and
    kubelet rotate it; the emulator accepts what the file says."""
    tok, accepted = tmp_path / "token", tmp_path / "accepted"
    tok.write_text("ya29.file-1\n")
    accepted.write_text("ya29.file-1\n")
    emu = own_emulator("--token-file", str(accepted))
    h = Harness(tmp_path, emu.url, "gcs://%s/p" % BUCKET,
                options={"access-token-file": tok})
    src = write_random(tmp_path / "f", 100)
    h.run("put", "k", src)
    assert h.run("ctl-msg", "0x4701").stdout == "access-token-file %s\n" % tok

    proc = h.popen("batch")
    proc.stdin.write("stat k\n")
    proc.stdin.flush()
    assert proc.stdout.readline().startswith("size 100 ")
    new = tmp_path / "token.new"
    new.write_text("ya29.file-2")
    new.replace(tok)
    accepted.write_text("ya29.file-2\n")
    proc.stdin.write("stat k\n")
    proc.stdin.flush()
    assert proc.stdout.readline().startswith("size 100 ")
    out, err = proc.communicate("")
    assert proc.returncode == 0, err
    assert "Sanitizer" not in err and "runtime error:" not in err, err
    assert 401 not in [e["status"] for e in emu.log()]

    # The JSON a token endpoint returns works too.
    tok.write_text(json.dumps({"access_token": "ya29.file-2", "expires_in": 3599}))
    h.run("stat", "k")
    # A missing or unusable file is a clear error.
    tok.write_text("not a token\n")
    p = h.run("stat", "k", check=False)
    assert p.stderr.splitlines()[-1] == (
        "plugin-harness: stat: EACCES: gcs: access token file %s holds no "
        "usable token" % tok)
    tok.unlink()
    p = h.run("stat", "k", check=False)
    assert p.stderr.splitlines()[-1] == (
        "plugin-harness: stat: EACCES: gcs: cannot read access token file %s: "
        "No such file or directory" % tok)


def test_order_of_sources(env, sa_key, other_key, tmp_path):
    """access-token-file, credentials-file, GOOGLE_APPLICATION_CREDENTIALS,
    metadata-host, gcloud's file, GCE_METADATA_HOST: the first set wins."""
    a = env.key("a.json", sa_key[0], "a@drgw-test.iam.gserviceaccount.com")
    b = env.key("b.json", sa_key[0], "b@drgw-test.iam.gserviceaccount.com")
    home = tmp_path / "home"
    gcloud = home / ".config" / "gcloud"
    gcloud.mkdir(parents=True)
    env.key("home/.config/gcloud/application_default_credentials.json",
            sa_key[0], "gcloud@drgw-test.iam.gserviceaccount.com")
    tokfile = tmp_path / "access-token"
    tokfile.write_text("ya29.from-file")

    def used(options, envvars):
        env.stub.calls.clear()
        environ = {"HOME": str(home)}
        environ.update(envvars)
        h = env.harness(options=options, env=environ)
        if "access-token-file" in options:
            env.tokfile.write_text("ya29.from-file")
        h.run("ping")
        calls = env.stub.fetches()
        if not calls:
            return "file"
        [c] = calls
        return c["claims"]["iss"].split("@")[0] if c["kind"] == "sa" else "metadata"

    every = {"access-token-file": tokfile, "credentials-file": b,
             "metadata-host": env.stub.host}
    gac = {"GOOGLE_APPLICATION_CREDENTIALS": str(a),
           "GCE_METADATA_HOST": env.stub.host}
    assert used(every, gac) == "file"
    del every["access-token-file"]
    assert used(every, gac) == "b"
    del every["credentials-file"]
    assert used(every, gac) == "a"
    del gac["GOOGLE_APPLICATION_CREDENTIALS"]
    assert used(every, gac) == "metadata"
    del every["metadata-host"]
    assert used(every, gac) == "gcloud"
    (gcloud / "application_default_credentials.json").unlink()
    assert used(every, gac) == "metadata"


def test_emulator_host_means_no_auth(own_emulator, tmp_path, sa_key):
    """STORAGE_EMULATOR_HOST without credentials: no Authorization at all,
    like Google's clients.  Credentials, when configured, are still used."""
    tokfile = tmp_path / "accepted"
    tokfile.write_text("")
    emu = own_emulator("--token-file", str(tokfile))
    host = emu.url[len("http://"):]
    h = Harness(tmp_path, None, "gcs://%s/p" % BUCKET,
                env={"STORAGE_EMULATOR_HOST": host})
    p = h.run("stat", "k", check=False)
    assert p.stderr.strip() == (
        "plugin-harness: stat: EACCES: gcs: STAT drgw/p/k: 401 required: "
        "Anonymous caller does not have access to the Google Cloud Storage resource.")
    assert len(emu.log()) == 1
    assert h.run("describe").stdout == "gcs://drgw/p at %s\n" % emu.url

    stub = AuthStub(sa_key[1], tokfile)
    try:
        key = key_file(tmp_path / "sa.json", sa_key[0], EMAIL, stub.token_uri)
        h = Harness(tmp_path, None, "gcs://%s/p" % BUCKET,
                    env={"STORAGE_EMULATOR_HOST": host,
                         "GOOGLE_APPLICATION_CREDENTIALS": str(key)})
        p = h.run("ping")
        assert "[warning] gcs: %s is plain http: access tokens from service " \
               "account %s" % (emu.url, EMAIL) in p.stderr
        assert len(stub.fetches("sa")) == 1
    finally:
        stub.close()


def test_no_secrets_in_logs(env, sa_key, tmp_path):
    key = env.key("sa.json", sa_key[0], EMAIL)
    h = env.harness(options={"credentials-file": key, "chunk-size": "256K"})
    src = write_random(tmp_path / "f", 600_000)
    tok = tmp_path / "tok"
    out = h.run("put", "--token", tok, "k", src, verbose=True)
    h.run("cat", "k", tmp_path / "o", verbose=True)
    env.emu.fail(status=401, method="GET", count=2)
    bad = h.run("stat", "k", verbose=True, check=False)
    text = out.stdout + out.stderr + bad.stdout + bad.stderr
    assert "[debug] gcs:" in text
    pem = Path(sa_key[0]).read_text().splitlines()
    for secret in ["ya29.", "eyJ", "upload_id", "PRIVATE KEY"] + pem[1:-1]:
        assert secret not in text, secret


def test_threads_share_one_token(env, sa_key, tmp_path):
    """Eight threads on one instance (as the gateway's workers): one token
    fetch serves them all, and one refresh, not eight."""
    env.stub.expires_in = 10                 # refreshed from 5 s on
    key = env.key("sa.json", sa_key[0], EMAIL)
    src = write_random(tmp_path / "f", 300_000)
    h = env.harness(options={"credentials-file": key, "chunk-size": "256K"})
    p = h.run("batch", stdin="parallel 8 put k{} %s\nsleep 5500\n"
                             "parallel 8 stat k{}\n"
                             "parallel 8 get k{} 0 300000 %s/o{}\n" % (src, tmp_path))
    assert p.returncode == 0, p.stderr
    assert len(env.stub.fetches("sa")) == 2
    assert 401 not in [e["status"] for e in env.emu.log()]
    for i in range(8):
        assert (tmp_path / ("o%d" % i)).read_bytes() == src.read_bytes()


# The token endpoint and the metadata server are verified with the
# system's CA store whatever tls-verify and ca-bundle say (they are for a
# storage endpoint with a private certificate), and plain http goes only
# to loopback or Google's metadata addresses (issue 9, finding 4).

@pytest.mark.parametrize("storage_opt", ["tls-verify", "ca-bundle"])
def test_token_endpoint_is_verified_whatever_the_storage_options(
        own_emulator, tmp_path, sa_key, storage_opt):
    from harness import self_signed_cert
    tls = self_signed_cert(tmp_path / "stub-tls")
    stub = AuthStub(sa_key[1], tls=tls)
    try:
        emu = own_emulator()
        key = key_file(tmp_path / "sa.json", sa_key[0], EMAIL, stub.token_uri)
        opt = {"tls-verify": "off"} if storage_opt == "tls-verify" else \
            {"ca-bundle": str(tls[1])}
        h = Harness(tmp_path, emu.url, "gcs://%s/tls" % BUCKET,
                    options={"credentials-file": key, **opt})
        p = h.run("ping", check=False)
        assert p.returncode == 1
        assert ("gcs: service account %s: token endpoint %s: SSL certificate "
                "problem" % (EMAIL, stub.token_uri)) in p.stderr, p.stderr
        assert not stub.calls and emu.log() == []
    finally:
        stub.close()


@pytest.mark.parametrize("how,msg", [
    ("option", "invalid GCS option token-uri=http://192.0.2.7/token: expected "
               "an https URL (plain http only to a loopback address)"),
    ("key-file", "token_uri http://192.0.2.7/token: credentials go only to an "
                 "https URL (plain http only to a loopback address)"),
    ("metadata-host", "gcs: metadata-host=192.0.2.7: the metadata server must "
                      "be metadata.google.internal, 169.254.169.254 or a "
                      "loopback address"),
    ("GCE_METADATA_HOST", "gcs: GCE_METADATA_HOST=192.0.2.7:8080: the "
                          "metadata server must be"),
], ids=["token-uri", "key-file", "metadata-host", "GCE_METADATA_HOST"])
def test_plain_http_credentials_only_on_loopback(tmp_path, emulator, sa_key,
                                                  how, msg):
    opts, env = {}, {}
    remote = "http://192.0.2.7/token"
    if how == "option":
        opts = {"credentials-file": key_file(tmp_path / "sa.json", sa_key[0],
                                             EMAIL, GOOGLE_TOKEN_URI),
                "token-uri": remote}
    elif how == "key-file":
        opts = {"credentials-file": key_file(tmp_path / "sa.json", sa_key[0],
                                             EMAIL, remote)}
    elif how == "metadata-host":
        opts = {"metadata-host": "192.0.2.7"}
    else:
        env = {"GCE_METADATA_HOST": "192.0.2.7:8080"}
    h = Harness(tmp_path, emulator.url, "gcs://%s/tls" % BUCKET, options=opts,
                env=env)
    p = h.run("ping", check=False)
    assert p.returncode == 1
    assert "open: EINVAL: " in p.stderr and msg in p.stderr, p.stderr


def test_tls_verify_off_warning_says_what_it_covers(tmp_path, emulator):
    h = Harness(tmp_path, emulator.url, "gcs://%s/tls" % BUCKET,
                options={"tls-verify": "off"})
    assert "(storage requests only; the OAuth token endpoint and the " \
        "metadata server are always verified against the system's CA " \
        "store)" in h.run("ping").stderr
