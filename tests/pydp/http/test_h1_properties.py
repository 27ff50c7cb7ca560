"""HTTP/1.1 properties: any input parses or fails cleanly; serialize-then-parse
is the identity for requests and responses."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from pydp.http import (
    Data,
    EndOfMessage,
    Event,
    H1ClientConnection,
    H1Options,
    H1ServerConnection,
    Headers,
    RemoteProtocolError,
    Request,
    Response,
)
from tests.pydp.http.helpers import merge_data

RESERVED = {
    b"host",
    b"content-length",
    b"transfer-encoding",
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"upgrade",
    b"te",
    b"http2-settings",
    b"expect",
    b"trailer",
}
TOKEN = string.ascii_lowercase + string.digits + "!#$%&'*+.^_`|~-"

names = st.text(TOKEN, min_size=1, max_size=12).map(str.encode).filter(lambda n: n not in RESERVED)
edge = st.sampled_from([*range(0x21, 0x7F), *range(0x80, 0x100)])
inner = st.sampled_from([0x20, 0x09, *range(0x21, 0x7F), *range(0x80, 0x100)])
values = st.one_of(
    st.just(b""),
    st.tuples(edge, st.lists(inner, max_size=20), edge).map(lambda t: bytes([t[0], *t[1], t[2]])),
    edge.map(lambda c: bytes([c])),
)
header_lists = st.lists(st.tuples(names, values), max_size=12)
bodies = st.lists(st.binary(min_size=1, max_size=64), max_size=4)
paths = st.text(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/?%", max_size=30).map(
    lambda p: b"/" + p.encode()
)
methods = st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"])
framings = st.sampled_from(["length", "chunked", "none"])


def feed_all(
    conn: H1ServerConnection | H1ClientConnection, data: bytes, cuts: list[int]
) -> list[Event]:
    events: list[Event] = []
    start = 0
    for cut in sorted(cuts):
        events += conn.receive_data(data[start:cut])
        start = cut
    events += conn.receive_data(data[start:])
    return events


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_any_bytes_give_events_or_a_remote_protocol_error(data: bytes, cuts: list[int]) -> None:
    conn = H1ServerConnection(options=H1Options(accept_http_10=True, enable_trailers=True))
    try:
        events = feed_all(conn, data, [c for c in cuts if c < len(data)])
    except RemoteProtocolError as error:
        assert error.error_status_hint in (400, 404, 413, 414, 426, 431, 501)
    else:
        assert all(isinstance(e, Event) for e in events)


PREFIXES = [
    b"GET / HTTP/1.1\r\nHost: a\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
]


@settings(deadline=None)
@given(st.sampled_from(PREFIXES), st.binary(max_size=200))
def test_garbage_after_a_valid_start_fails_cleanly(prefix: bytes, tail: bytes) -> None:
    conn = H1ServerConnection(options=H1Options(enable_trailers=True))
    try:
        conn.receive_data(prefix)
        conn.receive_data(tail)
        conn.receive_data(b"")
    except RemoteProtocolError as error:
        assert error.error_status_hint >= 400


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_any_response_bytes_give_events_or_a_502(data: bytes) -> None:
    conn = H1ClientConnection()
    stream_id = conn.open_stream()
    conn.send(
        Request(
            stream_id,
            [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/")],
            True,
        )
    )
    try:
        conn.receive_data(data)
        conn.receive_data(b"")
    except RemoteProtocolError as error:
        assert error.error_status_hint == 502


def body_events(stream_id: int, body: list[bytes], trailers: Headers) -> list[Event]:
    events: list[Event] = [Data(stream_id, b"".join(body))] if body else []
    return [*events, EndOfMessage(stream_id, trailers)]


@settings(deadline=None)
@given(methods, paths, header_lists, bodies, framings, header_lists)
def test_request_serialize_then_parse_is_identity(
    method: bytes,
    path: bytes,
    headers: Headers,
    body: list[bytes],
    framing: str,
    trailers: Headers,
) -> None:
    options = H1Options(enable_trailers=True)
    client = H1ClientConnection(options=options)
    server = H1ServerConnection(options=options)
    if framing == "length":
        headers = [*headers, (b"content-length", str(sum(map(len, body))).encode())]
    end_stream = framing == "none"
    if end_stream:
        body = []
    trailers = trailers if framing == "chunked" else []
    pseudo = [
        (b":method", method),
        (b":scheme", b"http"),
        (b":authority", b"h:1"),
        (b":path", path),
    ]
    stream_id = client.open_stream()
    wire = client.send(Request(stream_id, pseudo + headers, end_stream))
    for chunk in body:
        wire += client.send(Data(stream_id, chunk))
    wire += client.send(EndOfMessage(stream_id, trailers))

    events = merge_data(server.receive_data(wire))
    expected_headers = pseudo + headers
    if end_stream and method in (b"POST", b"PUT", b"PATCH", b"OPTIONS"):
        expected_headers.append((b"content-length", b"0"))
    request = events[0]
    assert isinstance(request, Request)
    assert request.headers == expected_headers
    assert request.end_stream == (end_stream or (framing == "length" and not body))
    assert events[1:] == body_events(1, body, trailers)


@settings(deadline=None)
@given(
    st.integers(200, 599).filter(lambda s: s not in (204, 304)),
    header_lists,
    bodies,
    framings,
    header_lists,
)
def test_response_serialize_then_parse_is_identity(
    status: int, headers: Headers, body: list[bytes], framing: str, trailers: Headers
) -> None:
    options = H1Options(enable_trailers=True)
    client = H1ClientConnection(options=options)
    server = H1ServerConnection(options=options)
    stream_id = client.open_stream()
    pseudo = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"h"), (b":path", b"/")]
    server.receive_data(
        client.send(Request(stream_id, pseudo, True)) + client.send(EndOfMessage(stream_id))
    )
    if framing == "length":
        headers = [*headers, (b"content-length", str(sum(map(len, body))).encode())]
    end_stream = framing == "none"
    if end_stream:
        body = []
    trailers = trailers if framing == "chunked" else []
    wire = server.send(Response(1, status, headers, end_stream))
    for chunk in body:
        wire += server.send(Data(1, chunk))
    wire += server.send(EndOfMessage(1, trailers))

    events = merge_data(client.receive_data(wire))
    expected = [(b":status", str(status).encode()), *headers]
    if end_stream:
        expected.append((b"content-length", b"0"))
    assert events[0] == Response(
        1, status, expected, end_stream or (not body and framing == "length")
    )
    assert events[1:] == body_events(1, body, trailers)
    assert client.available_streams == 1
