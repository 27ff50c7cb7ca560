"""Socket helpers shared by the echo adapters."""

from __future__ import annotations

import contextlib
import socket
import struct

import trio


async def abort(stream: trio.SocketStream) -> None:
    """Close with a TCP RST instead of a FIN (SO_LINGER with a zero timeout)."""
    with contextlib.suppress(OSError):
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


def address_of(stream: trio.SocketStream) -> str:
    host, port = stream.socket.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
