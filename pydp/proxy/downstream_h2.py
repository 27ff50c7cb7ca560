"""A downstream HTTP/2 connection: a reader, a writer, and workers that run the streams.

Theory of operation
-------------------
The connection's task reads the socket (`pydp.sockets`) and feeds the
codec. A `Request` is queued for a worker, a task of the connection that
runs requests (`ActiveRequest`) one after another and parks between them:
a stream costs a hand-over, not a task, and usually not a cancel scope and
an alarm either (see `_Worker`). A stream's later events go to its `Inbox`,
made when the first one comes (a request that ended with its headers never
gets one). A peer RST_STREAM cancels the stream's worker scope while it runs
(flag DC), or marks it before. A request header block the codec refused
(`StreamError` without a request) is answered at once by the reader.

Writes are batched: streams and the reader append to the connection's output
buffer and wake the writer task, which runs after every task already woken,
so the responses of the streams that woke together leave in one write. A
response's last `Data` waits for its `EndOfMessage`, to leave as one DATA
frame with END_STREAM. The writer sends under a lock, until the buffer is
empty; a flush that finds the lock taken leaves its bytes to the holder. A
stream's `flush` waits while more than `CONNECTION_HIGH_WATER` bytes wait for
the socket (the client reads too slowly), and while the codec holds more than
`HIGH_WATER` of the stream's data back for lack of window - the client's flow
control is the back-pressure on the upstream. Request body bytes are
acknowledged (`ack_data`, reopening the window) only once forwarded upstream.

The connection ends at EOF, on a connection-level protocol error (GOAWAY,
counted in `downstream_cx_protocol_error`), or after `idle_timeout` without
streams (GOAWAY, then close; the deadline is an `Alarm` around the reader).
"""

from __future__ import annotations

import logging
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
from pydp.proxy.stream_info import StreamInfo
from pydp.proxy.timers import INF, Alarm
from pydp.sockets import receive_some, send_all

log = logging.getLogger(__name__)

RECEIVE_SIZE = 65536
HIGH_WATER = 64 * 1024
CONNECTION_HIGH_WATER = 1024 * 1024  # Envoy's default per-connection buffer limit
STREAM_WINDOW = 1024 * 1024
IDLE_WORKERS = 64

