"""A downstream HTTP/2 connection: a reader loop, and one task per stream.

Theory of operation
-------------------
The connection's task reads the socket and feeds the codec. A `Request`
starts a stream task in the connection's nursery; the stream's later events
go to its `Inbox`. A peer RST_STREAM cancels the stream's task (flag DC); a
rejected request header block (`StreamError` without a request) is
answered on a task of its own. Writers share the socket: each appends to
the connection's output buffer and flushes under a lock, the lock holder
sending everything queued until the buffer is empty - so a flush that finds
the lock taken returns at once (only a closing connection waits for it). A stream
task's flush also waits while the codec holds more than `HIGH_WATER` of its
data back for lack of window - the client's flow control is the back-pressure
on the upstream. Request body bytes are acknowledged (`ack_data`, reopening
the window) only once forwarded upstream.

The connection ends at EOF, on a connection-level protocol error (GOAWAY,
counted in `downstream_cx_protocol_error`), or after `idle_timeout` without
streams (GOAWAY, then close).
"""

from __future__ import annotations

import logging
import time

import trio
from h2.errors import ErrorCodes

from pydp.http import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    ExpectContinue,
    H2Options,
    H2ServerConnection,
    RemoteProtocolError,
    Request,
    Response,
    StreamError,
    StreamReset,
    WindowUpdated,
)
from pydp.proxy.context import (
    DownstreamProtocolError,
    DownstreamReset,
    DownstreamStream,
    HttpContext,
)
from pydp.proxy.inbox import Inbox, Signal
from pydp.proxy.request import ActiveRequest, error_reply
from pydp.proxy.sockets import send_all
from pydp.proxy.stream_info import StreamInfo

log = logging.getLogger(__name__)

RECEIVE_SIZE = 65536
HIGH_WATER = 64 * 1024
STREAM_WINDOW = 1024 * 1024


