"""The two sides of an HTTP/2 connection: `H2ServerConnection` (downstream) and
`H2ClientConnection` (upstream), on `pydp.http.h2_connection`.

The server side opens a stream for each request head (refusing new ones
with REFUSED_STREAM once it sent GOAWAY, or beyond its concurrency limit)
and remembers what it made of a repeated request block, and the encoded
block of a repeated response head, while the HPACK tables stay as they
were. The client side opens streams in order, within the peer's limit.
"""

from __future__ import annotations

from h2.errors import ErrorCodes

from pydp.http import h2_frames as frames
from pydp.http import h2_headers
from pydp.http.errors import LocalProtocolError, RemoteProtocolError
from pydp.http.events import (
    Event,
    Headers,
    InformationalResponse,
    Request,
    Response,
    StreamReset,
)
from pydp.http.h2_connection import H2Connection
from pydp.http.h2_flow import StreamState
from pydp.http.h2_frames import END_STREAM, H2ConnectionError
from pydp.http.h2_messages import RESET_RECEIVED, RESET_SENT
from pydp.http.headers import STATUS_BYTES
from pydp.http.limits import H2Options, Limits

_HEAD_CACHE = 64


class H2ServerConnection(H2Connection):
    """One downstream HTTP/2 connection (prior-knowledge h2c or ALPN h2).

    Feed it everything from the first byte, the client preface included."""

    _client_side = False

    def __init__(self, *, limits: Limits | None = None, options: H2Options | None = None) -> None:
        super().__init__(limits=limits, options=options)
        self._blocks: dict[tuple[int, tuple[tuple[bytes, bytes], ...]], bytes] = {}
        self._blocks_generation = 0

    def _on_new_stream(self, flags: int, stream_id: int, block: bytes, out: list[Event]) -> None:
        decoder = self._decoder
        generation = decoder.generation
        heads = self._heads
        if generation != self._heads_generation:
            heads.clear()
            self._heads_generation = generation
        head = heads.get(block)
        error: RemoteProtocolError | None = None
        expected = None
        if head is None:
            raw = self._decode(block)
            if stream_id % 2 == 0 or stream_id <= self._highest:
                self._on_closed_stream(stream_id, out)
                return
            self._highest = stream_id  # opened, even if what it carries is refused
            try:
                head = h2_headers.request_head(raw, self._limits)
            except RemoteProtocolError as exc:
                error = exc
                expected = h2_headers.content_length(raw)  # the body is held to it anyway
            else:
                if decoder.generation == generation:
                    if len(heads) >= _HEAD_CACHE:
                        heads.clear()
                    heads[block] = head
        elif stream_id % 2 == 0 or stream_id <= self._highest:
            self._on_closed_stream(stream_id, out)
            return
        if self._goaway_sent or len(self._streams) >= self._local_max_streams:
            self._highest = stream_id
            self._out.append(frames.rst_stream(stream_id, ErrorCodes.REFUSED_STREAM))
            self._closed[stream_id] = RESET_SENT
            return
        stream = self._open(stream_id)
        end = bool(flags & END_STREAM)
        if head is not None:
            stream.expected = head.content_length
            out += head.events(stream_id, end)
        else:
            assert error is not None
            stream.expected = expected
            self._reject(stream, error, out)
        if end:
            self._on_end(stream, out)

    def _expects_head(self, stream: StreamState) -> bool:
        return False

    def _send_head(self, event: Event) -> None:
        if isinstance(event, Response):
            if event.status < 200:
                raise LocalProtocolError(f"{event.status} must be sent as InformationalResponse")
            stream = self._sending(event.stream_id, type(event).__name__)
            if stream is None:
                return
            if stream.head_sent:
                raise LocalProtocolError(f"stream {event.stream_id} already has a response")
            stream.head_sent = True
            block = self._response_block(event.status, event.headers)
            self._write_head(stream, block, event.end_stream)
            if event.end_stream:
                self._ended(stream)
        elif isinstance(event, InformationalResponse):
            if not 100 <= event.status < 200 or event.status == 101:
                raise LocalProtocolError(f"invalid informational status {event.status}")
            stream = self._sending(event.stream_id, type(event).__name__)
            if stream is None:
                return
            if stream.head_sent:
                raise LocalProtocolError(f"stream {event.stream_id} already has a response")
            self._write_head(stream, self._response_block(event.status, event.headers))
        else:
            super()._send_head(event)

    def _response_block(self, status: int, fields: Headers) -> bytes:
        """The encoded response head; remembered while the encoder's table stays."""
        encoder = self._encoder
        blocks = self._blocks
        generation = encoder.generation
        if generation != self._blocks_generation:
            blocks.clear()
            self._blocks_generation = generation
        key = (status, tuple(fields))
        block = blocks.get(key)
        if block is None:
            headers = [(b":status", _status(status))]
            headers += h2_headers.outbound(fields, regular_only=True)
            block = encoder.encode(headers)
            if encoder.generation == generation:
                if len(blocks) >= _HEAD_CACHE:
                    blocks.clear()
                blocks[key] = block
        return block


