"""Versioned, immutable, consistent snapshots of translated resources.

A snapshot holds the resources every proxy shares (clusters and endpoints of
all Services) and, built lazily and cached, one `View` per node profile: the
shared resources plus that proxy's own listeners, routes and inbound cluster.
Each resource becomes an `Entry` once: serialized, hashed into a version, and
pre-encoded for SotW and Delta responses (see `wire.py`). Entries are reused
across snapshots when their bytes are unchanged, so unchanged resources keep
their identity and version.

A view is checked for consistency before it is served (go-control-plane's
`Snapshot.Consistent()`): every EDS cluster has its ClusterLoadAssignment and
every assignment a cluster, every RDS name a listener uses exists and every
route config is used, every cluster a route names exists, and every SDS
secret a cluster's or listener's TLS transport socket names exists. (A secret
no socket names may still be served: Envoy asks only for those it needs.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from api import contract
from api.contract import NodeProfile
from xds_server import wire
from xds_server.resources import Message, Resources


class InconsistentSnapshot(ValueError):
    """Resources that refer to each other wrongly; never served."""


@dataclass(frozen=True, slots=True, eq=False)
class Entry:
    """One resource, serialized once, with what it refers to."""

    type_url: str
    name: str
    version: str
    payload: bytes
    refs: frozenset[str]  # names this resource needs (EDS names, RDS names, clusters)
    sotw: bytes = field(repr=False)
    delta: bytes = field(repr=False)
    secret_refs: frozenset[str] = frozenset()  # SDS names its TLS transport sockets need

    @classmethod
    def encode(cls, type_url: str, name: str, message: Message) -> Entry:
        payload = message.SerializeToString(deterministic=True)
        return cls.build(type_url, name, message, payload, payload_version(payload))

    @classmethod
    def build(
        cls, type_url: str, name: str, message: Message, payload: bytes, version: str
    ) -> Entry:
        return cls(
            type_url=type_url,
            name=name,
            version=version,
            payload=payload,
            refs=frozenset(_references(type_url, message)),
            sotw=wire.sotw_resource(type_url, payload),
            delta=wire.delta_resource(type_url, name, version, payload),
            secret_refs=frozenset(_secret_references(type_url, message)),
        )


def payload_version(payload: bytes) -> str:
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


Entries = Mapping[str, Entry]


@dataclass(frozen=True, slots=True, eq=False)
class View:
    """What one node profile is served, per type URL.

    `node_names` are the names, per type, of the resources that belong to
    this profile alone (its listeners, routes, inbound cluster); every other
    entry is shared, and its changes are the snapshot's `changes`.
    """

    by_type: Mapping[str, Entries]
    node_names: Mapping[str, frozenset[str]]

    def get(self, type_url: str) -> Entries:
        return self.by_type.get(type_url, _EMPTY)


_EMPTY: Entries = MappingProxyType({})
NodeTranslator = Callable[[NodeProfile], Resources]


class Snapshot:
    """The resources of one version of the model; views are made on demand."""

    def __init__(
        self,
        version: int,
        shared: Resources,
        node_translator: NodeTranslator,
        previous: Snapshot | None = None,
    ) -> None:
        self.version = version
        self.warnings = list(shared.warnings)
        self._translate_node = node_translator
        self._reuse = previous._all_entries() if previous is not None else {}
        self._shared = {t: self._encode(t, ms) for t, ms in shared.by_type().items() if ms}
        self._views: dict[NodeProfile, View] = {}
        # Per type, the shared names that differ from the previous snapshot (None: unknown).
        self.changes: Mapping[str, frozenset[str]] | None = (
            None if previous is None else _changes(previous._shared, self._shared)
        )

    def view(self, profile: NodeProfile) -> View:
        """The consistent view for `profile`; raises InconsistentSnapshot."""
        found = self._views.get(profile)
        if found is None:
            node = self._translate_node(profile)
            self.warnings.extend(w for w in node.warnings if w not in self.warnings)
            by_type: dict[str, Entries] = {}
            node_names: dict[str, frozenset[str]] = {}
            for type_url in contract.PUSH_ORDER:
                mine = self._encode(type_url, node.by_type()[type_url])
                shared = self._shared.get(type_url, {})
                clash = mine.keys() & shared.keys()
                if clash:
                    raise InconsistentSnapshot(f"node resources shadow shared ones: {clash}")
                merged = {**shared, **mine} if mine else shared
                by_type[type_url] = MappingProxyType(merged)
                node_names[type_url] = frozenset(mine)
            found = View(MappingProxyType(by_type), MappingProxyType(node_names))
            check_consistent(found)
            self._views[profile] = found
        return found

    def views(self) -> Mapping[NodeProfile, View]:
        return MappingProxyType(self._views)

    def release_reuse(self) -> None:
        """Drop the previous snapshot's entries once every known view is built."""
        self._reuse = {}

    def _encode(self, type_url: str, messages: Mapping[str, Message]) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        for name, message in messages.items():
            payload = message.SerializeToString(deterministic=True)
            version = payload_version(payload)
            old = self._reuse.get((type_url, name))
            if old is None or old.version != version:
                old = Entry.build(type_url, name, message, payload, version)
            out[name] = old
        return out

    def _all_entries(self) -> dict[tuple[str, str], Entry]:
        out = {(e.type_url, e.name): e for es in self._shared.values() for e in es.values()}
        for view in self._views.values():
            for entries in view.by_type.values():
                out.update(((e.type_url, e.name), e) for e in entries.values())
        return out


