"""HTTP/1.1 client side: serializing requests, parsing responses, reuse."""

from __future__ import annotations

import pytest
from h2.errors import ErrorCodes

from pydp.http import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    H1ClientConnection,
    H1Options,
    InformationalResponse,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    Response,
    StreamReset,
)
from tests.pydp.http.helpers import Chunkings, feed


def request(
    method: bytes = b"GET", path: bytes = b"/", *extra: tuple[bytes, bytes]
) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", method),
        (b":scheme", b"http"),
        (b":authority", b"up.svc:8080"),
        (b":path", path),
        *extra,
    ]


def started(method: bytes = b"GET") -> H1ClientConnection:
    conn = H1ClientConnection()
    stream_id = conn.open_stream()
    conn.send(Request(stream_id, request(method), end_stream=True))
    conn.send(EndOfMessage(stream_id))
    return conn


def test_bodiless_get_has_no_framing_headers() -> None:
    conn = H1ClientConnection()
    stream_id = conn.open_stream()
    head = conn.send(Request(stream_id, request(b"GET", b"/x?y", (b"accept", b"*/*")), True))
    assert head == b"GET /x?y HTTP/1.1\r\nhost: up.svc:8080\r\naccept: */*\r\n\r\n"
    assert conn.send(EndOfMessage(stream_id)) == b""


def test_bodiless_post_says_content_length_zero() -> None:
    conn = H1ClientConnection()
    stream_id = conn.open_stream()
    head = conn.send(Request(stream_id, request(b"POST"), end_stream=True))
    assert head == b"POST / HTTP/1.1\r\nhost: up.svc:8080\r\ncontent-length: 0\r\n\r\n"


def test_streamed_body_is_chunked_with_trailers() -> None:
    conn = H1ClientConnection(options=H1Options(enable_trailers=True))
    stream_id = conn.open_stream()
    head = conn.send(Request(stream_id, request(b"POST", b"/", (b"te", b"trailers"))))
    assert head.endswith(b"te: trailers\r\ntransfer-encoding: chunked\r\n\r\n")
    assert conn.send(Data(stream_id, b"hello")) == b"5\r\nhello\r\n"
    end = conn.send(EndOfMessage(stream_id, [(b"grpc-status", b"0")]))
    assert end == b"0\r\ngrpc-status: 0\r\n\r\n"


def test_pseudo_headers_in_any_order() -> None:
    conn = H1ClientConnection()
    stream_id = conn.open_stream()
    headers = [(b":path", b"/p"), (b":authority", b"h"), (b":method", b"PUT"), (b"x", b"1")]
    head = conn.send(Request(stream_id, headers, end_stream=True))
    assert head == b"PUT /p HTTP/1.1\r\nhost: h\r\nx: 1\r\ncontent-length: 0\r\n\r\n"
    with pytest.raises(LocalProtocolError, match="request without"):
        other = H1ClientConnection()
        other.send(Request(other.open_stream(), [(b":method", b"GET")], True))


def test_content_length_response(chunkings: Chunkings) -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
    for chunks in chunkings(data):
        conn = started()
        assert feed(conn, chunks) == [
            Response(
                1,
                200,
                [(b":status", b"200"), (b"content-type", b"text/plain"), (b"content-length", b"5")],
            ),
            Data(1, b"hello"),
            EndOfMessage(1),
        ]
        assert conn.available_streams == 1


def test_chunked_response_with_trailers(chunkings: Chunkings) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nGrpc-Status: 0\r\n\r\n"
    )
    for chunks in chunkings(data):
        conn = H1ClientConnection(options=H1Options(enable_trailers=True))
        stream_id = conn.open_stream()
        conn.send(Request(stream_id, request(), True))
        conn.send(EndOfMessage(stream_id))
        events = feed(conn, chunks)
        assert events[1:] == [Data(1, b"abc"), EndOfMessage(1, [(b"grpc-status", b"0")])]
        assert conn.available_streams == 1


def test_informational_responses_are_surfaced(chunkings: Chunkings) -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
    )
    for chunks in chunkings(data):
        conn = started()
        assert feed(conn, chunks) == [
            InformationalResponse(1, 100, [(b":status", b"100")]),
            InformationalResponse(1, 103, [(b":status", b"103"), (b"link", b"</s>")]),
            Response(1, 204, [(b":status", b"204")], end_stream=True),
            EndOfMessage(1),
        ]


def test_read_until_close_body_ends_at_eof() -> None:
    conn = started()
    events = conn.receive_data(b"HTTP/1.1 200 OK\r\n\r\nsome")
    assert events[0] == Response(1, 200, [(b":status", b"200")])
    assert events[1:] == [Data(1, b"some")]
    assert conn.receive_data(b" more") == [Data(1, b" more")]
    assert conn.receive_data(b"") == [EndOfMessage(1), ConnectionClosed()]
    assert conn.available_streams == 0


