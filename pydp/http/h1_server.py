"""HTTP/1.1 server side (downstream): parses requests, serializes responses.

Theory of operation
-------------------
Requests are handled one at a time. A *cycle* starts when a `Request` is
handed out and ends when both that request's `EndOfMessage` has been handed
out and the response's `EndOfMessage` has been sent. Bytes are parsed as they
arrive, so pipelined requests are parsed early, but their events wait in a
queue until the cycle before them ends: call `next_events()` after sending a
response's `EndOfMessage` to get them. While events wait, `wants_data` is
False: stop reading, so a pipelining client cannot make us buffer without
bound.

A parse error in the request being handled is raised at once; one in a
request queued behind it is raised when that request's turn comes, so the
responses already owed go out first. `RemoteProtocolError.stream_id` names
the stream to answer on (None when a response already started: just close).

Response framing, as Envoy's HTTP/1 codec: a `content-length` is kept (and
no body follows it for HEAD, 204 and 304). Without one, 204 and 304 get no
framing header; a headers-only response gets `content-length: 0`, unless it
answers HEAD; over HTTP/1.0 the body runs until the connection closes;
anything else says `transfer-encoding: chunked` - an answer to HEAD too, with
no body after it.

Connection reuse: a request closes the connection after its response when
it says `Connection: close`, is HTTP/1.0 without `keep-alive`, is HTTP/1.0
answered without `content-length` (as Envoy's connection manager), is a
refused upgrade, when the response ends before the request does (as Envoy),
or after `close()` (drain). Responses then carry `connection: close`, and
`should_close` turns True once the response is sent. EOF from the client
resets the stream in progress.
"""

from __future__ import annotations

from typing import NoReturn

import httptools
from h2.errors import ErrorCodes

from pydp.http.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from pydp.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
    StreamReset,
)
from pydp.http.h1_parse import unwrap
from pydp.http.h1_request import RequestReader
from pydp.http.h1_write import (
    CHUNKED,
    LENGTH,
    NO_BODY,
    STATUS_LINE_10,
    STATUS_LINE_11,
    UNTIL_CLOSE,
    Framer,
    add_fields,
    join_head,
)
from pydp.http.limits import H1Options, Limits

_NONE = 0
_BODY = 1
_DONE = 2

_SYNTHETIC_CHUNKED = b"PUT / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
_SYNTHETIC_LENGTH = b"PUT / HTTP/1.1\r\ncontent-length: %d\r\n\r\n"


