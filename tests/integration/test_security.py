# SPDX-License-Identifier: MIT
"""Regression tests for the findings of the security review (issue 9):
each reproduces what an attacker or an unlucky operator would do and
checks what they would see."""
import hashlib
import json
import os
import subprocess

from conftest import DRGW, PLUGINS, run


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def versions_of(env, name):
    return [v for v in env.ls("--versions") if v["name"] == name]


def test_rewrite_that_keeps_size_and_mtime_is_a_new_version(env, tmp_path):
    """cp -p, rsync -t and touch -r put size and mtime back: two different
    files copied under one name must still give two versions."""
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    a.write_bytes(os.urandom(100_000))
    b.write_bytes(os.urandom(100_000))
    subprocess.run(["touch", "-d", "2026-01-01 00:00:00", a, b], check=True)
    gw = env.gateway().start()
    subprocess.run(["cp", "-p", a, env.mnt / "app.db"], check=True)
    env.wait(timeout=60)
    subprocess.run(["cp", "-p", b, env.mnt / "app.db"], check=True)
    env.wait(timeout=60)
    gw.stop()
    # The same again while no daemon runs: the start-up scan must see it.
    subprocess.run(["cp", "-p", a, env.cache / "files" / "app.db"], check=True)
    gw.start()
    env.wait(timeout=60)
    gw.stop()

    # A catalog from before ctime was recorded (schema 1: ctime 0): the
    # same rewrite after the upgrade is still a new version.
    import sqlite3
    db = sqlite3.connect(env.cache / "catalog.db")
    db.execute("UPDATE versions SET ctime_ns = 0")
    db.commit()
    db.close()
    subprocess.run(["cp", "-p", b, env.cache / "files" / "app.db"], check=True)
    gw.start()
    env.wait(timeout=60)
    gw.stop()

    vs = versions_of(env, "app.db")
    assert len(vs) == 4, vs
    got = []
    for v in vs:
        out = tmp_path / f"out-{v['version']}"
        env.client("restore", "--version", v["version"], "app.db", out)
        got.append(sha256(out))
    assert sorted(got) == sorted([sha256(a), sha256(b), sha256(a), sha256(b)])


def as_nobody(*cmd):
    """Runs cmd as an unprivileged user, as another local user would."""
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                           "--clear-groups", *map(str, cmd)],
                          capture_output=True, text=True, timeout=30)


def test_restore_never_creates_set_id_files(env, tmp_path):
    """Whoever can write into the mount must not get a root-owned set-uid
    binary out of an operator's restore."""
    gw = env.gateway().start()
    evil = env.mnt / "evil"
    evil.write_bytes(open("/bin/true", "rb").read())
    os.chmod(evil, 0o6755)
    env.wait(timeout=60)
    gw.stop()
    out = tmp_path / "restored"
    env.client("restore", "evil", out)
    mode = os.stat(out).st_mode
    assert mode & 0o7000 == 0, oct(mode)
    assert mode & 0o777 == 0o755 & ~current_umask(), oct(mode)

    view = env.restore_view().start()
    st = os.stat(view.mountpoint / "evil")
    assert st.st_mode & 0o7000 == 0, oct(st.st_mode)
    view.stop()


def current_umask():
    m = os.umask(0)
    os.umask(m)
    return m


def shared_dir():
    """A directory every user may traverse (pytest's tmp is 0700)."""
    import tempfile
    d = tempfile.mkdtemp(prefix="drgw-view-", dir="/tmp")
    os.chmod(d, 0o755)
    return d


