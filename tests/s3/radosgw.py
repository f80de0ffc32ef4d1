# SPDX-License-Identifier: MIT
"""A one-node Ceph cluster with radosgw on loopback, in a temp dir: a real
S3 implementation that, unlike s3rver, verifies SigV4 signatures and
payload hashes, and has ListParts, AbortMultipartUpload and
ListMultipartUploads.  Where radosgw 16.2 differs from AWS (tests must not
assert these): error bodies with an empty <Message>, CompleteMultipartUpload
answering an empty <ETag> (a HEAD has the right "-N" one), any region
accepted in signatures.

One monitor, one OSD on memstore (objects in RAM) and radosgw with the
beast frontend, all bound to 127.0.0.1, no cephx, no systemd; start to
serving takes about a second or two.  Debian 12 packages: ceph-mon ceph-osd
radosgw ceph-common (scripts/install-deps).  Every daemon runs in the
foreground as a child of this process, so stop() (or the death of the
test run) takes them all away; nothing is left in /etc or /var.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

ACCESS_KEY = "DRGWRADOSGWTEST0001"
SECRET_KEY = "drgw-radosgw-test-secret-key-0000000001"
BUCKET = "drgw"
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool",
            "ceph")


def _die_with_parent():
    """In the child: SIGKILL when the test process dies, however it dies
    (PR_SET_PDEATHSIG), so that no Ceph daemon outlives a killed run."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def available():
    return all(shutil.which(b) for b in BINARIES)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONF = """[global]
fsid = {fsid}
# Loopback only, msgr2 only.
mon host = v2:127.0.0.1:{mon_port}
public addr = 127.0.0.1
ms bind msgr2 = true
ms bind msgr1 = false
# No cephx keyrings to manage.
auth cluster required = none
auth service required = none
auth client required = none
# Without these radosgw waits 300 s for a secure monitor connection.
ms mon client mode = crc
ms client mode = crc
# One OSD: one copy, and few placement groups (radosgw makes 7-8 pools;
# the defaults exceed the per-OSD limit).
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
# Else every pool creation waits about a second (start takes ~13 s).
paxos propose interval = 0.02
paxos min wait = 0.01
mon warn on pool no redundancy = false
run dir = {dir}/run
log file = {dir}/log/$name.log
admin socket = {dir}/run/$name.asok
pid file = {dir}/run/$name.pid
crash dir = {dir}/crash
keyring = {dir}/keyring.$name
# Objects in the OSD's RAM, at most this much.
osd objectstore = memstore
memstore device bytes = 2G
osd data = {dir}/osd/$cluster-$id
mon data = {dir}/mon/$cluster-$id
osd op num threads per shard = 1
osd op num shards = 1

[client.rgw.a]
# Path-style addressing on loopback.
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw dns name = localhost
rgw data = {dir}/rgw
rgw thread pool size = 16
rgw enable usage log = false
rgw lc debug interval = 10
"""


class Radosgw:
    """start() brings the cluster up with one user and the bucket; url is
    the S3 endpoint."""

    def __init__(self, tmp):
        self.dir = Path(tmp)
        self.mon_port = free_port()
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.conf = self.dir / "ceph.conf"
        self.procs = []

    def _env(self):
        return dict(os.environ, CEPH_CONF=str(self.conf))

    def _run(self, *args, timeout=60):
        p = subprocess.run([*args, "-c", str(self.conf)], env=self._env(),
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s" % (
                " ".join(args), p.returncode, p.stdout[-2000:],
                p.stderr[-2000:]))
        return p.stdout

    def _daemon(self, *args):
        log = open(self.dir / "log" / ("%s.out" % args[0]), "ab")
        p = subprocess.Popen([*args, "-f", "-c", str(self.conf)],
                             env=self._env(), stdout=log,
                             stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL,
                             preexec_fn=_die_with_parent)
        log.close()
        self.procs.append(p)
        return p

    def start(self, timeout=60):
        for d in ("run", "log", "crash", "mon", "osd", "rgw"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        fsid = str(uuid.uuid4())
        self.conf.write_text(CONF.format(fsid=fsid, mon_port=self.mon_port,
                                         rgw_port=self.port, dir=self.dir))
        monmap = self.dir / "monmap"
        self._run("monmaptool", "--create", "--addv", "a",
                  "[v2:127.0.0.1:%d]" % self.mon_port, "--fsid", fsid,
                  str(monmap))
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(monmap))
        self._daemon("ceph-mon", "-i", "a")
        osd_uuid = str(uuid.uuid4())
        osd_id = self._run("ceph", "osd", "new", osd_uuid).strip()
        (self.dir / "osd" / ("ceph-%s" % osd_id)).mkdir(exist_ok=True)
        self._run("ceph-osd", "--mkfs", "-i", osd_id, "--osd-uuid", osd_uuid)
        self._daemon("ceph-osd", "-i", osd_id)
        self._daemon("radosgw", "-n", "client.rgw.a")
        deadline = time.time() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    break
            except OSError:
                for p in self.procs:
                    if p.poll() is not None:
                        raise RuntimeError("a Ceph daemon exited: %s" % (
                            p.args,))
                if time.time() > deadline:
                    raise RuntimeError("radosgw did not listen")
                time.sleep(0.05)
        self._run("radosgw-admin", "user", "create", "--uid=drgw-test",
                  "--display-name=drgw test", "--access-key=" + ACCESS_KEY,
                  "--secret=" + SECRET_KEY)
        return self

    access_key, secret_key = ACCESS_KEY, SECRET_KEY

    def client(self):
        """A botocore S3 client with the test user's keys."""
        import botocore.session
        return botocore.session.get_session().create_client(
            "s3", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def create_bucket(self, name):
        self.client().create_bucket(Bucket=name)

    def multipart_uploads(self, bucket, prefix=""):
        """The incomplete multipart uploads (key, upload id) under prefix."""
        out, kw = [], {"Bucket": bucket, "Prefix": prefix}
        c = self.client()
        while True:
            page = c.list_multipart_uploads(**kw)
            out += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
            if not page.get("IsTruncated"):
                return out
            kw.update(KeyMarker=page["NextKeyMarker"],
                      UploadIdMarker=page["NextUploadIdMarker"])

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []
