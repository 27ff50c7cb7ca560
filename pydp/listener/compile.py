"""Compile an Envoy `Listener` into a `ListenerConfig`, refusing what pydp cannot honour.

Supported: a TCP socket address (an IP literal and a port); filter chains
(and a `default_filter_chain`) told apart by `filter_chain_match.transport_protocol`
alone ("tls", "raw_buffer" or empty; two chains may not match alike), each
holding exactly one network filter - the HTTP connection manager (`rds` over
ADS or an inline `route_config`) or the TCP proxy to one cluster - and
optionally a TLS `transport_socket` (`pydp.tls.config`); the
`envoy.filters.listener.tls_inspector` listener filter, injected as Envoy
does when a chain matches "tls" without it, with `listener_filters_timeout`;
file, stdout and stderr access logs with text formats. Fields that change
nothing pydp does (metadata, names, buffer and accept tuning, drain type)
are accepted; every other set field raises `ConfigError("listener <name>",
"<field path>", problem)`, which the xDS client turns into a NACK. The HTTP
connection manager is compiled in `compile_http`, access logs in `access_logs`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from pydp.errors import ConfigError
from pydp.listener.access_logs import compile_access_logs
from pydp.listener.compile_http import compile_http_connection_manager
from pydp.listener.config import (
    DEFAULT_LISTENER_FILTERS_TIMEOUT,
    MAX_CLIENT_HELLO_SIZE,
    TRANSPORT_RAW_BUFFER,
    TRANSPORT_TLS,
    FilterChainConfig,
    HttpConnectionManagerConfig,
    ListenerConfig,
    TcpProxyConfig,
    TlsInspectorConfig,
)
from pydp.listener.fields import At, Message, flag, timeout, type_url, unpack
from pydp.tls.config import compile_downstream_tls

HCM_FILTER = "envoy.filters.network.http_connection_manager"
TCP_PROXY_FILTER = "envoy.filters.network.tcp_proxy"
HCM_TYPE = type_url(hcm_pb2.HttpConnectionManager)
TCP_PROXY_TYPE = type_url(tcp_proxy_pb2.TcpProxy)
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
TLS_INSPECTOR_TYPE = type_url(tls_inspector_pb2.TlsInspector)
_DIRECTIONS = {
    base_pb2.UNSPECIFIED: "UNSPECIFIED",
    base_pb2.INBOUND: "INBOUND",
    base_pb2.OUTBOUND: "OUTBOUND",
}
_LISTENER_FIELDS = {
    "name",
    "address",
    "filter_chains",
    "default_filter_chain",
    "listener_filters",
    "listener_filters_timeout",
    "continue_on_listener_filters_timeout",
    "traffic_direction",
    "metadata",
    "enable_reuse_port",
    "reuse_port",
    "tcp_backlog_size",
    # Without effect in pydp (tuning of Envoy's own buffers, accept loop and drain):
    "per_connection_buffer_limit_bytes",
    "drain_type",
    "max_connections_to_accept_per_socket_event",
    "ignore_global_conn_limit",
    "bypass_overload_manager",
}
_CHAIN_REASONS = {"use_proxy_proto": "the PROXY protocol is not supported by pydp"}
_CHAIN_FIELDS = {
    "filters",
    "name",
    "metadata",
    "filter_chain_match",
    "transport_socket",
    "transport_socket_connect_timeout",
}
_TRANSPORT_PROTOCOLS = ("", TRANSPORT_TLS, TRANSPORT_RAW_BUFFER)
_INSPECTOR_FIELDS = {"max_client_hello_size", "initial_read_buffer_size"}
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
    at.only(listener, _LISTENER_FIELDS)
    address, port = _address(listener, at / "address")
    chains = tuple(
        _filter_chain(chain, at / f"filter_chains[{i}]")
        for i, chain in enumerate(listener.filter_chains)
    )
    default = None
    if listener.HasField("default_filter_chain"):
        chain = type(listener.default_filter_chain)()
        chain.CopyFrom(listener.default_filter_chain)
        chain.ClearField("filter_chain_match")  # ignored in the default chain, as in Envoy
        default = _filter_chain(chain, at / "default_filter_chain")
    if not chains and default is None:
        raise (at / "filter_chains").error("a listener needs at least one filter chain")
    _check_distinct(chains, at)
    inspector = _listener_filters(listener, at / "listener_filters")
    if inspector is None and any(c.transport_protocol == TRANSPORT_TLS for c in chains):
        inspector = TlsInspectorConfig()  # as Envoy injects the TLS inspector then
    return ListenerConfig(
        name=listener.name,
        address=address,
        port=port,
        filter_chains=chains,
        direction=_DIRECTIONS.get(listener.traffic_direction, "UNSPECIFIED"),
        reuse_port=flag(listener, "enable_reuse_port", True),
        default_filter_chain=default,
        tls_inspector=inspector,
        listener_filters_timeout=timeout(
            listener, "listener_filters_timeout", DEFAULT_LISTENER_FILTERS_TIMEOUT
        ),
        continue_on_listener_filters_timeout=listener.continue_on_listener_filters_timeout,
    )


def _filter_chain(chain: Message, at: At) -> FilterChainConfig:
    at.only(chain, _CHAIN_FIELDS, _CHAIN_REASONS)
    transport_protocol = ""
    if chain.HasField("filter_chain_match"):
        match = chain.filter_chain_match
        match_at = at / "filter_chain_match"
        match_at.only(match, {"transport_protocol"})
        transport_protocol = match.transport_protocol
        if transport_protocol not in _TRANSPORT_PROTOCOLS:
            raise (match_at / "transport_protocol").error(
                f"{transport_protocol!r} is not supported by pydp (tls, raw_buffer or empty)"
            )
    if len(chain.filters) != 1:
        names = ", ".join(f.name or "(unnamed)" for f in chain.filters) or "none"
        raise (at / "filters").error(
            f"pydp needs exactly one network filter ({HCM_FILTER} or {TCP_PROXY_FILTER}), "
            f"got: {names}"
        )
    tls = None
    if chain.HasField("transport_socket"):
        socket_at = at / "transport_socket"
        tls = compile_downstream_tls(chain.transport_socket, socket_at.resource, socket_at.path)
    return FilterChainConfig(
        filter=_network_filter(chain.filters[0], at / "filters[0]"),
        name=chain.name,
        transport_protocol=transport_protocol,
        tls=tls,
        transport_socket_connect_timeout=timeout(chain, "transport_socket_connect_timeout", None),
    )


def _check_distinct(chains: tuple[FilterChainConfig, ...], at: At) -> None:
    """Envoy refuses two chains with the same matching rules."""
    seen: dict[str, str] = {}
    for i, chain in enumerate(chains):
        label = chain.name or f"filter_chains[{i}]"
        if chain.transport_protocol in seen:
            raise (at / f"filter_chains[{i}]" / "filter_chain_match").error(
                f"filter chain {label!r} has the same matching rules defined as "
                f"{seen[chain.transport_protocol]!r}"
            )
        seen[chain.transport_protocol] = label


def _listener_filters(listener: Message, at: At) -> TlsInspectorConfig | None:
    inspector = None
    for i, listener_filter in enumerate(listener.listener_filters):
        filter_at = at / f"[{i}]"
        filter_at.only(listener_filter, {"name", "typed_config"})
        typed = listener_filter.typed_config
        if typed.type_url != TLS_INSPECTOR_TYPE:
            raise (filter_at / "typed_config").error(
                f"unsupported listener filter {listener_filter.name or typed.type_url} "
                f"({typed.type_url or 'no typed_config'}): pydp supports {TLS_INSPECTOR}"
            )
        config = unpack(
            typed,
            {TLS_INSPECTOR_TYPE: tls_inspector_pb2.TlsInspector},
            filter_at / "typed_config",
            "listener filter",
        )
        (filter_at / "typed_config").only(config, _INSPECTOR_FIELDS)
        size = MAX_CLIENT_HELLO_SIZE
        if config.HasField("max_client_hello_size"):
            size = config.max_client_hello_size.value
            if not 0 < size <= MAX_CLIENT_HELLO_SIZE:
                raise (filter_at / "typed_config" / "max_client_hello_size").error(
                    f"must be 1 to {MAX_CLIENT_HELLO_SIZE}"
                )
        inspector = TlsInspectorConfig(size)
    return inspector


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
