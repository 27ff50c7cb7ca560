"""HTTP/1.1 client side (upstream): serializes requests, parses responses.

Theory of operation
-------------------
One request at a time, never pipelined (as Envoy). `open_stream()` reserves
the connection and returns the stream id to put on the `Request`; the
connection is free again when both the request and its response have ended
and the exchange allows reuse (no `Connection: close` either way, a framed
response, the response not ending before the request).

Responses: 1xx heads are surfaced as `InformationalResponse` (101 is an
error: pydp never asks to upgrade); responses to HEAD and 204/304 have no
body; a response without Content-Length or chunked framing runs until EOF.
httptools cannot be told a response answers HEAD, so while one is awaited
the input is fed one head at a time (heads end at the first CRLF CRLF, since
llhttp accepts no bare LF) and the parser is replaced after the final head.

Errors are `RemoteProtocolError` with hint 502 and the stream id; bytes
arriving after a complete response only make the connection unusable.
"""

from __future__ import annotations

from typing import NoReturn, cast

import httptools
from h2.errors import ErrorCodes

from pydp.http.errors import LocalProtocolError, RemoteProtocolError
from pydp.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Headers,
    Request,
    StreamReset,
)
from pydp.http.h1_parse import UnsolicitedError, unwrap
from pydp.http.h1_response import ResponseReader
from pydp.http.h1_write import CHUNKED, LENGTH, Framer, add_fields, join_head
from pydp.http.headers import BODILESS_METHODS
from pydp.http.limits import H1Options, Limits

_NONE = 0
_BODY = 1
_DONE = 2


def request_target(headers: Headers) -> tuple[bytes, bytes, bytes, Headers]:
    """(method, authority, path, the other fields) from a request header list; the
    other fields start after the pseudo-headers when those come first, in order."""
    if (
        len(headers) >= 4
        and headers[0][0] == b":method"
        and headers[2][0] == b":authority"
        and headers[3][0] == b":path"
    ):
        return headers[0][1], headers[2][1], headers[3][1], headers[4:]
    pseudo = {name: value for name, value in headers if name[:1] == b":"}
    try:
        return pseudo[b":method"], pseudo[b":authority"], pseudo[b":path"], headers
    except KeyError as exc:
        raise LocalProtocolError(f"request without {exc.args[0]!r}") from None


