"""Small models and requests for the control plane's tests."""

from __future__ import annotations

from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import struct_pb2

from api import contract
from api.contract import NodeProfile
from xds_server.model import Endpoint, EndpointPort, EndpointSlice, Model, Service, ServicePort
from xds_server.pipeline import build_snapshot
from xds_server.snapshot import Snapshot, View


def service(
    name: str, namespace: str = "default", port: int = 8080, ips: tuple[str, ...] = ("127.0.0.11",)
) -> tuple[Service, EndpointSlice]:
    svc = Service(namespace, name, (ServicePort(port, name="http"),), cluster_ip=None)
    slice_ = EndpointSlice(
        namespace,
        f"{name}-abc",
        name,
        (EndpointPort(port, name="http"),),
        tuple(Endpoint((ip,)) for ip in ips),
    )
    return svc, slice_


def model(*specs: tuple[str, tuple[str, ...]]) -> Model:
    services, slices = [], []
    for name, ips in specs:
        s, sl = service(name, ips=ips)
        services.append(s)
        slices.append(sl)
    return Model.build(services, slices)


PROFILE = NodeProfile(namespace="default")
NODE_ID = "app-1.default"


def node(node_id: str = NODE_ID, profile: NodeProfile = PROFILE) -> Any:
    metadata = struct_pb2.Struct()
    metadata.update(profile.metadata())
    return base_pb2.Node(id=node_id, metadata=metadata)


class Views:
    """A stand-in for the hub as a view source: publishes models, remembers changes."""

    def __init__(self, m: Model, *, remember: bool = True) -> None:
        self.snapshot: Snapshot = build_snapshot(m, 1, contract.CLUSTER_DOMAIN)
        self.remember = remember
        self.history: dict[int, Snapshot] = {1: self.snapshot}

    def publish(self, m: Model) -> None:
        self.snapshot = build_snapshot(
            m, self.snapshot.version + 1, contract.CLUSTER_DOMAIN, self.snapshot
        )
        self.history[self.snapshot.version] = self.snapshot

    def view(self, profile: NodeProfile) -> tuple[int, View]:
        return self.snapshot.version, self.snapshot.view(profile)

    def changes_since(self, version: int, type_url: str) -> frozenset[str] | None:
        if not self.remember:
            return None
        out: set[str] = set()
        for v in range(version + 1, self.snapshot.version + 1):
            changes = self.history[v].changes
            if changes is None:
                return None
            out |= changes[type_url]
        return frozenset(out)


def sotw(
    type_url: str,
    names: tuple[str, ...] = (),
    nonce: str = "",
    version: str = "",
    error: str | None = None,
    with_node: bool = True,
) -> Any:
    req = discovery_pb2.DiscoveryRequest(
        type_url=type_url, resource_names=list(names), response_nonce=nonce, version_info=version
    )
    if with_node:
        req.node.CopyFrom(node())
    if error is not None:
        req.error_detail.code = 3
        req.error_detail.message = error
    return req


def delta(
    type_url: str,
    subscribe: tuple[str, ...] = (),
    unsubscribe: tuple[str, ...] = (),
    nonce: str = "",
    error: str | None = None,
    initial: dict[str, str] | None = None,
) -> Any:
    req = discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url,
        resource_names_subscribe=list(subscribe),
        resource_names_unsubscribe=list(unsubscribe),
        response_nonce=nonce,
        initial_resource_versions=initial or {},
    )
    req.node.CopyFrom(node())
    if error is not None:
        req.error_detail.code = 3
        req.error_detail.message = error
    return req


def parse_sotw(payload: bytes) -> Any:
    return discovery_pb2.DiscoveryResponse.FromString(payload)


def parse_delta(payload: bytes) -> Any:
    return discovery_pb2.DeltaDiscoveryResponse.FromString(payload)


def cluster(name: str) -> str:
    return contract.outbound_cluster_name(8080, contract.service_host(name, "default"))
