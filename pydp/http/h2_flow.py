"""HTTP/2 flow control for a proxy: data acknowledged when forwarded, data
sent only within the peer's windows.

Theory of operation
-------------------
Inbound: every DATA frame shrinks our windows. The bytes are handed to the
consumer as `Data` and counted as unacknowledged on their stream; the window
reopens (WINDOW_UPDATE, batched by h2) only when the consumer calls
`ack_data` after forwarding them. A consumer that stops acknowledging stops
the peer at the stream window. Padding is acknowledged at once (the consumer
never sees it); a stream that is reset gives its unacknowledged bytes back to
the connection window, so an abandoned stream cannot starve the others.

Outbound: `send(Data)` writes what the stream and connection windows and the
peer's frame size allow and queues the rest, with the end of the stream and
trailers behind it. WINDOW_UPDATE and SETTINGS from the peer flush the
queues; a queue that empties reports `WindowUpdated(stream_id)` so the
producer may resume. `buffered(stream_id)` is the queued byte count, for the
producer's high-water mark.
"""

from __future__ import annotations

from collections import deque

from h2.connection import H2Connection

from pydp.http.events import Headers


class _Outbound:
    __slots__ = ("chunks", "end", "size", "trailers")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.end = False
        self.trailers: Headers = []


class FlowControl:
    """Per-stream unacknowledged input and queued output of one connection."""

    def __init__(self, h2: H2Connection) -> None:
        self._h2 = h2
        self._unacked: dict[int, int] = {}
        self._queues: dict[int, _Outbound] = {}

    def received(self, stream_id: int, size: int, flow_controlled: int) -> None:
        """`size` data bytes (of `flow_controlled`, padding included) arrived."""
        padding = flow_controlled - size
        if padding:
            self._h2.acknowledge_received_data(padding, stream_id)
        if size:
            self._unacked[stream_id] = self._unacked.get(stream_id, 0) + size

    def discard(self, stream_id: int, flow_controlled: int) -> None:
        """Data for a stream nobody consumes: acknowledge it at once."""
        if flow_controlled:
            self._h2.acknowledge_received_data(flow_controlled, stream_id)

    def ack(self, stream_id: int, size: int) -> None:
        remaining = self._unacked.get(stream_id, 0)
        size = min(size, remaining)
        if size <= 0:
            return
        if size == remaining:
            del self._unacked[stream_id]
        else:
            self._unacked[stream_id] = remaining - size
        self._h2.acknowledge_received_data(size, stream_id)

    def release(self, stream_id: int) -> None:
        """Nobody will acknowledge this stream's input: give its bytes back."""
        unacked = self._unacked.pop(stream_id, 0)
        if unacked:
            self._h2.acknowledge_received_data(unacked, stream_id)

    def forget(self, stream_id: int) -> None:
        """The stream is gone: drop its queue, release its unacked bytes."""
        self._queues.pop(stream_id, None)
        self.release(stream_id)

    def buffered(self, stream_id: int) -> int:
        queue = self._queues.get(stream_id)
        return queue.size if queue is not None else 0

    def send(self, stream_id: int, data: bytes) -> None:
        queue = self._queues.get(stream_id)
        if queue is None:
            h2 = self._h2
            size = len(data)
            if size <= h2.max_outbound_frame_size and size <= h2.local_flow_control_window(
                stream_id
            ):
                if size:
                    h2.send_data(stream_id, data)
                return
            queue = self._queues[stream_id] = _Outbound()
        if data:
            queue.chunks.append(data)
            queue.size += len(data)
        self._flush(stream_id, queue)

    def end(self, stream_id: int, trailers: Headers) -> None:
        queue = self._queues.get(stream_id)
        if queue is None:
            if trailers:
                self._h2.send_headers(stream_id, trailers, end_stream=True)
            else:
                self._h2.end_stream(stream_id)
            return
        queue.end = True
        queue.trailers = trailers
        self._flush(stream_id, queue)

    def resume(self, stream_id: int) -> list[int]:
        """Flush after the peer opened a window (0: every stream's)."""
        drained = []
        for sid, queue in list(self._queues.items()):
            if (stream_id in (0, sid)) and self._flush(sid, queue):
                drained.append(sid)
        return drained

    def _flush(self, stream_id: int, queue: _Outbound) -> bool:
        h2 = self._h2
        chunks = queue.chunks
        while chunks:
            room = min(h2.local_flow_control_window(stream_id), h2.max_outbound_frame_size)
            if room <= 0:
                return False
            chunk = chunks[0]
            if len(chunk) <= room:
                chunks.popleft()
            else:
                chunks[0] = chunk[room:]
                chunk = chunk[:room]
            queue.size -= len(chunk)
            last = queue.end and not chunks and not queue.trailers
            h2.send_data(stream_id, chunk, end_stream=last)
            if last:
                del self._queues[stream_id]
                return True
        del self._queues[stream_id]
        if queue.end:
            if queue.trailers:
                h2.send_headers(stream_id, queue.trailers, end_stream=True)
            else:
                h2.end_stream(stream_id)
        return True