def _changes(
    old: Mapping[str, Mapping[str, Entry]], new: Mapping[str, Mapping[str, Entry]]
) -> dict[str, frozenset[str]]:
    out = {}
    for type_url in contract.PUSH_ORDER:
        before, after = old.get(type_url, _EMPTY), new.get(type_url, _EMPTY)
        changed = {n for n, e in after.items() if before.get(n) is not e}
        changed.update(n for n in before if n not in after)
        out[type_url] = frozenset(changed)
    return out


def check_consistent(view: View) -> None:
    clusters = view.get(contract.TYPE_CLUSTER)
    endpoints = view.get(contract.TYPE_ENDPOINT)
    listeners = view.get(contract.TYPE_LISTENER)
    routes = view.get(contract.TYPE_ROUTE)
    problems: list[str] = []
    eds_names = _union(e.refs for e in clusters.values())
    problems += [
        f"cluster needs missing ClusterLoadAssignment {n!r}" for n in eds_names - endpoints.keys()
    ]
    problems += [
        f"ClusterLoadAssignment {n!r} has no cluster" for n in endpoints.keys() - eds_names
    ]
    rds_names = _union(e.refs for e in listeners.values())
    problems += [
        f"listener needs missing RouteConfiguration {n!r}" for n in rds_names - routes.keys()
    ]
    problems += [
        f"RouteConfiguration {n!r} is used by no listener" for n in routes.keys() - rds_names
    ]
    used = _union(e.refs for e in routes.values())
    problems += [f"a route names missing cluster {n!r}" for n in used - clusters.keys()]
    secrets = view.get(contract.TYPE_SECRET)
    for kind, entries in (("cluster", clusters), ("listener", listeners)):
        for entry in entries.values():
            problems += [
                f"{kind} {entry.name!r} needs missing secret {n!r}"
                for n in sorted(entry.secret_refs - secrets.keys())
            ]
    if problems:
        raise InconsistentSnapshot("; ".join(sorted(problems)))


def _union(sets: Iterable[frozenset[str]]) -> set[str]:
    out: set[str] = set()
    for s in sets:
        out |= s
    return out


def _references(type_url: str, message: Message) -> Iterable[str]:
    if type_url == contract.TYPE_CLUSTER:
        if message.HasField("eds_cluster_config"):
            yield message.eds_cluster_config.service_name or message.name
    elif type_url == contract.TYPE_LISTENER:
        yield from _listener_routes(message)
    elif type_url == contract.TYPE_ROUTE:
        for vhost in message.virtual_hosts:
            for route in vhost.routes:
                if not route.HasField("route"):
                    continue
                action = route.route
                if action.cluster:
                    yield action.cluster
                for weighted in action.weighted_clusters.clusters:
                    yield weighted.name


_TLS_SOCKET_TYPES = {
    contract.TYPE_CLUSTER: tls_pb2.UpstreamTlsContext,
    contract.TYPE_LISTENER: tls_pb2.DownstreamTlsContext,
}


def _secret_references(type_url: str, message: Message) -> Iterable[str]:
    context_type = _TLS_SOCKET_TYPES.get(type_url)
    if context_type is None:
        return
    if type_url == contract.TYPE_CLUSTER:
        sockets = [message.transport_socket] if message.HasField("transport_socket") else []
        sockets += [m.transport_socket for m in message.transport_socket_matches]
    else:
        chains = [*message.filter_chains]
        if message.HasField("default_filter_chain"):
            chains.append(message.default_filter_chain)
        sockets = [c.transport_socket for c in chains if c.HasField("transport_socket")]
    for socket in sockets:
        context = context_type()
        if not socket.typed_config.Unpack(context):
            continue
        common = context.common_tls_context
        for config in common.tls_certificate_sds_secret_configs:
            yield config.name
        if common.HasField("validation_context_sds_secret_config"):
            yield common.validation_context_sds_secret_config.name
        combined = common.combined_validation_context
        if combined.HasField("validation_context_sds_secret_config"):
            yield combined.validation_context_sds_secret_config.name


def _listener_routes(listener: Message) -> Iterable[str]:
    for chain in listener.filter_chains:
        for f in chain.filters:
            if f.typed_config.type_url.endswith(".HttpConnectionManager"):
                hcm = hcm_pb2.HttpConnectionManager()
                f.typed_config.Unpack(hcm)
                if hcm.HasField("rds"):
                    yield hcm.rds.route_config_name
