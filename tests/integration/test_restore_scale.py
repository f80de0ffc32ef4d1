# SPDX-License-Identifier: MIT
"""Restores at scale and over an object store, counted request by request:
s3rver behind the recording proxy of the S3 plugin tests, holding a long
history made by drgw-mkobjects (valid objects, each its own version).

What is asserted is what reaches the server (counts, never timings): an
empty-cache restore reads every tail once and no tail twice; a restore
with --cache reads no tail at all; a sequential read through the restore
view or `drgw restore` costs about one GET per read-ahead request, not one
per chunk, forwards and backwards; random reads stay chunk-sized."""
import hashlib
import math
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, PLUGINS
from s3server import BUCKET, CREDS, Proxy, S3rver, backend_url

pytestmark = pytest.mark.skipif(not (PLUGINS / "s3" / "drgw-s3.so").exists(),
                                reason="built without the s3 plugin (-Dplugins)")

MKOBJECTS = BUILD / "tests" / "integration" / "drgw-mkobjects"
SUFFIX = "._S3rver_object"
MIB = 1 << 20


@pytest.fixture
def s3(tmp_path, monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-creds"))
    srv = S3rver(tmp_path / "s3rver").start()
    proxy = Proxy(srv.port)
    srv.proxy = proxy
    yield srv
    proxy.close()
    srv.stop()


def seed(s3, env, prefix, *args):
    """Writes objects straight into s3rver's store, as if uploaded; returns
    {name: [(vid, sha256), ...]}, oldest version first."""
    d = s3.dir / BUCKET / prefix
    d.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([str(MKOBJECTS), "--key", str(env.key), "--out", str(d),
                        "--suffix", SUFFIX, *map(str, args)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    versions = {}
    for line in p.stdout.splitlines():
        name, vid, sha = line.split()
        versions.setdefault(name, []).append((vid, sha))
    return versions


def no_cache(env, s3, prefix, *args):
    """A client command without --cache."""
    p = subprocess.run([str(BUILD / "gateway" / "drgw"), *map(str, args), "--key-file",
                        str(env.key), "--plugin-dir", str(PLUGINS), *backend(s3, prefix)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p


def object_size(s3, prefix, key):
    return (s3.dir / BUCKET / prefix / (key + SUFFIX)).stat().st_size


def object_gets(s3, prefix):
    """(key, first byte, last byte) of every ranged GET of an object."""
    out = []
    for e in s3.proxy.requests(method="GET"):
        m = re.fullmatch(rf"/{BUCKET}/{prefix}/([^/]+\.drgw)", e["path"])
        if not m:
            continue
        r = re.fullmatch(r"bytes=(\d+)-(\d+)", e["headers"].get("range", ""))
        assert r, f"GET without a range: {e['raw']}"
        out.append((m.group(1), int(r.group(1)), int(r.group(2))))
    return out


def tails(s3, prefix, gets):
    """The GETs among gets that read an object's tail."""
    return [g for g in gets if g[2] == object_size(s3, prefix, g[0]) - 1]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def backend(s3, prefix):
    return ["--backend", "s3=" + backend_url(s3.proxy.url, prefix)]


NAMES, VERSIONS = 500, 4


def test_restore_of_one_file_reads_each_tail_once_and_none_with_cache(env, s3, tmp_path):
    versions = seed(s3, env, "hist", "--names", NAMES, "--versions", VERSIONS)
    name = "app-00321.db"
    vid, sha = versions[name][-1]
    key = vid + ".drgw"

    # Without --cache: every tail once (the scan), and a note on how to
    # keep them; the file itself is opened from the tail the scan read.
    p = no_cache(env, s3, "hist", "restore", name, tmp_path / "a.db")
    assert "--cache DIR" in p.stderr
    gets = object_gets(s3, "hist")
    assert len(tails(s3, "hist", gets)) == NAMES * VERSIONS
    assert len({g[0] for g in tails(s3, "hist", gets)}) == NAMES * VERSIONS
    mine = [g for g in gets if g[0] == key]
    assert len(mine) == 3, mine  # its tail, its header, its one chunk
    assert sha256(tmp_path / "a.db") == sha

    # With --cache: the first run reads each tail once, the second none.
    cache = tmp_path / "restore-cache"
    s3.proxy.clear()
    p = env.client("restore", name, tmp_path / "b.db", backends=backend(s3, "hist"), cache=cache)
    assert "--cache DIR" not in p.stderr
    assert len(tails(s3, "hist", object_gets(s3, "hist"))) == NAMES * VERSIONS
    s3.proxy.clear()
    env.client("restore", name, tmp_path / "c.db", backends=backend(s3, "hist"), cache=cache)
    gets = object_gets(s3, "hist")
    assert tails(s3, "hist", gets) == []
    assert sorted(g[0] for g in gets) == [key, key]  # its header and its chunk
    assert sha256(tmp_path / "c.db") == sha
    # ls --remote too.
    s3.proxy.clear()
    out = env.client("ls", "--remote", backends=backend(s3, "hist"), cache=cache)
    assert len(out.stdout.splitlines()) == NAMES + 1
    assert object_gets(s3, "hist") == []
    # An older version restores the same way.
    old_vid = versions[name][1][0]
    s3.proxy.clear()
    env.client("restore", "--version", old_vid, name, tmp_path / "d.db",
               backends=backend(s3, "hist"), cache=cache)
    assert tails(s3, "hist", object_gets(s3, "hist")) == []
    assert "version 1\n" in (tmp_path / "d.db").read_text()

    # verify reads what it checks whole, tails included, but the scan
    # comes from the cache.
    s3.proxy.clear()
    p = env.client("verify", name, backends=backend(s3, "hist"), cache=cache)
    assert "1 replicas ok, 0 problems" in p.stdout
    assert [g[0] for g in tails(s3, "hist", object_gets(s3, "hist"))] == [key]


def test_empty_cache_restore_view_at_scale(env, s3, tmp_path):
    versions = seed(s3, env, "hist", "--names", NAMES, "--versions", 2,
                    "--name-format", "backup/app-%04u.db")
    view = env.restore_view(backends=backend(s3, "hist")).start(timeout=240)
    assert os.listdir(view.mountpoint) == ["backup"]
    names = sorted(os.listdir(view.mountpoint / "backup"))
    assert names == ["app-%04d.db" % i for i in range(NAMES)]
    gets = object_gets(s3, "hist")
    assert len(tails(s3, "hist", gets)) == NAMES * 2
    # Reading one file opens it from the tail the scan kept: one GET.
    s3.proxy.clear()
    vid, sha = versions["backup/app-0042.db"][-1]
    assert sha256(view.mountpoint / "backup" / "app-0042.db") == sha
    assert [g[0] for g in object_gets(s3, "hist")] == [vid + ".drgw"]
    view.stop()


def test_index_record_makes_requests_grow_with_names_not_versions(env, s3, tmp_path):
    """With the index record a gateway leaves, an empty-cache restore of one
    file reads one object tail (its own) out of 2000 versions, and the
    restore view lists them all from the index."""
    versions = seed(s3, env, "hist", "--names", NAMES, "--versions", VERSIONS,
                    "--index")
    name = "app-00123.db"
    vid, sha = versions[name][-1]
    p = no_cache(env, s3, "hist", "restore", name, tmp_path / "a.db")
    assert sha256(tmp_path / "a.db") == sha
    assert [g[0] for g in tails(s3, "hist", object_gets(s3, "hist"))] == [vid + ".drgw"]
    index_gets = [e for e in s3.proxy.requests(method="GET")
                  if "/hist/index/" in e["path"]]
    assert 1 <= len(index_gets) <= 3, index_gets  # its tail and data
    s3.proxy.clear()
    view = env.restore_view(backends=backend(s3, "hist")).start(timeout=240)
    assert len(os.listdir(view.mountpoint)) == NAMES
    assert tails(s3, "hist", object_gets(s3, "hist")) == []
    view.stop()


def test_listing_in_parallel_ranges_still_finds_every_object(env, s3, tmp_path):
    """Above 1600 indexed versions the bucket is listed in ranges split at
    the index's vids, in parallel (ListObjectsV2 start-after): objects the
    index does not know, in the middle of the key space, are still found,
    and an indexed object that is gone is not shown."""
    start = 1767225600  # 2026-01-01
    versions = seed(s3, env, "hist", "--names", 1000, "--versions", 4,
                    "--index", "--start", start)
    # Half an hour after each hour of the indexed history: between its
    # bands, so in the middle ranges.
    late = seed(s3, env, "hist", "--names", 40, "--versions", 4,
                "--start", start + 1800, "--name-format", "late-%03u.db")
    gone = versions["app-00700.db"][-1][0]
    for f in (s3.dir / BUCKET / "hist").glob(gone + ".drgw*"):
        f.unlink()
    s3.proxy.clear()
    view = env.restore_view(backends=backend(s3, "hist")).start(timeout=240)
    names = os.listdir(view.mountpoint)
    assert len(names) == 1040
    assert {n for n in names if n.startswith("late-")} == set(late)
    lists = s3.proxy.requests(method="GET", query="list-type=2")
    ranged = [e for e in lists if "start-after=" in e["query"]]
    assert len(ranged) >= 4, [e["query"] for e in lists]
    assert len(lists) <= 8, [e["query"] for e in lists]
    # Only the objects the index does not know have their tails read.
    read = {g[0] for g in tails(s3, "hist", object_gets(s3, "hist"))}
    assert read == {vid + ".drgw" for v in late.values() for vid, _ in v}
    # The deleted newest version is not served; the one before it is.
    assert sha256(view.mountpoint / "app-00700.db") == versions["app-00700.db"][-2][1]
    assert sha256(view.mountpoint / "late-017.db") == late["late-017.db"][-1][1]
    view.stop()
    assert "deleted or rolled back" in view.log()


def big_file(tmp_path, size):
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.write(os.urandom(size))  # incompressible: stored as large as it is
    return path


def test_sequential_reads_use_large_requests(env, s3, tmp_path):
    size = 40 * MIB
    src = big_file(tmp_path, size)
    vid, sha = seed(s3, env, "big", "--file", src, "--name-format", "big.bin")["big.bin"][0]
    key = vid + ".drgw"
    stored = object_size(s3, "big", key)
    requests = math.ceil(size / (8 * MIB))  # read-request-size

    view = env.restore_view(backends=backend(s3, "big")).start()
    f = view.mountpoint / "big.bin"

    # Forward, as cp reads: whole requests (after 2 and 4 chunks at the
    # start), each object byte fetched once.
    s3.proxy.clear()
    assert sha256(f) == sha
    gets = [g for g in object_gets(s3, "big") if g[0] == key]
    assert len(gets) <= requests + 4, [(g[1] // MIB, g[2] // MIB) for g in gets]
    assert sum(g[2] - g[1] + 1 for g in gets) <= stored + MIB
    view.stop()

    # Backward in 4 KiB steps, as SQLite walks some b-trees: the same.
    view = env.restore_view(backends=backend(s3, "big"), name="back").start()
    f = view.mountpoint / "big.bin"
    s3.proxy.clear()
    h = bytearray()
    with open(f, "rb", buffering=0) as fh:
        for off in range(size - 4096, -1, -4096):
            fh.seek(off)
            h[0:0] = fh.read(4096)
    assert hashlib.sha256(h).hexdigest() == sha
    gets = [g for g in object_gets(s3, "big") if g[0] == key]
    assert len(gets) <= requests + 5, gets
    assert sum(g[2] - g[1] + 1 for g in gets) <= stored + 2 * MIB

    view.stop()

    # Random reads stay chunk-sized: one chunk per GET.
    view = env.restore_view(backends=backend(s3, "big"), name="random").start()
    f = view.mountpoint / "big.bin"
    s3.proxy.clear()
    with open(f, "rb", buffering=0) as fh:
        for chunk in (3, 17, 29, 11, 35):
            fh.seek(chunk * MIB + 5000)
            fh.read(4096)
    gets = [g for g in object_gets(s3, "big") if g[0] == key]
    assert len(gets) == 5 and all(g[2] - g[1] + 1 <= MIB + 4096 for g in gets), gets
    view.stop()

    # drgw restore: the same requests (and the header).
    s3.proxy.clear()
    env.client("restore", "big.bin", tmp_path / "restored.bin", backends=backend(s3, "big"))
    assert sha256(tmp_path / "restored.bin") == sha
    gets = [g for g in object_gets(s3, "big") if g[0] == key]
    assert len(gets) <= requests + 3, gets  # and the tail, the header


def copy_to_s3(env, s3, prefix):
    """Copies the local backend's objects to s3rver under prefix; returns
    their stored sizes by object name."""
    d = s3.dir / BUCKET / prefix
    d.mkdir(parents=True)
    stored = {}
    for obj in env.remote.rglob("*.drgw"):
        (d / (obj.name + SUFFIX)).write_bytes(obj.read_bytes())
        stored[obj.name] = obj.stat().st_size
    return stored


def test_incremental_version_reads_ahead_in_every_object_it_takes_blocks_from(env, s3, tmp_path):
    """The newest of a chain of 7 increments is read from its base and every
    increment at once.  The chunks the reader is in the middle of, one per
    object, do not crowd out read-ahead: the base is still fetched in whole
    requests, not one GET per chunk on demand, and every stored byte about
    once."""
    size, block = 24 * MIB, 4096
    data = bytearray(os.urandom(size))
    # A restore of the 7th increment reads 1.35x the file: allow it
    # whatever the default.
    gw = env.gateway("--incremental-max-read", "200").start()
    rng = __import__("random").Random(12)
    for day in range(1, 9):
        if day > 1:  # 5% of the blocks change, at random places
            for b in rng.sample(range(size // block), size // block // 20):
                data[b * block:(b + 1) * block] = os.urandom(block)
        (env.mnt / f"blob-202601{day:02d}.bin").write_bytes(data)
        env.wait(timeout=120)
    gw.stop()
    newest = {v["name"]: v for v in env.ls("--versions")}["blob-20260108.bin"]
    assert newest["stored_as"] == "incremental" and newest["increments"] == 7, newest
    stored = copy_to_s3(env, s3, "inc")
    base = max(stored, key=stored.get)  # the full object: incompressible

    view = env.restore_view(backends=backend(s3, "inc")).start()
    s3.proxy.clear()
    assert hashlib.sha256((view.mountpoint / "blob-20260108.bin").read_bytes()).digest() == \
        hashlib.sha256(data).digest()
    gets = object_gets(s3, "inc")
    view.stop()
    # Every stored byte about once: under AddressSanitizer the reader has
    # been seen to drop and fetch again one base request of 4 chunks (4.2
    # MiB of 33) when decoding falls behind; more than one read request's
    # worth (8 MiB) fetched twice fails.
    assert sum(g[2] - g[1] + 1 for g in gets) <= sum(stored.values()) + 8 * MIB
    base_gets = [(g[1] // MIB, g[2] // MIB) for g in gets if g[0] == base]
    # Requests of 1, 2, 4, 8... chunks (read-request-size 8 MiB), and its
    # tail; on a loaded machine a read can get to a chunk before the request
    # that holds it went out, and split it in two, and the one request
    # fetched again above adds up to two (one GET per chunk would be 24).
    assert len(base_gets) <= math.ceil(size / (8 * MIB)) + 8, base_gets


def write_chain(env, increments, seed):
    """A 128 MiB file that compresses about 2:1, as databases do, written
    as blob-20260101.bin and then once a day with 10% of its 4 KiB blocks
    changed at random places, stored as a chain of that many increments;
    returns the newest data."""
    rng = __import__("random").Random(seed)
    size, block = 128 * MIB, 4096
    data = bytearray(b"".join(rng.randbytes(2048) + bytes(2048)
                              for _ in range(size // block)))
    gw = env.gateway("--incremental-max-read", "200").start()
    for day in range(1, increments + 2):
        if day > 1:
            for b in rng.sample(range(size // block), size // block // 10):
                data[b * block:(b + 1) * block] = rng.randbytes(2048) + bytes(2048)
        (env.mnt / f"blob-202601{day:02d}.bin").write_bytes(data)
        env.wait(timeout=120)
    gw.stop()
    newest = {v["name"]: v for v in env.ls("--versions")}[f"blob-202601{increments + 1:02d}.bin"]
    assert newest["stored_as"] == "incremental" and newest["increments"] == increments, newest
    return data


def test_increments_with_a_small_share_of_the_file_are_fetched_in_batches(env, s3):
    """The newest of a chain of 3 increments of a database-like file, over
    S3: each increment holds a tenth of the file, so one of its chunks
    covers ten of the file's and read-ahead wants one at a time.  It is
    fetched two chunks a GET instead (one GET a chunk cost 10-15 ms each on
    radosgw, two thirds of the version's requests), kept stored until the
    reader gets near, and every stored byte still about once."""
    data = write_chain(env, 3, seed=7)
    stored = copy_to_s3(env, s3, "inc")
    base = max(stored, key=stored.get)

    view = env.restore_view(backends=backend(s3, "inc")).start()
    s3.proxy.clear()
    decoded, ahead, m = read_sequentially(view, "blob-20260104.bin", data)
    gets = object_gets(s3, "inc")
    assert sum(g[2] - g[1] + 1 for g in gets) <= sum(stored.values()) + 8 * MIB
    for key, size_stored in stored.items():
        if key == base:
            continue
        # About 13 chunks of 0.5 MiB each: 13 GETs and the tail before,
        # 7-8 now; a loaded machine can make the reader fetch a chunk or
        # two itself.
        n = len([g for g in gets if g[0] == key])
        assert n <= size_stored / MIB + 4, (key, size_stored, gets)
    # And decoded ahead, not by the reader when it gets there.
    assert ahead * 10 >= decoded * 7, m


def read_sequentially(view, name, data):
    """Reads name through the running view 1 MiB at a time, as cp does,
    checks it is data, stops the view and returns the chunks it decoded,
    how many of them the fetch threads decoded ahead, and its log line."""
    with open(view.mountpoint / name, "rb") as f:
        h = hashlib.sha256()
        while chunk := f.read(MIB):
            h.update(chunk)
    assert h.digest() == hashlib.sha256(data).digest()
    view.stop()
    m = re.search(r"(\d+) decoded, (\d+) of them ahead", view.log())
    assert m, view.log()
    return int(m[1]), int(m[2]), m[0]


def test_fetch_threads_decode_ahead_while_the_cache_is_full_of_chunks_read(env):
    """Sequential reads through a small read cache: once the chunks read
    fill it, the fetch threads still decode what they fetched ahead (making
    room from the chunks the reader has gone past) instead of leaving each
    decode to the reader, one chunk at a time on its critical path."""
    rng = __import__("random").Random(3)
    # Compresses about 2:1, as databases do.
    data = b"".join(rng.randbytes(2048) + bytes(2048) for _ in range(96 * MIB // 4096))
    gw = env.gateway().start()
    (env.mnt / "big.bin").write_bytes(data)
    env.wait()
    gw.stop()

    view = env.restore_view().start()
    decoded, ahead, m = read_sequentially(view, "big.bin", data)
    # Before, the fetch threads decoded the first 18-23 chunks, until the
    # chunks read filled the cache, and the reader the rest; a busy machine
    # lets the reader get to some chunks first.
    assert decoded >= 96 and ahead * 2 >= decoded, m


def test_incremental_read_decodes_ahead_and_in_large_kernel_requests(env):
    """The newest of a chain of 6 increments, read sequentially with the
    default read cache: the chunk or two each increment holds decoded for
    long stretches of the read let their stored bytes go, so the fetch
    threads still have room to decode the base ahead of the reader.  And
    the view raises the kernel's read-ahead of its mount, so that a
    sequential reader's data arrives in 512 KiB requests, not 128 KiB."""
    data = write_chain(env, 6, seed=5)

    view = env.restore_view().start()
    dev = os.stat(view.mountpoint).st_dev
    bdi = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
    assert bdi.read_text().strip() == "512"
    decoded, ahead, m = read_sequentially(view, "blob-20260107.bin", data)
    # 94 % ahead; while decoded chunks kept their stored bytes, 62-65 %
    # (the reader decoded the rest itself).  A busy machine lets the
    # reader get to a few first.
    assert decoded >= 128 and ahead * 10 >= decoded * 7, m
