"""Each permission and principal kind pydp evaluates, nested, and their algebra."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydp.rbac import RbacRequest
from tests.pydp.rbac.helpers import (
    CLIENT,
    method,
    path_prefix,
    peer,
    permission,
    principal,
    principal_name,
    request,
)


def test_any_matches_every_request() -> None:
    assert permission({"any": True})(request(path=None))
    assert principal({"any": True})(request())


@pytest.mark.parametrize(
    ("matcher", "matching", "other"),
    [
        ({"name": "x-a", "exact_match": "1"}, [("x-a", "1")], [("x-a", "2")]),
        ({"name": "x-a", "prefix_match": "ab"}, [("x-a", "abc")], [("x-a", "ba")]),
        ({"name": "x-a", "present_match": True}, [("x-a", "")], []),
        ({"name": "x-a", "present_match": True, "invert_match": True}, [], [("x-a", "1")]),
        (
            {"name": "x-a", "string_match": {"exact": "AbC", "ignore_case": True}},
            [("x-a", "abc")],
            [("x-a", "abd")],
        ),
        (
            {"name": "x-a", "safe_regex_match": {"regex": "v[0-9]+"}},
            [("x-a", "v12")],
            [("x-a", "v12a")],
        ),
        ({"name": "x-a", "range_match": {"start": 1, "end": 5}}, [("x-a", "4")], [("x-a", "5")]),
        # A header present several times matches when one of its values does.
        ({"name": "x-a", "exact_match": "2"}, [("x-a", "1"), ("x-a", "2")], [("x-a", "1")]),
    ],
)
def test_header_permissions_use_the_routers_header_matcher(
    matcher: dict[str, Any], matching: list[tuple[str, str]], other: list[tuple[str, str]]
) -> None:
    test = permission({"header": matcher})
    assert test(request(headers=matching))
    assert not test(request(headers=other))


def test_method_header() -> None:
    assert permission(method("GET"))(request("GET"))
    assert not permission(method("GET"))(request("get"))


@pytest.mark.parametrize(
    ("matcher", "path", "expected"),
    [
        ({"exact": "/a"}, "/a", True),
        ({"exact": "/a"}, "/a?x=1", True),
        ({"exact": "/a"}, "/a#frag", True),
        ({"exact": "/a"}, "/a/", False),
        ({"prefix": "/api/"}, "/api/v1?q=/api/", True),
        ({"prefix": "/api/"}, "/x?p=/api/", False),
        ({"suffix": ".js"}, "/x/app.js?v=1", True),
        ({"suffix": ".js"}, "/x/app.json", False),
        ({"contains": "adm"}, "/x/admin/y", True),
        ({"safe_regex": {"regex": "/v[0-9]+/.*"}}, "/v2/x?y", True),
        ({"safe_regex": {"regex": "/v[0-9]+/"}}, "/v2/x", False),
        ({"prefix": "/API", "ignore_case": True}, "/api/x", True),
        ({"exact": "/a"}, "/A", False),
    ],
)
def test_url_path_is_the_path_without_query_and_fragment(
    matcher: dict[str, Any], path: str, expected: bool
) -> None:
    assert permission({"url_path": {"path": matcher}})(request(path=path)) is expected


def test_url_path_never_matches_a_request_without_path() -> None:
    assert not permission({"url_path": {"path": {"exact": ""}}})(request(path=None))
    assert permission({"url_path": {"path": {"exact": ""}}})(request(path="?x"))


def test_destination_port_is_the_connections_local_port() -> None:
    test = permission({"destination_port": 15006})
    assert test(request(port=15006))
    assert not test(request(port=8080))


def test_permission_sets_nest() -> None:
    get_api = permission({"and_rules": {"rules": [method("GET"), path_prefix("/api")]}})
    assert get_api(request("GET", "/api/x"))
    assert not get_api(request("POST", "/api/x"))
    assert not get_api(request("GET", "/x"))
    either = permission({"or_rules": {"rules": [method("GET"), path_prefix("/api")]}})
    assert either(request("POST", "/api")) and either(request("GET", "/x"))
    assert not either(request("POST", "/x"))
    neither = permission({"not_rule": {"or_rules": {"rules": [method("GET"), path_prefix("/a")]}}})
    assert neither(request("POST", "/x"))
    assert not neither(request("GET", "/x"))


def test_authenticated_never_matches_plaintext() -> None:
    assert not principal({"authenticated": {}})(request())
    assert not principal(principal_name(CLIENT))(request())
    assert principal({"not_id": {"authenticated": {}}})(request())


def test_authenticated_without_a_name_matches_any_tls_peer() -> None:
    assert principal({"authenticated": {}})(request(peer=peer(CLIENT)))
    # As Envoy: the connection is TLS, even if the client showed no certificate.
    assert principal({"authenticated": {}})(request(peer=peer()))


def test_principal_name_tries_uri_sans_then_dns_sans_then_subject() -> None:
    client = peer("spiffe://td/ns/x/sa/y", CLIENT, dns=("a.example",), subject="CN=app,O=Org")
    assert principal(principal_name(CLIENT))(request(peer=client))
    assert principal(principal_name("a.example"))(request(peer=client))
    assert principal(principal_name("CN=app,O=Org"))(request(peer=client))
    assert not principal(principal_name("app"))(request(peer=client))
    prefix = {"authenticated": {"principal_name": {"prefix": "spiffe://cluster.local/ns/a/"}}}
    assert principal(prefix)(request(peer=client))
    suffix = {"authenticated": {"principal_name": {"suffix": "/sa/client"}}}
    assert principal(suffix)(request(peer=client))


def test_a_tls_peer_without_certificate_has_empty_names() -> None:
    anyone = {"authenticated": {"principal_name": {"safe_regex": {"regex": ".+"}}}}
    assert principal(anyone)(request(peer=peer(CLIENT)))
    assert not principal(anyone)(request(peer=peer()))
    assert principal({"authenticated": {"principal_name": {"exact": ""}}})(request(peer=peer()))


def test_principal_sets_nest() -> None:
    other = "spiffe://cluster.local/ns/a/sa/other"
    both = principal({"and_ids": {"ids": [principal_name(CLIENT), {"any": True}]}})
    assert both(request(peer=peer(CLIENT)))
    assert not both(request(peer=peer(other)))
    one = principal({"or_ids": {"ids": [principal_name(CLIENT), principal_name(other)]}})
    assert one(request(peer=peer(other)))
    assert not one(request(peer=peer("spiffe://x")))
    assert not one(request())
    not_client = principal({"not_id": principal_name(CLIENT)})
    assert not_client(request(peer=peer(other))) and not_client(request())
    assert not not_client(request(peer=peer(CLIENT)))


# Properties: a tree of the compiled kinds behaves as the boolean algebra it spells.

LEAVES = [
    {"any": True},
    method("GET"),
    method("POST"),
    path_prefix("/a"),
    {"url_path": {"path": {"exact": "/a/b"}}},
    {"header": {"name": "x-k", "present_match": True}},
    {"destination_port": 80},
]
permissions: st.SearchStrategy[dict[str, Any]] = st.recursive(
    st.sampled_from(LEAVES),
    lambda inner: st.one_of(
        st.builds(lambda x: {"not_rule": x}, inner),
        st.builds(lambda xs: {"and_rules": {"rules": xs}}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"or_rules": {"rules": xs}}, st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=8,
)
requests: st.SearchStrategy[RbacRequest] = st.builds(
    request,
    method=st.sampled_from(["GET", "POST"]),
    path=st.sampled_from(["/", "/a", "/a/b", "/a/b?x", "/b", None]),
    headers=st.sampled_from([(), (("x-k", "v"),)]),
    peer=st.sampled_from([None, peer(CLIENT), peer()]),
    port=st.sampled_from([80, 81]),
)


@given(permissions, requests)
def test_not_rule_is_the_negation(tree: dict[str, Any], rq: RbacRequest) -> None:
    assert permission({"not_rule": tree})(rq) is (not permission(tree)(rq))


@given(st.lists(permissions, min_size=1, max_size=4), requests)
def test_and_rules_is_all_and_or_rules_is_any(trees: list[dict[str, Any]], rq: RbacRequest) -> None:
    values = [permission(t)(rq) for t in trees]
    assert permission({"and_rules": {"rules": trees}})(rq) is all(values)
    assert permission({"or_rules": {"rules": trees}})(rq) is any(values)


PRINCIPAL_LEAVES = [
    {"any": True},
    {"authenticated": {}},
    principal_name(CLIENT),
    {"authenticated": {"principal_name": {"prefix": "spiffe://"}}},
]
principals: st.SearchStrategy[dict[str, Any]] = st.recursive(
    st.sampled_from(PRINCIPAL_LEAVES),
    lambda inner: st.one_of(
        st.builds(lambda x: {"not_id": x}, inner),
        st.builds(lambda xs: {"and_ids": {"ids": xs}}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"or_ids": {"ids": xs}}, st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=6,
)


@given(principals, st.lists(principals, min_size=1, max_size=3), requests)
def test_principal_sets_are_boolean(
    tree: dict[str, Any], trees: list[dict[str, Any]], rq: RbacRequest
) -> None:
    assert principal({"not_id": tree})(rq) is (not principal(tree)(rq))
    values = [principal(t)(rq) for t in trees]
    assert principal({"and_ids": {"ids": trees}})(rq) is all(values)
    assert principal({"or_ids": {"ids": trees}})(rq) is any(values)
