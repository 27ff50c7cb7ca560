"""SAN matching as Envoy's `match_typed_subject_alt_names`, and reading certificates."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from envoy.extensions.transport_sockets.tls.v3 import common_pb2
from google.protobuf.json_format import ParseDict
from hypothesis import given
from hypothesis import strategies as st

from pydp.errors import ConfigError
from pydp.tls.san import (
    DNS,
    URI,
    SanMatcher,
    cert_facts,
    compile_san_matchers,
    dns_name_match,
    pem_uri_sans,
    sans_match,
)
from tests.pydp.tls.pki import Pki

SPIFFE = "spiffe://cluster.local/ns/shop/sa/web"


def matchers(*specs: dict[str, Any]) -> tuple[SanMatcher, ...]:
    protos = [ParseDict(spec, common_pb2.SubjectAltNameMatcher()) for spec in specs]
    return compile_san_matchers(protos, "cluster c", "validation")


def uri(**matcher: Any) -> dict[str, Any]:
    return {"san_type": "URI", "matcher": matcher}


def dns(**matcher: Any) -> dict[str, Any]:
    return {"san_type": "DNS", "matcher": matcher}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (uri(exact=SPIFFE), True),
        (uri(exact=SPIFFE + "x"), False),
        (uri(exact=SPIFFE.upper()), False),
        (uri(exact=SPIFFE.upper(), ignore_case=True), True),
        (uri(prefix="spiffe://cluster.local/"), True),
        (uri(prefix="spiffe://other/"), False),
        (uri(prefix="SPIFFE://CLUSTER.LOCAL/", ignore_case=True), True),
        (uri(suffix="/sa/web"), True),
        (uri(suffix="/sa/api"), False),
        (uri(contains="/ns/shop/"), True),
        (uri(contains="/ns/bank/"), False),
        (uri(safe_regex={"regex": r"spiffe://cluster\.local/ns/[a-z]+/sa/web"}), True),
        (uri(safe_regex={"regex": r"spiffe://cluster\.local/ns/shop"}), False),  # full match
        (dns(exact=SPIFFE), False),  # a URI SAN is not a DNS SAN
    ],
)
def test_uri_matchers(spec: dict[str, Any], expected: bool) -> None:
    assert sans_match(matchers(spec), [SPIFFE], []) is expected


def test_any_one_matcher_matching_any_one_san_suffices() -> None:
    both = matchers(uri(exact="spiffe://x/a"), dns(suffix=".example.com"))
    assert sans_match(both, ["spiffe://y/b"], ["api.example.com"])
    assert sans_match(both, ["spiffe://y/b", "spiffe://x/a"], [])
    assert not sans_match(both, ["spiffe://y/b"], ["example.org"])


def test_no_matcher_passes_every_certificate() -> None:
    assert sans_match((), [], [])


@pytest.mark.parametrize(
    ("name", "san", "expected"),
    [
        ("api.example.com", "api.example.com", True),
        ("API.Example.com", "api.example.COM", True),
        ("api.example.com", "*.example.com", True),
        ("a.b.example.com", "*.example.com", False),
        ("example.com", "*.example.com", False),
        (".example.com", "*.example.com", False),
        ("api.example.com", "*.com", False),
        ("api.example.com", "api.*.com", False),
    ],
)
def test_dns_exact_follows_dns_rules(name: str, san: str, expected: bool) -> None:
    assert dns_name_match(name, san) is expected
    assert sans_match(matchers(dns(exact=name)), [], [san]) is expected


def test_dns_matchers_other_than_exact_compare_text() -> None:
    assert sans_match(matchers(dns(suffix=".example.com")), [], ["*.example.com"])
    assert not sans_match(matchers(dns(prefix="api.")), [], ["*.example.com"])


labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(host=labels, domain=st.lists(labels, min_size=1, max_size=3).map(".".join))
def test_a_wildcard_stands_for_exactly_one_label(host: str, domain: str) -> None:
    assert dns_name_match(f"{host}.{domain}", f"*.{domain}")
    assert not dns_name_match(domain, f"*.{domain}")
    assert not dns_name_match(f"{host}.{host}.{domain}", f"*.{domain}")


@pytest.mark.parametrize(
    ("spec", "field", "problem"),
    [
        ({"san_type": "EMAIL", "matcher": {"exact": "a@b"}}, "validation[0].san_type", "EMAIL"),
        ({"san_type": "IP_ADDRESS", "matcher": {"exact": "::1"}}, "validation[0].san_type", "IP"),
        ({"matcher": {"exact": "x"}}, "validation[0].san_type", "SAN_TYPE_UNSPECIFIED"),
        ({"san_type": "URI"}, "validation[0].matcher", "is required"),
        (uri(prefix=""), "validation[0].matcher.prefix", "must not be empty"),
        ({"san_type": "URI", "matcher": {}}, "validation[0].matcher", "one of exact"),
        (
            uri(safe_regex={"regex": "a"}, ignore_case=True),
            "validation[0].matcher.ignore_case",
            "no effect for safe_regex",
        ),
        (uri(safe_regex={"regex": "(a"}), "validation[0].matcher.safe_regex.regex", "regex"),
        (
            {"san_type": "URI", "matcher": {"exact": "x"}, "oid": "1.2.3"},
            "validation[0].oid",
            "not supported",
        ),
    ],
)
def test_matchers_pydp_cannot_honour_are_refused(
    spec: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        matchers(spec)
    assert raised.value.resource == "cluster c"
    assert raised.value.field.startswith(field)
    assert problem in raised.value.problem


def test_certificate_facts_are_read_from_der() -> None:
    pki = Pki()
    leaf = pki.leaf(uris=(SPIFFE,), dns=("web.shop",), common_name="web")
    facts = cert_facts(leaf.der)
    assert facts.uri_sans == (SPIFFE,)
    assert facts.dns_sans == ("web.shop",)
    assert facts.subject == "CN=web"
    assert facts.sha256 == hashlib.sha256(leaf.der).hexdigest()
    assert pem_uri_sans(leaf.chain_pem) == (SPIFFE,)
    bare = cert_facts(pki.leaf().der)
    assert (bare.uri_sans, bare.dns_sans, bare.subject) == ((), (), "")
    assert (
        cert_facts(b"not a certificate").sha256 == hashlib.sha256(b"not a certificate").hexdigest()
    )
    assert (URI, DNS) == ("URI", "DNS")
