from __future__ import annotations

from typing import Any

import pytest

from pydp.errors import ConfigError
from pydp.router import (
    DirectResponse,
    FormatContext,
    Forward,
    finalize_request_headers,
    finalize_response_headers,
    local_reply_headers,
)
from pydp.router._proto import Where
from pydp.router.format import compile_format
from pydp.router.headers import AppendAction, HeaderMutation, HeaderToAdd
from tests.pydp.router.util import one_route, request, table

WHERE = Where("route_config t", "v")


def _add(
    name: str,
    value: str,
    action: AppendAction = AppendAction.APPEND_IF_EXISTS_OR_ADD,
    keep_empty: bool = False,
) -> HeaderToAdd:
    return HeaderToAdd(name.encode(), compile_format(value, WHERE), action, keep_empty)


def _apply(mutation: HeaderMutation, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = [(k.encode(), v.encode()) for k, v in headers]
    mutation.apply(out, FormatContext())
    return [(k.decode(), v.decode()) for k, v in out]


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        (AppendAction.APPEND_IF_EXISTS_OR_ADD, [], [("x", "new")]),
        (AppendAction.APPEND_IF_EXISTS_OR_ADD, [("x", "old")], [("x", "old"), ("x", "new")]),
        (AppendAction.ADD_IF_ABSENT, [], [("x", "new")]),
        (AppendAction.ADD_IF_ABSENT, [("x", "old")], [("x", "old")]),
        (AppendAction.OVERWRITE_IF_EXISTS_OR_ADD, [], [("x", "new")]),
        (
            AppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
            [("x", "a"), ("y", "1"), ("x", "b")],
            [("y", "1"), ("x", "new")],
        ),
        (AppendAction.OVERWRITE_IF_EXISTS, [], []),
        (AppendAction.OVERWRITE_IF_EXISTS, [("x", "old")], [("x", "new")]),
    ],
)
def test_append_actions(
    action: AppendAction, before: list[tuple[str, str]], after: list[tuple[str, str]]
) -> None:
    assert _apply(HeaderMutation(add=(_add("x", "new", action),)), before) == after


def test_removals_happen_before_additions() -> None:
    mutation = HeaderMutation(
        remove=(b"x",), add=(_add("x", "new", AppendAction.OVERWRITE_IF_EXISTS),)
    )
    assert _apply(mutation, [("x", "old")]) == []


def test_one_level_judges_presence_before_its_own_additions() -> None:
    mutation = HeaderMutation(
        add=(
            _add("x", "first"),
            _add("x", "second", AppendAction.ADD_IF_ABSENT),
            _add("x", "third", AppendAction.OVERWRITE_IF_EXISTS),
        )
    )
    assert _apply(mutation, []) == [("x", "first"), ("x", "second")]


def test_overwrites_apply_before_appends_within_a_level() -> None:
    mutation = HeaderMutation(
        add=(_add("x", "appended"), _add("x", "set", AppendAction.OVERWRITE_IF_EXISTS_OR_ADD))
    )
    assert _apply(mutation, [("x", "old")]) == [("x", "set"), ("x", "appended")]


def test_empty_values_are_dropped_unless_kept() -> None:
    mutation = HeaderMutation(
        add=(_add("x", ""), _add("y", "", keep_empty=True), _add("z", "%UPSTREAM_HOST%"))
    )
    assert _apply(mutation, []) == [("y", "")]


def _levels(most_specific: bool = False, **route: Any) -> dict[str, Any]:
    def add(value: str) -> list[dict[str, Any]]:
        return [
            {
                "header": {"key": "x-level", "value": value},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            },
            {"header": {"key": "x-all", "value": value}},
        ]

    config = one_route(
        {
            "match": {"prefix": "/"},
            "route": {"cluster": "c"},
            "request_headers_to_add": add("route"),
            "response_headers_to_add": add("route"),
            **route,
        },
        request_headers_to_add=add("vhost"),
        response_headers_to_add=add("vhost"),
    )
    config["request_headers_to_add"] = add("config")
    config["response_headers_to_add"] = add("config")
    config["most_specific_header_mutations_wins"] = most_specific
    return config


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [v for k, v in headers if k == name]


@pytest.mark.parametrize(
    ("most_specific", "level", "order"),
    [
        (False, b"config", [b"route", b"vhost", b"config"]),
        (True, b"route", [b"config", b"vhost", b"route"]),
    ],
)
def test_level_order(most_specific: bool, level: bytes, order: list[bytes]) -> None:
    decision = table(_levels(most_specific)).route(request())
    assert isinstance(decision, Forward)
    sent = finalize_request_headers(request(), decision)
    got = finalize_response_headers([], decision)
    for headers in (sent, got):
        assert _values(headers, b"x-level") == [level]
        assert _values(headers, b"x-all") == order


def test_weighted_cluster_mutations_run_first() -> None:
    weighted = {
        "weighted_clusters": {
            "clusters": [
                {
                    "name": "a",
                    "weight": 1,
                    "request_headers_to_add": [{"header": {"key": "x-all", "value": "cluster"}}],
                    "response_headers_to_remove": ["x-all"],
                }
            ]
        }
    }
    decision = table(_levels(route=weighted)).route(request())
    assert isinstance(decision, Forward)
    sent = finalize_request_headers(request(), decision)
    assert _values(sent, b"x-all") == [b"cluster", b"route", b"vhost", b"config"]
    got = finalize_response_headers([(b"x-all", b"upstream")], decision)
    assert _values(got, b"x-all") == [b"route", b"vhost", b"config"]


