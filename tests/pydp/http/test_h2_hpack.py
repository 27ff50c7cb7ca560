"""HPACK: pydp's encoder and decoder agree with the `hpack` library both ways."""

from __future__ import annotations

import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydp.http.h2_hpack import Decoder, Encoder, OversizedHeaderList

Fields = list[tuple[bytes, bytes]]

names = st.sampled_from(
    [
        b":status",
        b":path",
        b"content-type",
        b"content-length",
        b"date",
        b"server",
        b"cookie",
        b"authorization",
        b"x-custom",
        b"x-envoy-upstream-service-time",
    ]
)
values = st.one_of(
    st.sampled_from([b"", b"200", b"/", b"text/plain", b"envoy", b"0"]),
    st.binary(max_size=60),
    st.binary(min_size=3000, max_size=3500),
)
blocks = st.lists(st.lists(st.tuples(names, values), max_size=8), max_size=12)
table_sizes = st.sampled_from([None, 0, 100, 4096])


@settings(deadline=None)
@given(blocks, table_sizes)
def test_what_pydp_encodes_hpack_decodes(
    sequence: list[list[tuple[bytes, bytes]]], size: int | None
) -> None:
    encoder = Encoder()
    decoder = hpack.Decoder()
    for index, headers in enumerate(sequence):
        if size is not None and index == 1:
            encoder.set_max_size(size)
        decoded = decoder.decode(encoder.encode(headers), raw=True)
        assert [(bytes(n), bytes(v)) for n, v in decoded] == headers


@settings(deadline=None)
@given(blocks)
def test_what_hpack_encodes_pydp_decodes(sequence: list[Fields]) -> None:
    encoder = hpack.Encoder()
    decoder = Decoder(1 << 20)
    for headers in sequence:
        assert decoder.decode(encoder.encode(headers)) == headers


def test_a_repeated_field_is_one_byte_once_in_the_table() -> None:
    encoder = Encoder()
    first = encoder.encode([(b"x-custom", b"value")])
    again = encoder.encode([(b"x-custom", b"value")])
    assert len(first) > 1
    assert again == b"\xbe"  # index 62: the newest dynamic entry


def test_never_indexed_and_unindexed_fields_leave_the_table_alone() -> None:
    encoder = Encoder()
    generation = encoder.generation
    block = encoder.encode([(b"authorization", b"secret"), (b":path", b"/a"), (b"cookie", b"a=1")])
    assert encoder.generation == generation
    assert block[0] & 0xF0 == 0x10  # never indexed
    decoder = hpack.Decoder()
    decoded = decoder.decode(block, raw=True)
    assert [type(h).__name__ for h in decoded] == [
        "NeverIndexedHeaderTuple",
        "HeaderTuple",
        "NeverIndexedHeaderTuple",
    ]


def test_the_decoder_generation_moves_only_when_its_table_changes() -> None:
    encoder = hpack.Encoder()
    decoder = Decoder(1 << 20)
    block = encoder.encode([(b"x-a", b"1")])
    decoder.decode(block)
    after_insert = decoder.generation
    indexed = encoder.encode([(b"x-a", b"1")])
    assert decoder.decode(indexed) == [(b"x-a", b"1")]
    assert decoder.generation == after_insert
    decoder.decode(encoder.encode([(b"x-b", b"2")]))
    assert decoder.generation == after_insert + 1
    # The same bytes now name another entry: index 62 is the newest one.
    assert decoder.decode(indexed) == [(b"x-b", b"2")]


def test_the_peer_table_size_is_announced_and_respected() -> None:
    encoder = Encoder()
    decoder = hpack.Decoder()
    decoder.decode(encoder.encode([(b"x-a", b"1")]), raw=True)
    encoder.set_max_size(0)
    block = encoder.encode([(b"x-a", b"1"), (b"x-b", b"2")])
    assert block[0] == 0x20  # a size update to 0 first
    assert [tuple(h) for h in decoder.decode(block, raw=True)] == [(b"x-a", b"1"), (b"x-b", b"2")]
    assert len(decoder.header_table.dynamic_entries) == 0


@pytest.mark.parametrize(
    "block",
    [
        b"\x80",  # index 0
        b"\xff\x80",  # truncated integer
        b"\xbe",  # index 62 of an empty table
        b"\x40\x85abc",  # truncated string
        b"\x82\x3f\xe1\x1f",  # a size update (4096) after a field
        b"\x3f\xe2\x1f",  # a size update above the maximum (4097)
        b"\xff\xff\xff\xff\xff\xff\x01",  # an integer too long
        b"\x40\x81\xff\x81a",  # an invalid Huffman string
    ],
)
def test_invalid_blocks_are_decoding_errors(block: bytes) -> None:
    with pytest.raises(hpack.HPACKDecodingError):
        Decoder(1 << 20).decode(block)


def test_a_header_list_over_the_limit_is_refused() -> None:
    block = hpack.Encoder().encode([(b"x", b"y" * 100)])
    with pytest.raises(OversizedHeaderList):
        Decoder(100).decode(block)
