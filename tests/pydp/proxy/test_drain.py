"""Connections of a retired configuration drain: the current response is the last, idle ones
close, and what is left is cancelled at the deadline (`pydp.proxy.drain`)."""

from __future__ import annotations

import trio

from pydp.listener.config import TcpProxyConfig
from pydp.proxy.drain import Drain
from tests.pydp.proxy.backend import Backends, Received, Reply
from tests.pydp.proxy.harness import FakeRuntime, hcm, routes, serving, to

GET = b"GET /%s HTTP/1.1\r\nHost: svc\r\n\r\n"


async def _read_head(stream: trio.SocketStream, buffer: bytes = b"") -> tuple[bytes, bytes]:
    with trio.fail_after(5):
        while b"\r\n\r\n" not in buffer:
            data = await stream.receive_some(65536)
            assert data, f"closed early: {buffer!r}"
            buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head, rest


async def _closed(stream: trio.SocketStream) -> bool:
    with trio.fail_after(5):
        while data := await stream.receive_some(65536):
            assert not data.startswith(b"HTTP/"), data
    return True


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
    async with serving(runtime, hcm(routes(to("c"))), drain=drain) as proxy:
        stream = await trio.open_tcp_stream(*proxy)
        await stream.send_all(GET % b"fast")
        head, _ = await _read_head(stream)
        assert b"connection: close" not in head.lower()
        await stream.send_all(GET % b"slow")
        with trio.fail_after(5):
            await slow.arrived.wait()  # the request is with the backend
        drain.start(trio.current_time() + 10)
        head, rest = await _read_head(stream)
        assert head.startswith(b"HTTP/1.1 200") and b"\r\nconnection: close" in head, head
        assert rest == b"ok" and await _closed(stream)
        await stream.aclose()


async def test_an_idle_connection_closes_and_a_late_one_answers_once(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    old = Drain()
    async with serving(runtime, hcm(routes(to("c"))), drain=old) as proxy:
        idle = await trio.open_tcp_stream(*proxy)
        await idle.send_all(GET % b"a")
        await _read_head(idle)
        old.start(trio.current_time() + 10)
        assert await _closed(idle)
        assert runtime.counter("http.ingress.downstream_cx_idle_timeout") == 0
        # A connection that joins a drain already started answers its first request, then closes.
        late = await trio.open_tcp_stream(*proxy)
        await late.send_all(GET % b"b")
        head, _ = await _read_head(late)
        assert b"\r\nconnection: close" in head
        assert await _closed(late)
        await idle.aclose()
        await late.aclose()


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
