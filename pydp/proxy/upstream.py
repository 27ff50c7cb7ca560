"""Upstream HTTP connections, and the one-request view of them the router drives.

Theory of operation
-------------------
An `UpstreamStream` is one attempt's exchange: `write` events (serialized at
once into an output buffer), `flush` them, `receive` the response events,
`ack` forwarded response bytes (HTTP/2 flow control) and `release` it when
the attempt is over, reusable or not.

HTTP/1.1: the connection is the stream (one request at a time, never
pipelined). There is no reader task: the attempt reads the socket itself,
so its pool watches the idle connections for a close or stray bytes
(`pydp.proxy.pools`).

HTTP/2: one reader task per connection (run in the pool manager's nursery)
feeds the codec and hands each stream's events to its `Inbox`; writers share
the socket through a lock and a common output buffer: whoever holds the lock
sends everything queued until the buffer is empty, so a flush that finds the
lock taken leaves its bytes to the holder and returns. A stream's `flush`
also waits while the codec holds more than `HIGH_WATER` bytes of it back for
lack of window (the peer's back-pressure).

Reset reasons are Envoy's: a closed or reset HTTP/1.1 connection and an
HTTP/2 connection lost under a stream are `CONNECTION_TERMINATION`, an
RST_STREAM is `REMOTE_RESET` (`REFUSED_STREAM` for REFUSED_STREAM or
GOAWAY), an unparsable response `PROTOCOL_ERROR`.

`connect` opens the connection to a host, and with a cluster's TLS client
context also does the TLS handshake (within the same `connect_timeout`, as
Envoy's connect timer runs until the transport socket is connected). A
failed handshake or a refused server certificate is a connect failure
(`CONNECTION_FAILURE`, which Envoy 1.40 reports as "remote connection
failure"); the connections work the same on the TLS stream.
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import trio
from h2.errors import ErrorCodes

from pydp.http import (
    ConnectionClosed,
    EndOfMessage,
    Event,
    H1ClientConnection,
    H2ClientConnection,
    H2Options,
    RemoteProtocolError,
    Request,
    StreamError,
    StreamReset,
    WindowUpdated,
)
from pydp.proxy.inbox import Inbox, Signal
from pydp.sockets import receive_some, send_all, write_now
from pydp.stats import Stats
from pydp.tls.contexts import ClientContext
from pydp.tls.handshake import TlsFailure, originate
from pydp.tls.stream import TlsStream
from pydp.upstream.breakers import RoutingPriority
from pydp.upstream.retry import ResetReason

if TYPE_CHECKING:
    from pydp.proxy.pools import HostPool

RECEIVE_SIZE = 65536
HIGH_WATER = 64 * 1024
STREAM_WINDOW = 1024 * 1024


class UpstreamReset(Exception):
    """The attempt ended without (the rest of) a response."""

    def __init__(self, reason: ResetReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class ConnectFailure(Exception):
    """The connection to a host could not be made (`transport_failure`: why TLS failed)."""

    def __init__(self, reason: ResetReason, address: str, transport_failure: str = "") -> None:
        detail = f": {transport_failure}" if transport_failure else ""
        super().__init__(f"connecting to {address}: {reason.value}{detail}")
        self.reason = reason
        self.transport_failure = transport_failure


async def connect(
    address: str,
    port: int,
    connect_timeout: float,
    tls: ClientContext | None = None,
    stats: Stats | None = None,
    ssl_prefix: str = "",
) -> trio.abc.Stream:
    """A connection to `address:port`, over TLS with `tls` (handshake stats under `ssl_prefix`
    in `stats`); raises `ConnectFailure`."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    label = f"[{address}]:{port}" if family == socket.AF_INET6 else f"{address}:{port}"
    try:
        with trio.fail_after(connect_timeout):
            await sock.connect((address, port))
            stream = trio.SocketStream(sock)
            if tls is None:
                return stream
            return await originate(stream, tls, stats if stats is not None else Stats(), ssl_prefix)
    except trio.TooSlowError:
        sock.close()
        raise ConnectFailure(ResetReason.CONNECTION_TIMEOUT, label) from None
    except TlsFailure as failure:
        sock.close()
        raise ConnectFailure(ResetReason.CONNECTION_FAILURE, label, str(failure)) from None
    except OSError:
        sock.close()
        raise ConnectFailure(ResetReason.CONNECTION_FAILURE, label) from None
    except BaseException:
        sock.close()
        raise


