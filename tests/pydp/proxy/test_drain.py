"""Connections of a retired configuration drain: the current response is the last, idle ones
close, and what is left is cancelled at the deadline (`pydp.proxy.drain`)."""

from __future__ import annotations

from collections.abc import Callable

import trio

from pydp.listener.config import TcpProxyConfig
from pydp.proxy.drain import Drain
from tests.pydp.proxy.backend import Backends, Received, Reply
from tests.pydp.proxy.client import h2_client
from tests.pydp.proxy.harness import FakeRuntime, hcm, routes, serving, to

GET = b"GET /%s HTTP/1.1\r\nHost: svc\r\n\r\n"


class Client:
    """Raw HTTP/1.1 on one connection, reading whole responses."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def get(self, path: bytes) -> None:
        await self.stream.send_all(GET % path)

    async def response(self) -> tuple[bytes, bytes]:
        """The next response's head and body (content-length or chunked framing)."""
        await self._until(lambda: b"\r\n\r\n" in self.buffer)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        fields = dict(
            line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line
        )
        if b"content-length" in fields:
            size = int(fields[b"content-length"])
            await self._until(lambda: len(self.buffer) >= size)
            body, self.buffer = self.buffer[:size], self.buffer[size:]
        else:
            await self._until(lambda: b"0\r\n\r\n" in self.buffer)
            body, _, self.buffer = self.buffer.partition(b"0\r\n\r\n")
        return head, body

    async def closed(self) -> bool:
        """True once the proxy closed the connection, having sent nothing more."""
        await self._until(lambda: False, eof_ok=True)
        assert not self.buffer, self.buffer
        return True

    async def _until(self, done: Callable[[], bool], eof_ok: bool = False) -> None:
        with trio.fail_after(5):
            while not done():
                data = await self.stream.receive_some(65536)
                if not data:
                    assert eof_ok, f"closed early: {self.buffer!r}"
                    return
                self.buffer += data


class SlowOnce:
    """Answers `/slow` after 0.2 s, and says when that request arrived."""

    def __init__(self) -> None:
        self.arrived = trio.Event()

    def __call__(self, received: Received) -> Reply:
        delay = 0.0
        if "slow" in received.path:
            self.arrived.set()
            delay = 0.2
        return Reply(200, [(b"content-length", b"2")], b"ok", delay=delay)


async def test_the_response_in_progress_is_the_last_one(
    runtime: FakeRuntime, backends: Backends
) -> None:
    slow = SlowOnce()
    backend = await backends.start(slow)
    runtime.add_cluster("c", [backend.address])
    drain = Drain()
    async with (
        serving(runtime, hcm(routes(to("c"))), drain=drain) as proxy,
        await trio.open_tcp_stream(*proxy) as stream,
    ):
        client = Client(stream)
        await client.get(b"fast")
        head, _ = await client.response()
        assert b"connection: close" not in head.lower()
        await client.get(b"slow")
        with trio.fail_after(5):
            await slow.arrived.wait()  # the request is with the backend
        drain.start(trio.current_time() + 10)
        head, body = await client.response()
        assert head.startswith(b"HTTP/1.1 200") and b"\r\nconnection: close" in head, head
        assert body == b"ok" and await client.closed()


async def test_an_idle_connection_closes_and_a_late_one_answers_once(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    old = Drain()
    async with serving(runtime, hcm(routes(to("c"))), drain=old) as proxy:
        async with await trio.open_tcp_stream(*proxy) as idle:
            client = Client(idle)
            await client.get(b"a")
            await client.response()
            old.start(trio.current_time() + 10)
            assert await client.closed()
        assert runtime.counter("http.ingress.downstream_cx_idle_timeout") == 0
        # A connection that joins a drain already started answers its first request, then closes.
        async with await trio.open_tcp_stream(*proxy) as late:
            client = Client(late)
            await client.get(b"b")
            head, _ = await client.response()
            assert b"\r\nconnection: close" in head
            assert await client.closed()


async def test_what_is_left_is_cancelled_at_the_deadline(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.abc.Clock
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    drain = Drain()
    async with serving(runtime, TcpProxyConfig("tcp", "c")) as proxy:
        scope = trio.CancelScope()
        drain.guard(scope)
        with scope:
            drain.start(trio.current_time() + 5)
            stream = await trio.open_tcp_stream(*proxy)
            await trio.sleep(60)
        assert scope.cancelled_caught
        assert trio.current_time() < 10
        await stream.aclose()


async def test_an_http2_connection_is_told_goaway(runtime: FakeRuntime, backends: Backends) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    drain = Drain()
    async with (
        serving(runtime, hcm(routes(to("c"))), drain=drain) as proxy,
        h2_client(proxy) as client,
    ):
        assert (await client.request()).status == 200
        assert not client.goaway
        drain.start(trio.current_time() + 10)
        for _ in range(500):  # the client's reader sets `goaway` when the frame arrives
            if client.goaway:
                break
            await trio.sleep(0.01)
        assert client.goaway
