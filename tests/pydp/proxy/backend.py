"""Scriptable loopback HTTP backends for the proxy tests, on trio and pydp's codecs.

A `Backend` serves HTTP/1.1 or HTTP/2 (prior knowledge) on 127.0.0.1:0 and
answers each request with what its handler returns: a `Reply` (status,
headers, body chunks, trailers, an optional delay), or `RESET` to drop the
connection without answering. Every request received is recorded.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from pydp.http import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    H1ServerConnection,
    H2Options,
    H2ServerConnection,
    RemoteProtocolError,
    Request,
    Response,
    StreamReset,
)

Headers = list[tuple[bytes, bytes]]


@dataclass
class Received:
    protocol: str
    headers: Headers
    body: bytes = b""
    trailers: Headers = field(default_factory=list)
    connection: int = 0

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.encode():
                return value.decode()
        return None

    @property
    def path(self) -> str:
        return self.header(":path") or ""


@dataclass
class Reply:
    status: int = 200
    headers: Headers = field(default_factory=list)
    body: bytes | list[bytes] = b""
    trailers: Headers = field(default_factory=list)
    delay: float = 0.0


RESET = Reply(status=0)
Handler = Callable[[Received], Reply | Awaitable[Reply]]


def echo(received: Received) -> Reply:
    return Reply(200, [(b"content-type", b"text/plain")], received.body or b"ok")


class Backend:
    def __init__(
        self,
        handler: Handler = echo,
        protocol: str = "h1",
        host: str = "127.0.0.1",
        max_concurrent_streams: int | None = None,
    ) -> None:
        self.handler = handler
        self.max_concurrent_streams = max_concurrent_streams
        self.protocol = protocol
        self.host = host
        self.received: list[Received] = []
        self.connections = 0
        self.address: tuple[str, int] = (host, 0)

    @property
    def port(self) -> int:
        return self.address[1]

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host=self.host)
        self.address = listeners[0].socket.getsockname()[:2]
        task_status.started()
        await trio.serve_listeners(self._connection, listeners)

    async def _reply(self, received: Received) -> Reply:
        self.received.append(received)
        reply = self.handler(received)
        if inspect.isawaitable(reply):
            reply = await reply
        assert isinstance(reply, Reply)
        if reply.delay:
            await trio.sleep(reply.delay)
        return reply

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        index = self.connections
        try:
            if self.protocol == "h2":
                await self._h2(stream, index)
            else:
                await self._h1(stream, index)
        except (trio.BrokenResourceError, trio.ClosedResourceError, RemoteProtocolError):
            pass
        finally:
            await stream.aclose()

    async def _h1(self, stream: trio.SocketStream, index: int) -> None:
        conn = H1ServerConnection()
        pending: list[Event] = []
        while True:
            while not pending:
                if conn.should_close:
                    return
                pending += conn.next_events()
                if pending:
                    break
                data = await stream.receive_some(65536)
                pending += conn.receive_data(data)
                if not data and not pending:
                    return
            event = pending.pop(0)
            if isinstance(event, ConnectionClosed | StreamReset):
                return
            if not isinstance(event, Request):
                continue
            received = Received("HTTP/1.1", event.headers, connection=index)
            done = event.end_stream
            while not done:
                while not pending:
                    data = await stream.receive_some(65536)
                    pending += conn.receive_data(data)
                item = pending.pop(0)
                if isinstance(item, Data):
                    received.body += item.data
                elif isinstance(item, EndOfMessage):
                    received.trailers = item.trailers
                    done = True
                elif isinstance(item, StreamReset | ConnectionClosed):
                    return
            reply = await self._reply(received)
            if reply is RESET:
                return
            sid = event.stream_id
            out = _send_reply(conn, sid, reply)
            for chunk in out:
                await stream.send_all(chunk)
            if conn.should_close:
                return

    async def _h2(self, stream: trio.SocketStream, index: int) -> None:
        options = None
        if self.max_concurrent_streams is not None:
            options = H2Options(max_concurrent_streams=self.max_concurrent_streams)
        conn = H2ServerConnection(options=options)
        lock = trio.Lock()
        requests: dict[int, Received] = {}

        async def write(data: bytes) -> None:
            async with lock:
                await stream.send_all(data + conn.data_to_send())

        async def answer(sid: int, received: Received) -> None:
            reply = await self._reply(received)
            if reply is RESET:
                await stream.aclose()
                return
            for chunk in _send_reply(conn, sid, reply):
                await write(chunk)

        async with trio.open_nursery() as nursery:
            await write(b"")
            while True:
                data = await stream.receive_some(65536)
                events = conn.receive_data(data)
                for event in events:
                    if isinstance(event, Request):
                        requests[event.stream_id] = Received(
                            "HTTP/2", event.headers, connection=index
                        )
                    elif isinstance(event, Data):
                        requests[event.stream_id].body += event.data
                        conn.ack_data(event.stream_id, len(event.data))
                    elif isinstance(event, EndOfMessage):
                        received = requests.pop(event.stream_id)
                        received.trailers = event.trailers
                        nursery.start_soon(answer, event.stream_id, received)
                await write(b"")
                if not data:
                    nursery.cancel_scope.cancel()
                    return


def _send_reply(
    conn: H1ServerConnection | H2ServerConnection, sid: int, reply: Reply
) -> list[bytes]:
    parts = [reply.body] if isinstance(reply.body, bytes) else list(reply.body)
    parts = [p for p in parts if p]
    end = not parts and not reply.trailers
    out = [conn.send(Response(sid, reply.status, list(reply.headers), end))]
    for part in parts:
        out.append(conn.send(Data(sid, part)))
    out[-1] += conn.send(EndOfMessage(sid, list(reply.trailers)))
    return out


@dataclass
class Backends:
    """Backends started in a nursery."""

    nursery: trio.Nursery

    async def start(
        self,
        handler: Handler = echo,
        protocol: str = "h1",
        host: str = "127.0.0.1",
        max_concurrent_streams: int | None = None,
    ) -> Backend:
        backend = Backend(handler, protocol, host, max_concurrent_streams)
        await self.nursery.start(backend.serve)
        return backend
