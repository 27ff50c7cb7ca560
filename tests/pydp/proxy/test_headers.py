"""The connection manager's header handling, without I/O."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydp.listener.config import HttpConnectionManagerConfig
from pydp.proxy.headers import (
    EDGE_ONLY,
    INTERNAL_ONLY,
    add_connection_headers,
    local_address,
    new_request_id,
    sanitize_request,
    set_header,
)
from pydp.proxy.paths import normalize, strip_port

HEAD = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/")]
CONFIG = HttpConnectionManagerConfig(stat_prefix="p")
EDGE = HttpConnectionManagerConfig(stat_prefix="p", use_remote_address=True)

names = st.sampled_from(
    [
        *sorted(EDGE_ONLY),
        b"x-forwarded-proto",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-envoy-foo",
        b"expect",
        b"accept",
    ]
)
header_lists = st.lists(st.tuples(names, st.sampled_from([b"1", b"https", b"abc"])), max_size=8)


def value(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [v for k, v in headers if k == name]


@given(header_lists)
def test_internal_only_headers_never_pass(extra: list[tuple[bytes, bytes]]) -> None:
    out = sanitize_request([*HEAD, *extra], CONFIG, "10.0.0.1", b"http", drop_expect=True)
    assert out[:4] == HEAD
    assert not {k for k, _ in out} & INTERNAL_ONLY
    assert len(value(out, b"x-forwarded-proto")) == 1
    assert len(value(out, b"x-request-id")) >= 1
    assert value(out, b"expect") == []


@given(header_lists)
def test_edge_requests_lose_more(extra: list[tuple[bytes, bytes]]) -> None:
    out = sanitize_request([*HEAD, *extra], EDGE, "10.0.0.1", b"http", drop_expect=False)
    assert not {k for k, _ in out} & (EDGE_ONLY - {b"x-envoy-external-address"})
    assert value(out, b"x-forwarded-proto") == [b"http"]
    assert value(out, b"x-envoy-external-address") == [b"10.0.0.1"]
    assert value(out, b"x-forwarded-for")[0].endswith(b"10.0.0.1")
    assert value(out, b"x-request-id") not in ([b"1"], [b"abc"], [b"https"])


def test_xff_append_uses_the_machine_address_for_loopback_peers() -> None:
    out = sanitize_request(
        [*HEAD, (b"x-forwarded-for", b"1.2.3.4")], EDGE, "127.0.0.1", b"http", False
    )
    assert value(out, b"x-forwarded-for") == [b"1.2.3.4," + local_address().encode()]


def test_request_id_kept_or_generated() -> None:
    kept = sanitize_request([*HEAD, (b"x-request-id", b"abc")], CONFIG, "10.0.0.1", b"http", False)
    assert value(kept, b"x-request-id") == [b"abc"]
    off = HttpConnectionManagerConfig(stat_prefix="p", generate_request_id=False)
    assert value(sanitize_request(HEAD, off, "10.0.0.1", b"http", False), b"x-request-id") == []


def test_request_ids_are_uuid4() -> None:
    pattern = re.compile(rb"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(pattern.match(i) for i in ids)


def test_set_header_replaces_in_place() -> None:
    headers = [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]
    set_header(headers, b"a", b"x")
    assert headers == [(b"a", b"x"), (b"b", b"2")]
    set_header(headers, b"c", b"y")
    assert headers == [(b"a", b"x"), (b"b", b"2"), (b"c", b"y")]


def test_connection_headers() -> None:
    headers = [(b":status", b"200"), (b"server", b"upstream"), (b"x", b"1")]
    add_connection_headers(headers, b"envoy")
    assert [k for k, _ in headers] == [b":status", b"server", b"x", b"date"]
    assert headers[1] == (b"server", b"envoy")
    kept = [(b":status", b"200"), (b"date", b"yesterday")]
    add_connection_headers(kept, b"envoy")
    assert kept == [(b":status", b"200"), (b"date", b"yesterday"), (b"server", b"envoy")]


@pytest.mark.parametrize(
    ("path", "normalize_path", "merge", "expected"),
    [
        (b"/a/./b/../c?x=/../y", True, False, b"/a/c?x=/../y"),
        (b"/a/%7Euser/%2f%41", True, False, b"/a/~user/%2FA"),
        (b"/../a/..", True, False, b"/"),
        (b"/a//b///c?q=//", False, True, b"/a/b/c?q=//"),
        (b"/a//./b", True, True, b"/a/b"),
        (b"/a//b", False, False, b"/a//b"),
    ],
)
def test_path_options(path: bytes, normalize_path: bool, merge: bool, expected: bytes) -> None:
    assert normalize(path, normalize_path, merge) == expected


@pytest.mark.parametrize(
    ("authority", "expected"),
    [(b"a.b:80", b"a.b"), (b"a.b", b"a.b"), (b"[::1]:443", b"[::1]"), (b"[::1]", b"[::1]")],
)
def test_strip_port(authority: bytes, expected: bytes) -> None:
    assert strip_port(authority) == expected


def test_url_options_apply_before_routing() -> None:
    config = HttpConnectionManagerConfig(
        stat_prefix="p", normalize_path=True, merge_slashes=True, strip_any_host_port=True
    )
    head = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", b"a:8080"),
        (b":path", b"//x/../y"),
    ]
    out = sanitize_request(head, config, "10.0.0.1", b"http", False)
    assert out[2:4] == [(b":authority", b"a"), (b":path", b"/y")]