def test_legacy_append_flag() -> None:
    route = {
        "match": {"prefix": "/"},
        "route": {"cluster": "c"},
        "request_headers_to_add": [
            {"header": {"key": "x-a", "value": "new"}, "append": False},
            {"header": {"key": "x-b", "value": "new"}, "append": True},
        ],
    }
    decision = table(one_route(route)).route(request())
    assert isinstance(decision, Forward)
    sent = finalize_request_headers(request("/", "h", ("x-a", "old"), ("x-b", "old")), decision)
    assert _values(sent, b"x-a") == [b"new"]
    assert _values(sent, b"x-b") == [b"old", b"new"]


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        (
            {
                "header": {"key": "x", "value": "v"},
                "append": True,
                "append_action": "ADD_IF_ABSENT",
            },
            "Both append and append_action",
        ),
        (
            {"header": {"key": ":path", "value": "v"}},
            ":-prefixed or host headers may not be modified",
        ),
        (
            {"header": {"key": "Host", "value": "v"}},
            ":-prefixed or host headers may not be modified",
        ),
        ({"header": {"key": "", "value": "v"}}, "must not be empty"),
        ({"header": {"key": "x", "raw_value": "dg=="}}, "unsupported field"),
    ],
)
def test_invalid_headers_to_add(option: dict[str, Any], problem: str) -> None:
    route = {
        "match": {"prefix": "/"},
        "route": {"cluster": "c"},
        "response_headers_to_add": [option],
    }
    with pytest.raises(ConfigError) as err:
        table(one_route(route))
    assert problem in err.value.problem
    assert err.value.field.startswith("virtual_hosts[0].routes[0].response_headers_to_add[0]")


@pytest.mark.parametrize("name", [":authority", "HOST"])
def test_invalid_headers_to_remove(name: str) -> None:
    route = {
        "match": {"prefix": "/"},
        "route": {"cluster": "c"},
        "request_headers_to_remove": [name],
    }
    with pytest.raises(ConfigError) as err:
        table(one_route(route))
    assert err.value.field == "virtual_hosts[0].routes[0].request_headers_to_remove[0]"
    assert err.value.problem == ":-prefixed or host headers may not be removed"


def _req_levels(most_specific: bool = False) -> dict[str, Any]:
    def add(key: str, value: str, **option: Any) -> list[dict[str, Any]]:
        return [{"header": {"key": key, "value": value}, **option}]

    config = one_route(
        {
            "match": {"prefix": "/"},
            "route": {"cluster": "c"},
            "request_headers_to_add": add("x-route", "%REQ(x-client)%"),
            "request_headers_to_remove": ["x-client"],
            "response_headers_to_add": add("x-echoed", "%REQ(x-vhost?x-route)%"),
        },
        request_headers_to_add=add("x-vhost", "[%REQ(x-route)%|%REQ(x-client)%]"),
        response_headers_to_add=add("x-missing", "%REQ(x-nowhere)%")
        + add("x-kept", "%REQ(x-nowhere)%", keep_empty_value=True),
    )
    config["most_specific_header_mutations_wins"] = most_specific
    return config


def test_request_mutations_read_the_request_as_the_levels_before_left_it() -> None:
    decision = table(_req_levels()).route(request())
    assert isinstance(decision, Forward)
    sent = finalize_request_headers(request("/", "h", ("x-client", "c1")), decision)
    # The route level removes x-client before it formats, so x-route comes out empty
    # and is dropped; the virtual host, evaluated next, finds neither header.
    assert _values(sent, b"x-route") == []
    assert _values(sent, b"x-vhost") == [b"[|]"]
    assert _values(sent, b"x-client") == []


def test_most_specific_first_changes_what_each_level_sees() -> None:
    decision = table(_req_levels(most_specific=True)).route(request())
    assert isinstance(decision, Forward)
    sent = finalize_request_headers(request("/", "h", ("x-client", "c1")), decision)
    assert _values(sent, b"x-vhost") == [b"[|c1]"]
    assert _values(sent, b"x-route") == []


def test_a_level_reads_the_request_before_its_own_additions() -> None:
    route = {
        "match": {"prefix": "/"},
        "route": {"cluster": "c"},
        "request_headers_to_add": [
            {
                "header": {"key": "x-a", "value": "new"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            },
            {"header": {"key": "x-copy", "value": "%REQ(x-a)%"}},
        ],
    }
    decision = table(one_route(route)).route(request())
    assert isinstance(decision, Forward)
    sent = finalize_request_headers(request("/", "h", ("x-a", "old")), decision)
    assert _values(sent, b"x-a") == [b"new"]
    assert _values(sent, b"x-copy") == [b"old"]
    assert _values(finalize_request_headers(request(), decision), b"x-copy") == []


def test_response_mutations_read_the_request_sent_upstream() -> None:
    decision = table(_req_levels()).route(request())
    assert isinstance(decision, Forward)
    sent = finalize_request_headers(request("/", "h", ("x-client", "c1")), decision)
    got = finalize_response_headers([], decision, FormatContext().with_request(sent))
    assert _values(got, b"x-echoed") == [b"[|]"]
    assert _values(got, b"x-missing") == []
    assert _values(got, b"x-kept") == [b""]
    direct = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200},
        "response_headers_to_add": [{"header": {"key": "x-id", "value": "%REQ(x-request-id)%"}}],
    }
    reply = table(one_route(direct)).route(request())
    assert isinstance(reply, DirectResponse)
    ctx = FormatContext().with_request(request("/", "h", ("x-request-id", "abc")))
    assert _values(local_reply_headers(reply, ctx), b"x-id") == [b"abc"]
    assert _values(local_reply_headers(reply), b"x-id") == []
