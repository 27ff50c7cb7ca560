"""HPACK (RFC 7541) for pydp's HTTP/2 connections, cheap in the steady state.

Theory of operation
-------------------
`Decoder` decodes a header block against its dynamic table and counts the
changes to that table in `generation`: a block that left `generation` as it
was decodes to the same headers as long as `generation` stays, which lets a
connection remember what it made of the block (a client repeating a request
sends the same bytes: every field indexed).

`Encoder` keeps, besides the dynamic table, a map from (name, value) to the
insertion number of its newest copy, so that a field already in the table is
one dict lookup; literal strings are encoded once (Huffman when shorter, as
nghttp2) and remembered. Its `generation` likewise lets a connection reuse
an encoded block while the table stays. Which fields go into the table
follows nghttp2's rules (Envoy's encoder): not `:path`, `content-length`,
`location`, `set-cookie`, `etag`, `age`, `if-modified-since`,
`if-none-match`, nor a field over three quarters of the table;
`authorization`, `proxy-authorization` and cookies shorter than 20 bytes are
sent never-indexed (as h2 did).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from hpack.exceptions import HPACKDecodingError
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

Header = tuple[bytes, bytes]

DEFAULT_TABLE_SIZE = 4096
_STATIC: tuple[Header, ...] = HeaderTable.STATIC_TABLE
_STATIC_LENGTH = len(_STATIC)
_MAX_INTEGER_BYTES = 5


class OversizedHeaderList(HPACKDecodingError):
    """The decoded header list exceeds the decoder's `max_list_size`."""


def _entry_size(name: bytes, value: bytes) -> int:
    return len(name) + len(value) + 32


class Decoder:
    __slots__ = (
        "_entries",
        "_max_size",
        "_size",
        "generation",
        "max_allowed_size",
        "max_list_size",
    )

    def __init__(self, max_list_size: int) -> None:
        self._entries: deque[Header] = deque()  # newest first
        self._size = 0
        self._max_size = DEFAULT_TABLE_SIZE
        self.max_allowed_size = DEFAULT_TABLE_SIZE  # our SETTINGS_HEADER_TABLE_SIZE
        self.max_list_size = max_list_size
        self.generation = 0

    def decode(self, block: bytes) -> list[Header]:
        """The header list; raises `HPACKDecodingError` (`OversizedHeaderList` for
        a list over `max_list_size`)."""
        headers: list[Header] = []
        pos = 0
        end = len(block)
        inflated = 0
        try:
            while pos < end:
                first = block[pos]
                if first & 0x80:
                    index, pos = _integer(block, pos, 0x7F)
                    header = self._lookup(index)
                elif first & 0x40:
                    header, pos = self._literal(block, pos, 0x3F)
                    self._add(header)
                elif first & 0x20:
                    if headers:
                        raise HPACKDecodingError("Table size update not at the start of the block")
                    size, pos = _integer(block, pos, 0x1F)
                    self._resize(size)
                    continue
                else:
                    header, pos = self._literal(block, pos, 0x0F)
                headers.append(header)
                inflated += len(header[0]) + len(header[1]) + 32
                if inflated > self.max_list_size:
                    raise OversizedHeaderList(
                        f"A header list larger than {self.max_list_size} has been received"
                    )
        except IndexError:
            raise HPACKDecodingError("Truncated header block") from None
        if self._max_size > self.max_allowed_size:
            raise HPACKDecodingError("Encoder did not shrink table size to within the max")
        return headers

    def _lookup(self, index: int) -> Header:
        if 0 < index <= _STATIC_LENGTH:
            return _STATIC[index - 1]
        index -= _STATIC_LENGTH + 1
        if 0 <= index < len(self._entries):
            return self._entries[index]
        raise HPACKDecodingError(f"Invalid table index {index + _STATIC_LENGTH + 1}")

    def _literal(self, block: bytes, pos: int, mask: int) -> tuple[Header, int]:
        if block[pos] & mask:
            index, pos = _integer(block, pos, mask)
            name = self._lookup(index)[0]
        else:
            name, pos = _string(block, pos + 1)
        value, pos = _string(block, pos)
        return (name, value), pos

    def _add(self, header: Header) -> None:
        self.generation += 1
        size = _entry_size(*header)
        entries = self._entries
        if size > self._max_size:
            entries.clear()
            self._size = 0
            return
        entries.appendleft(header)
        self._size += size
        while self._size > self._max_size:
            self._size -= _entry_size(*entries.pop())

    def _resize(self, size: int) -> None:
        if size > self.max_allowed_size:
            raise HPACKDecodingError("Encoder exceeded max allowable table size")
        self.generation += 1
        self._max_size = size
        entries = self._entries
        while self._size > size:
            self._size -= _entry_size(*entries.pop())


def _integer(block: bytes, pos: int, mask: int) -> tuple[int, int]:
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    for _ in range(_MAX_INTEGER_BYTES):
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise HPACKDecodingError("Variable integer representation is too long")


