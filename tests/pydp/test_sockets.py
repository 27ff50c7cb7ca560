"""Reads and writes that bypass trio's socket methods: same results, still fair."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from pydp.sockets import FAIR_EVERY, receive_some, send_all, write_now


@asynccontextmanager
async def stream_pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    a, b = trio.socket.socketpair()
    streams = trio.SocketStream(a), trio.SocketStream(b)
    try:
        yield streams
    finally:
        for stream in streams:
            await stream.aclose()


async def test_reads_what_is_there_then_waits_for_more() -> None:
    async with stream_pair() as (a, b), trio.open_nursery() as nursery:
        await a.send_all(b"hello")
        assert await receive_some(b) == b"hello"
        nursery.start_soon(a.send_all, b"later")
        assert await receive_some(b, yield_first=True) == b"later"


async def test_eof_and_a_closed_socket_read_as_empty() -> None:
    async with stream_pair() as (a, b):
        await a.aclose()
        assert await receive_some(b) == b""
        await b.aclose()
        assert await receive_some(b) == b""


async def test_a_socket_closed_while_waiting_reads_as_empty() -> None:
    async with stream_pair() as (_, b), trio.open_nursery() as nursery:

        async def close_soon() -> None:
            await trio.sleep(0.01)
            await b.aclose()

        nursery.start_soon(close_soon)
        assert await receive_some(b) == b""


async def test_other_streams_use_their_own_methods() -> None:
    a, b = trio.testing.memory_stream_pair()
    await send_all(a, b"via send_all")
    assert await receive_some(b) == b"via send_all"
    assert write_now(a, b"kept") == b"kept"


async def test_what_the_kernel_does_not_take_is_left_for_send_all() -> None:
    async with stream_pair() as (a, b):
        a.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        data = bytes(range(256)) * 4096  # far more than the socket buffers hold
        rest = write_now(a, data)
        assert 0 < len(rest) < len(data)
        received = bytearray()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_all, a, data[len(data) - len(rest) :])
            while len(received) < len(data):
                received += await receive_some(b)
        assert received == data


async def test_writing_to_a_closed_socket_raises_as_send_all_does() -> None:
    async with stream_pair() as (a, b):
        await b.aclose()
        with pytest.raises(trio.BrokenResourceError):
            for _ in range(100):
                write_now(a, b"x" * 65536)
        await a.aclose()
        with pytest.raises(trio.ClosedResourceError):
            write_now(a, b"x")


async def test_a_reader_that_never_waits_still_lets_others_run() -> None:
    async with stream_pair() as (a, b):
        await a.send_all(b"x" * (4 * FAIR_EVERY))
        await yields_to_others(b)


async def yields_to_others(b: trio.SocketStream) -> None:
    ticks = 0

    async def other() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        await trio.lowlevel.checkpoint()
        seen = ticks
        for _ in range(4 * FAIR_EVERY):
            assert await receive_some(b, 1) == b"x"
        assert ticks >= seen + 3
        nursery.cancel_scope.cancel()
