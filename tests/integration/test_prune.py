# SPDX-License-Identifier: MIT
"""drgw prune's rules and failure modes, on a few snapshots: no policy is
a usage error (exit 2) and removes nothing; --pattern; drgw run --prune
only after a backup that succeeded; a writer whose credentials cannot
delete backs up fine and a prune with them fails in one line naming the
permission (S3 and GCS); a backend failing mid-prune leaves the others
pruned and itself consistent; a plugin without remove_many (an older
ABI 1 header) is pruned one key at a time."""
import json
import subprocess

import pytest

from conftest import PLUGINS, ROOT, run
from gcsserver import GcsEmulator
from gcsserver import backend_url as gcs_url
from s3server import CREDS, Proxy, S3rver
from s3server import backend_url as s3_url

HAVE_S3 = (PLUGINS / "s3" / "drgw-s3.so").exists()
HAVE_GCS = (PLUGINS / "gcs" / "drgw-gcs.so").exists()


@pytest.fixture
def s3(tmp_path, monkeypatch):
    if not HAVE_S3:
        pytest.skip("built without the s3 plugin")
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    srv = S3rver(tmp_path / "s3rver").start()
    yield srv
    srv.stop()


@pytest.fixture
def gcs(tmp_path):
    if not HAVE_GCS:
        pytest.skip("built without the gcs plugin")
    emu = GcsEmulator(tmp_path / "gcs").start()
    yield emu
    emu.stop()


def backup(env, backends, names, *extra):
    """Snapshots of names through a gateway, replicated, then unmounted."""
    gw = env.gateway(*extra, backends=backends).start()
    for n in names:
        (env.mnt / n).write_bytes(n.encode() * 100)
        env.drgw("wait", "--timeout", "60s", timeout=90)
    env.wait()
    gw.stop()


def prune(env, *args, backends=None, check=True):
    return env.client("prune", *args, backends=backends, check=check,
                      cache=env.cache)


def json_lines(out):
    return [json.loads(line) for line in out.splitlines()]


def test_no_policy_removes_nothing(env):
    backup(env, env.backend_args(), ["app-1.db", "app-2.db", "app-3.db"])
    before = env.objects()
    for args in ([], ["--keep-last", "0"], ["--dry-run"]):
        p = prune(env, *args, check=False)
        assert p.returncode == 2, args
        assert p.stdout == ""
        err = p.stderr.strip()
        assert "\n" not in err and "no retention policy for backend nfs" in err
    p = prune(env, "--keep-daily", "many", check=False)
    assert p.returncode == 2 and "keep-daily" in p.stderr
    p = prune(env, "--keep-last", "1", "--backend", "elsewhere", check=False)
    assert p.returncode == 2 and "no backend named elsewhere" in p.stderr
    # drgw run --prune refuses before it mounts or runs anything.
    marker = env.tmp / "ran"
    p = run("run", *env.common(), *env.backend_args(), "--mount", env.mnt,
            "--prune", "--", "touch", marker, check=False)
    assert p.returncode == 2 and "no retention policy" in p.stderr
    assert not marker.exists()
    assert env.objects() == before


def test_pattern_and_versions_of_one_name(env):
    names = ["app-1.db", "other-1.db", "app-2.db", "other-2.db", "app-3.db"]
    backup(env, env.backend_args(), names)
    # Three versions of one name: one group.
    gw = env.gateway().start()
    for i in range(3):
        (env.mnt / "state.json").write_text("v%d" % i)
        env.drgw("wait", "--timeout", "60s", timeout=90)
    gw.stop()
    before = {s["version"]: s["name"] for s in env.ls("--versions")}
    assert len(before) == 8

    out = json_lines(prune(env, "--keep-last", "1", "--pattern", "app-*",
                           "--json").stdout)
    assert {x["group"] for x in out} == {"app-*.db"}
    kept = {x["name"] for x in out if x["action"] == "keep"}
    assert kept == {"app-3.db"}
    assert {x["name"] for x in out if x["action"] == "remove"} == {"app-1.db", "app-2.db"}
    gone = {x["version"] for x in out if x["action"] == "remove"}
    assert env.objects() == sorted(v + ".drgw" for v in before if v not in gone)

    out = json_lines(prune(env, "--keep-last", "1", "--pattern", "state.*",
                           "--json").stdout)
    assert [x["action"] for x in out] == ["remove", "remove", "keep"]
    assert out[-1]["reasons"] == ["last", "newest"]
    # ls: the kept ones replicated, the removed ones pruned.
    for v in env.ls("--versions"):
        gone_now = v["name"] in ("app-1.db", "app-2.db") or \
            (v["name"] == "state.json" and v["version"] != out[-1]["version"])
        assert v["replicas"]["nfs"]["state"] == ("pruned" if gone_now else
                                                 "replicated"), v
    # ls --versions shows what the policy keeps; status the last prune.
    table = env.drgw("ls", "--versions", "--keep-last", "1").stdout
    assert "kept" in table and "pruned" in table
    status = env.drgw("status", "--keep-last", "1").stdout
    assert "policy: keep 1 last" in status and "last prune:" in status


def test_run_prune_only_after_a_good_backup(env):
    env.mnt.mkdir()
    common = [*env.common(), *env.backend_args(), "--settle-delay", "0.1s",
              "--mount", env.mnt, "--prune", "--keep-last", "2"]
    for i in range(3):
        run("run", *common, "--", "sh", "-c",
            "echo %d > %s/app-%d.db" % (i, env.mnt, i))
    assert len(env.objects()) == 2
    # A failing backup job prunes nothing, whatever it wrote.
    p = run("run", *common, "--", "sh", "-c",
            "echo x > %s/app-9.db; exit 5" % env.mnt, check=False)
    assert p.returncode == 5
    assert "not pruning" in p.stderr
    assert len(env.objects()) == 3


