"""Is this the start of a TLS connection? The TLS inspector's question, answered on bytes.

`inspect(data)` looks at the first bytes a client sent (never consuming
them) and answers NEED_MORE, NOT_TLS, TOO_LARGE or TLS with the ClientHello's
server name and ALPN protocols, as Envoy's `envoy.filters.listener.tls_inspector`
does: TLS when the bytes are handshake records carrying a well-formed
ClientHello, not TLS as soon as a byte rules it out (a plaintext request is
told apart by its first byte), too large when the ClientHello is longer than
the inspector reads (64 KiB by default).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_CLIENT_HELLO = 64 * 1024
_HANDSHAKE = 22
_CLIENT_HELLO = 1
_MAX_RECORD = 1 << 14
_SERVER_NAME = 0
_ALPN = 16


class Detection(enum.Enum):
    NEED_MORE = "need more"
    TLS = "tls"
    NOT_TLS = "not tls"
    TOO_LARGE = "too large"


@dataclass(frozen=True, slots=True)
class ClientHello:
    server_name: str = ""
    alpn: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Inspection:
    detection: Detection
    hello: ClientHello | None = None


NEED_MORE = Inspection(Detection.NEED_MORE)
NOT_TLS = Inspection(Detection.NOT_TLS)
TOO_LARGE = Inspection(Detection.TOO_LARGE)


class _Malformed(Exception):
    pass


def inspect(data: bytes, max_size: int = MAX_CLIENT_HELLO) -> Inspection:
    """What the bytes a client sent first say about TLS (`data` is not consumed)."""
    handshake = bytearray()
    pos = 0
    while True:
        header = data[pos : pos + 5]
        if header[:1] and header[0] != _HANDSHAKE:
            return NOT_TLS
        if len(header) > 1 and header[1] != 3:
            return NOT_TLS
        if len(header) > 2 and header[2] > 4:
            return NOT_TLS
        if len(header) < 5:
            return TOO_LARGE if pos >= max_size else NEED_MORE
        length = int.from_bytes(header[3:5], "big")
        if not 0 < length <= _MAX_RECORD:
            return NOT_TLS
        fragment = data[pos + 5 : pos + 5 + length]
        handshake += fragment
        if len(handshake) >= 1 and handshake[0] != _CLIENT_HELLO:
            return NOT_TLS
        if len(handshake) >= 4:
            size = int.from_bytes(handshake[1:4], "big")
            if 4 + size > max_size:
                return TOO_LARGE
            if len(handshake) >= 4 + size:
                try:
                    return Inspection(Detection.TLS, _client_hello(bytes(handshake[4 : 4 + size])))
                except _Malformed:
                    return NOT_TLS
        if len(fragment) < length:
            return TOO_LARGE if len(data) >= max_size else NEED_MORE
        pos += 5 + length


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _Malformed
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> _Reader:
        return _Reader(self.take(self.number(length_bytes)))

    @property
    def done(self) -> bool:
        return self.pos == len(self.data)


def _client_hello(body: bytes) -> ClientHello:
    r = _Reader(body)
    r.take(2 + 32)  # legacy_version, random
    if len(r.vector(1).data) > 32:  # legacy_session_id
        raise _Malformed
    suites = r.vector(2).data
    if not suites or len(suites) % 2:
        raise _Malformed
    if not r.vector(1).data:  # legacy_compression_methods
        raise _Malformed
    if r.done:
        return ClientHello()
    extensions = r.vector(2)
    if not r.done:
        raise _Malformed
    server_name, alpn = "", ()
    while not extensions.done:
        kind = extensions.number(2)
        content = extensions.vector(2)
        if kind == _SERVER_NAME:
            server_name = _server_name(content)
        elif kind == _ALPN:
            alpn = _alpn(content)
    return ClientHello(server_name, alpn)


def _server_name(content: _Reader) -> str:
    names = content.vector(2)
    while not names.done:
        kind = names.number(1)
        name = names.vector(2).data
        if kind == 0:
            return name.decode("ascii", "replace")
    return ""


def _alpn(content: _Reader) -> tuple[str, ...]:
    protocols = content.vector(2)
    out = []
    while not protocols.done:
        protocol = protocols.vector(1).data
        if not protocol:
            raise _Malformed
        out.append(protocol.decode("ascii", "replace"))
    return tuple(out)
