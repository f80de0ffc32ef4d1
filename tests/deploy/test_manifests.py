# SPDX-License-Identifier: MIT
"""deploy/kubernetes: the kustomizations render, lint clean, validate
against the Kubernetes JSON schemas (and no unknown field anywhere), and the
objects keep the rules that make drgw work in a pod: FUSE rights,
write-only keys (the backup holds only recipients, the jobs that decrypt
mount the identity with a file mode drgw accepts), a drain that fits the
grace period, the cache on a volume.
"""
import json
import re
import shutil
import subprocess

import pytest
import yaml

import kustomize_lite
from conftest import (DEPLOY, DRGW, EXAMPLE_PATCHES, EXAMPLES, KUBE,
                      KUSTOMIZATIONS, NODE_MODULES, check_sanitizers,
                      find, kubectl_kustomize, parse_conf, pod_spec,
                      render_kubectl, world_config)

JOBS = {"drgw-backup": "backup.sh", "drgw-restore": "restore.sh",
        "drgw-drill": "drill.sh", "drgw-prune": "prune.sh"}
# The jobs that decrypt, and so mount the identity; the backup does not.
DECRYPTING = ("drgw-restore", "drgw-drill", "drgw-prune")
# Each job's cloud identity: writer, reader, pruner.
SERVICE_ACCOUNTS = {"drgw-backup": "drgw", "drgw-restore": "drgw-restore",
                    "drgw-drill": "drgw-restore", "drgw-prune": "drgw-pruner"}


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} not installed: run scripts/install-deps")
    return path


def duration_s(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", text)
    assert m, f"bad duration {text!r}"
    mult = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}
    return int(m.group(1)) * mult[m.group(2)]


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def mounts_of(container):
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def volumes_of(spec):
    return {v["name"]: v for v in spec.get("volumes", [])}


# --- lint, render, schemas ---

