"""HTTP/2 properties: any input gives events or a RemoteProtocolError; events
sent by one side come out unchanged on the other."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from pydp.http import (
    H2_PREFACE,
    Data,
    EndOfMessage,
    Event,
    H2ServerConnection,
    Headers,
    RemoteProtocolError,
    Request,
    Response,
)
from tests.pydp.http.helpers import H2Pair

frames = st.builds(
    lambda kind, flags, stream, payload: (
        len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload
    ),
    st.integers(0, 10),
    st.integers(0, 255),
    st.sampled_from([0, 1, 2, 3, 5, 2**31 - 1]),
    st.binary(max_size=40),
)


def feed(server: H2ServerConnection, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    try:
        for chunk in chunks:
            events += server.receive_data(chunk)
        events += server.receive_data(b"")
    except RemoteProtocolError as error:
        assert error.error_status_hint == 400
        assert error.stream_id is None
    return events


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_events_or_a_remote_protocol_error(data: bytes) -> None:
    feed(H2ServerConnection(), [data])


@settings(max_examples=500, deadline=None)
@given(st.lists(frames, max_size=8))
def test_any_frames_after_the_preface_give_events_or_an_error(chunks: list[bytes]) -> None:
    settings_frame = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    events = feed(H2ServerConnection(), [H2_PREFACE + settings_frame, *chunks])
    assert all(isinstance(event, Event) for event in events)


names = (
    st.text(string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=10)
    .map(str.encode)
    .filter(
        lambda n: (
            n
            not in (
                b"te",
                b"host",
                b"connection",
                b"upgrade",
                b"keep-alive",
                b"transfer-encoding",
                b"proxy-connection",
                b"cookie",
            )
        )
    )
)
values = st.text(string.ascii_letters + string.digits + " ;=/-_.", max_size=20).map(
    lambda v: v.strip().encode()
)
header_lists = st.lists(st.tuples(names, values), max_size=8)
bodies = st.lists(st.binary(min_size=1, max_size=100), max_size=4)


@settings(deadline=None)
@given(header_lists, bodies, header_lists, st.integers(200, 599), header_lists, bodies)
def test_exchange_is_identity(
    request_headers: Headers,
    request_body: list[bytes],
    request_trailers: Headers,
    status: int,
    response_headers: Headers,
    response_body: list[bytes],
) -> None:
    pair = H2Pair()
    sid = pair.client.open_stream()
    pseudo = [
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b":authority", b"a"),
        (b":path", b"/"),
    ]
    pair.client_send(Request(sid, pseudo + request_headers))
    pair.client_send(*[Data(sid, chunk) for chunk in request_body])
    pair.client_send(EndOfMessage(sid, request_trailers))
    _, server_events = pair.pump()
    expected: list[Event] = [Request(sid, pseudo + request_headers)]
    if request_body:
        expected.append(Data(sid, b"".join(request_body)))
    expected.append(EndOfMessage(sid, request_trailers))
    assert server_events == expected

    pair.server_send(Response(sid, status, response_headers))
    pair.server_send(*[Data(sid, chunk) for chunk in response_body])
    pair.server_send(EndOfMessage(sid))
    client_events, _ = pair.pump()
    expected = [Response(sid, status, [(b":status", str(status).encode()), *response_headers])]
    if response_body:
        expected.append(Data(sid, b"".join(response_body)))
    expected.append(EndOfMessage(sid))
    assert client_events == expected
