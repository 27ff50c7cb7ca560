"""The same route configurations and requests through real Envoy and through pydp's router.

Skipped when the Envoy binary is not installed. Weighted clusters are picked
through `header_name` so both sides draw the same value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from envoy.config.route.v3 import route_pb2
from google.protobuf.json_format import ParseDict

from pydp.router import (
    DirectResponse,
    FormatContext,
    Forward,
    NoRoute,
    Redirect,
    RouteTable,
    compile_route_config,
    finalize_request_headers,
    finalize_response_headers,
    local_reply_headers,
)
from tests.pydp.router.envoy_harness import EnvoyRouter, Reply, envoy_available, run_envoy


@pytest.fixture(autouse=True, scope="module")
def _envoy_installed() -> None:
    assert envoy_available(), "envoy is not installed: tests/run.sh installs it"


CLUSTERS = ["c1", "c2", "c3"]
WATCH_REQUEST = (
    "x-a",
    "x-b",
    "x-c",
    "x-d",
    "x-remote",
    "x-forwarded-host",
    "x-envoy-original-path",
    "x-envoy-original-host",
)
WATCH_RESPONSE = ("x-r", "x-s", "location", "content-type")


def _fwd(cluster: str = "c1", **extra: Any) -> dict[str, Any]:
    return {"cluster": cluster, **extra}


def _hdr(key: str, value: str, action: str | None = None, **extra: Any) -> dict[str, Any]:
    option: dict[str, Any] = {"header": {"key": key, "value": value}, **extra}
    if action:
        option["append_action"] = action
    return option


def _body(text: str) -> dict[str, Any]:
    return {"status": 200, "body": {"inline_string": text}}


MAIN: dict[str, Any] = {
    "name": "main",
    "request_headers_to_add": [_hdr("x-a", "rc", "OVERWRITE_IF_EXISTS_OR_ADD")],
    "response_headers_to_add": [_hdr("x-r", "rc")],
    "virtual_hosts": [
        {
            "name": "exact",
            "domains": ["exact.test", "ported.test:8080"],
            "routes": [{"match": {"prefix": "/"}, "direct_response": _body("exact")}],
        },
        {
            "name": "suffix-long",
            "domains": ["*-long.suffix.test"],
            "routes": [{"match": {"prefix": "/"}, "direct_response": _body("suffix-long")}],
        },
        {
            "name": "suffix",
            "domains": ["*.suffix.test"],
            "routes": [{"match": {"prefix": "/"}, "direct_response": _body("suffix")}],
        },
        {
            "name": "prefix",
            "domains": ["prefix.*", "prefix.longer.*"],
            "routes": [{"match": {"prefix": "/"}, "direct_response": _body("prefix")}],
        },
        {
            "name": "match",
            "domains": ["match.test"],
            "routes": [
                {"match": {"path": "/exact"}, "direct_response": _body("path")},
                {
                    "match": {"path": "/CI", "case_sensitive": False},
                    "direct_response": _body("path-ci"),
                },
                {"match": {"path_separated_prefix": "/sep"}, "direct_response": _body("sep")},
                {"match": {"safe_regex": {"regex": "/re/[0-9]+"}}, "direct_response": _body("re")},
                {
                    "match": {"prefix": "/h", "headers": [{"name": "x-m", "exact_match": "a,b"}]},
                    "direct_response": _body("joined"),
                },
                {
                    "match": {
                        "prefix": "/h",
                        "headers": [
                            {"name": "x-m", "string_match": {"prefix": "PRE", "ignore_case": True}}
                        ],
                    },
                    "direct_response": _body("sm-prefix"),
                },
                {
                    "match": {
                        "prefix": "/h",
                        "headers": [{"name": "x-m", "range_match": {"start": -5, "end": 10}}],
                    },
                    "direct_response": _body("range"),
                },
                {
                    "match": {
                        "prefix": "/h",
                        "headers": [{"name": "x-m", "safe_regex_match": {"regex": "v[0-9]"}}],
                    },
                    "direct_response": _body("regex"),
                },
                {
                    "match": {
                        "prefix": "/h",
                        "headers": [{"name": "x-inv", "exact_match": "no", "invert_match": True}],
                    },
                    "direct_response": _body("inverted"),
                },
                {
                    "match": {
                        "prefix": "/h",
                        "headers": [{"name": "x-absent", "present_match": False}],
                    },
                    "direct_response": _body("absent"),
                },
                {
                    "match": {
                        "prefix": "/q",
                        "query_parameters": [
                            {"name": "a", "string_match": {"exact": "1"}},
                            {"name": "b", "present_match": True},
                        ],
                    },
                    "direct_response": _body("query"),
                },
                {
                    "match": {
                        "prefix": "/e",
                        "headers": [
                            {
                                "name": "x-e",
                                "string_match": {"exact": ""},
                                "treat_missing_header_as_empty": True,
                            }
                        ],
                    },
                    "direct_response": _body("empty"),
                },
                {
                    "match": {"prefix": "/CaSe", "case_sensitive": False},
                    "direct_response": _body("ci"),
                },
            ],
        },
        {
            "name": "redir",
            "domains": ["redir.test", "redir.test:80", "redir.test:443", "redir.test:8080"],
            "response_headers_to_add": [_hdr("x-r", "vh")],
            "routes": [
                {"match": {"prefix": "/https"}, "redirect": {"https_redirect": True}},
                {"match": {"prefix": "/scheme"}, "redirect": {"scheme_redirect": "ftp"}},
                {"match": {"prefix": "/http"}, "redirect": {"scheme_redirect": "http"}},
                {
                    "match": {"prefix": "/port"},
                    "redirect": {"port_redirect": 9000, "response_code": "FOUND"},
                },
                {
                    "match": {"prefix": "/host"},
                    "redirect": {"host_redirect": "other.test", "response_code": "SEE_OTHER"},
                },
                {
                    "match": {"prefix": "/path"},
                    "redirect": {"path_redirect": "/new", "response_code": "TEMPORARY_REDIRECT"},
                },
                {
                    "match": {"prefix": "/pq"},
                    "redirect": {"path_redirect": "/new?x=1", "strip_query": True},
                },
                {
                    "match": {"prefix": "/pre/"},
                    "redirect": {
                        "prefix_rewrite": "/after/",
                        "response_code": "PERMANENT_REDIRECT",
                        "strip_query": True,
                    },
                },
                {
                    "match": {"prefix": "/rx"},
                    "redirect": {
                        "regex_rewrite": {
                            "pattern": {"regex": "^/rx/([^/]+)/(.*)$"},
                            "substitution": "/\\2/\\1",
                        }
                    },
                },
                {
                    "match": {"prefix": "/d201"},
                    "direct_response": {"status": 201, "body": {"inline_string": "made"}},
                    "response_headers_to_add": [_hdr("x-s", "route", "OVERWRITE_IF_EXISTS")],
                },
                {
                    "match": {"prefix": "/d404"},
                    "direct_response": {"status": 404},
                    "response_headers_to_add": [_hdr("x-r", "route", "ADD_IF_ABSENT")],
                },
            ],
        },
        {
            "name": "hdr",
            "domains": ["hdr.test"],
            "request_headers_to_add": [
                _hdr("x-a", "vh", "OVERWRITE_IF_EXISTS_OR_ADD"),
                _hdr("x-b", "vh"),
            ],
            "request_headers_to_remove": ["x-c"],
            "routes": [
                {
                    "match": {"prefix": "/add"},
                    "route": _fwd(),
                    "request_headers_to_add": [
                        _hdr("x-a", "route", "OVERWRITE_IF_EXISTS_OR_ADD"),
                        _hdr("x-b", "route"),
                        _hdr("x-c", "route"),
                        _hdr("x-d", "route-absent", "ADD_IF_ABSENT"),
                        _hdr("x-d", "route-ovr", "OVERWRITE_IF_EXISTS"),
                        _hdr("x-remote", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% 100%%"),
                    ],
                    "response_headers_to_add": [
                        _hdr("x-s", "one"),
                        _hdr("x-s", "two"),
                        _hdr("x-r", "route", "OVERWRITE_IF_EXISTS"),
                    ],
                },
                {
                    "match": {"prefix": "/legacy"},
                    "route": _fwd(),
                    "request_headers_to_add": [
                        {"header": {"key": "x-b", "value": "route"}, "append": False},
                        {"header": {"key": "x-d", "value": ""}, "keep_empty_value": True},
                    ],
                },
                {
                    "match": {"prefix": "/rw/"},
                    "route": _fwd(
                        "c2",
                        prefix_rewrite="/",
                        host_rewrite_literal="up.test",
                        append_x_forwarded_host=True,
                    ),
                },
                {
                    "match": {"path": "/exactrw"},
                    "route": _fwd("c2", prefix_rewrite="/other"),
                },
                {
                    "match": {"safe_regex": {"regex": "/regexrw/.*"}},
                    "route": _fwd("c2", prefix_rewrite="/whole"),
                },
                {
                    "match": {"prefix": "/rx"},
                    "route": _fwd(
                        "c3",
                        regex_rewrite={
                            "pattern": {"regex": "o*"},
                            "substitution": "[\\0]",
                        },
                    ),
                },
                {
                    "match": {"prefix": "/wc"},
                    "route": {
                        "weighted_clusters": {
                            "header_name": "x-pick",
                            "clusters": [
                                {
                                    "name": "c1",
                                    "weight": 1,
                                    "request_headers_to_add": [
                                        _hdr("x-a", "wc", "OVERWRITE_IF_EXISTS_OR_ADD")
                                    ],
                                    "response_headers_to_add": [_hdr("x-s", "wc")],
                                },
                                {"name": "c2", "weight": 2, "host_rewrite_literal": "wc.test"},
                                {"cluster_header": "x-cluster", "weight": 3},
                            ],
                        }
                    },
                },
            ],
        },
    ],
}

SPECIFIC: dict[str, Any] = {
    "name": "specific",
    "most_specific_header_mutations_wins": True,
    "ignore_port_in_host_matching": True,
    "ignore_path_parameters_in_path_matching": True,
    "request_headers_to_add": [_hdr("x-a", "rc", "OVERWRITE_IF_EXISTS_OR_ADD")],
    "response_headers_to_add": [_hdr("x-r", "rc", "OVERWRITE_IF_EXISTS_OR_ADD")],
    "virtual_hosts": [
        {
            "name": "v",
            "domains": ["specific.test"],
            "request_headers_to_add": [_hdr("x-a", "vh", "OVERWRITE_IF_EXISTS_OR_ADD")],
            "response_headers_to_add": [_hdr("x-r", "vh", "OVERWRITE_IF_EXISTS_OR_ADD")],
            "routes": [
                {"match": {"path": "/params"}, "direct_response": _body("params")},
                {
                    "match": {"prefix": "/CI/", "case_sensitive": False},
                    "route": _fwd("c2", prefix_rewrite="/lower/"),
                },
                {"match": {"prefix": "/ch"}, "route": {"cluster_header": "x-cluster"}},
                {
                    "match": {"prefix": "/nf"},
                    "route": {
                        "cluster_header": "x-cluster",
                        "cluster_not_found_response_code": "NOT_FOUND",
                    },
                },
                {
                    "match": {"prefix": "/"},
                    "route": _fwd(),
                    "request_headers_to_add": [_hdr("x-a", "route", "OVERWRITE_IF_EXISTS_OR_ADD")],
                    "response_headers_to_add": [_hdr("x-r", "route", "OVERWRITE_IF_EXISTS_OR_ADD")],
                },
            ],
        },
        {
            "name": "ported",
            "domains": ["ported.test:81"],
            "routes": [{"match": {"prefix": "/"}, "direct_response": _body("ported")}],
        },
        {
            "name": "tls-all",
            "domains": ["tls-all.test"],
            "require_tls": "ALL",
            "routes": [{"match": {"prefix": "/"}, "direct_response": _body("tls")}],
        },
        {
            "name": "tls-external",
            "domains": ["tls-ext.test"],
            "require_tls": "EXTERNAL_ONLY",
            "routes": [{"match": {"prefix": "/"}, "direct_response": _body("tls")}],
        },
        {
            "name": "v6",
            "domains": ["[::1]", "*"],
            "routes": [
                {"match": {"prefix": "/https"}, "redirect": {"https_redirect": True}},
                {"match": {"prefix": "/"}, "direct_response": _body("v6")},
            ],
        },
    ],
}

REWRITE: dict[str, Any] = {
    "name": "rewrite",
    "virtual_hosts": [
        {
            "name": "rw",
            "domains": ["rewrite.test"],
            "request_headers_to_add": [_hdr("x-b", "vh:%REQ(x-a)%")],
            "request_headers_to_remove": ["x-id"],
            "routes": [
                {
                    "match": {"prefix": "/hdr-added"},
                    "route": _fwd(host_rewrite_header="x-target"),
                    "request_headers_to_add": [_hdr("x-target", "added.test", "ADD_IF_ABSENT")],
                },
                {
                    "match": {"prefix": "/hdr"},
                    "route": _fwd(host_rewrite_header="X-Target", append_x_forwarded_host=True),
                    "response_headers_to_add": [_hdr("x-r", "%REQ(:authority)%")],
                },
                {
                    "match": {"prefix": "/rx"},
                    "route": _fwd(
                        "c2",
                        prefix_rewrite="/moved",
                        host_rewrite_path_regex={
                            "pattern": {"regex": "^/rx/([^/]+)/.*$"},
                            "substitution": "\\1.example",
                        },
                    ),
                    "response_headers_to_add": [_hdr("x-r", "%REQ(:authority)% %REQ(:path)%")],
                },
                {
                    "match": {"prefix": "/empty"},
                    "route": _fwd(
                        host_rewrite_path_regex={"pattern": {"regex": ".*"}, "substitution": ""}
                    ),
                },
                {
                    "match": {"prefix": "/wc"},
                    "route": {
                        "host_rewrite_header": "x-target",
                        "weighted_clusters": {
                            "clusters": [
                                {"name": "c3", "weight": 1, "host_rewrite_literal": "wc.test"}
                            ]
                        },
                    },
                },
                {
                    "match": {"prefix": "/req"},
                    "route": _fwd(host_rewrite_literal="lit.test"),
                    "request_headers_to_add": [
                        _hdr("x-a", "%REQ(x-id)%"),
                        _hdr("x-c", "%REQ(x-missing)%", keep_empty_value=True),
                        _hdr("x-d", "%REQ(x-missing?X-ID):3%|%REQ(x-missing)%"),
                    ],
                    "response_headers_to_add": [
                        _hdr("x-r", "[%REQ(x-a)%] %REQ(:authority)%"),
                        _hdr("x-s", "%REQ(x-id)%"),
                    ],
                },
                {
                    "match": {"prefix": "/direct"},
                    "direct_response": _body("direct"),
                    "response_headers_to_add": [
                        _hdr("x-r", "%REQ(x-id)%"),
                        _hdr("x-s", "%REQ(x-missing)%"),
                    ],
                },
                {
                    "match": {"prefix": "/nc"},
                    "route": {"cluster_header": "x-cluster"},
                    "response_headers_to_add": [_hdr("x-r", "%REQ(x-id):2%")],
                },
            ],
        },
    ],
}

Request = tuple[str, str, tuple[tuple[str, str], ...]]


def _req(path: str, host: str, *headers: tuple[str, str]) -> Request:
    return (path, host, headers)


MAIN_REQUESTS = [
    _req("/", "exact.test"),
    _req("/", "EXACT.Test"),
    _req("/", "exact.test:80"),
    _req("/", "ported.test:8080"),
    _req("/", "ported.test"),
    _req("/", "a-long.suffix.test"),
    _req("/", "-long.suffix.test"),
    _req("/", "b.suffix.test"),
    _req("/", ".suffix.test"),
    _req("/", "prefix.longer.x"),
    _req("/", "prefix.x"),
    _req("/", "prefix."),
    _req("/", "unknown.test"),
    _req("/exact", "match.test"),
    _req("/exact?x=1", "match.test"),
    _req("/exact/", "match.test"),
    _req("/ci", "match.test"),
    _req("/sep", "match.test"),
    _req("/sep/x", "match.test"),
    _req("/separate", "match.test"),
    _req("/sep?x", "match.test"),
    _req("/re/123", "match.test"),
    _req("/re/123?q=abc", "match.test"),
    _req("/re/12a", "match.test"),
    _req("/h", "match.test", ("x-m", "a"), ("x-m", "b")),
    _req("/h", "match.test", ("x-m", "a,b")),
    _req("/h", "match.test", ("x-m", "x"), ("x-m", "Prefix")),
    _req("/h", "match.test", ("x-m", "20"), ("x-m", "3")),
    _req("/h", "match.test", ("x-inv", "no"), ("x-inv", "yes")),
    _req("/h", "match.test", ("x-m", "pre-fix")),
    _req("/h", "match.test", ("x-m", " -5")),
    _req("/h", "match.test", ("x-m", "+9")),
    _req("/h", "match.test", ("x-m", "10")),
    _req("/h", "match.test", ("x-m", "v1")),
    _req("/h", "match.test", ("x-m", "v1x")),
    _req("/h", "match.test", ("x-inv", "yes")),
    _req("/h", "match.test", ("x-inv", "no")),
    _req("/h", "match.test", ("x-inv", "no"), ("x-absent", "1")),
    _req("/q?a=1&b", "match.test"),
    _req("/q?b=2&a=1&a=2", "match.test"),
    _req("/q?a=2&a=1&b", "match.test"),
    _req("/q?a=1", "match.test"),
    _req("/e", "match.test"),
    _req("/e", "match.test", ("x-e", "")),
    _req("/e", "match.test", ("x-e", "v")),
    _req("/case/x", "match.test"),
    _req("/qp?p=1", "match.test"),
    _req("/qp?q", "match.test"),
    _req("/pi", "match.test"),
    _req("/pi", "match.test", ("x-p", "1")),
    _req("/h", "match.test", ("x-m", "")),
    _req("/https/a?b=c", "redir.test"),
    _req("/https/a", "redir.test:80"),
    _req("/https/a", "redir.test:443"),
    _req("/https/a", "redir.test:8080"),
    _req("/https/a", "redir.test:80", ("x-forwarded-proto", "https")),
    _req("/scheme", "redir.test:80"),
    _req("/http", "redir.test:80"),
    _req("/http", "redir.test:443", ("x-forwarded-proto", "https")),
    _req("/port/x?y", "redir.test:8080"),
    _req("/host/x?y", "redir.test:8080"),
    _req("/path/x?y=1", "redir.test"),
    _req("/path", "redir.test"),
    _req("/pq/x?y=1", "redir.test"),
    _req("/pre/a/b?q=1", "redir.test"),
    _req("/rx/first/rest/of?q", "redir.test"),
    _req("/rx/nomatch", "redir.test"),
    _req("/d201/x?y", "redir.test:80"),
    _req("/d404", "redir.test"),
    _req("/add", "hdr.test"),
    _req("/add", "hdr.test", ("x-a", "client"), ("x-b", "client"), ("x-c", "client"), ("x-d", "c")),
    _req("/legacy", "hdr.test", ("x-b", "client1"), ("x-b", "client2")),
    _req("/rw/a/b?c", "hdr.test"),
    _req("/rw/a", "hdr.test", ("x-forwarded-host", "hdr.test")),
    _req("/rw/a", "hdr.test", ("x-forwarded-host", "a, b")),
    _req("/exactrw?x=1", "hdr.test"),
    _req("/regexrw/a/b?q", "hdr.test"),
    _req("/rx/foo/boo", "hdr.test"),
    _req("/wc", "hdr.test", ("x-pick", "0")),
    _req("/wc", "hdr.test", ("x-pick", "1")),
    _req("/wc", "hdr.test", ("x-pick", "2")),
    _req("/wc", "hdr.test", ("x-pick", "3"), ("x-cluster", "c3")),
    _req("/wc", "hdr.test", ("x-pick", "11"), ("x-cluster", "c1")),
    _req("/wc", "hdr.test", ("x-pick", "6")),
]

SPECIFIC_REQUESTS = [
    _req("/", "specific.test"),
    _req("/", "specific.test:1234"),
    _req("/", "SPECIFIC.test:99", ("x-a", "client")),
    _req("/params;a=b?c", "specific.test"),
    _req("/params?x;y", "specific.test"),
    _req("/ci/rest?q", "specific.test"),
    _req("/ch", "specific.test", ("x-cluster", "c3")),
    _req("/ch", "specific.test", ("x-cluster", "nope")),
    _req("/ch", "specific.test"),
    _req("/nf", "specific.test"),
    _req("/x?y", "tls-all.test:80"),
    _req("/x?y", "tls-all.test", ("x-forwarded-proto", "https")),
    _req("/x", "tls-ext.test"),
    _req("/https/x", "[::1]:80"),
    _req("/https/x", "[::1]"),
    _req("/", "[::1]:8080"),
    _req("/", "other:8080"),
    _req("/", "ported.test:81"),
    _req("/", "ported.test"),
]


REWRITE_REQUESTS = [
    _req("/hdr", "rewrite.test", ("x-target", "chosen.test")),
    _req("/hdr", "rewrite.test", ("x-target", "first.test"), ("x-target", "second.test")),
    _req("/hdr", "rewrite.test", ("x-target", "")),
    _req("/hdr", "rewrite.test"),
    _req("/hdr-added", "rewrite.test"),
    _req("/hdr-added", "rewrite.test", ("x-target", "mine.test")),
    _req("/rx/tenant-a/x?q=/rx/b/c", "rewrite.test"),
    _req("/rx/tenant-b", "rewrite.test"),
    _req("/empty/x", "rewrite.test"),
    _req("/wc", "rewrite.test"),
    _req("/wc", "rewrite.test", ("x-target", "t.test")),
    _req("/req", "rewrite.test", ("x-id", "my-own-id")),
    _req("/req", "rewrite.test", ("x-id", "one"), ("x-id", "two")),
    _req("/req", "rewrite.test"),
    _req("/direct", "rewrite.test", ("x-id", "abc")),
    _req("/direct", "rewrite.test"),
    _req("/nc", "rewrite.test", ("x-id", "abc"), ("x-cluster", "nope")),
]


@dataclass(frozen=True)
class Observed:
    status: int
    cluster: str | None
    path: str | None
    host: str | None
    body: bytes | None
    request: tuple[tuple[str, tuple[str, ...]], ...]
    response: tuple[tuple[str, tuple[str, ...]], ...]


def _watch(
    headers: list[tuple[str, str]], names: tuple[str, ...]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((n, tuple(v for k, v in headers if k == n)) for n in names)


def _from_envoy(reply: Reply) -> Observed:
    upstream = reply.upstream
    response = _watch(reply.headers, WATCH_RESPONSE)
    if upstream is None:
        return Observed(reply.status, None, None, None, reply.body, (), response)
    sent = [(k, v) for k, v in upstream["headers"]]
    host = next((v for k, v in sent if k == "host"), None)
    return Observed(
        reply.status,
        upstream["cluster"],
        upstream["path"],
        host,
        None,
        _watch(sent, WATCH_REQUEST),
        response,
    )


def _from_pydp(table: RouteTable, request: Request) -> Observed:
    path, host, extra = request
    headers = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", host.encode()),
        (b":path", path.encode()),
        *((k.encode(), v.encode()) for k, v in extra),
    ]
    decision = table.route(headers)
    ctx = FormatContext(downstream_remote_address=("127.0.0.1", 40000)).with_request(headers)

    def text(pairs: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
        return [(k.decode(), v.decode()) for k, v in pairs]

    if isinstance(decision, Forward) and decision.cluster not in CLUSTERS:
        # The caller answers locally, with the route's response mutations as Envoy does.
        reply = text(finalize_response_headers([], decision, ctx))
        status = decision.policy.cluster_not_found_status
        return Observed(status, None, None, None, b"", (), _watch(reply, WATCH_RESPONSE))
    if isinstance(decision, Forward):
        sent_bytes = finalize_request_headers(headers, decision, ctx)
        sent = text(sent_bytes)
        got = text(
            finalize_response_headers(
                [(b"content-type", b"application/json")], decision, ctx.with_request(sent_bytes)
            )
        )
        return Observed(
            200,
            decision.cluster,
            dict(sent)[":path"],
            dict(sent)[":authority"],
            None,
            _watch(sent, WATCH_REQUEST),
            _watch(got, WATCH_RESPONSE),
        )
    assert isinstance(decision, Redirect | DirectResponse | NoRoute)
    reply = text(local_reply_headers(decision, ctx))
    body = decision.body if isinstance(decision, DirectResponse) else b""
    return Observed(decision.status, None, None, None, body, (), _watch(reply, WATCH_RESPONSE))


@pytest.fixture(scope="module")
def main_envoy() -> Iterator[EnvoyRouter]:
    with run_envoy(MAIN, CLUSTERS) as router:
        yield router


@pytest.fixture(scope="module")
def rewrite_envoy() -> Iterator[EnvoyRouter]:
    with run_envoy(REWRITE, CLUSTERS) as router:
        yield router


@pytest.fixture(scope="module")
def specific_envoy() -> Iterator[EnvoyRouter]:
    with run_envoy(SPECIFIC, CLUSTERS) as router:
        yield router


def _table(config: dict[str, Any]) -> RouteTable:
    return compile_route_config(ParseDict(config, route_pb2.RouteConfiguration()))


@pytest.mark.parametrize("request_", MAIN_REQUESTS, ids=lambda r: f"{r[1]}{r[0]}")
def test_main_config_matches_envoy(main_envoy: EnvoyRouter, request_: Request) -> None:
    path, host, extra = request_
    expected = _from_envoy(main_envoy.request(path, host, list(extra)))
    assert _from_pydp(_table(MAIN), request_) == expected


@pytest.mark.parametrize("request_", SPECIFIC_REQUESTS, ids=lambda r: f"{r[1]}{r[0]}")
def test_specific_config_matches_envoy(specific_envoy: EnvoyRouter, request_: Request) -> None:
    path, host, extra = request_
    expected = _from_envoy(specific_envoy.request(path, host, list(extra)))
    assert _from_pydp(_table(SPECIFIC), request_) == expected


@pytest.mark.parametrize("request_", REWRITE_REQUESTS, ids=lambda r: f"{r[1]}{r[0]}")
def test_rewrite_config_matches_envoy(rewrite_envoy: EnvoyRouter, request_: Request) -> None:
    path, host, extra = request_
    expected = _from_envoy(rewrite_envoy.request(path, host, list(extra)))
    assert _from_pydp(_table(REWRITE), request_) == expected
