"""HTTP/1.1 server side: parsing requests, framing responses, reuse rules."""

from __future__ import annotations

import pytest
from h2.errors import ErrorCodes

from pydp.http import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    ExpectContinue,
    H1Options,
    H1ServerConnection,
    InformationalResponse,
    LocalProtocolError,
    Request,
    Response,
    StreamReset,
)
from tests.pydp.http.helpers import Chunkings, feed

GET = (
    b"GET /items?id=7 HTTP/1.1\r\nHost: svc.ns:8080\r\nUser-Agent: t/1\r\n"
    b"Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\n"
    b"TE: trailers, deflate\r\nAccept: */*\r\nX-Multi: 1\r\nx-multi: 2\r\n\r\n"
)
POST = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
CHUNKED = (
    b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: abc\r\nGrpc-Status: 0\r\n\r\n"
)


def respond(conn: H1ServerConnection, stream_id: int, body: bytes = b"ok") -> bytes:
    headers = [(b"content-length", str(len(body)).encode())]
    out = conn.send(Response(stream_id, 200, headers))
    out += conn.send(Data(stream_id, body))
    return out + conn.send(EndOfMessage(stream_id))


def test_get_becomes_the_header_list_contract(chunkings: Chunkings) -> None:
    for chunks in chunkings(GET):
        events = feed(H1ServerConnection(), chunks)
        assert events == [
            Request(
                1,
                [
                    (b":method", b"GET"),
                    (b":scheme", b"http"),
                    (b":authority", b"svc.ns:8080"),
                    (b":path", b"/items?id=7"),
                    (b"user-agent", b"t/1"),
                    (b"te", b"trailers"),
                    (b"accept", b"*/*"),
                    (b"x-multi", b"1"),
                    (b"x-multi", b"2"),
                ],
                end_stream=True,
            ),
            EndOfMessage(1),
        ]


def test_content_length_body(chunkings: Chunkings) -> None:
    for chunks in chunkings(POST):
        events = feed(H1ServerConnection(), chunks)
        assert events[0] == Request(
            1,
            [
                (b":method", b"POST"),
                (b":scheme", b"http"),
                (b":authority", b"a"),
                (b":path", b"/up"),
                (b"content-length", b"11"),
            ],
        )
        assert events[1:] == [Data(1, b"hello world"), EndOfMessage(1)]


def test_chunked_body_and_trailers(chunkings: Chunkings) -> None:
    for chunks in chunkings(CHUNKED):
        events = feed(H1ServerConnection(options=H1Options(enable_trailers=True)), chunks)
        assert isinstance(events[0], Request)
        assert events[0].end_stream is False
        assert all(name != b"transfer-encoding" for name, _ in events[0].headers)
        assert events[1:] == [
            Data(1, b"hello world"),
            EndOfMessage(1, [(b"x-sum", b"abc"), (b"grpc-status", b"0")]),
        ]


def test_trailers_dropped_unless_enabled() -> None:
    events = H1ServerConnection().receive_data(CHUNKED)
    assert events[-1] == EndOfMessage(1, [])


