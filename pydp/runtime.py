"""The seam between pydp's data path and the rest: what a request can read.

The data path (`pydp.proxy`) handles connections given a compiled
`ListenerConfig` (`pydp.listener.config`) and a `Runtime`. The runtime is
implemented by `pydp.app` on top of the xDS config store; tests implement it
with fixed values. Every lookup reads the configuration in force at that
moment; a request that started keeps the objects it looked up (config
updates never disturb it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pydp.router import RouteTable
from pydp.stats import Stats
from pydp.upstream.cluster_state import UpstreamCluster


@dataclass(slots=True)
class AccessLogEntry:
    """One finished request or TCP connection, with what Envoy's default format prints.

    Envoy's default format:
    [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
    %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
    %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%"
    "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
    """

    start_time: float  # epoch seconds
    method: str = "-"
    path: str = "-"
    protocol: str = "-"  # "HTTP/1.1", "HTTP/2", or "-" for TCP
    response_code: int = 0
    response_flags: str = "-"  # Envoy's short flags: UH, UF, UO, NR, URX, UT, DC, UC, ...
    bytes_received: int = 0
    bytes_sent: int = 0
    duration_ms: int = 0
    upstream_service_time: str = "-"
    x_forwarded_for: str = "-"
    user_agent: str = "-"
    request_id: str = "-"
    authority: str = "-"
    upstream_host: str = "-"
    upstream_cluster: str = "-"
    downstream_remote_address: str = "-"
    extra: dict[str, str] = field(default_factory=dict)


class Runtime(Protocol):
    """What the data path reads, per request or connection."""

    stats: Stats

    def route_table(self, name: str) -> RouteTable | None:
        """The route configuration named `name` (from RDS), if it has arrived."""

    def cluster(self, name: str) -> UpstreamCluster | None:
        """The cluster in force named `name` (warm: its endpoints have arrived)."""

    def access_log(self, listener: str, entry: AccessLogEntry) -> None:
        """Record a finished request or connection on `listener`'s access logs."""

    def now(self) -> float:
        """A monotonic clock, in seconds."""
