# SPDX-License-Identifier: MIT
"""Incremental snapshots (issue 12): a backup of a database that changed a
little stores only the changed pages and references the objects that hold
the rest.  Every version restores byte for byte from the bucket alone; a
missing, swapped or truncated base is named, never served around."""
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, make_app_db, sqlite


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def day_of_changes(db, day, rows=20000):
    """0.2% of rows updated at random places, a few appended."""
    sqlite(db, f"UPDATE applications SET doc = json_set(doc, '$.day', {day}) "
           f"WHERE id IN (SELECT id FROM applications ORDER BY random() "
           f"LIMIT {rows // 500});"
           f"INSERT INTO applications(name, state, doc) "
           f"SELECT 'late-' || value, 'new', '{{}}' FROM generate_series(1, 20)")


def backup_days(env, gw, db, days, name="app-202601{:02d}.db"):
    want = {}
    for day in days:
        if day > days[0]:
            day_of_changes(db, day)
        target = env.mnt / name.format(day)
        sqlite(db, f".backup '{target}'")
        env.wait(timeout=120)
        want[target.name] = sha256(target)
    return want


def versions(env):
    return {v["name"]: v for v in env.ls("--versions")}


def restore_all(env, want, tmp_path, backends=None, tag="r"):
    for name, digest in want.items():
        out = tmp_path / f"{tag}-{name}"
        env.client("restore", name, out, backends=backends,
                   cache=tmp_path / f"{tag}-cache-{name}")
        assert sha256(out) == digest, name
        assert sqlite(out, "PRAGMA integrity_check") == "ok"


