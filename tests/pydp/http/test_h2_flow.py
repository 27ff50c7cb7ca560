"""HTTP/2 flow control: data is acknowledged only when the consumer says so."""

from __future__ import annotations

from collections.abc import Sequence

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes

from pydp.http import (
    Data,
    EndOfMessage,
    H2Options,
    H2ServerConnection,
    Headers,
    Request,
    StreamReset,
    WindowUpdated,
)
from tests.pydp.http.helpers import H2Pair

HEADERS: Headers = [
    (b":method", b"POST"),
    (b":scheme", b"http"),
    (b":authority", b"a"),
    (b":path", b"/"),
]


def small_window_server(stream_window: int, connection_window: int = 65535) -> H2ServerConnection:
    options = H2Options(
        initial_stream_window_size=stream_window, initial_connection_window_size=connection_window
    )
    return H2ServerConnection(options=options)


def received(events: Sequence[object], stream_id: int) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Data) and e.stream_id == stream_id)


def test_a_consumer_that_does_not_ack_stops_the_peer_at_the_window() -> None:
    pair = H2Pair(server=small_window_server(100))
    sid = pair.client.open_stream()
    body = bytes(range(256)) * 4
    pair.client_send(Request(sid, HEADERS), Data(sid, body), EndOfMessage(sid, [(b"t", b"1")]))
    assert pair.client.buffered_outbound(sid) == len(body) - 100
    _, server_events = pair.pump()
    assert received(server_events, sid) == body[:100]
    # Nothing more arrives however long we pump: the window is used up.
    assert pair.pump() == ([], [])
    assert pair.client.buffered_outbound(sid) == len(body) - 100

    got = body[:100]
    client_updates: list[object] = []
    while len(got) < len(body):
        pair.server_ack(sid, 100)
        client_events, server_events = pair.pump()
        client_updates += client_events
        chunk = received(server_events, sid)
        assert 0 < len(chunk) <= 100
        got += chunk
    assert got == body
    assert client_updates == [WindowUpdated(sid)]
    assert pair.client.buffered_outbound(sid) == 0
    assert server_events[-1] == EndOfMessage(sid, [(b"t", b"1")])


def test_the_connection_window_is_shared_and_acks_reopen_it() -> None:
    pair = H2Pair(server=small_window_server(1 << 20, 65535))
    one, three = pair.client.open_stream(), pair.client.open_stream()
    pair.client_send(Request(one, HEADERS), Request(three, HEADERS))
    pair.client_send(Data(one, b"a" * 60000), Data(three, b"b" * 10000))
    _, events = pair.pump()
    assert len(received(events, one)) == 60000
    assert len(received(events, three)) == 5535
    assert pair.client.buffered_outbound(three) == 4465
    pair.server_ack(one, 60000)
    client_events, events = pair.pump()
    assert len(received(events, three)) == 4465
    assert client_events == [WindowUpdated(three)]


def test_a_reset_stream_gives_its_unacked_bytes_back() -> None:
    pair = H2Pair(server=small_window_server(65535, 65535))
    one, three = pair.client.open_stream(), pair.client.open_stream()
    pair.client_send(Request(one, HEADERS), Data(one, b"a" * 60000))
    pair.pump()
    pair.client_send(StreamReset(one, ErrorCodes.CANCEL))
    _, events = pair.pump()
    assert events == [StreamReset(one, ErrorCodes.CANCEL)]
    pair.client_send(Request(three, HEADERS), Data(three, b"b" * 60000))
    _, events = pair.pump()
    assert len(received(events, three)) == 60000


def test_padding_is_acknowledged_without_the_consumer() -> None:
    raw = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    raw.initiate_connection()
    server = small_window_server(100)
    server.receive_data(raw.data_to_send())
    raw.receive_data(server.data_to_send())
    server.receive_data(raw.data_to_send())
    raw.send_headers(1, HEADERS)
    raw.send_data(1, b"x" * 50, pad_length=30)
    events = server.receive_data(raw.data_to_send())
    assert received(events, 1) == b"x" * 50
    assert raw.local_flow_control_window(1) == 100 - 81
    raw.receive_data(server.ack_data(1, 50))
    assert raw.local_flow_control_window(1) == 100


def test_acks_beyond_what_was_received_are_ignored() -> None:
    pair = H2Pair(server=small_window_server(100))
    sid = pair.client.open_stream()
    pair.client_send(Request(sid, HEADERS), Data(sid, b"z" * 60))
    pair.pump()
    pair.server_ack(sid, 10_000)
    pair.server_ack(99, 1)
    pair.pump()
    pair.client_send(Data(sid, b"y" * 300))
    _, events = pair.pump()
    assert received(events, sid) == b"y" * 100
    # Had the excess counted, this one-byte ack would reopen the whole window.
    pair.server_ack(sid, 1)
    assert pair.pump() == ([], [])


def test_large_bodies_are_cut_to_the_peer_frame_size() -> None:
    pair = H2Pair(server=small_window_server(1 << 24, 1 << 24))
    sid = pair.client.open_stream()
    body = bytes(range(256)) * 1000
    wire = pair.client.send(Request(sid, HEADERS)) + pair.client.send(Data(sid, body))
    events = pair.server.receive_data(wire)
    assert received(events, sid) == body
    assert [len(e.data) for e in events if isinstance(e, Data)] == [16384] * 15 + [10240]
