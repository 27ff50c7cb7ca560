"""The 64-bit hash functions Envoy's upstream code uses: xxHash64 and MurmurHash2-64A.

Both are reproduced exactly (checked against the vectors of Envoy's own hash
tests), so ring hash rings, Maglev tables and request hashes come out the same
as Envoy's for the same keys. `murmur2_64` is libstdc++'s `std::hash` byte hash
with Envoy's seed, which is what `RingHashLbConfig.MURMUR_HASH_2` selects.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = (1 << 64) - 1

P1 = 0x9E3779B185EBCA87
P2 = 0xC2B2AE3D27D4EB4F
P3 = 0x165667B19E3779F9
P4 = 0x85EBCA77C2B2AE63
P5 = 0x27D4EB2F165667C5

STD_HASH_SEED = 0xC70F6907
_MURMUR_MUL = (0xC6A4A793 << 32) + 0x5BD1E995


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & MASK


def _round(acc: int, lane: int) -> int:
    acc = (acc + lane * P2) & MASK
    return (_rotl(acc, 31) * P1) & MASK


def _merge(acc: int, val: int) -> int:
    acc ^= _round(0, val)
    return (acc * P1 + P4) & MASK


def xxh64(data: bytes, seed: int = 0) -> int:
    """XXH64 of `data` (the reference algorithm, little-endian lanes)."""
    n = len(data)
    i = 0
    if n >= 32:
        v1 = (seed + P1 + P2) & MASK
        v2 = (seed + P2) & MASK
        v3 = seed & MASK
        v4 = (seed - P1) & MASK
        limit = n - 32
        from_bytes = int.from_bytes
        while i <= limit:
            v1 = _round(v1, from_bytes(data[i : i + 8], "little"))
            v2 = _round(v2, from_bytes(data[i + 8 : i + 16], "little"))
            v3 = _round(v3, from_bytes(data[i + 16 : i + 24], "little"))
            v4 = _round(v4, from_bytes(data[i + 24 : i + 32], "little"))
            i += 32
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & MASK
        for v in (v1, v2, v3, v4):
            h = _merge(h, v)
    else:
        h = (seed + P5) & MASK
    h = (h + n) & MASK
    while i + 8 <= n:
        k1 = _round(0, int.from_bytes(data[i : i + 8], "little"))
        h ^= k1
        h = (_rotl(h, 27) * P1 + P4) & MASK
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i : i + 4], "little") * P1) & MASK
        h = (_rotl(h, 23) * P2 + P3) & MASK
        i += 4
    while i < n:
        h ^= (data[i] * P5) & MASK
        h = (_rotl(h, 11) * P1) & MASK
        i += 1
    h ^= h >> 33
    h = (h * P2) & MASK
    h ^= h >> 29
    h = (h * P3) & MASK
    h ^= h >> 32
    return h


def xxh64_parts(parts: Iterable[bytes], seed: int = 0) -> int:
    """XXH64 over several values as Envoy's span overload feeds them: concatenated."""
    return xxh64(b"".join(parts), seed)


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def murmur2_64(data: bytes, seed: int = STD_HASH_SEED) -> int:
    """MurmurHash2 (64-bit, libstdc++ `_Hash_bytes`) of `data`."""
    n = len(data)
    aligned = n & ~7
    h = (seed ^ (n * _MURMUR_MUL)) & MASK
    for i in range(0, aligned, 8):
        block = int.from_bytes(data[i : i + 8], "little")
        mixed = (_shift_mix((block * _MURMUR_MUL) & MASK) * _MURMUR_MUL) & MASK
        h ^= mixed
        h = (h * _MURMUR_MUL) & MASK
    if n & 7:
        h ^= int.from_bytes(data[aligned:], "little")
        h = (h * _MURMUR_MUL) & MASK
    h = (_shift_mix(h) * _MURMUR_MUL) & MASK
    return _shift_mix(h)
