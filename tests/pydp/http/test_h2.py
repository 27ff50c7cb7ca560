"""HTTP/2 connections: events both ways, trailers, resets, GOAWAY, limits."""

from __future__ import annotations

import pytest
from h2.errors import ErrorCodes

from pydp.http import (
    H2_PREFACE,
    ConnectionClosed,
    Data,
    EndOfMessage,
    ExpectContinue,
    H2ClientConnection,
    H2Options,
    H2ServerConnection,
    Headers,
    InformationalResponse,
    Limits,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    Response,
    StreamError,
    StreamReset,
)
from tests.pydp.http.helpers import Chunkings, H2Pair, feed


def request_headers(method: bytes = b"GET", *extra: tuple[bytes, bytes]) -> Headers:
    return [
        (b":method", method),
        (b":scheme", b"https"),
        (b":authority", b"svc.ns"),
        (b":path", b"/p?q"),
        *extra,
    ]


def test_grpc_style_exchange_with_trailers_both_ways() -> None:
    pair = H2Pair()
    sid = pair.client.open_stream()
    assert sid == 1
    pair.client_send(
        Request(sid, request_headers(b"POST", (b"te", b"trailers"))),
        Data(sid, b"\x00\x00\x00\x00\x02hi"),
        EndOfMessage(sid, [(b"x-client-trailer", b"1")]),
    )
    _, server_events = pair.pump()
    assert server_events == [
        Request(sid, request_headers(b"POST", (b"te", b"trailers"))),
        Data(sid, b"\x00\x00\x00\x00\x02hi"),
        EndOfMessage(sid, [(b"x-client-trailer", b"1")]),
    ]
    pair.server_ack(sid, 7)
    pair.server_send(
        Response(sid, 200, [(b"content-type", b"application/grpc")]),
        Data(sid, b"reply"),
        EndOfMessage(sid, [(b"grpc-status", b"0"), (b"grpc-message", b"")]),
    )
    client_events, _ = pair.pump()
    assert client_events == [
        Response(sid, 200, [(b":status", b"200"), (b"content-type", b"application/grpc")]),
        Data(sid, b"reply"),
        EndOfMessage(sid, [(b"grpc-status", b"0"), (b"grpc-message", b"")]),
    ]


def test_server_input_cut_anywhere(chunkings: Chunkings) -> None:
    client = H2ClientConnection()
    sid = client.open_stream()
    wire = client.data_to_send()
    wire += client.send(Request(sid, request_headers(b"POST")))
    wire += client.send(Data(sid, b"body"))
    wire += client.send(EndOfMessage(sid, [(b"grpc-status", b"0")]))
    for chunks in chunkings(wire):
        assert feed(H2ServerConnection(), chunks) == [
            Request(sid, request_headers(b"POST")),
            Data(sid, b"body"),
            EndOfMessage(sid, [(b"grpc-status", b"0")]),
        ]


def test_headers_only_exchange_and_pseudo_header_order() -> None:
    pair = H2Pair()
    sid = pair.client.open_stream()
    # Chrome's order (:method :authority :scheme :path) comes out in pydp's order.
    chrome = [
        (b":method", b"GET"),
        (b":authority", b"svc.ns"),
        (b":scheme", b"https"),
        (b":path", b"/p?q"),
        (b"accept", b"*/*"),
        (b"expect", b"100-continue"),
    ]
    pair.client_send(Request(sid, chrome, end_stream=True), EndOfMessage(sid))
    _, events = pair.pump()
    assert events == [
        Request(sid, [*request_headers(), (b"accept", b"*/*"), (b"expect", b"100-continue")], True),
        ExpectContinue(sid),
        EndOfMessage(sid),
    ]
    pair.server_send(
        InformationalResponse(sid, 100, []),
        Response(sid, 204, [(b":status", b"999"), (b"x", b"y")], end_stream=True),
        EndOfMessage(sid),
    )
    client_events, _ = pair.pump()
    assert client_events == [
        InformationalResponse(sid, 100, [(b":status", b"100")]),
        Response(sid, 204, [(b":status", b"204"), (b"x", b"y")], end_stream=True),
        EndOfMessage(sid),
    ]


