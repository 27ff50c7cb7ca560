"""gRPC message framing: a 1-byte compressed flag, a 4-byte big-endian length, the bytes."""

from __future__ import annotations

import struct

HEADER = struct.Struct(">BI")


class FrameError(ValueError):
    """Bytes that are not a sequence of whole, uncompressed gRPC messages."""


def frame(message: bytes) -> bytes:
    return HEADER.pack(0, len(message)) + message


def unframe(data: bytes) -> list[bytes]:
    """Every message in `data`, which must hold whole messages only."""
    messages: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < HEADER.size:
            raise FrameError(f"{len(data) - offset} stray bytes after {len(messages)} messages")
        compressed, length = HEADER.unpack_from(data, offset)
        if compressed:
            raise FrameError(f"message {len(messages)} is compressed; no codec is agreed")
        offset += HEADER.size
        if len(data) - offset < length:
            raise FrameError(
                f"message {len(messages)} announces {length} bytes, {len(data) - offset} remain"
            )
        messages.append(data[offset : offset + length])
        offset += length
    return messages
