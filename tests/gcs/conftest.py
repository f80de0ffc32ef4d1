# SPDX-License-Identifier: MIT
"""Fixtures for the GCS plugin tests: tool paths, the GCS emulator
(tests/gcs-emulator/server.js) on a free port in a temp dir, and a runner
for plugin-harness.

Meson passes the built tools in DRGW_GCS_PLUGIN, DRGW_GCS_HARNESS and the
emulator in DRGW_GCS_EMULATOR; run by hand, the tests look in
$DRGW_BUILD_DIR (default: build/ at the top of the tree).  The emulator is
plain Node: no npm packages are needed to run it.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "plugin-harness"))

from harness import Harness as PluginHarness, clean_env, sha256_file, tool, write_random  # noqa: E402,F401

BUCKET = "drgw"
MiB = 1 << 20


PLUGIN = tool("DRGW_GCS_PLUGIN", "plugins/gcs/drgw-gcs.so")
HARNESS = tool("DRGW_GCS_HARNESS", "tests/plugin-harness/plugin-harness")
EMULATOR = os.environ.get("DRGW_GCS_EMULATOR",
                          str(HERE.parent / "gcs-emulator" / "server.js"))
LISTENING = re.compile(r"^listening (http://127\.0\.0\.1:(\d+))$")


class Emulator:
    """One server.js process; restartable on the same port and dir."""

    def __init__(self, tmp, args=(), port=0):
        self.dir = Path(tmp)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.args = list(args)
        self.proc = None
        self.start(port)

    def start(self, port=0, fresh_dir=None):
        if fresh_dir is not None:
            self.dir = Path(fresh_dir)
            self.dir.mkdir(parents=True, exist_ok=True)
        node = shutil.which("node")
        if not node:
            pytest.skip("node is not installed; cannot run the GCS emulator")
        self.proc = subprocess.Popen(
            [node, EMULATOR, "--port", str(port), "--dir", str(self.dir),
             "--bucket", BUCKET] + self.args,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        m = LISTENING.match(line)
        if not m:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError("emulator did not start: %r %s" % (line, err))
        self.url = m.group(1)
        self.port = int(m.group(2))

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()
        self.proc = None

    def restart(self, fresh_dir=None):
        """Same port (session URIs embed it), same or a fresh data dir."""
        self.stop()
        self.start(self.port, fresh_dir)

    # ---- admin endpoints

    def _call(self, method, path, data=None, headers=None):
        req = urllib.request.Request(self.url + path, data=data,
                                     method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = r.read()
                return r.status, body
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def fail(self, **rule):
        """Adds a fault rule (see the emulator's README)."""
        st, body = self._call("POST", "/_emulator/fail?" +
                              urllib.parse.urlencode(rule), b"")
        assert st == 200, body
        return json.loads(body)

    def clear_faults(self):
        self._call("DELETE", "/_emulator/fail")

    def log(self):
        st, body = self._call("GET", "/_emulator/log")
        assert st == 200
        return json.loads(body)

    def reset_log(self):
        self._call("POST", "/_emulator/reset-log", b"")

    def api(self, method, path, data=None, headers=None):
        return self._call(method, path, data, headers)

    def object(self, name):
        """The object resource, or None."""
        st, body = self.api("GET", "/storage/v1/b/%s/o/%s" % (
            BUCKET, urllib.parse.quote(name, safe="")))
        return json.loads(body) if st == 200 else None

    def media(self, name):
        st, body = self.api("GET", "/storage/v1/b/%s/o/%s?alt=media" % (
            BUCKET, urllib.parse.quote(name, safe="")))
        assert st == 200, body
        return body


@pytest.fixture(scope="session")
def shared_emulator(tmp_path_factory):
    if not Path(PLUGIN).exists() or not Path(HARNESS).exists():
        pytest.skip("build the plugin and plugin-harness first (%s)" % PLUGIN)
    emu = Emulator(tmp_path_factory.mktemp("gcs-emulator"))
    yield emu
    emu.stop()


@pytest.fixture
def emulator(shared_emulator):
    """The session's emulator with an empty log and no faults."""
    shared_emulator.clear_faults()
    shared_emulator.reset_log()
    yield shared_emulator
    shared_emulator.clear_faults()


@pytest.fixture
def own_emulator(tmp_path):
    """A private emulator, for tests that restart it or need flags;
    extra flags via own_emulator.start_with(args)."""
    emus = []

    class Factory:
        def __call__(self, *args):
            emu = Emulator(tmp_path / ("emu%d" % len(emus)), args)
            emus.append(emu)
            return emu
    yield Factory()
    for emu in emus:
        emu.stop()


def base_env(tmp_path):
    """An environment with no Google configuration but the test's (HOME:
    no gcloud application default credentials)."""
    return clean_env(tmp_path)


class Harness(PluginHarness):
    """plugin-harness with the GCS plugin, against endpoint if given."""

    def __init__(self, tmp_path, endpoint, url, options=None, env=None):
        opts = {"endpoint": endpoint} if endpoint else {}
        opts.update(options or {})
        full_env = base_env(tmp_path)
        full_env.update(env or {})
        super().__init__(HARNESS, PLUGIN, url, full_env, opts)
        self.tmp = tmp_path


def key_prefix(request):
    return re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)


@pytest.fixture
def harness(tmp_path, emulator, request):
    return Harness(tmp_path, emulator.url,
                   "gcs://%s/%s" % (BUCKET, key_prefix(request)))




def uploads(log, kind=None):
    """Requests on resumable sessions (PUT with upload_id), in order."""
    return [e for e in log if e["method"] == "PUT" and "upload_id=" in e["path"]]


def chunk_start(entry):
    """First byte of a chunk PUT, None for a status query."""
    m = re.match(r"bytes (\d+)-\d+/", entry["contentRange"] or "")
    return int(m.group(1)) if m else None


def is_status_query(entry):
    return bool(re.match(r"bytes \*/", entry["contentRange"] or ""))


def range_end(entry):
    """N + 1 for a 308's "bytes=0-N", 0 without Range."""
    r = entry["responseRange"]
    return int(r.split("-")[1]) + 1 if r else 0


@pytest.fixture
def proxy(emulator):
    from gcsproxy import Proxy
    p = Proxy(emulator.port)
    yield p
    p.close()


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    """CRC32C, bytewise: only for test objects of a few MiB."""
    c = 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def goog_hash(data):
    """What X-Goog-Hash must say for data."""
    import base64
    crc = base64.b64encode(crc32c(data).to_bytes(4, "big")).decode()
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    return "crc32c=%s,md5=%s" % (crc, md5)
