"""Timeouts, on trio's autojump clock: route, per try, stream idle, headers, connection idle."""

from __future__ import annotations

import trio
import trio.testing

from tests.pydp.proxy.backend import Backends, Received, Reply
from tests.pydp.proxy.client import h1_client, h1_request, h2_client, raw_exchange
from tests.pydp.proxy.harness import H2_OPTIONS, FakeRuntime, hcm, routes, serving, to


def sleeper(seconds: float) -> Reply:
    return Reply(200, [], b"late", delay=seconds)


async def test_route_timeout(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start(lambda r: sleeper(float(r.header("x-delay") or 0)))
    runtime.add_cluster("c", [backend.address])
    async with (
        serving(runtime, hcm(routes(to("c", timeout="0.25s")))) as proxy,
        h1_client(proxy) as client,
    ):
        start = trio.current_time()
        late = await client.request(headers=[("x-delay", "10")])
        took = trio.current_time() - start
        fast = await client.request(headers=[("x-delay", "0.1")])
    assert (late.status, late.body) == (504, b"upstream request timeout")
    assert late.header("content-length") == "24"
    assert 0.25 <= took < 0.3
    assert fast.status == 200
    assert backend.received[0].header("x-envoy-expected-rq-timeout-ms") == "250"
    assert runtime.entries[0][1].response_flags == "UT"
    assert runtime.counter("cluster.c.upstream_rq_timeout") == 1
    assert runtime.counter("cluster.c.upstream_rq_504") == 1


async def test_route_timeout_over_h2_both_sides(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start(lambda r: sleeper(10), protocol="h2")
    runtime.add_cluster("c", [backend.address], **H2_OPTIONS)
    async with (
        serving(runtime, hcm(routes(to("c", timeout="0.25s")))) as proxy,
        h2_client(proxy) as client,
    ):
        answer = await client.request()
    assert (answer.status, answer.body) == (504, b"upstream request timeout")


async def test_zero_timeout_disables_it(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start(lambda r: sleeper(100))
    runtime.add_cluster("c", [backend.address])
    async with serving(runtime, hcm(routes(to("c", timeout="0s")))) as proxy:
        answer = await h1_request(proxy)
    assert answer.status == 200
    assert backend.received[0].header("x-envoy-expected-rq-timeout-ms") is None


async def test_per_try_timeout_retries(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start(lambda r: sleeper(10 if len(backend.received) == 1 else 0))
    runtime.add_cluster("c", [backend.address])
    policy = {"retry_on": "5xx", "num_retries": 1, "per_try_timeout": "0.2s"}
    table = routes(to("c", timeout="2s", retry_policy=policy), include_request_attempt_count=True)
    async with serving(runtime, hcm(table)) as proxy:
        answer = await h1_request(proxy)
    assert answer.status == 200
    assert [r.header("x-envoy-attempt-count") for r in backend.received] == ["1", "2"]
    assert backend.received[0].header("x-envoy-expected-rq-timeout-ms") == "200"
    assert runtime.counter("cluster.c.upstream_rq_per_try_timeout") == 1


async def test_per_try_timeouts_exhausted(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start(lambda r: sleeper(10))
    runtime.add_cluster("c", [backend.address])
    policy = {"retry_on": "5xx", "num_retries": 1, "per_try_timeout": "0.2s"}
    table = routes(
        to("c", timeout="2s", retry_policy=policy), include_attempt_count_in_response=True
    )
    async with serving(runtime, hcm(table)) as proxy:
        answer = await h1_request(proxy)
    assert (answer.status, answer.body) == (504, b"upstream request timeout")
    assert answer.header("x-envoy-attempt-count") == "2"
    assert runtime.entries[0][1].response_flags == "URX,UT"


async def test_stream_idle_timeout_waiting_for_the_request(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    config = hcm(routes(to("c")), stream_idle_timeout=0.5)
    request = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhe"
    async with serving(runtime, config) as proxy:
        data, closed = await raw_exchange(proxy, request, wait=5)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert data.endswith(b"\r\n\r\nstream timeout")
    assert closed
    assert runtime.entries[0][1].response_flags == "SI"
    assert runtime.counter("http.ingress.downstream_rq_idle_timeout") == 1


async def test_stream_idle_timeout_waiting_for_upstream(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start(lambda r: sleeper(10))
    runtime.add_cluster("c", [backend.address])
    config = hcm(routes(to("c")), stream_idle_timeout=0.5)
    async with serving(runtime, config) as proxy, h1_client(proxy) as client:
        answer = await client.request()
        assert not client.closed
    assert (answer.status, answer.body) == (504, b"stream timeout")


async def test_route_idle_timeout_overrides(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start(lambda r: sleeper(1))
    runtime.add_cluster("c", [backend.address])
    config = hcm(routes(to("c", idle_timeout="5s")), stream_idle_timeout=0.5)
    async with serving(runtime, config) as proxy:
        answer = await h1_request(proxy)
    assert answer.status == 200


async def test_request_headers_timeout(
    runtime: FakeRuntime, autojump_clock: trio.testing.MockClock
) -> None:
    async with serving(runtime, hcm(routes(), request_headers_timeout=0.5)) as proxy:
        data, closed = await raw_exchange(proxy, b"GET / HTTP/1.1\r\nhost: x\r\n", wait=5)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert data.endswith(b"request header timeout")
    assert closed
    entry = runtime.entries[0][1]
    assert (entry.method, entry.response_code) == ("-", 408)
    assert runtime.counter("http.ingress.downstream_rq_header_timeout") == 1


async def test_request_timeout(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    config = hcm(routes(to("c")), request_timeout=0.7)
    request = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhe"
    async with serving(runtime, config) as proxy:
        data, closed = await raw_exchange(proxy, request, wait=5)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert data.endswith(b"request timeout")
    assert closed
    assert runtime.counter("http.ingress.downstream_rq_timeout") == 1


async def test_connection_idle_timeout_h1(
    runtime: FakeRuntime, autojump_clock: trio.testing.MockClock
) -> None:
    async with serving(runtime, hcm(routes(), idle_timeout=0.5)) as proxy:
        start = trio.current_time()
        data, closed = await raw_exchange(proxy, b"", wait=5)
        took = trio.current_time() - start
    assert (data, closed) == (b"", True)
    assert 0.5 <= took < 1
    assert runtime.counter("http.ingress.downstream_cx_idle_timeout") == 1


async def test_connection_idle_timeout_h2(
    runtime: FakeRuntime, autojump_clock: trio.testing.MockClock
) -> None:
    table = routes({"match": {"prefix": "/"}, "direct_response": {"status": 200}})
    async with serving(runtime, hcm(table, idle_timeout=0.5)) as proxy, h2_client(proxy) as client:
        assert (await client.request()).status == 200
        await trio.sleep(1)
        assert client.goaway
    assert runtime.counter("http.ingress.downstream_cx_idle_timeout") == 1


async def test_timeout_during_the_response_resets(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    async def dribble(received: Received) -> Reply:
        return Reply(200, [], [b"a"] * 3, delay=0)

    async def slow_body(stream: trio.SocketStream) -> None:
        await stream.receive_some(1000)
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await trio.sleep(10)

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        nursery.start_soon(trio.serve_listeners, slow_body, listeners)
        runtime.add_cluster("c", [listeners[0].socket.getsockname()[:2]])
        async with serving(runtime, hcm(routes(to("c", timeout="0.5s")))) as proxy:
            data, closed = await raw_exchange(proxy, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", wait=5)
        nursery.cancel_scope.cancel()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"abc")
    assert closed
    assert runtime.entries[0][1].response_flags == "UT"
