"""HTTP/1.1 serialization: heads from header lists, and body framing.

A head is built as a list of byte pieces joined once. Pseudo-headers and
hop-by-hop headers are skipped, `content-length` is returned to decide the
framing. Header injection is caught without a per-header scan: the joined
head must contain exactly as many LF as lines written, each after a CR.
"""

from __future__ import annotations

from pydp.http.errors import LocalProtocolError
from pydp.http.events import Headers
from pydp.http.headers import HOP_BY_HOP, reason_phrase

STATUS_LINE_11 = {c: b"HTTP/1.1 %d %s\r\n" % (c, reason_phrase(c)) for c in range(100, 1000)}
STATUS_LINE_10 = {c: b"HTTP/1.0 %d %s\r\n" % (c, reason_phrase(c)) for c in range(100, 1000)}

NO_BODY = 0
LENGTH = 1
CHUNKED = 2
UNTIL_CLOSE = 3


_SKIP_OR_LENGTH = HOP_BY_HOP | {b"content-length"}
_PLAIN: set[bytes] = set()  # names seen to be written as they are
_PLAIN_MAX = 4096


def add_fields(parts: list[bytes], headers: Headers) -> tuple[int, bytes | None]:
    """Append `name: value` lines; return (lines added, content-length value)."""
    content_length: bytes | None = None
    extend = parts.extend
    plain = _PLAIN
    start = len(parts)
    for name, value in headers:
        if name in plain:
            extend((name, b": ", value, b"\r\n"))
        elif name in _SKIP_OR_LENGTH:
            if name != b"content-length":
                continue
            if content_length is not None:
                if value != content_length:
                    raise LocalProtocolError(
                        f"conflicting content-length {content_length!r} and {value!r}"
                    )
                continue
            if not value.isdigit():
                raise LocalProtocolError(f"invalid content-length {value!r}")
            content_length = value
            extend((name, b": ", value, b"\r\n"))
        elif name[:1] != b":":
            if len(plain) < _PLAIN_MAX:
                plain.add(name)
            extend((name, b": ", value, b"\r\n"))
    return (len(parts) - start) // 4, content_length


def join_head(parts: list[bytes], lines: int) -> bytes:
    """The head from its pieces; `lines` counts every CRLF-terminated line."""
    head = b"".join(parts)
    if head.count(b"\n") != lines or head.count(b"\r") != lines:
        raise LocalProtocolError("CR or LF inside a header name or value or the start line")
    return head


def encode_trailers(trailers: Headers) -> bytes:
    parts = [b"0\r\n"]
    lines, _ = add_fields(parts, [t for t in trailers if t[0] not in _NOT_TRAILERS])
    parts.append(b"\r\n")
    return join_head(parts, lines + 2)


_NOT_TRAILERS = frozenset({b"content-length", b"host", b"te", b"trailer"})


class Framer:
    """The body framing of the message being sent."""

    __slots__ = ("enable_trailers", "mode", "remaining")

    def __init__(self, enable_trailers: bool) -> None:
        self.enable_trailers = enable_trailers
        self.mode = NO_BODY
        self.remaining = 0

    def start(self, mode: int, length: int = 0) -> None:
        self.mode = mode
        self.remaining = length

    def data(self, data: bytes) -> bytes:
        mode = self.mode
        if mode == LENGTH:
            size = len(data)
            if size > self.remaining:
                raise LocalProtocolError(
                    f"{size} body bytes exceed the {self.remaining} left of content-length"
                )
            self.remaining -= size
            return data
        if mode == CHUNKED:
            if not data:
                return b""
            return b"".join((b"%x\r\n" % len(data), data, b"\r\n"))
        if mode == UNTIL_CLOSE or not data:
            return data
        raise LocalProtocolError("this message cannot have a body")

    def end(self, trailers: Headers) -> bytes:
        mode = self.mode
        self.mode = NO_BODY
        if mode == CHUNKED:
            if trailers and self.enable_trailers:
                return encode_trailers(trailers)
            return b"0\r\n\r\n"
        if mode == LENGTH and self.remaining:
            raise LocalProtocolError(f"body ended {self.remaining} bytes short of content-length")
        return b""
