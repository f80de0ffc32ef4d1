# SPDX-License-Identifier: MIT
"""A one-node Ceph cluster with radosgw on loopback, for what s3rver cannot
do: Object Lock (retention, legal hold) on a versioned bucket.  One monitor
and one memstore OSD, no cephx, all in a temporary directory; about two
seconds to start.  /work/shared/notes/radosgw.md has why each setting is
there.

A minimal fixture of the prune tests (tests/integration/test_prune_lock.py);
a shared radosgw fixture elsewhere in tests/ may replace it.
"""
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

ACCESS_KEY = "DRGWPRUNETESTKEY0001"
SECRET_KEY = "drgw-prune-test-secret-key-0000000000001"
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool")


def available():
    return all(any(os.access(Path(d) / b, os.X_OK)
                   for d in os.environ.get("PATH", "/usr/bin").split(":"))
               for b in BINARIES)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Radosgw:
    def __init__(self, root):
        self.root = Path(root)
        self.mon_port = free_port()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs = []

    def _conf(self):
        r = self.root
        return f"""[global]
fsid = {self.fsid}
mon host = v2:127.0.0.1:{self.mon_port}
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
ms bind msgr2 = true
ms bind msgr1 = false
paxos propose interval = 0.02
paxos min wait = 0.01
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon warn on pool no redundancy = false
run dir = {r}/run
log file = {r}/log/$name.log
admin socket = {r}/run/$name.asok
pid file = {r}/run/$name.pid
[mon.a]
mon data = {r}/mon
[osd.0]
osd data = {r}/osd
osd objectstore = memstore
memstore device bytes = 1073741824
osd journal size = 0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{self.port}
rgw dns name = localhost
rgw data = {r}/rgw
"""

    def _run(self, *args, timeout=60):
        p = subprocess.run([*args, "-c", str(self.conf)], capture_output=True,
                           text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {p.stderr[-2000:]}")
        return p.stdout

    def start(self):
        """Starts the cluster; once more from scratch, on new ports, if
        the first try fails (a monitor that never answered `ceph osd new`
        within a minute, once, on a loaded machine)."""
        try:
            return self._start()
        except (RuntimeError, subprocess.TimeoutExpired):
            self.stop()
            for d in ("run", "log", "mon", "osd", "rgw"):
                shutil.rmtree(self.root / d, ignore_errors=True)
            self.mon_port, self.port = free_port(), free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            return self._start()

    def _start(self):
        self.fsid = str(uuid.uuid4())
        for d in ("run", "log", "mon", "osd", "rgw"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "ceph.conf"
        self.conf.write_text(self._conf())
        monmap = self.root / "monmap"
        subprocess.run(["monmaptool", "--create", "--clobber", "--fsid", self.fsid,
                        "--addv", "a", f"[v2:127.0.0.1:{self.mon_port}]",
                        str(monmap)], check=True, capture_output=True)
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(monmap))
        self._run("ceph-mon", "-i", "a")
        osd_uuid = str(uuid.uuid4())
        self._run("ceph", "osd", "new", osd_uuid)
        self._run("ceph-osd", "--mkfs", "-i", "0", "--osd-uuid", osd_uuid)
        self._run("ceph-osd", "-i", "0")
        self._run("radosgw", "-n", "client.rgw.a")
        self._run("radosgw-admin", "user", "create", "--uid=drgw",
                  "--display-name=drgw", f"--access-key={ACCESS_KEY}",
                  f"--secret={SECRET_KEY}", timeout=120)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("radosgw did not start: " +
                           (self.root / "log" / "client.rgw.a.log").read_text()[-2000:])

    def stop(self):
        for name in ("client.rgw.a", "osd.0", "mon.a"):
            pid_file = self.root / "run" / f"{name}.pid"
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass

    def env(self):
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
