"""What a downstream connection and its requests share, and the stream interface
the request handler drives for both HTTP versions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol

import trio

from pydp.http import Data, EndOfMessage, Event, Limits, RemoteProtocolError
from pydp.listener.config import HttpConnectionManagerConfig
from pydp.proxy.drain import Drain
from pydp.proxy.pools import PoolManager
from pydp.proxy.stat_names import HttpStatNames, http_names
from pydp.proxy.timers import TimerQueue
from pydp.router import FormatContext
from pydp.runtime import Runtime
from pydp.stats import Stats
from pydp.tls.peer import TlsPeer


class ProxyRuntime(Runtime, Protocol):
    """The runtime the data path needs: `Runtime` plus the process's `PoolManager`."""

    pools: PoolManager


class DownstreamReset(Exception):
    """The client abandoned the stream (reset, or closed the connection)."""


class DownstreamProtocolError(Exception):
    """The rest of the request was unacceptable (`error.error_status_hint` says how)."""

    def __init__(self, error: RemoteProtocolError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(slots=True)
class HttpContext:
    """One downstream connection's settings and handles."""

    config: HttpConnectionManagerConfig
    listener: str
    runtime: ProxyRuntime
    remote: tuple[str, int]
    local: tuple[str, int]
    scheme: bytes = b"http"
    peer: TlsPeer | None = None  # set on a TLS connection once the handshake is done
    drain: Drain | None = None  # the listener's, for connections a config change retires
    stats: Stats = field(init=False)
    names: HttpStatNames = field(init=False)
    format: FormatContext = field(init=False)
    limits: Limits = field(init=False)
    clock: trio.abc.Clock = field(init=False)
    timers: TimerQueue = field(init=False)
    # Requests are logged (`runtime.access_log`) only when this connection manager has
    # access logs: building an entry nobody writes is a good part of a small request.
    log_access: bool = field(init=False)

    def __post_init__(self) -> None:
        self.clock = trio.lowlevel.current_clock()
        self.timers = self.runtime.pools.timers
        self.log_access = bool(self.config.access_logs)
        self.stats = self.runtime.stats
        self.names = http_names(self.config.stat_prefix)
        self.format = FormatContext(self.remote, self.local)
        self.limits = Limits(
            max_headers_bytes=self.config.max_request_headers_kb * 1024,
            max_headers_count=self.config.max_headers_count,
        )


class DownstreamStream(ABC):
    """One request's side of the downstream connection."""

    stream_id: int
    protocol: str
    expect_continue: bool = False
    reset_by_peer: bool = False

    @abstractmethod
    async def receive(self) -> Data | EndOfMessage:
        """The next request body event; raises `DownstreamReset` or `DownstreamProtocolError`."""

    @abstractmethod
    async def ack(self, size: int) -> None:
        """`size` request body bytes were forwarded (HTTP/2: reopen the window)."""

    @abstractmethod
    def write(self, event: Event) -> None:
        """Serialize a response event; sent by the next `flush`."""

    @abstractmethod
    async def flush(self) -> None:
        """Send what was written, waiting for the client's flow control window."""

    @abstractmethod
    def ending_early(self) -> None:
        """The response will end before the request: HTTP/1.1 closes the connection
        after it, HTTP/2 resets the request side with NO_ERROR once it is sent."""

    @abstractmethod
    async def reset(self) -> None:
        """Abandon the response (HTTP/1.1: close the connection; HTTP/2: RST_STREAM)."""
