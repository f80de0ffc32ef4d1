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
EXAMPLE_PATCHES = [KUBE / "overlays" / "example" / "patch-static-credentials.yaml"]


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


class World:
    """A cluster in directories: the app's data volume, the cache volume, the
    key Secret, the config ConfigMap, two local backends, mount points."""

    def __init__(self, tmp, scripts):
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
        # The key and the config as the kubelet lays out Secret and
        # ConfigMap volumes: symlinks into a timestamped directory.
        self.key = tmp / "etc-drgw-key" / "key"
        keyfile = tmp / "drgw.key"
        subprocess.run([str(DRGW), "keygen", str(keyfile)], check=True,
                       capture_output=True)
        kubelet_volume(self.key.parent, {"key": keyfile.read_bytes()}, 0o400)
        self.config = tmp / "etc-drgw" / "drgw.conf"
        kubelet_volume(self.config.parent,
                       {"drgw.conf": self.config_text().encode()}, 0o644)
        self.mounts = [self.backup, self.restore]

    def config_text(self):
        """The base drgw.conf with this world's paths and local backends."""
        lines = [f"# test world {self.tmp}", "[drgw]",
                 f"cache = {self.cache}", f"key-file = {self.key}",
                 f"plugin-dir = {PLUGINS}", "settle-delay = 0.2s",
                 "retry-min = 0.2s", "retry-max = 1s", "drain-timeout = 30s",
                 "log-format = json"]
        for name, path in self.remotes.items():
            lines += [f'[backend "{name}"]', f"url = local://{path}"]
        return "\n".join(lines) + "\n"

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
        """Runs /bin/sh SCRIPT as a pod does; returns the CompletedProcess."""
        p = subprocess.run(["/bin/sh", str(self.scripts / script)],
                           env=self.env(**extra), capture_output=True,
                           text=True, timeout=timeout)
        check_sanitizers(p.stderr, script)
        return p

    def objects(self, backend):
        return sorted(p for p in self.remotes[backend].rglob("*.drgw") if p.is_file())

    def cleanup(self):
        for m in self.mounts:
            unmount(m)