class H2Downstream:
    def __init__(self, sock: trio.abc.Stream, ctx: HttpContext) -> None:
        self.sock = sock
        self.ctx = ctx
        self.codec = H2ServerConnection(
            limits=ctx.limits, options=H2Options(initial_stream_window_size=STREAM_WINDOW)
        )
        self.out = bytearray(self.codec.data_to_send())
        self.lock = trio.Lock()
        self.streams: dict[int, H2Stream] = {}
        self.broken = False
        self.nursery: trio.Nursery | None = None
        self.idle_scope: trio.CancelScope | None = None

    async def run(self, initial: bytes) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                await self._read_loop(initial)
                nursery.cancel_scope.cancel()
        finally:
            self.nursery = None

    async def _read_loop(self, initial: bytes) -> None:
        if initial and not await self._feed(initial):
            return
        idle_timeout = self.ctx.config.idle_timeout
        while not self.broken:
            deadline = float("inf")
            if idle_timeout and not self.streams:
                deadline = trio.current_time() + idle_timeout
            with trio.move_on_at(deadline) as idle:
                self.idle_scope = idle
                try:
                    data = bytes(await self.sock.receive_some(RECEIVE_SIZE))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
            if idle.cancelled_caught:
                self.ctx.stats.inc(self.ctx.names.cx_idle_timeout)
                self.out += self.codec.close()
                await self.flush(wait=True, quiet=True)
                return
            if not data:
                await self._feed(b"")
                return
            if not await self._feed(data):
                return

    async def _feed(self, data: bytes) -> bool:
        codec = self.codec
        try:
            events = codec.receive_data(data)
        except RemoteProtocolError:
            self.ctx.stats.inc(self.ctx.names.cx_protocol_error)
            self.out += codec.data_to_send()
            await self.flush(wait=True, quiet=True)
            for stream in self.streams.values():
                stream.peer_reset()
            return False
        self.out += codec.data_to_send()
        for event in events:
            self._dispatch(event)
        if self.out:
            await self.flush(quiet=True)
        return True

    def _dispatch(self, event: Event) -> None:
        kind = type(event)
        if kind is Request:
            assert isinstance(event, Request)
            new = H2Stream(self, event.stream_id)
            self.streams[event.stream_id] = new
            assert self.nursery is not None
            self.nursery.start_soon(self._run_stream, new, event)
        elif kind is ConnectionClosed:
            pass
        else:
            stream = self.streams.get(getattr(event, "stream_id", -1))
            if kind is WindowUpdated:
                if stream is not None:
                    stream.window.fire()
            elif kind is StreamReset:
                if stream is not None:
                    stream.peer_reset()
            elif stream is not None:
                if kind is ExpectContinue:
                    stream.expect_continue = True
                else:
                    stream.inbox.put(event)
            elif kind is StreamError:
                assert isinstance(event, StreamError) and self.nursery is not None
                self.nursery.start_soon(self._reject, event)

    async def _run_stream(self, stream: H2Stream, request: Request) -> None:
        scope = stream.scope
        alarm = self.ctx.timers.alarm(scope)
        active = ActiveRequest(stream, request, self.ctx, alarm)
        try:
            with scope:
                await active.run()
            await active.finish(timed_out=scope.cancelled_caught and not stream.reset_by_peer)
        except Exception:
            log.exception("stream %d of %s failed", stream.stream_id, self.ctx.listener)
            await stream.reset()
        finally:
            alarm.stop()
            active.close()
            self.streams.pop(stream.stream_id, None)
            idle_timeout = self.ctx.config.idle_timeout
            if not self.streams and idle_timeout and self.idle_scope is not None:
                self.idle_scope.deadline = trio.current_time() + idle_timeout

    async def _reject(self, event: StreamError) -> None:
        """Answer a request whose header block the codec refused."""
        ctx = self.ctx
        error = event.error
        info = StreamInfo(time.time(), trio.current_time())
        status, headers, body = error_reply(error, ctx.config.server_name, grpc=False)
        sid = event.stream_id
        codec = self.codec
        self.out += codec.send(Response(sid, status, headers, not body))
        if body:
            self.out += codec.send(Data(sid, body))
        self.out += codec.send(EndOfMessage(sid))
        info.response_code = status
        info.bytes_sent = len(body)
        info.flag("DPE")
        ctx.stats.inc(ctx.names.rq_total)
        ctx.stats.inc(ctx.names.rq_http2_total)
        ctx.stats.inc(ctx.names.rq_class[status // 100])
        await self.flush(quiet=True)
        end = trio.current_time()
        if ctx.log_access:
            ctx.runtime.access_log(ctx.listener, info.http_entry(None, "HTTP/2", end, ctx.remote))

    async def flush(self, wait: bool = False, quiet: bool = False) -> None:
        """Send everything queued, or leave it to the flush in progress (which sends
        whatever is queued before it ends): waiting for the lock would only queue
        tasks behind it, one scheduler pass each. `wait` (before closing) waits for
        it. A broken connection raises `DownstreamReset` unless `quiet`."""
        if self.broken:
            if quiet:
                return
            raise DownstreamReset()
        if not wait and self.lock.locked():
            return
        async with self.lock:
            while self.out and not self.broken:
                out, self.out = self.out, bytearray()
                try:
                    await send_all(self.sock, out)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self.broken = True
                    for stream in self.streams.values():
                        stream.peer_reset()
        if self.broken and not quiet:
            raise DownstreamReset()

    def flush_soon(self) -> None:
        if self.nursery is not None:
            self.nursery.start_soon(self.flush, False, True)


class H2Stream(DownstreamStream):
    protocol = "HTTP/2"

    def __init__(self, conn: H2Downstream, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.inbox: Inbox[Event] = Inbox()
        self.window = Signal()
        self.scope = trio.CancelScope()
        self.reset_after_response = False
        self.done = False

    def peer_reset(self) -> None:
        self.reset_by_peer = True
        self.scope.cancel()
        self.window.fire()

    async def receive(self) -> Data | EndOfMessage:
        event = await self.inbox.get()
        kind = type(event)
        if kind is Data or kind is EndOfMessage:
            return event  # type: ignore[return-value]
        if kind is StreamError:
            raise DownstreamProtocolError(event.error)  # type: ignore[union-attr]
        self.reset_by_peer = True
        raise DownstreamReset()

    async def ack(self, size: int) -> None:
        conn = self.conn
        conn.out += conn.codec.ack_data(self.stream_id, size)
        await conn.flush()

    def write(self, event: Event) -> None:
        conn = self.conn
        conn.out += conn.codec.send(event)
        if type(event) is EndOfMessage:
            self.done = True
            if self.reset_after_response:
                conn.out += conn.codec.send(StreamReset(self.stream_id, ErrorCodes.NO_ERROR))

    async def flush(self) -> None:
        conn = self.conn
        await conn.flush()
        codec = conn.codec
        while codec.buffered_outbound(self.stream_id) > HIGH_WATER:
            if self.reset_by_peer or conn.broken:
                raise DownstreamReset()
            await self.window.wait()

    def ending_early(self) -> None:
        self.reset_after_response = True

    async def reset(self) -> None:
        conn = self.conn
        conn.out += conn.codec.send(StreamReset(self.stream_id, ErrorCodes.INTERNAL_ERROR))
        await conn.flush(quiet=True)
