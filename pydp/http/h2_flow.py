"""HTTP/2 streams and flow control for a proxy: data acknowledged when forwarded,
data sent only within the peer's windows.

Theory of operation
-------------------
Inbound: every DATA frame shrinks our windows (more than they hold is a
FLOW_CONTROL_ERROR). The bytes are handed to the consumer as `Data` and
counted as unacknowledged on their stream; the window reopens only when the
consumer calls `ack` after forwarding them. WINDOW_UPDATE is batched as h2
did (`InboundWindow`): sent once half the window was acknowledged, or once a
quarter (at most 1 KiB) was while the window is shut. A consumer that stops
acknowledging stops the peer at the stream window. Padding is acknowledged
at once (the consumer never sees it); a stream that is reset gives its
unacknowledged bytes back to the connection window, so an abandoned stream
cannot starve the others.

Outbound: `send` writes what the stream and connection windows and the
peer's frame size allow and queues the rest, with the end of the stream and
trailers behind it. WINDOW_UPDATE and SETTINGS from the peer flush the
queues (`resume`); a queue that empties is reported so the producer may
resume. A stream's `queued` byte count is for the producer's high-water mark.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from h2.errors import ErrorCodes

from pydp.http import h2_frames as frames
from pydp.http.events import Headers
from pydp.http.h2_frames import MAX_WINDOW, H2ConnectionError


class InboundWindow:
    """Our receive window of a stream or the connection, and when to reopen it."""

    __slots__ = ("max_size", "processed", "size")

    def __init__(self, size: int) -> None:
        self.max_size = size
        self.size = size
        self.processed = 0

    def consume(self, size: int) -> None:
        self.size -= size
        if self.size < 0:
            raise H2ConnectionError(
                ErrorCodes.FLOW_CONTROL_ERROR, "Flow control window shrunk below 0"
            )

    def open(self, size: int) -> None:
        """Grown by us (a WINDOW_UPDATE we sent, or our SETTINGS acknowledged)."""
        self.size += size
        self.max_size = max(self.size, self.max_size)

    def process(self, size: int) -> int:
        """`size` bytes acknowledged: the WINDOW_UPDATE increment to send now (0: none)."""
        processed = self.processed = self.processed + size
        if not processed:
            return 0
        if processed >= self.max_size // 2 or (
            self.size == 0 and processed > min(1024, self.max_size // 4)
        ):
            increment = min(processed, self.max_size - self.size)
            self.processed = 0
            self.size += increment
            return increment
        return 0


class StreamState:
    """One live stream. `receiving`: the peer may still send on it; `sending`: we may."""

    __slots__ = (
        "body",
        "chunks",
        "end_queued",
        "expected",
        "final_seen",
        "head_sent",
        "inbound",
        "muted",
        "no_body",
        "queued",
        "receiving",
        "sending",
        "stream_id",
        "trailers",
        "unacked",
        "window",
    )

    def __init__(self, stream_id: int, send_window: int, receive_window: int) -> None:
        self.stream_id = stream_id
        self.receiving = True
        self.sending = True
        self.window = send_window
        self.inbound = InboundWindow(receive_window)
        self.unacked = 0
        self.body = 0  # body bytes received
        self.expected: int | None = None  # declared content-length
        self.head_sent = False
        self.final_seen = False  # a final (non-1xx) head was received
        self.no_body = False  # the response to a HEAD request: DATA would be too long
        self.muted = False  # a `StreamError` was reported: its further input is dropped
        self.trailers: Headers = []  # received trailers, reported with `EndOfMessage`
        self.chunks: deque[bytes] | None = None  # outbound data waiting for window
        self.queued = 0
        self.end_queued: Headers | None = None  # trailers ([] for none) behind the queue


class FlowControl:
    """The connection's windows; writes frames to `out`. `end_stream(stream, trailers)`
    is the connection's: it ends the stream's sending side, writing trailers or an
    empty END_STREAM frame unless `trailers` is None (END_STREAM went with the data)."""

    __slots__ = ("_end_stream", "inbound", "max_frame_size", "out", "window")

    def __init__(
        self, out: list[bytes], end_stream: Callable[[StreamState, Headers | None], None]
    ) -> None:
        self.out = out
        self._end_stream = end_stream
        self.window = 65535  # the peer's window for our data on the connection
        self.inbound = InboundWindow(65535)
        self.max_frame_size = frames.DEFAULT_MAX_FRAME_SIZE

    # -- inbound ----------------------------------------------------------------------

    def received(self, stream: StreamState, size: int, flow_controlled: int) -> None:
        """`size` data bytes (of `flow_controlled`, padding included) for the consumer."""
        padding = flow_controlled - size
        if padding:
            self._process(stream, padding)
        stream.unacked += size

    def discard(self, stream: StreamState | None, flow_controlled: int) -> None:
        """Data nobody consumes: acknowledge it at once."""
        if flow_controlled:
            self._process(stream, flow_controlled)

    def ack(self, stream: StreamState, size: int) -> None:
        size = min(size, stream.unacked)
        if size > 0:
            stream.unacked -= size
            self._process(stream, size)

    def release(self, stream: StreamState) -> None:
        """Nobody will acknowledge this stream's input: give its bytes back."""
        unacked, stream.unacked = stream.unacked, 0
        if unacked:
            self._process(None, unacked)

    def _process(self, stream: StreamState | None, size: int) -> None:
        increment = self.inbound.process(size)
        if increment:
            self.out.append(frames.window_update(0, increment))
        if stream is not None and stream.receiving:
            increment = stream.inbound.process(size)
            if increment:
                self.out.append(frames.window_update(stream.stream_id, increment))

    # -- outbound ---------------------------------------------------------------------

    def send(self, stream: StreamState, data: bytes) -> None:
        if stream.chunks is None:
            size = len(data)
            if size <= self.max_frame_size and size <= stream.window and size <= self.window:
                if size:
                    stream.window -= size
                    self.window -= size
                    self.out.append(frames.data(stream.stream_id, data, False))
                return
            stream.chunks = deque()
        if data:
            stream.chunks.append(data)
            stream.queued += len(data)
        self.flush(stream)

    def send_last(self, stream: StreamState, data: bytes) -> None:
        """`send` then `end` without trailers: one DATA frame when the windows allow."""
        size = len(data)
        if (
            stream.chunks is None
            and size <= self.max_frame_size
            and size <= stream.window
            and size <= self.window
        ):
            stream.window -= size
            self.window -= size
            self.out.append(frames.data(stream.stream_id, data, True))
            self._end_stream(stream, None)
        else:
            self.send(stream, data)
            self.end(stream, [])

    def end(self, stream: StreamState, trailers: Headers) -> None:
        """End the sending side, behind the queued data if any."""
        if stream.chunks is None:
            self._end_stream(stream, trailers)
        else:
            stream.end_queued = trailers
            self.flush(stream)

    def flush(self, stream: StreamState) -> bool:
        """Send what the windows allow; True once the queue is empty (and gone)."""
        chunks = stream.chunks
        if chunks is None:
            return True
        out = self.out
        sid = stream.stream_id
        while chunks:
            room = min(stream.window, self.window, self.max_frame_size)
            if room <= 0:
                return False
            chunk = chunks[0]
            if len(chunk) <= room:
                chunks.popleft()
            else:
                chunks[0] = chunk[room:]
                chunk = chunk[:room]
            size = len(chunk)
            stream.queued -= size
            stream.window -= size
            self.window -= size
            last = not chunks and stream.end_queued is not None and not stream.end_queued
            out.append(frames.data(sid, chunk, last))
            if last:
                stream.chunks = stream.end_queued = None
                self._end_stream(stream, None)
                return True
        stream.chunks = None
        trailers, stream.end_queued = stream.end_queued, None
        if trailers is not None:
            self._end_stream(stream, trailers)
        return True

    def open_stream_window(self, stream: StreamState, increment: int) -> bool:
        """A WINDOW_UPDATE for a stream; False when it overflows (a stream error)."""
        if stream.window + increment > MAX_WINDOW:
            return False
        stream.window += increment
        return True

    def open_window(self, increment: int) -> None:
        if self.window + increment > MAX_WINDOW:
            raise H2ConnectionError(
                ErrorCodes.FLOW_CONTROL_ERROR,
                f"May not increment flow control window past {MAX_WINDOW}",
            )
        self.window += increment
