"""Local replies and Envoy's words, without I/O."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydp.http import RemoteProtocolError
from pydp.proxy.local_reply import (
    codec_error_body,
    grpc_reply,
    grpc_status_for,
    is_grpc,
    percent_encode,
    reset_body,
    reset_status,
    text_reply,
)
from pydp.upstream import ResetReason


def test_text_reply_with_a_body() -> None:
    extra = [(b"x-envoy-overloaded", b"true")]
    assert text_reply(503, b"no healthy upstream", extra) == [
        (b":status", b"503"),
        (b"x-envoy-overloaded", b"true"),
        (b"content-length", b"19"),
        (b"content-type", b"text/plain"),
    ]


def test_text_reply_keeps_a_given_content_type() -> None:
    headers = text_reply(200, b"{}", [(b"content-type", b"application/json")])
    assert headers == [
        (b":status", b"200"),
        (b"content-type", b"application/json"),
        (b"content-length", b"2"),
    ]


def test_text_reply_without_a_body() -> None:
    assert text_reply(404, b"") == [(b":status", b"404")]


def test_grpc_reply() -> None:
    extra = [(b"x-envoy-attempt-count", b"1"), (b"content-length", b"5")]
    assert grpc_reply(503, b"no healthy upstream", extra) == [
        (b":status", b"200"),
        (b"x-envoy-attempt-count", b"1"),
        (b"content-type", b"application/grpc"),
        (b"grpc-status", b"14"),
        (b"grpc-message", b"no healthy upstream"),
    ]
    assert grpc_reply(503, b"") == [
        (b":status", b"200"),
        (b"content-type", b"application/grpc"),
        (b"grpc-status", b"14"),
    ]


@pytest.mark.parametrize(
    ("http", "grpc"),
    [
        (400, 13),
        (401, 16),
        (403, 7),
        (404, 12),
        (429, 14),
        (502, 14),
        (503, 14),
        (504, 14),
        (200, 2),
        (500, 2),
    ],
)
def test_grpc_status_mapping(http: int, grpc: int) -> None:
    assert grpc_status_for(http) == grpc


@pytest.mark.parametrize(
    ("value", "grpc"),
    [
        (b"application/grpc", True),
        (b"application/grpc+proto", True),
        (b"application/grpc;charset=utf-8", True),
        (b"application/grpc-web", False),
        (b"application/json", False),
    ],
)
def test_is_grpc(value: bytes, grpc: bool) -> None:
    assert is_grpc([(b":method", b"POST"), (b"content-type", value)]) is grpc


@given(st.binary())
def test_percent_encoding_round_trips(message: bytes) -> None:
    encoded = percent_encode(message)
    assert all(0x20 <= b <= 0x7E for b in encoded)
    assert unquote_to_bytes(encoded) == message


def test_reset_bodies() -> None:
    assert reset_body(ResetReason.CONNECTION_FAILURE, False) == (
        b"upstream connect error or disconnect/reset before headers. "
        b"reset reason: remote connection failure"
    )
    assert reset_body(ResetReason.CONNECTION_TERMINATION, True) == (
        b"upstream connect error or disconnect/reset before headers. "
        b"retried and the latest reset reason: connection termination"
    )
    assert reset_status(ResetReason.PROTOCOL_ERROR) == 502
    assert reset_status(ResetReason.REMOTE_RESET) == 503


@pytest.mark.parametrize(
    ("status", "details", "body"),
    [
        (400, "http1.codec_error", b"Bad Request"),
        (431, "http1.headers_too_large", b"Request Header Fields Too Large"),
        (400, "missing_host_header", b""),
        (404, "route_not_found", b""),
    ],
)
def test_codec_error_bodies(status: int, details: str, body: bytes) -> None:
    assert codec_error_body(RemoteProtocolError("x", status=status, details=details)) == body
