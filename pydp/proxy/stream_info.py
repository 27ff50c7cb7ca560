"""What one request or TCP connection did, gathered as it goes, for the access log.

Response flags are kept in the order they were set, as Envoy 1.40 prints
them (`URX,UF`: the retry limit was reached, then the connection failed).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydp.runtime import AccessLogEntry
from pydp.upstream.hosts import Host


def _text(value: bytes | None) -> str:
    return value.decode("latin-1") if value else "-"


class StreamInfo:
    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "cluster",
        "flags",
        "response_code",
        "start",
        "start_time",
        "upstream_host",
        "upstream_service_time",
    )

    def __init__(self, start_time: float, start: float) -> None:
        self.start_time = start_time
        self.start = start
        self.flags: list[str] = []
        self.response_code = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.upstream_host: Host | None = None
        self.cluster = "-"
        self.upstream_service_time = "-"

    def flag(self, flag: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)

    @property
    def flags_text(self) -> str:
        return ",".join(self.flags) if self.flags else "-"

    def http_entry(
        self,
        headers: Sequence[tuple[bytes, bytes]] | None,
        protocol: str,
        end: float,
        remote: tuple[str, int],
    ) -> AccessLogEntry:
        """The entry of a finished HTTP request; `headers` as the router left them."""
        found: dict[bytes, bytes] = {}
        if headers is not None:
            for name, value in reversed(headers):
                if name in _LOGGED:
                    found[name] = value
        get = found.get
        host = self.upstream_host
        return AccessLogEntry(
            self.start_time,
            _text(get(b":method")),
            _text(get(b"x-envoy-original-path") or get(b":path")),
            protocol,
            self.response_code,
            ",".join(self.flags) if self.flags else "-",
            self.bytes_received,
            self.bytes_sent,
            int((end - self.start) * 1000),
            self.upstream_service_time,
            _text(get(b"x-forwarded-for")),
            _text(get(b"user-agent")),
            _text(get(b"x-request-id")),
            _text(get(b":authority")),
            host.label if host is not None else "-",
            self.cluster,
            address_label(remote),
        )

    def tcp_entry(self, end: float, remote: tuple[str, int]) -> AccessLogEntry:
        return AccessLogEntry(
            start_time=self.start_time,
            response_flags=self.flags_text,
            bytes_received=self.bytes_received,
            bytes_sent=self.bytes_sent,
            duration_ms=int((end - self.start) * 1000),
            upstream_host=self.upstream_host.label if self.upstream_host is not None else "-",
            upstream_cluster=self.cluster,
            downstream_remote_address=address_label(remote),
        )


_LOGGED = frozenset(
    {
        b":method",
        b":path",
        b":authority",
        b"x-envoy-original-path",
        b"x-forwarded-for",
        b"user-agent",
        b"x-request-id",
    }
)


def address_label(address: tuple[str, int]) -> str:
    ip, port = address[0], address[1]
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
