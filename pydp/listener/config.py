"""What a compiled Listener tells the data path: where to listen, which chain, what to run.

`pydp.listener.compile` builds these from Envoy `Listener` protos; the data
path (`pydp.proxy`) reads them. Values follow Envoy's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydp.rbac import RbacFilter
from pydp.router import RouteTable
from pydp.tls.config import ServerTlsConfig


@dataclass(frozen=True, slots=True)
class AccessLogConfig:
    """A file access log (`envoy.access_loggers.file` / `stdout`).

    `path` is a file, or "/dev/stdout"; `format` is an Envoy format string,
    or None for Envoy's default format.
    """

    path: str = "/dev/stdout"
    format: str | None = None


@dataclass(frozen=True, slots=True)
class HttpConnectionManagerConfig:
    """`envoy.filters.network.http_connection_manager`: RBAC filters, then the router.

    `forward_client_cert_details` is Envoy's mode name (SANITIZE, FORWARD_ONLY,
    APPEND_FORWARD, SANITIZE_SET, ALWAYS_FORWARD_ONLY); `set_current_client_cert_details`
    the XFCC elements to add after `By` and `Hash`, in Envoy's order, of
    "subject", "uri", "dns".
    """

    stat_prefix: str
    codec: str = "auto"  # "auto" | "http1" | "http2"
    rds_name: str | None = None  # routes from RDS by this name ...
    route_table: RouteTable | None = None  # ... or inline
    server_name: bytes = b"envoy"
    use_remote_address: bool = False
    xff_num_trusted_hops: int = 0
    skip_xff_append: bool = False
    generate_request_id: bool = True
    preserve_external_request_id: bool = False
    strip_any_host_port: bool = False
    normalize_path: bool = False
    merge_slashes: bool = False
    request_timeout: float | None = None  # None: disabled (Envoy's default)
    request_headers_timeout: float | None = None
    stream_idle_timeout: float | None = 300.0
    idle_timeout: float | None = 3600.0
    drain_timeout: float = 5.0
    max_request_headers_kb: int = 60
    max_headers_count: int = 100
    access_logs: tuple[AccessLogConfig, ...] = ()
    rbac_filters: tuple[RbacFilter, ...] = ()  # run in order before routing
    forward_client_cert_details: str = "SANITIZE"
    set_current_client_cert_details: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TcpProxyConfig:
    """`envoy.filters.network.tcp_proxy` to one cluster."""

    stat_prefix: str
    cluster: str
    idle_timeout: float | None = 3600.0
    access_logs: tuple[AccessLogConfig, ...] = ()


TRANSPORT_TLS = "tls"
TRANSPORT_RAW_BUFFER = "raw_buffer"
DEFAULT_LISTENER_FILTERS_TIMEOUT = 15.0
MAX_CLIENT_HELLO_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class FilterChainConfig:
    """One filter chain: the connections it takes, how it secures them, what runs on them.

    `transport_protocol` is its `filter_chain_match`: "" takes any connection,
    "tls" those the TLS inspector found to open with a ClientHello, "raw_buffer"
    the others. `tls` terminates TLS (`DownstreamTlsContext`)."""

    filter: HttpConnectionManagerConfig | TcpProxyConfig
    name: str = ""
    transport_protocol: str = ""
    tls: ServerTlsConfig | None = None
    transport_socket_connect_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class TlsInspectorConfig:
    """`envoy.filters.listener.tls_inspector`: how much of a ClientHello it reads."""

    max_client_hello_size: int = MAX_CLIENT_HELLO_SIZE


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """A listener: its address, its filter chains and the listener filter that tells them apart.

    `tls_inspector` is set when the listener has the TLS inspector, or when a
    chain matches `transport_protocol: tls` without it (Envoy injects it then)."""

    name: str
    address: str
    port: int
    filter_chains: tuple[FilterChainConfig, ...]
    direction: str = "UNSPECIFIED"  # "INBOUND" | "OUTBOUND" | "UNSPECIFIED"
    reuse_port: bool = True
    default_filter_chain: FilterChainConfig | None = None
    tls_inspector: TlsInspectorConfig | None = None
    listener_filters_timeout: float | None = DEFAULT_LISTENER_FILTERS_TIMEOUT
    continue_on_listener_filters_timeout: bool = False
    # The access logs of every chain's filter, each once (where a request's entry goes).
    access_logs: tuple[AccessLogConfig, ...] = field(init=False, default=(), compare=False)

    def chain_for(self, transport_protocol: str) -> FilterChainConfig | None:
        """The chain a connection of `transport_protocol` ("tls" or "raw_buffer") goes to:
        the one naming that protocol, else one matching any, else the default chain."""
        fallback = None
        for chain in self.filter_chains:
            if chain.transport_protocol == transport_protocol:
                return chain
            if not chain.transport_protocol and fallback is None:
                fallback = chain
        return fallback if fallback is not None else self.default_filter_chain

    def chains(self) -> tuple[FilterChainConfig, ...]:
        """Every chain, the default one last."""
        if self.default_filter_chain is None:
            return self.filter_chains
        return (*self.filter_chains, self.default_filter_chain)

    def __post_init__(self) -> None:
        out: list[AccessLogConfig] = []
        for chain in self.chains():
            out.extend(log for log in chain.filter.access_logs if log not in out)
        object.__setattr__(self, "access_logs", tuple(out))
