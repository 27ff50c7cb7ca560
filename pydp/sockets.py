"""Socket reads and writes that skip trio's machinery when the kernel is ready.

trio's `receive_some` and `send_all` cost two trips through the scheduler
each (a checkpoint before, a yield after), even when the kernel has the data
or takes it whole at once - which on a proxy's small messages is nearly
always. Here a plain socket is read with a non-blocking `read(2)`; when that
would block, the task yields once to the scheduler and tries again (on a
busy proxy the peer has usually answered meanwhile, which saves registering
with epoll and waiting for its event), and only then waits for the socket
(`wait_readable`). A caller that expects nothing yet - it has just sent a
request upstream, or a response downstream - yields before the first try
(`yield_first`): besides the read that would fail, that serves the other
connections first, which keeps a busy proxy's latency even. A write tries
`write(2)` first (`write_now`, which callers use without a coroutine) and
only what it leaves over goes through `send_all`. Other streams use their own
methods (pydp's TLS stream, `pydp.tls.stream`, reads and writes its socket
through this module).

Every read checks for cancellation (`checkpoint_if_cancelled`, which costs
nothing unless cancelled) but the one right after a `yield_first` yield,
whose cancellation point is the wait that follows if nothing came; every
`FAIR_EVERY`th read that did not wait yields to the scheduler, so a peer
that always has data ready cannot monopolize the process.
"""

from __future__ import annotations

import os

import trio

RECEIVE_SIZE = 65536
FAIR_EVERY = 16

_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled
_wait_readable = trio.lowlevel.wait_readable
_yield = trio.lowlevel.cancel_shielded_checkpoint
_ready_reads = 0


async def receive_some(
    stream: trio.abc.Stream, max_bytes: int = RECEIVE_SIZE, *, yield_first: bool = False
) -> bytes:
    """The next bytes from `stream`; b"" at EOF or when the stream is broken or closed.

    `yield_first` skips the first read attempt, for a caller that expects nothing
    yet: it yields, then reads."""
    global _ready_reads
    if type(stream) is not trio.SocketStream:
        try:
            return bytes(await stream.receive_some(max_bytes))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""
    sock = stream.socket
    fd = sock.fileno()
    if fd < 0:
        return b""
    if not yield_first:
        await _checkpoint_if_cancelled()
        try:
            data = os.read(fd, max_bytes)
        except BlockingIOError:
            pass
        except OSError:
            return b""
        else:
            _ready_reads += 1
            if _ready_reads % FAIR_EVERY == 0:
                await _yield()
            return data
    # The others run; the answer may come meanwhile. No cancellation here: if
    # nothing came, waiting for the socket below is the cancellation point.
    await _yield()
    fd = sock.fileno()
    if fd < 0:
        return b""
    try:
        return os.read(fd, max_bytes)
    except BlockingIOError:
        pass
    except OSError:
        return b""
    while True:
        try:
            await _wait_readable(fd)
        except trio.ClosedResourceError:
            return b""
        fd = sock.fileno()
        if fd < 0:
            return b""
        try:
            return os.read(fd, max_bytes)
        except BlockingIOError:
            continue
        except OSError:
            return b""


def write_now(stream: trio.abc.Stream, data: bytes | bytearray) -> bytes | bytearray:
    """Write what the kernel takes of `data` at once; the rest, for `stream.send_all`.

    Raises `trio.BrokenResourceError` or `trio.ClosedResourceError` as `send_all`
    would. Not a plain socket: nothing is written, all of `data` is returned."""
    if type(stream) is not trio.SocketStream:
        return data
    fd = stream.socket.fileno()
    if fd < 0:
        raise trio.ClosedResourceError("the socket was closed")
    try:
        sent = os.write(fd, data)
    except BlockingIOError:
        return data
    except OSError as exc:
        raise trio.BrokenResourceError(f"socket write failed: {exc}") from exc
    return data[sent:] if sent < len(data) else b""


async def send_all(stream: trio.abc.Stream, data: bytes | bytearray) -> None:
    """`stream.send_all(data)`, raising `trio.BrokenResourceError` as it would."""
    rest = write_now(stream, data)
    if rest:
        await stream.send_all(rest)