def test_scheme_and_absolute_form() -> None:
    conn = H1ServerConnection(scheme=b"https")
    (request, _) = conn.receive_data(
        b"GET http://Other.example:81/p?q=1 HTTP/1.1\r\nHost: ignored\r\n\r\n"
    )
    assert isinstance(request, Request)
    assert request.headers[:4] == [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", b"Other.example:81"),
        (b":path", b"/p?q=1"),
    ]
    (options, _) = H1ServerConnection().receive_data(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
    assert isinstance(options, Request)
    assert options.headers[3] == (b":path", b"*")


def test_header_values_lose_surrounding_whitespace() -> None:
    (request, _) = H1ServerConnection().receive_data(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad:   v  w \t \r\n\r\n"
    )
    assert isinstance(request, Request)
    assert request.headers[4] == (b"x-pad", b"v  w")


def test_pipelined_requests_wait_for_the_previous_response() -> None:
    conn = H1ServerConnection()
    events = conn.receive_data(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
        b"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    assert [type(e) for e in events] == [Request, EndOfMessage]
    assert not conn.wants_data
    assert conn.next_events() == []
    respond(conn, 1)
    second = conn.next_events()
    assert [type(e) for e in second] == [Request, Data, EndOfMessage]
    assert isinstance(second[0], Request)
    assert second[0].stream_id == 3
    respond(conn, 3)
    third = conn.next_events()
    assert isinstance(third[0], Request)
    assert third[0].headers[3] == (b":path", b"/3")
    respond(conn, 5)
    assert conn.wants_data
    assert not conn.should_close


def test_response_framing_content_length_chunked_and_empty() -> None:
    conn = H1ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    head = conn.send(Response(1, 200, [(b"x-a", b"1"), (b"connection", b"nope")]))
    assert head == b"HTTP/1.1 200 OK\r\nx-a: 1\r\ntransfer-encoding: chunked\r\n\r\n"
    assert conn.send(Data(1, b"abc")) == b"3\r\nabc\r\n"
    assert conn.send(Data(1, b"")) == b""
    assert conn.send(EndOfMessage(1)) == b"0\r\n\r\n"
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert conn.next_events() == []
    head = conn.send(Response(3, 404, [(b":status", b"404")], end_stream=True))
    assert head == b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    assert conn.send(EndOfMessage(3)) == b""
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert conn.send(Response(5, 204, [], end_stream=True)) == b"HTTP/1.1 204 No Content\r\n\r\n"


def test_chunked_response_trailers_when_enabled() -> None:
    conn = H1ServerConnection(options=H1Options(enable_trailers=True))
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.send(Response(1, 200, []))
    end = conn.send(EndOfMessage(1, [(b"grpc-status", b"0"), (b"content-length", b"9")]))
    assert end == b"0\r\ngrpc-status: 0\r\n\r\n"


def test_head_response_has_no_body() -> None:
    conn = H1ServerConnection()
    conn.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    head = conn.send(Response(1, 200, [(b"content-length", b"1234")]))
    assert head == b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"
    with pytest.raises(LocalProtocolError):
        conn.send(Data(1, b"x"))
    assert conn.send(EndOfMessage(1)) == b""


def test_body_must_match_content_length() -> None:
    conn = H1ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.send(Response(1, 200, [(b"content-length", b"3")]))
    with pytest.raises(LocalProtocolError, match="exceed"):
        conn.send(Data(1, b"abcd"))
    conn.send(Data(1, b"ab"))
    with pytest.raises(LocalProtocolError, match="short"):
        conn.send(EndOfMessage(1))


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-evil", b"a\r\nSet-Cookie: b")],
        [(b"x-evil\r\nset-cookie", b"b")],
        [(b"x-evil", b"a\nb")],
        [(b"content-length", b"1"), (b"content-length", b"2")],
        [(b"content-length", b"-1")],
    ],
)
def test_unsafe_response_headers_are_refused(headers: list[tuple[bytes, bytes]]) -> None:
    conn = H1ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(LocalProtocolError):
        conn.send(Response(1, 200, headers))


def test_events_for_other_streams_are_refused() -> None:
    conn = H1ServerConnection()
    with pytest.raises(LocalProtocolError):
        conn.send(Response(1, 200, []))
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(LocalProtocolError):
        conn.send(Response(3, 200, []))
    with pytest.raises(LocalProtocolError):
        conn.send(Data(1, b"x"))
    with pytest.raises(LocalProtocolError):
        conn.send(Response(1, 103, []))


def test_connection_close_request_ends_the_connection() -> None:
    conn = H1ServerConnection()
    events = conn.receive_data(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /next HTTP/1.1\r\n\r\n"
    )
    assert [type(e) for e in events] == [Request, EndOfMessage]
    head = conn.send(Response(1, 200, [], end_stream=True))
    assert head.endswith(b"connection: close\r\n\r\n")
    assert not conn.should_close
    conn.send(EndOfMessage(1))
    assert conn.should_close
    assert conn.next_events() == []


def test_http10_when_accepted() -> None:
    options = H1Options(accept_http_10=True, default_host_for_http_10=b"default.local")
    conn = H1ServerConnection(options=options)
    (request, _) = conn.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    assert isinstance(request, Request)
    assert request.headers[2] == (b":authority", b"default.local")
    assert conn.protocol == "HTTP/1.0"
    head = conn.send(Response(1, 200, []))
    assert head == b"HTTP/1.0 200 OK\r\nconnection: close\r\n\r\n"
    assert conn.send(Data(1, b"until close")) == b"until close"
    conn.send(EndOfMessage(1))
    assert conn.should_close

    conn = H1ServerConnection(options=options)
    conn.receive_data(b"GET / HTTP/1.0\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n")
    head = conn.send(Response(1, 200, [(b"content-length", b"0")]))
    assert head == b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n"
    conn.send(EndOfMessage(1))
    assert not conn.should_close
    conn.receive_data(b"PUT / HTTP/1.0\r\nHost: h\r\nExpect: 100-continue\r\n\r\n")
    assert conn.send(InformationalResponse(3, 100, [])) == b""