def test_head_response_has_no_body_and_the_connection_is_reused(chunkings: Chunkings) -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"
    for chunks in chunkings(data):
        conn = started(b"HEAD")
        events = feed(conn, chunks)
        assert events == [
            Response(1, 200, [(b":status", b"200"), (b"content-length", b"42")], True),
            EndOfMessage(1),
        ]
        assert conn.available_streams == 1
        stream_id = conn.open_stream()
        conn.send(Request(stream_id, request(), True))
        conn.send(EndOfMessage(stream_id))
        events = conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        assert events[1:] == [Data(3, b"ok"), EndOfMessage(3)]


def test_head_with_interim_and_chunked_final() -> None:
    conn = started(b"HEAD")
    events = conn.receive_data(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert [type(e) for e in events] == [InformationalResponse, Response, EndOfMessage]
    assert conn.available_streams == 1


def test_304_has_no_body() -> None:
    conn = started()
    events = conn.receive_data(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")
    assert events[0] == Response(
        1, 304, [(b":status", b"304"), (b"content-length", b"10")], end_stream=True
    )
    assert events[1:] == [EndOfMessage(1)]


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_connection_not_reused_after_close(response: bytes) -> None:
    conn = started()
    assert [type(e) for e in conn.receive_data(response)] == [Response, EndOfMessage]
    assert conn.available_streams == 0
    assert conn.should_close
    with pytest.raises(LocalProtocolError):
        conn.open_stream()


def test_http10_keep_alive_response_is_reused() -> None:
    conn = started()
    conn.receive_data(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
    assert conn.available_streams == 1


def test_early_response_makes_the_connection_unusable() -> None:
    conn = H1ClientConnection()
    stream_id = conn.open_stream()
    conn.send(Request(stream_id, request(b"POST", b"/", (b"content-length", b"10"))))
    events = conn.receive_data(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
    assert [type(e) for e in events] == [Response, EndOfMessage]
    assert conn.should_close
    assert conn.available_streams == 0
    assert conn.send(Data(stream_id, b"0123456789")) == b""
    assert conn.send(EndOfMessage(stream_id)) == b""


@pytest.mark.parametrize(
    ("response", "details"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "http1.codec_error"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "http1.content_length_and_chunked_not_allowed",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "http1.invalid_transfer_encoding",
        ),
        (b"HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n", "http1.codec_error"),
        (b"HTTP/1.1 204 No\r\nContent-Length: 3\r\n\r\n", "http1.content_length_not_allowed"),
        (
            b"HTTP/1.1 100 Go\r\nTransfer-Encoding: chunked\r\n\r\n",
            "http1.content_length_not_allowed",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", "http1.codec_error"),
        (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "http1.codec_error"),
        (b"NOT HTTP\r\n\r\n", "http1.codec_error"),
    ],
)
def test_bad_responses_are_502(response: bytes, details: str) -> None:
    conn = started()
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(response)
    assert (info.value.error_status_hint, info.value.details) == (502, details)
    assert info.value.stream_id == 1
    assert conn.available_streams == 0
    assert conn.should_close


def test_data_while_idle_makes_the_connection_unusable() -> None:
    conn = H1ClientConnection()
    assert conn.receive_data(b"HTTP/1.1 200 OK\r\n\r\n") == []
    assert conn.should_close
    conn = started()
    events = conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert [type(e) for e in events] == [Response, EndOfMessage]
    assert conn.should_close


def test_eof_before_the_response_ends_resets_the_stream() -> None:
    conn = started()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert conn.receive_data(b"") == [
        StreamReset(1, ErrorCodes.INTERNAL_ERROR),
        ConnectionClosed(),
    ]
    idle = H1ClientConnection()
    assert idle.receive_data(b"") == [ConnectionClosed()]
    assert idle.available_streams == 0


def test_response_headers_limit() -> None:
    conn = started()
    big = b"".join(b"X-%d: v\r\n" % i for i in range(101))
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(b"HTTP/1.1 200 OK\r\n" + big + b"\r\n")
    assert info.value.error_status_hint == 502
    assert info.value.details == "http1.too_many_headers"


def test_one_request_at_a_time() -> None:
    conn = H1ClientConnection()
    stream_id = conn.open_stream()
    assert conn.available_streams == 0
    with pytest.raises(LocalProtocolError):
        conn.open_stream()
    with pytest.raises(LocalProtocolError):
        conn.send(Request(stream_id + 2, request(), True))
    with pytest.raises(LocalProtocolError, match="CONNECT"):
        conn.send(Request(stream_id, request(b"CONNECT"), True))
