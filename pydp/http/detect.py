"""Which protocol a downstream connection speaks, from its first bytes.

An HTTP/2 client with prior knowledge (cleartext h2c) opens with the fixed
preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`; anything else is HTTP/1.x, as
Envoy's automatic codec decides. Over TLS the ALPN result decides instead.
"""

from __future__ import annotations

from typing import Literal

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

Protocol = Literal["h2", "http/1.1"]


def detect_protocol(data: bytes) -> Protocol | None:
    """ "h2", "http/1.1", or None when `data` is a proper prefix of the preface
    (read more and ask again). Feed all of `data` to the chosen connection."""
    size = min(len(data), len(H2_PREFACE))
    if data[:size] != H2_PREFACE[:size]:
        return "http/1.1"
    if size == len(H2_PREFACE):
        return "h2"
    return None


def protocol_from_alpn(alpn: str | None) -> Protocol:
    """The protocol for a TLS connection's negotiated ALPN protocol."""
    return "h2" if alpn == "h2" else "http/1.1"
