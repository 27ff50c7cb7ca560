"""Compile an Envoy `Listener` into a `ListenerConfig`, refusing what pydp cannot honour.

Supported: a TCP socket address (an IP literal and a port), exactly one filter
chain without a `filter_chain_match`, holding exactly one network filter:
the HTTP connection manager (`rds` over ADS or an inline `route_config`,
whose only HTTP filter is the router) or the TCP proxy to one cluster; file,
stdout and stderr access logs with text formats. Fields that change nothing
pydp does (metadata, names, buffer and accept tuning, drain type) are
accepted; every other set field raises `ConfigError("listener <name>",
"<field path>", problem)`, which the xDS client turns into a NACK. The HTTP
connection manager is compiled in `compile_http`, access logs in `access_logs`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from pydp.errors import ConfigError
from pydp.listener.access_logs import compile_access_logs
from pydp.listener.compile_http import compile_http_connection_manager
from pydp.listener.config import HttpConnectionManagerConfig, ListenerConfig, TcpProxyConfig
from pydp.listener.fields import At, Message, flag, timeout, type_url, unpack

HCM_FILTER = "envoy.filters.network.http_connection_manager"
TCP_PROXY_FILTER = "envoy.filters.network.tcp_proxy"
HCM_TYPE = type_url(hcm_pb2.HttpConnectionManager)
TCP_PROXY_TYPE = type_url(tcp_proxy_pb2.TcpProxy)
_DIRECTIONS = {
    base_pb2.UNSPECIFIED: "UNSPECIFIED",
    base_pb2.INBOUND: "INBOUND",
    base_pb2.OUTBOUND: "OUTBOUND",
}
_LISTENER_FIELDS = {
    "name",
    "address",
    "filter_chains",
    "traffic_direction",
    "metadata",
    "enable_reuse_port",
    "reuse_port",
    "tcp_backlog_size",
    # Without effect in pydp (tuning of Envoy's own buffers, accept loop and drain):
    "per_connection_buffer_limit_bytes",
    "drain_type",
    "listener_filters_timeout",
    "continue_on_listener_filters_timeout",
    "max_connections_to_accept_per_socket_event",
    "ignore_global_conn_limit",
    "bypass_overload_manager",
}
_LISTENER_REASONS = {
    "listener_filters": "listener filters (TLS inspector, original destination, ...) "
    "are not supported by pydp",
}
_CHAIN_REASONS = {
    "transport_socket": "downstream TLS is not supported by pydp",
    "use_proxy_proto": "the PROXY protocol is not supported by pydp",
}
_CHAIN_FIELDS = {"filters", "name", "metadata", "filter_chain_match"}
_TCP_PROXY_FIELDS = {"stat_prefix", "cluster", "idle_timeout", "access_log"}


def compile_listeners(resources: Mapping[str, Message]) -> dict[str, ListenerConfig]:
    """The `Compiler` for listeners: each one compiled, and no two on the same address."""
    compiled = {name: compile_listener(message) for name, message in resources.items()}
    check_addresses(compiled)
    return compiled


def check_addresses(configs: Mapping[str, ListenerConfig]) -> None:
    """Raise `ConfigError` if two listeners share an address (port 0 excepted)."""
    seen: dict[tuple[str, int], str] = {}
    for name, config in sorted(configs.items()):
        key = (config.address, config.port)
        if config.port and key in seen:
            raise ConfigError(
                f"listener {name}",
                "address",
                f"{_label(*key)} is already the address of listener {seen[key]}",
            )
        seen[key] = name


def compile_listener(listener: Message) -> ListenerConfig:
    """Compile one Listener message; raises `ConfigError` naming what pydp cannot honour."""
    if not listener.name:
        raise ConfigError("listener", "name", "must not be empty")
    at = At(f"listener {listener.name}")
    at.only(listener, _LISTENER_FIELDS, _LISTENER_REASONS)
    address, port = _address(listener, at / "address")
    if len(listener.filter_chains) != 1:
        raise (at / "filter_chains").error(
            f"pydp needs exactly one filter chain, got {len(listener.filter_chains)}"
        )
    chain = listener.filter_chains[0]
    chain_at = at / "filter_chains[0]"
    chain_at.only(chain, _CHAIN_FIELDS, _CHAIN_REASONS)
    if chain.HasField("filter_chain_match"):
        match_at = chain_at / "filter_chain_match"
        for descriptor, _ in chain.filter_chain_match.ListFields():
            raise (match_at / descriptor.name).error(
                "filter chain matching is not supported by pydp"
            )
    if len(chain.filters) != 1:
        names = ", ".join(f.name or "(unnamed)" for f in chain.filters) or "none"
        raise (chain_at / "filters").error(
            f"pydp needs exactly one network filter ({HCM_FILTER} or {TCP_PROXY_FILTER}), "
            f"got: {names}"
        )
    reuse_port = flag(listener, "enable_reuse_port", True)
    return ListenerConfig(
        name=listener.name,
        address=address,
        port=port,
        filter=_network_filter(chain.filters[0], chain_at / "filters[0]"),
        direction=_DIRECTIONS.get(listener.traffic_direction, "UNSPECIFIED"),
        reuse_port=reuse_port,
    )


def _label(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _address(listener: Message, at: At) -> tuple[str, int]:
    if not listener.HasField("address"):
        raise at.error("is required")
    kind = listener.address.WhichOneof("address")
    if kind != "socket_address":
        raise (at / (kind or "socket_address")).error("pydp listens on TCP socket addresses only")
    socket = listener.address.socket_address
    socket_at = at / "socket_address"
    socket_at.only(socket, {"address", "port_value"})
    try:
        ip = ipaddress.ip_address(socket.address)
    except ValueError:
        raise (socket_at / "address").error(f"malformed IP address: {socket.address}") from None
    if socket.port_value > 65535:
        raise (socket_at / "port_value").error(f"{socket.port_value} is not a port number")
    return str(ip), int(socket.port_value)


def _network_filter(
    network_filter: Message, at: At
) -> HttpConnectionManagerConfig | TcpProxyConfig:
    at.only(network_filter, {"name", "typed_config"})
    if not network_filter.HasField("typed_config"):
        raise (at / "typed_config").error(f"is required (filter {network_filter.name!r})")
    typed_at = at / "typed_config"
    type_url = network_filter.typed_config.type_url
    if type_url not in (HCM_TYPE, TCP_PROXY_TYPE):
        raise typed_at.error(
            f"unsupported network filter {network_filter.name or type_url} ({type_url}): "
            f"pydp supports {HCM_FILTER} and {TCP_PROXY_FILTER}"
        )
    expected = {HCM_TYPE: hcm_pb2.HttpConnectionManager, TCP_PROXY_TYPE: tcp_proxy_pb2.TcpProxy}
    message = unpack(network_filter.typed_config, expected, typed_at, "network filter")
    if type_url == HCM_TYPE:
        return compile_http_connection_manager(message, typed_at)
    return _tcp_proxy(message, typed_at)


def _tcp_proxy(tcp: Message, at: At) -> TcpProxyConfig:
    at.only(tcp, _TCP_PROXY_FIELDS)
    if not tcp.stat_prefix:
        raise (at / "stat_prefix").error("must not be empty")
    if not tcp.cluster:
        raise (at / "cluster").error("must name a cluster")
    return TcpProxyConfig(
        stat_prefix=tcp.stat_prefix,
        cluster=tcp.cluster,
        idle_timeout=timeout(tcp, "idle_timeout", 3600.0),
        access_logs=compile_access_logs(tcp.access_log, at / "access_log"),
    )
