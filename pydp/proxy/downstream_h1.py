"""A downstream HTTP/1.1 connection: requests one after another on the connection's task.

Theory of operation
-------------------
No task per request: the connection's task parses, and when a `Request`
comes out it runs the request itself (`ActiveRequest`). The request's pump
pulls the body through `H1Stream.receive`, which reads the socket only when
the events already parsed are used up - so the next chunk is read only after
the previous one was forwarded. Pipelined requests wait in the codec until
the response before them is sent (`next_events`).

Timeouts: one `Alarm` per connection, and one cancel scope it cancels,
entered around the whole loop of requests (not one per request). Between
requests the alarm is the connection's `idle_timeout` (then the connection
closes quietly, as Envoy's does over HTTP/1.1); once a request has begun, its
headers must be complete within `request_headers_timeout` of its first byte
(408 `request header timeout`) and the stream idle timeout of the last read
(408 `stream timeout`); while a request runs, its own deadlines hold the
alarm. When the scope is cancelled the loop leaves it, lets the request in
progress (if any) answer its timeout, and enters a new scope. A request that
ended at the moment its alarm fired leaves the scope the same way, so that
nothing after it runs in a cancelled scope.

A request the codec rejects is answered with the codec's status (and
Envoy's body for it) on a closing connection.
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
from pydp.proxy.request import ActiveRequest, error_reply
from pydp.proxy.stream_info import StreamInfo
from pydp.proxy.timers import INF
from pydp.sockets import receive_some, write_now


class H1Downstream:
    def __init__(self, sock: trio.abc.Stream, ctx: HttpContext) -> None:
        self.sock = sock
        self.ctx = ctx
        self.codec = H1ServerConnection(limits=ctx.limits, scheme=ctx.scheme)
        self.events: deque[Event] = deque()
        self.out = bytearray()
        self.stream = H1Stream(self)
        self.alarm = ctx.timers.alarm()
        self.request: ActiveRequest | None = None
        self.partial = False
        self.head_deadline = INF
        self.draining = False
        self.served = 0

    async def run(self, initial: bytes) -> None:
        alarm = self.alarm
        drain = self.ctx.drain
        if drain is not None:
            drain.join(self)
        try:
            over = bool(initial) and not await self._feed(initial)
            while not over:
                scope = alarm.scope = trio.CancelScope()
                with scope:
                    over = await self._serve()
                request = self.request
                if request is not None:
                    self.request = None
                    await request.finish(timed_out=scope.cancelled_caught)
                    over = self.codec.should_close
                elif scope.cancelled_caught:
                    over = self.draining or await self._wait_expired()
            await self.flush()
        finally:
            alarm.stop()
            if drain is not None:
                drain.leave(self)
            if self.request is not None:
                self.request.close()

    def start_drain(self) -> None:
        """The response in progress is the last (`connection: close`); idle between requests,
        close now; before its first request, that request is the last."""
        self.draining = True
        if self.request is not None or self.partial or self.events:
            self.codec.close()
        elif self.served:
            self.codec.close()
            scope = self.alarm.scope
            if scope is not None:
                scope.cancel()

    async def _serve(self) -> bool:
        """Requests until the connection is over (True), or until the alarm's scope was
        cancelled while a request ended (False: it is finished outside the scope)."""
        codec = self.codec
        events = self.events
        stream = self.stream
        ctx = self.ctx
        alarm = self.alarm
        scope = alarm.scope
        assert scope is not None
        while True:
            if not events:
                if codec.should_close:
                    return True
                pipelined = codec.next_events()
                if pipelined:
                    events.extend(pipelined)
                    continue
                self._arm_wait()
                data = await receive_some(self.sock, yield_first=True)
                if not await self._feed(data):
                    return True
                continue
            event = events.popleft()
            if type(event) is Request:
                self.partial = False
                self.served += 1
                if self.draining:
                    codec.close()
                stream.start(event.stream_id)
                if events and type(events[0]) is ExpectContinue:
                    events.popleft()
                    stream.expect_continue = True
                request = self.request = ActiveRequest(stream, event, ctx, alarm)
                await request.run()
                if scope.cancel_called:
                    return False
                self.request = None
                if request.failure is None:
                    request.close()
                else:
                    await request.finish()
                if codec.should_close:
                    return True
            elif type(event) is ConnectionClosed:
                return True

    def _arm_wait(self) -> None:
        """The alarm while waiting for (the rest of) the next request's head."""
        ctx = self.ctx
        config = ctx.config
        if self.partial:
            deadline = self.head_deadline
            idle = config.stream_idle_timeout
            if idle:
                deadline = min(deadline, ctx.clock.current_time() + idle)
        else:
            idle = config.idle_timeout
            deadline = ctx.clock.current_time() + idle if idle else INF
        self.alarm.set(deadline)

    async def _wait_expired(self) -> bool:
        ctx = self.ctx
        names = ctx.names
        if not self.partial:
            ctx.stats.inc(names.cx_idle_timeout)
        elif self.head_deadline <= ctx.clock.current_time():
            ctx.stats.inc(names.rq_header_timeout)
            await self._reject(408, REQUEST_HEADER_TIMEOUT, "-")
        else:
            ctx.stats.inc(names.rq_idle_timeout)
            await self._reject(408, STREAM_TIMEOUT, "SI")
        return True

    async def _read(self) -> bytes:
        return await receive_some(self.sock)

    async def _feed(self, data: bytes) -> bool:
        """Parse `data`; False when the connection is over (a rejected request)."""
        try:
            new = self.codec.receive_data(data)
        except RemoteProtocolError as error:
            await self._codec_error(error)
            return False
        if data and not self.partial:
            for event in new:
                if type(event) is Request:
                    break
            else:
                self.partial = True
                timeout = self.ctx.config.request_headers_timeout
                if timeout:
                    self.head_deadline = self.ctx.clock.current_time() + timeout
                else:
                    self.head_deadline = INF
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
        if ctx.log_access:
            ctx.runtime.access_log(ctx.listener, info.http_entry(None, "HTTP/1.1", end, ctx.remote))

    async def flush(self) -> None:
        out = self.out
        if not out:
            return
        self.out = bytearray()
        try:
            rest = write_now(self.sock, out)
            if rest:
                await self.sock.send_all(rest)
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

    def __init__(self, conn: H1Downstream) -> None:
        self.conn = conn
        self.stream_id = 0

    def start(self, stream_id: int) -> None:
        """The connection's next request (one object serves them all in turn)."""
        self.stream_id = stream_id
        self.expect_continue = False
        self.reset_by_peer = False

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
