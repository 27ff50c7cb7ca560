"""The downstream HTTP/2 connection: workers, batched writes, resets and timeouts per stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import hpack
import trio
import trio.testing

from pydp.http import H2_PREFACE, Data, EndOfMessage, H2ClientConnection, Request, Response
from pydp.http import h2_frames as frames
from pydp.proxy.context import HttpContext
from pydp.proxy.downstream_h2 import H2Downstream
from pydp.router import RouteTable
from tests.pydp.proxy.backend import Backends, Reply
from tests.pydp.proxy.client import h2_client, request_headers
from tests.pydp.proxy.harness import FakeRuntime, hcm, routes, serving, to

ADDRESS = ("127.0.0.1", 4242)
DIRECT = {
    "match": {"prefix": "/"},
    "direct_response": {"status": 200, "body": {"inline_string": "hi"}},
}


class CountingStream(trio.abc.Stream):
    """One end of an in-memory connection that counts its writes."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.writes: list[bytes] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def connection(
    runtime: FakeRuntime, table: RouteTable, *, lockstep: bool = False
) -> AsyncIterator[tuple[H2Downstream, CountingStream, trio.abc.Stream]]:
    """An `H2Downstream` on an in-memory stream (`lockstep`: a write waits for the
    client to read it); yields it, its side, the client's side."""
    pair = trio.testing.lockstep_stream_pair if lockstep else trio.testing.memory_stream_pair
    proxy_side, client_side = pair()
    counting = CountingStream(proxy_side)
    ctx = HttpContext(hcm(table), "l", runtime, ADDRESS, ADDRESS)
    downstream = H2Downstream(counting, ctx)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(downstream.run, b"")
        yield downstream, counting, client_side
        nursery.cancel_scope.cancel()


async def exchange(
    client: H2ClientConnection, stream: trio.abc.Stream, wire: bytes
) -> dict[int, int]:
    """Send `wire`; the status of every response, by stream, once all have ended."""
    await stream.send_all(wire)
    statuses: dict[int, int] = {}
    ended: set[int] = set()
    while len(ended) < len(statuses) or not statuses:
        for event in client.receive_data(bytes(await stream.receive_some())):
            if isinstance(event, Response):
                statuses[event.stream_id] = event.status
            elif isinstance(event, EndOfMessage):
                ended.add(event.stream_id)
            elif isinstance(event, Data):
                client.ack_data(event.stream_id, len(event.data))
    return statuses


async def test_responses_that_complete_together_leave_in_one_write(runtime: FakeRuntime) -> None:
    async with connection(runtime, routes(DIRECT)) as (downstream, counting, stream):
        client = H2ClientConnection()
        wire = client.data_to_send()
        sids = [client.open_stream() for _ in range(10)]
        for sid in sids:
            wire += client.send(Request(sid, request_headers("GET", "/", "a", ()), True))
        statuses = await exchange(client, stream, wire)
        assert statuses == dict.fromkeys(sids, 200)
        with_responses = [w for w in counting.writes if b"hi" in w]
        assert len(with_responses) == 1
        # One request after another: one worker serves them all.
        for _ in range(3):
            sid = client.open_stream()
            wire = client.send(Request(sid, request_headers("GET", "/", "a", ()), True))
            assert await exchange(client, stream, wire) == {sid: 200}
        assert len(downstream.idle) == len(sids)
    assert runtime.counter("http.ingress.downstream_rq_2xx") == 13


async def test_a_stream_reset_before_its_worker_starts_is_counted_as_reset(
    runtime: FakeRuntime,
) -> None:
    async with connection(runtime, routes(DIRECT)) as (_, _, stream):
        client = H2ClientConnection()
        first, second = client.open_stream(), client.open_stream()
        wire = client.data_to_send()
        wire += client.send(Request(first, request_headers("POST", "/", "a", ()), False))
        wire += frames.rst_stream(first, 8)
        wire += client.send(Request(second, request_headers("GET", "/", "a", ()), True))
        assert await exchange(client, stream, wire) == {second: 200}
    flags = {entry.response_flags for _, entry in runtime.entries}
    assert flags == {"DC", "-"}
    assert runtime.counter("http.ingress.downstream_rq_rx_reset") == 1


async def test_a_stream_timing_out_leaves_the_others_on_its_connection_alone(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start(lambda r: Reply(200, [], b"ok", delay=float(r.path[1:])))
    runtime.add_cluster("c", [backend.address])
    table = routes(to("c", timeout="1s"))
    async with serving(runtime, hcm(table)) as proxy, h2_client(proxy) as client:
        answers: dict[str, int] = {}

        async def ask(path: str) -> None:
            answers[path] = (await client.request(path=path)).status

        async with trio.open_nursery() as nursery:
            for path in ("/5", "/0.5", "/0.1"):
                nursery.start_soon(ask, path)
        assert answers == {"/5": 504, "/0.5": 200, "/0.1": 200}
        assert (await client.request(path="/0")).status == 200
    flags = sorted(entry.response_flags for _, entry in runtime.entries)
    assert flags == ["-", "-", "-", "UT"]


async def test_a_request_without_authority_ends_the_connection(runtime: FakeRuntime) -> None:
    """As Envoy: a request header block without `:authority` or `host` is a connection error."""
    block = hpack.Encoder().encode([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/")])
    wire = H2_PREFACE + frames.settings([]) + frames.headers(1, block, True, 16384)
    async with serving(runtime, hcm(routes())) as proxy:
        stream = await trio.open_tcp_stream(*proxy)
        await stream.send_all(wire)
        received = b""
        while chunk := await stream.receive_some():
            received += chunk
        await stream.aclose()
    goaways = [f for f in frames.FrameReader(server=False).feed(received) if f[0] == frames.GOAWAY]
    assert [frames.goaway_fields(f[3]) for f in goaways] == [(1, 1)]  # PROTOCOL_ERROR
    assert runtime.counter("http.ingress.downstream_cx_protocol_error") == 1
    assert runtime.entries == []


async def test_a_client_that_stops_reading_stops_the_streams_at_the_buffer_limit(
    runtime: FakeRuntime, backends: Backends
) -> None:
    big = b"x" * (512 * 1024)
    backend = await backends.start(lambda r: Reply(200, [], big))
    runtime.add_cluster("c", [backend.address])
    async with connection(runtime, routes(to("c")), lockstep=True) as (downstream, _, stream):
        client = H2ClientConnection()
        wire = client.data_to_send()
        for _ in range(6):
            sid = client.open_stream()
            wire += client.send(Request(sid, request_headers("GET", "/", "a", ()), True))
        await stream.send_all(wire)
        await trio.sleep(1)
        # The client read nothing: at most the buffer limit and one write in flight wait.
        assert len(downstream.out) <= 1024 * 1024 + len(big)
        assert len(backend.received) == 6
