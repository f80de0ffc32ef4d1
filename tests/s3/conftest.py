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

from s3proxy import Proxy  # noqa: E402

BUCKET = "drgw"
SECRET_KEY = "S3RVER"


def _tool(env_name, rel):
    path = os.environ.get(env_name)
    if path:
        return path
    build = Path(os.environ.get("DRGW_BUILD_DIR", HERE.parents[1] / "build"))
    return str(build / rel)


PLUGIN = _tool("DRGW_S3_PLUGIN", "plugins/s3/drgw-s3.so")
HARNESS = _tool("DRGW_S3_HARNESS", "tests/plugin-harness/plugin-harness")
SIGV4_DUMP = _tool("DRGW_SIGV4_DUMP", "tests/s3/sigv4-dump")


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
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "LD_PRELOAD"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


class Harness:
    """Runs plugin-harness against one URL with default test options."""

    def __init__(self, tmp_path, endpoint, url, options=None, env=None,
                 creds=True):
        self.tmp = tmp_path
        self.url = url
        self.options = {"endpoint": endpoint, "retry-base-ms": "20",
                        "retry-cap-ms": "200", "connect-timeout": "5"}
        self.options.update(options or {})
        self.env = base_env(tmp_path)
        if creds:
            self.env.update(AWS_ACCESS_KEY_ID="S3RVER",
                            AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        self.env.update(env or {})

    def argv(self, *args, verbose=False, options=None, read_only=False):
        opts = dict(self.options)
        opts.update(options or {})
        argv = [HARNESS] + (["-v"] if verbose else []) + \
            (["-r"] if read_only else [])
        for k, v in opts.items():
            if v is not None:
                argv += ["-o", "%s=%s" % (k, v)]
        return argv + [PLUGIN, self.url] + [str(a) for a in args]

    def run(self, *args, check=True, verbose=False, options=None,
            timeout=120, read_only=False):
        p = subprocess.run(self.argv(*args, verbose=verbose, options=options,
                                     read_only=read_only),
                           env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        for marker in ("Sanitizer", "runtime error:"):
            assert marker not in p.stderr, p.stderr
        if check and p.returncode != 0:
            raise AssertionError("plugin-harness %s failed (%d): %s"
                                 % (args[0], p.returncode, p.stderr))
        return p

    def popen(self, *args, verbose=False, options=None):
        return subprocess.Popen(self.argv(*args, verbose=verbose,
                                          options=options),
                                env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


@pytest.fixture
def harness(tmp_path, proxy, request):
    prefix = request.node.name.replace("[", "-").replace("]", "")
    return Harness(tmp_path, proxy.url, "s3://%s/%s" % (BUCKET, prefix))


def write_random(path, size, seed=0):
    """Deterministic pseudo-random bytes."""
    import random
    rng = random.Random(seed)
    with open(path, "wb") as f:
        while size:
            n = min(size, 1 << 22)
            f.write(rng.randbytes(n))
            size -= n
    return path


def sha256_file(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