def test_restore_view_is_private_by_default(env, tmp_path):
    gw = env.gateway().start()
    for name, mode in (("public.db", 0o644), ("private.db", 0o600),
                       ("writeonly.db", 0o200)):
        (env.mnt / name).write_text(name)
        os.chmod(env.mnt / name, mode)
    env.wait(timeout=60)
    gw.stop()

    top = shared_dir()
    try:
        view = env.restore_view(mountpoint=f"{top}/default").start()
        root = view.mountpoint
        assert os.stat(root).st_mode & 0o077 == 0, oct(os.stat(root).st_mode)
        for name in ("public.db", "private.db", "writeonly.db"):
            st = os.stat(root / name)
            assert st.st_uid == os.getuid()
            assert st.st_mode & 0o777 == 0o400, (name, oct(st.st_mode))
            assert (root / name).read_text() == name  # the owner reads
        p = as_nobody("cat", root / "public.db")
        assert p.returncode != 0 and "ermission denied" in p.stderr, p
        view.stop()

        # Serving a restore pod that runs as another user is explicit,
        # and never widens what the original allowed.
        view = env.restore_view("--allow-other", "--umask", "022",
                                "--uid", "65534", name="shared",
                                mountpoint=f"{top}/shared").start()
        root = view.mountpoint
        assert as_nobody("cat", root / "public.db").stdout == "public.db"
        for name in ("private.db", "writeonly.db"):
            p = as_nobody("cat", root / name)
            # nobody owns the files now: the owner may read them ...
            assert p.returncode == 0, p
        view.stop()
        view = env.restore_view("--allow-other", "--umask", "022",
                                name="shared2",
                                mountpoint=f"{top}/shared2").start()
        root = view.mountpoint
        assert as_nobody("cat", root / "public.db").stdout == "public.db"
        for name in ("private.db", "writeonly.db"):
            # ... but as others they get no more than the original gave.
            assert as_nobody("cat", root / name).returncode != 0, name
            assert os.stat(root / name).st_mode & 0o077 == 0
        view.stop()
    finally:
        subprocess.run(["rm", "-rf", top])


def test_restore_checks_the_header_against_the_trailer(env, tmp_path):
    gw = env.gateway().start()
    (env.mnt / "app.db").write_bytes(os.urandom(5000))
    env.wait(timeout=60)
    gw.stop()
    obj = env.remote / env.objects()[0]
    data = bytearray(obj.read_bytes())
    data[30] ^= 1          # the repository id in the header at offset 0
    obj.write_bytes(data)
    p = env.client("restore", "app.db", tmp_path / "out", check=False)
    assert p.returncode == 1
    assert "header does not match" in p.stderr, p.stderr
    assert not (tmp_path / "out").exists()


def test_cache_and_catalog_are_private(env, tmp_path):
    env.cache.mkdir(mode=0o755)
    os.chmod(env.cache, 0o755)
    old = os.umask(0o022)
    try:
        gw = env.gateway().start()
        (env.mnt / "a.db").write_text("a\n")
        env.wait(timeout=60)
        gw.stop()
    finally:
        os.umask(old)
    assert os.stat(env.cache).st_mode & 0o077 == 0
    for f in ("catalog.db", "catalog.db-wal", "catalog.db-shm"):
        if (env.cache / f).exists():
            assert os.stat(env.cache / f).st_mode & 0o077 == 0, f
    assert "made it 0700" in gw.log()


def test_key_file_owned_by_another_user_is_refused(env, tmp_path):
    key = tmp_path / "foreign-key"
    key.write_bytes(env.key.read_bytes())
    os.chmod(key, 0o600)
    os.chown(key, 65534, 65534)
    p = run("ls", "--remote", "--cache", tmp_path / "c", "--key-file", key,
            *env.backend_args(), "--plugin-dir", PLUGINS, check=False)
    assert p.returncode == 1
    assert "owned by uid 65534" in p.stderr and p.stderr.count("\n") == 1, p.stderr


