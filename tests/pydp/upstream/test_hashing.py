import re
from dataclasses import dataclass
from typing import Any

import pytest
from envoy.config.route.v3 import route_components_pb2

from pydp.errors import ConfigError
from pydp.upstream.digest import MASK, xxh64
from pydp.upstream.hashing import (
    CookieHash,
    HashPolicy,
    HeaderHash,
    QueryParameterHash,
    SourceIpHash,
    compile_hash_policies,
    compute_hash,
    cookie_value,
)

HashPolicyPb = route_components_pb2.RouteAction.HashPolicy


@dataclass(frozen=True)
class Substitute:
    """Stands in for the router's RE2 `Rewrite`."""

    pattern: re.Pattern[str]
    substitution: str

    def apply(self, text: str) -> str:
        return self.pattern.sub(self.substitution, text)


def compile_rewrite(pb: Any, path: str) -> Substitute:
    if pb.pattern.regex == "(":
        raise ConfigError("route r", path + ".pattern.regex", "bad regex")
    return Substitute(re.compile(pb.pattern.regex), pb.substitution)


def rotl1(v: int) -> int:
    return ((v << 1) | (v >> 63)) & MASK


def test_header_hash_is_xxhash_of_value() -> None:
    headers = [(b":path", b"/"), (b"x-user", b"alice")]
    assert compute_hash([HeaderHash(b"x-user")], headers, None) == xxh64(b"alice")


def test_header_values_are_sorted_and_concatenated() -> None:
    one = [(b"x-k", b"b"), (b"x-k", b"a")]
    other = [(b"x-k", b"a"), (b"x-k", b"b")]
    expected = xxh64(b"ab")
    assert compute_hash([HeaderHash(b"x-k")], one, None) == expected
    assert compute_hash([HeaderHash(b"x-k")], other, None) == expected


def test_header_regex_rewrite() -> None:
    policy = HeaderHash(b":path", rewrite=Substitute(re.compile(r"^/(\w+)/.*$"), r"\1"))
    headers = [(b":path", b"/users/42")]
    assert compute_hash([policy], headers, None) == xxh64(b"users")


def test_header_rewrite_sees_utf8_and_keeps_undecodable_bytes() -> None:
    policy = HeaderHash(b"x-k", rewrite=Substitute(re.compile("^é"), "e"))
    assert compute_hash([policy], [(b"x-k", "é\xff".encode() + b"\xfe")], None) == xxh64(
        b"e\xc3\xbf\xfe"
    )


def test_missing_values_give_no_hash() -> None:
    policies: list[HashPolicy] = [
        HeaderHash(b"x-a"),
        CookieHash(b"session"),
        QueryParameterHash(b"u"),
        SourceIpHash(),
    ]
    assert compute_hash(policies, [(b":path", b"/x")], None) is None


def test_cookie_hash_only_when_present() -> None:
    headers = [(b"cookie", b'a=1; session="abc"; b=2')]
    assert compute_hash([CookieHash(b"session")], headers, None) == xxh64(b"abc")
    assert compute_hash([CookieHash(b"other")], headers, None) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"cookie", b"k=v")], b"v"),
        ([(b"cookie", b"x=1;  k=v2")], b"v2"),
        ([(b"cookie", b"x=1"), (b"cookie", b"k=second")], b"second"),
        ([(b"cookie", b"k")], b""),
        ([(b"cookie", b'k=""')], b""),
        ([(b"cookie", b"k=a=b")], b"a=b"),
        ([(b"set-cookie", b"k=v")], b""),
    ],
)
def test_cookie_parsing_follows_envoy(headers: list[tuple[bytes, bytes]], expected: bytes) -> None:
    assert cookie_value(headers, b"k") == expected


def test_source_ip_hash() -> None:
    assert compute_hash([SourceIpHash()], [], "10.1.2.3") == xxh64(b"10.1.2.3")
    assert compute_hash([SourceIpHash()], [], "::ffff:0:1") == xxh64(b"::ffff:0:1")
    assert compute_hash([SourceIpHash()], [], None) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (b"/p?user=bob&x=1", b"bob"),
        (b"/p?x=1&user=bob&user=eve", b"bob"),
        (b"/p?user", b""),
        (b"/p?user=a%20b", b"a%20b"),
    ],
)
def test_query_parameter_hash(path: bytes, expected: bytes) -> None:
    headers = [(b":path", path)]
    assert compute_hash([QueryParameterHash(b"user")], headers, None) == xxh64(expected)


def test_query_parameter_absent() -> None:
    assert compute_hash([QueryParameterHash(b"user")], [(b":path", b"/p?x=1")], None) is None


