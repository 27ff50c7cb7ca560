"""The TCP proxy: bytes both ways, half-close, failures, stats and the access log."""

from __future__ import annotations

import trio
import trio.testing

from pydp.listener.config import TcpProxyConfig
from tests.pydp.proxy.harness import FakeRuntime, serving
from tests.pydp.proxy.test_failures import closed_port


async def start_echo(nursery: trio.Nursery) -> tuple[str, int]:
    """Echo until EOF, then say goodbye and close."""

    async def echo(stream: trio.SocketStream) -> None:
        async for data in stream:
            await stream.send_all(data)
        await stream.send_all(b"bye")
        await stream.aclose()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, echo, listeners)
    address: tuple[str, int] = listeners[0].socket.getsockname()[:2]
    return address


async def read_all(stream: trio.SocketStream) -> bytes:
    out = b""
    async for data in stream:
        out += data
    return out


async def test_splices_both_ways_with_half_close(runtime: FakeRuntime) -> None:
    async with trio.open_nursery() as nursery:
        runtime.add_cluster("c", [await start_echo(nursery)])
        async with serving(runtime, TcpProxyConfig("tp", "c"), "tcp_listener") as proxy:
            stream = await trio.open_tcp_stream(*proxy)
            await stream.send_all(b"hello ")
            assert await stream.receive_some(100) == b"hello "
            await stream.send_all(b"world")
            await stream.send_eof()
            rest = await read_all(stream)
            await stream.aclose()
            await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert rest == b"worldbye"
    ((listener, entry),) = runtime.entries
    assert listener == "tcp_listener"
    assert (entry.bytes_received, entry.bytes_sent) == (11, 14)
    assert entry.upstream_cluster == "c"
    assert entry.protocol == "-"
    assert entry.response_flags == "-"
    assert runtime.counter("tcp.tp.downstream_cx_total") == 1
    assert runtime.counter("tcp.tp.downstream_cx_rx_bytes_total") == 11
    assert runtime.counter("tcp.tp.downstream_cx_tx_bytes_total") == 14
    assert runtime.counter("cluster.c.upstream_cx_total") == 1
    assert runtime.stats.gauges["cluster.c.upstream_cx_active"] == 0


async def test_no_healthy_host_closes(runtime: FakeRuntime) -> None:
    runtime.add_cluster("c", [])
    async with (
        serving(runtime, TcpProxyConfig("tp", "c")) as proxy,
        await trio.open_tcp_stream(*proxy) as stream,
    ):
        assert await read_all(stream) == b""
    assert runtime.entries[0][1].response_flags == "UH"


async def test_unknown_cluster_closes(runtime: FakeRuntime) -> None:
    async with (
        serving(runtime, TcpProxyConfig("tp", "nope")) as proxy,
        await trio.open_tcp_stream(*proxy) as stream,
    ):
        assert await read_all(stream) == b""
    assert runtime.entries[0][1].response_flags == "NC"
    assert runtime.counter("tcp.tp.downstream_cx_no_route") == 1


async def test_connect_failure(runtime: FakeRuntime) -> None:
    runtime.add_cluster("c", [await closed_port()])
    async with (
        serving(runtime, TcpProxyConfig("tp", "c")) as proxy,
        await trio.open_tcp_stream(*proxy) as stream,
    ):
        assert await read_all(stream) == b""
    assert runtime.entries[0][1].response_flags == "UF"
    assert runtime.counter("cluster.c.upstream_cx_connect_fail") == 1


async def test_idle_timeout(runtime: FakeRuntime, autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        runtime.add_cluster("c", [await start_echo(nursery)])
        async with (
            serving(runtime, TcpProxyConfig("tp", "c", idle_timeout=5)) as proxy,
            await trio.open_tcp_stream(*proxy) as stream,
        ):
            start = trio.current_time()
            assert await read_all(stream) == b""
            assert 5 <= trio.current_time() - start < 6
        nursery.cancel_scope.cancel()
    assert runtime.counter("tcp.tp.idle_timeout") == 1


async def test_connection_breaker(runtime: FakeRuntime) -> None:
    async with trio.open_nursery() as nursery:
        runtime.add_cluster(
            "c",
            [await start_echo(nursery)],
            circuit_breakers={"thresholds": [{"max_connections": 1}]},
        )
        async with serving(runtime, TcpProxyConfig("tp", "c")) as proxy:
            first = await trio.open_tcp_stream(*proxy)
            await first.send_all(b"x")
            assert await first.receive_some(10) == b"x"
            async with await trio.open_tcp_stream(*proxy) as second:
                assert await read_all(second) == b""
            await first.aclose()
        nursery.cancel_scope.cancel()
    assert "UO" in [e.response_flags for _, e in runtime.entries]
