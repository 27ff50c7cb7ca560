"""An HTTP/2 connection (RFC 9113) speaking pydp's events, without I/O: what both sides share.

Theory of operation
-------------------
`receive_data` cuts the input into frames (`pydp.http.h2_frames`) and hands
HEADERS and DATA to `pydp.http.h2_messages`, which decodes header blocks
(`pydp.http.h2_hpack`), checks them (`pydp.http.h2_headers`) and maps what
arrives to pydp's events; the control frames are handled here and flow
control is `pydp.http.h2_flow`'s. A protocol error is a connection error:
GOAWAY, then `RemoteProtocolError` from `receive_data` - also Envoy's
default for invalid HTTP/2 messaging.

A repeated head costs little: when a header block leaves the HPACK table
as it was, what was made of it is remembered for as long as the table does
not change, so the next identical block (a client's next request: every
field indexed) skips decoding and checking; on the way out, an encoded
response head is reused likewise (`pydp.http.h2conn`).

GOAWAY does not stop the streams it lets finish. A client told GOAWAY
reports the streams above `last_stream_id` as reset with REFUSED_STREAM
(never processed, safe to retry) and opens no new stream; a server that sent
GOAWAY (`close()`, Envoy's drain) refuses new streams.

Where this differs from the h2 library it replaced, it is Envoy's (nghttp2's)
behaviour or RFC 9113's: frames in flight after our RST_STREAM are ignored,
not answered with another; RST_STREAM on an idle stream and a CONTINUATION
without its HEADERS are always connection errors; an undecodable header
block is a COMPRESSION_ERROR; a request beyond our stream limit is refused
with REFUSED_STREAM; a GOAWAY before any stream leaves the connection open
for the frames that follow; headers go out under nghttp2's indexing rules.
Sending on a closed stream is dropped whatever the event (h2 dropped data but
sometimes refused heads), and body before a head is refused.

Every method that makes output leaves it in `data_to_send()`; `send`,
`ack_data` and `close` also return it, `receive_data` does not (call
`data_to_send()` after it: SETTINGS and PING acknowledgements, flushed data).
"""

from __future__ import annotations

from h2.errors import ErrorCodes

from pydp.http import h2_frames as frames
from pydp.http import h2_headers
from pydp.http.detect import H2_PREFACE
from pydp.http.errors import LocalProtocolError, RemoteProtocolError
from pydp.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Headers,
    StreamReset,
    WindowUpdated,
)
from pydp.http.h2_flow import FlowControl, StreamState
from pydp.http.h2_frames import H2ConnectionError
from pydp.http.h2_hpack import Decoder, Encoder
from pydp.http.h2_messages import ENDED, RESET_RECEIVED, RESET_SENT, InboundMessages
from pydp.http.limits import H2Options, Limits

_DEFAULT_WINDOW = 65535
_CLOSED_MEMORY = 1024
_LINGER_MAX = 1024