def test_host_becomes_authority() -> None:
    pair = H2Pair()
    sid = pair.client.open_stream()
    headers = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b"host", b"h:1")]
    pair.client_send(Request(sid, headers, True))
    _, events = pair.pump()
    assert events[0] == Request(
        sid,
        [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"h:1"), (b":path", b"/")],
        True,
    )


def test_resets_both_ways() -> None:
    pair = H2Pair()
    first, second = pair.client.open_stream(), pair.client.open_stream()
    pair.client_send(Request(first, request_headers()), Request(second, request_headers()))
    pair.pump()
    pair.client_send(StreamReset(first, ErrorCodes.CANCEL))
    pair.server_send(StreamReset(second, ErrorCodes.REFUSED_STREAM))
    client_events, server_events = pair.pump()
    assert server_events == [StreamReset(first, ErrorCodes.CANCEL)]
    assert client_events == [StreamReset(second, ErrorCodes.REFUSED_STREAM)]
    # Sending on a stream the peer reset is dropped, not an error.
    assert pair.server.send(Data(first, b"late")) == b""


def test_goaway_lets_open_streams_finish_and_refuses_later_ones() -> None:
    pair = H2Pair()
    early = pair.client.open_stream()
    pair.client_send(Request(early, request_headers(), True))
    pair.pump()
    late = pair.client.open_stream()
    pair.client_send(Request(late, request_headers(), True))
    pair.to_client += pair.server.close()
    assert not pair.server.should_close
    client_events, server_events = pair.pump()
    # The server refuses the stream it saw after its GOAWAY; the client learns
    # from GOAWAY's last stream id that the late stream was never processed.
    assert server_events == []
    assert ConnectionClosed(0, early) in client_events
    assert StreamReset(late, ErrorCodes.REFUSED_STREAM) in client_events
    assert pair.client.available_streams == 0
    pair.server_send(
        Response(early, 200, [(b"content-length", b"2")]), Data(early, b"ok"), EndOfMessage(early)
    )
    client_events, _ = pair.pump()
    assert client_events == [
        Response(early, 200, [(b":status", b"200"), (b"content-length", b"2")]),
        Data(early, b"ok"),
        EndOfMessage(early),
    ]
    assert pair.server.should_close
    assert pair.client.should_close


def test_client_respects_max_concurrent_streams() -> None:
    pair = H2Pair(server=H2ServerConnection(options=H2Options(max_concurrent_streams=2)))
    client = pair.client
    assert client.available_streams == 2
    a, b = client.open_stream(), client.open_stream()
    assert client.available_streams == 0
    with pytest.raises(LocalProtocolError):
        client.open_stream()
    pair.client_send(Request(a, request_headers(), True), Request(b, request_headers(), True))
    pair.pump()
    assert client.available_streams == 0
    pair.server_send(Response(a, 200, [], end_stream=True), EndOfMessage(a))
    pair.pump()
    assert client.available_streams == 1


@pytest.mark.parametrize(
    ("headers", "status", "details"),
    [
        ([(b":method", b"CONNECT"), (b":authority", b"a:443")], 404, "route_not_found"),
        (
            [*request_headers(), *[(b"x-%d" % i, b"v") for i in range(100)]],
            431,
            "http2.too_many_headers",
        ),
        ([*request_headers(), (b"x-big", b"v" * 61440)], 431, "http2.headers_too_large"),
        ([*request_headers(b"POST"), (b"content-length", b"11")], 413, "request_payload_too_large"),
    ],
)
def test_unacceptable_requests_are_stream_errors(
    headers: Headers, status: int, details: str
) -> None:
    pair = H2Pair(server=H2ServerConnection(limits=Limits(max_body_bytes=10)))
    bad, good = pair.client.open_stream(), pair.client.open_stream()
    pair.client_send(Request(bad, headers, True), Request(good, request_headers(), True))
    _, events = pair.pump()
    error = events[0]
    assert isinstance(error, StreamError)
    assert (error.error.error_status_hint, error.error.details) == (status, details)
    assert error.error.stream_id == bad
    assert events[1:] == [Request(good, request_headers(), True), EndOfMessage(good)]
    pair.server_send(Response(bad, status, [], end_stream=True))
    client_events, _ = pair.pump()
    assert client_events[0] == Response(bad, status, [(b":status", str(status).encode())], True)


