"""The xDS client as a trio task: connect, stream, reconnect with back-off.

`XdsClient.run()` lives in the caller's nursery until cancelled. It keeps one
ADS stream open to the control plane named by the bootstrap; when the stream
fails it waits a jittered, exponentially growing delay (Envoy's: uniform in
[0, interval), the interval doubling from 0.5 s to 30 s, back to the start
once a response arrives) and opens a new one, resending its subscriptions with
the versions it already has. The store keeps serving the last accepted
configuration all the while.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, NoReturn

import trio
from envoy.service.discovery.v3 import discovery_pb2

from pydp.xds.bootstrap import BootstrapConfig
from pydp.xds.session import AdsSession
from pydp.xds.store import ConfigStore
from pydp.xds.transport import (
    ADS_METHOD,
    DELTA_ADS_METHOD,
    GrpcError,
    MessageStream,
    open_grpc_stream,
)

log = logging.getLogger(__name__)

Connect = Callable[[str, int, str], Awaitable[MessageStream]]


class Backoff:
    """Envoy's jittered exponential back-off: uniform in [0, interval), interval doubling."""

    def __init__(self, base: float, cap: float, rand: Callable[[], float] = random.random) -> None:
        if not 0 < base <= cap:
            raise ValueError(f"back-off needs 0 < base <= cap, got base={base} cap={cap}")
        self._base = base
        self._cap = cap
        self._interval = base
        self._random = rand

    def next(self) -> float:
        interval = self._interval
        self._interval = min(interval * 2, self._cap)
        return self._random() * interval

    def reset(self) -> None:
        self._interval = self._base


class XdsClient:
    """Keeps `store` up to date from the control plane named in `config`."""

    def __init__(
        self,
        config: BootstrapConfig,
        store: ConfigStore,
        *,
        connect: Connect | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.store = store
        self.session = AdsSession(
            config.node,
            store,
            delta=config.delta,
            node_on_first_message_only=config.node_on_first_message_only,
        )
        self.initialized = trio.Event()
        self.connected = False
        self.streams_opened = 0
        self.last_error: GrpcError | None = None
        self._connect = connect or partial(open_grpc_stream, metadata=config.initial_metadata)
        self._backoff = Backoff(config.backoff_base, config.backoff_max, rand)
        self._method = DELTA_ADS_METHOD if config.delta else ADS_METHOD
        self._response_class: Any = (
            discovery_pb2.DeltaDiscoveryResponse
            if config.delta
            else discovery_pb2.DiscoveryResponse
        )

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Stream until cancelled; `started` at once (wait on `initialized` for config)."""
        async with trio.open_nursery() as nursery:
            if self.config.initial_fetch_timeout > 0:
                nursery.start_soon(self._initial_fetch_timeout)
            task_status.started()
            while True:
                try:
                    await self._stream()
                except GrpcError as exc:
                    self.last_error = exc
                    log.warning(
                        "xDS stream to %s:%d closed: %s",
                        self.config.xds_host,
                        self.config.xds_port,
                        exc,
                    )
                finally:
                    self.connected = False
                await trio.sleep(self._backoff.next())

    async def _stream(self) -> None:
        config = self.config
        stream = await self._connect(config.xds_host, config.xds_port, self._method)
        async with stream:
            self.connected = True
            self.streams_opened += 1
            for request in self.session.connect():
                await stream.send(request.SerializeToString())
            while True:
                data = await stream.receive()
                self._backoff.reset()
                try:
                    response = self._response_class.FromString(data)
                except Exception as exc:  # protobuf's DecodeError is not a stable public type
                    raise GrpcError(13, f"undecodable discovery response: {exc}") from exc
                for request in self.session.handle(response):
                    await stream.send(request.SerializeToString())
                if self.store.initialized:
                    self.initialized.set()

    async def _initial_fetch_timeout(self) -> None:
        with trio.move_on_after(self.config.initial_fetch_timeout):
            await self.initialized.wait()
            return
        if not self.store.initialized:
            log.warning(
                "xDS: initial fetch not complete after %ss; starting with what has arrived",
                self.config.initial_fetch_timeout,
            )
        self.store.finish_initialization()
        self.initialized.set()
