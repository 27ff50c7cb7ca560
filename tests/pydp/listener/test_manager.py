"""The listener manager on real loopback sockets, with stand-in connection handlers."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pytest
import trio

from pydp.listener.config import (
    FilterChainConfig,
    HttpConnectionManagerConfig,
    ListenerConfig,
    TcpProxyConfig,
)
from pydp.listener.manager import ConnectionHandlers, ListenerManager, stat_prefix
from pydp.stats import Stats
from pydp.xds.store import ListenerChanges
from tests.harness.net import loopback


@dataclass
class Seen:
    config: Any
    name: str
    remote: tuple[str, int]
    local: tuple[str, int]
    finished: bool = False
    cancelled: bool = False


@dataclass
class Handlers:
    """Answers each connection with its listener's stat prefix once `release` is set."""

    seen: list[Seen] = field(default_factory=list)
    release: trio.Event = field(default_factory=trio.Event)
    hold: bool = False

    async def serve(
        self,
        stream: trio.abc.Stream,
        remote: Any,
        local: Any,
        config: Any,
        name: str,
        runtime: Any,
        *,
        peer: Any = None,
        drain: Any = None,
    ) -> None:
        record = Seen(config, name, remote, local)
        self.seen.append(record)
        try:
            if self.hold:
                await self.release.wait()
            await stream.send_all(config.stat_prefix.encode())
            record.finished = True
        except trio.Cancelled:
            record.cancelled = True
            raise

    def handlers(self) -> ConnectionHandlers:
        return ConnectionHandlers(self.serve, self.serve)


class FakeRuntime:
    def __init__(self) -> None:
        self.stats = Stats()


def http_listener(name: str, address: str, port: int = 0, prefix: str = "") -> ListenerConfig:
    chain = FilterChainConfig(HttpConnectionManagerConfig(stat_prefix=prefix or name))
    return ListenerConfig(name, address, port, (chain,))


def added(*configs: ListenerConfig) -> ListenerChanges:
    return ListenerChanges(added=MappingProxyType({c.name: c for c in configs}))


def changed(*configs: ListenerConfig) -> ListenerChanges:
    return ListenerChanges(changed=MappingProxyType({c.name: c for c in configs}))


def removed(*names: str) -> ListenerChanges:
    return ListenerChanges(removed=frozenset(names))


@pytest.fixture
async def world(nursery: trio.Nursery) -> AsyncIterator[tuple[ListenerManager, Handlers]]:
    handlers = Handlers()
    manager = ListenerManager(FakeRuntime(), handlers.handlers(), drain_time=5.0)  # type: ignore[arg-type]
    await nursery.start(manager.run)
    yield manager, handlers


async def connect(manager: ListenerManager, name: str) -> trio.SocketStream:
    active = manager.listener(name)
    assert active is not None
    return await trio.open_tcp_stream(active.config.address, active.port)


async def read_all(stream: trio.SocketStream) -> bytes:
    """Everything the handler sends until it closes; closes our end too."""
    data = b""
    async with stream:
        with trio.fail_after(5):
            while chunk := await stream.receive_some():
                data += chunk
    return data


async def wait_for(predicate: Any) -> None:
    """Poll `predicate` (state kept by the manager has no event to wait on)."""
    with trio.fail_after(5):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_a_new_listener_hands_each_connection_to_its_filters_entry_point(
    world: tuple[ListenerManager, Handlers],
) -> None:
    manager, handlers = world
    address = loopback()
    manager.update(
        added(
            http_listener("web", address),
            ListenerConfig(
                "db", address, 0, (FilterChainConfig(TcpProxyConfig("db-tcp", cluster="db")),)
            ),
        )
    )
    web, db = await connect(manager, "web"), await connect(manager, "db")
    assert await read_all(web) == b"web"
    assert await read_all(db) == b"db-tcp"
    first = handlers.seen[0]
    assert first.name == "web" and first.local[0] == address and first.remote[0].startswith("127.")
    stats = manager.stats
    web_prefix = stat_prefix(address, manager.listener("web").port)  # type: ignore[union-attr]
    await wait_for(lambda: stats.counters[web_prefix + "downstream_cx_destroy"] == 1)
    assert stats.counters[web_prefix + "downstream_cx_total"] == 1
    assert stats.gauges[web_prefix + "downstream_cx_active"] == 0
    assert stats.counters["listener_manager.listener_added"] == 2
    assert stats.gauges["listener_manager.total_listeners_active"] == 2


async def test_a_change_at_the_same_address_applies_to_new_connections_only(
    world: tuple[ListenerManager, Handlers],
) -> None:
    manager, handlers = world
    handlers.hold = True
    address = loopback()
    manager.update(added(http_listener("web", address, prefix="v1")))
    port = manager.listener("web").port  # type: ignore[union-attr]
    before = await connect(manager, "web")
    await wait_for(lambda: len(handlers.seen) == 1)
    manager.update(changed(http_listener("web", address, prefix="v2")))
    assert manager.listener("web").port == port  # type: ignore[union-attr]
    after = await connect(manager, "web")
    await wait_for(lambda: len(handlers.seen) == 2)
    handlers.release.set()
    assert await read_all(before) == b"v1"
    assert await read_all(after) == b"v2"
    assert manager.stats.counters["listener_manager.listener_in_place_updated"] == 1