class H2Connection(InboundMessages):
    """What the server and client sides share."""

    _client_side = False

    def __init__(self, *, limits: Limits | None, options: H2Options | None) -> None:
        self._limits = limits or Limits()
        options = options or H2Options()
        self._out: list[bytes] = []
        self._flow = FlowControl(self._out, self._end_sending)
        self._reader = frames.FrameReader(server=not self._client_side)
        list_size = self._limits.max_headers_bytes + 32 * (self._limits.max_headers_count + 8)
        self._decoder = Decoder(list_size)
        self._encoder = Encoder()
        self._streams: dict[int, StreamState] = {}
        self._closed: dict[int, int] = {}  # recently closed streams: how
        self._lingering: dict[int, StreamState] = {}  # closed, with input not yet acknowledged
        self._ended_by_headers: set[int] = set()
        self._heads: dict[bytes, h2_headers.RequestHead] = {}
        self._heads_generation = 0
        self._highest = 0  # the highest stream id opened
        self._remote_window = _DEFAULT_WINDOW  # the peer's initial stream window
        self._remote_max_streams = 2**31 - 1
        # Our initial stream window: a larger one holds at once (the peer cannot send
        # more before it has seen it), a smaller one once the peer acknowledged it.
        self._local_window = max(_DEFAULT_WINDOW, options.initial_stream_window_size)
        self._local_max_streams = options.max_concurrent_streams
        self._settings = options
        self._settings_acked = False
        self._error_status = 502 if self._client_side else 400
        self._goaway_received = False
        self._goaway_sent = False
        self._terminated = False
        self._eof_seen = False
        values = [
            (frames.MAX_CONCURRENT_STREAMS, options.max_concurrent_streams),
            (frames.INITIAL_WINDOW_SIZE, options.initial_stream_window_size),
            (frames.MAX_HEADER_LIST_SIZE, list_size),
        ]
        if self._client_side:
            self._out.append(H2_PREFACE)
            values.insert(0, (frames.ENABLE_PUSH, 0))
        self._out.append(frames.settings(values))
        extra = options.initial_connection_window_size - _DEFAULT_WINDOW
        if extra > 0:
            self._out.append(frames.window_update(0, extra))
            self._flow.inbound.open(extra)

    @property
    def wants_data(self) -> bool:
        return not self._terminated

    @property
    def should_close(self) -> bool:
        """True after EOF or a protocol error, or once GOAWAY went either way
        and no stream is open any more."""
        if self._terminated:
            return True
        return (self._goaway_sent or self._goaway_received) and not self._streams

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = b"".join(out)
        out.clear()
        return data

    def buffered_outbound(self, stream_id: int) -> int:
        stream = self._streams.get(stream_id)
        return stream.queued if stream is not None else 0

    def ack_data(self, stream_id: int, size: int) -> bytes:
        """`size` bytes of this stream's `Data` were forwarded: reopen the window."""
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = self._lingering.get(stream_id)
            if stream is None:
                return self.data_to_send()
            self._flow.ack(stream, size)
            if not stream.unacked:
                del self._lingering[stream_id]
        else:
            self._flow.ack(stream, size)
        return self.data_to_send()

    def close(self, error_code: int = 0) -> bytes:
        """Send GOAWAY: no new streams; the open ones may finish."""
        if not self._goaway_sent and not self._terminated:
            self._goaway_sent = True
            self._out.append(frames.goaway(self._last_peer_stream(), error_code))
        return self.data_to_send()

    def _last_peer_stream(self) -> int:
        return 0 if self._client_side else self._highest

    # -- receiving ---------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer (b"" for EOF); return the events."""
        if not data:
            return self._eof()
        if self._terminated:
            return []
        out: list[Event] = []
        try:
            for kind, flags, stream_id, payload in self._reader.feed(data):
                if kind == frames.HEADERS:
                    self._on_headers(flags, stream_id, payload, out)
                elif kind == frames.DATA:
                    self._on_data(flags, stream_id, payload, out)
                else:
                    self._on_control(kind, flags, stream_id, payload, out)
        except H2ConnectionError as exc:
            self._terminated = True
            self._out.append(frames.goaway(self._last_peer_stream(), exc.code))
            raise RemoteProtocolError(
                f"HTTP/2 protocol error: {exc}",
                status=self._error_status,
                details="http2.violation.of.messaging.rule",
            ) from exc
        return out

    def _on_control(
        self, kind: int, flags: int, stream_id: int, payload: bytes, out: list[Event]
    ) -> None:
        if kind == frames.WINDOW_UPDATE:
            self._on_window_update(stream_id, frames.u32(payload) & frames.MAX_WINDOW, out)
        elif kind == frames.RST_STREAM:
            stream = self._streams.get(stream_id)
            if stream is not None:
                self._retire(stream, RESET_RECEIVED)
                out.append(StreamReset(stream_id, frames.u32(payload)))
            elif stream_id % 2 == 0 or stream_id > self._highest:
                raise H2ConnectionError(
                    ErrorCodes.PROTOCOL_ERROR, f"RST_STREAM on idle stream {stream_id}"
                )
        elif kind == frames.SETTINGS:
            if flags & frames.ACK:
                self._on_settings_acked()
            else:
                self._on_settings(frames.settings_values(payload), out)
        elif kind == frames.PING:
            if not flags & frames.ACK:
                self._out.append(frames.ping_ack(payload))
        elif kind == frames.GOAWAY:
            last, code = frames.goaway_fields(payload)
            self._goaway_received = True
            self._refuse_above(last, out)
            out.append(ConnectionClosed(code, last))

    def _on_window_update(self, stream_id: int, increment: int, out: list[Event]) -> None:
        if not increment:
            raise H2ConnectionError(
                ErrorCodes.PROTOCOL_ERROR, "WINDOW_UPDATE increment must be between 1 to 2^31-1"
            )
        flow = self._flow
        if not stream_id:
            flow.open_window(increment)
            self._resume(None, out)
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id % 2 == 0 or stream_id > self._highest:
                raise H2ConnectionError(
                    ErrorCodes.PROTOCOL_ERROR, f"WINDOW_UPDATE on idle stream {stream_id}"
                )
            return
        if not flow.open_stream_window(stream, increment):
            self._reset(stream, ErrorCodes.FLOW_CONTROL_ERROR)
            out.append(StreamReset(stream_id, ErrorCodes.FLOW_CONTROL_ERROR))
            return
        self._resume(stream, out)

    def _resume(self, only: StreamState | None, out: list[Event]) -> None:
        """Flush queued data after a window opened; report the queues that emptied."""
        flow = self._flow
        streams = [only] if only is not None else list(self._streams.values())
        for stream in streams:
            if stream.chunks is not None and flow.flush(stream):
                out.append(WindowUpdated(stream.stream_id))

    def _on_settings(self, pairs: list[tuple[int, int]], out: list[Event]) -> None:
        values = dict(pairs).items()  # a repeated setting: its last value (as h2)
        for key, value in values:
            if key == frames.ENABLE_PUSH and value not in (0, 1):
                raise H2ConnectionError(ErrorCodes.PROTOCOL_ERROR, f"Invalid ENABLE_PUSH {value}")
            if key == frames.INITIAL_WINDOW_SIZE and value > frames.MAX_WINDOW:
                raise H2ConnectionError(
                    ErrorCodes.FLOW_CONTROL_ERROR, f"Invalid INITIAL_WINDOW_SIZE {value}"
                )
            if key == frames.MAX_FRAME_SIZE and not 16384 <= value <= 2**24 - 1:
                raise H2ConnectionError(
                    ErrorCodes.PROTOCOL_ERROR, f"Invalid MAX_FRAME_SIZE {value}"
                )
        resume = False
        for key, value in values:
            if key == frames.HEADER_TABLE_SIZE:
                self._encoder.set_max_size(value)
            elif key == frames.INITIAL_WINDOW_SIZE:
                delta = value - self._remote_window
                self._remote_window = value
                for stream in self._streams.values():
                    stream.window += delta
                    if stream.window > frames.MAX_WINDOW:
                        raise H2ConnectionError(
                            ErrorCodes.FLOW_CONTROL_ERROR, "stream window over 2^31-1"
                        )
                resume = True
            elif key == frames.MAX_FRAME_SIZE:
                self._flow.max_frame_size = value
                resume = True
            elif key == frames.MAX_CONCURRENT_STREAMS:
                self._remote_max_streams = value
        self._out.append(frames.SETTINGS_ACK)
        if resume:
            self._resume(None, out)

    def _on_settings_acked(self) -> None:
        if self._settings_acked:
            return
        self._settings_acked = True
        delta = self._settings.initial_stream_window_size - self._local_window
        if not delta:
            return
        self._local_window += delta
        for stream in self._streams.values():
            window = stream.inbound
            window.max_size += delta
            window.size += delta

    def _refuse_above(self, last_stream_id: int, out: list[Event]) -> None:
        """Client side reports the streams GOAWAY says were never processed."""

    def _eof(self) -> list[Event]:
        if self._eof_seen:
            return []
        self._eof_seen = True
        self._terminated = True
        # The client went away (CANCEL), or the upstream did (INTERNAL_ERROR).
        code = ErrorCodes.INTERNAL_ERROR if self._client_side else ErrorCodes.CANCEL
        out: list[Event] = [StreamReset(sid, code) for sid in sorted(self._streams)]
        out.append(ConnectionClosed())
        return out

    # -- stream bookkeeping ------------------------------------------------------------------

    def _open(self, stream_id: int) -> StreamState:
        stream = StreamState(stream_id, self._remote_window, self._local_window)
        self._streams[stream_id] = stream
        self._highest = stream_id
        return stream

    def _retire(self, stream: StreamState, how: int) -> None:
        """The stream is closed: forget it (keeping how, for late frames)."""
        stream_id = stream.stream_id
        del self._streams[stream_id]
        closed = self._closed
        if len(closed) >= _CLOSED_MEMORY:
            del closed[next(iter(closed))]
        closed[stream_id] = how
        stream.chunks = None
        stream.queued = 0
        if how != ENDED:
            self._flow.release(stream)
            self._ended_by_headers.discard(stream_id)
        elif stream.unacked:
            lingering = self._lingering
            if len(lingering) >= _LINGER_MAX:
                self._flow.release(lingering.pop(next(iter(lingering))))
            lingering[stream_id] = stream

    def _reset(self, stream: StreamState, code: int) -> None:
        self._out.append(frames.rst_stream(stream.stream_id, code))
        self._retire(stream, RESET_SENT)

    def _end_sending(self, stream: StreamState, trailers: Headers | None) -> None:
        if trailers:
            block = self._encoder.encode(h2_headers.outbound(trailers))
            self._out.append(
                frames.headers(stream.stream_id, block, True, self._flow.max_frame_size)
            )
        elif trailers is not None:
            self._out.append(frames.data(stream.stream_id, b"", True))
        stream.sending = False
        if not stream.receiving:
            self._retire(stream, ENDED)

    # -- sending -----------------------------------------------------------------------------

    def send(self, event: Event) -> bytes:
        """Serialize one event. Sends on a closed stream (reset, or ended both ways)
        are dropped; sending after our own end of a stream is a `LocalProtocolError`."""
        kind = type(event)
        if kind is Data:
            assert isinstance(event, Data)
            stream = self._sending(event.stream_id, "Data", body=True)
            if stream is not None:
                self._flow.send(stream, event.data)
        elif kind is EndOfMessage:
            assert isinstance(event, EndOfMessage)
            self._send_end(event)
        elif kind is StreamReset:
            assert isinstance(event, StreamReset)
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                self._reset(stream, event.code)
        else:
            self._send_head(event)
        return self.data_to_send()

    def send_last(self, stream_id: int, data: bytes) -> bytes:
        """`send(Data(stream_id, data))` then `send(EndOfMessage(stream_id))`, as one
        DATA frame with END_STREAM when the windows allow."""
        stream = self._sending(stream_id, "Data", body=True)
        if stream is not None:
            self._flow.send_last(stream, data)
        return self.data_to_send()

    def _sending(self, stream_id: int, what: str, body: bool = False) -> StreamState | None:
        """The stream to send `what` (an event's name) on; None when it is closed (the send
        is dropped). `body`: `what` follows a head (`Data`, `EndOfMessage`)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id % 2 == 0 or stream_id > self._highest:
                raise LocalProtocolError(f"cannot send {what}: stream {stream_id} is not open")
            return None
        if not stream.sending:
            raise LocalProtocolError(f"cannot send {what}: stream {stream_id} already ended")
        if body and not stream.head_sent:
            raise LocalProtocolError(f"cannot send {what}: stream {stream_id} has no head yet")
        return stream

    def _send_end(self, event: EndOfMessage) -> None:
        stream_id = event.stream_id
        if stream_id in self._ended_by_headers:
            self._ended_by_headers.discard(stream_id)
            if event.trailers:
                raise LocalProtocolError(f"stream {stream_id} already ended with its headers")
            return
        stream = self._sending(stream_id, "EndOfMessage", body=True)
        if stream is not None:
            if event.trailers:
                for name, _ in event.trailers:
                    if name[:1] == b":":
                        raise LocalProtocolError(f"pseudo-header {name!r} in trailers")
            self._flow.end(stream, event.trailers)

    def _send_head(self, event: Event) -> None:
        raise LocalProtocolError(f"cannot send {type(event).__name__} on this side")

    def _headers(self, stream: StreamState, headers: Headers, end: bool) -> None:
        self._write_head(stream, self._encoder.encode(headers), end)
        if end:
            self._ended(stream)

    def _write_head(self, stream: StreamState, block: bytes, end: bool = False) -> None:
        self._out.append(frames.headers(stream.stream_id, block, end, self._flow.max_frame_size))

    def _ended(self, stream: StreamState) -> None:
        """The stream's head was sent with END_STREAM."""
        self._ended_by_headers.add(stream.stream_id)
        stream.sending = False
        if not stream.receiving:
            self._retire(stream, ENDED)
