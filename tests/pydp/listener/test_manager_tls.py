"""The listener manager with the TLS inspector, filter chains and TLS, on loopback sockets."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from pydp.listener.compile import compile_listener
from pydp.listener.config import ListenerConfig
from pydp.listener.manager import ConnectionHandlers, ListenerManager
from pydp.stats import Stats
from pydp.tls.contexts import TlsContexts
from pydp.tls.files import SecretFiles
from pydp.tls.handshake import TlsFailure, originate
from pydp.tls.peer import TlsPeer
from pydp.tls.stream import TlsStream
from tests.harness.net import loopback
from tests.pydp.listener.test_manager import added
from tests.pydp.tls.handshakes import client_config
from tests.pydp.tls.pki import Pki, secrets
from xds_server.translate.listeners import inbound_listener

MESH = Pki()
SERVER_ID = "spiffe://cluster.local/ns/shop/sa/server"
CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/client"


@dataclass
class Seen:
    tls: bool
    peer: TlsPeer | None
    data: bytes


@dataclass
class Echo:
    """Echoes what the client sent first, so a test sees that nothing was consumed before."""

    seen: list[Seen] = field(default_factory=list)

    async def serve(
        self,
        stream: trio.abc.Stream,
        remote: Any,
        local: Any,
        config: Any,
        name: str,
        runtime: Any,
        *,
        peer: TlsPeer | None = None,
        drain: Any = None,
    ) -> None:
        data = bytes(await stream.receive_some())
        self.seen.append(Seen(isinstance(stream, TlsStream), peer, data))
        await stream.send_all(data)
        await stream.aclose()


class Runtime:
    def __init__(self) -> None:
        self.stats = Stats()


@dataclass
class World:
    manager: ListenerManager
    echo: Echo
    stats: Stats
    tmp_path: Path

    def start(self, proto: Any, **changes: Any) -> ListenerConfig:
        config = dataclasses.replace(compile_listener(proto), address=loopback(), port=0, **changes)
        self.manager.update(added(config))
        return config

    def prefix(self, config: ListenerConfig) -> str:
        active = self.manager.listener(config.name)
        assert active is not None
        return active.stat_prefix

    async def connect(self, config: ListenerConfig) -> trio.SocketStream:
        active = self.manager.listener(config.name)
        assert active is not None
        return await trio.open_tcp_stream(config.address, active.port)

    def client(self, uri: str = CLIENT_ID, pki: Pki = MESH) -> TlsContexts:
        folder = self.tmp_path / f"client-{len(list(self.tmp_path.iterdir()))}"
        folder.mkdir()
        contexts = TlsContexts(SecretFiles(str(folder)))
        contexts.update(secrets(pki.leaf(uris=(uri,)), MESH))
        return contexts

    def counters(self, prefix: str) -> dict[str, int]:
        return {
            k.removeprefix(prefix): v
            for k, v in self.stats.counters.items()
            if k.startswith(prefix) and v
        }


@pytest.fixture
async def world(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[World]:
    (tmp_path / "server").mkdir()
    tls = TlsContexts(SecretFiles(str(tmp_path / "server")))
    tls.update(secrets(MESH.leaf(uris=(SERVER_ID,)), MESH))
    echo = Echo()
    runtime = Runtime()
    manager = ListenerManager(
        runtime,  # type: ignore[arg-type]
        ConnectionHandlers(echo.serve, echo.serve),
        drain_time=1.0,
        tls=tls,
    )
    await nursery.start(manager.run)
    yield World(manager, echo, runtime.stats, tmp_path)


async def exchange(stream: trio.abc.Stream, data: bytes) -> bytes:
    """Send `data`, then read until the other side closes (b"" if it closed at once); closes."""
    out = b""
    try:
        with trio.fail_after(5):
            await stream.send_all(data)
            while chunk := await stream.receive_some():
                out += chunk
    except trio.BrokenResourceError:
        pass
    finally:
        await trio.aclose_forcefully(stream)
    return out


async def mtls(world: World, config: ListenerConfig, client: TlsContexts) -> TlsStream:
    context = client.client(client_config(SERVER_ID, alpn=("h2",)), "")
    raw = await world.connect(config)
    try:
        return await originate(raw, context, Stats(), "client.")
    except BaseException:
        await trio.aclose_forcefully(raw)
        raise


class Dribble(trio.abc.Stream):
    """Sends a few bytes at a time, as a slow network would deliver a ClientHello."""

    def __init__(self, inner: trio.SocketStream) -> None:
        self.inner = inner

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        for i in range(0, len(data), 7):
            await self.inner.send_all(data[i : i + 7])
            await trio.sleep(0.002)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return bytes(await self.inner.receive_some(max_bytes))

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_permissive_serves_plaintext_on_the_plaintext_chain_with_its_bytes_intact(
    world: World,
) -> None:
    config = world.start(inbound_listener(15006, "PERMISSIVE"))
    request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    assert await exchange(await world.connect(config), request) == request
    assert world.echo.seen == [Seen(False, None, request)]
    assert world.stats.counters["tls_inspector.tls_not_found"] == 1
    assert world.counters(world.prefix(config)) == {
        "downstream_cx_total": 1,
        "downstream_cx_destroy": 1,
    }


async def test_permissive_terminates_mtls_and_hands_over_the_verified_peer(world: World) -> None:
    config = world.start(inbound_listener(15006, "PERMISSIVE"))
    tls = await mtls(world, config, world.client())
    assert tls.selected_alpn_protocol() == "h2"
    assert await exchange(tls, b"hello") == b"hello"
    (seen,) = world.echo.seen
    assert seen.tls and seen.data == b"hello"
    assert seen.peer is not None
    assert seen.peer.uri_sans == (CLIENT_ID,)
    assert seen.peer.local_uri_sans == (SERVER_ID,)
    prefix = world.prefix(config)
    assert world.counters(prefix + "ssl.")["handshake"] == 1
    assert world.counters("tls_inspector.") == {
        "tls_found": 1,
        "sni_found": 1,
        "alpn_found": 1,
    }


async def test_a_client_hello_that_arrives_in_pieces_is_still_found(world: World) -> None:
    config = world.start(inbound_listener(15006, "PERMISSIVE"))
    context = world.client().client(client_config(SERVER_ID), "")
    raw = await world.connect(config)
    tls = await originate(Dribble(raw), context, Stats(), "c.")
    assert await exchange(tls, b"slow") == b"slow"
    assert world.echo.seen[0].tls
    assert world.stats.counters["tls_inspector.tls_found"] == 1


async def test_strict_closes_plaintext_connections_as_failed_handshakes(world: World) -> None:
    config = world.start(inbound_listener(15006, "STRICT"))
    assert await exchange(await world.connect(config), b"GET / HTTP/1.1\r\n\r\n") == b""
    assert world.echo.seen == []
    prefix = world.prefix(config)
    assert world.counters(prefix + "ssl.") == {"connection_error": 1}
    assert world.stats.counters[prefix + "downstream_cx_total"] == 1
    tls = await mtls(world, config, world.client())
    assert await exchange(tls, b"ok") == b"ok"
    assert world.counters(prefix + "ssl.")["handshake"] == 1


@pytest.mark.parametrize(
    ("uri", "pki", "expected"),
    [
        ("spiffe://other.example/ns/shop/sa/client", MESH, "fail_verify_san"),
        (CLIENT_ID, Pki("other.example"), "fail_verify_error"),
    ],
)
async def test_strict_refuses_foreign_certificates(
    world: World, uri: str, pki: Pki, expected: str
) -> None:
    config = world.start(inbound_listener(15006, "STRICT"))
    with pytest.raises((TlsFailure, trio.BrokenResourceError)):
        tls = await mtls(world, config, world.client(uri, pki))
        await exchange(tls, b"let me in")
        raise trio.BrokenResourceError("closed")
    await wait_for(lambda: world.counters(world.prefix(config) + "ssl."))
    assert world.counters(world.prefix(config) + "ssl.") == {expected: 1}
    assert world.echo.seen == []


async def test_a_connection_no_chain_matches_is_closed_and_counted(world: World) -> None:
    proto = type(inbound_listener(15006, "PERMISSIVE"))()
    proto.CopyFrom(inbound_listener(15006, "PERMISSIVE"))  # the translator's is cached: copy it
    del proto.filter_chains[1]  # only the chain matching "tls" is left
    config = world.start(proto)
    assert await exchange(await world.connect(config), b"GET / HTTP/1.1\r\n\r\n") == b""
    prefix = world.prefix(config)
    await wait_for(lambda: world.counters(prefix).get("no_filter_chain_match"))
    assert world.counters(prefix) == {"no_filter_chain_match": 1}  # never a connection


async def test_a_silent_client_is_closed_when_the_listener_filters_time_out(world: World) -> None:
    config = world.start(inbound_listener(15006, "PERMISSIVE"), listener_filters_timeout=0.1)
    async with await world.connect(config) as stream:
        with trio.fail_after(5):
            assert await stream.receive_some() == b""
    assert world.counters(world.prefix(config)) == {"downstream_pre_cx_timeout": 1}
    assert world.stats.gauges[world.prefix(config) + "downstream_pre_cx_active"] == 0


async def test_or_goes_on_as_plaintext_when_told_to_continue(world: World) -> None:
    config = world.start(
        inbound_listener(15006, "PERMISSIVE"),
        listener_filters_timeout=0.05,
        continue_on_listener_filters_timeout=True,
    )
    stream = await world.connect(config)
    await wait_for(lambda: world.counters(world.prefix(config)).get("downstream_cx_total"))
    assert await exchange(stream, b"late") == b"late"
    assert world.echo.seen == [Seen(False, None, b"late")]


async def wait_for(predicate: Any) -> None:
    with trio.fail_after(5):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.01)