_reschedule = trio.lowlevel.reschedule
_SUCCEEDED = trio.lowlevel.Abort.SUCCEEDED


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
        self.alarm: Alarm | None = None
        self.pending: deque[tuple[H2Stream, Request]] = deque()
        self.idle: list[trio.lowlevel.Task] = []  # parked workers
        self.writer: trio.lowlevel.Task | None = None  # the writer, while parked
        self.drained = Signal()

    async def run(self, initial: bytes) -> None:
        drain = self.ctx.drain
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                nursery.start_soon(self._write_loop)
                if drain is not None:
                    drain.join(self)
                await self._read_loop(initial)
                nursery.cancel_scope.cancel()
        finally:
            self.nursery = None
            if drain is not None:
                drain.leave(self)

    def start_drain(self) -> None:
        """GOAWAY: the open streams may finish, the client opens no new one."""
        if not self.broken:
            self.out += self.codec.close()
            self.schedule_flush()

    # -- reading ----------------------------------------------------------------------

    async def _read_loop(self, initial: bytes) -> None:
        ctx = self.ctx
        if initial and not self._feed(initial):
            await self.flush(wait=True, quiet=True)
            return
        scope = trio.CancelScope()
        alarm = self.alarm = ctx.timers.alarm(scope)
        self._arm_idle()
        failed = False
        try:
            with scope:
                while not self.broken:
                    data = await receive_some(self.sock, RECEIVE_SIZE)
                    if not data:
                        self._feed(b"")
                        return
                    if not self._feed(data):
                        failed = True
                        break
        finally:
            alarm.stop()
            self.alarm = None
        if scope.cancelled_caught:
            ctx.stats.inc(ctx.names.cx_idle_timeout)
            self.out += self.codec.close()
        if failed or scope.cancelled_caught:
            await self.flush(wait=True, quiet=True)

    def _arm_idle(self) -> None:
        alarm = self.alarm
        if alarm is not None:
            idle_timeout = self.ctx.config.idle_timeout
            if idle_timeout and not self.streams:
                alarm.set(self.ctx.clock.current_time() + idle_timeout)
            else:
                alarm.set(INF)

    def _feed(self, data: bytes) -> bool:
        """Feed the codec and dispatch its events; False after a protocol error."""
        codec = self.codec
        try:
            events = codec.receive_data(data)
        except RemoteProtocolError:
            self.ctx.stats.inc(self.ctx.names.cx_protocol_error)
            self.out += codec.data_to_send()
            for reset in list(self.streams.values()):
                reset.peer_reset()
            return False
        reply = codec.data_to_send()
        if reply:
            self.out += reply
        streams = self.streams
        for event in events:
            kind = type(event)
            if kind is Request:
                assert isinstance(event, Request)
                self._start(event)
            elif kind is ConnectionClosed:
                pass
            else:
                stream = streams.get(event.stream_id)  # type: ignore[union-attr]  # not ConnectionClosed
                if stream is None:
                    if kind is StreamError:
                        assert isinstance(event, StreamError)
                        self._reject(event)
                elif kind is Data or kind is StreamError:
                    stream.put(event)
                elif kind is EndOfMessage:
                    if not stream.complete:
                        stream.put(event)
                elif kind is StreamReset:
                    stream.peer_reset()
                elif kind is WindowUpdated:
                    stream.window.fire()
                elif kind is ExpectContinue:
                    stream.expect_continue = True
        if self.out:
            self.schedule_flush()
        return True

    # -- streams ----------------------------------------------------------------------

    def _start(self, request: Request) -> None:
        stream = H2Stream(self, request.stream_id, request.end_stream)
        streams = self.streams
        streams[request.stream_id] = stream
        if len(streams) == 1:
            self._arm_idle()
        self.pending.append((stream, request))
        idle = self.idle
        if idle:
            _reschedule(idle.pop())
        else:
            assert self.nursery is not None
            self.nursery.start_soon(_Worker(self).run)

    def stream_done(self, stream: H2Stream) -> None:
        streams = self.streams
        streams.pop(stream.stream_id, None)
        if not streams:
            self._arm_idle()

    def _reject(self, event: StreamError) -> None:
        """Answer a request whose header block the codec refused."""
        ctx = self.ctx
        error = event.error
        info = StreamInfo(time.time(), ctx.clock.current_time())
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
        if ctx.log_access:
            end = ctx.clock.current_time()
            ctx.runtime.access_log(ctx.listener, info.http_entry(None, "HTTP/2", end, ctx.remote))

    # -- writing ----------------------------------------------------------------------

    def schedule_flush(self) -> None:
        """Have the writer send the buffer once the tasks woken so far have run."""
        writer = self.writer
        if writer is not None:
            self.writer = None
            _reschedule(writer)

    def _abort_writer(self, _: object) -> trio.lowlevel.Abort:
        self.writer = None
        return _SUCCEEDED

    async def _write_loop(self) -> None:
        while True:
            if self.out and not self.broken:
                await self.flush(quiet=True)
            self.drained.fire()
            self.writer = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort_writer)

    async def drain(self) -> None:
        """Wait until no more than `CONNECTION_HIGH_WATER` bytes wait for the socket."""
        while len(self.out) > CONNECTION_HIGH_WATER and not self.broken:
            self.schedule_flush()
            await self.drained.wait()
        if self.broken:
            raise DownstreamReset()

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
                    for stream in list(self.streams.values()):
                        stream.peer_reset()
        if self.broken and not quiet:
            raise DownstreamReset()