def listening_addresses(port):
    """Local addresses with a socket listening on port (/proc/net/tcp*)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                found.append(addr)
    return found


def test_metrics_listen_without_host_is_loopback(env):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = env.gateway("--metrics-listen", f":{port}").start()
    gw.wait_log("serving")
    assert listening_addresses(port) == ["0100007F"], listening_addresses(port)
    import urllib.request
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read()
    assert b"drgw_up 1" in body
    gw.stop()


def test_drgw_is_not_dumpable(env, tmp_path):
    """Keys and plaintext live in every drgw process: no core dumps, and
    /proc/PID/mem, environ etc. out of reach of its own (non-root) user."""
    import socket
    import time
    from pathlib import Path
    top = Path(shared_dir())
    home = top / "nobody"
    home.mkdir()
    key = home / "key"
    key.write_bytes(env.key.read_bytes())
    os.chmod(key, 0o600)
    for p in (home, key):
        os.chown(p, 65534, 65534)
    with socket.socket() as srv:   # accepts, never answers
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        srv.settimeout(30)
        port = srv.getsockname()[1]
        proc = subprocess.Popen(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
             str(DRGW), "ls", "--remote", "--cache",
             str(home / "cache"), "--key-file", str(key), "--plugin-dir",
             str(PLUGINS), "--backend",
             f"s=s3://bucket?endpoint=http://127.0.0.1:{port}&region=us-east-1"],
            env={**os.environ, "AWS_ACCESS_KEY_ID": "x",
                 "AWS_SECRET_ACCESS_KEY": "y", "HOME": str(home)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            conn, _ = srv.accept()    # drgw is up and waiting for S3
            st = os.stat(f"/proc/{proc.pid}/environ")
            assert (st.st_uid, proc.poll()) == (0, None), st
            conn.close()
        finally:
            proc.kill()
            out = proc.communicate()
            subprocess.run(["rm", "-rf", top])
        assert b"drgw" not in out[1], out


def test_lost_replicated_mark_needs_the_same_bytes_not_the_same_size(env):
    """A power cut may undo a "replicated" mark after the spool copy was
    deleted.  An object of the same size on the backend is not proof that
    the upload happened: it must be the same bytes."""
    gw = env.gateway("--drain-timeout", "1s").start()
    (env.mnt / "app.db").write_bytes(os.urandom(20000))
    env.wait(timeout=60)
    gw.stop()
    obj = env.remote / env.objects()[0]
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xff           # same size, other bytes
    obj.write_bytes(data)
    subprocess.run(["sqlite3", env.cache / "catalog.db",
                    "UPDATE replicas SET state='pending', done_ns=0"],
                   check=True)
    gw.start()
    gw.wait_log(r"cannot replicate app\.db to nfs: spool object")
    gw.stop()
    assert "already on nfs" not in gw.log()
    [v] = env.ls()
    assert v["replicas"]["nfs"]["state"] != "replicated", v


def test_rollback_by_deleting_the_newest_object_is_noticed(env, tmp_path):
    """An attacker who can delete objects must not make a restore quietly
    serve an older version as "the newest"."""
    gw = env.gateway().start()
    for content in ("old\n", "new\n"):
        (env.mnt / "app.db").write_text(content)
        env.wait(timeout=60)
    gw.stop()
    newest = versions_of(env, "app.db")[-1]["version"]   # by seal time
    os.unlink(env.remote / f"{newest}.drgw")
    out = tmp_path / "out"

    # With the writer's catalog: refused, naming the missing version.
    p = run("restore", "app.db", out, *env.common(), *env.backend_args(),
            check=False)
    assert p.returncode == 1 and newest in p.stderr, p.stderr
    assert not out.exists()
    run("restore", "--allow-older", "app.db", out, *env.common(),
        *env.backend_args())
    assert out.read_text() == "old\n"

    # On a new machine (no catalog): --max-age refuses an old "newest".
    p = env.client("restore", "--max-age", "1ms", "app.db", tmp_path / "o2",
                   check=False)
    assert p.returncode == 1 and "--max-age" in p.stderr, p.stderr
    view = env.restore_view("--max-age", "1ms").start()
    assert not (view.mountpoint / "app.db").exists()
    assert "not shown: the newest version of app.db" in view.log()
    view.stop()
    p = env.client("drill", "--max-age", "1ms", check=False)
    assert p.returncode == 1 and "--max-age" in p.stdout, p.stdout


def test_unlisted_backend_is_named_during_a_restore(env, tmp_path):
    gw = env.gateway().start()
    (env.mnt / "app.db").write_text("x\n")
    env.wait(timeout=60)
    gw.stop()
    broken = tmp_path / "not-a-dir"
    broken.write_text("")
    backends = [*env.backend_args(), *env.backend_args("offsite", broken)]
    p = env.client("restore", "app.db", tmp_path / "out", backends=backends)
    assert "warning: backend offsite could not be listed" in p.stderr, p.stderr
    view = env.restore_view(backends=backends).start()
    assert "backend offsite could not be listed" in view.log()
    view.stop()


def test_objects_of_another_deployment_are_refused(env, tmp_path):
    """Two deployments that share a key: an object copied from one
    bucket into the other must not be restored as the other's own."""
    gw = env.gateway().start()
    (env.mnt / "app.db").write_text("ours\n")
    env.wait(timeout=60)
    gw.stop()
    other_remote = tmp_path / "other-remote"
    other_remote.mkdir()
    other = env.gateway(cache=tmp_path / "other-cache",
                        backends=env.backend_args("nfs", other_remote),
                        mountpoint=tmp_path / "other-mnt", name="other").start()
    (other.mountpoint / "app.db").write_text("theirs, newer\n")
    env.drgw("wait", "--timeout", "60s", cache=tmp_path / "other-cache")
    other.stop()
    for obj in other_remote.glob("*.drgw"):
        (env.remote / obj.name).write_bytes(obj.read_bytes())

    # With the writer's catalog (or --repository): the copy is refused.
    out = tmp_path / "out"
    p = run("restore", "app.db", out, *env.common(), *env.backend_args())
    assert out.read_text() == "ours\n"
    assert "belongs to repository" in p.stderr, p.stderr
    repo = json.loads(env.drgw("status", "--json").stdout)["repository"]
    p = env.client("restore", "--repository", repo, "app.db", tmp_path / "o2")
    assert (tmp_path / "o2").read_text() == "ours\n"
    # Without either, drgw does not guess between the two.
    p = env.client("restore", "app.db", tmp_path / "o3", check=False)
    assert p.returncode == 1 and "more than one repository" in p.stderr


