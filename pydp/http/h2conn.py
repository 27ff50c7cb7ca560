"""HTTP/2 connections (h2 library) speaking pydp's events, both sides.

Theory of operation
-------------------
`h2.H2Connection` does the framing, HPACK, stream states and header
validation; a protocol error it detects is a connection error (GOAWAY, then
`RemoteProtocolError` from `receive_data`), which is also Envoy's default
for invalid HTTP/2 messaging. These classes map h2's events to pydp's, add
the checks Envoy makes above the codec (Host, CONNECT, header and body
limits: a `StreamError` for that stream only), and own flow control
(`pydp.http.h2_flow`).

GOAWAY does not stop the streams it lets finish: h2 would refuse every frame
after one, so its connection state machine is replaced by one where GOAWAY
changes nothing, and the refusal of new streams is done here. A client told
GOAWAY reports the streams above `last_stream_id` as reset with
REFUSED_STREAM (never processed, safe to retry) and opens no new stream; a
server that sent GOAWAY (`close()`, Envoy's drain) refuses new streams.

Every method that makes output leaves it in `data_to_send()`; `send`,
`ack_data` and `close` also return it, `receive_data` does not (call
`data_to_send()` after it: SETTINGS and PING acknowledgements, flushed data).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

from h2 import events as h2e
from h2.config import H2Configuration
from h2.connection import (
    ConnectionInputs,
    ConnectionState,
    H2Connection,
    H2ConnectionStateMachine,
)
from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError as H2ProtocolError
from h2.exceptions import StreamClosedError
from h2.settings import SettingCodes, Settings

from pydp.http import h2_headers
from pydp.http.errors import LocalProtocolError, RemoteProtocolError
from pydp.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Headers,
    InformationalResponse,
    Request,
    Response,
    StreamError,
    StreamReset,
    WindowUpdated,
)
from pydp.http.h2_flow import FlowControl
from pydp.http.headers import STATUS_BYTES, regular
from pydp.http.limits import H2Options, Limits

_H2_DEFAULT_WINDOW = 65535
_STAY_OPEN = {
    (state, goaway): (None, state)
    for state in (ConnectionState.CLIENT_OPEN, ConnectionState.SERVER_OPEN)
    for goaway in (ConnectionInputs.SEND_GOAWAY, ConnectionInputs.RECV_GOAWAY)
}
_FLOW_SETTINGS = (SettingCodes.INITIAL_WINDOW_SIZE, SettingCodes.MAX_FRAME_SIZE)


class _GracefulStateMachine(H2ConnectionStateMachine):
    """h2's connection state machine, except that GOAWAY closes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self._transitions = {**self._transitions, **_STAY_OPEN}


