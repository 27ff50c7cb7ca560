"""HTTP/1.1 server side: malformed requests, smuggling attempts and limits."""

from __future__ import annotations

import pytest

from pydp.http import (
    Data,
    EndOfMessage,
    H1ServerConnection,
    Limits,
    RemoteProtocolError,
    Request,
    Response,
)
from tests.pydp.http.helpers import Chunkings

CASES = [
    # (request, status, details)
    (b"GARBAGE\r\n\r\n", 400, "http1.codec_error"),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400, "http1.codec_error"),
    (b"GET /\r\n\r\n", 426, "low_version"),
    (b"GET / HTTP/1.1\r\n\r\n", 400, "missing_host_header"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "http1.codec_error"),
    (b"GET nope HTTP/1.1\r\nHost: a\r\n\r\n", 400, "http1.invalid_url"),
    (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "http1.invalid_url"),
    (b"GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "http1.invalid_url"),
    (b"GET http://u@a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "http1.invalid_url"),
    (b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", 426, "low_version"),
    (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 404, "route_not_found"),
    # Smuggling: both framings, duplicate lengths, odd codings, odd chunk sizes.
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        "http1.content_length_and_chunked_not_allowed",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        400,
        "http1.content_length_and_chunked_not_allowed",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        400,
        "http1.codec_error",
    ),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", 400, "http1.codec_error"),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, "http1.codec_error"),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        501,
        "http1.invalid_transfer_encoding",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n",
        400,  # llhttp refuses a repeated chunked before pydp's own check.
        "http1.codec_error",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
        "http1.codec_error",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
        400,
        "http1.codec_error",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        400,
        "http1.codec_error",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
        400,
        "http1.codec_error",
    ),
    # Line endings and folding.
    (b"GET / HTTP/1.1\nHost: a\n\n", 400, "http1.codec_error"),
    (b"GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n", 400, "http1.codec_error"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n", 400, "http1.codec_error"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", 400, "http1.codec_error"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400, "http1.codec_error"),
]


@pytest.mark.parametrize(("data", "status", "details"), CASES)
def test_malformed_requests(data: bytes, status: int, details: str, chunkings: Chunkings) -> None:
    for chunks in chunkings(data):
        conn = H1ServerConnection()
        with pytest.raises(RemoteProtocolError) as info:
            for chunk in chunks:
                conn.receive_data(chunk)
        assert info.value.error_status_hint == status, info.value
        assert info.value.details == details, info.value
        assert info.value.stream_id == 1


def test_an_error_response_can_be_sent_and_closes() -> None:
    conn = H1ServerConnection()
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(b"BAD\r\n\r\n")
    stream_id = info.value.stream_id
    assert stream_id is not None
    head = conn.send(Response(stream_id, 400, [(b"content-length", b"11")]))
    assert head == b"HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\nconnection: close\r\n\r\n"
    conn.send(Data(stream_id, b"Bad Request"))
    conn.send(EndOfMessage(stream_id))
    assert conn.should_close
    assert conn.receive_data(b"GET / HTTP/1.1\r\n\r\n") == []


def test_error_after_the_response_started_gives_no_stream() -> None:
    conn = H1ServerConnection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    conn.send(Response(1, 200, []))
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(b"nothex\r\n")
    assert info.value.stream_id is None
    assert conn.should_close


def test_error_in_a_pipelined_request_waits_for_the_previous_response() -> None:
    conn = H1ServerConnection()
    events = conn.receive_data(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    assert [type(e) for e in events] == [Request, EndOfMessage]
    conn.send(Response(1, 200, [], end_stream=True))
    conn.send(EndOfMessage(1))
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_events()
    assert info.value.details == "missing_host_header"
    assert info.value.stream_id == 3
    conn.send(Response(3, 400, [], end_stream=True))
    conn.send(EndOfMessage(3))
    assert conn.should_close


def test_error_in_the_body_of_a_queued_request_drops_its_events() -> None:
    conn = H1ServerConnection()
    conn.receive_data(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\nzz\r\n"
    )
    conn.send(Response(1, 200, [], end_stream=True))
    conn.send(EndOfMessage(1))
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_events()
    assert info.value.stream_id is not None


def test_too_many_headers() -> None:
    headers = b"".join(b"X-%d: v\r\n" % i for i in range(100))
    with pytest.raises(RemoteProtocolError) as info:
        H1ServerConnection().receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\n")
    assert (info.value.error_status_hint, info.value.details) == (431, "http1.too_many_headers")
    events = H1ServerConnection(limits=Limits(max_headers_count=101)).receive_data(
        b"GET / HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\n"
    )
    assert len(events) == 2


def test_headers_too_large_at_envoys_default() -> None:
    big = b"x" * (60 * 1024)
    with pytest.raises(RemoteProtocolError) as info:
        H1ServerConnection().receive_data(
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + big + b"\r\n\r\n"
        )
    assert (info.value.error_status_hint, info.value.details) == (431, "http1.headers_too_large")
    fits = b"x" * (60 * 1024 - 100)
    events = H1ServerConnection().receive_data(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + fits + b"\r\n\r\n"
    )
    assert len(events) == 2


def test_url_counts_towards_the_header_limit_and_its_own() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        H1ServerConnection(limits=Limits(max_headers_bytes=100)).receive_data(
            b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
        )
    assert info.value.error_status_hint == 431
    with pytest.raises(RemoteProtocolError) as info:
        H1ServerConnection(limits=Limits(max_url_bytes=50)).receive_data(
            b"GET /" + b"a" * 60 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
        )
    assert info.value.error_status_hint == 414


def test_drip_fed_header_line_is_bounded() -> None:
    conn = H1ServerConnection(limits=Limits(max_headers_bytes=1000))
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
    with pytest.raises(RemoteProtocolError) as info:
        for _ in range(100):
            conn.receive_data(b"y" * 100)
    assert info.value.error_status_hint == 431


def test_trailers_count_against_the_limits() -> None:
    trailers = b"".join(b"T-%d: v\r\n" % i for i in range(101))
    with pytest.raises(RemoteProtocolError) as info:
        H1ServerConnection().receive_data(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
            + trailers
            + b"\r\n"
        )
    assert info.value.error_status_hint == 431


def test_body_limit_by_content_length_and_by_chunks() -> None:
    limits = Limits(max_body_bytes=10)
    with pytest.raises(RemoteProtocolError) as info:
        H1ServerConnection(limits=limits).receive_data(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
        )
    assert (info.value.error_status_hint, info.value.stream_id) == (413, 1)
    conn = H1ServerConnection(limits=limits)
    events = conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n"
    )
    assert events[1] == Data(1, b"12345678")
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(b"8\r\n12345678\r\n")
    assert (info.value.error_status_hint, info.value.stream_id) == (413, 1)