def test_yamllint():
    p = subprocess.run([tool("yamllint"), "-s", "-c", str(DEPLOY / ".yamllint"),
                        str(DEPLOY)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_kustomizations_render(rendered):
    kinds = {k: sorted((o["kind"], o["metadata"]["name"]) for o in objs)
             for k, objs in rendered.items()}
    assert kinds["base"] == sorted([
        ("ServiceAccount", "drgw"), ("ServiceAccount", "drgw-pruner"),
        ("ServiceAccount", "drgw-restore"),
        ("PersistentVolumeClaim", "drgw-cache"),
        ("ConfigMap", "drgw-config"), ("ConfigMap", "drgw-scripts"),
        ("ConfigMap", "drgw-env"), ("CronJob", "drgw-backup"),
        ("CronJob", "drgw-restore"), ("CronJob", "drgw-drill"),
        ("CronJob", "drgw-prune")])
    assert kinds["monitoring"] == [("PrometheusRule", "drgw")]
    assert kinds["overlays/example"] == sorted(kinds["base"] + kinds["monitoring"])
    assert kinds["overlays/example-restricted"] == kinds["overlays/example"]


def test_lite_renderer_matches_kubectl():
    """kustomize_lite (for machines without kubectl) renders what kubectl does."""
    kubectl = kubectl_kustomize()
    if not kubectl:
        pytest.skip("no kubectl with kustomize v4+ to compare with")

    def keyed(objs):
        return {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
                for o in objs}
    for k in KUSTOMIZATIONS:
        assert keyed(kustomize_lite.render(KUBE / k)) == \
            keyed(render_kubectl(kubectl, KUBE / k)), k


def test_schemas(rendered, tmp_path):
    """Every object, rendered or template, against the Kubernetes JSON
    schemas, strictly (tests/deploy/validate.js)."""
    if not (NODE_MODULES / "kubernetes-models").is_dir():
        pytest.fail(f"{NODE_MODULES} missing: run scripts/install-deps "
                    "(npm ci in tests/deploy)")
    objs = [o for k in KUSTOMIZATIONS for o in rendered[k]]
    for path in EXAMPLES:
        objs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for path in EXAMPLE_PATCHES:
        for patch in yaml.safe_load_all(path.read_text()):
            target = find(rendered["base"], patch["kind"], patch["metadata"]["name"])
            objs.append(kustomize_lite._merge(target, patch))
    (tmp_path / "objects.json").write_text(json.dumps(objs))
    p = subprocess.run([tool("node"), str(NODE_MODULES.parent / "validate.js"),
                        str(tmp_path / "objects.json")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{len(objs)} objects, 0 problems" in p.stdout


# --- what the base must keep ---

def test_base_is_namespace_agnostic_and_labelled(rendered):
    for o in rendered["base"]:
        assert "namespace" not in o["metadata"], o["metadata"]
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "drgw"


def test_no_secret_is_applied(rendered):
    """Re-applying the manifests must never replace the identity (or put a
    placeholder credential into the cluster)."""
    for k in KUSTOMIZATIONS:
        assert not [o for o in rendered[k] if o["kind"] == "Secret"], k


def project_version():
    text = (DEPLOY.parent / "meson.build").read_text()
    return re.search(r"version\s*:\s*'([^']+)'", text).group(1)


def test_containers_run_their_script(rendered):
    base = rendered["base"]
    version = project_version()
    scripts = find(base, "ConfigMap", "drgw-scripts")["data"]
    assert set(JOBS.values()) | {"push-metrics.sh", "copy-key.sh",
                                 "identity.sh", "forward.sh"} == set(scripts)
    for name, script in JOBS.items():
        spec = pod_spec(find(base, "CronJob", name))
        (c,) = spec["containers"]
        assert c["command"] == ["/bin/sh", f"/scripts/{script}"]
        assert "args" not in c
        assert mounts_of(c)["/scripts"]["name"] == "scripts"
        assert volumes_of(spec)["scripts"]["configMap"]["name"] == "drgw-scripts"
        assert spec["restartPolicy"] == "Never"
        assert spec["serviceAccountName"] == SERVICE_ACCOUNTS[name]
        assert c["image"] == f"drgw:{version}", "the base image: drgw:<project version>"


def secret_volumes(spec):
    """{volume name: secretName} of a pod."""
    return {v["name"]: v["secret"]["secretName"] for v in spec.get("volumes", [])
            if "secret" in v}


def test_write_only_keys(rendered):
    """The backup gets only the public recipients, from the drgw-config
    ConfigMap, and no Secret at all; restore, drill and prune mount the
    identity Secret as 0400 files (no fsGroup, which would make them
    0440: drgw refuses them) and find it through DRGW_IDENTITY_DIR."""
    for k in ("base", "overlays/example"):
        objs = rendered[k]
        cm = find(objs, "ConfigMap", "drgw-config")["data"]
        conf = parse_conf(cm["drgw.conf"])
        settings = dict(conf["drgw"])
        assert settings["cache"] == "/var/lib/drgw"
        # Nothing secret in the config all four jobs read.
        assert not {"key-file", "identity"} & set(settings), k
        assert settings["recipient-file"] == "/etc/drgw/recipients"
        assert "recipients" in cm, "the recipients are in the ConfigMap"
        backends = [s for s in conf if s.startswith("backend ")]
        assert backends, "a backend is configured"
        assert "DRGW_IDENTITY_DIR" not in find(objs, "ConfigMap", "drgw-env")["data"]
        for name in JOBS:
            spec = pod_spec(find(objs, "CronJob", name))
            (c,) = spec["containers"]
            mounts, vols, env = mounts_of(c), volumes_of(spec), env_of(c)
            assert env["DRGW_CONFIG"] == "/etc/drgw/drgw.conf"
            assert vols[mounts["/etc/drgw"]["name"]]["configMap"]["name"] == "drgw-config"
            assert "fsGroup" not in spec.get("securityContext", {})
            if name not in DECRYPTING:
                assert secret_volumes(spec) == {}, f"{k} {name}: no Secret"
                assert "DRGW_IDENTITY_DIR" not in env
                continue
            ident = mounts[env["DRGW_IDENTITY_DIR"]]
            assert ident.get("readOnly") is True
            secret = vols[ident["name"]]["secret"]
            assert secret["secretName"] == "drgw-identity"
            assert secret["defaultMode"] == 0o400
            assert "items" not in secret or all(i.get("mode", 0o400) == 0o400
                                                for i in secret["items"])
            assert secret_volumes(spec) == {ident["name"]: "drgw-identity"}


def test_symmetric_key_patch(rendered):
    """overlays/example/patch-symmetric-key.yaml, the documented symmetric
    variant: applied, the backup also mounts the Secret (0400) and passes
    its files; nothing else changes."""
    (patch,) = list(yaml.safe_load_all(
        (KUBE / "overlays/example/patch-symmetric-key.yaml").read_text()))
    base = find(rendered["base"], "CronJob", "drgw-backup")
    spec = pod_spec(kustomize_lite._merge(base, patch))
    (c,) = spec["containers"]
    ident = mounts_of(c)[env_of(c)["DRGW_IDENTITY_DIR"]]
    assert volumes_of(spec)[ident["name"]]["secret"] == \
        {"secretName": "drgw-identity", "defaultMode": 0o400}
    restore = pod_spec(find(rendered["base"], "CronJob", "drgw-restore"))
    (rc,) = restore["containers"]
    assert env_of(rc)["DRGW_IDENTITY_DIR"] == env_of(c)["DRGW_IDENTITY_DIR"]


def run_drgw(*args, check=True):
    p = subprocess.run([str(DRGW), *map(str, args)], capture_output=True,
                       text=True, timeout=120)
    check_sanitizers(p.stderr, "drgw")
    if check:
        assert p.returncode == 0, p.stderr
    return p


@pytest.mark.parametrize("k", ["base", "overlays/example"])
def test_shipped_config_with_drgw(rendered, k, tmp_path):
    """The rendered drgw-config through the real drgw: as shipped, the
    placeholder recipients stop the backup with one clear line; with real
    recipients in their place (one per placeholder) a backup needs no
    secret, and each identity alone restores it."""
    if not DRGW.exists():
        pytest.fail(f"{DRGW} not built")
    cm = find(rendered[k], "ConfigMap", "drgw-config")["data"]
    placeholders = [line.split("#")[0].strip() for line in cm["recipients"].splitlines()
                    if line.split("#")[0].strip()]
    assert placeholders and all(x.startswith("REPLACE-WITH-") for x in placeholders)
    confdir, cache, remote = tmp_path / "etc-drgw", tmp_path / "cache", tmp_path / "remote"
    confdir.mkdir()
    remote.mkdir()
    conf = confdir / "drgw.conf"
    conf.write_text(world_config(cm["drgw.conf"], confdir, cache, {"b": remote}))
    (confdir / "recipients").write_text(cm["recipients"])
    files = tmp_path / "files"
    files.mkdir()
    backup = ["run", "--config", conf, "--no-mount", "--dir", files, "--", "sh", "-c",
              f"head -c 100000 /dev/urandom > {files}/app-1.db"]
    p = run_drgw(*backup, check=False)
    assert p.returncode == 1
    assert f"'{placeholders[0]}' is not a drgw recipient" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not list(remote.rglob("*.drgw"))

    text = cm["recipients"]
    identities = []
    for i, placeholder in enumerate(placeholders):
        ident = tmp_path / f"id{i}"
        text = text.replace(placeholder, run_drgw("keygen", "--identity", ident).stdout.strip())
        identities.append(ident)
    (confdir / "recipients").write_text(text)
    run_drgw(*backup)
    assert len(list(remote.glob("*.drgw"))) == 1
    want = (files / "app-1.db").read_bytes()
    p = run_drgw("restore", "--config", conf, "--cache", tmp_path / "wc", "app-1.db",
                 tmp_path / "x", check=False)
    assert p.returncode == 1 and "needs the identity" in p.stderr
    for ident in identities:
        out = tmp_path / f"restored-{ident.name}"
        run_drgw("restore", "--config", conf, "--identity", ident, "--cache",
                 tmp_path / f"c-{ident.name}", "app-1.db", out)
        assert out.read_bytes() == want


def test_config_settings_are_known():
    """Every [drgw] setting of the shipped configs is a drgw option (a typo
    would stop every job)."""
    if not DRGW.exists():
        pytest.skip(f"{DRGW} not built")
    known = set()
    for cmd in ("mount", "run", "drill", "prune"):
        p = subprocess.run([str(DRGW), cmd, "--help"], capture_output=True, text=True)
        known |= set(re.findall(r"^\s+--([a-z][a-z-]+)", p.stdout, re.M))
    for conf in (KUBE / "base" / "drgw.conf", KUBE / "overlays/example/drgw.conf"):
        sections = parse_conf(conf.read_text())
        unknown = {key for key, _ in sections["drgw"]} - known
        assert "recipient-file" in known
        assert not unknown, f"{conf}: unknown settings {unknown}"
        for s, items in sections.items():
            if s.startswith("backend "):
                assert dict(items)["url"].split("://")[0] in ("s3", "gcs", "local")


def test_backup_cronjob(rendered):
    cj = find(rendered["base"], "CronJob", "drgw-backup")
    spec, job = cj["spec"], cj["spec"]["jobTemplate"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert len(spec["schedule"].split()) == 5
    assert job["backoffLimit"] >= 1
    assert job["activeDeadlineSeconds"] > 0
    pod = pod_spec(cj)
    (c,) = pod["containers"]
    env = env_of(c)
    # SIGTERM: drgw run passes it on (the command gets up to 30 s), then
    # drains for DRGW_DRAIN_TIMEOUT, all inside the grace period.
    assert pod["terminationGracePeriodSeconds"] >= duration_s(env["DRGW_DRAIN_TIMEOUT"]) + 60
    assert c["securityContext"]["privileged"] is True
    mounts, vols = mounts_of(c), volumes_of(pod)
    assert vols[mounts["/var/lib/drgw"]["name"]]["persistentVolumeClaim"]["claimName"] == "drgw-cache"
    data = mounts[env["DATA_DIR"]]
    assert vols[data["name"]]["persistentVolumeClaim"]["claimName"] == "app-data"
    assert not data.get("readOnly"), "sqlite3 .backup needs the -shm and locks"
    assert env["BACKUP_DIR"] not in mounts, "the FUSE mount goes on a plain directory"
    port = env["DRGW_METRICS_LISTEN"].rsplit(":", 1)[1]
    assert {"name": "metrics", "containerPort": int(port)} in c["ports"]
    assert {e["configMapRef"]["name"] for e in c["envFrom"]} == {"drgw-env"}
    rules = job["podFailurePolicy"]["rules"]
    assert any(r["action"] == "FailJob" and 2 in r["onExitCodes"]["values"] for r in rules)
    # Backed up but not pruned (4): another backup would not help.
    assert any(r["action"] == "FailJob" and 4 in r["onExitCodes"]["values"] for r in rules)


def test_retention(rendered):
    """The backup cannot prune (it cannot read the objects' names and
    times), so the base prunes in the prune CronJob: daily after the backup,
    unprivileged, with a cloud identity of its own and the drgw identity."""
    base = rendered["base"]
    env = find(base, "ConfigMap", "drgw-env")["data"]
    assert env["DRGW_PRUNE"] == "off"
    conf = parse_conf(find(base, "ConfigMap", "drgw-config")["data"]["drgw.conf"])
    policy = {k: int(v) for k, v in conf["drgw"] if k.startswith("keep-")}
    assert policy and all(v > 0 for v in policy.values())
    cj = find(base, "CronJob", "drgw-prune")
    assert cj["spec"]["suspend"] is False
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    backup_hour = int(find(base, "CronJob", "drgw-backup")["spec"]["schedule"].split()[1])
    assert int(cj["spec"]["schedule"].split()[1]) > backup_hour, "after the backup"
    pod = pod_spec(cj)
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert not sc.get("privileged") and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    env, mounts, vols = env_of(c), mounts_of(c), volumes_of(pod)
    assert "emptyDir" in vols[mounts[env["PRUNE_CACHE"]]["name"]]
    rules = cj["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    assert any(r["action"] == "FailJob" and 2 in r["onExitCodes"]["values"] for r in rules)
    # The example overlay binds three roles: writer, reader, pruner.
    objs = rendered["overlays/example"]
    assert find(objs, "ConfigMap", "drgw-env")["data"]["DRGW_PRUNE"] == "off"
    assert find(objs, "CronJob", "drgw-prune")["spec"]["suspend"] is False
    for ann in ("eks.amazonaws.com/role-arn", "iam.gke.io/gcp-service-account"):
        roles = {find(objs, "ServiceAccount", n)["metadata"]["annotations"][ann]
                 for n in set(SERVICE_ACCOUNTS.values())}
        assert len(roles) == 3, ann


def test_restore_is_a_template_only(rendered):
    """The restore must never run by itself: a suspended CronJob with an
    impossible schedule, used with kubectl create job --from."""
    cj = find(rendered["base"], "CronJob", "drgw-restore")
    assert cj["spec"]["suspend"] is True
    minute, hour, dom, month, dow = cj["spec"]["schedule"].split()
    assert (dom, month) == ("31", "2")
    job = cj["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = pod_spec(cj)
    (c,) = pod["containers"]
    env, mounts, vols = env_of(c), mounts_of(c), volumes_of(pod)
    assert c["securityContext"]["privileged"] is True
    # An empty cache: what a brand-new cluster has.
    assert "emptyDir" in vols[mounts[env["RESTORE_CACHE"]]["name"]]
    assert "/var/lib/drgw" not in mounts
    data = mounts[env["DATA_DIR"]]
    assert vols[data["name"]]["persistentVolumeClaim"]["claimName"] == "app-data"
    assert env["RESTORE_DIR"] not in mounts


def test_drill_cronjob_is_unprivileged(rendered):
    cj = find(rendered["base"], "CronJob", "drgw-drill")
    minute, hour, dom, month, dow = cj["spec"]["schedule"].split()
    assert dom.isdigit() and month == "*" and dow == "*", "monthly"
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    pod = pod_spec(cj)
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert not sc.get("privileged") and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["readOnlyRootFilesystem"] is True
    env, mounts, vols = env_of(c), mounts_of(c), volumes_of(pod)
    scratch = mounts[env["DRILL_CACHE"]]
    assert "emptyDir" in vols[scratch["name"]]
    assert env["TMPDIR"].startswith(env["DRILL_CACHE"] + "/"), \
        "a read-only root: the scratch space is on the volume"


def test_no_secret_literals(rendered):
    """Credentials only by reference: no env value, literal or ConfigMap
    entry named like a secret."""
    secretish = re.compile(r"SECRET|TOKEN|PASSWORD|ACCESS_KEY|PRIVATE|CREDENTIAL", re.I)
    objs = [o for k in KUSTOMIZATIONS for o in rendered[k]]
    for path in EXAMPLE_PATCHES:
        objs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for o in objs:
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "drgw-env":
            assert not [k for k in o["data"] if secretish.search(k)]
        if o["kind"] != "CronJob":
            continue
        for c in pod_spec(o)["containers"]:
            for e in c.get("env", []):
                if secretish.search(e["name"]) and e["name"] != "GOOGLE_APPLICATION_CREDENTIALS":
                    assert "secretKeyRef" in e.get("valueFrom", {}), e


def test_overlay_example(rendered):
    objs = rendered["overlays/example"]
    assert {o["metadata"].get("namespace") for o in objs} == {"myapp"}
    ann = find(objs, "ServiceAccount", "drgw")["metadata"]["annotations"]
    assert ann["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert ann["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")
    conf = parse_conf(find(objs, "ConfigMap", "drgw-config")["data"]["drgw.conf"])
    urls = {dict(v)["url"].split("://")[0] for s, v in conf.items() if s.startswith("backend ")}
    assert urls == {"s3", "gcs"}
    env = find(objs, "ConfigMap", "drgw-env")["data"]
    assert env["DRGW_PUSHGATEWAY_URL"].startswith("http")
    assert env["KEEP_LOCAL"] == "7", "merged, not replaced"
    for name in JOBS:
        (c,) = pod_spec(find(objs, "CronJob", name))["containers"]
        assert c["image"] == "registry.example.com/drgw:0.1.0"


def test_prometheus_rule_alerts(rendered):
    rule = find(rendered["monitoring"], "PrometheusRule", "drgw")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]
              if "alert" in r}
    assert {"DrgwRPOTooOld", "DrgwBackendDown", "DrgwReplicationErrors",
            "DrgwReplicationBacklog", "DrgwDrillFailed",
            "DrgwDrillStale", "DrgwPruneFailing",
            "DrgwNewestOlderThanRetention"} <= set(alerts)
    for a in alerts.values():
        assert a["labels"]["severity"] in ("critical", "warning")
        assert a["annotations"]["summary"] and a["annotations"]["description"]
