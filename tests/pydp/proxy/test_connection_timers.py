"""One alarm per HTTP/1.1 connection: timeouts between, before and during requests."""

from __future__ import annotations

import trio
import trio.testing

from tests.pydp.proxy.backend import Backends, Received, Reply
from tests.pydp.proxy.client import h1_client
from tests.pydp.proxy.harness import FakeRuntime, hcm, routes, serving, to


def delayed(received: Received) -> Reply:
    return Reply(200, [], b"ok", delay=float(received.header("x-delay") or 0))


async def test_request_headers_timeout_counts_from_the_first_byte(
    runtime: FakeRuntime, autojump_clock: trio.testing.MockClock
) -> None:
    """Bytes that keep arriving do not restart it (Envoy's `request_headers_timeout`)."""
    config = hcm(routes(), request_headers_timeout=1.0, stream_idle_timeout=0.8)
    async with serving(runtime, config) as proxy:
        stream = await trio.open_tcp_stream(*proxy)
        async with stream, trio.open_nursery() as nursery:
            start = trio.current_time()

            async def drip() -> None:
                await stream.send_all(b"GET / HTTP/1.1\r\n")
                for i in range(20):
                    await trio.sleep(0.3)
                    await stream.send_all(b"x-%d: y\r\n" % i)

            nursery.start_soon(drip)
            answer = await stream.receive_some(65536)
            elapsed = trio.current_time() - start
            nursery.cancel_scope.cancel()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(b"request header timeout")
    assert 1.0 <= elapsed < 1.3
    assert runtime.counter("http.ingress.downstream_rq_header_timeout") == 1


async def test_a_connection_serves_on_after_a_request_timed_out(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start(delayed)
    runtime.add_cluster("c", [backend.address])
    config = hcm(routes(to("c", timeout="1s")))
    async with serving(runtime, config) as proxy, h1_client(proxy) as client:
        late = await client.request(headers=[("x-delay", "5")])
        on_time = await client.request(headers=[("x-delay", "0.5")])
        assert not client.closed
    assert (late.status, late.body) == (504, b"upstream request timeout")
    assert (on_time.status, on_time.body) == (200, b"ok")


async def test_the_connection_idle_timeout_follows_the_last_request(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    config = hcm(routes(to("c")), idle_timeout=2.0)
    async with serving(runtime, config) as proxy, h1_client(proxy) as client:
        for _ in range(3):
            assert (await client.request()).status == 200
            await trio.sleep(1.5)
        start = trio.current_time()
        assert await client.stream.receive_some(65536) == b""
        assert trio.current_time() - start < 1.0
    assert runtime.counter("http.ingress.downstream_cx_idle_timeout") == 1
