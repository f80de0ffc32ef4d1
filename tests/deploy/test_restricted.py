# SPDX-License-Identifier: MIT
"""The Pod Security "restricted" variant (components/restricted, rendered
through overlays/example-restricted): every pod passes the restricted
standard (pss.py) with a read-only root file system and writes only to
volumes; the backup holds no secret, and the identity reaches the jobs
that decrypt as this user's 0400 file; and the scripts of the variant, run
as `nobody` without capabilities or /dev/fuse, back up nine days through
`drgw run --no-mount` with the recipients alone, restore the newest and a
named snapshot without FUSE, and drill.
"""
import hashlib
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import pss
from conftest import (DRGW, PLUGINS, ROOT, check_sanitizers, find,
                      kubelet_volume, pod_spec, script_env, world_config)

RESTRICTED = "overlays/example-restricted"
JOBS = ("drgw-backup", "drgw-restore", "drgw-drill", "drgw-prune")
DECRYPTING = ("drgw-restore", "drgw-drill", "drgw-prune")
NOBODY = "nobody"


def mounts_of(container):
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def under_a_mount(path, mounts):
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)


def test_restricted_pods_pass_the_standard(rendered):
    """Every pod of the overlay: a job added to the base without a patch in
    the component fails here."""
    cronjobs = [o for o in rendered[RESTRICTED] if o["kind"] == "CronJob"]
    assert {o["metadata"]["name"] for o in cronjobs} == set(JOBS)
    assert not [o for o in rendered[RESTRICTED]
                if o["kind"] in ("Job", "Pod", "Deployment", "StatefulSet", "DaemonSet")]
    for cj in cronjobs:
        name = cj["metadata"]["name"]
        spec = pod_spec(cj)
        meta = cj["spec"]["jobTemplate"]["spec"]["template"].get("metadata", {})
        assert pss.restricted(spec, meta.get("annotations")) == [], name
        for _, c in pss.containers(spec):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
    # The checker is no rubber stamp: the FUSE variant fails it, and
    # baseline already, for being privileged.
    spec = pod_spec(find(rendered["base"], "CronJob", "drgw-backup"))
    assert "containers[backup]: privileged must not be true" in pss.baseline(spec)
    drill = pod_spec(find(rendered["base"], "CronJob", "drgw-drill"))
    assert "containers[drill]: runAsUser must not be 0" in pss.restricted(drill)


def test_restricted_writes_only_to_volumes(rendered):
    """A read-only root file system: every directory the scripts write is a
    volume (or below one)."""
    writes = {"drgw-backup": ("BACKUP_DIR", "TMPDIR"),
              "drgw-restore": ("DATA_DIR", "RESTORE_CACHE", "TMPDIR"),
              "drgw-drill": ("DRILL_CACHE", "TMPDIR"),
              "drgw-prune": ("PRUNE_CACHE", "TMPDIR")}
    for name, keys in writes.items():
        spec = pod_spec(find(rendered[RESTRICTED], "CronJob", name))
        (c,) = spec["containers"]
        env, mounts = env_of(c), mounts_of(c)
        writable = [m for m, v in mounts.items() if not v.get("readOnly")]
        for k in keys:
            assert under_a_mount(env[k], writable), f"{name}: {k}={env[k]}"
    backup = pod_spec(find(rendered[RESTRICTED], "CronJob", "drgw-backup"))
    (c,) = backup["containers"]
    assert env_of(c)["DRGW_NO_MOUNT"] == "1"
    assert env_of(c)["BACKUP_DIR"].startswith("/var/lib/drgw/"), \
        "the local copies stay on the cache volume"
    (c,) = pod_spec(find(rendered[RESTRICTED], "CronJob", "drgw-restore"))["containers"]
    assert env_of(c)["DRGW_NO_MOUNT"] == "1"


def test_restricted_identity_is_copied_not_shared(rendered):
    """The backup has no Secret and no init container.  For the jobs that
    decrypt, the identity Secret is readable through fsGroup (0440) by the
    init container only, which copies it into memory as this user's 0400
    files where DRGW_IDENTITY_DIR points; the image the init container runs
    is the overlay's."""
    backup = pod_spec(find(rendered[RESTRICTED], "CronJob", "drgw-backup"))
    assert "initContainers" not in backup
    assert not [v for v in backup["volumes"] if "secret" in v]
    for name in DECRYPTING:
        spec = pod_spec(find(rendered[RESTRICTED], "CronJob", name))
        vols = {v["name"]: v for v in spec["volumes"]}
        assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
        (init,) = spec["initContainers"]
        assert init["command"] == ["/bin/sh", "/scripts/copy-key.sh"]
        assert init["image"] == "registry.example.com/drgw:0.1.0"
        im = mounts_of(init)
        # copy-key.sh's defaults: KEY_SOURCE, KEY_DIR.
        assert "env" not in init
        assert vols[im["/etc/drgw-identity-secret"]["name"]]["secret"] == \
            {"secretName": "drgw-identity", "defaultMode": 0o440}
        ident = vols[im["/etc/drgw-identity"]["name"]]
        assert ident["emptyDir"]["medium"] == "Memory" and "secret" not in ident
        (c,) = spec["containers"]
        m = mounts_of(c)
        assert env_of(c)["DRGW_IDENTITY_DIR"] == "/etc/drgw-identity"
        assert m["/etc/drgw-identity"]["name"] == im["/etc/drgw-identity"]["name"]
        assert m["/etc/drgw-identity"]["readOnly"] is True
        assert "/etc/drgw-identity-secret" not in m
        secrets = [v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v]
        assert secrets == ["drgw-identity"], name