def test_expect_100_continue() -> None:
    conn = H1ServerConnection()
    events = conn.receive_data(
        b"PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"
    )
    assert events[1] == ExpectContinue(1)
    assert isinstance(events[0], Request)
    assert (b"expect", b"100-Continue") in events[0].headers
    assert conn.send(InformationalResponse(1, 100, [])) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert conn.receive_data(b"abc") == [Data(1, b"abc"), EndOfMessage(1)]


def test_early_response_closes_the_connection() -> None:
    conn = H1ServerConnection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\npartial")
    head = conn.send(Response(1, 413, [], end_stream=True))
    assert head.startswith(b"HTTP/1.1 413 Payload Too Large\r\n") or head.startswith(
        b"HTTP/1.1 413 Request Entity Too Large\r\n"
    )
    conn.send(EndOfMessage(1))
    assert conn.should_close
    assert conn.receive_data(b"more body") == []


def test_websocket_upgrade_is_a_plain_request_then_close() -> None:
    conn = H1ServerConnection()
    events = conn.receive_data(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n\x81\x05hello"
    )
    assert len(events) == 2
    request = events[0]
    assert isinstance(request, Request)
    assert request.upgrade == b"websocket"
    assert request.end_stream
    names = [name for name, _ in request.headers]
    assert b"upgrade" not in names
    assert b"connection" not in names
    assert b"sec-websocket-version" in names
    head = conn.send(Response(1, 403, [], end_stream=True))
    assert b"connection: close" in head
    conn.send(EndOfMessage(1))
    assert conn.should_close


def test_upgrade_request_with_a_body_delivers_it_then_closes() -> None:
    conn = H1ServerConnection()
    events = conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Content-Length: 4\r\n\r\nab"
    )
    assert isinstance(events[0], Request)
    assert (events[0].upgrade, events[0].end_stream) == (b"websocket", False)
    assert conn.receive_data(b"cd\x81\x00tunnel") == [Data(1, b"cd"), EndOfMessage(1)]
    assert not conn.wants_data
    conn.send(Response(1, 403, [], end_stream=True))
    conn.send(EndOfMessage(1))
    assert conn.should_close


def test_h2c_upgrade_is_ignored_like_envoy(chunkings: Chunkings) -> None:
    data = (
        b"POST /a HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    for chunks in chunkings(data):
        conn = H1ServerConnection()
        events = feed(conn, chunks)
        request = events[0]
        assert isinstance(request, Request)
        assert request.upgrade is None
        names = [name for name, _ in request.headers]
        assert b"http2-settings" not in names
        assert b"upgrade" not in names
        assert events[1:] == [Data(1, b"hello"), EndOfMessage(1)]
        respond(conn, 1)
        second = conn.next_events()
        assert isinstance(second[0], Request)
        assert second[0].headers[3] == (b":path", b"/b")


def test_chunked_upgrade_request_body_is_parsed() -> None:
    conn = H1ServerConnection()
    events = conn.receive_data(
        b"POST /a HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    assert events[1:] == [Data(1, b"abc"), EndOfMessage(1)]


def test_eof_mid_request_resets_the_stream() -> None:
    conn = H1ServerConnection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    assert conn.receive_data(b"") == [StreamReset(1, ErrorCodes.CANCEL), ConnectionClosed()]
    assert conn.should_close
    assert conn.receive_data(b"") == []


def test_eof_when_idle_is_a_plain_close() -> None:
    conn = H1ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    respond(conn, 1)
    assert conn.receive_data(b"") == [ConnectionClosed()]


def test_drain_closes_after_the_response_in_progress() -> None:
    conn = H1ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert conn.close() == b""
    assert b"connection: close" in conn.send(Response(1, 200, [], end_stream=True))
    conn.send(EndOfMessage(1))
    assert conn.should_close
    idle = H1ServerConnection()
    idle.close()
    assert idle.should_close


def test_stream_reset_from_the_proxy_closes() -> None:
    conn = H1ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.send(Response(1, 200, []))
    assert conn.send(StreamReset(1, ErrorCodes.INTERNAL_ERROR)) == b""
    assert conn.should_close