def test_a_new_cache_carries_on_only_a_repository_its_keys_open(env, tmp_path):
    """A gateway with a new cache takes the repository of the newest object
    on its backends, but only from an object its key opens: one planted by
    whoever may write the bucket does not bind the deployment to theirs."""
    gw = env.gateway().start()
    (env.mnt / "app.db").write_text("ours\n")
    env.wait(timeout=60)
    gw.stop()
    ours = json.loads(env.drgw("status", "--json").stdout)["repository"]

    def repository_of_a_new_cache(name):
        cache = tmp_path / name
        d = env.gateway(cache=cache, mountpoint=tmp_path / f"{name}-mnt",
                        name=name).start()
        d.stop()
        return json.loads(env.drgw("status", "--json", cache=cache).stdout)["repository"], d

    assert repository_of_a_new_cache("c1")[0] == ours
    # Another deployment's object, with another key, planted as the newest.
    other_key, other_remote = tmp_path / "other.key", tmp_path / "other-remote"
    run("keygen", other_key)
    other_remote.mkdir()
    other = env.gateway(cache=tmp_path / "other-cache",
                        backends=env.backend_args("nfs", other_remote),
                        mountpoint=tmp_path / "other-mnt", name="other")
    other.args[other.args.index("--key-file") + 1] = str(other_key)
    other.start()
    (other.mountpoint / "x.db").write_text("planted\n")
    env.drgw("wait", "--timeout", "60s", cache=tmp_path / "other-cache")
    other.stop()
    [obj] = other_remote.glob("*.drgw")
    (env.remote / "99991231T000000Z-00000000.drgw").write_bytes(obj.read_bytes())
    repo, d = repository_of_a_new_cache("c2")
    assert repo != json.loads(env.drgw("status", "--json",
                                       cache=tmp_path / "other-cache").stdout)["repository"]
    assert "not carrying on the repository of 99991231T000000Z-00000000.drgw" in d.log()
