"""Envoy resources and discovery responses for the xDS client's tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from api import contract

CDS, EDS, LDS, RDS, SDS = (
    contract.TYPE_CLUSTER,
    contract.TYPE_ENDPOINT,
    contract.TYPE_LISTENER,
    contract.TYPE_ROUTE,
    contract.TYPE_SECRET,
)


def node(node_id: str = "app-1.default") -> Any:
    return base_pb2.Node(id=node_id, cluster="app.default")


def packed(message: Any) -> Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def eds_cluster(name: str, service_name: str = "", secret: str = "") -> Any:
    cluster = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS)
    cluster.eds_cluster_config.eds_config.ads.SetInParent()
    cluster.eds_cluster_config.service_name = service_name
    if secret:
        tls = tls_pb2.UpstreamTlsContext()
        sds = tls.common_tls_context.tls_certificate_sds_secret_configs.add(name=secret)
        sds.sds_config.ads.SetInParent()
        cluster.transport_socket.name = "envoy.transport_sockets.tls"
        cluster.transport_socket.typed_config.CopyFrom(packed(tls))
    return cluster


def static_cluster(name: str, port: int = 8080) -> Any:
    cluster = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.STATIC)
    cluster.load_assignment.CopyFrom(assignment(name, port))
    return cluster


def assignment(name: str, port: int = 8080) -> Any:
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    lb = cla.endpoints.add().lb_endpoints.add()
    lb.endpoint.address.socket_address.address = "127.0.0.1"
    lb.endpoint.address.socket_address.port_value = port
    return cla


def listener(name: str, route_config: str = "", port: int = 15001) -> Any:
    """A listener with an HTTP connection manager using RDS `route_config` (or an inline one)."""
    hcm = hcm_pb2.HttpConnectionManager(stat_prefix=name)
    if route_config:
        hcm.rds.route_config_name = route_config
        hcm.rds.config_source.ads.SetInParent()
    else:
        hcm.route_config.name = "inline"
    out = listener_pb2.Listener(name=name)
    out.address.socket_address.address = "127.0.0.1"
    out.address.socket_address.port_value = port
    chain = out.filter_chains.add()
    chain.filters.add(name="envoy.filters.network.http_connection_manager").typed_config.CopyFrom(
        packed(hcm)
    )
    return out


def route(name: str, cluster: str = "outbound|8080||a") -> Any:
    config = route_pb2.RouteConfiguration(name=name)
    host = config.virtual_hosts.add(name="all", domains=["*"])
    host.routes.add().route.cluster = cluster
    return config


def secret(name: str) -> Any:
    return secret_pb2.Secret(name=name)


def sotw(type_url: str, version: str, nonce: str, messages: Iterable[Any]) -> Any:
    response = discovery_pb2.DiscoveryResponse(type_url=type_url, version_info=version, nonce=nonce)
    response.resources.extend(packed(m) for m in messages)
    return response


def delta(
    type_url: str,
    nonce: str,
    messages: Iterable[tuple[str, str, Any]] = (),
    removed: Iterable[str] = (),
) -> Any:
    """A Delta response; `messages` are (name, version, message)."""
    response = discovery_pb2.DeltaDiscoveryResponse(
        type_url=type_url, nonce=nonce, system_version_info=nonce
    )
    for name, version, message in messages:
        response.resources.add(name=name, version=version, resource=packed(message))
    response.removed_resources.extend(removed)
    return response
