"""The TLS inspector's question on bytes: real ClientHellos, fed whole and piece by piece."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydp.tls.client_hello import ClientHello, Detection, inspect


def client_hello(server_name: str | None = None, alpn: tuple[str, ...] = ()) -> bytes:
    """The first flight of a real TLS client (Python's OpenSSL)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


HELLO = client_hello("outbound_.80_._.web.shop.svc.cluster.local", ("h2", "http/1.1"))


def test_a_client_hello_is_tls_with_its_server_name_and_alpn() -> None:
    result = inspect(HELLO)
    assert result.detection is Detection.TLS
    assert result.hello == ClientHello(
        "outbound_.80_._.web.shop.svc.cluster.local", ("h2", "http/1.1")
    )
    assert inspect(client_hello()).hello == ClientHello()


def test_every_proper_prefix_needs_more_and_the_whole_decides() -> None:
    for end in range(len(HELLO)):
        assert inspect(HELLO[:end]).detection is Detection.NEED_MORE, end
    assert inspect(HELLO + b"more bytes").detection is Detection.TLS


def test_a_client_hello_split_over_records_is_reassembled() -> None:
    body = HELLO[5:]
    half = len(body) // 2
    records = b"".join(
        b"\x16\x03\x01" + len(part).to_bytes(2, "big") + part for part in (body[:half], body[half:])
    )
    assert inspect(records).hello == inspect(HELLO).hello
    assert inspect(records[: 5 + half + 3]).detection is Detection.NEED_MORE


@pytest.mark.parametrize(
    "data",
    [
        b"G",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"\x16\x02",  # not TLS's record version
        b"\x16\x03\x09",
        b"\x16\x03\x01\x00\x00",  # an empty record
        b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",  # a ServerHello
    ],
)
def test_other_openings_are_not_tls_as_soon_as_a_byte_says_so(data: bytes) -> None:
    assert inspect(data).detection is Detection.NOT_TLS


def test_a_malformed_client_hello_is_not_tls() -> None:
    broken = bytearray(HELLO)
    broken[5 + 4 + 34] = 200  # a session id longer than the message
    assert inspect(bytes(broken)).detection is Detection.NOT_TLS


def test_a_client_hello_longer_than_the_limit_is_too_large() -> None:
    assert inspect(HELLO, max_size=100).detection is Detection.TOO_LARGE
    huge = b"\x16\x03\x01\x40\x00\x01\x01\x00\x00"  # announces a 64 KiB ClientHello
    assert inspect(huge).detection is Detection.TOO_LARGE
    assert inspect(HELLO, max_size=len(HELLO)).detection is Detection.TLS


@given(st.binary(max_size=300))
def test_any_bytes_get_an_answer(data: bytes) -> None:
    assert isinstance(inspect(data).detection, Detection)


@given(st.binary(max_size=200))
def test_bytes_after_a_complete_client_hello_change_nothing(tail: bytes) -> None:
    assert inspect(HELLO + tail) == inspect(HELLO)
