"""Compile an xDS `Cluster` into `ClusterConfig`, refusing what pydp cannot honour.

Supported: EDS and STATIC clusters (STATIC with an inline `load_assignment`),
the five classic load balancing policies through `lb_policy` and its config
messages or through `load_balancing_policy` extensions (the first one pydp
knows wins, as in Envoy), `common_lb_config` (panic threshold, locality
weighted balancing, `fail_traffic_on_panic`, hostname hashing), circuit
breakers, outlier detection, the upstream HTTP protocol, and TLS to the
endpoints (`transport_socket` with an `UpstreamTlsContext`, compiled by
`pydp.tls.config`; its ALPN, when it names one, must offer the protocol the
cluster speaks). Fields without effect on EDS/STATIC clusters (DNS settings,
ORIGINAL_DST cleanup, stats-only switches) are accepted; every other set
field (`transport_socket_matches` among them) raises `ConfigError`.

The connection adapter owns what is passed through untouched: the HTTP/1
and HTTP/2 protocol option messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2

from pydp.errors import ConfigError
from pydp.tls.config import ClientTlsConfig, compile_upstream_tls
from pydp.upstream.breakers import BreakerConfig, compile_circuit_breakers
from pydp.upstream.fields import duration_or, reject_unknown, wrapped
from pydp.upstream.hosts import LoadAssignment, compile_load_assignment
from pydp.upstream.lb_base import LbConfig
from pydp.upstream.lb_config import compile_lb_config
from pydp.upstream.outlier import OutlierConfig, compile_outlier_detection
from pydp.upstream.protocol_options import (
    HTTP_PROTOCOL_OPTIONS,
    UpstreamProtocol,
    common_http_options,
    upstream_protocol,
)

__all__ = [
    "HTTP_PROTOCOL_OPTIONS",
    "ClusterConfig",
    "Discovery",
    "UpstreamProtocol",
    "compile_cluster",
]

DEFAULT_CONNECT_TIMEOUT = 5.0

Cluster = cluster_pb2.Cluster


class Discovery(enum.Enum):
    STATIC = "static"
    EDS = "eds"


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    discovery: Discovery
    eds_service_name: str
    load_assignment: LoadAssignment | None
    connect_timeout: float
    lb: LbConfig
    breakers: BreakerConfig
    outlier: OutlierConfig | None
    protocol: UpstreamProtocol = UpstreamProtocol.HTTP1
    http1_options: Any = None
    http2_options: Any = None
    idle_timeout: float | None = None
    max_requests_per_connection: int | None = None
    max_connection_duration: float | None = None
    per_connection_buffer_limit_bytes: int = 1024 * 1024
    tls: ClientTlsConfig | None = None  # TLS to the endpoints (`transport_socket`)
    close_connections_on_host_set_change: bool = False
    alt_stat_name: str = ""


_CLUSTER_FIELDS = {
    "name",
    "alt_stat_name",
    "type",
    "cluster_type",
    "eds_cluster_config",
    "connect_timeout",
    "per_connection_buffer_limit_bytes",
    "lb_policy",
    "load_assignment",
    "max_requests_per_connection",
    "circuit_breakers",
    "common_http_protocol_options",
    "http_protocol_options",
    "http2_protocol_options",
    "typed_extension_protocol_options",
    "outlier_detection",
    "ring_hash_lb_config",
    "maglev_lb_config",
    "least_request_lb_config",
    "round_robin_lb_config",
    "common_lb_config",
    "transport_socket",
    "metadata",
    "protocol_selection",
    "load_balancing_policy",
    # Without effect on EDS and STATIC clusters, or statistics only:
    "dns_refresh_rate",
    "dns_jitter",
    "dns_failure_refresh_rate",
    "respect_dns_ttl",
    "dns_lookup_family",
    "dns_resolvers",
    "use_tcp_for_dns_lookups",
    "dns_resolution_config",
    "typed_dns_resolver_config",
    "wait_for_warm_on_init",
    "cleanup_interval",
    "original_dst_lb_config",
    "close_connections_on_host_health_failure",
    "ignore_health_on_host_removal",
    "track_cluster_stats",
    "track_timeout_budgets",
    "lrs_report_endpoint_metrics",
}


def resource_name(cluster: Any) -> str:
    return f"cluster {cluster.name}"


def compile_cluster(cluster: Any) -> ClusterConfig:
    """Compile a Cluster message; raises ConfigError naming the field it cannot honour."""
    res = resource_name(cluster)
    if not cluster.name:
        raise ConfigError("cluster", "name", "must not be empty")
    reject_unknown(cluster, _CLUSTER_FIELDS, res)
    discovery, eds_name, assignment = _discovery(cluster, res)
    connect_timeout = duration_or(cluster, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    assert connect_timeout is not None
    if connect_timeout <= 0:
        raise ConfigError(res, "connect_timeout", "must be greater than 0")
    idle, max_requests, max_duration = common_http_options(cluster, res)
    protocol, http1, http2 = upstream_protocol(cluster, res)
    return ClusterConfig(
        name=cluster.name,
        discovery=discovery,
        eds_service_name=eds_name,
        load_assignment=assignment,
        connect_timeout=connect_timeout,
        lb=compile_lb_config(cluster, res),
        breakers=(
            compile_circuit_breakers(cluster.circuit_breakers, res)
            if cluster.HasField("circuit_breakers")
            else BreakerConfig()
        ),
        outlier=(
            compile_outlier_detection(cluster.outlier_detection, res)
            if cluster.HasField("outlier_detection")
            else None
        ),
        protocol=protocol,
        http1_options=http1,
        http2_options=http2,
        idle_timeout=idle,
        max_requests_per_connection=max_requests,
        max_connection_duration=max_duration,
        per_connection_buffer_limit_bytes=int(
            wrapped(cluster, "per_connection_buffer_limit_bytes", 1024 * 1024)
        ),
        tls=_tls(cluster, res, protocol),
        close_connections_on_host_set_change=bool(
            cluster.common_lb_config.close_connections_on_host_set_change
        ),
        alt_stat_name=cluster.alt_stat_name,
    )


_ALPN = {UpstreamProtocol.HTTP1: "http/1.1", UpstreamProtocol.HTTP2: "h2"}


def _tls(cluster: Any, res: str, protocol: UpstreamProtocol) -> ClientTlsConfig | None:
    if not cluster.HasField("transport_socket"):
        return None
    tls = compile_upstream_tls(cluster.transport_socket, res, "transport_socket")
    expected = _ALPN.get(protocol)
    if tls is not None and tls.common.alpn and expected and expected not in tls.common.alpn:
        raise ConfigError(
            res,
            "transport_socket.typed_config.common_tls_context.alpn_protocols",
            f"{list(tls.common.alpn)} does not offer {expected!r}, the protocol this cluster "
            "speaks (its HTTP protocol options)",
        )
    return tls


def _discovery(cluster: Any, res: str) -> tuple[Discovery, str, LoadAssignment | None]:
    kind = cluster.WhichOneof("cluster_discovery_type")
    if kind == "cluster_type":
        raise ConfigError(
            res, "cluster_type", f"unsupported custom cluster type {cluster.cluster_type.name}"
        )
    if cluster.type == Cluster.EDS:
        if cluster.HasField("load_assignment"):
            raise ConfigError(res, "load_assignment", "an EDS cluster takes its endpoints from EDS")
        name = cluster.eds_cluster_config.service_name or cluster.name
        return Discovery.EDS, name, None
    if cluster.type == Cluster.STATIC:
        if cluster.HasField("eds_cluster_config"):
            raise ConfigError(res, "eds_cluster_config", "only EDS clusters take an EDS config")
        try:
            assignment = compile_load_assignment(cluster.load_assignment, res)
        except ConfigError as exc:
            raise ConfigError(res, "load_assignment." + exc.field, exc.problem) from None
        return Discovery.STATIC, "", assignment
    type_name = Cluster.DiscoveryType.Name(cluster.type)
    raise ConfigError(res, "type", f"unsupported cluster type {type_name}")
