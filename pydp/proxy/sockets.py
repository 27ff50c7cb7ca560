"""Writes that skip trio's machinery when the kernel takes them whole.

trio's `send_all` costs a scheduler round trip even when the socket accepts
everything at once, which on a proxy's small responses is nearly always. A
non-blocking `write(2)` is tried first; only what it leaves over goes
through `send_all` (which waits for the socket as usual). Streams that are
not plain sockets (TLS) always use `send_all`.
"""

from __future__ import annotations

import os

import trio


async def send_all(stream: trio.abc.Stream, data: bytes | bytearray) -> None:
    """`stream.send_all(data)`, raising `trio.BrokenResourceError` as it would."""
    if type(stream) is trio.SocketStream:
        fd = stream.socket.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the socket was closed")
        try:
            sent = os.write(fd, data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise trio.BrokenResourceError(f"socket write failed: {exc}") from exc
        if sent == len(data):
            return
        data = data[sent:]
    await stream.send_all(data)
