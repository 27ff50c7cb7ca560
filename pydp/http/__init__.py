"""pydp's HTTP protocol layer, without I/O: HTTP/1.1 and HTTP/2 connections,
server side (downstream) and client side (upstream), all speaking the events
of `pydp.http.events`.

Every connection has `receive_data(bytes) -> list[Event]` (b"" means EOF),
`send(Event) -> bytes`, `data_to_send() -> bytes`, `ack_data(stream_id, n)
-> bytes`, `buffered_outbound(stream_id) -> int`, `close() -> bytes`,
`wants_data` and `should_close`. Client sides add `available_streams` and
`open_stream()`; the HTTP/1.1 server adds `next_events()` (pipelining).
"""

from pydp.http.detect import H2_PREFACE, detect_protocol, protocol_from_alpn
from pydp.http.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from pydp.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    ExpectContinue,
    Headers,
    InformationalResponse,
    Request,
    Response,
    StreamError,
    StreamReset,
    WindowUpdated,
)
from pydp.http.h1_client import H1ClientConnection
from pydp.http.h1_server import H1ServerConnection
from pydp.http.h2conn import H2ClientConnection, H2ServerConnection
from pydp.http.limits import H1Options, H2Options, Limits

__all__ = [
    "H2_PREFACE",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "ExpectContinue",
    "H1ClientConnection",
    "H1Options",
    "H1ServerConnection",
    "H2ClientConnection",
    "H2Options",
    "H2ServerConnection",
    "Headers",
    "InformationalResponse",
    "Limits",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "Request",
    "Response",
    "StreamError",
    "StreamReset",
    "WindowUpdated",
    "detect_protocol",
    "protocol_from_alpn",
]