def _string(block: bytes, pos: int) -> tuple[bytes, int]:
    huffman = block[pos] & 0x80
    length, pos = _integer(block, pos, 0x7F)
    stop = pos + length
    if stop > len(block):
        raise HPACKDecodingError("Truncated header block")
    raw = block[pos:stop]
    return (decode_huffman(raw) if huffman else raw), stop


# -- encoding --------------------------------------------------------------------------------

_HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
_NOT_INDEXED = frozenset(
    {
        b":path",
        b"age",
        b"content-length",
        b"etag",
        b"if-modified-since",
        b"if-none-match",
        b"location",
        b"set-cookie",
    }
)
_SECURE = frozenset({b"authorization", b"proxy-authorization"})
_STATIC_EXACT: dict[Header, bytes] = {}
_STATIC_NAME: dict[bytes, int] = {}
for _i, _entry in enumerate(_STATIC, 1):
    _STATIC_EXACT.setdefault(_entry, bytes([0x80 | _i]))
    _STATIC_NAME.setdefault(_entry[0], _i)
_STRINGS: dict[bytes, bytes] = {}
_STRINGS_MAX = 4096


def _encode_integer(value: int, mask: int, first: int) -> bytes:
    if value < mask:
        return bytes([first | value])
    out = [first | mask]
    value -= mask
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_string(value: bytes) -> bytes:
    """A string literal: Huffman-coded when that is shorter (remembered)."""
    encoded = _STRINGS.get(value)
    if encoded is None:
        coded = _HUFFMAN.encode(value)
        if len(coded) < len(value):
            encoded = _encode_integer(len(coded), 0x7F, 0x80) + coded
        else:
            encoded = _encode_integer(len(value), 0x7F, 0) + value
        if len(_STRINGS) >= _STRINGS_MAX:
            _STRINGS.clear()
        _STRINGS[value] = encoded
    return encoded


_INDEXED = [bytes([0x80 | index]) for index in range(0x7F)]


class Encoder:
    """`generation` counts the changes to the table: a block that left it as it was
    encodes the same fields the same way as long as it stays."""

    __slots__ = (
        "_entries",
        "_exact",
        "_inserted",
        "_max_size",
        "_names",
        "_size",
        "_size_update",
        "generation",
    )

    def __init__(self) -> None:
        self._entries: deque[tuple[Header, int]] = deque()  # (field, insertion), newest first
        self._exact: dict[Header, int] = {}  # field -> insertion number of its newest copy
        self._names: dict[bytes, int] = {}
        self._inserted = 0
        self._size = 0
        self._max_size = DEFAULT_TABLE_SIZE
        self._size_update: int | None = None
        self.generation = 0

    def set_max_size(self, peer_limit: int) -> None:
        """The peer's SETTINGS_HEADER_TABLE_SIZE: use up to the default of 4096."""
        size = min(peer_limit, DEFAULT_TABLE_SIZE)
        if size != self._max_size:
            self.generation += 1
            self._max_size = size
            self._size_update = size
            self._evict()

    def encode(self, headers: Iterable[Header]) -> bytes:
        """Fields already normalized (lowercase names, see `pydp.http.h2_headers`)."""
        out: list[bytes] = []
        if self._size_update is not None:
            out.append(_encode_integer(self._size_update, 0x1F, 0x20))
            self._size_update = None
        exact = self._exact
        for header in headers:
            static = _STATIC_EXACT.get(header)
            if static is not None:
                out.append(static)
                continue
            insertion = exact.get(header)
            if insertion is not None:
                index = self._inserted - insertion + _STATIC_LENGTH + 1
                out.append(_INDEXED[index] if index < 0x7F else _encode_integer(index, 0x7F, 0x80))
                continue
            out.append(self._literal(header))
        return b"".join(out)

    def _literal(self, header: Header) -> bytes:
        name, value = header
        if name in _SECURE or (name == b"cookie" and len(value) < 20):
            mask, first, index = 0x0F, 0x10, False
        elif name in _NOT_INDEXED or _entry_size(name, value) > self._max_size * 3 // 4:
            mask, first, index = 0x0F, 0x00, False
        else:
            mask, first, index = 0x3F, 0x40, True
        name_index = _STATIC_NAME.get(name)
        if name_index is None:
            insertion = self._names.get(name)
            if insertion is not None:
                name_index = self._inserted - insertion + _STATIC_LENGTH + 1
        if name_index is not None:
            encoded = _encode_integer(name_index, mask, first) + encode_string(value)
        else:
            encoded = bytes([first]) + encode_string(name) + encode_string(value)
        if index:
            self._add(header)
        return encoded

    def _add(self, header: Header) -> None:
        self.generation += 1
        self._inserted += 1
        insertion = self._inserted
        self._entries.appendleft((header, insertion))
        self._exact[header] = insertion
        self._names[header[0]] = insertion
        self._size += _entry_size(*header)
        self._evict()

    def _evict(self) -> None:
        entries = self._entries
        while self._size > self._max_size:
            header, insertion = entries.pop()
            self._size -= _entry_size(*header)
            if self._exact.get(header) == insertion:
                del self._exact[header]
            if self._names.get(header[0]) == insertion:
                del self._names[header[0]]
