"""pydp's HTTP/2 codec against the `h2` library as the peer, both ways."""

from __future__ import annotations

import string

from h2 import events as h2e
from h2.config import H2Configuration
from h2.connection import H2Connection
from hypothesis import given, settings
from hypothesis import strategies as st

from pydp.http import (
    Data,
    EndOfMessage,
    Event,
    H2ClientConnection,
    H2ServerConnection,
    Headers,
    Request,
    Response,
)
from tests.pydp.http.helpers import merge_data

PSEUDO: Headers = [
    (b":method", b"POST"),
    (b":scheme", b"https"),
    (b":authority", b"svc.ns"),
    (b":path", b"/p"),
]
names = st.text(string.ascii_lowercase + "-", min_size=1, max_size=8).map(str.encode)
names = names.filter(lambda n: n not in (b"te", b"host", b"cookie", b"connection", b"upgrade"))
values = st.text(string.ascii_letters + string.digits + " ;=/", max_size=30).map(
    lambda v: v.strip().encode()
)
fields = st.lists(st.tuples(names, values), max_size=6)
bodies = st.lists(st.binary(min_size=1, max_size=40000), max_size=3)


def h2_peer(client_side: bool) -> H2Connection:
    peer = H2Connection(H2Configuration(client_side=client_side, header_encoding=None))
    peer.initiate_connection()
    return peer


Ours = H2ClientConnection | H2ServerConnection
PeerEvents = list[h2e.Event]
Message = tuple[Headers, bytes, Headers]


def pump(peer: H2Connection, ours: Ours, sent: bytes = b"") -> tuple[PeerEvents, list[Event]]:
    """Exchange bytes (`sent`: what our side's calls returned) until both are quiet,
    acknowledging all data on both sides."""
    theirs: PeerEvents = []
    mine: list[Event] = []
    for _ in range(1000):
        to_ours, to_peer = peer.data_to_send(), sent + ours.data_to_send()
        sent = b""
        if not to_ours and not to_peer:
            return theirs, merge_data(mine)
        if to_ours:
            for event in ours.receive_data(to_ours):
                mine.append(event)
                if isinstance(event, Data):
                    sent += ours.ack_data(event.stream_id, len(event.data))
        if to_peer:
            for got in peer.receive_data(to_peer):
                theirs.append(got)
                if isinstance(got, h2e.DataReceived):
                    peer.acknowledge_received_data(got.flow_controlled_length, got.stream_id)
    raise AssertionError("the exchange did not settle")


def received(events: PeerEvents) -> Message:
    head: list[tuple[bytes, bytes]] = []
    body = b""
    trailers: list[tuple[bytes, bytes]] = []
    for event in events:
        if isinstance(event, h2e.RequestReceived | h2e.ResponseReceived):
            head = [(bytes(n), bytes(v)) for n, v in event.headers or []]
        elif isinstance(event, h2e.DataReceived):
            body += event.data or b""
        elif isinstance(event, h2e.TrailersReceived):
            trailers = [(bytes(n), bytes(v)) for n, v in event.headers or []]
    return head, body, trailers


@settings(deadline=None, max_examples=60)
@given(fields, bodies, fields, fields, bodies, fields)
def test_an_h2_client_and_a_pydp_server(
    request_fields: Headers,
    request_body: list[bytes],
    request_trailers: Headers,
    response_fields: Headers,
    response_body: list[bytes],
    response_trailers: Headers,
) -> None:
    client, server = h2_peer(client_side=True), H2ServerConnection()
    client.send_headers(1, PSEUDO + request_fields)
    for chunk in request_body:
        client.send_data(1, chunk)
    if request_trailers:
        client.send_headers(1, request_trailers, end_stream=True)
    else:
        client.end_stream(1)
    _, events = pump(client, server)
    expected: list[Event] = [Request(1, PSEUDO + request_fields)]
    if request_body:
        expected.append(Data(1, b"".join(request_body)))
    expected.append(EndOfMessage(1, request_trailers))
    assert events == expected

    sent = server.send(Response(1, 200, response_fields))
    for chunk in response_body:
        sent += server.send(Data(1, chunk))
    sent += server.send(EndOfMessage(1, response_trailers))
    theirs, _ = pump(client, server, sent)
    head, body, trailers = received(theirs)
    assert head == [(b":status", b"200"), *response_fields]
    assert body == b"".join(response_body)
    assert trailers == response_trailers
    assert isinstance(theirs[-1], h2e.StreamEnded)


@settings(deadline=None, max_examples=60)
@given(fields, bodies, fields, bodies, fields)
def test_a_pydp_client_and_an_h2_server(
    request_fields: Headers,
    request_body: list[bytes],
    response_fields: Headers,
    response_body: list[bytes],
    response_trailers: Headers,
) -> None:
    client, server = H2ClientConnection(), h2_peer(client_side=False)
    sid = client.open_stream()
    sent = client.send(Request(sid, PSEUDO + request_fields))
    for chunk in request_body:
        sent += client.send(Data(sid, chunk))
    sent += client.send(EndOfMessage(sid))
    theirs, _ = pump(server, client, sent)
    head, body, _ = received(theirs)
    assert head == PSEUDO + request_fields
    assert body == b"".join(request_body)

    server.send_headers(sid, [(b":status", b"201"), *response_fields])
    for chunk in response_body:
        server.send_data(sid, chunk)
    if response_trailers:
        server.send_headers(sid, response_trailers, end_stream=True)
    else:
        server.end_stream(sid)
    _, events = pump(server, client)
    expected: list[Event] = [Response(sid, 201, [(b":status", b"201"), *response_fields])]
    if response_body:
        expected.append(Data(sid, b"".join(response_body)))
    expected.append(EndOfMessage(sid, response_trailers))
    assert events == expected
    assert client.available_streams > 0
