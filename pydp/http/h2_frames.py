"""HTTP/2 frames (RFC 9113 section 4 and 6): the wire format, both ways.

`FrameReader` cuts a byte stream into frames, checking what the frame
layer alone can check: the client preface (server side), the frame size,
which frames belong on stream 0 and which on a stream, fixed frame sizes,
padding, and that a header block's CONTINUATION frames follow it without
interruption (it hands over whole header blocks). PUSH_PROMISE is refused
here: neither side of pydp accepts pushes. The functions below serialize
frames. A violation raises `H2ConnectionError`, answered with GOAWAY.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from h2.errors import ErrorCodes

from pydp.http.detect import H2_PREFACE

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9

END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

DEFAULT_MAX_FRAME_SIZE = 16384
MAX_WINDOW = 2**31 - 1
MAX_STREAM_ID = 2**31 - 1
MAX_CONTINUATIONS = 64

# SETTINGS identifiers.
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6

_HEAD = struct.Struct(">IBI")  # (length << 8 | type), flags, stream id
_UNPACK_HEAD = struct.Struct(">HBBBI").unpack_from  # length split 16 + 8 bits
_PAIR = struct.Struct(">HI")
_U32 = struct.Struct(">I")
_GOAWAY = struct.Struct(">II")


class H2ConnectionError(Exception):
    """A connection error: answered with GOAWAY carrying `code`, then the end."""

    def __init__(self, code: ErrorCodes, message: str) -> None:
        super().__init__(message)
        self.code = code


def head(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    return _HEAD.pack(length << 8 | kind, flags, stream_id)


_STREAM_FRAMES = frozenset({DATA, HEADERS, PRIORITY, RST_STREAM, PUSH_PROMISE, CONTINUATION})
_CONNECTION_FRAMES = frozenset({SETTINGS, PING, GOAWAY})
_FIXED_SIZE = {RST_STREAM: 4, PING: 8, WINDOW_UPDATE: 4, PRIORITY: 5}

Frame = tuple[int, int, int, bytes]


class FrameReader:
    """Frames from a byte stream: `feed` returns `(type, flags, stream_id, payload)`
    tuples. A header block comes as one HEADERS frame with END_HEADERS set whose
    payload is the whole block (padding and priority fields removed, CONTINUATION
    fragments joined). Frames of unknown types are dropped."""

    __slots__ = ("_block", "_buffer", "_preface", "max_frame_size")

    def __init__(self, *, server: bool) -> None:
        self._buffer = b""
        self._preface = H2_PREFACE if server else b""
        self._block: list[Frame] = []
        self.max_frame_size = DEFAULT_MAX_FRAME_SIZE

    def feed(self, data: bytes) -> list[Frame]:
        if self._preface:
            size = min(len(self._preface), len(data))
            if data[:size] != self._preface[:size]:
                raise H2ConnectionError(ErrorCodes.PROTOCOL_ERROR, "Invalid HTTP/2 preamble.")
            self._preface = self._preface[size:]
            data = data[size:]
        buffer = self._buffer + data if self._buffer else data
        end = len(buffer)
        pos = 0
        frames: list[Frame] = []
        limit = self.max_frame_size
        while end - pos >= 9:
            high, low, kind, flags, stream_id = _UNPACK_HEAD(buffer, pos)
            length = high << 8 | low
            if length > limit:
                raise H2ConnectionError(
                    ErrorCodes.FRAME_SIZE_ERROR,
                    f"Received overlong frame: length {length}, max {limit}",
                )
            stop = pos + 9 + length
            if stop > end:
                break
            payload = buffer[pos + 9 : stop]
            pos = stop
            stream_id &= MAX_STREAM_ID
            if self._block or kind == CONTINUATION:
                self._continue(kind, flags, stream_id, payload, frames)
            elif kind <= HEADERS:  # DATA or HEADERS
                if not stream_id:
                    raise _misplaced(kind, stream_id)
                if kind == HEADERS:
                    payload = _header_fragment(flags, stream_id, payload)
                    if not flags & END_HEADERS:
                        self._block.append((kind, flags, stream_id, payload))
                        continue
                frames.append((kind, flags, stream_id, payload))
            elif kind <= CONTINUATION:
                _check(kind, flags, stream_id, payload)
                frames.append((kind, flags, stream_id, payload))
        self._buffer = buffer[pos:] if pos < end else b""
        return frames

    def _continue(
        self, kind: int, flags: int, stream_id: int, payload: bytes, frames: list[Frame]
    ) -> None:
        block = self._block
        if kind != CONTINUATION or not block or block[0][2] != stream_id:
            raise H2ConnectionError(ErrorCodes.PROTOCOL_ERROR, "Invalid frame during header block.")
        block.append((kind, flags, stream_id, payload))
        if len(block) > MAX_CONTINUATIONS:
            raise H2ConnectionError(
                ErrorCodes.PROTOCOL_ERROR, "Too many continuation frames received."
            )
        if flags & END_HEADERS:
            first_kind, first_flags, _, _ = block[0]
            joined = b"".join([frame[3] for frame in block])
            self._block = []
            frames.append((first_kind, first_flags | END_HEADERS, stream_id, joined))


def _misplaced(kind: int, stream_id: int) -> H2ConnectionError:
    where = f"stream {stream_id}" if stream_id else "stream 0"
    return H2ConnectionError(ErrorCodes.PROTOCOL_ERROR, f"Frame type {kind} not allowed on {where}")


def _check(kind: int, flags: int, stream_id: int, payload: bytes) -> None:
    """Stream association and fixed sizes of the frames other than DATA and HEADERS."""
    if kind == PUSH_PROMISE:
        raise H2ConnectionError(ErrorCodes.PROTOCOL_ERROR, "Received pushed stream")
    if (kind in _STREAM_FRAMES and not stream_id) or (kind in _CONNECTION_FRAMES and stream_id):
        raise _misplaced(kind, stream_id)
    size = _FIXED_SIZE.get(kind)
    if size is not None and len(payload) != size:
        raise H2ConnectionError(
            ErrorCodes.FRAME_SIZE_ERROR, f"Frame type {kind} of {len(payload)} bytes, not {size}"
        )
    if kind == SETTINGS and (len(payload) % 6 or (flags & ACK and payload)):
        raise H2ConnectionError(ErrorCodes.FRAME_SIZE_ERROR, "Invalid SETTINGS frame length")
    if kind == GOAWAY and len(payload) < 8:
        raise H2ConnectionError(ErrorCodes.FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes")
    if kind == PRIORITY:
        check_dependency(stream_id, payload)


def strip_padding(flags: int, payload: bytes, what: str) -> bytes:
    if not flags & PADDED:
        return payload
    if not payload or payload[0] >= len(payload):
        raise H2ConnectionError(ErrorCodes.PROTOCOL_ERROR, f"Received {what} with invalid padding")
    return payload[1 : len(payload) - payload[0]]


def _header_fragment(flags: int, stream_id: int, payload: bytes) -> bytes:
    if flags & PADDED:
        payload = strip_padding(flags, payload, "HEADERS")
    if flags & PRIORITY_FLAG:
        if len(payload) < 5:
            raise H2ConnectionError(ErrorCodes.FRAME_SIZE_ERROR, "HEADERS priority fields missing")
        check_dependency(stream_id, payload)
        payload = payload[5:]
    return payload


def check_dependency(stream_id: int, priority: bytes) -> None:
    if _U32.unpack_from(priority)[0] & MAX_STREAM_ID == stream_id:
        raise H2ConnectionError(
            ErrorCodes.PROTOCOL_ERROR, f"Stream {stream_id} may not depend on itself"
        )


def u32(payload: bytes) -> int:
    value: int = _U32.unpack_from(payload)[0]
    return value


def goaway_fields(payload: bytes) -> tuple[int, int]:
    """(last stream id, error code) of a GOAWAY payload."""
    last, code = _GOAWAY.unpack_from(payload)
    return last & MAX_STREAM_ID, code


def settings_values(payload: bytes) -> list[tuple[int, int]]:
    return [_PAIR.unpack_from(payload, at) for at in range(0, len(payload), 6)]


# -- serializing -----------------------------------------------------------------------------


def settings(values: Iterable[tuple[int, int]]) -> bytes:
    body = b"".join(_PAIR.pack(key, value) for key, value in values)
    return head(len(body), SETTINGS, 0, 0) + body


SETTINGS_ACK = head(0, SETTINGS, ACK, 0)


def ping_ack(opaque: bytes) -> bytes:
    return head(8, PING, ACK, 0) + opaque


def window_update(stream_id: int, increment: int) -> bytes:
    return head(4, WINDOW_UPDATE, 0, stream_id) + _U32.pack(increment)


def rst_stream(stream_id: int, code: int) -> bytes:
    return head(4, RST_STREAM, 0, stream_id) + _U32.pack(code)


def goaway(last_stream_id: int, code: int) -> bytes:
    return head(8, GOAWAY, 0, 0) + _GOAWAY.pack(last_stream_id, code)


def data(stream_id: int, payload: bytes, end_stream: bool) -> bytes:
    return head(len(payload), DATA, END_STREAM if end_stream else 0, stream_id) + payload


def headers(stream_id: int, block: bytes, end_stream: bool, max_frame_size: int) -> bytes:
    """HEADERS, and CONTINUATION frames when the block exceeds the peer's frame size."""
    flags = END_STREAM if end_stream else 0
    if len(block) <= max_frame_size:
        return head(len(block), HEADERS, flags | END_HEADERS, stream_id) + block
    parts = [block[at : at + max_frame_size] for at in range(0, len(block), max_frame_size)]
    out = [head(len(parts[0]), HEADERS, flags, stream_id), parts[0]]
    for part in parts[1:-1]:
        out += (head(len(part), CONTINUATION, 0, stream_id), part)
    out += (head(len(parts[-1]), CONTINUATION, END_HEADERS, stream_id), parts[-1])
    return b"".join(out)
