"""Round trips: one side's output fed to the other, within and across versions.

The proxy forwards events unchanged, whichever protocol each leg speaks."""

from __future__ import annotations

from pydp.http import (
    Data,
    EndOfMessage,
    Event,
    ExpectContinue,
    H1ClientConnection,
    H1Options,
    H1ServerConnection,
    InformationalResponse,
    Request,
    Response,
)
from tests.pydp.http.helpers import H2Pair, merge_data

CURL_POST = (
    b"POST /upload HTTP/1.1\r\nHost: api.ns.svc\r\nUser-Agent: curl/8\r\n"
    b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\nTE: trailers\r\n\r\n"
)


def forward(events: list[Event], stream_id: int) -> list[Event]:
    """Events as a router forwards them: same content, the other leg's stream id."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, Request):
            out.append(Request(stream_id, event.headers, event.end_stream))
        elif isinstance(event, Response):
            out.append(Response(stream_id, event.status, event.headers, event.end_stream))
        elif isinstance(event, InformationalResponse):
            out.append(InformationalResponse(stream_id, event.status, event.headers))
        elif isinstance(event, Data):
            out.append(Data(stream_id, event.data))
        elif isinstance(event, EndOfMessage):
            out.append(EndOfMessage(stream_id, event.trailers))
    return out


def test_h1_client_to_h1_server_and_back_with_100_continue_and_trailers() -> None:
    options = H1Options(enable_trailers=True)
    downstream = H1ServerConnection(options=options)
    upstream_client = H1ClientConnection(options=options)
    upstream_server = H1ServerConnection(options=options)

    events = downstream.receive_data(CURL_POST)
    assert events[1] == ExpectContinue(1)
    sid = upstream_client.open_stream()
    wire = b"".join(upstream_client.send(e) for e in forward(events[:1], sid))
    seen = upstream_server.receive_data(wire)
    assert isinstance(events[0], Request)
    assert seen[0] == Request(1, events[0].headers)
    assert seen[1] == ExpectContinue(1)

    # The upstream answers 100; it travels back to the client unchanged.
    interim = upstream_client.receive_data(upstream_server.send(InformationalResponse(1, 100, [])))
    assert downstream.send(forward(interim, 1)[0]) == b"HTTP/1.1 100 Continue\r\n\r\n"

    body = downstream.receive_data(b"4\r\ndata\r\n0\r\nX-Checksum: 42\r\n\r\n")
    wire = b"".join(upstream_client.send(e) for e in forward(body, sid))
    assert merge_data(upstream_server.receive_data(wire)) == [
        Data(1, b"data"),
        EndOfMessage(1, [(b"x-checksum", b"42")]),
    ]

    reply: list[Event] = [
        Response(1, 201, [(b"location", b"/upload/1")]),
        Data(1, b"created"),
        EndOfMessage(1, [(b"grpc-status", b"0")]),
    ]
    wire = b"".join(upstream_server.send(e) for e in reply)
    back = merge_data(upstream_client.receive_data(wire))
    to_client = b"".join(downstream.send(e) for e in forward(back, 1))
    assert to_client == (
        b"HTTP/1.1 201 Created\r\nlocation: /upload/1\r\ntransfer-encoding: chunked\r\n\r\n"
        b"7\r\ncreated\r\n0\r\ngrpc-status: 0\r\n\r\n"
    )
    assert upstream_client.available_streams == 1
    assert not downstream.should_close


def test_h1_downstream_to_h2_upstream_and_back() -> None:
    downstream = H1ServerConnection()
    pair = H2Pair()
    events = downstream.receive_data(
        b"GET /x HTTP/1.1\r\nHost: web.ns\r\nConnection: keep-alive\r\nCookie: a=1; b=2\r\n\r\n"
    )
    sid = pair.client.open_stream()
    pair.client_send(*forward(events, sid))
    _, upstream_events = pair.pump()
    assert upstream_events == forward(events, sid)

    pair.server_send(
        Response(sid, 200, [(b"content-type", b"text/html")]),
        Data(sid, b"<p>hi</p>"),
        EndOfMessage(sid),
    )
    back, _ = pair.pump()
    wire = b"".join(downstream.send(e) for e in forward(back, 1))
    assert wire == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ntransfer-encoding: chunked\r\n\r\n"
        b"9\r\n<p>hi</p>\r\n0\r\n\r\n"
    )


def test_h2_downstream_to_h1_upstream_keeps_grpc_trailers_out_of_plain_h1() -> None:
    pair = H2Pair()
    upstream = H1ClientConnection()
    sid = pair.client.open_stream()
    headers = [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"web.ns"),
        (b":path", b"/"),
        (b"accept", b"*/*"),
    ]
    pair.client_send(Request(sid, headers, True))
    _, events = pair.pump()
    up = upstream.open_stream()
    wire = b"".join(upstream.send(e) for e in forward(events, up))
    assert wire == b"GET / HTTP/1.1\r\nhost: web.ns\r\naccept: */*\r\n\r\n"
    back = upstream.receive_data(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
    )
    pair.server_send(*forward(back, sid))
    client_events, _ = pair.pump()
    assert client_events == [
        Response(sid, 200, [(b":status", b"200"), (b"content-length", b"2")]),
        Data(sid, b"ok"),
        EndOfMessage(sid),
    ]
