# SPDX-License-Identifier: MIT
"""The gateway with the GCS plugin against the GCS emulator: the seed's
backup job with gcs, and with gcs + s3 + local together (`drgw ls` shows
all three); the restore view from GCS over an empty cache; SIGKILL in the
middle of a resumable upload, with the emulator's request log showing
that the upload resumed at the offset the server confirmed."""
import filecmp
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import PLUGINS, make_app_db, sqlite
from gcsserver import GcsEmulator, backend_url
from s3server import CREDS, S3rver
from s3server import backend_url as s3_url

pytestmark = pytest.mark.skipif(not (PLUGINS / "gcs" / "drgw-gcs.so").exists(),
                                reason="built without the gcs plugin (-Dplugins)")


@pytest.fixture
def gcs(tmp_path, monkeypatch):
    emu = GcsEmulator(tmp_path / "gcs").start()
    # As with Google's clients: an emulator host means no credentials.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emu.url)
    for k in ("GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST"):
        monkeypatch.delenv(k, raising=False)
    yield emu
    emu.stop()


def test_write_only_keys(env, gcs, tmp_path):
    from test_write_only import round_trip
    round_trip(env, tmp_path, ["--backend", "gcp=" + backend_url(gcs, "wo")])


def test_backup_job_to_gcs_s3_and_local(env, gcs, tmp_path, monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    s3 = S3rver(tmp_path / "s3rver").start()
    try:
        gcs_backend = ["--backend", "gcp=" + backend_url(gcs, "app")]
        backends = [*gcs_backend, "--backend", "aws=" + s3_url(s3.url, "app"),
                    *env.backend_args()]
        db, reference = tmp_path / "app.db", tmp_path / "reference"
        reference.mkdir()
        gw = env.gateway(backends=backends).start()
        for day in range(1, 10):
            make_app_db(db, rows=1500, seed=day)
            name = f"app-202601{day:02d}.db"
            subprocess.run(["bash", "-c",
                            f"sqlite3 '{db}' \".backup '{env.mnt}/{name}'\" && "
                            f"ls -t {env.mnt}/*.db | tail -n +8 | xargs -r rm"],
                           check=True, timeout=120)
            sqlite(db, f".backup '{reference / name}'")
            # A day passes between runs of the job: each backup is sealed
            # before a later run's rm can reach it (a file removed while it
            # settles is the user's, never sealed; under ASan on a busy
            # machine nine runs back to back outpaced the settle delay).
            env.wait(timeout=120)
        snaps = env.ls()
        assert len(snaps) == 9
        for s in snaps:
            assert {b: r["state"] for b, r in s["replicas"].items()} == \
                {"gcp": "replicated", "aws": "replicated", "nfs": "replicated"}
        # All three plugins take uploads that follow the encoder.
        for b in ("gcp", "aws", "nfs"):
            assert re.search(rf"to {b} \([^)]*streamed while encoding\)",
                             gw.log()), b
        header = env.drgw("ls").stdout.splitlines()[0]
        assert "gcp" in header and "aws" in header and "nfs" in header
        gw.stop()
    finally:
        s3.stop()

    shutil.rmtree(env.cache)
    view = env.restore_view(backends=gcs_backend).start()
    names = sorted(os.listdir(view.mountpoint))
    assert names == sorted(os.listdir(reference))
    for n in names:
        assert filecmp.cmp(view.mountpoint / n, reference / n, shallow=False), n
        assert sqlite(view.mountpoint / n, "PRAGMA integrity_check;") == "ok"
    view.stop()


def test_sigkill_during_resumable_upload_resumes(env, gcs, tmp_path):
    url = backend_url(gcs, "resume", **{"chunk-size": "1M"})
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        f.write(os.urandom(48 << 20))
    # A spooled upload: a streamed one cannot be resumed, only redone.
    gw = env.gateway("--streaming", "off",
                     backends=["--backend", f"gcp={url}"]).start()
    shutil.copy(src, env.mnt / "big.bin")

    def chunks():
        return [e for e in gcs.log() if e["method"] == "PUT" and e.get("status") == 308]
    deadline = time.time() + 120
    while len(chunks()) < 5 and time.time() < deadline:
        time.sleep(0.02)
    assert len(chunks()) >= 5, gw.log()[-3000:]
    gw.kill()
    time.sleep(0.5)
    sessions_before = [e for e in gcs.log() if "uploadType=resumable" in e["path"]
                       and e["method"] == "POST"]
    n_before = len(gcs.log())

    gw = env.gateway("--streaming", "off", name="gateway2",
                     backends=["--backend", f"gcp={url}"]).start()
    env.wait(timeout=120)
    assert "resuming upload of big.bin" in gw.log()
    after = gcs.log()[n_before:]
    # No new session; a status query first, then data from the confirmed
    # offset on.
    assert not [e for e in after if e["method"] == "POST" and "uploadType=resumable" in e["path"]]
    assert len(sessions_before) == 1
    puts = [e for e in after if e["method"] == "PUT"]
    assert puts[0]["contentRange"].startswith("bytes */"), puts[0]
    confirmed = int(re.match(r"bytes=0-(\d+)", puts[0]["responseRange"]).group(1)) + 1
    first_data = int(re.match(r"bytes (\d+)-", puts[1]["contentRange"]).group(1))
    assert first_data == confirmed, (puts[0], puts[1])
    gw.stop()
    out = tmp_path / "restored.bin"
    env.client("restore", "big.bin", out, backends=["--backend", f"gcp={url}"])
    assert filecmp.cmp(out, src, shallow=False)