async def test_a_removed_listener_refuses_new_connections_and_lets_open_ones_finish(
    world: tuple[ListenerManager, Handlers],
) -> None:
    manager, handlers = world
    handlers.hold = True
    address = loopback()
    manager.update(added(http_listener("web", address)))
    port = manager.listener("web").port  # type: ignore[union-attr]
    open_one = await connect(manager, "web")
    await wait_for(lambda: len(handlers.seen) == 1)
    manager.update(removed("web"))
    assert manager.listener("web") is None
    assert [a.name for a in manager.draining()] == ["web"]
    assert manager.config("web") is not None  # still readable while draining
    with pytest.raises(OSError):
        await trio.open_tcp_stream(address, port)
    handlers.release.set()
    assert await read_all(open_one) == b"web"
    await wait_for(lambda: not manager.draining())
    assert handlers.seen[0].finished
    assert manager.stats.counters["listener_manager.listener_removed"] == 1


async def test_connections_still_open_after_the_drain_time_are_closed(
    nursery: trio.Nursery,
) -> None:
    handlers = Handlers(hold=True)
    manager = ListenerManager(FakeRuntime(), handlers.handlers(), drain_time=0.2)  # type: ignore[arg-type]
    await nursery.start(manager.run)
    manager.update(added(http_listener("web", loopback())))
    stream = await connect(manager, "web")
    await wait_for(lambda: len(handlers.seen) == 1)
    manager.update(removed("web"))
    assert await read_all(stream) == b""
    assert handlers.seen[0].cancelled and not handlers.seen[0].finished


async def test_a_listener_moved_to_another_address_drains_the_old_socket(
    world: tuple[ListenerManager, Handlers],
) -> None:
    manager, handlers = world
    handlers.hold = True
    old_address, new_address = loopback(), loopback()
    manager.update(added(http_listener("web", old_address)))
    old_port = manager.listener("web").port  # type: ignore[union-attr]
    held = await connect(manager, "web")
    await wait_for(lambda: len(handlers.seen) == 1)
    manager.update(changed(http_listener("web", new_address, prefix="moved")))
    assert manager.listener("web").config.address == new_address  # type: ignore[union-attr]
    with pytest.raises(OSError):
        await trio.open_tcp_stream(old_address, old_port)
    moved = await connect(manager, "web")
    handlers.release.set()
    assert await read_all(held) == b"web"
    assert await read_all(moved) == b"moved"


async def test_an_address_that_cannot_be_bound_is_reported_and_counted(
    world: tuple[ListenerManager, Handlers],
) -> None:
    manager, _ = world
    address = loopback()
    with socket.socket() as taken:  # listening without SO_REUSEPORT: nobody may share it
        taken.bind((address, 0))
        taken.listen()
        config = http_listener("web", address, taken.getsockname()[1])
        error = manager.bind_error(config)
        assert error is not None
        assert error.startswith(f"cannot bind '{address}:{config.port}': ")
        assert error.endswith(os.strerror(errno.EADDRINUSE))
        manager.update(added(config))
    assert manager.listener("web") is None
    assert manager.stats.counters["listener_manager.listener_create_failure"] == 1


async def test_two_processes_worth_of_managers_share_a_port(nursery: trio.Nursery) -> None:
    handlers = Handlers()
    first = ListenerManager(FakeRuntime(), handlers.handlers())  # type: ignore[arg-type]
    second = ListenerManager(FakeRuntime(), handlers.handlers())  # type: ignore[arg-type]
    await nursery.start(first.run)
    await nursery.start(second.run)
    address = loopback()
    first.update(added(http_listener("web", address)))
    port = first.listener("web").port  # type: ignore[union-attr]
    assert second.bind_error(http_listener("web", address, port)) is None
    second.update(added(http_listener("web", address, port)))
    assert second.listener("web") is not None
    for _ in range(20):
        assert await read_all(await trio.open_tcp_stream(address, port)) == b"web"
    served = [
        m.stats.counters[stat_prefix(address, port) + "downstream_cx_total"]
        for m in (first, second)
    ]
    assert sum(served) == 20


async def test_drain_stops_every_listener_and_returns_when_connections_end(
    world: tuple[ListenerManager, Handlers],
) -> None:
    manager, handlers = world
    handlers.hold = True
    address = loopback()
    manager.update(added(http_listener("a", address), http_listener("b", address)))
    stream = await connect(manager, "a")
    await wait_for(lambda: len(handlers.seen) == 1)
    async with trio.open_nursery() as inner:
        inner.start_soon(manager.drain, 5.0)
        await wait_for(lambda: not manager.active())
        await wait_for(lambda: [d.name for d in manager.draining()] == ["a"])
        assert manager.stats.gauges["listener_manager.total_listeners_draining"] == 1
        handlers.release.set()
    assert await read_all(stream) == b"a"
    manager.update(added(http_listener("c", address)))
    assert manager.listener("c") is None  # nothing opens once draining began


async def test_changes_before_run_wait_for_it() -> None:
    handlers = Handlers()
    manager = ListenerManager(FakeRuntime(), handlers.handlers())  # type: ignore[arg-type]
    manager.update(added(http_listener("web", loopback())))
    assert manager.listener("web") is None
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        assert await read_all(await connect(manager, "web")) == b"web"
        nursery.cancel_scope.cancel()


def test_stat_prefixes_are_envoys() -> None:
    assert stat_prefix("127.0.0.1", 15001) == "listener.127.0.0.1_15001."
    assert stat_prefix("::1", 80) == "listener.[__1]_80."
    assert stat_prefix("0.0.0.0", 15006) == "listener.0.0.0.0_15006."
