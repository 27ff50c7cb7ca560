"""A grpc.aio ADS server for the xDS client's end-to-end tests.

It runs on its own thread with its own asyncio loop, on 127.0.0.1 and a port
the kernel picks. Tests push responses into the current stream, read the
requests the client sent (tagged with the stream they came on), and `drop()`
the stream to make the client reconnect.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator
from functools import partial
from types import TracebackType
from typing import Any

import grpc
import trio
from envoy.service.discovery.v3 import discovery_pb2

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
_DROP = object()


class FakeAdsServer:
    def __init__(self) -> None:
        self.port = 0
        self.streams_opened = 0
        self.streams_closed = 0
        self._requests: queue.Queue[tuple[int, Any]] = queue.Queue()
        self._outbox: asyncio.Queue[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._main, name="fake-ads", daemon=True)

    def __enter__(self) -> FakeAdsServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake ADS server did not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def push(self, response: Any) -> None:
        """Send a response (Discovery or DeltaDiscovery) on the current stream."""
        self._put(response.SerializeToString())

    def drop(self) -> None:
        """End the current stream with UNAVAILABLE."""
        self._put(_DROP)

    async def request(self) -> tuple[int, Any]:
        """The next request the client sent: (stream number from 1, request); waits 10 s."""
        return await trio.to_thread.run_sync(partial(self._requests.get, timeout=10))

    async def wait_closed(self, count: int) -> bool:
        """Wait (up to 10 s) until `count` streams have ended; whether they have."""
        return await trio.to_thread.run_sync(self._wait_closed, count)

    def _wait_closed(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.streams_closed >= count, timeout=10)

    async def requests(self, count: int) -> list[tuple[int, Any]]:
        return [await self.request() for _ in range(count)]

    def pending(self) -> int:
        return self._requests.qsize()

    def _put(self, item: Any) -> None:
        assert self._loop is not None and self._outbox is not None, "no stream is open"
        self._loop.call_soon_threadsafe(self._outbox.put_nowait, item)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = grpc.aio.server()
        handlers = {
            "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                partial(self._stream, discovery_pb2.DiscoveryRequest),
                response_serializer=bytes,
            ),
            "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
                partial(self._stream, discovery_pb2.DeltaDiscoveryRequest),
                response_serializer=bytes,
            ),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._ready.set()
        await self._stop.wait()
        await server.stop(None)

    async def _stream(
        self, request_class: Any, requests: AsyncIterator[bytes], context: Any
    ) -> AsyncIterator[bytes]:
        self.streams_opened += 1
        number = self.streams_opened
        outbox: asyncio.Queue[Any] = asyncio.Queue()
        self._outbox = outbox

        async def read() -> None:
            try:
                async for data in requests:
                    self._requests.put((number, request_class.FromString(data)))
            finally:
                with self._changed:
                    self.streams_closed += 1
                    self._changed.notify_all()

        reader = asyncio.create_task(read())
        try:
            while True:
                item = await outbox.get()
                if item is _DROP:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "dropped by the test")
                yield item
        finally:
            reader.cancel()
