# SPDX-License-Identifier: MIT
"""Fixtures for the S3 plugin tests: tool paths, an s3rver per session, a
recording proxy per test, and a runner for plugin-harness.

Meson passes the built tools in DRGW_S3_PLUGIN, DRGW_S3_HARNESS and
DRGW_SIGV4_DUMP; run by hand, the tests look in $DRGW_BUILD_DIR (default:
build/ at the top of the tree).  s3rver comes from npm, pinned in
package-lock.json; it is installed with `npm ci` here if missing.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

sys.path.insert(0, str(HERE.parent / "plugin-harness"))

from harness import Harness as PluginHarness, clean_env, sha256_file, tool, write_random  # noqa: E402,F401
from s3proxy import Proxy  # noqa: E402

BUCKET = "drgw"
SECRET_KEY = "S3RVER"


PLUGIN = tool("DRGW_S3_PLUGIN", "plugins/s3/drgw-s3.so")
HARNESS = tool("DRGW_S3_HARNESS", "tests/plugin-harness/plugin-harness")
SIGV4_DUMP = tool("DRGW_SIGV4_DUMP", "tests/s3/sigv4-dump")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %d" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen on port %d" % port)


def ensure_s3rver():
    binary = HERE / "node_modules" / ".bin" / "s3rver"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if not npm:
        pytest.skip("npm is not installed; cannot get s3rver")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE,
                   check=True, stdout=subprocess.DEVNULL)
    return binary


class S3rver:
    def __init__(self, tmp, tls=None):
        self.dir = tmp
        self.port = free_port()
        args = [str(ensure_s3rver()), "-d", str(tmp), "-a", "127.0.0.1",
                "-p", str(self.port), "--configure-bucket", BUCKET,
                "--no-vhost-buckets", "--silent"]
        if tls:
            args += ["--key", str(tls[0]), "--cert", str(tls[1])]
        env = dict(os.environ)
        # s3rver encrypts continuation tokens with DES, which OpenSSL 3
        # only offers through its legacy provider.
        env["NODE_OPTIONS"] = "--openssl-legacy-provider"
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        try:
            wait_port(self.port, self.proc)
        except Exception:
            self.stop()
            raise
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http",
                                          self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


@pytest.fixture(scope="session")
def s3rver(tmp_path_factory):
    if not Path(PLUGIN).exists() or not Path(HARNESS).exists():
        pytest.skip("build the plugin and tests first (%s)" % PLUGIN)
    srv = S3rver(tmp_path_factory.mktemp("s3rver"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def radosgw(tmp_path_factory):
    """A one-node Ceph radosgw (tests/s3/radosgw.py): real S3 semantics
    (SigV4 verified, ListParts, Abort, NoSuchUpload)."""
    import radosgw as rgw
    if not rgw.available():
        pytest.skip("Ceph radosgw is not installed (scripts/install-deps)")
    srv = rgw.Radosgw(tmp_path_factory.mktemp("radosgw")).start()
    srv.create_bucket(BUCKET)
    yield srv
    srv.stop()


@pytest.fixture(params=["s3rver", "radosgw"])
def server(request):
    """Each S3 server in turn: (upstream port, access key, secret key)."""
    if request.param == "s3rver":
        srv = request.getfixturevalue("s3rver")
        return srv.port, "S3RVER", SECRET_KEY
    srv = request.getfixturevalue("radosgw")
    return srv.port, srv.access_key, srv.secret_key


@pytest.fixture
def server_proxy(server):
    p = Proxy(server[0])
    p.access_key, p.secret_key = server[1], server[2]
    yield p
    p.close()


@pytest.fixture
def server_harness(tmp_path, server_proxy, request):
    """A harness against server_proxy with that server's keys."""
    prefix = request.node.name.replace("[", "-").replace("]", "")
    return Harness(tmp_path, server_proxy.url, "s3://%s/%s" % (BUCKET, prefix),
                   env={"AWS_ACCESS_KEY_ID": server_proxy.access_key,
                        "AWS_SECRET_ACCESS_KEY": server_proxy.secret_key})


@pytest.fixture
def proxy(s3rver):
    p = Proxy(s3rver.port)
    yield p
    p.close()


@pytest.fixture
def mpu_proxy(s3rver):
    """A proxy that also answers ListParts and AbortMultipartUpload."""
    p = Proxy(s3rver.port, emulate_mpu=True)
    yield p
    p.close()


def base_env(tmp_path):
    """An environment with no AWS configuration but the test's."""
    return clean_env(tmp_path,
                     AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
                     AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
                     AWS_EC2_METADATA_DISABLED="true")


class Harness(PluginHarness):
    """plugin-harness with the S3 plugin; s3rver's keys unless creds=False."""

    def __init__(self, tmp_path, endpoint, url, options=None, env=None,
                 creds=True):
        full_env = base_env(tmp_path)
        if creds:
            full_env.update(AWS_ACCESS_KEY_ID="S3RVER",
                            AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        full_env.update(env or {})
        super().__init__(HARNESS, PLUGIN, url, full_env,
                         dict({"endpoint": endpoint}, **(options or {})))
        self.tmp = tmp_path


@pytest.fixture
def harness(tmp_path, proxy, request):
    prefix = request.node.name.replace("[", "-").replace("]", "")
    return Harness(tmp_path, proxy.url, "s3://%s/%s" % (BUCKET, prefix))