def raw_socket(stream: trio.abc.Stream) -> trio.socket.SocketType:
    """The socket under a connection, plain or TLS."""
    while isinstance(stream, TlsStream):
        stream = stream.transport_stream
    assert isinstance(stream, trio.SocketStream)
    return stream.socket


class UpstreamStream(ABC):
    stream_id: int
    protocol: str

    @abstractmethod
    def write(self, event: Event) -> None: ...

    @abstractmethod
    async def flush(self) -> None:
        """Send what was written; a broken connection shows up in `receive`."""

    @abstractmethod
    async def receive(self) -> list[Event]:
        """The next response events (raises `UpstreamReset` when the connection failed)."""

    @abstractmethod
    def reason(self, event: StreamReset | StreamError) -> ResetReason: ...

    @abstractmethod
    async def ack(self, size: int) -> None: ...

    @abstractmethod
    def release(self) -> None:
        """The attempt is over: keep the connection if it can serve another request."""


class H1Upstream(UpstreamStream):
    protocol = "HTTP/1.1"

    def __init__(self, sock: trio.abc.Stream, pool: HostPool, priority: RoutingPriority) -> None:
        self.sock = sock
        self.raw = raw_socket(sock)
        self.pool = pool
        self.priority = priority
        self.codec = H1ClientConnection()
        self.out = bytearray()
        self.stream_id = 0
        self.requests = 0
        self.broken = False
        self.closed = False
        self.clock = trio.lowlevel.current_clock()
        self.last_used = self.clock.current_time()
        self.sent = False
        self.fd = self.raw.fileno()

    def open(self) -> H1Upstream:
        self.stream_id = self.codec.open_stream()
        self.requests += 1
        return self

    def write(self, event: Event) -> None:
        self.out += self.codec.send(event)

    async def flush(self) -> None:
        out = self.out
        if not out or self.broken:
            return
        self.out = bytearray()
        try:
            rest = write_now(self.sock, out)
            if rest:
                await self.sock.send_all(rest)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.broken = True
        self.sent = True

    async def receive(self) -> list[Event]:
        while True:
            sent, self.sent = self.sent, False
            data = await receive_some(self.sock, yield_first=sent)
            try:
                events = self.codec.receive_data(data)
            except RemoteProtocolError:
                self.broken = True
                raise UpstreamReset(ResetReason.PROTOCOL_ERROR) from None
            if events:
                return events
            if not data:
                self.broken = True
                raise UpstreamReset(ResetReason.CONNECTION_TERMINATION)

    def reason(self, event: StreamReset | StreamError) -> ResetReason:
        if isinstance(event, StreamError):
            return ResetReason.PROTOCOL_ERROR
        return ResetReason.CONNECTION_TERMINATION

    async def ack(self, size: int) -> None:
        pass

    def release(self) -> None:
        self.pool.release_h1(self)

    def reusable(self) -> bool:
        return not self.broken and not self.closed and self.codec.available_streams > 0

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.raw.close()
            self.pool.connection_closed(self)


