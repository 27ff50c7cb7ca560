"""Resets mid-stream, either side: the other side is told, and the access log says who."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
import trio.testing
from h2.errors import ErrorCodes

from pydp.http import StreamReset
from tests.pydp.proxy.backend import Backends, Received, Reply
from tests.pydp.proxy.client import h2_client, raw_exchange
from tests.pydp.proxy.harness import H2_OPTIONS, FakeRuntime, hcm, routes, serving, to


async def serve_raw(
    nursery: trio.Nursery, handler: Callable[[trio.SocketStream], Awaitable[None]]
) -> tuple[str, int]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, handler, listeners)
    host, port = listeners[0].socket.getsockname()[:2]
    return host, port


async def test_upstream_reset_after_the_head_closes_the_h1_client(runtime: FakeRuntime) -> None:
    async def half_then_close(stream: trio.SocketStream) -> None:
        await stream.receive_some(1000)
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        runtime.add_cluster("c", [await serve_raw(nursery, half_then_close)])
        async with serving(runtime, hcm(routes(to("c")))) as proxy:
            data, closed = await raw_exchange(proxy, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        nursery.cancel_scope.cancel()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"\r\n\r\nabc")
    assert closed
    entry = runtime.entries[0][1]
    assert (entry.response_code, entry.response_flags, entry.bytes_sent) == (200, "UC", 3)
    assert runtime.counter("http.ingress.rq_reset_after_downstream_response_started") == 1


async def test_upstream_reset_after_the_head_resets_the_h2_stream(runtime: FakeRuntime) -> None:
    async def half_then_close(stream: trio.SocketStream) -> None:
        await stream.receive_some(1000)
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        runtime.add_cluster("c", [await serve_raw(nursery, half_then_close)])
        async with serving(runtime, hcm(routes(to("c")))) as proxy, h2_client(proxy) as client:
            answer = await client.request()
            follow_up = await client.request(path="/again")
        nursery.cancel_scope.cancel()
    assert (answer.status, answer.body, answer.reset) == (200, b"abc", True)
    assert follow_up.reset


async def test_client_reset_cancels_the_upstream_request(
    runtime: FakeRuntime, backends: Backends
) -> None:
    cancelled = trio.Event()
    arrived = trio.Event()

    async def slow(received: Received) -> Reply:
        arrived.set()
        try:
            await trio.sleep(10)
        finally:
            cancelled.set()
        return Reply()

    backend = await backends.start(slow, protocol="h2")
    runtime.add_cluster("c", [backend.address], **H2_OPTIONS)
    async with (
        serving(runtime, hcm(routes(to("c")))) as proxy,
        h2_client(proxy) as client,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(client.request)
        await arrived.wait()
        (sid,) = client.done
        await client.write(client.codec.send(StreamReset(sid, ErrorCodes.CANCEL)))
        client.done[sid].set()
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
    entry = runtime.entries[0][1]
    assert entry.response_flags == "DC"
    assert entry.response_code == 0
    assert runtime.counter("http.ingress.downstream_rq_rx_reset") == 1
    assert runtime.clusters["c"].hosts[backend.address].active_requests == 0


async def test_h1_client_gone_mid_upload(runtime: FakeRuntime, backends: Backends) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        async with await trio.open_tcp_stream(*proxy) as stream:
            await stream.send_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nabc")
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
    entry = runtime.entries[0][1]
    assert entry.response_flags == "DC"
    assert entry.bytes_received == 3
    assert backend.received == []
