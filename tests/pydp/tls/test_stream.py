"""pydp's TLS stream against trio's, on real sockets: the same bytes, in order, both ways."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.lowlevel

from pydp.tls.stream import TlsStream
from tests.pydp.tls.pki import Pki

PKI = Pki()
PAYLOAD = bytes(range(256)) * 8192  # 2 MiB: many records, writes that must wait


def contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    leaf = PKI.leaf(dns=("server.test",))
    (tmp_path / "chain.pem").write_bytes(leaf.chain_pem)
    (tmp_path / "key.pem").write_bytes(leaf.key_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cadata=PKI.roots_pem.decode())
    return server, client


@asynccontextmanager
async def sockets() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    a, b = trio.socket.socketpair()
    for sock in (a, b):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    ends = trio.SocketStream(a), trio.SocketStream(b)
    try:
        yield ends
    finally:
        for end in ends:
            await trio.aclose_forcefully(end)


async def read_all(stream: trio.abc.Stream) -> bytes:
    got = bytearray()
    while data := await stream.receive_some():
        got += data
    return bytes(got)


async def read_exactly(stream: trio.abc.Stream, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        data = await stream.receive_some()
        assert data, f"the stream ended after {len(got)} of {size} bytes"
        got += data
    return bytes(got)


Side = Callable[[trio.SocketStream, ssl.SSLContext], trio.abc.Stream]


def ours(server_side: bool) -> Side:
    def make(sock: trio.SocketStream, context: ssl.SSLContext) -> trio.abc.Stream:
        name = None if server_side else "server.test"
        return TlsStream(sock, context, server_side=server_side, server_hostname=name)

    return make


def trios(server_side: bool) -> Side:
    def make(sock: trio.SocketStream, context: ssl.SSLContext) -> trio.abc.Stream:
        name = None if server_side else "server.test"
        return trio.SSLStream(
            sock, context, server_side=server_side, server_hostname=name, https_compatible=True
        )

    return make


@pytest.mark.parametrize(
    ("make_server", "make_client"),
    [(ours(True), trios(False)), (trios(True), ours(False)), (ours(True), ours(False))],
    ids=["ours-server", "ours-client", "both-ours"],
)
async def test_bytes_cross_both_ways_whole_and_in_order(
    tmp_path: Path, make_server: Side, make_client: Side
) -> None:
    server_context, client_context = contexts(tmp_path)
    async with sockets() as (a, b):
        server, client = make_server(a, server_context), make_client(b, client_context)
        echoed: list[bytes] = []

        async def echo() -> None:
            data = await read_exactly(server, len(PAYLOAD))
            echoed.append(data)
            await server.send_all(data[::-1])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo)
            await client.send_all(PAYLOAD[:1000])
            await client.send_all(PAYLOAD[1000:])
            answer = await read_exactly(client, len(PAYLOAD))
    assert echoed == [PAYLOAD]
    assert answer == PAYLOAD[::-1]


async def test_concurrent_writes_leave_in_one_piece_each(tmp_path: Path) -> None:
    server_context, client_context = contexts(tmp_path)
    async with sockets() as (a, b):
        server = trio.SSLStream(a, server_context, server_side=True, https_compatible=True)
        client = TlsStream(b, client_context, server_side=False, server_hostname="server.test")
        first, second = b"a" * len(PAYLOAD), b"b" * len(PAYLOAD)
        got = bytearray()

        async def reader() -> None:
            while len(got) < 2 * len(PAYLOAD):
                got.extend(await server.receive_some(65536))
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            nursery.start_soon(client.send_all, first)
            nursery.start_soon(client.send_all, second)
    assert bytes(got) in (first + second, second + first)


async def test_a_write_cancelled_part_way_breaks_the_stream(tmp_path: Path) -> None:
    server_context, client_context = contexts(tmp_path)
    async with sockets() as (a, b):
        server = trio.SSLStream(a, server_context, server_side=True, https_compatible=True)
        client = TlsStream(b, client_context, server_side=False, server_hostname="server.test")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.do_handshake)
            await client.do_handshake()
        with trio.move_on_after(0.1) as waited:
            await client.send_all(PAYLOAD)  # nobody reads: the socket fills up
        assert waited.cancelled_caught
        with pytest.raises(trio.BrokenResourceError):
            await client.send_all(b"more")


async def test_eof_with_or_without_close_notify_reads_as_the_end(tmp_path: Path) -> None:
    server_context, client_context = contexts(tmp_path)
    for notify in (True, False):
        async with sockets() as (a, b):
            server = trio.SSLStream(
                a, server_context, server_side=True, https_compatible=not notify
            )
            client = TlsStream(b, client_context, server_side=False, server_hostname="server.test")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.do_handshake)
                await client.do_handshake()
            await server.send_all(b"last words")
            if notify:
                async with trio.open_nursery() as nursery:
                    # trio sends close_notify, then waits for ours, which never comes
                    nursery.start_soon(server.aclose)
                    assert await read_all(client) == b"last words"
                    await client.aclose()
            else:
                await trio.aclose_forcefully(a)
                assert await read_all(client) == b"last words"


async def test_closing_sends_close_notify(tmp_path: Path) -> None:
    server_context, client_context = contexts(tmp_path)
    async with sockets() as (a, b):
        # not https_compatible: an EOF without close_notify would raise here
        server = trio.SSLStream(a, server_context, server_side=True)
        client = TlsStream(b, client_context, server_side=False, server_hostname="server.test")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.do_handshake)
            await client.do_handshake()
        await client.send_all(b"bye")
        await client.aclose()
        assert await read_all(server) == b"bye"
        await client.aclose()  # again: nothing happens


async def test_a_failed_handshake_raises_from_the_ssl_error(tmp_path: Path) -> None:
    server_context, _ = contexts(tmp_path)
    stranger = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    stranger.load_verify_locations(cadata=Pki("other.example").roots_pem.decode())
    async with sockets() as (a, b):
        server = trio.SSLStream(a, server_context, server_side=True, https_compatible=True)
        client = TlsStream(b, stranger, server_side=False, server_hostname="server.test")

        async def serve() -> None:
            with pytest.raises(trio.BrokenResourceError):
                await server.do_handshake()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            with pytest.raises(trio.BrokenResourceError) as raised:
                await client.do_handshake()
    assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)
    with pytest.raises(trio.BrokenResourceError):
        await client.receive_some()