# --- the scripts, as nobody ---

class NobodyWorld:
    """The restricted pods' world in directories nobody owns: the identity
    Secret (0440, group nobody's as fsGroup makes it), the identity
    emptyDir, the cache volume, the app's volume, the shipped drgw.conf
    with the recipient, two local backends; drgw copied where nobody may
    run it.  Each script gets its CronJob's DRGW_IDENTITY_DIR."""

    def __init__(self, scripts, objs):
        self.root = Path(tempfile.mkdtemp(prefix="drgw-restricted-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.privileged = os.geteuid() == 0
        self.bin = self.root / "bin"
        (self.bin / "plugins").mkdir(parents=True)
        shutil.copy2(DRGW, self.bin / "drgw")
        for so in PLUGINS.rglob("drgw-*.so"):
            shutil.copy2(so, self.bin / "plugins" / so.name)
        shutil.copy2(ROOT / "tests" / "lsan.supp", self.bin / "lsan.supp")
        self.scripts = self.root / "scripts"
        shutil.copytree(scripts, self.scripts)
        os.chmod(self.scripts, 0o755)  # as the kubelet lays out a ConfigMap
        for f in self.scripts.iterdir():
            os.chmod(f, 0o644)
        self.home = self.root / "home"
        self.home.mkdir()
        self.secret = self.root / "secret"
        identity = self.root / "restore.identity"
        recipient = subprocess.run(
            [str(self.bin / "drgw"), "keygen", "--identity", str(identity)],
            check=True, capture_output=True, text=True).stdout.strip()
        kubelet_volume(self.secret, {"identity": identity.read_bytes()}, 0o440)
        if self.privileged:
            u = pwd.getpwnam(NOBODY)
            os.chown(self.home, u.pw_uid, u.pw_gid)
            for p in [self.secret, *self.secret.rglob("*")]:
                os.lchown(p, 0, u.pw_gid)
        self.keydir = self.home / "identity"
        self.cache = self.home / "cache"
        self.data = self.home / "data"
        self.remotes = [self.home / "remote-a", self.home / "remote-b"]
        self.confdir = self.home / "etc-drgw"
        self.config = self.confdir / "drgw.conf"
        self.sh_c(f"mkdir -p {self.keydir} {self.data} {self.remotes[0]} "
                  f"{self.remotes[1]} {self.confdir}")
        text = world_config(find(objs, "ConfigMap", "drgw-config")["data"]["drgw.conf"],
                            self.confdir, self.cache,
                            {f"b{i}": r for i, r in enumerate(self.remotes)})
        text = text.replace(f"plugin-dir = {PLUGINS}", f"plugin-dir = {self.bin / 'plugins'}")
        self.sh_c(f"cat > {self.config}", input=text)
        self.sh_c(f"cat > {self.confdir}/recipients", input=recipient + "\n")
        cronjobs = [o for o in objs if o["kind"] == "CronJob"]
        self.job_env = {s: script_env(cronjobs, s, {"/etc/drgw-identity": str(self.keydir)})
                        for s in ("backup.sh", "restore.sh", "drill.sh", "prune.sh")}

    def wrap(self, argv):
        if not self.privileged:
            return list(map(str, argv))
        return ["unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c",
                '[ ! -e /dev/fuse ] || mount --bind /dev/null /dev/fuse; exec "$@"',
                "sh", "setpriv", f"--reuid={NOBODY}", "--regid=nogroup",
                "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                "--no-new-privs", "--", *map(str, argv)]

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRGW")}
        if "LSAN_OPTIONS" in env:
            env["LSAN_OPTIONS"] = f"suppressions={self.bin / 'lsan.supp'}"
        env.update({"DRGW": str(self.bin / "drgw"), "DRGW_CONFIG": str(self.config),
                    "DATA_DIR": str(self.data), "HOME": str(self.home),
                    "TMPDIR": str(self.home), "DRGW_NO_MOUNT": "1",
                    "DRGW_DRAIN_TIMEOUT": "60s", "KEY_SOURCE": str(self.secret),
                    "KEY_DIR": str(self.keydir)})
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def sh_c(self, cmd, input=None):
        p = subprocess.run(self.wrap(["sh", "-c", cmd]), input=input, text=True,
                           capture_output=True, env=self.env(), timeout=60)
        assert p.returncode == 0, p.stderr
        return p

    def script(self, name, timeout=180, **extra):
        env = self.env(**{**self.job_env.get(name, {}), **extra})
        p = subprocess.run(self.wrap(["/bin/sh", self.scripts / name]),
                           env=env, capture_output=True, text=True,
                           timeout=timeout)
        check_sanitizers(p.stderr, name)
        return p

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def restricted_scripts(rendered, tmp_path_factory):
    """The drgw-scripts of the restricted overlay, as a pod mounts them."""
    if not DRGW.exists():
        pytest.fail(f"{DRGW} not found: build first (DRGW_BUILD)")
    d = tmp_path_factory.mktemp("rscripts")
    cm = find(rendered[RESTRICTED], "ConfigMap", "drgw-scripts")
    for k, v in cm["data"].items():
        (d / k).write_text(v)
    return d


def test_restricted_scripts_as_nobody(restricted_scripts, rendered):
    w = NobodyWorld(restricted_scripts, rendered[RESTRICTED])
    try:
        assert w.job_env["backup.sh"] == {}, "the backup holds no secret"
        # The init container of the jobs that decrypt: the identity as this
        # user's 0400 file.
        p = w.script("copy-key.sh")
        assert p.returncode == 0, p.stderr
        ident = w.keydir / "identity"
        assert oct(ident.stat().st_mode & 0o777) == oct(0o400)
        assert ident.read_bytes() == (w.secret / "identity").read_bytes()
        assert not (w.keydir / "..data").exists()

        # The application's database, and nine daily backups through
        # backup.sh with DRGW_NO_MOUNT: seven kept locally, all replicated.
        w.sh_c(f"sqlite3 {w.data}/app.db 'PRAGMA journal_mode=WAL; "
               "CREATE TABLE applications(id INTEGER PRIMARY KEY, name TEXT)'")
        shim = w.home / "shim"
        w.sh_c(f"mkdir {shim} && printf '#!/bin/sh\\nexec /bin/date -u -d \"@$FAKE_NOW\" \"$@\"\\n'"
               f" > {shim}/date && chmod 755 {shim}/date")
        backup_dir = w.cache / "files"
        names = []
        for day in range(1, 10):
            w.sh_c(f"sqlite3 {w.data}/app.db \"INSERT INTO applications(name) VALUES('day {day}')\"")
            now = 1767225600 + day * 86400 + 2 * 3600 + 17 * 60
            p = w.script("backup.sh", BACKUP_DIR=backup_dir, FAKE_NOW=now,
                         PATH=f"{shim}:{os.environ['PATH']}")
            assert p.returncode == 0, p.stderr[-4000:]
            assert "backup: written and replicated" in p.stderr
            assert "command exited with status 0; sealing" in p.stderr
            names.append(time.strftime("app-%Y%m%d-%H%M%S.db", time.gmtime(now)))
        assert sorted(x.name for x in backup_dir.glob("app-*.db")) == names[-7:]
        for r in w.remotes:
            assert len(list(r.glob("*.drgw"))) == 9
        newest = sha256(backup_dir / names[-1])

        # The restore Job without FUSE: the newest, from an empty cache.
        db = w.data / "app.db"
        p = w.script("restore.sh", RESTORE_CACHE=w.home / "rcache")
        assert p.returncode == 0, p.stderr[-4000:]
        assert "PRAGMA integrity_check: ok" in p.stderr
        assert sha256(db) == newest
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            assert c.execute("SELECT COUNT(*) FROM applications").fetchone()[0] == 9
        # A named one, only on the backends any more.
        data2 = w.home / "data2"
        w.sh_c(f"mkdir {data2}")
        p = w.script("restore.sh", RESTORE_CACHE=w.home / "rcache2", DATA_DIR=data2,
                     RESTORE_SNAPSHOT=names[0])
        assert p.returncode == 0, p.stderr[-4000:]
        with sqlite3.connect(f"file:{data2}/app.db?mode=ro", uri=True) as c:
            assert c.execute("SELECT COUNT(*) FROM applications").fetchone()[0] == 1
        p = w.script("restore.sh", RESTORE_CACHE=w.home / "rcache3", DATA_DIR=data2,
                     RESTORE_SNAPSHOT="app-19990101-000000.db")
        assert p.returncode == 1 and "no snapshot app-19990101-000000.db" in p.stderr

        # The drill, as nobody too.
        p = w.script("drill.sh", DRILL_CACHE=w.home / "drill",
                     TMPDIR=w.home / "drill" / "tmp", DRILL_CHECK_SQL="SELECT COUNT(*) FROM applications")
        assert p.returncode == 0, p.stdout + p.stderr[-4000:]
        assert "drill: every backend restored and checked" in p.stderr
    finally:
        w.cleanup()
