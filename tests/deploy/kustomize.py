"""A small Kustomize, enough for deploy/: resources, images, replicas and JSON 6902 patches.

The tests render the overlays with it, so they run where kubectl is not
installed; where it is, they check that `kubectl kustomize` agrees. A
kustomization that uses anything else fails here, by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

KNOWN = {"apiVersion", "kind", "resources", "images", "replicas", "patches"}
SCALABLE = {"Deployment", "StatefulSet", "ReplicaSet"}


def build(directory: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN
    assert not unknown, f"{directory}: this renderer does not know {sorted(unknown)}"
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            objects += build(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for image in kustomization.get("images", []):
        _set_image(objects, image)
    for replicas in kustomization.get("replicas", []):
        targets = [o for o in objects if o["kind"] in SCALABLE]
        targets = [o for o in targets if o["metadata"]["name"] == replicas["name"]]
        assert targets, f"{directory}: replicas for {replicas['name']!r} match nothing"
        for target in targets:
            target["spec"]["replicas"] = replicas["count"]
    for patch in kustomization.get("patches", []):
        wanted = patch["target"]
        targets = [
            o
            for o in objects
            if o["kind"] == wanted["kind"] and o["metadata"]["name"] == wanted["name"]
        ]
        assert targets, f"{directory}: a patch's target {wanted} matches nothing"
        for target in targets:
            for operation in yaml.safe_load(patch["patch"]):
                _apply(target, operation)
    return objects


def _set_image(objects: list[dict[str, Any]], image: dict[str, str]) -> None:
    found = False
    for obj in objects:
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            name, _, _ = container["image"].partition(":")
            if name == image["name"]:
                found = True
                new_name = image.get("newName", name)
                container["image"] = (
                    f"{new_name}:{image['newTag']}" if "newTag" in image else (new_name)
                )
    assert found, f"image {image['name']!r} matches no container"


def _apply(target: dict[str, Any], operation: dict[str, Any]) -> None:
    *parents, last = [
        p.replace("~1", "/").replace("~0", "~") for p in operation["path"][1:].split("/")
    ]
    node: Any = target
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    op = operation["op"]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op == "add":
            node.insert(index, operation["value"])
        elif op == "replace":
            node[index] = operation["value"]
        elif op == "remove":
            del node[index]
        else:
            raise AssertionError(f"unknown operation {op!r}")
        return
    if op in ("add", "replace"):
        assert op == "add" or last in node, f"replace of a missing {operation['path']}"
        node[last] = operation["value"]
    elif op == "remove":
        del node[last]
    else:
        raise AssertionError(f"unknown operation {op!r}")
