"""A downstream HTTP/1.1 connection: requests one after another on the connection's task.

Theory of operation
-------------------
No task per request: the connection's task parses, and when a `Request`
comes out it runs the request handler itself. The handler's pump pulls the
body through `H1Stream.receive`, which reads the socket only when the
events already parsed are used up - so the next chunk is read only after the
previous one was forwarded. Pipelined requests wait in the codec until the
response before them is sent (`next_events`).

Between requests the connection waits at most `idle_timeout` for a first
byte (then closes quietly, as Envoy does over HTTP/1.1); once a request has
begun, its headers must be complete within `request_headers_timeout` (408
`request header timeout`) and the stream idle timeout (408 `stream
timeout`). A request the codec rejects is answered with the codec's status
(and Envoy's body for it) on a closing connection.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque

import trio
from h2.errors import ErrorCodes

from pydp.http import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    ExpectContinue,
    H1ServerConnection,
    ProtocolError,
    RemoteProtocolError,
    Request,
    Response,
    StreamError,
    StreamReset,
)
from pydp.http.headers import reason_phrase
from pydp.proxy.context import (
    DownstreamProtocolError,
    DownstreamReset,
    DownstreamStream,
    HttpContext,
)
from pydp.proxy.headers import add_connection_headers
from pydp.proxy.local_reply import REQUEST_HEADER_TIMEOUT, STREAM_TIMEOUT, text_reply
from pydp.proxy.request import error_reply, handle_request
from pydp.proxy.sockets import send_all
from pydp.proxy.stream_info import StreamInfo

RECEIVE_SIZE = 65536


class H1Downstream:
    def __init__(self, sock: trio.abc.Stream, ctx: HttpContext) -> None:
        self.sock = sock
        self.ctx = ctx
        self.codec = H1ServerConnection(limits=ctx.limits, scheme=ctx.scheme)
        self.events: deque[Event] = deque()
        self.out = bytearray()
        self.partial = False
        config = ctx.config
        candidates = (config.request_headers_timeout, config.stream_idle_timeout)
        self.header_timeout = min((t for t in candidates if t), default=None)

    async def run(self, initial: bytes) -> None:
        codec = self.codec
        events = self.events
        if initial and not await self._feed(initial):
            return
        while True:
            if not events:
                if codec.should_close:
                    break
                pipelined = codec.next_events()
                if pipelined:
                    events.extend(pipelined)
                    continue
                data = await self._receive_next()
                if data is None or not await self._feed(data):
                    break
                continue
            event = events.popleft()
            if type(event) is Request:
                self.partial = False
                stream = H1Stream(self, event.stream_id)
                if events and type(events[0]) is ExpectContinue:
                    events.popleft()
                    stream.expect_continue = True
                await handle_request(stream, event, self.ctx)
                if codec.should_close:
                    break
            elif type(event) is ConnectionClosed:
                break
        await self.flush()

    async def _receive_next(self) -> bytes | None:
        """Bytes for the next request, or None when the connection should end."""
        config = self.ctx.config
        timeout = self.header_timeout if self.partial else config.idle_timeout
        if not timeout:
            return await self._read()
        with trio.move_on_after(timeout):
            return await self._read()
        names = self.ctx.names
        if not self.partial:
            self.ctx.stats.inc(names.cx_idle_timeout)
            return None
        if timeout == config.request_headers_timeout:
            self.ctx.stats.inc(names.rq_header_timeout)
            await self._reject(408, REQUEST_HEADER_TIMEOUT, "-")
        else:
            self.ctx.stats.inc(names.rq_idle_timeout)
            await self._reject(408, STREAM_TIMEOUT, "SI")
        return None

    async def _read(self) -> bytes:
        try:
            data = await self.sock.receive_some(RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""
        return bytes(data)

    async def _feed(self, data: bytes) -> bool:
        """Parse `data`; False when the connection is over (a rejected request)."""
        try:
            new = self.codec.receive_data(data)
        except RemoteProtocolError as error:
            await self._codec_error(error)
            return False
        if data and not any(type(e) is Request for e in new):
            self.partial = True
        self.events.extend(new)
        return True

    async def _codec_error(self, error: ProtocolError) -> None:
        self.ctx.stats.inc(self.ctx.names.cx_protocol_error)
        if error.stream_id is None:
            return
        status, headers, body = error_reply(error, self.ctx.config.server_name)
        await self._answer(error.stream_id, status, headers, body, "DPE")

    async def _reject(self, status: int, body: bytes, flag: str) -> None:
        """Answer a request whose headers never completed, then close."""
        headers = text_reply(status, body)
        add_connection_headers(headers, self.ctx.config.server_name)
        self.codec.close()
        await self._answer(None, status, headers, body, flag)

    async def _answer(
        self,
        stream_id: int | None,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        flag: str,
    ) -> None:
        ctx = self.ctx
        info = StreamInfo(time.time(), trio.current_time())
        info.response_code = status
        info.bytes_sent = len(body)
        if flag != "-":
            info.flag(flag)
        ctx.stats.inc(ctx.names.rq_total)
        ctx.stats.inc(ctx.names.rq_http1_total)
        ctx.stats.inc(ctx.names.rq_class[status // 100])
        if stream_id is not None:
            try:
                self.out += self.codec.send(Response(stream_id, status, headers, not body))
                if body:
                    self.out += self.codec.send(Data(stream_id, body))
                self.out += self.codec.send(EndOfMessage(stream_id))
            except ProtocolError:
                self.out.clear()
        else:
            self.out += _raw_response(status, headers, body)
        await self.flush()
        end = trio.current_time()
        ctx.runtime.access_log(ctx.listener, info.http_entry(None, "HTTP/1.1", end, ctx.remote))

    async def flush(self) -> None:
        if not self.out:
            return
        out, self.out = self.out, bytearray()
        try:
            await send_all(self.sock, out)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise DownstreamReset() from None


def _raw_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """A closing response outside any request cycle (the request never started)."""
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))]
    lines += [name + b": " + value + b"\r\n" for name, value in headers if name[:1] != b":"]
    lines.append(b"connection: close\r\n\r\n")
    return b"".join(lines) + body


class H1Stream(DownstreamStream):
    """The request in progress on an HTTP/1.1 connection."""

    protocol = "HTTP/1.1"

    def __init__(self, conn: H1Downstream, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id

    async def receive(self) -> Data | EndOfMessage:
        conn = self.conn
        events = conn.events
        while True:
            while events:
                event = events.popleft()
                kind = type(event)
                if kind is Data or kind is EndOfMessage:
                    return event  # type: ignore[return-value]
                if kind is StreamReset or kind is ConnectionClosed:
                    self.reset_by_peer = True
                    raise DownstreamReset()
                if kind is StreamError:
                    raise DownstreamProtocolError(event.error)  # type: ignore[union-attr]
            data = await conn._read()
            try:
                events.extend(conn.codec.receive_data(data))
            except RemoteProtocolError as error:
                conn.ctx.stats.inc(conn.ctx.names.cx_protocol_error)
                raise DownstreamProtocolError(error) from None

    async def ack(self, size: int) -> None:
        pass

    def write(self, event: Event) -> None:
        self.conn.out += self.conn.codec.send(event)

    async def flush(self) -> None:
        await self.conn.flush()

    def ending_early(self) -> None:
        self.conn.codec.close()

    async def reset(self) -> None:
        conn = self.conn
        conn.codec.send(StreamReset(self.stream_id, ErrorCodes.INTERNAL_ERROR))
        with contextlib.suppress(DownstreamReset):
            await conn.flush()
