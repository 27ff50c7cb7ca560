"""HTTP/2 connection rules (RFC 9113) as pydp's codec applies them, frame by frame."""

from __future__ import annotations

import hpack
import pytest
from h2.errors import ErrorCodes

from pydp.http import (
    H2_PREFACE,
    Data,
    EndOfMessage,
    Event,
    H2ClientConnection,
    H2Options,
    H2ServerConnection,
    Headers,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    Response,
    StreamReset,
    WindowUpdated,
)
from pydp.http import h2_frames as frames
from pydp.http.h2_frames import FrameReader, head

GET: Headers = [
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":authority", b"a"),
    (b":path", b"/"),
]
POST: Headers = [(b":method", b"POST"), *GET[1:]]


def raw(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return head(len(payload), kind, flags, stream_id) + payload


class Peer:
    """A client made of raw frames, in front of a `H2ServerConnection`."""

    def __init__(self, server: H2ServerConnection | None = None, settings: bytes = b"") -> None:
        self.server = server or H2ServerConnection()
        self.encoder = hpack.Encoder()
        self.reader = FrameReader(server=False)
        self.receive(H2_PREFACE + raw(frames.SETTINGS, 0, 0, settings))
        self.sent()

    def block(self, fields: Headers) -> bytes:
        return self.encoder.encode(fields)

    def headers(self, stream_id: int, fields: Headers, end: bool = True) -> list[Event]:
        flags = frames.END_HEADERS | (frames.END_STREAM if end else 0)
        return self.receive(raw(frames.HEADERS, flags, stream_id, self.block(fields)))

    def receive(self, data: bytes) -> list[Event]:
        return self.server.receive_data(data)

    def send(self, event: Event) -> list[frames.Frame]:
        """What the server writes for `event`."""
        return self.reader.feed(self.server.send(event))

    def sent(self) -> list[frames.Frame]:
        return self.reader.feed(self.server.data_to_send())

    def error(self, data: bytes) -> int:
        """The GOAWAY code the server answers `data` with."""
        with pytest.raises(RemoteProtocolError):
            self.receive(data)
        (goaway,) = [f for f in self.sent() if f[0] == frames.GOAWAY]
        assert self.server.should_close
        return frames.goaway_fields(goaway[3])[1]


def test_ping_is_answered_with_its_payload() -> None:
    peer = Peer()
    assert peer.receive(raw(frames.PING, 0, 0, b"12345678")) == []
    assert peer.sent() == [(frames.PING, frames.ACK, 0, b"12345678")]
    peer.receive(raw(frames.PING, frames.ACK, 0, b"12345678"))
    assert peer.sent() == []


@pytest.mark.parametrize(
    ("setting", "value", "code"),
    [
        (frames.ENABLE_PUSH, 2, ErrorCodes.PROTOCOL_ERROR),
        (frames.INITIAL_WINDOW_SIZE, 2**31, ErrorCodes.FLOW_CONTROL_ERROR),
        (frames.MAX_FRAME_SIZE, 100, ErrorCodes.PROTOCOL_ERROR),
    ],
)
def test_invalid_settings_are_connection_errors(setting: int, value: int, code: int) -> None:
    assert Peer().error(frames.settings([(setting, value)])) == code


@pytest.mark.parametrize(
    "frame",
    [
        raw(frames.WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00"),
        raw(frames.DATA, 0, 5, b"x"),
        raw(frames.RST_STREAM, 0, 5, b"\x00\x00\x00\x08"),
        raw(frames.WINDOW_UPDATE, 0, 5, b"\x00\x00\x00\x01"),
        raw(frames.HEADERS, frames.END_HEADERS, 2, b"\x82"),
    ],
    ids=["window-update-0", "data-idle", "rst-idle", "window-update-idle", "even-stream"],
)
def test_protocol_violations_are_connection_errors(frame: bytes) -> None:
    peer = Peer()
    peer.headers(1, GET)
    assert peer.error(frame) == ErrorCodes.PROTOCOL_ERROR


def test_headers_on_a_stream_closed_normally_is_a_connection_error() -> None:
    peer = Peer()
    peer.headers(1, GET)
    peer.send(Response(1, 204, [], end_stream=True))
    assert peer.error(raw(frames.HEADERS, 5, 1, peer.block(GET))) == ErrorCodes.STREAM_CLOSED


def test_frames_in_flight_after_our_reset_are_ignored_and_give_their_window_back() -> None:
    peer = Peer(H2ServerConnection(options=H2Options(initial_connection_window_size=65535)))
    peer.headers(1, POST, end=False)
    assert peer.send(StreamReset(1, ErrorCodes.CANCEL)) == [
        (frames.RST_STREAM, 0, 1, b"\x00\x00\x00\x08")
    ]
    events = peer.receive(frames.data(1, b"x" * 16000, False) * 3)
    events += peer.receive(raw(frames.HEADERS, 5, 1, peer.block([(b"t", b"1")])))
    assert events == []
    assert peer.sent() == [(frames.WINDOW_UPDATE, 0, 0, (48000).to_bytes(4, "big"))]


def test_data_after_the_peer_ended_its_side_resets_the_stream() -> None:
    peer = Peer()
    peer.headers(1, GET)
    assert peer.receive(frames.data(1, b"late", False)) == [
        StreamReset(1, ErrorCodes.STREAM_CLOSED)
    ]
    assert peer.sent() == [(frames.RST_STREAM, 0, 1, b"\x00\x00\x00\x05")]


@pytest.mark.parametrize(
    "fields",
    [
        [*GET, (b"X-Upper", b"v")],
        [*GET, (b"connection", b"close")],
        [*GET, (b"te", b"gzip")],
        [*GET, (b"x", b" v")],
        [*GET, (b"x", b"a\rb")],
        [(b"x", b"y"), *GET],
        [*GET, (b":custom", b"v")],
        [*GET, (b":status", b"200")],
        GET[1:],
        [*GET[:3], (b":path", b"")],
        [*GET, (b"host", b"other")],
        [*GET, (b"content-length", b"1x")],
    ],
    ids=[
        "uppercase",
        "connection",
        "te",
        "whitespace",
        "cr",
        "pseudo-late",
        "unknown-pseudo",
        "status",
        "no-method",
        "empty-path",
        "host-mismatch",
        "content-length",
    ],
)
def test_malformed_request_heads_are_connection_errors(fields: Headers) -> None:
    peer = Peer()
    code = peer.error(raw(frames.HEADERS, 5, 1, peer.block(fields)))
    assert code == ErrorCodes.PROTOCOL_ERROR


def test_a_broken_header_block_is_a_compression_error() -> None:
    assert Peer().error(raw(frames.HEADERS, 5, 1, b"\xbe")) == ErrorCodes.COMPRESSION_ERROR


def test_cookie_crumbs_are_joined_at_the_end() -> None:
    peer = Peer()
    fields = [*GET, (b"cookie", b"a=1"), (b"x", b"y"), (b"cookie", b"b=2")]
    (request, _) = peer.headers(1, fields)
    assert isinstance(request, Request)
    assert request.headers[4:] == [(b"x", b"y"), (b"cookie", b"a=1; b=2")]


@pytest.mark.parametrize("body", [b"x" * 4, b"x" * 2])
def test_the_body_must_match_its_content_length(body: bytes) -> None:
    peer = Peer()
    peer.headers(1, [*POST, (b"content-length", b"3")], end=False)
    assert peer.error(frames.data(1, body, True)) == ErrorCodes.PROTOCOL_ERROR


def test_a_repeated_request_block_makes_independent_requests() -> None:
    peer = Peer()
    start = b"\x82\x86\x84\x01\x01a"  # GET http / (indexed), :authority a (not indexed)
    peer.receive(raw(frames.HEADERS, 5, 1, start + b"\x40\x03x-a\x011"))  # x-a: 1 inserted
    indexed = start + b"\xbe"  # the newest entry of the table
    first = peer.receive(raw(frames.HEADERS, 5, 3, indexed))[0]
    second = peer.receive(raw(frames.HEADERS, 5, 5, indexed))[0]
    assert isinstance(first, Request) and isinstance(second, Request)
    assert first.headers == second.headers == [*GET, (b"x-a", b"1")]
    first.headers.append((b"mutated", b"1"))
    assert second.headers == [*GET, (b"x-a", b"1")]
    # The same bytes once the table changed: its newest entry is another field.
    peer.receive(raw(frames.HEADERS, 5, 7, start + b"\x40\x03x-b\x012"))
    third = peer.receive(raw(frames.HEADERS, 5, 9, indexed))[0]
    assert isinstance(third, Request)
    assert third.headers == [*GET, (b"x-b", b"2")]


def test_response_heads_stay_right_as_the_peer_table_changes() -> None:
    peer = Peer()
    decoder = hpack.Decoder()
    fields = [(b"content-type", b"text/plain"), (b"x-a", b"1")]
    sid = 1
    for table_size in (None, None, 0, 0, 4096, 4096):
        if table_size is not None:
            peer.receive(frames.settings([(frames.HEADER_TABLE_SIZE, table_size)]))
            peer.sent()
            decoder.max_allowed_table_size = table_size
        peer.headers(sid, GET)
        (frame,) = peer.send(Response(sid, 200, fields, end_stream=True))
        decoded = [tuple(h) for h in decoder.decode(frame[3], raw=True)]
        assert decoded == [(b":status", b"200"), *fields]
        sid += 2


def test_sends_follow_the_stream_state() -> None:
    peer = Peer()
    server = peer.server
    peer.headers(1, POST, end=False)
    with pytest.raises(LocalProtocolError):
        server.send(Data(1, b"before the head"))
    server.send(Response(1, 200, [], end_stream=True))
    assert server.send(EndOfMessage(1)) == b""
    with pytest.raises(LocalProtocolError):
        server.send(Data(1, b"after the end"))
    with pytest.raises(LocalProtocolError):
        server.send(Response(3, 200, []))  # an idle stream
    peer.receive(raw(frames.RST_STREAM, 0, 1, b"\x00\x00\x00\x08"))
    assert server.send(Data(1, b"to a reset stream")) == b""


def test_a_request_needs_an_authority_to_be_sent() -> None:
    client = H2ClientConnection()
    sid = client.open_stream()
    with pytest.raises(LocalProtocolError):
        client.send(Request(sid, [GET[0], GET[1], GET[3]], True))
    client.send(Request(sid, [GET[0], GET[1], GET[3], (b"host", b"h")], True))


def test_a_larger_peer_window_releases_queued_data() -> None:
    peer = Peer(settings=frames.settings([(frames.INITIAL_WINDOW_SIZE, 10)])[9:])
    peer.headers(1, GET)
    peer.send(Response(1, 200, []))
    assert [f[3] for f in peer.send(Data(1, b"0123456789abcdef"))] == [b"0123456789"]
    assert peer.server.buffered_outbound(1) == 6
    events = peer.receive(frames.settings([(frames.INITIAL_WINDOW_SIZE, 100)]))
    assert events == [WindowUpdated(1)]
    assert [f[3] for f in peer.sent() if f[0] == frames.DATA] == [b"abcdef"]


def test_the_peer_frame_size_cuts_data() -> None:
    peer = Peer(settings=frames.settings([(frames.MAX_FRAME_SIZE, 20000)])[9:])
    peer.headers(1, GET)
    peer.send(Response(1, 200, []))
    peer.reader.max_frame_size = 20000
    sizes = [len(f[3]) for f in peer.send(Data(1, b"x" * 30000))]
    assert sizes == [20000, 10000]


def test_a_stream_window_overflow_resets_that_stream() -> None:
    peer = Peer()
    peer.headers(1, GET)
    peer.headers(3, GET)
    events = peer.receive(raw(frames.WINDOW_UPDATE, 0, 1, (2**31 - 1).to_bytes(4, "big")))
    assert events == [StreamReset(1, ErrorCodes.FLOW_CONTROL_ERROR)]
    assert peer.sent() == [(frames.RST_STREAM, 0, 1, b"\x00\x00\x00\x03")]
    assert peer.server.send(Response(3, 204, [], end_stream=True))


def test_the_last_data_carries_the_end_of_the_stream_when_the_windows_allow() -> None:
    peer = Peer(settings=frames.settings([(frames.INITIAL_WINDOW_SIZE, 10)])[9:])
    peer.headers(1, GET)
    peer.headers(3, POST, end=False)
    peer.send(Response(1, 200, []))
    assert peer.reader.feed(peer.server.send_last(1, b"short")) == [
        (frames.DATA, frames.END_STREAM, 1, b"short")
    ]
    peer.send(Response(3, 200, []))
    sent = peer.reader.feed(peer.server.send_last(3, b"0123456789abc"))
    assert sent == [(frames.DATA, 0, 3, b"0123456789")]
    peer.receive(frames.window_update(3, 10))
    assert peer.sent() == [(frames.DATA, frames.END_STREAM, 3, b"abc")]
    with pytest.raises(LocalProtocolError):
        peer.server.send_last(3, b"again")  # the request is still coming: the stream is open