class H1ClientConnection:
    """One upstream HTTP/1.1 connection, without I/O."""

    def __init__(self, *, limits: Limits | None = None, options: H1Options | None = None) -> None:
        self._limits = limits or Limits()
        options = options or H1Options()
        self._reader = ResponseReader(self._limits, options)
        self._parser = httptools.HttpResponseParser(self._reader)
        self._reader.parser = self._parser
        self._framer = Framer(options.enable_trailers)
        self._next_stream_id = 1
        self._stream_id = 0
        self._busy = False
        self._request = _NONE
        self._orphan = 0
        self._response_done = False
        self._head_mode = False
        self._head_buffer = bytearray()
        self._reusable = True
        self._stopped = False
        self._eof_seen = False

    @property
    def available_streams(self) -> int:
        """1 when a request can be sent now, else 0 (queue it elsewhere)."""
        return 0 if self._busy or not self._reusable else 1

    @property
    def should_close(self) -> bool:
        return not self._reusable and not self._busy

    @property
    def wants_data(self) -> bool:
        return not self._stopped

    def open_stream(self) -> int:
        if self._busy or not self._reusable:
            raise LocalProtocolError("the connection is busy or closing")
        self._busy = True
        self._stream_id = self._next_stream_id
        self._next_stream_id += 2
        self._request = _NONE
        self._response_done = False
        return self._stream_id

    def data_to_send(self) -> bytes:
        return b""

    def ack_data(self, stream_id: int, size: int) -> bytes:
        return b""

    def buffered_outbound(self, stream_id: int) -> int:
        return 0

    def close(self, error_code: int = 0) -> bytes:
        """Use this connection for no further request."""
        self._reusable = False
        return b""

    def send(self, event: Event) -> bytes:
        """Serialize one event of the request in flight. Events for a request
        whose response already ended (the connection is then closing) are
        dropped."""
        if self._orphan and getattr(event, "stream_id", None) == self._orphan:
            return b""
        kind = type(event)
        if kind is Request:
            return self._send_request(event)  # type: ignore[arg-type]
        if kind is EndOfMessage:
            return self._send_end(event)  # type: ignore[arg-type]
        if kind is Data:
            return self._send_data(event)  # type: ignore[arg-type]
        if isinstance(event, Data):
            return self._send_data(event)
        if isinstance(event, Request):
            return self._send_request(event)
        if isinstance(event, EndOfMessage):
            return self._send_end(event)
        if isinstance(event, StreamReset):
            self._check(event.stream_id, None, "StreamReset")
            self._reusable = False
            self._busy = False
            self._stopped = True
            return b""
        raise LocalProtocolError(f"a client connection cannot send {type(event).__name__}")

    def _send_request(self, event: Request) -> bytes:
        if not self._busy or event.stream_id != self._stream_id or self._request != _NONE:
            self._check(event.stream_id, _NONE, "Request")
        return self._head(event)

    def _send_data(self, event: Data) -> bytes:
        if not self._busy or event.stream_id != self._stream_id or self._request != _BODY:
            self._check(event.stream_id, _BODY, "Data")
        return self._framer.data(event.data)

    def _send_end(self, event: EndOfMessage) -> bytes:
        if not self._busy or event.stream_id != self._stream_id or self._request != _BODY:
            self._check(event.stream_id, _BODY, "EndOfMessage")
        out = self._framer.end(event.trailers)
        self._request = _DONE
        if self._response_done:
            self._end_exchange()
        return out

    def _check(self, stream_id: int, state: int | None, what: str) -> None:
        if not self._busy or stream_id != self._stream_id:
            raise LocalProtocolError(f"{what}: stream {stream_id} is not the one opened")
        if state is not None and self._request != state:
            raise LocalProtocolError(f"{what} out of order on stream {stream_id}")

    def _head(self, request: Request) -> bytes:
        method, authority, path, fields = request_target(request.headers)
        if method == b"CONNECT":
            raise LocalProtocolError("CONNECT is not supported")
        parts = [method, b" ", path, b" HTTP/1.1\r\nhost: ", authority, b"\r\n"]
        lines, content_length = add_fields(parts, fields)
        framer = self._framer
        if content_length is not None:
            framer.start(LENGTH, int(content_length))
        elif request.end_stream:
            framer.start(LENGTH)
            if method not in BODILESS_METHODS:
                parts.append(b"content-length: 0\r\n")
                lines += 1
        else:
            parts.append(b"transfer-encoding: chunked\r\n")
            lines += 1
            framer.start(CHUNKED)
        parts.append(b"\r\n")
        head = join_head(parts, lines + 3)
        head_request = method == b"HEAD"
        self._head_mode = head_request
        self._reader.expect(self._stream_id, head_request)
        self._request = _BODY
        return head

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the server (b"" for EOF); return the events."""
        if not data:
            return self._eof()
        if self._stopped:
            return []
        if self._head_mode:
            self._feed_heads(data)
        else:
            self._feed(data)
        return self._take()

    def _take(self) -> list[Event]:
        events = self._reader.events
        out = cast("list[Event]", list(events))  # the response reader queues no errors
        events.clear()
        return out

    def _feed(self, data: bytes) -> None:
        reader = self._reader
        reader.chunk_len = len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._stop()
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, UnsolicitedError) or reader.finished:
                self._stop()
            else:
                self._error(unwrap(exc, client_side=True))
        else:
            if reader.in_message:
                reader.idle += len(data)
                if reader.idle > 2 * self._limits.max_headers_bytes:
                    self._error(
                        RemoteProtocolError(
                            f"no progress in {reader.idle} bytes of response headers",
                            status=502,
                            details="http1.headers_too_large",
                        )
                    )
        if reader.finished:
            reader.finished = False
            self._response_done = True
            self._reusable = self._reusable and reader.keep_alive and not reader.until_close
            if self._request != _DONE:
                self._orphan = self._stream_id
                self._reusable = False
            self._end_exchange()

    def _feed_heads(self, data: bytes) -> None:
        buffer = self._head_buffer
        buffer += data
        while self._head_mode:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > self._limits.max_headers_bytes:
                    self._error(
                        RemoteProtocolError(
                            "response head too large",
                            status=502,
                            details="http1.headers_too_large",
                        )
                    )
                return
            head = bytes(buffer[: end + 4])
            del buffer[: end + 4]
            self._feed(head)
            if self._reader.head_done:
                self._head_mode = False
        self._parser = httptools.HttpResponseParser(self._reader)
        self._reader.parser = self._parser
        if buffer:
            rest = bytes(buffer)
            buffer.clear()
            self._feed(rest)

    def _error(self, error: RemoteProtocolError) -> NoReturn:
        self._reader.events.clear()
        error.stream_id = self._stream_id if self._busy else None
        self._stop()
        self._busy = False
        raise error

    def _stop(self) -> None:
        self._stopped = True
        self._reusable = False

    def _end_exchange(self) -> None:
        self._busy = False
        if not self._reusable:
            self._stopped = True

    def _eof(self) -> list[Event]:
        if self._eof_seen:
            return []
        self._eof_seen = True
        out = self._take()
        reader = self._reader
        if self._busy and not self._response_done:
            if reader.until_close and reader.in_message and not self._stopped:
                out.append(EndOfMessage(self._stream_id, []))
            else:
                out.append(StreamReset(self._stream_id, ErrorCodes.INTERNAL_ERROR))
        out.append(ConnectionClosed())
        self._stopped = True
        self._reusable = False
        self._busy = False
        return out
