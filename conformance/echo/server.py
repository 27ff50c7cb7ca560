"""The echo backend's listeners: accept, tell HTTP/2 from HTTP/1.1 by the preface, serve."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import trio

from conformance.echo.app import EchoApp
from conformance.echo.h1 import serve_h1
from conformance.echo.h2conn import H2Handler
from conformance.echo.sockets import address_of

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PROTOCOLS = ("any", "h1", "h2")
log = logging.getLogger("conformance.echo")


async def sniff(stream: trio.abc.ReceiveStream) -> tuple[bool, bytes]:
    """(is HTTP/2, the bytes read so far): read until the preface matches or cannot."""
    data = b""
    while len(data) < len(PREFACE) and PREFACE.startswith(data):
        more = await stream.receive_some(len(PREFACE) - len(data))
        if not more:
            break
        data += more
    return data == PREFACE, data


def connection_handler(app: EchoApp, protocol: str = "any"):  # type: ignore[no-untyped-def]
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")

    async def handle(stream: trio.SocketStream) -> None:
        local = address_of(stream)
        try:
            is_h2, initial = await sniff(stream)
            if (is_h2 and protocol == "h1") or (not is_h2 and protocol == "h2"):
                await stream.aclose()
                return
            if is_h2:
                await H2Handler(stream, app, local).serve(initial)
            elif initial:
                await serve_h1(stream, app, local, initial)
            else:
                await stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    return handle


async def serve(
    app: EchoApp,
    listen: Sequence[tuple[str, int]],
    protocol: str = "any",
    *,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve on every (host, port); reports the bound addresses once listening."""
    handler = connection_handler(app, protocol)
    async with trio.open_nursery() as nursery:
        bound: list[tuple[str, int]] = []
        for host, port in listen:
            listeners = await trio.open_tcp_listeners(port, host=host)
            for listener in listeners:
                bound.append(listener.socket.getsockname()[:2])
            nursery.start_soon(trio.serve_listeners, handler, listeners)
        task_status.started(bound)
