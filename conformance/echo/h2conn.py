"""HTTP/2 (prior knowledge) on one connection, with h2; gRPC rides on it.

Theory of operation: one task reads frames and feeds them to the
`H2Connection`; each request that ends spawns a task that asks `EchoApp` for
the reply and sends it, honouring the peer's flow-control windows (it waits
on `_window_changed` when a window is empty). Every write goes through
`_flush`, which takes the pending bytes and sends them under one FIFO lock so
that bytes leave in the order h2 produced them. A reply that says `reset`
cancels everything and closes the socket with a RST.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import trio

from conformance.echo.app import HTTP2, EchoApp, EchoReply, EchoRequest
from conformance.echo.sockets import abort

READ_SIZE = 65536


@dataclass
class _Incoming:
    headers: list[tuple[str, str]]
    body: bytearray = field(default_factory=bytearray)


class H2Handler:
    def __init__(self, stream: trio.SocketStream, app: EchoApp, local: str) -> None:
        self.stream = stream
        self.app = app
        self.local = local
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self._lock = trio.StrictFIFOLock()
        self._window_changed = trio.Event()
        self._incoming: dict[int, _Incoming] = {}
        self._closed: set[int] = set()
        self._reset = False

    async def serve(self, initial: bytes) -> None:
        self.conn.initiate_connection()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._receive(initial)
                await self._flush()
                while True:
                    data = await self.stream.receive_some(READ_SIZE)
                    if not data or not await self._receive(data):
                        break
                    await self._flush()
                nursery.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h2.exceptions.ProtocolError):
            pass
        if self._reset:
            await abort(self.stream)
        else:
            await self.stream.aclose()

    async def _receive(self, data: bytes) -> bool:
        """Feed bytes in; False once the peer ended the connection."""
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                headers = [(_text(n), _text(v)) for n, v in event.headers or []]
                self._incoming[event.stream_id] = _Incoming(headers)
            elif isinstance(event, h2.events.DataReceived):
                incoming = self._incoming.get(event.stream_id)
                if incoming is not None:
                    incoming.body += event.data or b""
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length or 0, event.stream_id or 0
                )
            elif isinstance(event, h2.events.StreamEnded):
                assert event.stream_id is not None
                self._nursery.start_soon(self._respond, event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self._closed.add(event.stream_id or 0)
                self._wake()
            elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
                self._wake()
            elif isinstance(event, h2.events.ConnectionTerminated):
                return False
        return True

    def _wake(self) -> None:
        self._window_changed.set()
        self._window_changed = trio.Event()

    async def _flush(self) -> None:
        async with self._lock:
            data = self.conn.data_to_send()
            if data:
                await self.stream.send_all(data)

    async def _respond(self, stream_id: int) -> None:
        incoming = self._incoming.pop(stream_id)
        pseudo = {n: v for n, v in incoming.headers if n.startswith(":")}
        request = EchoRequest(
            protocol=HTTP2,
            method=pseudo.get(":method", ""),
            target=pseudo.get(":path", ""),
            authority=pseudo.get(":authority", ""),
            headers=tuple((n, v) for n, v in incoming.headers if not n.startswith(":")),
            body=bytes(incoming.body),
            local_address=self.local,
        )
        reply = self.app.handle(request)
        if reply.delay:
            await trio.sleep(reply.delay)
        if reply.reset:
            self._reset = True
            self._nursery.cancel_scope.cancel()
            return
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            await self._send_reply(stream_id, reply)

    async def _send_reply(self, stream_id: int, reply: EchoReply) -> None:
        headers = [(":status", str(reply.status)), *reply.headers]
        ends = not reply.parts and not reply.trailers
        self.conn.send_headers(stream_id, headers, end_stream=ends)
        await self._flush()
        for index, part in enumerate(reply.parts):
            last = index == len(reply.parts) - 1 and not reply.trailers
            await self._send_data(stream_id, part, end_stream=last)
        if reply.trailers:
            self.conn.send_headers(stream_id, list(reply.trailers), end_stream=True)
            await self._flush()

    async def _send_data(self, stream_id: int, data: bytes, *, end_stream: bool) -> None:
        view = memoryview(data)
        while True:
            if stream_id in self._closed:
                return
            window = min(
                self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size
            )
            if window <= 0 and view:
                await self._window_changed.wait()
                continue
            chunk, view = view[:window], view[window:]
            self.conn.send_data(stream_id, bytes(chunk), end_stream=end_stream and not view)
            await self._flush()
            if not view:
                return


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
