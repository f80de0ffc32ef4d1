# SPDX-License-Identifier: MIT
"""Index records (docs/FORMAT.md): a gateway writes one per backend, and an
empty-cache restore then reads the tail of no object but the one it
restores.  The index is a shortcut, never the truth: a damaged index is
ignored with a warning and every object is opened; an index that names a
version the bucket lost while an older one is still there says so.

Counted at s3rver behind the recording proxy, as in test_restore_scale."""
import hashlib
import json
import shutil

import pytest

from conftest import PLUGINS
from test_restore_scale import backend, object_gets, s3, sha256, tails  # noqa: F401

pytestmark = pytest.mark.skipif(not (PLUGINS / "s3" / "drgw-s3.so").exists(),
                                reason="built without the s3 plugin (-Dplugins)")

PREFIX = "ix"


def write(path, text):
    path.write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def backup(env, s3, names):
    """Writes the files (several versions of same.db) through a gateway and
    stops it, which writes the index record; returns {name: [sha, ...]}."""
    gw = env.gateway(backends=backend(s3, PREFIX)).start()
    shas = {}
    for i, name in enumerate(names):
        shas.setdefault(name, []).append(
            write(gw.mountpoint / name, f"{name} {i}\n" * (1000 + i)))
        if name == "same.db":
            env.wait()  # one version each
    env.wait()
    gw.stop()
    return shas


def store(s3):
    return s3.dir / "drgw-test" / PREFIX if (s3.dir / "drgw-test").exists() else \
        next(p for p in s3.dir.iterdir() if p.is_dir()) / PREFIX


def index_files(s3):
    return sorted((store(s3) / "index").glob("*.drgw-index._S3rver_object"))


def test_index_restore_reads_one_tail_and_falls_back(env, s3, tmp_path):
    names = [f"app-{i}.db" for i in range(12)] + ["same.db"] * 3
    shas = backup(env, s3, names)
    [ix] = index_files(s3)

    # Empty cache: the listing, the index record, and the restored file's
    # own tail; no other object's tail.
    s3.proxy.clear()
    p = env.client("restore", "same.db", tmp_path / "a.db",
                   backends=backend(s3, PREFIX), cache=tmp_path / "c1")
    assert sha256(tmp_path / "a.db") == shas["same.db"][-1]
    assert len(tails(s3, PREFIX, object_gets(s3, PREFIX))) == 1
    assert "index record" not in p.stderr
    listed = env.client("ls", "--remote", "--versions", "--json",
                        backends=backend(s3, PREFIX), cache=tmp_path / "c2")
    assert len(tails(s3, PREFIX, object_gets(s3, PREFIX))) == 1
    assert len(json.loads(listed.stdout)) == 15

    # A damaged index is ignored, loudly, and everything still restores.
    good = ix.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x40
    ix.write_bytes(bytes(bad))
    s3.proxy.clear()
    p = env.client("restore", "app-7.db", tmp_path / "b.db",
                   backends=backend(s3, PREFIX), cache=tmp_path / "c3")
    assert "ignoring index record" in p.stderr
    assert sha256(tmp_path / "b.db") == shas["app-7.db"][0]
    assert len(tails(s3, PREFIX, object_gets(s3, PREFIX))) == 15

    def remove(vid):
        for f in store(s3).glob(vid + ".drgw*"):
            if f.is_dir():
                shutil.rmtree(f)
            else:
                f.unlink()

    # A same.db between two others pruned since the index was written:
    # no warning.
    ix.write_bytes(good)
    same = [o for o in json.loads(listed.stdout) if o["name"] == "same.db"]
    remove(same[1]["version"])  # sorted by name, then oldest first
    p = env.client("restore", "same.db", tmp_path / "e.db",
                   backends=backend(s3, PREFIX), cache=tmp_path / "c5")
    assert "rolled back" not in p.stderr, p.stderr
    assert sha256(tmp_path / "e.db") == shas["same.db"][-1]

    # The newest same.db vanishes (a rollback) while the index still
    # names it: the older one is what the bucket has, and the reader says
    # what happened.
    remove(same[-1]["version"])
    p = env.client("restore", "--allow-older", "same.db", tmp_path / "d.db",
                   backends=backend(s3, PREFIX), cache=tmp_path / "c4")
    assert "no longer holds" in p.stderr and "rolled back" in p.stderr
    assert sha256(tmp_path / "d.db") == shas["same.db"][0]


def test_missing_stale_and_foreign_index(env, s3, tmp_path):
    shas = backup(env, s3, [f"app-{i}.db" for i in range(6)])
    [first] = index_files(s3)
    # The object and what s3rver keeps beside it (metadata, checksum).
    kept = {p: p.read_bytes() for p in first.parent.glob(
        first.name.replace("._S3rver_object", "") + "*")}
    repo = json.loads(env.drgw("status", "--json").stdout)["repository"]

    # Missing: every object is opened, with a warning, all is there.
    for f in kept:
        f.unlink()
    s3.proxy.clear()
    p = env.client("restore", "app-2.db", tmp_path / "a.db",
                   backends=backend(s3, PREFIX), cache=tmp_path / "c1")
    assert sha256(tmp_path / "a.db") == shas["app-2.db"][0]
    assert len(tails(s3, PREFIX, object_gets(s3, PREFIX))) == 6
    assert "6 objects and no index record" in p.stderr, p.stderr

    # Stale: an older index (put back after later backups wrote a newer
    # one) describes what it knew; only the later objects are opened.
    later = backup(env, s3, [f"new-{i}.db" for i in range(3)])
    for f in (store(s3) / "index").iterdir():
        f.unlink()
    for f, data in kept.items():
        f.write_bytes(data)
    s3.proxy.clear()
    listed = env.client("ls", "--remote", "--json", backends=backend(s3, PREFIX),
                        cache=tmp_path / "c2")
    assert sorted(o["name"] for o in json.loads(listed.stdout)) == \
        sorted(list(shas) + list(later))
    assert len(tails(s3, PREFIX, object_gets(s3, PREFIX))) == 3

    # Foreign: the index of another deployment (another cache, so another
    # repository) copied in as the newest is refused by a reader that
    # knows its repository, and costs only the requests it would have saved.
    other = env.gateway(cache=tmp_path / "other-cache",
                        backends=backend(s3, "other"), name="other").start()
    write(other.mountpoint / "app-0.db", "someone else's\n")
    other.stop()
    [foreign] = sorted((store(s3).parent / "other" / "index").glob("*._S3rver_object"))
    shutil.copy(foreign, store(s3) / "index" / foreign.name)
    for meta in foreign.parent.glob(foreign.name.replace("._S3rver_object", "") + "._S3rver*"):
        shutil.copy(meta, store(s3) / "index" / meta.name)
    s3.proxy.clear()
    p = env.client("restore", "--repository", repo, "app-0.db", tmp_path / "b.db",
                   backends=backend(s3, PREFIX), cache=tmp_path / "c3")
    assert "ignoring index record" in p.stderr and "another repository" in p.stderr
    assert sha256(tmp_path / "b.db") == shas["app-0.db"][0]
    assert len(tails(s3, PREFIX, object_gets(s3, PREFIX))) == 9