class H1ServerConnection:
    """One downstream HTTP/1.1 connection, without I/O."""

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        options: H1Options | None = None,
        scheme: bytes = b"http",
    ) -> None:
        self._limits = limits or Limits()
        options = options or H1Options()
        self._reader = RequestReader(self._limits, options, scheme)
        self._parser = httptools.HttpRequestParser(self._reader)
        self._reader.parser = self._parser
        self._pending = self._reader.events
        self._framer = Framer(options.enable_trailers)
        self._active = False
        self._stream_id = 0
        self._request_done = False
        self._response = _NONE
        self._keep_alive = True
        self._http10 = False
        self._head_request = False
        self._must_close = False
        self._stopped = False
        self._should_close = False
        self._eof_seen = False

    @property
    def should_close(self) -> bool:
        """Close the transport once everything returned so far is written."""
        return self._should_close

    @property
    def wants_data(self) -> bool:
        """False while pipelined requests wait or once reading is over."""
        return not self._stopped and not self._pending

    @property
    def protocol(self) -> str:
        """Of the request in progress, as Envoy's %PROTOCOL% shows it."""
        return "HTTP/1.0" if self._http10 else "HTTP/1.1"

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the client (b"" for EOF); return the events now due."""
        if not data:
            return self._eof()
        if self._stopped:
            return []
        self._feed(data)
        return self._drain()

    def next_events(self) -> list[Event]:
        """Events of the next pipelined request, once the previous cycle ended."""
        if self._active or self._should_close or not self._pending:
            return []
        return self._drain()

    def data_to_send(self) -> bytes:
        return b""

    def ack_data(self, stream_id: int, size: int) -> bytes:
        """HTTP/1.1 back-pressure is reading less: nothing to acknowledge."""
        return b""

    def buffered_outbound(self, stream_id: int) -> int:
        return 0

    def close(self, error_code: int = 0) -> bytes:
        """Drain: the response in progress (if any) is the last one."""
        self._must_close = True
        if not self._active:
            self._finish()
        return b""

    def _feed(self, data: bytes) -> None:
        reader = self._reader
        reader.chunk_len = len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._after_upgrade(data[exc.args[0] :])
            return
        except httptools.HttpParserError as exc:
            if reader.stopped:
                self._stopped = True
            else:
                self._fail(unwrap(exc, client_side=False))
            return
        if reader.stopped:
            self._stopped = True
        elif reader.in_message:
            reader.idle += len(data)
            if reader.idle > 2 * self._limits.max_headers_bytes:
                self._fail(
                    RemoteProtocolError(
                        f"no progress in {reader.idle} bytes of headers",
                        status=431,
                        details="http1.headers_too_large",
                    )
                )

    def _after_upgrade(self, rest: bytes) -> None:
        reader = self._reader
        if reader.stopped:
            self._stopped = True
            return
        self._parser = httptools.HttpRequestParser(reader)
        reader.parser = self._parser
        if reader.upgrade_body:
            reader.upgrade_body = False
            reader.synthetic = True
            if reader.chunked:
                self._parser.feed_data(_SYNTHETIC_CHUNKED)
            else:
                self._parser.feed_data(_SYNTHETIC_LENGTH % (reader.content_length or 0))
        if rest:
            self._feed(rest)

    def _fail(self, error: ProtocolError) -> None:
        """Raise now if the failing request is (or is next to be) handled; else
        queue the error where that request would have started."""
        self._stopped = True
        reader = self._reader
        pending = self._pending
        if reader.in_message:
            if self._active and reader.stream_id == self._stream_id:
                self._raise(error)
            error.stream_id = reader.stream_id
            if any(
                type(item) is Request and item.stream_id == reader.stream_id for item in pending
            ):
                while type(pending.pop()) is not Request:
                    pass
                reader.heads.pop()
        if not self._active and not pending:
            self._raise(error)
        pending.append(error)

    def _raise(self, error: ProtocolError) -> NoReturn:
        self._stopped = True
        self._must_close = True
        self._pending.clear()
        if not self._active:
            self._active = True
            self._stream_id = error.stream_id or self._reader.new_stream_id()
            self._request_done = True
            self._response = _NONE
            self._keep_alive = False
            self._http10 = False
            self._head_request = False
        if self._response == _NONE:
            error.stream_id = self._stream_id
        else:
            error.stream_id = None
            self._should_close = True
        raise error

    def _drain(self) -> list[Event]:
        pending = self._pending
        out: list[Event] = []
        while pending:
            item = pending[0]
            kind = type(item)
            if kind is Request:
                if self._active:
                    break
                self._start(item)  # type: ignore[arg-type]
            elif kind is EndOfMessage:
                self._request_done = True
            elif isinstance(item, ProtocolError):
                if self._active:
                    break
                pending.popleft()
                self._raise(item)
            pending.popleft()
            out.append(item)  # type: ignore[arg-type]
        return out

    def _start(self, request: Request) -> None:
        self._active = True
        self._stream_id = request.stream_id
        self._request_done = False
        self._response = _NONE
        self._keep_alive, self._http10 = self._reader.heads.popleft()
        self._head_request = request.headers[0][1] == b"HEAD"

    def _eof(self) -> list[Event]:
        if self._eof_seen:
            return []
        self._eof_seen = True
        out: list[Event] = []
        if self._active and self._response != _DONE:
            out.append(StreamReset(self._stream_id, ErrorCodes.CANCEL))
        out.append(ConnectionClosed())
        self._active = False
        self._stopped = True
        self._should_close = True
        self._pending.clear()
        return out

    def send(self, event: Event) -> bytes:
        """Serialize one event of the response to the request in progress."""
        kind = type(event)
        if kind is Data:
            return self._send_data(event)  # type: ignore[arg-type]
        if kind is Response:
            return self._send_response(event)  # type: ignore[arg-type]
        if kind is EndOfMessage:
            return self._send_end(event)  # type: ignore[arg-type]
        if isinstance(event, Data):
            return self._send_data(event)
        if isinstance(event, Response):
            return self._send_response(event)
        if isinstance(event, EndOfMessage):
            return self._send_end(event)
        if isinstance(event, InformationalResponse):
            self._check(event.stream_id, _NONE, "InformationalResponse")
            return self._informational(event)
        if isinstance(event, StreamReset):
            self._check(event.stream_id, None, "StreamReset")
            self._active = False
            self._finish()
            return b""
        raise LocalProtocolError(f"a server connection cannot send {type(event).__name__}")

    def _send_data(self, event: Data) -> bytes:
        if not self._active or event.stream_id != self._stream_id or self._response != _BODY:
            self._check(event.stream_id, _BODY, "Data")
        return self._framer.data(event.data)

    def _send_response(self, event: Response) -> bytes:
        if not self._active or event.stream_id != self._stream_id or self._response != _NONE:
            self._check(event.stream_id, _NONE, "Response")
        return self._head(event)

    def _send_end(self, event: EndOfMessage) -> bytes:
        if not self._active or event.stream_id != self._stream_id or self._response != _BODY:
            self._check(event.stream_id, _BODY, "EndOfMessage")
        out = self._framer.end(event.trailers)
        self._response = _DONE
        if not self._request_done:
            self._must_close = True
        self._active = False
        if self._must_close or not self._keep_alive:
            self._finish()
        return out

    def _check(self, stream_id: int, state: int | None, what: str) -> None:
        if not self._active or stream_id != self._stream_id:
            raise LocalProtocolError(f"{what}: stream {stream_id} is not the request in progress")
        if state is not None and self._response != state:
            raise LocalProtocolError(f"{what} out of order on stream {stream_id}")

    def _finish(self) -> None:
        self._stopped = True
        self._should_close = True
        self._pending.clear()

    def _head(self, response: Response) -> bytes:
        status = response.status
        try:
            line = (STATUS_LINE_10 if self._http10 else STATUS_LINE_11)[status]
        except KeyError:
            raise LocalProtocolError(f"invalid status {status}") from None
        if status < 200:
            raise LocalProtocolError(f"{status} must be sent as InformationalResponse")
        parts = [line]
        lines, content_length = add_fields(parts, response.headers)
        framer = self._framer
        head_request = self._head_request
        if content_length is not None:
            if head_request or status in (204, 304):
                framer.start(NO_BODY)
            else:
                framer.start(LENGTH, int(content_length))
        elif status in (204, 304):
            framer.start(NO_BODY)
        elif response.end_stream and not head_request:
            parts.append(b"content-length: 0\r\n")
            lines += 1
            framer.start(LENGTH)
        elif self._http10:
            framer.start(NO_BODY if head_request else UNTIL_CLOSE)
        else:
            parts.append(b"transfer-encoding: chunked\r\n")
            lines += 1
            framer.start(NO_BODY if head_request else CHUNKED)
        if self._http10 and content_length is None:
            self._must_close = True
        if self._must_close or not self._keep_alive:
            parts.append(b"connection: close\r\n")
            lines += 1
        elif self._http10:
            parts.append(b"connection: keep-alive\r\n")
            lines += 1
        parts.append(b"\r\n")
        head = join_head(parts, lines + 2)
        self._response = _BODY
        return head

    def _informational(self, response: InformationalResponse) -> bytes:
        status = response.status
        if not 100 <= status < 200 or status == 101:
            raise LocalProtocolError(f"invalid informational status {status}")
        if self._http10:
            return b""
        parts = [STATUS_LINE_11[status]]
        lines, _ = add_fields(parts, response.headers)
        parts.append(b"\r\n")
        return join_head(parts, lines + 2)
