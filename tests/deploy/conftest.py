# SPDX-License-Identifier: MIT
"""Fixtures of the deploy suite: rendered kustomizations, the scripts the
pods run (taken from the rendered drgw-scripts ConfigMap, exactly what a pod
gets), and scratch worlds for running them against the real drgw.

The manifests are rendered with `kubectl kustomize` where kubectl exists,
else with kustomize_lite.py (see there).
"""
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import kustomize_lite

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEPLOY = ROOT / "deploy"
KUBE = DEPLOY / "kubernetes"
BUILD = Path(os.environ.get("DRGW_BUILD", ROOT / "build")).resolve()
DRGW = BUILD / "gateway" / "drgw"
PLUGINS = BUILD / "plugins"
NODE_MODULES = HERE / "node_modules"
SANITIZER_RE = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    r"WARNING: ThreadSanitizer|SUMMARY: UndefinedBehaviorSanitizer")

KUSTOMIZATIONS = ["base", "monitoring", "overlays/example",
                  "overlays/example-restricted"]
# Templates that are deliberately not part of any kustomization: objects,
# and a patch (validated applied to the object it patches).
EXAMPLES = sorted((KUBE / "base" / "examples").glob("*.yaml"))
EXAMPLE_PATCHES = [KUBE / "overlays" / "example" / "patch-static-credentials.yaml",
                   KUBE / "overlays" / "example" / "patch-symmetric-key.yaml"]


def kubectl_kustomize():
    """The kubectl to render with, or None (kustomize v4+ is needed)."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return None
    p = subprocess.run([kubectl, "version", "--client"], capture_output=True,
                       text=True)
    m = re.search(r"Kustomize Version: v(\d+)", p.stdout)
    return kubectl if m and int(m.group(1)) >= 4 else None


def render_kubectl(kubectl, directory):
    p = subprocess.run([kubectl, "kustomize", str(directory)],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory}: {p.stderr}")
    return [d for d in yaml.safe_load_all(p.stdout) if d]


@pytest.fixture(scope="session")
def rendered():
    """{kustomization: [objects]} for every kustomization under deploy/."""
    kubectl = kubectl_kustomize()
    out = {}
    for k in KUSTOMIZATIONS:
        d = KUBE / k
        out[k] = render_kubectl(kubectl, d) if kubectl else kustomize_lite.render(d)
    return out


def find(objs, kind, name):
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} objects"
    return hits[0]


def pod_spec(cronjob):
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.fixture(scope="session")
def scripts(rendered, tmp_path_factory):
    """The drgw-scripts ConfigMap of the base, written out as files: the
    directory a pod mounts at /scripts."""
    d = tmp_path_factory.mktemp("scripts")
    cm = find(rendered["base"], "ConfigMap", "drgw-scripts")
    kubelet_volume(d, {k: v.encode() for k, v in cm["data"].items()}, 0o644)
    return d


# --- the real drgw ---

def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def unmount(path):
    for cmd in (["fusermount3", "-u", str(path)], ["umount", "-l", str(path)]):
        if not is_mounted(path):
            return
        subprocess.run(cmd, capture_output=True)
        for _ in range(100):
            if not is_mounted(path):
                return
            time.sleep(0.05)


def check_sanitizers(text, what):
    """A sanitizer build's report in drgw's output fails the test."""
    m = SANITIZER_RE.search(text)
    if m:
        raise AssertionError(f"sanitizer report in {what}:\n"
                             f"{text[max(0, m.start() - 200):m.start() + 4000]}")


def drgw_commands():
    p = subprocess.run([str(DRGW), "--help"], capture_output=True, text=True)
    return set(re.findall(r"^  ([a-z]+)  ", p.stdout, re.M))


def require_drgw():
    """Skips without root and /dev/fuse; fails without the drgw commands
    the scripts use."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("needs root and /dev/fuse")
    if not DRGW.exists():
        pytest.fail(f"{DRGW} not found: build first (DRGW_BUILD)")
    missing = {"run", "drill", "status", "keygen", "ls"} - drgw_commands()
    if missing:
        pytest.fail(f"{DRGW} has no command {', '.join(sorted(missing))} yet")


