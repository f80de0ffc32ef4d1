# SPDX-License-Identifier: MIT
"""The GCS emulator of tests/gcs-emulator for the integration suite."""
import json
import re
import subprocess
import urllib.request
from pathlib import Path

EMULATOR = Path(__file__).resolve().parents[1] / "gcs-emulator" / "server.js"
BUCKET = "drgw"


class GcsEmulator:
    def __init__(self, data_dir):
        self.dir = data_dir
        self.proc = None
        self.url = None

    def start(self):
        self.proc = subprocess.Popen(
            ["node", str(EMULATOR), "--port", "0", "--dir", str(self.dir),
             "--bucket", BUCKET],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        m = re.match(r"^listening (http://127\.0\.0\.1:\d+)$",
                     self.proc.stdout.readline().strip())
        if not m:
            self.stop()
            raise RuntimeError("the GCS emulator did not start")
        self.url = m.group(1)
        return self

    def log(self):
        with urllib.request.urlopen(self.url + "/_emulator/log") as r:
            return json.load(r)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def backend_url(emu, prefix, **opts):
    q = {"endpoint": emu.url, "retry-base-ms": "20", "retry-cap-ms": "200",
         "connect-timeout": "2", **opts}
    return f"gcs://{BUCKET}/{prefix}?" + "&".join(f"{k}={v}" for k, v in q.items())