@pytest.mark.parametrize("cloud", ["s3", "gcs"])
def test_writer_without_delete_permission(env, request, tmp_path, cloud):
    if cloud == "s3":
        srv = request.getfixturevalue("s3")
        proxy = Proxy(srv.port)
        # A policy without s3:DeleteObject: every delete is refused.
        proxy.add_fault(method="DELETE", times=None, status=403,
                        code="AccessDenied")
        proxy.add_fault(method="POST", query="delete", times=None, status=403,
                        code="AccessDenied")
        url, perm = s3_url(proxy.url, "denied"), "s3:DeleteObject"
    else:
        emu = request.getfixturevalue("gcs")
        emu_fail = {"count": "100000", "status": "403", "method": "DELETE"}
        import urllib.parse
        import urllib.request
        urllib.request.urlopen(urllib.request.Request(
            emu.url + "/_emulator/fail?" + urllib.parse.urlencode(emu_fail),
            data=b"", method="POST")).read()
        url, perm = gcs_url(emu, "denied"), "storage.objects.delete"
    backends = ["--backend", "cloud=" + url]
    try:
        # The backup path needs no delete: everything is replicated.
        backup(env, backends, ["app-1.db", "app-2.db", "app-3.db"])
        assert all(s["replicas"]["cloud"]["state"] == "replicated"
                   for s in env.ls("--versions"))
        if cloud == "s3":
            assert not proxy.requests("DELETE")
            assert not proxy.requests("POST", query="delete")
        p = prune(env, "--keep-last", "1", backends=backends, check=False)
        assert p.returncode == 1
        err = p.stderr.strip()
        assert "\n" not in err, err
        assert "backend cloud" in err and perm in err and "403" in err
        # Nothing was removed, nothing half-recorded.
        assert all(s["replicas"]["cloud"]["state"] == "replicated"
                   for s in env.ls("--versions"))
        assert len(json.loads(env.client("ls", "--remote", "--versions", "--json",
                                         backends=backends).stdout)) == 3
        prom = env.drgw("status", "--prometheus").stdout
        assert 'drgw_prune_last_success{backend="cloud"} 0' in prom
        assert "FAILED" in env.drgw("status").stdout
    finally:
        if cloud == "s3":
            proxy.close()


def test_backend_failing_mid_prune(env, s3, gcs):
    proxy = Proxy(s3.port)
    proxy.add_fault(method="POST", query="delete", times=None, status=500,
                    code="InternalError")
    backends = [*env.backend_args(), "--backend",
                "s3=" + s3_url(proxy.url, "failing"), "--backend",
                "gcs=" + gcs_url(gcs, "fine")]
    try:
        backup(env, backends, ["app-%d.db" % i for i in range(4)])
        p = prune(env, "--keep-last", "1", "--json", backends=backends,
                  check=False)
        s3_left = json.loads(env.client("ls", "--remote", "--versions", "--json",
                                        backends=backends[2:4]).stdout)
    finally:
        proxy.close()
    assert p.returncode == 1
    assert "backend s3" in p.stderr and "InternalError" in p.stderr
    out = json_lines(p.stdout)
    for b in ("nfs", "gcs"):
        assert [x["removed"] for x in out if x["backend"] == b and
                x["action"] == "remove"] == [True] * 3
    failed = [x for x in out if x["backend"] == "s3" and x["action"] == "remove"]
    assert len(failed) == 3 and not any(x["removed"] for x in failed)
    assert all(x["error"] for x in failed)
    assert len(s3_left) == 4
    assert len(env.objects()) == 1
    for v in env.ls("--versions"):
        assert v["replicas"]["s3"]["state"] == "replicated"
        assert v["replicas"]["nfs"]["state"] == (
            "replicated" if v["name"] == "app-3.db" else "pruned")
    # Nothing left in flight: the next prune starts clean.
    db = env.cache / "catalog.db"
    rows = subprocess.run(["sqlite3", str(db),
                           "SELECT COUNT(*) FROM pruned WHERE state = 'removing'"],
                          capture_output=True, text=True).stdout.strip()
    assert rows == "0"


def test_plugin_without_remove_many(env, tmp_path):
    """A backend without remove_many (examples/minimal-backend, like every
    plugin built before the method existed) is pruned with one remove()
    per key."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    subprocess.run(["cc", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall",
                    "-Werror", "-I", str(ROOT / "include"), "-o",
                    str(plugins / "drgw-minimal.so"),
                    str(ROOT / "examples" / "minimal-backend" / "minimal.c")],
                   check=True)
    store = tmp_path / "store"
    store.mkdir()
    backends = ["--backend", "third=minimal://%s" % store]
    backup(env, backends, ["app-1.db", "app-2.db", "app-3.db"],
           "--plugin-dir", plugins)
    p = run("prune", "--cache", env.cache, "--key-file", env.key,
            "--plugin-dir", plugins, *backends, "--keep-last", "1", "--json")
    out = json_lines(p.stdout)
    assert [x["action"] for x in out] == ["remove", "remove", "keep"]
    assert sorted(p.name for p in store.rglob("*.drgw")) == \
        [out[-1]["version"] + ".drgw"]
