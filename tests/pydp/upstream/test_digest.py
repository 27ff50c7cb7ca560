import pytest

from pydp.upstream.digest import murmur2_64, xxh64, xxh64_parts

# Vectors from Envoy's test/common/common/hash_test.cc and the xxHash reference.
XXH64_VECTORS = [
    (b"foo", 0, 3728699739546630719),
    (b"bar", 0, 5234164152756840025),
    (b"foo\nbar", 0, 8917841378505826757),
    (b"lyft", 0, 4400747396090729504),
    (b"", 0, 17241709254077376921),
    (b"Nobody inspects the spammish repetition", 0, 0xFBCEA83C8A378BF1),
    (b"abc", 12345, 0x01700E64F6F23509),
]
MURMUR_VECTORS = [
    (b"foo", 9631199822919835226),
    (b"bar", 11474628671133349555),
    (b"foo\nbar", 16306510975912980159),
    (b"lyft", 12847078931730529320),
    (b"", 6142509188972423790),
]


@pytest.mark.parametrize(("data", "seed", "expected"), XXH64_VECTORS)
def test_xxh64_matches_reference(data: bytes, seed: int, expected: int) -> None:
    assert xxh64(data, seed) == expected


@pytest.mark.parametrize(("data", "expected"), MURMUR_VECTORS)
def test_murmur2_matches_envoy(data: bytes, expected: int) -> None:
    assert murmur2_64(data) == expected


def test_parts_hash_as_their_concatenation() -> None:
    assert xxh64_parts([b"foo", b"\n", b"bar"]) == 8917841378505826757


def test_long_inputs_use_every_lane() -> None:
    data = bytes(range(256)) * 3
    assert xxh64(data) != xxh64(data[:-1] + b"\x00")
    assert 0 <= xxh64(data) < 2**64
