"""Back-pressure: a side that stops reading stops the other side, nothing is buffered whole."""

from __future__ import annotations

import trio
import trio.testing

from tests.pydp.proxy.client import h2_client
from tests.pydp.proxy.harness import FakeRuntime, hcm, routes, serving, to

TOTAL = 64 * 1024 * 1024
CHUNK = 64 * 1024


async def test_a_stalled_upstream_stalls_the_request_body(runtime: FakeRuntime) -> None:
    async def never_reads(stream: trio.SocketStream) -> None:
        await stream.receive_some(1000)
        await trio.sleep_forever()

    sent = 0

    async def upload(stream: trio.SocketStream) -> None:
        nonlocal sent
        await stream.send_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % TOTAL)
        while sent < TOTAL:
            await stream.send_all(b"x" * CHUNK)
            sent += CHUNK

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        nursery.start_soon(trio.serve_listeners, never_reads, listeners)
        runtime.add_cluster("c", [listeners[0].socket.getsockname()[:2]])
        table = routes(to("c", retry_policy={"retry_on": "5xx"}))
        async with (
            serving(runtime, hcm(table)) as proxy,
            await trio.open_tcp_stream(*proxy) as stream,
        ):
            nursery.start_soon(upload, stream)
            await trio.testing.wait_all_tasks_blocked(cushion=0.2)
            assert 0 < sent < TOTAL / 2
            nursery.cancel_scope.cancel()


async def test_a_stalled_client_stalls_the_upstream_response(runtime: FakeRuntime) -> None:
    sent = 0

    async def streams_forever(stream: trio.SocketStream) -> None:
        nonlocal sent
        await stream.receive_some(1000)
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % TOTAL)
        while sent < TOTAL:
            await stream.send_all(b"y" * CHUNK)
            sent += CHUNK

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        nursery.start_soon(trio.serve_listeners, streams_forever, listeners)
        runtime.add_cluster("c", [listeners[0].socket.getsockname()[:2]])
        async with (
            serving(runtime, hcm(routes(to("c")))) as proxy,
            await trio.open_tcp_stream(*proxy) as stream,
        ):
            await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            head = await stream.receive_some(100)
            await trio.testing.wait_all_tasks_blocked(cushion=0.2)
            assert head.startswith(b"HTTP/1.1 200 OK")
            assert 0 < sent < TOTAL / 2
            nursery.cancel_scope.cancel()


async def test_h2_request_body_is_acknowledged_as_forwarded(runtime: FakeRuntime) -> None:
    async def never_reads(stream: trio.SocketStream) -> None:
        await stream.receive_some(1000)
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        nursery.start_soon(trio.serve_listeners, never_reads, listeners)
        runtime.add_cluster("c", [listeners[0].socket.getsockname()[:2]])
        async with serving(runtime, hcm(routes(to("c")))) as proxy, h2_client(proxy) as client:
            nursery.start_soon(client.request, "POST", "/", (), b"z" * TOTAL)
            await trio.testing.wait_all_tasks_blocked(cushion=0.2)
            (sid,) = client.done
            assert client.codec.buffered_outbound(sid) > TOTAL / 2
            nursery.cancel_scope.cancel()