class H2ClientConnection(H2Connection):
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
        in_use = len(self._streams) + len(self._reserved)
        return max(0, min(self._remote_max_streams, 2**31 - 1) - in_use)

    def open_stream(self) -> int:
        if self.available_streams <= 0:
            raise LocalProtocolError("no stream available: queue the request")
        stream_id = self._next_stream_id
        self._next_stream_id += 2
        self._reserved.add(stream_id)
        return stream_id

    def _on_new_stream(self, flags: int, stream_id: int, block: bytes, out: list[Event]) -> None:
        self._decode(block)
        if stream_id % 2 == 0 or stream_id > self._highest:
            raise H2ConnectionError(
                ErrorCodes.PROTOCOL_ERROR, f"HEADERS on stream {stream_id}, which is idle"
            )
        self._on_closed_stream(stream_id, out)

    def _expects_head(self, stream: StreamState) -> bool:
        return not stream.final_seen

    def _check_data_allowed(self, stream: StreamState) -> None:
        if not stream.final_seen:
            raise H2ConnectionError(
                ErrorCodes.PROTOCOL_ERROR, f"DATA before the response on stream {stream.stream_id}"
            )
        if stream.no_body:
            stream.expected = 0

    def _on_head(
        self, stream: StreamState, raw: list[tuple[bytes, bytes]], end: bool, out: list[Event]
    ) -> None:
        stream_id = stream.stream_id
        informational = any(n == b":status" and v[:1] == b"1" for n, v in raw)
        if informational and end:
            raise H2ConnectionError(
                ErrorCodes.PROTOCOL_ERROR, "Cannot set END_STREAM on informational responses"
            )
        if not informational:
            stream.final_seen = True
        try:
            headers, status = h2_headers.response_head(raw, self._limits)
            stream.expected = h2_headers.content_length(headers)
        except RemoteProtocolError as error:
            if not stream.muted:
                self._reject(stream, error, out)
            return
        if stream.muted:
            return
        if status < 200:
            out.append(InformationalResponse(stream_id, status, headers))
        else:
            out.append(Response(stream_id, status, headers, end))

    def _send_head(self, event: Event) -> None:
        if isinstance(event, Request):
            stream_id = event.stream_id
            if stream_id in self._streams or stream_id % 2 == 0 or stream_id <= self._highest:
                raise LocalProtocolError(f"cannot send Request on stream {stream_id}")
            self._reserved.discard(stream_id)
            h2_headers.check_outbound_request(event.headers)
            pseudo = 0
            for name, _ in event.headers:
                if name[:1] != b":":
                    break
                pseudo += 1
            headers = event.headers[:pseudo] + h2_headers.outbound(event.headers[pseudo:])
            stream = self._open(stream_id)
            stream.head_sent = True
            stream.no_body = event.headers[0][1] == b"HEAD"
            self._headers(stream, headers, event.end_stream)
        else:
            super()._send_head(event)

    def _refuse_above(self, last_stream_id: int, out: list[Event]) -> None:
        refused = [sid for sid in self._streams if sid > last_stream_id]
        refused += [sid for sid in self._reserved if sid > last_stream_id]
        self._reserved.clear()
        for stream_id in sorted(refused):
            stream = self._streams.get(stream_id)
            if stream is not None:
                self._retire(stream, RESET_RECEIVED)
            out.append(StreamReset(stream_id, ErrorCodes.REFUSED_STREAM))


def _status(status: int) -> bytes:
    try:
        return STATUS_BYTES[status]
    except KeyError:
        raise LocalProtocolError(f"invalid status {status}") from None
