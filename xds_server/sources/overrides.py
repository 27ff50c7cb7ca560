"""Raw Envoy resources that replace or add to the translation (`--xds-overrides DIR`).

For what the model cannot express yet (and for the conformance suite, which
must also be able to hand a data plane a config it should reject), a folder
of YAML documents, each one Envoy v3 resource in protobuf JSON form with its
`@type`. A resource replaces the translated one of the same type and name,
or is added. Clusters and endpoints join what every proxy shares; listeners
and routes join each proxy's own. The snapshot's consistency check still
applies; nothing else is checked, so a data plane's own validation decides.
A folder that fails to load keeps the last good overrides, as manifests do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles
import yaml
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import json_format

from api import contract
from xds_server.resources import Message, Resources
from xds_server.sources.folder import manifest_files

log = logging.getLogger("xds_server.sources")

_TYPES = {
    contract.TYPE_CLUSTER: cluster_pb2.Cluster,
    contract.TYPE_ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
    contract.TYPE_LISTENER: listener_pb2.Listener,
    contract.TYPE_ROUTE: route_pb2.RouteConfiguration,
}


@dataclass
class Overrides:
    shared: Resources = field(default_factory=Resources)  # clusters, endpoints
    node: Resources = field(default_factory=Resources)  # listeners, routes

    def __bool__(self) -> bool:
        return any(any(m.values()) for m in (self.shared.by_type(), self.node.by_type()))


def apply(resources: Resources, overrides: Resources) -> Resources:
    """`resources` with every override put in place (the dicts are updated in place)."""
    for mine, theirs in zip(
        resources.by_type().values(), overrides.by_type().values(), strict=True
    ):
        mine.update(theirs)
    return resources


def parse_document(doc: object, where: str) -> tuple[str, str, Message]:
    """(type URL, name, message) of one document; ValueError names what is wrong."""
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: expected a mapping with @type, got {type(doc).__name__}")
    type_url = doc.get("@type")
    cls = _TYPES.get(type_url) if isinstance(type_url, str) else None
    if cls is None or not isinstance(type_url, str):
        raise ValueError(f"{where}: @type must be one of {sorted(_TYPES)}, got {type_url!r}")
    message = cls()
    try:
        json_format.ParseDict({k: v for k, v in doc.items() if k != "@type"}, message)
    except json_format.ParseError as e:
        raise ValueError(f"{where}: {e}") from None
    name = message.cluster_name if type_url == contract.TYPE_ENDPOINT else message.name
    if not name:
        raise ValueError(f"{where}: the resource has no name")
    return type_url, name, message


def load(folder: Path) -> tuple[Overrides, list[str]]:
    """Every override in `folder`, or the errors (file, document, field) if any."""
    out, errors = Overrides(), []
    for path in manifest_files(folder):
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError) as e:
            errors.append(f"{path}: {e}")
            continue
        for i, doc in enumerate(d for d in docs if d is not None):
            try:
                type_url, name, message = parse_document(doc, f"{path}: document {i + 1}")
            except ValueError as e:
                errors.append(str(e))
                continue
            shared = type_url in (contract.TYPE_CLUSTER, contract.TYPE_ENDPOINT)
            (out.shared if shared else out.node).by_type()[type_url][name] = message
    return out, errors


class OverridesSource:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.last_good = Overrides()
        self.errors: list[str] = []

    def reload(self) -> Overrides | None:
        """Load the folder; the new overrides, or None if they failed (errors are kept)."""
        overrides, errors = load(self.folder)
        if errors:
            if errors != self.errors:
                log.error("xDS overrides in %s rejected, keeping the last good ones:", self.folder)
                for error in errors:
                    log.error("%s", error)
            self.errors = errors
            return None
        self.errors = []
        self.last_good = overrides
        return overrides

    async def watch(self, on_change: Callable[[Overrides], None], tick_ms: int = 1000) -> None:
        async for _ in watchfiles.awatch(self.folder, rust_timeout=tick_ms):
            overrides = await asyncio.to_thread(self.reload)
            if overrides is not None:
                on_change(overrides)