class _H2Connection:
    """What the server and client sides share."""

    _client_side = False

    def __init__(self, *, limits: Limits | None, options: H2Options | None) -> None:
        self._limits = limits or Limits()
        options = options or H2Options()
        config = H2Configuration(client_side=self._client_side, header_encoding=None)
        h2 = self._h2 = H2Connection(config)
        h2.state_machine = _GracefulStateMachine()
        list_size = self._limits.max_headers_bytes + 32 * (self._limits.max_headers_count + 8)
        settings = {
            SettingCodes.MAX_CONCURRENT_STREAMS: options.max_concurrent_streams,
            SettingCodes.INITIAL_WINDOW_SIZE: options.initial_stream_window_size,
            SettingCodes.MAX_HEADER_LIST_SIZE: list_size,
        }
        if self._client_side:
            settings[SettingCodes.ENABLE_PUSH] = 0
        h2.local_settings = Settings(client=self._client_side, initial_values=settings)
        h2.decoder.max_header_list_size = list_size
        h2.initiate_connection()
        extra = options.initial_connection_window_size - _H2_DEFAULT_WINDOW
        if extra > 0:
            h2.increment_flow_control_window(extra)
        self._flow = FlowControl(h2)
        self._error_status = 502 if self._client_side else 400
        self._trailers: dict[int, Headers] = {}
        self._body: dict[int, int] = {}
        # Streams whose further events are dropped; `_unknown` were never reported.
        self._muted: set[int] = set()
        self._unknown: set[int] = set()
        self._ended_by_headers: set[int] = set()
        self._goaway_received = False
        self._goaway_sent = False
        self._terminated = False
        self._eof_seen = False
        self._handlers: dict[type[h2e.Event], Callable[[Any, list[Event]], None]] = {
            h2e.RequestReceived: self._on_request,
            h2e.ResponseReceived: self._on_response,
            h2e.InformationalResponseReceived: self._on_response,
            h2e.DataReceived: self._on_data,
            h2e.TrailersReceived: self._on_trailers,
            h2e.StreamEnded: self._on_stream_ended,
            h2e.StreamReset: self._on_reset,
            h2e.WindowUpdated: self._on_window_updated,
            h2e.RemoteSettingsChanged: self._on_settings,
            h2e.ConnectionTerminated: self._on_goaway,
        }

    @property
    def wants_data(self) -> bool:
        return not self._terminated

    @property
    def should_close(self) -> bool:
        """True after EOF or a protocol error, or once GOAWAY went either way
        and no stream is open any more."""
        if self._terminated:
            return True
        if self._goaway_sent or self._goaway_received:
            return all(stream.closed for stream in self._h2.streams.values())
        return False

    def data_to_send(self) -> bytes:
        return self._h2.data_to_send()

    def buffered_outbound(self, stream_id: int) -> int:
        return self._flow.buffered(stream_id)

    def ack_data(self, stream_id: int, size: int) -> bytes:
        """`size` bytes of this stream's `Data` were forwarded: reopen the window."""
        self._flow.ack(stream_id, size)
        return self._h2.data_to_send()

    def close(self, error_code: int = 0) -> bytes:
        """Send GOAWAY: no new streams; the open ones may finish."""
        if not self._goaway_sent and not self._terminated:
            self._goaway_sent = True
            self._h2.close_connection(error_code)
        return self._h2.data_to_send()

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer (b"" for EOF); return the events."""
        if not data:
            return self._eof()
        if self._terminated:
            return []
        try:
            received = self._h2.receive_data(data)
        except H2ProtocolError as exc:
            self._terminated = True
            raise RemoteProtocolError(
                f"HTTP/2 protocol error: {exc}",
                status=self._error_status,
                details="http2.violation.of.messaging.rule",
            ) from exc
        out: list[Event] = []
        handlers = self._handlers
        for event in received:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event, out)
        return out

    def _reject(self, stream_id: int, error: RemoteProtocolError, out: list[Event]) -> None:
        error.stream_id = stream_id
        self._muted.add(stream_id)
        self._flow.release(stream_id)
        self._trailers.pop(stream_id, None)
        out.append(StreamError(stream_id, error))
        if self._client_side:
            self._reset(stream_id, ErrorCodes.PROTOCOL_ERROR)

    def _on_request(self, event: h2e.RequestReceived, out: list[Event]) -> None:
        stream_id = event.stream_id
        if self._goaway_sent:
            self._muted.add(stream_id)
            self._unknown.add(stream_id)
            self._reset(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        try:
            out += h2_headers.request_events(
                stream_id, event.headers, event.stream_ended is not None, self._limits
            )
        except RemoteProtocolError as error:
            self._reject(stream_id, error, out)

    def _on_response(
        self, event: h2e.ResponseReceived | h2e.InformationalResponseReceived, out: list[Event]
    ) -> None:
        stream_id = event.stream_id
        if stream_id in self._muted:
            return
        end = isinstance(event, h2e.ResponseReceived) and event.stream_ended is not None
        try:
            out.append(h2_headers.response_event(stream_id, event.headers, end, self._limits))
        except RemoteProtocolError as error:
            self._reject(stream_id, error, out)

    def _on_data(self, event: h2e.DataReceived, out: list[Event]) -> None:
        stream_id = event.stream_id
        data = event.data
        if stream_id in self._muted:
            self._flow.discard(stream_id, event.flow_controlled_length)
            return
        self._flow.received(stream_id, len(data), event.flow_controlled_length)
        if not data:
            return
        limit = self._limits.max_body_bytes
        if limit is not None:
            size = self._body[stream_id] = self._body.get(stream_id, 0) + len(data)
            if size > limit:
                error = RemoteProtocolError(
                    f"body larger than {limit} bytes",
                    status=413 if not self._client_side else 502,
                    details="request_payload_too_large",
                )
                self._reject(stream_id, error, out)
                return
        out.append(Data(stream_id, data))

    def _on_trailers(self, event: h2e.TrailersReceived, out: list[Event]) -> None:
        stream_id = event.stream_id
        if stream_id in self._muted:
            return
        try:
            self._trailers[stream_id] = h2_headers.trailers(
                event.headers, self._limits, 502 if self._client_side else 431
            )
        except RemoteProtocolError as error:
            self._reject(stream_id, error, out)

    def _on_stream_ended(self, event: h2e.StreamEnded, out: list[Event]) -> None:
        stream_id = event.stream_id
        self._body.pop(stream_id, None)
        if stream_id not in self._muted:
            out.append(EndOfMessage(stream_id, self._trailers.pop(stream_id, [])))

    def _on_reset(self, event: h2e.StreamReset, out: list[Event]) -> None:
        stream_id = event.stream_id
        self._forget(stream_id)
        if stream_id not in self._unknown:
            out.append(StreamReset(stream_id, int(event.error_code or 0)))

    def _on_window_updated(self, event: h2e.WindowUpdated, out: list[Event]) -> None:
        out += [WindowUpdated(stream_id) for stream_id in self._flow.resume(event.stream_id)]

    def _on_settings(self, event: h2e.RemoteSettingsChanged, out: list[Event]) -> None:
        if any(code in event.changed_settings for code in _FLOW_SETTINGS):
            out += [WindowUpdated(stream_id) for stream_id in self._flow.resume(0)]

    def _on_goaway(self, event: h2e.ConnectionTerminated, out: list[Event]) -> None:
        self._goaway_received = True
        last = event.last_stream_id if event.last_stream_id is not None else 2**31 - 1
        self._refuse_above(last, out)
        out.append(ConnectionClosed(int(event.error_code or 0), event.last_stream_id))

    def _refuse_above(self, last_stream_id: int, out: list[Event]) -> None:
        """Client side reports the streams GOAWAY says were never processed."""

    def _forget(self, stream_id: int) -> None:
        self._flow.forget(stream_id)
        self._trailers.pop(stream_id, None)
        self._body.pop(stream_id, None)
        self._ended_by_headers.discard(stream_id)

    def _reset(self, stream_id: int, code: int) -> None:
        with suppress(StreamClosedError):
            self._h2.reset_stream(stream_id, code)
        self._forget(stream_id)

    def _eof(self) -> list[Event]:
        if self._eof_seen:
            return []
        self._eof_seen = True
        self._terminated = True
        # The client went away (CANCEL), or the upstream did (INTERNAL_ERROR).
        code = ErrorCodes.INTERNAL_ERROR if self._client_side else ErrorCodes.CANCEL
        out: list[Event] = [
            StreamReset(stream_id, code)
            for stream_id, stream in sorted(self._h2.streams.items())
            if not stream.closed and stream_id not in self._unknown
        ]
        out.append(ConnectionClosed())
        return out

    def send(self, event: Event) -> bytes:
        """Serialize one event; sends on a stream the peer has reset are dropped."""
        try:
            self._send(event)
        except StreamClosedError:
            pass
        except H2ProtocolError as exc:
            raise LocalProtocolError(f"cannot send {type(event).__name__}: {exc}") from exc
        return self._h2.data_to_send()

    def _send(self, event: Event) -> None:
        if isinstance(event, Data):
            self._flow.send(event.stream_id, event.data)
        elif isinstance(event, EndOfMessage):
            stream_id = event.stream_id
            if stream_id in self._ended_by_headers:
                self._ended_by_headers.discard(stream_id)
                if event.trailers:
                    raise LocalProtocolError(f"stream {stream_id} already ended with its headers")
            else:
                self._flow.end(stream_id, event.trailers)
        elif isinstance(event, StreamReset):
            self._reset(event.stream_id, event.code)
        else:
            self._send_head(event)

    def _send_head(self, event: Event) -> None:
        raise LocalProtocolError(f"cannot send {type(event).__name__} on this side")

    def _headers(self, stream_id: int, headers: Headers, end: bool) -> None:
        self._h2.send_headers(stream_id, headers, end_stream=end)
        if end:
            self._ended_by_headers.add(stream_id)


class H2ServerConnection(_H2Connection):
    """One downstream HTTP/2 connection (prior-knowledge h2c or ALPN h2).

    Feed it everything from the first byte, the client preface included."""

    _client_side = False

    def __init__(self, *, limits: Limits | None = None, options: H2Options | None = None) -> None:
        super().__init__(limits=limits, options=options)

    def _send_head(self, event: Event) -> None:
        if isinstance(event, Response):
            if event.status < 200:
                raise LocalProtocolError(f"{event.status} must be sent as InformationalResponse")
            headers = [(b":status", _status(event.status))]
            headers += regular(event.headers)
            self._headers(event.stream_id, headers, event.end_stream)
        elif isinstance(event, InformationalResponse):
            if not 100 <= event.status < 200 or event.status == 101:
                raise LocalProtocolError(f"invalid informational status {event.status}")
            headers = [(b":status", _status(event.status))]
            headers += regular(event.headers)
            self._h2.send_headers(event.stream_id, headers)
        else:
            super()._send_head(event)


class H2ClientConnection(_H2Connection):
    """One upstream HTTP/2 connection. Open streams in the order their
    requests are sent; `available_streams` respects the peer's limit."""

    _client_side = True

    def __init__(self, *, limits: Limits | None = None, options: H2Options | None = None) -> None:
        super().__init__(limits=limits, options=options)
        self._next_stream_id = 1
        self._reserved: set[int] = set()

    @property
    def available_streams(self) -> int:
        """How many more streams may be opened now (0: queue the request)."""
        if self._goaway_received or self._goaway_sent or self._terminated:
            return 0
        h2 = self._h2
        limit = h2.remote_settings.max_concurrent_streams
        in_use = h2.open_outbound_streams + len(self._reserved)
        return max(0, min(limit, 2**31 - 1) - in_use)

    def open_stream(self) -> int:
        if self.available_streams <= 0:
            raise LocalProtocolError("no stream available: queue the request")
        stream_id = self._next_stream_id
        self._next_stream_id += 2
        self._reserved.add(stream_id)
        return stream_id

    def _send_head(self, event: Event) -> None:
        if isinstance(event, Request):
            self._reserved.discard(event.stream_id)
            self._headers(event.stream_id, event.headers, event.end_stream)
        else:
            super()._send_head(event)

    def _refuse_above(self, last_stream_id: int, out: list[Event]) -> None:
        refused = [
            sid for sid, s in self._h2.streams.items() if sid > last_stream_id and not s.closed
        ]
        refused += [sid for sid in self._reserved if sid > last_stream_id]
        self._reserved.clear()
        for stream_id in sorted(refused):
            self._forget(stream_id)
            out.append(StreamReset(stream_id, ErrorCodes.REFUSED_STREAM))


def _status(status: int) -> bytes:
    try:
        return STATUS_BYTES[status]
    except KeyError:
        raise LocalProtocolError(f"invalid status {status}") from None
