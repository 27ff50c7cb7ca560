from __future__ import annotations

from typing import Any

import pytest

from pydp.router import DirectResponse
from tests.pydp.router.util import body_route, one_route, request, table


def _matches(match: dict[str, Any], path: str, *headers: tuple[str, str]) -> bool:
    route = {"match": match, "direct_response": {"status": 200}}
    return isinstance(table(one_route(route)).route(request(path, "h", *headers)), DirectResponse)


@pytest.mark.parametrize(
    ("match", "path", "expected"),
    [
        ({"prefix": "/api"}, "/api", True),
        ({"prefix": "/api"}, "/apix/y", True),
        ({"prefix": "/api"}, "/API", False),
        ({"prefix": "/api", "case_sensitive": False}, "/API/x", True),
        ({"prefix": "/api"}, "/ap?/api", False),
        ({"prefix": ""}, "/anything", True),
        ({"path": "/a"}, "/a", True),
        ({"path": "/a"}, "/a?x=1", True),
        ({"path": "/a"}, "/a/", False),
        ({"path": "/a"}, "/A", False),
        ({"path": "/a", "case_sensitive": False}, "/A?Q", True),
        ({"safe_regex": {"regex": "/v[0-9]+/.*"}}, "/v12/x?y", True),
        ({"safe_regex": {"regex": "/v[0-9]+"}}, "/v12/x", False),
        ({"safe_regex": {"regex": "/V1"}, "case_sensitive": False}, "/v1", False),
        ({"path_separated_prefix": "/api"}, "/api", True),
        ({"path_separated_prefix": "/api"}, "/api/x", True),
        ({"path_separated_prefix": "/api"}, "/api?x", True),
        ({"path_separated_prefix": "/api"}, "/apix", False),
        ({"path_separated_prefix": "/api", "case_sensitive": False}, "/API/x", True),
    ],
)
def test_path_specifiers(match: dict[str, Any], path: str, expected: bool) -> None:
    assert _matches(match, path) is expected


def test_path_parameters_are_ignored_only_when_asked() -> None:
    config = one_route(body_route("/", "x"))
    config["virtual_hosts"][0]["routes"] = [
        {"match": {"path": "/a"}, "direct_response": {"status": 200}},
    ]
    assert not isinstance(table(config).route(request("/a;v=1")), DirectResponse)
    config["ignore_path_parameters_in_path_matching"] = True
    assert isinstance(table(config).route(request("/a;v=1?x")), DirectResponse)


def _header(matcher: dict[str, Any], *headers: tuple[str, str]) -> bool:
    return _matches({"prefix": "/", "headers": [{"name": "x-h", **matcher}]}, "/", *headers)


@pytest.mark.parametrize(
    ("matcher", "headers", "expected"),
    [
        ({"exact_match": "v"}, [("x-h", "v")], True),
        ({"exact_match": "v"}, [("x-h", "V")], False),
        ({"exact_match": ""}, [("x-h", "anything")], True),
        ({"exact_match": "v"}, [], False),
        ({"prefix_match": "ab"}, [("x-h", "abc")], True),
        ({"suffix_match": "bc"}, [("x-h", "abc")], True),
        ({"contains_match": "b"}, [("x-h", "abc")], True),
        ({"contains_match": "z"}, [("x-h", "abc")], False),
        ({"safe_regex_match": {"regex": "a.c"}}, [("x-h", "abc")], True),
        ({"safe_regex_match": {"regex": "a"}}, [("x-h", "abc")], False),
        ({"present_match": True}, [("x-h", "")], True),
        ({"present_match": True}, [], False),
        ({"present_match": False}, [], True),
        ({"present_match": False}, [("x-h", "v")], False),
        ({}, [("x-h", "v")], True),
        ({}, [], False),
        ({"range_match": {"start": 1, "end": 3}}, [("x-h", "2")], True),
        ({"range_match": {"start": 1, "end": 3}}, [("x-h", "3")], False),
        ({"range_match": {"start": -3, "end": 0}}, [("x-h", " -3 ")], True),
        ({"range_match": {"start": 0, "end": 9}}, [("x-h", "+4")], True),
        ({"range_match": {"start": 0, "end": 9}}, [("x-h", "4a")], False),
        ({"range_match": {"start": 0, "end": 2000}}, [("x-h", "1_000")], False),
        ({"range_match": {"start": 0, "end": 9}}, [("x-h", "99999999999999999999")], False),
        ({"string_match": {"exact": "AbC", "ignore_case": True}}, [("x-h", "aBc")], True),
        ({"string_match": {"prefix": "AB", "ignore_case": True}}, [("x-h", "abz")], True),
        ({"string_match": {"suffix": "BZ", "ignore_case": True}}, [("x-h", "abz")], True),
        ({"string_match": {"contains": "B", "ignore_case": True}}, [("x-h", "abz")], True),
        ({"string_match": {"contains": "B"}}, [("x-h", "abz")], False),
        ({"string_match": {"safe_regex": {"regex": "[a-z]+"}}}, [("x-h", "abz")], True),
        ({"string_match": {"exact": "é", "ignore_case": True}}, [("x-h", "É")], False),
        # several values: any one of them may match (Envoy 1.40)
        ({"exact_match": "b"}, [("x-h", "a"), ("x-h", "b")], True),
        ({"exact_match": "a,b"}, [("x-h", "a"), ("x-h", "b")], False),
        ({"exact_match": "a", "invert_match": True}, [("x-h", "a"), ("x-h", "b")], False),
        # invert_match
        ({"exact_match": "v", "invert_match": True}, [("x-h", "w")], True),
        ({"exact_match": "v", "invert_match": True}, [("x-h", "v")], False),
        ({"exact_match": "v", "invert_match": True}, [], False),
        ({"present_match": True, "invert_match": True}, [], True),
        ({"present_match": False, "invert_match": True}, [], False),
        # treat_missing_header_as_empty
        ({"string_match": {"exact": ""}, "treat_missing_header_as_empty": True}, [], True),
        ({"string_match": {"prefix": "a"}, "treat_missing_header_as_empty": True}, [], False),
        (
            {
                "string_match": {"prefix": "a"},
                "treat_missing_header_as_empty": True,
                "invert_match": True,
            },
            [],
            True,
        ),
        ({"present_match": True, "treat_missing_header_as_empty": True}, [], True),
    ],
)
def test_header_matchers(
    matcher: dict[str, Any], headers: list[tuple[str, str]], expected: bool
) -> None:
    assert _header(matcher, *headers) is expected


