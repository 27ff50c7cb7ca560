from __future__ import annotations

from typing import Any

import pytest

from pydp.errors import ConfigError
from pydp.router import (
    FormatContext,
    Forward,
    finalize_request_headers,
    finalize_response_headers,
)
from pydp.router._proto import Where
from pydp.router.headers import AppendAction, HeaderMutation, HeaderToAdd, compile_format, render
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


@pytest.mark.parametrize(
    ("text", "ctx", "value"),
    [
        ("plain", FormatContext(), b"plain"),
        ("100%%", FormatContext(), b"100%"),
        ("%%UPSTREAM_HOST%%", FormatContext(), b"%UPSTREAM_HOST%"),
        (
            "%DOWNSTREAM_REMOTE_ADDRESS%",
            FormatContext(downstream_remote_address=("10.0.0.1", 5)),
            b"10.0.0.1:5",
        ),
        (
            "%DOWNSTREAM_REMOTE_ADDRESS%",
            FormatContext(downstream_remote_address=("::1", 5)),
            b"[::1]:5",
        ),
        (
            "ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
            FormatContext(downstream_remote_address=("::1", 5)),
            b"ip=::1",
        ),
        ("%DOWNSTREAM_REMOTE_PORT%", FormatContext(downstream_remote_address=("::1", 5)), b"5"),
        (
            "%DOWNSTREAM_LOCAL_ADDRESS%",
            FormatContext(downstream_local_address=("1.2.3.4", 80)),
            b"1.2.3.4:80",
        ),
        (
            "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%",
            FormatContext(downstream_local_address=("1.2.3.4", 80)),
            b"1.2.3.4",
        ),
        ("%DOWNSTREAM_LOCAL_PORT%", FormatContext(downstream_local_address=("1.2.3.4", 80)), b"80"),
        ("%UPSTREAM_HOST%", FormatContext(upstream_host=("10.1.1.1", 8080)), b"10.1.1.1:8080"),
        ("%UPSTREAM_HOST%", FormatContext(), b""),
    ],
)
def test_formatter(text: str, ctx: FormatContext, value: bytes) -> None:
    assert render(compile_format(text, WHERE), ctx) == value


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("50%", "couldn't find valid command at position 2"),
        ("%lower%", "couldn't find valid command"),
        ("%START_TIME%", "unsupported substitution command %START_TIME%"),
        ("%REQ(x-id)%", "unsupported substitution command %REQ%"),
        ("%DOWNSTREAM_REMOTE_ADDRESS(x)%", "does not take any parameters or length"),
        ("%DOWNSTREAM_REMOTE_ADDRESS:5%", "does not take any parameters or length"),
    ],
)
def test_formatter_errors(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        compile_format(text, WHERE)
    assert problem in err.value.problem


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
