"""What a compiled Listener tells the data path: where to listen and what to run.

`pydp.listener.compile` builds these from Envoy `Listener` protos; the data
path (`pydp.proxy`) reads them. Values follow Envoy's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydp.router import RouteTable


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
    """`envoy.filters.network.http_connection_manager` with the router filter."""

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


@dataclass(frozen=True, slots=True)
class TcpProxyConfig:
    """`envoy.filters.network.tcp_proxy` to one cluster."""

    stat_prefix: str
    cluster: str
    idle_timeout: float | None = 3600.0
    access_logs: tuple[AccessLogConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    name: str
    address: str
    port: int
    filter: HttpConnectionManagerConfig | TcpProxyConfig
    direction: str = "UNSPECIFIED"  # "INBOUND" | "OUTBOUND" | "UNSPECIFIED"
    reuse_port: bool = True
