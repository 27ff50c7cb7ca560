"""Kubernetes YAML in, the same YAML with sidecars out.

Every object that carries a pod template is injected (`pod.py`): Pods,
Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers,
Jobs and CronJobs, also inside a `v1 List`. Every other document comes out
as it went in. Documents keep their order and their keys keep theirs;
comments are not kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from xds_server.inject.options import InjectOptions
from xds_server.inject.pod import inject_template
from xds_server.sources.documents import read_documents
from xds_server.sources.parse import describe

# (apiVersion, kind) -> where the pod template is in the object.
TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("v1", "Pod"): (),
    ("v1", "ReplicationController"): ("spec", "template"),
    ("apps/v1", "Deployment"): ("spec", "template"),
    ("apps/v1", "StatefulSet"): ("spec", "template"),
    ("apps/v1", "DaemonSet"): ("spec", "template"),
    ("apps/v1", "ReplicaSet"): ("spec", "template"),
    ("batch/v1", "Job"): ("spec", "template"),
    ("batch/v1", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}


class InjectError(ValueError):
    """Input that cannot be injected; the message names the document and what is wrong."""


@dataclass
class Injection:
    documents: list[object] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # per workload: injected, or why not


def inject_object(obj: object, opts: InjectOptions, injection: Injection) -> object:
    """`obj` with its pod template injected; anything else unchanged."""
    if not isinstance(obj, Mapping):
        return obj
    if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        return {**obj, "items": [inject_object(i, opts, injection) for i in obj["items"]]}
    path = TEMPLATES.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
    if path is None:
        return obj
    what = describe(obj)
    out: dict[str, Any] = dict(obj)
    parent: dict[str, Any] | None = None
    node: Any = out
    for key in path:
        child = node.get(key) if isinstance(node, Mapping) else None
        if not isinstance(child, Mapping):
            injection.notes.append(f"{what}: left alone (it has no {'.'.join(path)})")
            return obj
        node[key] = dict(child)
        parent, node = node, node[key]
    try:
        result = inject_template(node, opts)
    except ValueError as e:
        raise InjectError(f"{what}: {e}") from None
    if parent is None:
        out = {**out, **result.template}
    else:
        parent[path[-1]] = result.template
    if result.skipped:
        injection.notes.append(f"{what}: left alone ({result.skipped})")
        return obj
    injection.notes.append(f"{what}: injected")
    return out


def inject_text(text: str, opts: InjectOptions, source: str = "<stdin>") -> tuple[str, list[str]]:
    """The YAML text with every workload injected, and a note per workload."""
    documents, problems = read_documents(text)
    if problems:
        first = problems[0]
        raise InjectError(f"{source}:{first.line}: document {first.document}: {first.message}")
    injection = Injection()
    for document in documents:
        try:
            injection.documents.append(inject_object(document.data, opts, injection))
        except InjectError as e:
            raise InjectError(f"{source}: document {document.number}: {e}") from None
    output = yaml.dump_all(
        injection.documents, Dumper=_Dumper, sort_keys=False, explicit_start=True
    )
    return output, injection.notes


class _Dumper(yaml.SafeDumper):
    """Writes repeated values out in full: manifests read better without YAML anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
