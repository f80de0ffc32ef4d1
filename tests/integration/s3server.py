# SPDX-License-Identifier: MIT
"""s3rver (npm, pinned in tests/s3/package-lock.json) and a one-node Ceph
radosgw (tests/s3/radosgw.py) for the integration suite, and the
recording, fault-injecting proxy of the S3 plugin tests in front of
them."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

S3_TESTS = Path(__file__).resolve().parents[1] / "s3"
sys.path.insert(0, str(S3_TESTS))

from s3proxy import Proxy  # noqa: E402,F401
import radosgw as _radosgw  # noqa: E402

BUCKET = "drgw"
CREDS = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER",
         "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3rver:
    """One s3rver process; stop() and start() keep its port and data, so a
    test can take the "cloud" away and bring it back."""

    name = "s3rver"
    creds = CREDS

    def __init__(self, data_dir):
        self.dir = data_dir
        self.port = free_port()
        self.proc = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        binary = S3_TESTS / "node_modules" / ".bin" / "s3rver"
        if not binary.exists():
            raise RuntimeError(f"{binary} missing: run scripts/install-deps")
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        self.proc = subprocess.Popen(
            [str(binary), "-d", str(self.dir), "-a", "127.0.0.1", "-p",
             str(self.port), "--configure-bucket", BUCKET,
             "--no-vhost-buckets", "--silent"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("s3rver did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def backend_url(endpoint, prefix, **opts):
    q = {"endpoint": endpoint, "retry-base-ms": "20", "retry-cap-ms": "200",
         "connect-timeout": "2", **opts}
    return f"s3://{BUCKET}/{prefix}?" + "&".join(f"{k}={v}" for k, v in q.items())


class Radosgw:
    """A one-node Ceph radosgw with the bucket: real S3 semantics (SigV4
    verified, ListParts, Abort, ListMultipartUploads, NoSuchUpload)."""

    name = "radosgw"
    creds = {"AWS_ACCESS_KEY_ID": _radosgw.ACCESS_KEY,
             "AWS_SECRET_ACCESS_KEY": _radosgw.SECRET_KEY,
             "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"}

    @staticmethod
    def available():
        return _radosgw.available()

    def __init__(self, data_dir):
        self.rgw = _radosgw.Radosgw(data_dir)
        self.port, self.url = self.rgw.port, self.rgw.url

    def start(self):
        self.rgw.start()
        self.rgw.create_bucket(BUCKET)
        return self

    def stop(self):
        self.rgw.stop()

    def uploads(self, prefix):
        """Incomplete multipart uploads under prefix: [(key, id)]."""
        return self.rgw.multipart_uploads(BUCKET, prefix)