class H2UpstreamConnection:
    protocol = "HTTP/2"

    def __init__(self, sock: trio.abc.Stream, pool: HostPool, priority: RoutingPriority) -> None:
        self.sock = sock
        self.raw = raw_socket(sock)
        self.pool = pool
        self.priority = priority
        self.codec = H2ClientConnection(options=H2Options(initial_stream_window_size=STREAM_WINDOW))
        self.out = bytearray(self.codec.data_to_send())
        self.lock = trio.Lock()
        self.streams: dict[int, H2UpstreamStream] = {}
        self.requests = 0
        self.max_requests: int | None = None
        self.eof = False
        self.protocol_error = False
        self.dead = False
        self.draining = False
        self.closed = False
        self.scope = trio.CancelScope()
        self.last_used = trio.current_time()

    def usable(self) -> bool:
        if self.dead or self.draining:
            return False
        if self.max_requests is not None and self.requests >= self.max_requests:
            return False
        return self.codec.available_streams > 0

    def open_stream(self) -> H2UpstreamStream:
        stream = H2UpstreamStream(self, self.codec.open_stream())
        self.streams[stream.stream_id] = stream
        self.requests += 1
        return stream

    async def flush(self, wait: bool = False) -> None:
        """Send everything queued, or leave it to the flush in progress (which sends
        whatever is queued before it ends): waiting for the lock would only queue
        tasks behind it, one scheduler pass each. `wait` (before closing) waits for it."""
        if not wait and self.lock.locked():
            return
        async with self.lock:
            while self.out and not self.dead:
                out, self.out = self.out, bytearray()
                try:
                    await send_all(self.sock, out)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self.dead = True
                    self.scope.cancel()

    async def run(self, idle_timeout: float | None) -> None:
        """The reader task: until EOF, a protocol error, idleness or `close()`."""
        try:
            with self.scope:
                await self._read(idle_timeout)
        finally:
            self.dead = True
            for stream in list(self.streams.values()):
                stream.inbox.put(StreamReset(stream.stream_id, ErrorCodes.INTERNAL_ERROR))
                stream.window.fire()
            self.close()

    async def _read(self, idle_timeout: float | None) -> None:
        while True:
            deadline = trio.current_time() + idle_timeout if idle_timeout else float("inf")
            with trio.move_on_at(deadline if not self.streams else float("inf")) as idle:
                data = await receive_some(self.sock, RECEIVE_SIZE)
            if idle.cancelled_caught:
                if not self.streams:
                    return
                continue
            if not data:
                self.eof = True
            try:
                events = self.codec.receive_data(data)
            except RemoteProtocolError:
                self.protocol_error = True
                self.out += self.codec.data_to_send()
                await self.flush(wait=True)
                return
            self.out += self.codec.data_to_send()
            self._dispatch(events)
            if self.out:
                await self.flush()
            if self.eof:
                return

    def _dispatch(self, events: list[Event]) -> None:
        streams = self.streams
        for event in events:
            if isinstance(event, WindowUpdated):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.window.fire()
            elif isinstance(event, ConnectionClosed):
                self.draining = True
                self.pool.capacity_changed()
            else:
                stream = streams.get(getattr(event, "stream_id", -1))
                if stream is not None:
                    stream.inbox.put(event)

    def stream_done(self, stream: H2UpstreamStream) -> None:
        self.streams.pop(stream.stream_id, None)
        self.last_used = trio.current_time()
        if self.draining and not self.streams:
            self.scope.cancel()
        else:
            self.pool.capacity_changed()

    def drain(self) -> None:
        self.draining = True
        if not self.streams:
            self.scope.cancel()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.dead = True
            self.scope.cancel()
            self.raw.close()
            self.pool.connection_closed(self)


class H2UpstreamStream(UpstreamStream):
    protocol = "HTTP/2"

    def __init__(self, conn: H2UpstreamConnection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.inbox: Inbox[Event] = Inbox()
        self.window = Signal()
        self.request_ended = False
        self.response_ended = False
        self.released = False

    def write(self, event: Event) -> None:
        conn = self.conn
        if conn.dead:
            return
        if isinstance(event, EndOfMessage) or (isinstance(event, Request) and event.end_stream):
            self.request_ended = True
        conn.out += conn.codec.send(event)

    async def flush(self) -> None:
        conn = self.conn
        await conn.flush()
        codec = conn.codec
        while (
            not conn.dead
            and not self.response_ended
            and codec.buffered_outbound(self.stream_id) > HIGH_WATER
        ):
            await self.window.wait()

    async def receive(self) -> list[Event]:
        inbox = self.inbox
        events = [await inbox.get(), *inbox.take_all()]
        for event in events:
            if isinstance(event, EndOfMessage | StreamReset | StreamError):
                self.response_ended = True
        return events

    def reason(self, event: StreamReset | StreamError) -> ResetReason:
        conn = self.conn
        if isinstance(event, StreamError) or conn.protocol_error:
            return ResetReason.PROTOCOL_ERROR
        if conn.eof or conn.dead:
            return ResetReason.CONNECTION_TERMINATION
        if event.code == ErrorCodes.REFUSED_STREAM:
            return ResetReason.REFUSED_STREAM
        return ResetReason.REMOTE_RESET

    async def ack(self, size: int) -> None:
        conn = self.conn
        if conn.dead or self.response_ended:
            return
        conn.out += conn.codec.ack_data(self.stream_id, size)
        await conn.flush()

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        conn = self.conn
        if not conn.dead and not (self.request_ended and self.response_ended):
            conn.out += conn.codec.send(StreamReset(self.stream_id, ErrorCodes.CANCEL))
            conn.pool.flush_soon(conn)
        conn.stream_done(self)