class _Worker:
    """A task of the connection that runs its streams one after another.

    As the HTTP/1.1 connection does, a worker enters one cancel scope for as
    many requests as it can and has one `Alarm` cancel it: the request in
    progress owns both (a peer reset cancels the scope too). When the scope is
    cancelled, or a request ended with a failure, the worker leaves it, lets
    that request answer outside it (`finish`), and enters a new one."""

    __slots__ = ("active", "alarm", "conn", "stream", "task")
    task: trio.lowlevel.Task  # set when it runs

    def __init__(self, conn: H2Downstream) -> None:
        self.conn = conn
        self.alarm = conn.ctx.timers.alarm()
        self.active: ActiveRequest | None = None
        self.stream: H2Stream | None = None

    async def run(self) -> None:
        self.task = trio.lowlevel.current_task()
        try:
            while True:
                scope = self.alarm.scope = trio.CancelScope()
                with scope:
                    if not await self._serve(scope):
                        return
                await self._finish(scope.cancelled_caught)
        finally:
            self.alarm.stop()
            if self.active is not None:
                self._done()

    async def _serve(self, scope: trio.CancelScope) -> bool:
        """Run queued streams until one must end outside `scope` (True) or this
        worker is not needed any more (False)."""
        conn = self.conn
        pending = conn.pending
        while True:
            while pending:
                stream, request = pending.popleft()
                active = self.active = ActiveRequest(stream, request, conn.ctx, self.alarm)
                self.stream = stream
                stream.scope = scope
                if stream.reset_by_peer:
                    scope.cancel()
                try:
                    await active.run()
                except Exception:
                    log.exception("stream %d of %s failed", stream.stream_id, conn.ctx.listener)
                    await stream.reset()
                    self._done()
                else:
                    if scope.cancel_called or active.failure is not None:
                        return True
                    self._done()
                    continue
                if scope.cancel_called:
                    return True  # nothing more in this scope
            idle = conn.idle
            if len(idle) >= IDLE_WORKERS:
                return False
            idle.append(self.task)
            await trio.lowlevel.wait_task_rescheduled(self._abort)

    def _abort(self, _: object) -> trio.lowlevel.Abort:
        idle = self.conn.idle
        if self.task in idle:
            idle.remove(self.task)
        return _SUCCEEDED

    async def _finish(self, cancelled: bool) -> None:
        """End the request that left the scope: its timeout, reset or failure."""
        active, stream = self.active, self.stream
        if active is None or stream is None:
            return
        stream.scope = None
        try:
            await active.finish(timed_out=cancelled and not stream.reset_by_peer)
        except Exception:
            log.exception("stream %d of %s failed", stream.stream_id, self.conn.ctx.listener)
            await stream.reset()
        finally:
            self._done()

    def _done(self) -> None:
        active, stream = self.active, self.stream
        self.active = self.stream = None
        if active is not None:
            active.close()
        if stream is not None:
            stream.scope = None
            self.conn.stream_done(stream)


class H2Stream(DownstreamStream):
    protocol = "HTTP/2"

    def __init__(self, conn: H2Downstream, stream_id: int, complete: bool) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.complete = complete  # the request ended with its headers
        self.inbox: Inbox[Event] | None = None
        self.window = Signal()
        self.scope: trio.CancelScope | None = None  # its worker's, while it runs
        self.reset_after_response = False
        self.held: Data | None = None

    def put(self, event: Event) -> None:
        inbox = self.inbox
        if inbox is None:
            inbox = self.inbox = Inbox()
        inbox.put(event)

    def peer_reset(self) -> None:
        self.reset_by_peer = True
        if self.scope is not None:
            self.scope.cancel()
        self.window.fire()

    async def receive(self) -> Data | EndOfMessage:
        inbox = self.inbox
        if inbox is None:
            inbox = self.inbox = Inbox()
        event = await inbox.get()
        kind = type(event)
        if kind is Data or kind is EndOfMessage:
            return event  # type: ignore[return-value]
        if kind is StreamError:
            raise DownstreamProtocolError(event.error)  # type: ignore[union-attr]
        self.reset_by_peer = True
        raise DownstreamReset()

    async def ack(self, size: int) -> None:
        conn = self.conn
        if conn.broken:
            raise DownstreamReset()
        conn.out += conn.codec.ack_data(self.stream_id, size)
        if conn.out:
            conn.schedule_flush()

    def write(self, event: Event) -> None:
        """`Data` is held until the next write or flush: followed by an `EndOfMessage`
        without trailers, the two leave as one DATA frame with END_STREAM."""
        conn = self.conn
        codec = conn.codec
        held = self.held
        if held is not None:
            self.held = None
            if isinstance(event, EndOfMessage) and not event.trailers:
                conn.out += codec.send_last(self.stream_id, held.data)
                self._ended()
                return
            conn.out += codec.send(held)
        if isinstance(event, Data):
            self.held = event
            return
        conn.out += codec.send(event)
        if isinstance(event, EndOfMessage):
            self._ended()

    def _ended(self) -> None:
        if self.reset_after_response:
            conn = self.conn
            conn.out += conn.codec.send(StreamReset(self.stream_id, ErrorCodes.NO_ERROR))

    async def flush(self) -> None:
        conn = self.conn
        if conn.broken:
            raise DownstreamReset()
        held = self.held
        if held is not None:
            self.held = None
            conn.out += conn.codec.send(held)
        if conn.out:
            conn.schedule_flush()
            if len(conn.out) > CONNECTION_HIGH_WATER:
                await conn.drain()
        codec = conn.codec
        while codec.buffered_outbound(self.stream_id) > HIGH_WATER:
            if self.reset_by_peer or conn.broken:
                raise DownstreamReset()
            await self.window.wait()

    def ending_early(self) -> None:
        self.reset_after_response = True

    async def reset(self) -> None:
        self.held = None
        conn = self.conn
        conn.out += conn.codec.send(StreamReset(self.stream_id, ErrorCodes.INTERNAL_ERROR))
        conn.schedule_flush()
