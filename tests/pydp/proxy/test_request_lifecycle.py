"""What a request leaves behind: log entries, garbage, and upstream connections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import trio
import trio.testing

from pydp.http import Data, EndOfMessage, Event, Request
from pydp.proxy.context import DownstreamStream, HttpContext
from pydp.proxy.downstream_h2 import H2Downstream
from pydp.proxy.request import ActiveRequest
from tests.pydp.proxy.backend import Backends
from tests.pydp.proxy.client import h1_client
from tests.pydp.proxy.harness import FakeRuntime, hcm, routes, serving, to

ADDRESS = ("127.0.0.1", 4242)


async def test_no_access_log_configured_means_no_entries_built(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    config = hcm(routes(to("c")), access_logs=())
    async with serving(runtime, config) as proxy, h1_client(proxy) as client:
        assert (await client.request()).status == 200
        assert (await client.request(path="/x", authority="nowhere")).status == 200
    assert runtime.entries == []
    assert runtime.counter("http.ingress.downstream_rq_2xx") == 2


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """Unreachable objects the cycle collector finds, while the test runs without it."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_a_forwarded_request_leaves_no_reference_cycle(
    runtime: FakeRuntime, backends: Backends, saved_garbage: list[object]
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    async with serving(runtime, hcm(routes(to("c")))) as proxy, h1_client(proxy) as client:
        gc.collect()
        saved_garbage.clear()
        for _ in range(5):
            assert (await client.request()).status == 200
        gc.collect()
        kinds = {type(o).__name__ for o in saved_garbage}
    assert not kinds & {"ActiveRequest", "Forwarder", "StreamInfo", "Deadlines", "Request"}


class SlowClient(DownstreamStream):
    """A downstream whose writes take until `written` is set."""

    protocol = "HTTP/1.1"

    def __init__(self) -> None:
        self.stream_id = 1
        self.events: list[Event] = []
        self.flushing = trio.Event()
        self.written = trio.Event()

    async def receive(self) -> Data | EndOfMessage:
        raise AssertionError("the request had no body")

    async def ack(self, size: int) -> None:
        pass

    def write(self, event: Event) -> None:
        self.events.append(event)

    async def flush(self) -> None:
        if any(type(e) is EndOfMessage for e in self.events):
            self.flushing.set()
            await self.written.wait()

    def ending_early(self) -> None:
        pass

    async def reset(self) -> None:
        raise AssertionError("not reset")


async def test_the_upstream_connection_is_free_once_the_upstream_response_ended(
    runtime: FakeRuntime, backends: Backends
) -> None:
    """Envoy frees it then, not when the client has taken the response."""
    backend = await backends.start()
    cluster = runtime.add_cluster("c", [backend.address])
    ctx = HttpContext(hcm(routes(to("c"))), "l", runtime, ADDRESS, ADDRESS)
    headers = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/")]
    client = SlowClient()
    request = ActiveRequest(client, Request(1, headers, True), ctx, ctx.timers.alarm())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(request.run)
        await client.flushing.wait()
        (pool,) = runtime.pools.for_cluster(cluster, runtime.stats, runtime.now).pools.values()
        assert len(pool.idle) == 1
        client.written.set()
    request.close()
    assert runtime.counter("http.ingress.downstream_rq_completed") == 1


async def test_an_h2_flush_leaves_its_bytes_to_the_flush_in_progress(
    runtime: FakeRuntime,
) -> None:
    """Waiting for the lock would queue every stream behind the slowest write."""
    proxy_side, client_side = trio.testing.lockstep_stream_pair()
    ctx = HttpContext(hcm(routes()), "l", runtime, ADDRESS, ADDRESS)
    connection = H2Downstream(proxy_side, ctx)
    connection.out = bytearray(b"first ")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.flush)
        await trio.testing.wait_all_tasks_blocked()
        assert connection.lock.locked()
        connection.out += b"second"
        with trio.fail_after(1):
            await connection.flush()
        received = b""
        while len(received) < len(b"first second"):
            received += await client_side.receive_some()
    assert received == b"first second"
    assert not connection.out
