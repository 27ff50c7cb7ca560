"""The client's reconnect loop, on trio's virtual clock with an in-memory stream."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import pytest
import trio
import trio.testing
from envoy.service.discovery.v3 import discovery_pb2

from pydp.xds.bootstrap import BootstrapConfig
from pydp.xds.client import Backoff, XdsClient
from pydp.xds.store import ConfigStore
from pydp.xds.transport import UNAVAILABLE, GrpcError, MessageStream
from tests.pydp.xds.builders import CDS, LDS, node, sotw


class FakeStream:
    """Responses come from a channel; requests are recorded; closing is noted."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.closed = False
        self.feed, self._responses = trio.open_memory_channel[bytes](10)

    async def __aenter__(self) -> FakeStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.closed = True

    async def send(self, message: bytes) -> None:
        self.sent.append(discovery_pb2.DiscoveryRequest.FromString(message))

    async def receive(self) -> bytes:
        try:
            return await self._responses.receive()
        except trio.EndOfChannel:
            raise GrpcError(UNAVAILABLE, "fake stream ended") from None


class Connector:
    """A `connect` for XdsClient: fails while `failing`, else hands out FakeStreams."""

    def __init__(self, failing: int = 0) -> None:
        self.failing = failing
        self.attempts: list[float] = []
        self.streams: list[FakeStream] = []
        self.connected = trio.Event()
        self.attempted = trio.Event()

    async def __call__(self, host: str, port: int, method: str) -> MessageStream:
        self.attempts.append(trio.current_time())
        self.attempted.set()
        self.attempted = trio.Event()
        if len(self.attempts) <= self.failing:
            raise GrpcError(UNAVAILABLE, "connection refused")
        stream = FakeStream()
        self.streams.append(stream)
        self.connected.set()
        return stream


def make_client(connect: Connector, **overrides: Any) -> XdsClient:
    settings: dict[str, Any] = {"initial_fetch_timeout": 0.0, **overrides}
    config = BootstrapConfig(node=node(), xds_host="xds", xds_port=1, **settings)
    return XdsClient(config, ConfigStore(), connect=connect, rand=lambda: 0.999)


def test_backoff_is_envoys_full_jitter_doubling_to_the_cap() -> None:
    backoff = Backoff(0.5, 30.0, rand=lambda: 1.0)
    assert [backoff.next() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    backoff.reset()
    assert backoff.next() == 0.5
    assert Backoff(0.5, 30.0, rand=lambda: 0.0).next() == 0.0
    with pytest.raises(ValueError, match="base <= cap"):
        Backoff(2.0, 1.0)


async def test_reconnects_with_growing_delays(autojump_clock: trio.testing.MockClock) -> None:
    connect = Connector(failing=8)
    client = make_client(connect)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        await connect.connected.wait()
        nursery.cancel_scope.cancel()
    gaps = [round(b - a, 2) for a, b in zip(connect.attempts, connect.attempts[1:], strict=False)]
    assert gaps == [0.5, 1.0, 2.0, 4.0, 7.99, 15.98, 29.97, 29.97]
    assert client.last_error is not None and client.last_error.message == "connection refused"


async def test_a_response_resets_the_backoff(autojump_clock: trio.testing.MockClock) -> None:
    connect = Connector(failing=3)
    client = make_client(connect)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        await connect.connected.wait()
        stream = connect.streams[0]
        await stream.feed.send(sotw(CDS, "1", "n1", []).SerializeToString())
        await trio.sleep(0.1)
        await stream.feed.aclose()
        while len(connect.attempts) < 5:
            await connect.attempted.wait()
        nursery.cancel_scope.cancel()
    assert round(connect.attempts[4] - connect.attempts[3], 2) == 0.6  # 0.1 + 0.5 * 0.999
    assert [r.type_url for r in connect.streams[0].sent] == [CDS, LDS, CDS]
    assert [r.version_info for r in connect.streams[1].sent] == ["1", ""]


async def test_cancellation_closes_the_stream(autojump_clock: trio.testing.MockClock) -> None:
    connect = Connector()
    client = make_client(connect)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        await connect.connected.wait()
        assert client.connected
        nursery.cancel_scope.cancel()
    assert connect.streams[0].closed
    assert not client.connected


async def test_initial_fetch_timeout_ends_initialization(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connect = Connector()
    client = make_client(connect, initial_fetch_timeout=15.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        start = trio.current_time()
        await client.initialized.wait()
        assert trio.current_time() - start == pytest.approx(15.0)
        assert client.store.initialized
        nursery.cancel_scope.cancel()