def test_increments_restore_byte_for_byte_from_an_empty_cache(env, tmp_path):
    db = tmp_path / "app.db"
    make_app_db(db, rows=20000)
    # A chain of 4 (a restore of the last reads ~1.3x the file).
    gw = env.gateway("--incremental-max-read", "200").start()
    want = backup_days(env, gw, db, list(range(1, 6)))
    gw.stop()
    vs = versions(env)
    first = vs["app-20260101.db"]
    assert first["stored_as"] == "full"
    for day in range(2, 6):
        v = vs[f"app-202601{day:02d}.db"]
        assert v["stored_as"] == "incremental", v
        assert v["increments"] == day - 1
        assert first["version"] in v["references"]
        # Only the changed pages: a fraction of a full object.
        assert v["stored_size"] < first["stored_size"] / 4, v
    # The table shows the chain too.
    table = env.drgw("ls", "--versions").stdout
    row = table.split(vs["app-20260103.db"]["version"], 1)[1].splitlines()
    assert " +2" in row[0] and "takes blocks from" in row[1], table
    assert first["version"] in row[1], table
    restore_all(env, want, tmp_path)
    # The restore view serves the newest increment with a database that
    # checks out, read straight from the pieces.
    view = env.restore_view().start()
    newest = view.mountpoint / "app-20260105.db"
    assert sha256(newest) == want["app-20260105.db"]
    assert sqlite(newest, "PRAGMA integrity_check") == "ok"
    view.stop()
    # drgw verify reads every chain end to end.
    p = env.client("verify", "--all-versions")
    assert "5 replicas ok, 0 problems" in p.stdout, p.stdout
    # The independent decoder rebuilds them too, from the objects alone.
    for name, digest in want.items():
        key = vs[name]["replicas"]["nfs"]["key"]
        p = subprocess.run([sys.executable, ROOT / "tools" / "drgw-decode",
                            "--key", env.key, env.remote / key],
                           capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert hashlib.sha256(p.stdout).hexdigest() == digest


def test_chain_limit_and_a_lost_cache_give_full_objects(env, tmp_path):
    db = tmp_path / "app.db"
    make_app_db(db, rows=20000)
    gw = env.gateway("--incremental-max-chain", "2").start()
    backup_days(env, gw, db, [1, 2, 3, 4])
    gw.stop()
    kinds = [versions(env)[f"app-202601{d:02d}.db"]["stored_as"]
             for d in (1, 2, 3, 4)]
    assert kinds == ["full", "incremental", "incremental", "full"], kinds
    # The cache's block maps gone (a new cache dir, a wiped volume): the
    # writer cannot know what changed, so it stores the whole file.
    shutil.rmtree(env.cache / "blocks")
    gw.start()
    backup_days(env, gw, db, [5])
    gw.stop()
    assert versions(env)["app-20260105.db"]["stored_as"] == "full"


def test_chain_ends_where_a_restore_would_read_too_much(env, tmp_path):
    """incremental-max-read bounds what a restore of any version reads (its
    base and every increment it takes blocks from), so the RTO of the
    newest version stays near that of a full one."""
    db = tmp_path / "app.db"
    make_app_db(db, rows=20000)
    gw = env.gateway("--incremental-max-read", "112").start()
    backup_days(env, gw, db, [1, 2, 3, 4, 5, 6])
    gw.stop()
    vs = versions(env)
    kinds = [vs[f"app-202601{d:02d}.db"]["stored_as"] for d in range(1, 7)]
    assert kinds[0] == "full" and kinds[1] == "incremental", kinds
    assert "full" in kinds[2:], kinds
    for d in range(2, 7):
        v = vs[f"app-202601{d:02d}.db"]
        if v["stored_as"] != "incremental":
            continue
        # What a restore reads: the data of every object the version
        # references and its own, at most 112% of the file (in stored
        # bytes here: they compress alike).
        read = v["stored_size"] + sum(
            o["stored_size"] for o in vs.values() if o["version"] in v["references"])
        full = vs["app-20260101.db"]["stored_size"]
        assert read <= 1.12 * full * 1.05, (d, read, full)


def test_missing_swapped_or_truncated_base_is_named(env, tmp_path):
    db = tmp_path / "app.db"
    make_app_db(db, rows=20000)
    gw = env.gateway().start()
    backup_days(env, gw, db, [1, 2, 3])
    gw.stop()
    vs = versions(env)
    base = env.remote / vs["app-20260101.db"]["replicas"]["nfs"]["key"]
    other = env.remote / vs["app-20260102.db"]["replicas"]["nfs"]["key"]
    good = base.read_bytes()

    def restore_fails(*fragments):
        p = env.client("restore", "app-20260103.db", tmp_path / "x",
                       cache=tmp_path / f"c{len(os.listdir(tmp_path))}",
                       check=False)
        assert p.returncode == 1, p.stdout
        for f in fragments:
            assert f in p.stderr, (f, p.stderr)
        assert not (tmp_path / "x").exists()

    base.unlink()
    restore_fails("is missing", vs["app-20260101.db"]["version"])
    # verify and drill read whole chains: both fail, naming the base.
    for cmd in (["verify", "app-20260103.db"], ["drill"]):
        p = env.client(*cmd, cache=env.cache, check=False)
        assert p.returncode != 0, (cmd, p.stdout)
        assert vs["app-20260101.db"]["version"] in p.stdout + p.stderr, (cmd, p.stdout, p.stderr)
    # Another version's object under the base's name: not the pinned one.
    base.write_bytes(other.read_bytes())
    restore_fails("not the version")
    base.write_bytes(good[:len(good) // 2])
    restore_fails(vs["app-20260101.db"]["version"])
    base.write_bytes(good)
    out = tmp_path / "ok"
    env.client("restore", "app-20260103.db", out)
    assert sqlite(out, "PRAGMA integrity_check") == "ok"


def test_increments_on_s3_and_gcs(env, tmp_path):
    from s3server import CREDS, S3rver, backend_url
    from gcsserver import GcsEmulator, backend_url as gcs_backend_url
    for k, v in CREDS.items():
        os.environ[k] = v
    s3 = S3rver(tmp_path / "s3rver").start()
    (tmp_path / "gcs").mkdir()
    gcs = GcsEmulator(tmp_path / "gcs").start()
    try:
        backends = ["--backend", "offsite=" + backend_url(s3.url, "app"),
                    "--backend", "gcs=" + gcs_backend_url(gcs, "app")]
        db = tmp_path / "app.db"
        make_app_db(db, rows=20000)
        gw = env.gateway(backends=backends).start()
        want = backup_days(env, gw, db, [1, 2, 3])
        gw.stop()
        assert versions(env)["app-20260103.db"]["stored_as"] == "incremental"
        for b in (backends[:2], backends[2:]):
            restore_all(env, want, tmp_path, backends=b,
                        tag=b[1].split("=")[0])
    finally:
        s3.stop()
        gcs.stop()


def test_version_1_and_2_objects_in_one_bucket(env, tmp_path):
    """An old object (the version-1 vector of docs/FORMAT.md) next to new
    ones: both listed, both restored with the same key."""
    key = env.key           # the vector's key: 00 01 ... 1f
    key.write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    text = (ROOT / "tests" / "unit" / "format_vector.h").read_text()
    v1 = bytes(int(x, 16) for x in re.findall(r"0x([0-9a-f]{2})", text))
    (env.remote / "20260101T000000Z-00000000.drgw").write_bytes(v1)
    gw = env.gateway().start()
    (env.mnt / "new.db").write_bytes(os.urandom(100000))
    env.wait(timeout=60)
    new_sha = sha256(env.mnt / "new.db")
    gw.stop()
    p = env.client("ls", "--remote", "--json", key=key)
    names = sorted(s["name"] for s in json.loads(p.stdout))
    assert names == ["backup/app-20260101.db", "new.db"], names
    env.client("restore", "backup/app-20260101.db", tmp_path / "old", key=key)
    assert (tmp_path / "old").read_text() == "hello from drgw: a tiny snapshot\n"
    env.client("restore", "new.db", tmp_path / "new", key=key)
    assert sha256(tmp_path / "new") == new_sha


def test_prune_keeps_what_kept_increments_reference(env, tmp_path):
    db = tmp_path / "app.db"
    make_app_db(db, rows=20000)
    gw = env.gateway().start()
    want = backup_days(env, gw, db, [1, 2, 3])
    gw.stop()
    vs = versions(env)
    # What ls --versions says the policy keeps is what prune keeps.
    preview = {v["name"]: v["replicas"]["nfs"]["policy"]
               for v in env.ls("--versions", "--keep-last", "1")}
    assert preview["app-20260101.db"] == {"action": "keep", "reasons": ["base"]}, preview
    p = env.client("prune", "--keep-last", "1", "--json")
    plan = {json.loads(l)["name"]: json.loads(l) for l in p.stdout.splitlines()}
    assert plan["app-20260103.db"]["action"] == "keep"
    # The full object the newest increment reads most of its pages from.
    base = plan["app-20260101.db"]
    assert base["action"] == "keep" and "base" in base["reasons"], base
    for ref in vs["app-20260103.db"]["references"]:
        assert any(e["version"] == ref and e["action"] == "keep"
                   for e in plan.values()), ref
    restore_all(env, {"app-20260103.db": want["app-20260103.db"]}, tmp_path,
                tag="after-prune")


def test_backfill_copies_what_a_chain_needs(env, tmp_path):
    db = tmp_path / "app.db"
    make_app_db(db, rows=20000)
    gw = env.gateway().start()
    want = backup_days(env, gw, db, [1, 2, 3])
    gw.stop()
    new = tmp_path / "new-backend"
    new.mkdir()
    both = [*env.backend_args(), *env.backend_args("new", new)]
    env.client("backfill", "new", backends=both)
    # The newest version, and the objects it takes blocks from.
    vs = versions(env)
    stored = set(env.objects(new))
    for ref in vs["app-20260103.db"]["references"]:
        assert f"{ref}.drgw" in stored, (ref, stored)
    restore_all(env, {"app-20260103.db": want["app-20260103.db"]}, tmp_path,
                backends=env.backend_args("new", new), tag="from-new")


def test_a_backend_added_later_gets_a_full_object_first(env, tmp_path):
    """The base of an increment must be on every backend it goes to: a
    backend added to the configuration has none of the older objects, so
    the next version is stored whole (it restores from that backend
    alone), and the one after is an increment again."""
    db = tmp_path / "app.db"
    make_app_db(db, rows=20000)
    gw = env.gateway().start()
    backup_days(env, gw, db, [1, 2])
    gw.stop()
    new = tmp_path / "new-backend"
    new.mkdir()
    both = [*env.backend_args(), *env.backend_args("new", new)]
    gw = env.gateway(backends=both, name="gateway2").start()
    want = backup_days(env, gw, db, [3, 4])
    gw.stop()
    vs = versions(env)
    assert vs["app-20260103.db"]["stored_as"] == "full"
    assert vs["app-20260104.db"]["stored_as"] == "incremental"
    restore_all(env, want, tmp_path, backends=env.backend_args("new", new),
                tag="from-new")


def test_a_locked_increment_keeps_its_base(env, tmp_path):
    """A version kept only by a hold (GCS) is kept restorable: the objects
    it takes blocks from are kept too, with reason base."""
    from gcsserver import BUCKET, GcsEmulator, backend_url as gcs_backend_url
    import urllib.parse
    import urllib.request
    (tmp_path / "gcs").mkdir()
    gcs = GcsEmulator(tmp_path / "gcs").start()
    try:
        backends = ["--backend", "gcs=" + gcs_backend_url(gcs, "app")]
        db = tmp_path / "app.db"
        make_app_db(db, rows=20000)
        # Chains of one: day 1 full, 2 its increment, 3 full, 4 increment.
        gw = env.gateway("--incremental-max-chain", "1", backends=backends).start()
        want = backup_days(env, gw, db, [1, 2, 3, 4])
        gw.stop()
        vs = versions(env)
        assert vs["app-20260102.db"]["references"] == [vs["app-20260101.db"]["version"]]
        obj = urllib.parse.quote("app/%s.drgw" % vs["app-20260102.db"]["version"],
                                 safe="")
        urllib.request.urlopen(urllib.request.Request(
            "%s/storage/v1/b/%s/o/%s" % (gcs.url, BUCKET, obj),
            data=json.dumps({"temporaryHold": True}).encode(), method="PATCH",
            headers={"Content-Type": "application/json"})).read()
        p = env.client("prune", "--keep-last", "1", "--json", backends=backends)
        plan = {json.loads(l)["name"]: json.loads(l) for l in p.stdout.splitlines()}
        assert plan["app-20260102.db"]["reasons"] == ["locked"], plan
        assert "base" in plan["app-20260101.db"]["reasons"], plan
        assert "base" in plan["app-20260103.db"]["reasons"], plan
        restore_all(env, {"app-20260102.db": want["app-20260102.db"]}, tmp_path,
                    backends=backends, tag="held")
    finally:
        gcs.stop()


def test_two_databases_of_one_series_each_take_their_own_base(env, tmp_path):
    """shard-1.db and shard-2.db are one series (digits become *) but two
    databases: each version is an increment of the same name's last one,
    not of whichever of the series came last (every version was stored
    whole, each a poor increment of the other)."""
    dbs = {}
    for i in (1, 2):
        dbs[i] = tmp_path / f"src-{i}.db"
        make_app_db(dbs[i], rows=20000, seed=i * 100000)
    gw = env.gateway().start()
    want = {}
    for day in (1, 2, 3):
        for i in (1, 2):
            if day > 1:
                sqlite(dbs[i], f"UPDATE applications SET state = 'd{day}' WHERE id > 19900")
            sqlite(dbs[i], f".backup '{env.mnt}/shard-{i}.db'")
            env.wait(timeout=120)
            want[(i, day)] = sha256(env.mnt / f"shard-{i}.db")
    gw.stop()
    by_name = {}
    for v in env.ls("--versions"):
        by_name.setdefault(v["name"], []).append(v)
    for i in (1, 2):
        vs = sorted(by_name[f"shard-{i}.db"], key=lambda v: v["mtime_ns"])
        assert [v["stored_as"] for v in vs] == ["full", "incremental", "incremental"], vs
        own = {v["version"] for v in vs}
        for v in vs[1:]:
            assert set(v["references"]) <= own, (v, own)
    out = tmp_path / "out.db"
    env.client("restore", "shard-2.db", out)
    assert sha256(out) == want[(2, 3)]
