"""Receiving HTTP/2 messages: HEADERS and DATA on their streams (`H2Connection`'s part).

Theory of operation
-------------------
A stream's first HEADERS is its head (a request on the server side; a
response, after any 1xx, on the client side), a later one its trailers,
which must end the stream. A header block is always decoded, whatever
happens to its stream, to keep the HPACK table in step with the peer's.
DATA counts against both windows, and the body against its content-length
(h2's rule: checked on DATA frames only). A frame other than WINDOW_UPDATE,
PRIORITY or RST_STREAM on a stream whose peer has ended it is answered with
RST_STREAM (STREAM_CLOSED), as on a stream that was reset - except after
our own RST_STREAM, whose in-flight frames are ignored (RFC 9113 5.4.2) -
and HEADERS on a stream closed normally is a connection error. What Envoy
refuses above the codec (`RemoteProtocolError` from `pydp.http.h2_headers`)
is a `StreamError`: the stream's further input is then dropped, and the
client side resets it.
"""

from __future__ import annotations

from h2.errors import ErrorCodes
from hpack.exceptions import HPACKDecodingError

from pydp.http import h2_frames as frames
from pydp.http import h2_headers
from pydp.http.errors import RemoteProtocolError
from pydp.http.events import Data, EndOfMessage, Event, StreamError, StreamReset
from pydp.http.h2_flow import FlowControl, StreamState
from pydp.http.h2_frames import END_STREAM, H2ConnectionError
from pydp.http.h2_hpack import Decoder, OversizedHeaderList
from pydp.http.limits import Limits

ENDED, RESET_RECEIVED, RESET_SENT = 0, 1, 2  # how a closed stream closed