def test_header_names_are_case_insensitive_in_config() -> None:
    assert _matches(
        {"prefix": "/", "headers": [{"name": "X-H", "exact_match": "v"}]}, "/", ("x-h", "v")
    )


def test_pseudo_headers_can_be_matched() -> None:
    match = {"prefix": "/", "headers": [{"name": ":method", "exact_match": "POST"}]}
    route = {"match": match, "direct_response": {"status": 200}}
    t = table(one_route(route))
    assert isinstance(t.route(request("/", "h", method="POST")), DirectResponse)
    assert not isinstance(t.route(request("/", "h", method="GET")), DirectResponse)


def test_all_header_matchers_must_match() -> None:
    match = {
        "prefix": "/",
        "headers": [{"name": "a", "exact_match": "1"}, {"name": "b", "exact_match": "2"}],
    }
    assert _matches(match, "/", ("a", "1"), ("b", "2"))
    assert not _matches(match, "/", ("a", "1"))


@pytest.mark.parametrize(
    ("matchers", "path", "expected"),
    [
        ([{"name": "a", "string_match": {"exact": "1"}}], "/?a=1", True),
        ([{"name": "a", "string_match": {"exact": "1"}}], "/?a=2&a=1", False),
        ([{"name": "a", "string_match": {"exact": "1"}}], "/?b=1", False),
        ([{"name": "a", "string_match": {"exact": "%41"}}], "/?a=%41", True),
        ([{"name": "a", "string_match": {"exact": ""}}], "/?a", True),
        ([{"name": "a", "string_match": {"exact": "1#f"}}], "/?a=1#f", True),
        ([{"name": "a", "present_match": True}], "/?x=1&a", True),
        ([{"name": "a", "present_match": False}], "/?a=1", True),
        ([{"name": "a"}], "/?a=1", True),
        ([{"name": "a"}], "/", False),
        ([{"name": "a"}, {"name": "b"}], "/?b&a", True),
        ([{"name": "a"}, {"name": "b"}], "/?b", False),
        ([{"name": "a", "string_match": {"prefix": "X", "ignore_case": True}}], "/?a=xy", True),
    ],
)
def test_query_parameter_matchers(
    matchers: list[dict[str, Any]], path: str, expected: bool
) -> None:
    assert _matches({"prefix": "/", "query_parameters": matchers}, path) is expected


def test_first_matching_route_wins() -> None:
    config = one_route(body_route("/a/b", "specific"))
    config["virtual_hosts"][0]["routes"] = [
        body_route("/a", "first"),
        body_route("/a/b", "second"),
        body_route("/", "last"),
    ]
    t = table(config)
    for path, body in [("/a/b", b"first"), ("/a", b"first"), ("/b", b"last")]:
        decision = t.route(request(path))
        assert isinstance(decision, DirectResponse) and decision.body == body