def kubelet_volume(directory, files, mode):
    """A Secret or ConfigMap volume as the kubelet writes it: each NAME is a
    symlink to ..data/NAME, ..data a symlink to a timestamped directory
    holding the files with the volume's defaultMode."""
    ts = directory / "..2026_01_01_00_00_00.000000001"
    ts.mkdir(parents=True)
    for name, content in files.items():
        (ts / name).write_bytes(content)
        os.chmod(ts / name, mode)
        os.symlink(f"..data/{name}", directory / name)
    os.symlink(ts.name, directory / "..data")


def parse_conf(text):
    """drgw.conf as {section: [(key, value)]} (keys may repeat)."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[(.+)\]", line)
        if m:
            section = m.group(1)
            out.setdefault(section, [])
            continue
        key, sep, value = line.partition("=")
        assert sep and section, f"bad line in drgw.conf: {line!r}"
        out[section].append((key.strip(), value.strip()))
    return out


# The settings a world sets itself: short timings, JSON logs.
WORLD_SETTINGS = {"settle-delay": "0.2s", "retry-min": "0.2s",
                  "retry-max": "1s", "drain-timeout": "30s",
                  "log-format": "json"}


def world_config(shipped, confdir, cache, remotes, drop=()):
    """The shipped drgw.conf as a world of directories reads it: its [drgw]
    settings, with the ConfigMap's /etc/drgw/ at confdir and the cache at
    cache, WORLD_SETTINGS, no retention policy (the tests set their own)
    and none of `drop`; its backends replaced by local directories.  Any
    other path (an identity or key file, say) is kept as it is, so a
    setting that needs a Secret the pod does not mount fails here too."""
    lines = ["# the shipped drgw.conf in a test world", "[drgw]",
             f"plugin-dir = {PLUGINS}"]
    for key, value in parse_conf(shipped)["drgw"]:
        if key in WORLD_SETTINGS or key in drop or key.startswith("keep-"):
            continue
        if key == "cache":
            value = str(cache)
        elif value.startswith("/etc/drgw/"):
            value = f"{confdir}/{value[len('/etc/drgw/'):]}"
        lines.append(f"{key} = {value}")
    lines += [f"{k} = {v}" for k, v in WORLD_SETTINGS.items()]
    for name, path in remotes.items():
        lines += [f'[backend "{name}"]', f"url = local://{path}"]
    return "\n".join(lines) + "\n"


def script_env(cronjobs, script, mounts):
    """What the CronJob running /scripts/SCRIPT sets for drgw's keys, with
    its volume paths moved to the world's (mounts: {pod path: world path}).
    Only DRGW_IDENTITY_DIR matters to the scripts."""
    for cj in cronjobs:
        (c,) = pod_spec(cj)["containers"]
        if c["command"] == ["/bin/sh", f"/scripts/{script}"]:
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            if env.get("DRGW_IDENTITY_DIR"):
                return {"DRGW_IDENTITY_DIR": mounts[env["DRGW_IDENTITY_DIR"]]}
            return {}
    raise AssertionError(f"no CronJob runs {script}")


class World:
    """A cluster in directories: the app's data volume, the cache volume, the
    drgw-config ConfigMap (the shipped drgw.conf with this world's paths,
    and the recipients), the Secret drgw-identity, two local backends,
    mount points.  Each script gets the key settings of the CronJob that
    runs it, from the rendered manifests: write-only keys in the base, so
    the backup gets no identity; with symmetric=True the Secret holds a
    master key and overlays/example/patch-symmetric-key.yaml is applied."""

    def __init__(self, tmp, scripts, rendered_base, symmetric=False):
        self.tmp = tmp
        self.scripts = scripts
        self.data = tmp / "data"
        self.data.mkdir()
        self.cache = tmp / "cache"
        self.backup = tmp / "backup"
        self.restore = tmp / "restore"
        self.remotes = {"primary": tmp / "remote-a", "second": tmp / "remote-b"}
        for r in self.remotes.values():
            r.mkdir()
        self.cronjobs = [o for o in rendered_base if o["kind"] == "CronJob"]
        self.shipped = find(rendered_base, "ConfigMap", "drgw-config")["data"]
        # The operator's files, outside the cluster: an identity, whose
        # recipient the ConfigMap holds, and (symmetric) a master key.
        self.offline = tmp / "offline"
        self.offline.mkdir()
        self.identity = self.offline / "restore.identity"
        self.recipient = subprocess.run(
            [str(DRGW), "keygen", "--identity", str(self.identity)], check=True,
            capture_output=True, text=True).stdout.strip()
        self.master_key = self.offline / "drgw.key"
        subprocess.run([str(DRGW), "keygen", str(self.master_key)], check=True,
                       capture_output=True)
        self.symmetric = None
        self.config = tmp / "etc-drgw" / "drgw.conf"
        self.secret = tmp / "etc-drgw-identity"
        self.mounts = [self.backup, self.restore]
        self.layout(symmetric)

    def layout(self, symmetric, secret=None):
        """(Re)creates the ConfigMap and Secret volumes: write-only keys, or
        the symmetric variant; secret: the Secret's items (default: the
        identity, or the master key as master.key)."""
        if symmetric:
            patch = yaml.safe_load((KUBE / "overlays" / "example" /
                                    "patch-symmetric-key.yaml").read_text())
            cronjobs = [kustomize_lite._merge(o, patch) if o["metadata"]["name"]
                        == patch["metadata"]["name"] else o for o in self.cronjobs]
            drop = ("recipient-file",)
            secret = secret or {"master.key": self.master_key.read_bytes()}
        else:
            cronjobs, drop = self.cronjobs, ()
            secret = secret or {"identity": self.identity.read_bytes()}
        self.symmetric = symmetric
        for d in (self.config.parent, self.secret):
            shutil.rmtree(d, ignore_errors=True)
        self.config_drop = drop
        files = {"drgw.conf": self.config_text().encode(),
                 "recipients": f"# test world\n{self.recipient}\n".encode()}
        kubelet_volume(self.config.parent, files, 0o644)
        kubelet_volume(self.secret, secret, 0o400)
        self.secret_items = sorted(secret)
        mounts = {"/etc/drgw-identity": str(self.secret)}
        self.job_env = {s: script_env(cronjobs, s, mounts) for s in
                        ("backup.sh", "restore.sh", "drill.sh", "prune.sh")}

    def config_text(self):
        """The shipped drgw.conf with this world's paths and local backends."""
        return world_config(self.shipped["drgw.conf"], self.config.parent,
                            self.cache, self.remotes, self.config_drop)

    def decrypt_args(self):
        """drgw's options that read the backups, made from the Secret as
        identity.sh makes them."""
        out = []
        for name in self.secret_items:
            out += ["--key-file" if name.endswith(".key") else "--identity",
                    str(self.secret / name)]
        return out

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRGW")}
        env.update({
            "DRGW": str(DRGW),
            "DRGW_CONFIG": str(self.config),
            "DATA_DIR": str(self.data),
            "BACKUP_DIR": str(self.backup),
            "RESTORE_DIR": str(self.restore),
            "RESTORE_CACHE": str(self.tmp / "restore-cache"),
            "DRILL_CACHE": str(self.tmp / "drill-cache"),
            "TMPDIR": str(self.tmp),
            "DRGW_DRAIN_TIMEOUT": "60s",
        })
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def sh(self, script, timeout=120, **extra):
        """Runs /bin/sh SCRIPT as its CronJob's pod does; returns the
        CompletedProcess."""
        env = self.env(**{**self.job_env.get(script, {}), **extra})
        p = subprocess.run(["/bin/sh", str(self.scripts / script)],
                           env=env, capture_output=True,
                           text=True, timeout=timeout)
        check_sanitizers(p.stderr, script)
        return p

    def objects(self, backend):
        return sorted(p for p in self.remotes[backend].rglob("*.drgw") if p.is_file())

    def cleanup(self):
        for m in self.mounts:
            unmount(m)
