# SPDX-License-Identifier: MIT
"""Running plugin-harness from the plugin test suites (tests/s3,
tests/gcs), and the test-data helpers both use."""
import hashlib
import os
import random
import ssl
import subprocess
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]


def tool(env_name, rel):
    """A built tool: from meson's environment, else under $DRGW_BUILD_DIR
    (default: build/ at the top of the tree)."""
    path = os.environ.get(env_name)
    if path:
        return path
    return str(Path(os.environ.get("DRGW_BUILD_DIR", TOP / "build")) / rel)


def clean_env(tmp_path, **extra):
    """PATH, a HOME of the test's own and the sanitizer settings: no cloud
    configuration of the machine leaks into a test."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "LD_PRELOAD"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(extra)
    return env


class Harness:
    """plugin-harness for one plugin and URL, with fast-retry options."""

    def __init__(self, harness, plugin, url, env, options):
        self.harness, self.plugin, self.url, self.env = harness, plugin, url, env
        self.options = {"retry-base-ms": "20", "retry-cap-ms": "200",
                        "connect-timeout": "5"}
        self.options.update(options)

    def argv(self, *args, verbose=False, options=None, read_only=False):
        opts = dict(self.options)
        opts.update(options or {})
        argv = [self.harness] + (["-v"] if verbose else []) + \
            (["-r"] if read_only else [])
        for k, v in opts.items():
            if v is not None:
                argv += ["-o", "%s=%s" % (k, v)]
        return argv + [self.plugin, self.url] + [str(a) for a in args]

    def run(self, *args, check=True, verbose=False, options=None,
            timeout=120, read_only=False, stdin=None):
        p = subprocess.run(self.argv(*args, verbose=verbose, options=options,
                                     read_only=read_only),
                           env=self.env, capture_output=True, text=True,
                           timeout=timeout, input=stdin)
        for marker in ("Sanitizer", "runtime error:"):
            assert marker not in p.stderr, p.stderr
        if check and p.returncode != 0:
            raise AssertionError("plugin-harness %s failed (%d): %s"
                                 % (args[0], p.returncode, p.stderr))
        return p

    def popen(self, *args, verbose=False, options=None):
        """stdin is a pipe, for `batch`."""
        return subprocess.Popen(self.argv(*args, verbose=verbose,
                                          options=options),
                                env=self.env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def write_random(path, size, seed=0):
    """Deterministic pseudo-random bytes."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        while size:
            n = min(size, 1 << 22)
            f.write(rng.randbytes(n))
            size -= n
    return path


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def self_signed_cert(dir_path, name="127.0.0.1"):
    """A throwaway self-signed certificate for an IP on loopback, made with
    the openssl CLI: (key.pem, cert.pem)."""
    d = Path(dir_path)
    d.mkdir(parents=True, exist_ok=True)
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=" + name, "-addext", "subjectAltName=IP:" + name],
                   check=True, capture_output=True)
    return key, cert


def serve_tls(server, key, cert):
    """Makes an http.server speak TLS with key/cert (before serve_forever)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
