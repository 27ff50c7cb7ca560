"""Clusters: one EDS cluster per Service port, and the proxy's static inbound cluster.

Outbound clusters take their endpoints from EDS over ADS, under their own name.
A cluster of a mesh Service originates mTLS and checks that the server is one
of the Service's SPIFFE IDs (`security.py`). They are memoized on (name,
HTTP/2, those SPIFFE IDs), so an unchanged Service port yields the very same
message object from one translation to the next. Returned messages are shared:
callers must not mutate them.
"""

from __future__ import annotations

from functools import _CacheInfo, lru_cache
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import any_pb2

from api import contract
from xds_server.model import Service, ServicePort
from xds_server.translate.common import CACHE_SIZE, ads_source, connect_timeout, socket_address
from xds_server.translate.protocol import speaks_http2
from xds_server.translate.security import sni, upstream_tls

HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def cluster_name_of(service: Service, port: ServicePort, cluster_domain: str) -> str:
    host = contract.service_host(service.name, service.namespace, cluster_domain)
    return contract.outbound_cluster_name(port.port, host)


def outbound_cluster(
    service: Service,
    port: ServicePort,
    cluster_domain: str,
    peers: tuple[str, ...] | None = None,
) -> Any:
    """The EDS cluster of one Service port; mTLS to `peers` (SPIFFE IDs) unless None."""
    return _eds_cluster(cluster_name_of(service, port, cluster_domain), speaks_http2(port), peers)


@lru_cache(maxsize=CACHE_SIZE)
def _eds_cluster(name: str, http2: bool, peers: tuple[str, ...] | None = None) -> Any:
    cluster = cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(
            eds_config=ads_source(), service_name=name
        ),
        connect_timeout=connect_timeout(),
        lb_policy=cluster_pb2.Cluster.ROUND_ROBIN,
    )
    if http2:
        options = http_protocol_options_pb2.HttpProtocolOptions()
        options.explicit_http_config.http2_protocol_options.SetInParent()
        packed = any_pb2.Any()
        packed.Pack(options)
        cluster.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].CopyFrom(packed)
    if peers is not None:
        cluster.transport_socket.CopyFrom(upstream_tls(peers, http2, sni(name)))
    return cluster


@lru_cache(maxsize=256)
def inbound_cluster(app_port: int) -> Any:
    """The static cluster that delivers inbound requests to the workload on `app_port`."""
    name = contract.inbound_cluster_name(app_port)
    endpoint = endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(
            address=socket_address(contract.APP_ADDRESS, app_port)
        )
    )
    cluster = cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.STATIC,
        connect_timeout=connect_timeout(),
        lb_policy=cluster_pb2.Cluster.ROUND_ROBIN,
        load_assignment=endpoint_pb2.ClusterLoadAssignment(
            cluster_name=name,
            endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[endpoint])],
        ),
    )
    # The app gets the protocol the caller spoke: h2c and gRPC stay HTTP/2 to it.
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.use_downstream_protocol_config.http_protocol_options.SetInParent()
    options.use_downstream_protocol_config.http2_protocol_options.SetInParent()
    packed = any_pb2.Any()
    packed.Pack(options)
    cluster.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].CopyFrom(packed)
    return cluster


def cache_info() -> _CacheInfo:
    return _eds_cluster.cache_info()


def cache_clear() -> None:
    _eds_cluster.cache_clear()
    inbound_cluster.cache_clear()
