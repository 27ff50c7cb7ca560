"""HTTP/1.1 server side: how a response head is framed, for HEAD and bodiless statuses,
as Envoy's HTTP/1 codec and connection manager frame it."""

from __future__ import annotations

import pytest

from pydp.http import (
    Data,
    EndOfMessage,
    H1ClientConnection,
    H1Options,
    H1ServerConnection,
    LocalProtocolError,
    Request,
    Response,
)
from tests.pydp.http.helpers import Chunkings, bytewise, feed

HEAD = b"HEAD /items HTTP/1.1\r\nHost: svc\r\n\r\n"
GET = b"GET /items HTTP/1.1\r\nHost: svc\r\n\r\n"
HTTP10 = H1Options(accept_http_10=True, default_host_for_http_10=b"svc")
CT = (b"content-type", b"application/json")
CL = (b"content-length", b"1234")
TE = b"transfer-encoding: chunked\r\n"


def _server(chunks: list[bytes], options: H1Options | None = None) -> H1ServerConnection:
    conn = H1ServerConnection(options=options)
    events = feed(conn, chunks)
    assert isinstance(events[0], Request)
    return conn


def _fields(head: bytes) -> list[bytes]:
    return head.split(b"\r\n")[1:-2]


@pytest.mark.parametrize(
    ("status", "headers", "end_stream", "fields"),
    [
        (200, [CT, CL], False, [b"content-type: application/json", b"content-length: 1234"]),
        (200, [CT, CL], True, [b"content-type: application/json", b"content-length: 1234"]),
        (200, [CT], False, [b"content-type: application/json", b"transfer-encoding: chunked"]),
        (200, [CT], True, [b"content-type: application/json", b"transfer-encoding: chunked"]),
        (404, [], True, [b"transfer-encoding: chunked"]),
        (200, [(b"transfer-encoding", b"chunked")], False, [b"transfer-encoding: chunked"]),
        (204, [], True, []),
        (204, [], False, []),
        (304, [CT], False, [b"content-type: application/json"]),
        (304, [CL], True, [b"content-length: 1234"]),
    ],
)
def test_head_response_framing(
    chunkings: Chunkings,
    status: int,
    headers: list[tuple[bytes, bytes]],
    end_stream: bool,
    fields: list[bytes],
) -> None:
    for chunks in chunkings(HEAD):
        conn = _server(chunks)
        head = conn.send(Response(1, status, list(headers), end_stream))
        assert _fields(head) == fields
        with pytest.raises(LocalProtocolError, match="cannot have a body"):
            conn.send(Data(1, b"x"))
        assert conn.send(Data(1, b"")) == b""
        assert conn.send(EndOfMessage(1, [(b"grpc-status", b"0")])) == b""
        assert not conn.should_close
        assert conn.wants_data


@pytest.mark.parametrize(
    ("status", "headers", "end_stream", "fields"),
    [
        (200, [], True, [b"content-length: 0"]),
        (200, [], False, [b"transfer-encoding: chunked"]),
        (204, [], True, []),
        (304, [], False, []),
        (304, [], True, []),
        (304, [CL], True, [b"content-length: 1234"]),
    ],
)
def test_get_response_framing_for_comparison(
    status: int, headers: list[tuple[bytes, bytes]], end_stream: bool, fields: list[bytes]
) -> None:
    conn = _server([GET])
    assert _fields(conn.send(Response(1, status, list(headers), end_stream))) == fields


def test_head_answers_keep_the_connection_in_step() -> None:
    """Every response on one connection, read back by a client that knows which
    answered HEAD: the informational `transfer-encoding: chunked` frames no body."""
    server = H1ServerConnection()
    client = H1ClientConnection()
    wire = b""
    requests = [b"HEAD", b"GET", b"HEAD", b"HEAD", b"GET"]
    replies = [
        Response(0, 200, [CT]),
        Response(0, 200, [CT]),
        Response(0, 404, [], end_stream=True),
        Response(0, 200, [(b"content-length", b"5")]),
        Response(0, 200, [(b"content-length", b"2")]),
    ]
    bodies = [b"", b"body", b"", b"", b"ok"]
    for method, reply, body in zip(requests, replies, bodies, strict=True):
        sid = client.open_stream()
        request = [
            (b":method", method),
            (b":scheme", b"http"),
            (b":authority", b"svc"),
            (b":path", b"/"),
        ]
        wire_request = client.send(Request(sid, request, True)) + client.send(EndOfMessage(sid))
        got, end = server.receive_data(wire_request)
        assert isinstance(got, Request)
        assert isinstance(end, EndOfMessage)
        reply.stream_id = got.stream_id
        out = server.send(reply)
        if body:
            out += server.send(Data(got.stream_id, body))
        out += server.send(EndOfMessage(got.stream_id))
        wire += out
        events = feed(client, [out[i : i + 1] for i in range(len(out))])
        assert [type(e) for e in events] == (
            [Response, Data, EndOfMessage] if body else [Response, EndOfMessage]
        )
        response = events[0]
        assert isinstance(response, Response)
        assert response.status == reply.status
        if body:
            assert events[1] == Data(sid, body)
    assert wire.count(TE) == 3
    assert b"0\r\n\r\n" in wire  # the GET's chunked body ends; the HEADs' never start


def test_http10_head_without_content_length_closes_like_envoy() -> None:
    request = b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    for chunks in bytewise(request):
        conn = _server(chunks, HTTP10)
        head = conn.send(Response(1, 200, [CT]))
        assert (
            head
            == b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
        )
        conn.send(EndOfMessage(1))
        assert conn.should_close


@pytest.mark.parametrize(
    ("request_", "headers", "end_stream", "head", "closes"),
    [
        (
            b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            [CL],
            False,
            b"HTTP/1.0 200 OK\r\ncontent-length: 1234\r\nconnection: keep-alive\r\n\r\n",
            False,
        ),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            [],
            True,
            b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            True,
        ),
        (
            b"GET / HTTP/1.0\r\n\r\n",
            [],
            False,
            b"HTTP/1.0 200 OK\r\nconnection: close\r\n\r\n",
            True,
        ),
    ],
)
def test_http10_keeps_alive_only_with_content_length(
    request_: bytes,
    headers: list[tuple[bytes, bytes]],
    end_stream: bool,
    head: bytes,
    closes: bool,
) -> None:
    conn = H1ServerConnection(options=HTTP10)
    conn.receive_data(request_)
    assert conn.send(Response(1, 200, list(headers), end_stream)) == head
    conn.send(EndOfMessage(1))
    assert conn.should_close is closes
