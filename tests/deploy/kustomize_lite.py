# SPDX-License-Identifier: MIT
"""The part of kustomize that deploy/kubernetes uses, for machines without
kubectl (Debian 12 packages no kustomize): resources (files and
kustomization directories), components (kind: Component, applied after the
resources and before the including kustomization's own generators and
transformers, as kustomize does), namespace, images, configMapGenerator
(files, literals, behavior create/replace/merge, labels) with
disableNameSuffixHash, and strategic-merge patches given by path (a null
value deletes the field).

Anything else in a kustomization.yaml is an error, so that deploy/ cannot
grow a feature this renderer silently ignores; where kubectl exists,
test_manifests.py checks that both render the same objects.
"""
import copy
from pathlib import Path

import yaml

KNOWN_FIELDS = {"apiVersion", "kind", "resources", "components", "namespace",
                "images", "configMapGenerator", "generatorOptions", "patches"}
# Strategic merge keys of the lists deploy/ patches (Kubernetes' patchMergeKey).
MERGE_KEYS = {"containers": "name", "initContainers": "name",
              "volumes": "name", "env": "name", "envFrom": None,
              "volumeMounts": "mountPath", "ports": "containerPort",
              "imagePullSecrets": "name"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding",
                  "CustomResourceDefinition", "PersistentVolume",
                  "StorageClass", "PriorityClass"}


class KustomizeError(Exception):
    pass


def _load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def _key(obj):
    return (obj.get("kind"), obj["metadata"]["name"])


def _merge(base, patch):
    """Strategic merge of patch into base (both plain YAML values)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out and k in MERGE_KEYS and MERGE_KEYS[k] \
                    and isinstance(v, list) and isinstance(out[k], list):
                out[k] = _merge_list(out[k], v, MERGE_KEYS[k])
            elif k in out:
                out[k] = _merge(out[k], v)
            else:
                out[k] = copy.deepcopy(v)
        return out
    return copy.deepcopy(patch)


def _merge_list(base, patch, key):
    """As kustomize orders it: the patch's items first (merged with the
    base's item of the same key), then the base's other items."""
    out, used = [], set()
    for item in patch:
        for i, cur in enumerate(base):
            if isinstance(cur, dict) and cur.get(key) == item.get(key):
                out.append(_merge(cur, item))
                used.add(i)
                break
        else:
            out.append(copy.deepcopy(item))
    return out + [copy.deepcopy(x) for i, x in enumerate(base) if i not in used]


def _configmap(gen, root, options):
    data = {}
    for entry in gen.get("files", []):
        key, _, rel = entry.rpartition("=")
        path = root / rel
        data[key or path.name] = path.read_text()
    for entry in gen.get("literals", []):
        key, sep, value = entry.partition("=")
        if not sep:
            raise KustomizeError(f"literal {entry!r} has no '='")
        data[key] = value
    meta = {"name": gen["name"]}
    labels = {**options.get("labels", {}),
              **gen.get("options", {}).get("labels", {})}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "data": data}


def _set_images(obj, images):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("containers", "initContainers") and isinstance(v, list):
                for c in v:
                    c["image"] = _new_image(c.get("image", ""), images)
            else:
                _set_images(v, images)
    elif isinstance(obj, list):
        for v in obj:
            _set_images(v, images)


def _new_image(image, images):
    name, tag = image, None
    if ":" in image.rsplit("/", 1)[-1]:
        name, tag = image.rsplit(":", 1)
    for im in images:
        if im["name"] == name:
            name = im.get("newName", name)
            tag = im.get("newTag", tag)
    return f"{name}:{tag}" if tag else name


def _load_kustomization(root, kind):
    k = yaml.safe_load((root / "kustomization.yaml").read_text())
    unknown = set(k) - KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{root}: fields not supported here: {sorted(unknown)}")
    if k.get("kind", "Kustomization") != kind:
        raise KustomizeError(f"{root}: a {k.get('kind')} where a {kind} belongs")
    return k


def render(directory):
    """The objects `kubectl kustomize DIRECTORY` would print."""
    root = Path(directory)
    return _build(root, _load_kustomization(root, "Kustomization"), [])


def _build(root, k, objs):
    """Applies kustomization (or component) k at root to objs."""
    objs = list(objs)
    for res in k.get("resources", []):
        path = root / res
        objs += render(path) if path.is_dir() else _load_docs(path)
    for comp in k.get("components", []):
        path = root / comp
        objs = _build(path, _load_kustomization(path, "Component"), objs)
    options = k.get("generatorOptions", {})
    for gen in k.get("configMapGenerator", []):
        cm = _configmap(gen, root, options)
        behavior = gen.get("behavior", "create")
        # A merge or replace keeps the generated object's name (and options).
        if behavior == "create" and not options.get("disableNameSuffixHash"):
            raise KustomizeError(f"{root}: name suffix hashes are not supported here")
        existing = [i for i, o in enumerate(objs) if _key(o) == _key(cm)]
        if behavior == "create":
            if existing:
                raise KustomizeError(f"ConfigMap {gen['name']} already exists")
            objs.append(cm)
        elif not existing:
            raise KustomizeError(f"ConfigMap {gen['name']}: nothing to {behavior}")
        elif behavior == "replace":
            # The data is replaced, the metadata (labels) kept.
            old = objs[existing[0]]
            cm["metadata"] = _merge(old["metadata"], cm["metadata"])
            objs[existing[0]] = cm
        elif behavior == "merge":
            objs[existing[0]] = _merge(objs[existing[0]], cm)
        else:
            raise KustomizeError(f"behavior {behavior!r}")
    for p in k.get("patches", []):
        if set(p) != {"path"}:
            raise KustomizeError(f"only patches with a path are supported: {p}")
        for patch in _load_docs(root / p["path"]):
            idx = [i for i, o in enumerate(objs) if _key(o) == _key(patch)]
            if len(idx) != 1:
                raise KustomizeError(f"patch {p['path']}: no single target {_key(patch)}")
            objs[idx[0]] = _merge(objs[idx[0]], patch)
    if "namespace" in k:
        for o in objs:
            if o["kind"] not in CLUSTER_SCOPED:
                o["metadata"]["namespace"] = k["namespace"]
    if "images" in k:
        for o in objs:
            _set_images(o, k["images"])
    return objs
