# SPDX-License-Identifier: MIT
"""The seed's backup job, unchanged, against a drgw mount for nine simulated
days: sqlite3 .backup into the mount, then `ls -t | tail -n +8 | xargs rm`.
Local retention keeps 7; the backend keeps all 9; a restore view over an
empty cache gives back all nine byte for byte, and each passes
PRAGMA integrity_check."""
import filecmp
import os
import shutil
import subprocess

from conftest import make_app_db, sqlite

BACKUP_JOB = """
set -eu
sqlite3 "$DB" ".backup '$MNT/app-$TS.db'"
ls -t "$MNT"/*.db | tail -n +8 | xargs -r rm
"""


def run_job(db, mnt, ts):
    subprocess.run(["bash", "-c", BACKUP_JOB], check=True, timeout=120,
                   env={**os.environ, "DB": str(db), "MNT": str(mnt), "TS": ts})


def test_nine_days_of_backups(env, tmp_path):
    db = tmp_path / "app.db"
    reference = tmp_path / "reference"
    reference.mkdir()
    gw = env.gateway().start()

    for day in range(1, 10):
        make_app_db(db, rows=3000, seed=day * 10000)
        ts = f"202601{day:02d}-020000"
        run_job(db, env.mnt, ts)
        name = f"app-{ts}.db"
        # What a user would keep as the truth of that day.
        sqlite(db, f".backup '{reference / name}'")

    local = sorted(p.name for p in env.mnt.glob("*.db"))
    assert len(local) == 7, local
    assert local[0] == "app-20260103-020000.db"

    env.wait()
    mtimes = {p.name: p.stat().st_mtime_ns for p in env.mnt.glob("*.db")}
    snaps = env.ls()
    assert sorted(s["name"] for s in snaps) == sorted(p.name for p in reference.iterdir())
    for s in snaps:
        assert s["replicas"]["nfs"]["state"] == "replicated", s
        assert s["stored_size"] < s["size"], "zstd should shrink a SQLite file"
    # Exactly one object per snapshot on the backend, nothing else.
    assert len(env.objects()) == 9
    assert not [p for p in env.remote.rglob("*") if p.name.startswith(".")]
    assert gw.stop() == 0

    # Disaster: the cluster is gone.  A new machine has the key and the URL.
    shutil.rmtree(env.cache)
    view = env.restore_view().start()
    restored = sorted(p.name for p in view.mountpoint.iterdir())
    assert restored == sorted(p.name for p in reference.iterdir())
    for name in restored:
        # The restore procedure of DESIGN.md: cp, then integrity_check.
        out = tmp_path / "data" / name
        out.parent.mkdir(exist_ok=True)
        shutil.copy(view.mountpoint / name, out)
        assert filecmp.cmp(out, reference / name, shallow=False), name
        assert sqlite(out, "PRAGMA integrity_check;") == "ok"
        # And directly on the mount, read-only.
        assert sqlite(view.mountpoint / name, "PRAGMA integrity_check;") == "ok"
    for name, mtime in mtimes.items():
        assert (view.mountpoint / name).stat().st_mtime_ns == mtime, name
    assert view.stop() == 0
