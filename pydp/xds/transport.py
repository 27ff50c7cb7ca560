"""A gRPC bidirectional stream over HTTP/2 on trio (`h2`), for the ADS client.

grpcio has no trio support, so this speaks gRPC's wire format directly: one
HTTP/2 POST with `content-type: application/grpc` and `te: trailers`, each
message prefixed by a compressed flag and a 4-byte big-endian length, and the
call's status in the trailers (`grpc-status`, `grpc-message`), or in the
headers of a Trailers-Only response.

Theory of operation. The stream is driven by the one task that uses it, with
no task of its own: `receive()` reads the socket until a whole message is
buffered, and `send()` reads it too when the peer's flow-control window is
shut. Whatever the socket brings (window updates, pings, settings) is handled
by `h2` on the way. Any failure, or the end of the call, raises `GrpcError`,
which the caller answers by reconnecting. Closing is closing the socket, so
cancellation needs no cleanup task and leaves no thread behind.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Protocol
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trio

ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
DELTA_ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
UNAVAILABLE = 14
INTERNAL = 13
RESOURCE_EXHAUSTED = 8
OK = 0
_WINDOW = 16 * 1024 * 1024
_READ_SIZE = 256 * 1024
DEFAULT_MAX_MESSAGE = 256 * 1024 * 1024


class MessageStream(Protocol):
    """What the ADS client needs of a stream: `GrpcStream`, or a fake in tests."""

    async def __aenter__(self) -> MessageStream: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def send(self, message: bytes) -> None: ...
    async def receive(self) -> bytes: ...


class GrpcError(Exception):
    """The call ended: its gRPC status code and message (UNAVAILABLE for lost connections)."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"gRPC status {code}: {message}")


class MessageReader:
    """Splits a gRPC byte stream into messages; I/O-free."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._buffer = bytearray()
        self._max = max_message

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out = []
        while len(self._buffer) >= 5:
            compressed = self._buffer[0]
            length = int.from_bytes(self._buffer[1:5], "big")
            if compressed:
                raise GrpcError(INTERNAL, "compressed message, but no compression was negotiated")
            if length > self._max:
                raise GrpcError(
                    RESOURCE_EXHAUSTED, f"message of {length} bytes exceeds the {self._max} limit"
                )
            if len(self._buffer) < 5 + length:
                break
            out.append(bytes(self._buffer[5 : 5 + length]))
            del self._buffer[: 5 + length]
        return out

    @property
    def partial(self) -> bool:
        return bool(self._buffer)


def frame(message: bytes) -> bytes:
    """A message with gRPC's 5-byte prefix (uncompressed)."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


async def open_grpc_stream(
    host: str,
    port: int,
    method: str,
    *,
    connect_timeout: float = 5.0,
    max_message: int = DEFAULT_MAX_MESSAGE,
    metadata: Sequence[tuple[str, str]] = (),
) -> GrpcStream:
    """Connect and start a call; use the result as an async context manager to close it."""
    try:
        with trio.fail_after(connect_timeout):
            sock = await trio.open_tcp_stream(host, port)
    except (OSError, trio.TooSlowError) as exc:
        raise GrpcError(UNAVAILABLE, f"cannot connect to {host}:{port}: {exc}") from exc
    stream = GrpcStream(sock, f"{host}:{port}", max_message)
    try:
        await stream.start(method, metadata)
    except BaseException:
        await sock.aclose()
        raise
    return stream


class GrpcStream:
    """One gRPC call on its own HTTP/2 connection."""

    def __init__(self, sock: trio.SocketStream, authority: str, max_message: int) -> None:
        self._sock = sock
        self._authority = authority
        self._conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self._reader = MessageReader(max_message)
        self._messages: collections.deque[bytes] = collections.deque()
        self._error: GrpcError | None = None
        self._stream_id = 0

    async def __aenter__(self) -> GrpcStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._sock.aclose()

    async def start(self, method: str, metadata: Sequence[tuple[str, str]] = ()) -> None:
        self._conn.initiate_connection()
        self._conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW})
        self._conn.increment_flow_control_window(_WINDOW)
        self._stream_id = self._conn.get_next_available_stream_id()
        self._conn.send_headers(
            self._stream_id,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", method),
                (":authority", self._authority),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("user-agent", "pydp-xds"),
                *metadata,
            ],
        )
        await self._flush()

    async def send(self, message: bytes) -> None:
        """Send one message, waiting for flow-control credit if need be."""
        data = memoryview(frame(message))
        while data:
            self._raise_if_ended()
            window = min(
                self._conn.local_flow_control_window(self._stream_id),
                self._conn.max_outbound_frame_size,
            )
            if window <= 0:
                await self._read_once()
                continue
            self._conn.send_data(self._stream_id, bytes(data[:window]))
            data = data[window:]
            await self._flush()

    async def receive(self) -> bytes:
        """The next message; raises `GrpcError` once the call has ended."""
        while not self._messages:
            self._raise_if_ended()
            await self._read_once()
        return self._messages.popleft()

    def _raise_if_ended(self) -> None:
        if self._error is not None:
            raise self._error

    async def _read_once(self) -> None:
        try:
            data = await self._sock.receive_some(_READ_SIZE)
        except (trio.BrokenResourceError, OSError) as exc:
            self._error = GrpcError(UNAVAILABLE, f"connection lost: {exc}")
            raise self._error from exc
        if not data:
            self._error = GrpcError(UNAVAILABLE, "the server closed the connection")
            raise self._error
        try:
            events = self._conn.receive_data(data)
            for event in events:
                self._on_event(event)
        except h2.exceptions.ProtocolError as exc:
            self._error = GrpcError(INTERNAL, f"HTTP/2 protocol error: {exc}")
        except GrpcError as exc:
            self._error = exc
        await self._flush()

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            headers = _headers(event.headers)
            if headers.get(":status") != "200":
                raise GrpcError(UNAVAILABLE, f"HTTP status {headers.get(':status')}")
            if "grpc-status" in headers:  # Trailers-Only
                raise _status(headers)
        elif isinstance(event, h2.events.DataReceived):
            self._conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self._messages.extend(self._reader.feed(event.data or b""))
        elif isinstance(event, h2.events.TrailersReceived):
            raise _status(_headers(event.headers))
        elif isinstance(event, h2.events.StreamReset):
            raise GrpcError(UNAVAILABLE, f"stream reset by the server (code {event.error_code})")
        elif isinstance(event, h2.events.ConnectionTerminated):
            raise GrpcError(
                UNAVAILABLE,
                f"the server sent GOAWAY ({event.error_code}, {event.additional_data!r})",
            )
        elif isinstance(event, h2.events.StreamEnded) and self._error is None:
            raise GrpcError(INTERNAL, "the call ended without a grpc-status")

    async def _flush(self) -> None:
        data = self._conn.data_to_send()
        if not data:
            return
        try:
            await self._sock.send_all(data)
        except (trio.BrokenResourceError, OSError) as exc:
            self._error = GrpcError(UNAVAILABLE, f"connection lost: {exc}")
            raise self._error from exc


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {bytes(k).decode("latin-1"): bytes(v).decode("latin-1") for k, v in raw}


def _status(headers: dict[str, str]) -> GrpcError:
    code = headers.get("grpc-status", "")
    message = unquote(headers.get("grpc-message", ""))
    if not code.isdigit():
        return GrpcError(INTERNAL, f"malformed grpc-status {code!r}")
    if int(code) == OK:
        return GrpcError(OK, message or "the server ended the call")
    return GrpcError(int(code), message)