def test_body_over_the_limit_is_a_stream_error() -> None:
    pair = H2Pair(server=H2ServerConnection(limits=Limits(max_body_bytes=10)))
    sid = pair.client.open_stream()
    pair.client_send(
        Request(sid, request_headers(b"POST")),
        Data(sid, b"x" * 8),
        Data(sid, b"y" * 8),
        EndOfMessage(sid),
    )
    _, events = pair.pump()
    assert [type(e) for e in events] == [Request, Data, StreamError]
    error = events[2]
    assert isinstance(error, StreamError)
    assert error.error.error_status_hint == 413


def test_malformed_response_is_a_stream_error_and_reset_on_the_client() -> None:
    pair = H2Pair(client=H2ClientConnection(limits=Limits(max_headers_count=3)))
    sid = pair.client.open_stream()
    pair.client_send(Request(sid, request_headers(), True))
    pair.pump()
    pair.server_send(Response(sid, 200, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]))
    client_events, server_events = pair.pump()
    assert len(client_events) == 1
    error = client_events[0]
    assert isinstance(error, StreamError)
    assert error.error.error_status_hint == 502
    assert server_events == [StreamReset(sid, ErrorCodes.PROTOCOL_ERROR)]


def test_garbage_is_a_connection_error_with_goaway() -> None:
    server = H2ServerConnection()
    server.data_to_send()
    with pytest.raises(RemoteProtocolError) as info:
        server.receive_data(b"GET / HTTP/1.1\r\n\r\n")
    assert info.value.error_status_hint == 400
    assert info.value.stream_id is None
    assert server.should_close
    assert server.receive_data(H2_PREFACE) == []


def test_stream_and_connection_level_violations() -> None:
    pair = H2Pair()
    sid = pair.client.open_stream()
    pair.client_send(Request(sid, request_headers(), True))
    pair.pump()
    # DATA on a stream the client already ended: h2 resets that stream.
    events = pair.server.receive_data(b"\x00\x00\x01\x00\x00\x00\x00\x00\x01x")
    assert events == [StreamReset(sid, ErrorCodes.STREAM_CLOSED)]
    assert pair.server.data_to_send()[3] == 0x3  # RST_STREAM
    # DATA on stream 0: a connection error, answered with GOAWAY.
    with pytest.raises(RemoteProtocolError):
        pair.server.receive_data(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
    assert pair.server.data_to_send()[3] == 0x7  # GOAWAY
    assert pair.server.should_close


def test_eof_resets_open_streams() -> None:
    pair = H2Pair()
    sid = pair.client.open_stream()
    pair.client_send(Request(sid, request_headers()))
    pair.pump()
    assert pair.server.receive_data(b"") == [
        StreamReset(sid, ErrorCodes.CANCEL),
        ConnectionClosed(),
    ]
    assert pair.server.should_close
    assert pair.client.receive_data(b"") == [
        StreamReset(sid, ErrorCodes.INTERNAL_ERROR),
        ConnectionClosed(),
    ]


def test_send_errors_are_local() -> None:
    pair = H2Pair()
    with pytest.raises(LocalProtocolError):
        pair.server.send(Request(2, request_headers(), True))
    with pytest.raises(LocalProtocolError):
        pair.client.send(Response(1, 200, []))
    sid = pair.client.open_stream()
    pair.client_send(Request(sid, request_headers(), True))
    pair.pump()
    with pytest.raises(LocalProtocolError):
        pair.server.send(InformationalResponse(sid, 101, []))
    with pytest.raises(LocalProtocolError):
        pair.server.send(Response(sid, 42, []))
    pair.server_send(Response(sid, 200, [], end_stream=True))
    with pytest.raises(LocalProtocolError):
        pair.server.send(EndOfMessage(sid, [(b"late", b"trailer")]))