def test_hashes_combine_by_rotate_xor() -> None:
    headers = [(b"x-a", b"1"), (b"x-b", b"2")]
    a, b = xxh64(b"1"), xxh64(b"2")
    assert compute_hash([HeaderHash(b"x-a"), HeaderHash(b"x-b")], headers, None) == rotl1(a) ^ b


def test_duplicate_policies_do_not_cancel() -> None:
    headers = [(b"x-a", b"1")]
    value = compute_hash([HeaderHash(b"x-a"), HeaderHash(b"x-a")], headers, None)
    assert value == rotl1(xxh64(b"1")) ^ xxh64(b"1")
    assert value != 0


def test_terminal_stops_once_a_hash_exists() -> None:
    headers = [(b"x-a", b"1"), (b"x-b", b"2")]
    policies = [
        HeaderHash(b"missing", terminal=True),
        HeaderHash(b"x-a", terminal=True),
        HeaderHash(b"x-b"),
    ]
    assert compute_hash(policies, headers, None) == xxh64(b"1")


def test_compile_hash_policies() -> None:
    pbs = [
        HashPolicyPb(header=HashPolicyPb.Header(header_name="X-User")),
        HashPolicyPb(
            cookie=HashPolicyPb.Cookie(
                name="session", path="/", attributes=[{"name": "SameSite", "value": "Lax"}]
            ),
            terminal=True,
        ),
        HashPolicyPb(connection_properties=HashPolicyPb.ConnectionProperties(source_ip=True)),
        HashPolicyPb(query_parameter=HashPolicyPb.QueryParameter(name="u")),
        HashPolicyPb(connection_properties=HashPolicyPb.ConnectionProperties(source_ip=False)),
        HashPolicyPb(header=HashPolicyPb.Header(header_name="X-É")),
    ]
    compiled = compile_hash_policies(pbs, "route r", "hash_policy")
    assert compiled == (
        HeaderHash(b"x-user"),
        CookieHash(b"session", terminal=True),
        SourceIpHash(),
        QueryParameterHash(b"u"),
        HeaderHash("x-É".encode()),  # ASCII folding only, as Envoy's LowerCaseString
    )


def test_compile_header_regex_rewrite() -> None:
    pb = HashPolicyPb(header=HashPolicyPb.Header(header_name=":path"))
    pb.header.regex_rewrite.pattern.regex = "^/v[0-9]+"
    pb.header.regex_rewrite.substitution = ""
    (policy,) = compile_hash_policies([pb], "route r", "hash_policy", compile_rewrite)
    assert isinstance(policy, HeaderHash)
    assert compute_hash([policy], [(b":path", b"/v2/x")], None) == xxh64(b"/x")
    pb.header.regex_rewrite.pattern.regex = "("
    with pytest.raises(ConfigError) as info:
        compile_hash_policies([pb], "route r", "hash_policy", compile_rewrite)
    assert info.value.field == "hash_policy[0].header.regex_rewrite.pattern.regex"


@pytest.mark.parametrize(
    ("pb", "field"),
    [
        (
            HashPolicyPb(cookie=HashPolicyPb.Cookie(name="s", ttl={"seconds": 5})),
            "hash_policy[0].cookie.ttl",
        ),
        (
            HashPolicyPb(filter_state=HashPolicyPb.FilterState(key="k")),
            "hash_policy[0].filter_state",
        ),
        (
            HashPolicyPb(header=HashPolicyPb.Header(header_name="")),
            "hash_policy[0].header.header_name",
        ),
        (
            HashPolicyPb(header=HashPolicyPb.Header(header_name="x\ny")),
            "hash_policy[0].header.header_name",
        ),
        (
            # Without the caller's RE2 compiler a rewrite cannot be honoured.
            HashPolicyPb(
                header=HashPolicyPb.Header(header_name="x", regex_rewrite={"pattern": {}})
            ),
            "hash_policy[0].header.regex_rewrite",
        ),
        (
            HashPolicyPb(cookie=HashPolicyPb.Cookie(name="")),
            "hash_policy[0].cookie.name",
        ),
        (
            HashPolicyPb(cookie=HashPolicyPb.Cookie(name="s", attributes=[{"value": "v"}])),
            "hash_policy[0].cookie.attributes[0].name",
        ),
        (
            HashPolicyPb(query_parameter=HashPolicyPb.QueryParameter(name="")),
            "hash_policy[0].query_parameter.name",
        ),
        (HashPolicyPb(terminal=True), "hash_policy[0]"),
    ],
)
def test_compile_rejects_what_cannot_be_honoured(pb: object, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_hash_policies([pb], "route r", "hash_policy")
    assert info.value.field == field
    assert str(info.value).startswith("route r: " + field)
