"""HTTP/2 frames: cutting a byte stream into frames, and writing them."""

from __future__ import annotations

import pytest
from h2.errors import ErrorCodes

from pydp.http import H2_PREFACE
from pydp.http import h2_frames as frames
from pydp.http.h2_frames import FrameReader, H2ConnectionError, head


def raw(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return head(len(payload), kind, flags, stream_id) + payload


def read(data: bytes, *, server: bool = False) -> list[frames.Frame]:
    return FrameReader(server=server).feed(data)


def test_frames_come_out_whole_however_the_bytes_are_cut() -> None:
    wire = H2_PREFACE + frames.settings([(frames.INITIAL_WINDOW_SIZE, 100)])
    wire += frames.data(1, b"hello", True) + frames.window_update(0, 7)
    expected = [
        (frames.SETTINGS, 0, 0, b"\x00\x04\x00\x00\x00\x64"),
        (frames.DATA, frames.END_STREAM, 1, b"hello"),
        (frames.WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x07"),
    ]
    for cut in range(len(wire) + 1):
        reader = FrameReader(server=True)
        assert reader.feed(wire[:cut]) + reader.feed(wire[cut:]) == expected


def test_a_bad_preface_is_refused_at_its_first_wrong_byte() -> None:
    reader = FrameReader(server=True)
    assert reader.feed(H2_PREFACE[:5]) == []
    with pytest.raises(H2ConnectionError) as info:
        reader.feed(b"GET / HTTP/1.1\r\n")
    assert info.value.code == ErrorCodes.PROTOCOL_ERROR


def test_continuations_join_into_one_header_block() -> None:
    wire = raw(frames.HEADERS, frames.END_STREAM, 3, b"ab")
    wire += raw(frames.CONTINUATION, 0, 3, b"cd")
    wire += raw(frames.CONTINUATION, frames.END_HEADERS, 3, b"ef")
    assert read(wire) == [
        (frames.HEADERS, frames.END_STREAM | frames.END_HEADERS, 3, b"abcdef"),
    ]


def test_padding_and_priority_leave_the_block() -> None:
    flags = frames.END_HEADERS | frames.PADDED | frames.PRIORITY_FLAG
    payload = b"\x02" + b"\x00\x00\x00\x00\x10" + b"blk" + b"\x00\x00"
    assert read(raw(frames.HEADERS, flags, 1, payload)) == [(frames.HEADERS, flags, 1, b"blk")]


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (raw(frames.HEADERS, 0, 1, b"a") + raw(frames.DATA, 0, 1, b"x"), "PROTOCOL_ERROR"),
        (raw(frames.HEADERS, 0, 1, b"a") + raw(frames.CONTINUATION, 4, 3, b""), "PROTOCOL_ERROR"),
        (raw(frames.CONTINUATION, frames.END_HEADERS, 1, b""), "PROTOCOL_ERROR"),
        (raw(frames.DATA, 0, 0, b"x"), "PROTOCOL_ERROR"),
        (raw(frames.SETTINGS, 0, 1, b""), "PROTOCOL_ERROR"),
        (raw(frames.SETTINGS, 0, 0, b"\x00" * 5), "FRAME_SIZE_ERROR"),
        (raw(frames.SETTINGS, frames.ACK, 0, b"\x00" * 6), "FRAME_SIZE_ERROR"),
        (raw(frames.PING, 0, 0, b"1234567"), "FRAME_SIZE_ERROR"),
        (raw(frames.RST_STREAM, 0, 0, b"\x00\x00\x00\x08"), "PROTOCOL_ERROR"),
        (raw(frames.WINDOW_UPDATE, 0, 1, b"\x00\x00\x01"), "FRAME_SIZE_ERROR"),
        (raw(frames.PRIORITY, 0, 1, b"\x00\x00\x00\x01\x10"), "PROTOCOL_ERROR"),
        (raw(frames.GOAWAY, 0, 0, b"\x00" * 7), "FRAME_SIZE_ERROR"),
        (raw(frames.PUSH_PROMISE, 4, 1, b"\x00\x00\x00\x02"), "PROTOCOL_ERROR"),
        (raw(frames.DATA, frames.PADDED, 1, b"\x05abc"), "PROTOCOL_ERROR"),
        (raw(frames.DATA, 0, 1, b"x" * 16385), "FRAME_SIZE_ERROR"),
    ],
)
def test_malformed_frames_are_connection_errors(wire: bytes, code: str) -> None:
    reader = FrameReader(server=False)
    with pytest.raises(H2ConnectionError) as info:
        for frame in reader.feed(wire):
            if frame[0] == frames.DATA:
                frames.strip_padding(frame[1], frame[3], "DATA")
    assert info.value.code == ErrorCodes[code]


def test_an_oversized_frame_is_refused_from_its_header_alone() -> None:
    with pytest.raises(H2ConnectionError):
        read(head(20000, frames.DATA, 0, 1))


def test_unknown_frame_types_are_dropped() -> None:
    wire = raw(0x20, 0, 1, b"zz") + frames.data(1, b"x", False)
    assert read(wire) == [(frames.DATA, 0, 1, b"x")]


def test_header_blocks_larger_than_the_frame_size_go_out_in_continuations() -> None:
    block = bytes(range(250)) * 3
    out = frames.headers(5, block, True, 16384)
    assert read(out) == [(frames.HEADERS, frames.END_STREAM | frames.END_HEADERS, 5, block)]
    split = frames.headers(5, block, True, 300)
    kinds = [split[i + 3] for i in (0, 309, 618)]
    assert kinds == [frames.HEADERS, frames.CONTINUATION, frames.CONTINUATION]
    reader = FrameReader(server=False)
    reader.max_frame_size = 300
    assert reader.feed(split) == [
        (frames.HEADERS, frames.END_STREAM | frames.END_HEADERS, 5, block),
    ]


def test_serialized_control_frames() -> None:
    assert frames.rst_stream(3, 8) == b"\x00\x00\x04\x03\x00\x00\x00\x00\x03\x00\x00\x00\x08"
    assert frames.goaway(7, 1) == raw(frames.GOAWAY, 0, 0, b"\x00\x00\x00\x07\x00\x00\x00\x01")
    assert frames.ping_ack(b"12345678") == raw(frames.PING, frames.ACK, 0, b"12345678")
    assert raw(frames.SETTINGS, frames.ACK, 0, b"") == frames.SETTINGS_ACK
    assert frames.goaway_fields(b"\x80\x00\x00\x07\x00\x00\x00\x02") == (7, 2)
    assert frames.settings_values(b"\x00\x04\x00\x00\x00\x64") == [(4, 100)]
