# SPDX-License-Identifier: MIT
"""Write-only keys (issue 11): a backup gateway that holds only recipients
encrypts to them and can never decrypt; the identities restore.  And the
format read back without drgw: tools/drgw-decode, written from
docs/FORMAT.md alone, decodes what drgw writes and refuses what was
tampered with."""
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import PLUGINS, ROOT, Daemon, make_app_db, run, sqlite

DECODER = ROOT / "tools" / "drgw-decode"


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def identity(env, name):
    """A new identity file and its recipient string."""
    path = env.tmp / name
    out = run("keygen", "--identity", path).stdout.strip()
    assert re.fullmatch(r"drgw1[02-9ac-hj-np-z]{58}", out), out
    return path, out


def decode(obj, *keys, objects=None, check=True):
    args = [sys.executable, DECODER, str(obj)]
    for k in keys:
        flag = "--identity" if "id" in Path(k).name else "--key"
        args += [flag, str(k)]
    if objects:
        args += ["--objects", str(objects)]
    p = subprocess.run(args, capture_output=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr.decode()
    return p


def writer_args(env, *recipients):
    args = ["--cache", env.cache, "--plugin-dir", PLUGINS]
    for r in recipients:
        args += ["--recipient", r]
    return args


def start_writer(env, *recipients, backends=None):
    """A gateway at env.mnt that holds only the recipients."""
    gw = Daemon(env.tmp, "writer",
                [*writer_args(env, *recipients),
                 *(backends or env.backend_args()), "--settle-delay", "0.2s",
                 "--retry-min", "0.2s", "--retry-max", "1s",
                 "--drain-timeout", "30s"], env.mnt)
    env.daemons.append(gw)
    return gw.start()


def test_recipient_only_gateway_backs_up_and_identities_restore(env, tmp_path):
    id_a, rec_a = identity(env, "team.id")
    id_b, rec_b = identity(env, "escrow.id")
    gw = start_writer(env, rec_a, rec_b)
    db = tmp_path / "app.db"
    make_app_db(db, rows=20000)
    # The seed's backup job, unchanged.
    subprocess.run(["bash", "-c", f"sqlite3 '{db}' \".backup '{env.mnt}/app-1.db'\""],
                   check=True)
    (env.mnt / "big.bin").write_bytes(os.urandom(3 << 20))   # multi-chunk
    env.wait(timeout=120)
    want = {n: sha256(env.mnt / n) for n in ("app-1.db", "big.bin")}
    gw.stop()
    snaps = env.ls()
    assert {s["name"] for s in snaps} == set(want)
    assert all(s["replicas"]["nfs"]["state"] == "replicated" for s in snaps)

    # The writer holds no secret: reading back fails, in one line.
    p = run("restore", "app-1.db", tmp_path / "x", *writer_args(env, rec_a),
            "--cache", tmp_path / "wc", *env.backend_args(), check=False)
    assert p.returncode == 1 and "identity" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr

    # Each identity alone restores, byte for byte.
    for ident in (id_a, id_b):
        for name, digest in want.items():
            out = tmp_path / f"{ident.name}-{name}"
            run("restore", name, out, "--identity", ident, "--cache",
                tmp_path / f"c-{ident.name}", "--plugin-dir", PLUGINS,
                *env.backend_args())
            assert sha256(out) == digest
    args = ["--restore", "--cache", tmp_path / "vc", "--identity", id_b,
            "--plugin-dir", PLUGINS, *env.backend_args()]
    view = Daemon(env.tmp, "view", args, tmp_path / "view")
    env.daemons.append(view)
    view.start()
    assert sqlite(view.mountpoint / "app-1.db", "PRAGMA integrity_check") == "ok"
    assert sha256(view.mountpoint / "big.bin") == want["big.bin"]
    view.stop()

    # An identity that is not a recipient: one line, naming the tags.
    id_c, _ = identity(env, "stranger.id")
    p = run("restore", "big.bin", tmp_path / "y", "--identity", id_c,
            "--cache", tmp_path / "c3", "--plugin-dir", PLUGINS,
            *env.backend_args(), check=False)
    assert p.returncode == 1
    assert "wrong key file or identity" in p.stderr and "recipient" in p.stderr

    # The independent decoder reads the same objects with either identity.
    for obj in env.remote.glob("*.drgw"):
        meta = json.loads(decode(obj, id_a).stderr)
        assert meta["format"] == 2 and meta["name"] in want
        p = decode(obj, id_b)
        assert hashlib.sha256(p.stdout).hexdigest() == want[meta["name"]]


def test_decoder_reads_symmetric_objects_of_several_sizes(env, tmp_path):
    gw = env.gateway("--chunk-size", "64KiB").start()
    sizes = {"empty.bin": 0, "one.bin": 1, "chunk.bin": 65536,
             "more.bin": 65537, "many.bin": 5 * 65536 + 17}
    for name, size in sizes.items():
        (env.mnt / name).write_bytes(os.urandom(size))
    env.wait(timeout=60)
    want = {n: sha256(env.mnt / n) for n in sizes}
    gw.stop()
    for obj in env.remote.glob("*.drgw"):
        p = decode(obj, env.key)
        meta = json.loads(p.stderr)
        assert hashlib.sha256(p.stdout).hexdigest() == want[meta["name"]]
        assert meta["size"] == sizes[meta["name"]]


def test_decoder_reads_the_version_1_vector_and_refuses_tampering(env, tmp_path):
    # The version-1 vector of docs/FORMAT.md, from the unit test's header.
    text = (ROOT / "tests" / "unit" / "format_vector.h").read_text()
    v1 = bytes(int(x, 16) for x in re.findall(r"0x([0-9a-f]{2})", text))
    key = tmp_path / "vector.key"
    import base64
    key.write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    os.chmod(key, 0o600)
    (tmp_path / "v1.drgw").write_bytes(v1)
    p = decode(tmp_path / "v1.drgw", key)
    assert p.stdout == b"hello from drgw: a tiny snapshot\n"
    assert json.loads(p.stderr)["format"] == 1

    gw = env.gateway("--chunk-size", "64KiB").start()
    (env.mnt / "t.bin").write_bytes(os.urandom(200000))
    env.wait(timeout=60)
    gw.stop()
    [obj] = list(env.remote.glob("*.drgw"))
    good = obj.read_bytes()
    cases = {
        "flipped chunk byte": lambda b: b[:1000] + bytes([b[1000] ^ 1]) + b[1001:],
        "flipped stanza byte": lambda b: b[:80] + bytes([b[80] ^ 1]) + b[81:],
        "truncated": lambda b: b[:-1],
        "truncated tail": lambda b: b[:len(b) // 2],
        "extra byte": lambda b: b + b"\0",
        "too many stanzas": lambda b: b[:21] + b"\x11" + b[22:],
    }
    for what, mangle in cases.items():
        bad = tmp_path / "bad.drgw"
        bad.write_bytes(mangle(good))
        p = decode(bad, env.key, check=False)
        assert p.returncode == 1, what
        assert p.stdout == b"", what
        assert len(p.stderr.decode().strip().splitlines()) == 1, (what, p.stderr)
    other = tmp_path / "other.key"
    run("keygen", other)
    p = decode(obj, other, check=False)
    assert p.returncode == 1 and b"wrong key" in p.stderr


def test_recipient_only_backfill_copies_and_checks_without_decrypting(env, tmp_path):
    id_a, rec_a = identity(env, "team.id")
    gw = start_writer(env, rec_a)
    for n in range(3):
        (env.mnt / f"f{n}.bin").write_bytes(os.urandom(70000))
    env.wait(timeout=60)
    want = {f"f{n}.bin": sha256(env.mnt / f"f{n}.bin") for n in range(3)}
    gw.stop()
    new = tmp_path / "new"
    new.mkdir()
    both = [*env.backend_args(), *env.backend_args("new", new)]
    # The writer's own catalog says what to copy; bytes are checked by
    # their hash, never decrypted.
    p = run("backfill", "new", *writer_args(env, rec_a), *both)
    assert "3 copied and verified" in p.stdout, p.stdout
    assert sorted(env.objects(new)) == sorted(env.objects())
    for name, digest in want.items():
        out = tmp_path / f"out-{name}"
        run("restore", name, out, "--identity", id_a, "--cache",
            tmp_path / f"c-{name}", "--plugin-dir", PLUGINS,
            *env.backend_args("new", new))
        assert sha256(out) == digest
    # A source object that is not what was uploaded is not copied.
    newer = tmp_path / "newer"
    newer.mkdir()
    obj = sorted(env.remote.glob("*.drgw"))[0]
    data = bytearray(obj.read_bytes())
    data[100] ^= 1
    obj.write_bytes(bytes(data))
    p = run("backfill", "new2", *writer_args(env, rec_a), *env.backend_args(),
            *env.backend_args("new2", newer), check=False)
    assert p.returncode == 1 and "not what was uploaded" in p.stderr, p.stderr
    assert "2 copied and verified" in p.stdout, p.stdout
    assert obj.name not in env.objects(newer)


def test_run_prune_with_recipients_only_is_refused_up_front(env, tmp_path):
    """Pruning reads every object's footer: `drgw run --prune` on a writer
    that holds only recipients says so before it runs anything, instead of
    backing up and then pruning nothing with exit 0."""
    _, recipient = identity(env, "restore.id")
    marker = tmp_path / "ran"
    p = run("run", *writer_args(env, recipient), *env.backend_args(),
            "--keep-last", "3", "--prune", "--no-mount", "--dir", tmp_path / "dir",
            "--", "touch", marker, check=False)
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "--prune needs the identity" in p.stderr
    assert not marker.exists()


def bech32(hrp, data):
    """The checksummed string FORMAT.md describes (BIP 173), upper-case as
    drgw writes identities, from tools/drgw-decode's own polymod."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader("drgw_decode", str(DECODER))
    dec = importlib.util.module_from_spec(
        importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(dec)
    acc, bits, five = 0, 0, []
    for b in data:
        acc, bits = acc << 8 | b, bits + 8
        while bits >= 5:
            bits -= 5
            five.append(acc >> bits & 31)
    if bits:
        five.append(acc << (5 - bits) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    poly = dec.bech32_polymod(expanded + five + [0] * 6) ^ 1
    check = [poly >> 5 * (5 - i) & 31 for i in range(6)]
    return (hrp + "1" + "".join(dec.CHARSET[v] for v in five + check)).upper()


def test_decoder_reads_the_version_2_vector_with_the_key_or_the_identity(tmp_path):
    text = (ROOT / "tests" / "unit" / "format_vector_v2.h").read_text()
    body = text.split("{", 1)[1]
    (tmp_path / "v2.drgw").write_bytes(
        bytes(int(x, 16) for x in re.findall(r"0x([0-9a-f]{2})", body)))
    import base64
    key = tmp_path / "vector.key"
    key.write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    ident = tmp_path / "vector.id"
    ident.write_text(bech32("drgw-secret-key-", bytes(range(0x40, 0x60))) + "\n")
    for k in (key, ident):
        os.chmod(k, 0o600)
        p = decode(tmp_path / "v2.drgw", k)
        assert p.stdout == b"hello from drgw: a tiny snapshot\n"
        assert json.loads(p.stderr)["format"] == 2
    # The incremental vector: the increment, with its base beside it.
    inc = (ROOT / "tests" / "unit" / "format_vector_inc.h").read_text()
    objs = tmp_path / "objects"
    objs.mkdir()
    for name, vid in (("base", "20260101T000000Z-00000000"),
                      ("next", "20260102T000000Z-00000000")):
        body = inc.split(f"format_vector_inc_{name}[", 1)[1].split("{", 1)[1].split("}", 1)[0]
        (objs / f"{vid}.drgw").write_bytes(
            bytes(int(x, 16) for x in re.findall(r"0x([0-9a-f]{2})", body)))
    base = "".join(f"row {i:05d} of the vector\n" for i in range(512)).encode()
    p = decode(objs / "20260102T000000Z-00000000.drgw", key, objects=objs)
    assert p.stdout == base[:4096] + base[4096:8192].upper() + base[8192:]
    # drgw derives the same recipient from that identity.
    out = run("keygen", "--recipient-of", ident).stdout.strip()
    rec = re.search(r'RECIPIENT "(drgw1[^"]+)"', text).group(1)
    assert out == rec


def test_key_mistakes_are_refused_in_one_line_without_echoing_secrets(env, tmp_path):
    id_a, rec_a = identity(env, "team.id")
    # keygen never overwrites, and writes 0600.
    assert os.stat(id_a).st_mode & 0o777 == 0o600
    p = run("keygen", "--identity", id_a, check=False)
    assert p.returncode != 0 and "exists" in p.stderr, p.stderr
    assert run("keygen", "--recipient-of", id_a).stdout.strip() == rec_a

    def start_fails(*args):
        p = run("run", "--cache", env.cache, "--plugin-dir", PLUGINS,
                *env.backend_args(), *args, "--no-mount", "--dir", tmp_path,
                "--", "true", check=False)
        assert p.returncode != 0, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        return p.stderr

    # The secret pasted where the recipient belongs is never printed.
    secret = [l for l in id_a.read_text().splitlines()
              if l and not l.startswith("#")][0]
    err = start_fails("--recipient", secret)
    assert "secret identity" in err and secret[16:] not in err, err
    recips = tmp_path / "recipients"
    recips.write_text(f"# team\n{rec_a}\n")
    os.chmod(recips, 0o666)
    err = start_fails("--recipient-file", recips)
    assert "writable by group or others" in err, err
    err = start_fails("--recipient", rec_a[:-1] + ("q" if rec_a[-1] != "q" else "p"))
    assert "not a drgw recipient" in err, err
    # 17 stanzas do not fit an object: refused at start, not at every encode.
    many = tmp_path / "many"
    many.write_text("".join(identity(env, f"i{i}.id")[1] + "\n"
                            for i in range(16)))
    err = start_fails("--key-file", env.key, "--recipient-file", many)
    assert "at most 16" in err, err


def test_a_key_change_starts_a_new_chain(env, tmp_path):
    """After moving from a key file to recipients, the next backup is a
    full object: an increment of the old object would need the old key
    too, and the new identity alone must restore it."""
    db = tmp_path / "app.db"
    make_app_db(db, rows=20000)
    gw = env.gateway().start()
    sqlite(db, f".backup '{env.mnt}/app-1.db'")
    env.wait()
    gw.stop()
    id_a, rec_a = identity(env, "team.id")
    gw = start_writer(env, rec_a)
    for day in (2, 3):
        sqlite(db, f"UPDATE applications SET state = 'day{day}' WHERE id > 19900")
        sqlite(db, f".backup '{env.mnt}/app-{day}.db'")
        env.wait()
    want = {n: sha256(env.mnt / n) for n in ("app-2.db", "app-3.db")}
    gw.stop()
    vs = {v["name"]: v for v in env.ls("--versions")}
    assert vs["app-2.db"]["stored_as"] == "full", vs["app-2.db"]
    assert vs["app-3.db"]["stored_as"] == "incremental", vs["app-3.db"]
    for name, digest in want.items():
        out = tmp_path / f"r-{name}"
        run("restore", name, out, "--identity", id_a, "--cache",
            tmp_path / "rc", "--plugin-dir", PLUGINS, *env.backend_args())
        assert sha256(out) == digest


def round_trip(env, tmp_path, backends):
    """A writer with one recipient backs up to backends (an object store);
    the identity alone restores each backend from an empty cache, and the
    index record the writer left describes the objects (no tail read)."""
    ident, rec = identity(env, "team.id")
    gw = start_writer(env, rec, backends=backends)
    db = tmp_path / "app.db"
    make_app_db(db, rows=20000)
    for day in (1, 2):
        sqlite(db, f"UPDATE applications SET state = 'day{day}' WHERE id > 19900")
        sqlite(db, f".backup '{env.mnt}/app-{day}.db'")
        env.wait(timeout=120)
    want = {n: sha256(env.mnt / n) for n in ("app-1.db", "app-2.db")}
    gw.stop()
    vs = {v["name"]: v for v in env.ls("--versions")}
    assert vs["app-2.db"]["stored_as"] == "incremental", vs["app-2.db"]
    for i in range(0, len(backends), 2):
        one = backends[i:i + 2]
        for name, digest in want.items():
            out = tmp_path / f"{i}-{name}"
            run("restore", name, out, "--identity", ident, "--cache",
                tmp_path / f"c{i}-{name}", "--plugin-dir", PLUGINS, *one)
            assert sha256(out) == digest
        p = run("ls", "--remote", "--json", "--identity", ident, "--cache",
                tmp_path / f"ls{i}", "--plugin-dir", PLUGINS, *one)
        assert sorted(o["name"] for o in json.loads(p.stdout)) == sorted(want)
        assert "no index record" not in p.stderr, p.stderr