class InboundMessages:
    """HEADERS and DATA handling, mixed into `H2Connection` (which owns the state)."""

    _client_side: bool
    _limits: Limits
    _out: list[bytes]
    _flow: FlowControl
    _decoder: Decoder
    _streams: dict[int, StreamState]
    _closed: dict[int, int]
    _highest: int

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        try:
            return self._decoder.decode(block)
        except OversizedHeaderList as exc:
            raise H2ConnectionError(
                ErrorCodes.ENHANCE_YOUR_CALM, f"Oversized header block: {exc}"
            ) from exc
        except HPACKDecodingError as exc:
            raise H2ConnectionError(
                ErrorCodes.COMPRESSION_ERROR, f"Error decoding header block: {exc}"
            ) from exc

    def _on_headers(self, flags: int, stream_id: int, block: bytes, out: list[Event]) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            self._on_new_stream(flags, stream_id, block, out)
            return
        raw = self._decode(block)
        end = bool(flags & END_STREAM)
        if not stream.receiving:
            self._closed_by_error(stream, out)
            return
        if self._expects_head(stream):
            self._on_head(stream, raw, end, out)
        else:
            if not end:
                raise H2ConnectionError(
                    ErrorCodes.PROTOCOL_ERROR, "Trailers must have END_STREAM set"
                )
            self._on_trailers(stream, raw, out)
        if end and stream_id in self._streams:
            self._on_end(stream, out)

    def _expects_head(self, stream: StreamState) -> bool:
        return False

    def _on_head(
        self, stream: StreamState, raw: list[tuple[bytes, bytes]], end: bool, out: list[Event]
    ) -> None:
        raise H2ConnectionError(ErrorCodes.PROTOCOL_ERROR, "unexpected HEADERS")

    def _on_trailers(
        self, stream: StreamState, raw: list[tuple[bytes, bytes]], out: list[Event]
    ) -> None:
        status = 502 if self._client_side else 431
        try:
            trailers = h2_headers.trailers(raw, self._limits, status)
        except RemoteProtocolError as error:
            if not stream.muted:
                self._reject(stream, error, out)
            return
        if not stream.muted:
            stream.trailers = trailers

    def _on_new_stream(self, flags: int, stream_id: int, block: bytes, out: list[Event]) -> None:
        raise H2ConnectionError(ErrorCodes.PROTOCOL_ERROR, f"HEADERS on stream {stream_id}")

    def _on_closed_stream(self, stream_id: int, out: list[Event]) -> None:
        """HEADERS (already decoded) for a stream that is not open."""
        how = self._closed.get(stream_id)
        if how is None:
            raise H2ConnectionError(
                ErrorCodes.PROTOCOL_ERROR, f"HEADERS on stream {stream_id}, which is not open"
            )
        if how == ENDED:
            raise H2ConnectionError(ErrorCodes.STREAM_CLOSED, f"Stream {stream_id} is closed")
        if how == RESET_RECEIVED:
            self._out.append(frames.rst_stream(stream_id, ErrorCodes.STREAM_CLOSED))

    def _on_data(self, flags: int, stream_id: int, payload: bytes, out: list[Event]) -> None:
        flow = self._flow
        flow_length = len(payload)
        flow.inbound.consume(flow_length)
        data = frames.strip_padding(flags, payload, "DATA")
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id % 2 == 0 or stream_id > self._highest:
                raise H2ConnectionError(
                    ErrorCodes.PROTOCOL_ERROR, f"DATA on stream {stream_id}, which is idle"
                )
            flow.discard(None, flow_length)
            if self._closed.get(stream_id) != RESET_SENT:
                self._out.append(frames.rst_stream(stream_id, ErrorCodes.STREAM_CLOSED))
            return
        if not stream.receiving:
            flow.discard(None, flow_length)
            self._closed_by_error(stream, out)
            return
        self._check_data_allowed(stream)
        stream.inbound.consume(flow_length)
        end = flags & END_STREAM
        size = len(data)
        body = stream.body = stream.body + size
        expected = stream.expected
        if expected is not None and (body > expected or (end and body != expected)):
            raise H2ConnectionError(
                ErrorCodes.PROTOCOL_ERROR,
                f"InvalidBodyLengthError: Expected {expected} bytes, received {body}",
            )
        if stream.muted:
            flow.discard(stream, flow_length)
        else:
            flow.received(stream, size, flow_length)
            if size:
                limit = self._limits.max_body_bytes
                if limit is not None and body > limit:
                    error = RemoteProtocolError(
                        f"body larger than {limit} bytes",
                        status=502 if self._client_side else 413,
                        details="request_payload_too_large",
                    )
                    self._reject(stream, error, out)
                else:
                    out.append(Data(stream_id, data))
        if end and stream_id in self._streams:
            self._on_end(stream, out)

    def _check_data_allowed(self, stream: StreamState) -> None:
        """DATA is acceptable on this stream now (the client side wants a response head)."""

    def _on_end(self, stream: StreamState, out: list[Event]) -> None:
        stream.receiving = False
        if not stream.muted:
            trailers, stream.trailers = stream.trailers, []
            out.append(EndOfMessage(stream.stream_id, trailers))
        if not stream.sending:
            self._retire(stream, ENDED)

    def _closed_by_error(self, stream: StreamState, out: list[Event]) -> None:
        """A frame on a stream the peer had ended: reset it (STREAM_CLOSED)."""
        self._out.append(frames.rst_stream(stream.stream_id, ErrorCodes.STREAM_CLOSED))
        self._retire(stream, RESET_SENT)
        out.append(StreamReset(stream.stream_id, ErrorCodes.STREAM_CLOSED))

    def _reject(self, stream: StreamState, error: RemoteProtocolError, out: list[Event]) -> None:
        error.stream_id = stream.stream_id
        stream.muted = True
        stream.trailers = []
        self._flow.release(stream)
        out.append(StreamError(stream.stream_id, error))
        if self._client_side:
            self._reset(stream, ErrorCodes.PROTOCOL_ERROR)

    def _retire(self, stream: StreamState, how: int) -> None:
        raise NotImplementedError

    def _reset(self, stream: StreamState, code: int) -> None:
        raise NotImplementedError
