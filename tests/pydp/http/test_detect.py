"""Protocol detection from a downstream connection's first bytes."""

from __future__ import annotations

import pytest

from pydp.http import H2_PREFACE, detect_protocol, protocol_from_alpn


def test_full_preface_is_h2() -> None:
    assert detect_protocol(H2_PREFACE) == "h2"
    assert detect_protocol(H2_PREFACE + b"\x00\x00\x00\x04") == "h2"


@pytest.mark.parametrize("size", range(len(H2_PREFACE)))
def test_a_prefix_of_the_preface_needs_more_bytes(size: int) -> None:
    assert detect_protocol(H2_PREFACE[:size]) is None


@pytest.mark.parametrize(
    "data",
    [b"GET / HTTP/1.1\r\n", b"G", b"PRI * HTTP/1.1\r\n", b"PRX", b"PRI * HTTP/2.0\r\n\r\nXX"],
)
def test_anything_else_is_http1(data: bytes) -> None:
    assert detect_protocol(data) == "http/1.1"


def test_alpn() -> None:
    assert protocol_from_alpn("h2") == "h2"
    assert protocol_from_alpn("http/1.1") == "http/1.1"
    assert protocol_from_alpn(None) == "http/1.1"
