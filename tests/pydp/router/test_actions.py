from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2

from pydp.errors import ConfigError
from pydp.router import (
    DirectResponse,
    Forward,
    Redirect,
    finalize_request_headers,
    local_reply_headers,
)
from pydp.upstream.breakers import CircuitBreakers
from pydp.upstream.digest import xxh64
from pydp.upstream.hashing import (
    CookieHash,
    HeaderHash,
    QueryParameterHash,
    SourceIpHash,
    compute_hash,
)
from pydp.upstream.retry import RetryPolicy, RetryState
from tests.pydp.router.util import one_route, request, table

PREVIOUS_HOSTS_TYPE = (
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)


def _forward(
    route_action: dict[str, Any], path: str = "/", *headers: tuple[str, str], **match: Any
) -> Forward:
    route = {"match": {"prefix": "/", **match}, "route": route_action}
    decision = table(one_route(route)).route(request(path, "h", *headers))
    assert isinstance(decision, Forward)
    return decision


WEIGHTED = {
    "weighted_clusters": {
        "clusters": [
            {"name": "a", "weight": 10},
            {"name": "zero", "weight": 0},
            {"name": "b", "weight": 30},
            {"name": "c", "weight": 60},
        ]
    }
}


def test_weighted_split_follows_random_value_modulo_total() -> None:
    t = table(one_route({"match": {"prefix": "/"}, "route": WEIGHTED}))
    counts: Counter[str] = Counter()
    for value in range(1000):
        decision = t.route(request(), value)
        assert isinstance(decision, Forward)
        counts[decision.cluster] += 1
    assert counts == {"a": 100, "b": 300, "c": 600}


@pytest.mark.parametrize(
    ("value", "cluster"),
    [(0, "a"), (9, "a"), (10, "b"), (39, "b"), (40, "c"), (99, "c"), (100, "a"), (2**64 - 1, "b")],
)
def test_weighted_boundaries(value: int, cluster: str) -> None:
    t = table(one_route({"match": {"prefix": "/"}, "route": WEIGHTED}))
    decision = t.route(request(), value)
    assert isinstance(decision, Forward) and decision.cluster == cluster


@pytest.mark.parametrize(
    ("headers", "cluster"),
    [
        ([("x-pick", "45")], "c"),
        ([("x-pick", " +15 ")], "b"),
        ([("x-pick", "-1")], "a"),  # not an unsigned integer: the random value (0) is used
        ([("x-pick", "45"), ("x-pick", "45")], "a"),  # more than one value: ignored
        ([], "a"),
    ],
)
def test_weighted_random_value_from_header(headers: list[tuple[str, str]], cluster: str) -> None:
    action = {"weighted_clusters": {**WEIGHTED["weighted_clusters"], "header_name": "x-pick"}}
    assert _forward(action, "/", *headers).cluster == cluster


def test_total_weight_is_ignored_like_envoy_1_40() -> None:
    action = {"weighted_clusters": {**WEIGHTED["weighted_clusters"], "total_weight": 7}}
    t = table(one_route({"match": {"prefix": "/"}, "route": action}))
    decision = t.route(request(), 99)
    assert isinstance(decision, Forward) and decision.cluster == "c"


def test_cluster_header() -> None:
    assert _forward({"cluster_header": "x-c"}, "/", ("x-c", "one"), ("x-c", "two")).cluster == "one"
    missing = _forward({"cluster_header": "x-c", "cluster_not_found_response_code": "NOT_FOUND"})
    assert missing.cluster == ""
    assert missing.policy.cluster_not_found_status == 404


def test_weighted_cluster_by_header() -> None:
    action = {"weighted_clusters": {"clusters": [{"cluster_header": "x-c", "weight": 1}]}}
    assert _forward(action, "/", ("x-c", "named")).cluster == "named"


@pytest.mark.parametrize(
    ("match", "action", "path", "new_path"),
    [
        ({"prefix": "/api/"}, {"prefix_rewrite": "/"}, "/api/v1?x=/api/", "/v1?x=/api/"),
        ({"prefix": "/API", "case_sensitive": False}, {"prefix_rewrite": "/x"}, "/api/v1", "/x/v1"),
        ({"path": "/old"}, {"prefix_rewrite": "/new"}, "/old?q", "/new?q"),
        ({"path_separated_prefix": "/p"}, {"prefix_rewrite": "/q"}, "/p/x", "/q/x"),
        ({"safe_regex": {"regex": "/r/.*"}}, {"prefix_rewrite": "/all"}, "/r/a/b?q", "/all?q"),
        (
            {"prefix": "/"},
            {"regex_rewrite": {"pattern": {"regex": "^/svc/([^/]+)"}, "substitution": "/\\1"}},
            "/svc/foo/bar?svc=1",
            "/foo/bar?svc=1",
        ),
        ({"prefix": "/"}, {}, "/same", None),
    ],
)
def test_path_rewrites(
    match: dict[str, Any], action: dict[str, Any], path: str, new_path: str | None
) -> None:
    route = {"match": match, "route": {"cluster": "c", **action}}
    decision = table(one_route(route)).route(request(path))
    assert isinstance(decision, Forward)
    assert decision.path == (new_path.encode() if new_path is not None else None)


def test_finalize_request_applies_rewrites_in_envoy_order() -> None:
    action = {
        "cluster": "c",
        "prefix_rewrite": "/new",
        "host_rewrite_literal": "up",
        "append_x_forwarded_host": True,
    }
    fwd = _forward(action, "/old?q", prefix="/old")
    out = dict(finalize_request_headers(request("/old?q", "orig:80"), fwd))
    assert out[b":path"] == b"/new?q"
    assert out[b"x-envoy-original-path"] == b"/old?q"
    assert out[b":authority"] == b"up"
    assert out[b"x-forwarded-host"] == b"orig:80"
    assert out[b"x-envoy-original-host"] == b"orig:80"
    quiet = dict(finalize_request_headers(request("/old?q"), fwd, insert_envoy_headers=False))
    assert b"x-envoy-original-path" not in quiet and b"x-envoy-original-host" not in quiet


def test_auto_host_rewrite_uses_the_upstream_hostname() -> None:
    fwd = _forward({"cluster": "c", "auto_host_rewrite": True})
    assert fwd.policy.auto_host_rewrite
    assert (
        dict(finalize_request_headers(request(), fwd, upstream_hostname=b"up.svc"))[b":authority"]
        == b"up.svc"
    )
    assert dict(finalize_request_headers(request(), fwd))[b":authority"] == b"example.com"


def test_weighted_cluster_host_rewrite_loses_to_route_literal() -> None:
    action = {
        "host_rewrite_literal": "route",
        "weighted_clusters": {
            "clusters": [{"name": "a", "weight": 1, "host_rewrite_literal": "wc"}]
        },
    }
    fwd = _forward(action)
    assert dict(finalize_request_headers(request(), fwd))[b":authority"] == b"route"
    del action["host_rewrite_literal"]
    assert dict(finalize_request_headers(request(), _forward(action)))[b":authority"] == b"wc"


@pytest.mark.parametrize(
    ("headers", "authority", "original"),
    [
        ((("x-target", "chosen.example"),), b"chosen.example", b"h"),
        ((("x-target", "first"), ("x-target", "second")), b"first", b"h"),
        ((("x-target", ""),), b"h", None),
        ((), b"h", None),
    ],
)
def test_host_rewrite_header_takes_the_first_value(
    headers: tuple[tuple[str, str], ...], authority: bytes, original: bytes | None
) -> None:
    fwd = _forward({"cluster": "c", "host_rewrite_header": "X-Target"})
    assert fwd.policy.host_rewrite_header == b"x-target"
    out = dict(finalize_request_headers(request("/", "h", *headers), fwd))
    assert out[b":authority"] == authority
    assert out.get(b"x-envoy-original-host") == original
    assert b"x-forwarded-host" not in out


def test_host_rewrite_header_reads_the_request_after_its_mutations() -> None:
    route = {
        "match": {"prefix": "/"},
        "route": {
            "cluster": "c",
            "host_rewrite_header": "x-target",
            "append_x_forwarded_host": True,
        },
        "request_headers_to_add": [
            {
                "header": {"key": "x-target", "value": "added.example"},
                "append_action": "ADD_IF_ABSENT",
            }
        ],
    }
    decision = table(one_route(route)).route(request())
    assert isinstance(decision, Forward)
    out = dict(finalize_request_headers(request("/", "orig"), decision))
    assert (out[b":authority"], out[b"x-forwarded-host"]) == (b"added.example", b"orig")
    out = dict(finalize_request_headers(request("/", "orig", ("x-target", "mine")), decision))
    assert out[b":authority"] == b"mine"


@pytest.mark.parametrize(
    ("path", "authority"),
    [
        ("/header/tenant-a/x", b"tenant-a.example"),
        ("/header/tenant-b/x/y?q=/header/z/w#f", b"tenant-b.example"),
        ("/header/tenant-c", b"/header/tenant-c"),
    ],
)
def test_host_rewrite_path_regex_substitutes_the_path_without_query(
    path: str, authority: bytes
) -> None:
    action = {
        "cluster": "c",
        "host_rewrite_path_regex": {
            "pattern": {"regex": "^/header/([^/]+)/.*$"},
            "substitution": "\\1.example",
        },
        "prefix_rewrite": "/rewritten",
    }
    fwd = _forward(action, path)
    out = dict(finalize_request_headers(request(path, "reviews"), fwd))
    assert out[b":authority"] == authority
    assert out[b"x-envoy-original-host"] == b"reviews"
    assert out[b":path"].startswith(b"/rewritten")


def test_host_rewrite_path_regex_coming_out_empty_changes_nothing() -> None:
    action = {
        "cluster": "c",
        "host_rewrite_path_regex": {"pattern": {"regex": ".*"}, "substitution": ""},
    }
    out = dict(finalize_request_headers(request("/a", "reviews"), _forward(action, "/a")))
    assert out[b":authority"] == b"reviews"
    assert b"x-envoy-original-host" not in out


def test_weighted_cluster_literal_then_route_header_rewrite() -> None:
    action = {
        "host_rewrite_header": "x-target",
        "weighted_clusters": {
            "clusters": [{"name": "a", "weight": 1, "host_rewrite_literal": "wc"}]
        },
    }
    fwd = _forward(action)
    assert dict(finalize_request_headers(request(), fwd))[b":authority"] == b"wc"
    out = dict(finalize_request_headers(request("/", "h", ("x-target", "t")), fwd))
    assert (out[b":authority"], out[b"x-envoy-original-host"]) == (b"t", b"wc")


def test_timeouts() -> None:
    assert _forward({"cluster": "c"}).policy.timeout == 15.0
    assert _forward({"cluster": "c", "timeout": "0s"}).policy.timeout is None
    assert _forward({"cluster": "c", "timeout": "2.5s"}).policy.timeout == 2.5
    assert _forward({"cluster": "c"}).policy.idle_timeout is None
    assert _forward({"cluster": "c", "idle_timeout": "0s"}).policy.idle_timeout == 0.0


def test_retry_policy_fields_and_defaults() -> None:
    assert previous_hosts_pb2.PreviousHostsPredicate  # registers the type for ParseDict
    policy = {
        "retry_on": "5xx, connect-failure,,retriable-status-codes",
        "per_try_timeout": "0.25s",
        "retriable_status_codes": [409],
        "retry_back_off": {"base_interval": "0.1s"},
        "host_selection_retry_max_attempts": 3,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": PREVIOUS_HOSTS_TYPE},
            }
        ],
        "retriable_headers": [{"name": "x-retry", "present_match": True}],
    }
    retry = _forward({"cluster": "c", "retry_policy": policy}).policy.retry_policy
    assert retry == RetryPolicy(
        retry_on=frozenset({"5xx", "connect-failure", "retriable-status-codes"}),
        num_retries=1,
        per_try_timeout=0.25,
        retriable_status_codes=(409,),
        base_interval=0.1,
        host_selection_retry_max_attempts=3,
        retry_previous_hosts=True,
        retriable_headers=retry.retriable_headers if retry else (),
    )
    assert retry is not None and len(retry.retriable_headers) == 1
    assert retry.backoff_ms() == (100, 1000)
    assert _forward({"cluster": "c"}).policy.retry_policy is None


def test_retry_timeouts_and_back_off_are_whole_milliseconds() -> None:
    policy = {
        "retry_on": "5xx,bogus",
        "per_try_timeout": "0.0009s",
        "per_try_idle_timeout": "1.2349s",
        "retry_back_off": {"base_interval": "0.0001s", "max_interval": "0.0002s"},
    }
    retry = _forward({"cluster": "c", "retry_policy": policy}).policy.retry_policy
    assert retry is not None
    assert retry.retry_on == {"5xx"}
    assert retry.per_try_timeout is None
    assert retry.per_try_idle_timeout == 1.234
    assert retry.backoff_ms() == (1, 1)


def test_retriable_headers_use_the_router_header_matchers() -> None:
    policy = {
        "retry_on": "retriable-headers",
        "num_retries": 3,
        "retriable_headers": [
            {"name": "x-busy", "string_match": {"prefix": "YES", "ignore_case": True}}
        ],
        "retriable_request_headers": [{"name": ":method", "exact_match": "GET"}],
    }
    retry = _forward({"cluster": "c", "retry_policy": policy}).policy.retry_policy
    assert retry is not None

    def state(method: str) -> RetryState:
        headers = request("/", "h", method=method)
        s = RetryState.create(retry, CircuitBreakers(), random.Random(1), request_headers=headers)
        assert s is not None
        return s

    get = state("GET")
    assert not get.on_response(200, [(b"x-busy", b"no")]).retry
    assert get.on_response(200, [(b"x-busy", b"no"), (b"x-busy", b"yes-now")]).retry
    assert not state("POST").on_response(200, [(b"x-busy", b"yes")]).retry


def test_route_retry_policy_replaces_the_virtual_host_one() -> None:
    vhost_policy = {"retry_on": "5xx", "num_retries": 4}
    config = one_route(
        {"match": {"prefix": "/"}, "route": {"cluster": "c"}}, retry_policy=vhost_policy
    )
    config["virtual_hosts"][0]["routes"].insert(
        0,
        {
            "match": {"prefix": "/own"},
            "route": {"cluster": "c", "retry_policy": {"retry_on": "reset"}},
        },
    )
    t = table(config)
    inherited = t.route(request("/x"))
    own = t.route(request("/own"))
    assert isinstance(inherited, Forward) and isinstance(own, Forward)
    assert inherited.policy.retry_policy == RetryPolicy(retry_on=frozenset({"5xx"}), num_retries=4)
    assert own.policy.retry_policy == RetryPolicy(retry_on=frozenset({"reset"}), num_retries=1)


def test_hash_policies() -> None:
    policies = [
        {"header": {"header_name": "X-User"}},
        {
            "cookie": {
                "name": "sticky",
                "path": "/",
                "attributes": [{"name": "SameSite", "value": "Lax"}],
            },
            "terminal": True,
        },
        {"connection_properties": {"source_ip": True}},
        {"connection_properties": {"source_ip": False}},
        {"query_parameter": {"name": "id"}},
    ]
    fwd = _forward({"cluster": "c", "hash_policy": policies})
    assert fwd.policy.hash_policies == (
        HeaderHash(b"x-user", False, None),
        CookieHash(b"sticky", True),
        SourceIpHash(False),
        QueryParameterHash(b"id", False),
    )


def test_header_hash_rewrite_is_re2() -> None:
    rewrite = {"pattern": {"regex": "^/(?<api>[a-z]+)/v[0-9]+\\z"}, "substitution": "\\1\\0"}
    policies = [{"header": {"header_name": ":path", "regex_rewrite": rewrite}}]
    fwd = _forward({"cluster": "c", "hash_policy": policies})
    assert compute_hash(fwd.policy.hash_policies, request("/users/v2"), None) == xxh64(
        b"users/users/v2"
    )
    assert compute_hash(fwd.policy.hash_policies, request("/users/v2/x"), None) == xxh64(
        b"/users/v2/x"
    )


def _redirect(
    redirect: dict[str, Any],
    path: str,
    host: str,
    *headers: tuple[str, str],
    match: dict[str, Any] | None = None,
) -> Redirect:
    route = {"match": match or {"prefix": "/"}, "redirect": redirect}
    decision = table(one_route(route)).route(request(path, host, *headers))
    assert isinstance(decision, Redirect)
    return decision


@pytest.mark.parametrize(
    ("redirect", "path", "host", "headers", "status", "location"),
    [
        ({"https_redirect": True}, "/a?b", "h.com", [], 301, "https://h.com/a?b"),
        ({"https_redirect": True}, "/a", "h.com:80", [], 301, "https://h.com/a"),
        ({"https_redirect": True}, "/a", "h.com:8080", [], 301, "https://h.com:8080/a"),
        ({"https_redirect": True}, "/a", "h.com:443", [], 301, "https://h.com:443/a"),
        (
            {"https_redirect": True},
            "/a",
            "h.com:80",
            [("x-forwarded-proto", "https")],
            301,
            "https://h.com:80/a",
        ),
        ({"https_redirect": True}, "/a", "[::1]:80", [], 301, "https://[::1]/a"),
        ({"https_redirect": True}, "/a", "[::1]", [], 301, "https://[::1]/a"),
        (
            {"scheme_redirect": "http"},
            "/a",
            "h.com:443",
            [("x-forwarded-proto", "https")],
            301,
            "http://h.com/a",
        ),
        ({"scheme_redirect": "http"}, "/a", "h.com:80", [], 301, "http://h.com:80/a"),
        ({"port_redirect": 8443}, "/a", "h.com:80", [], 301, "http://h.com:8443/a"),
        (
            {"https_redirect": True, "port_redirect": 8443},
            "/a",
            "h.com",
            [],
            301,
            "https://h.com:8443/a",
        ),
        ({"host_redirect": "n.com"}, "/a?b", "h.com:8080", [], 301, "http://n.com/a?b"),
        (
            {"host_redirect": "n.com", "port_redirect": 81},
            "/a",
            "h.com",
            [],
            301,
            "http://n.com:81/a",
        ),
        ({"path_redirect": "/p"}, "/a?b=1", "h.com", [], 301, "http://h.com/p?b=1"),
        ({"path_redirect": "p"}, "/a", "h.com", [], 301, "http://h.com/p"),
        ({"path_redirect": "/p?x=1"}, "/a?b=1", "h.com", [], 301, "http://h.com/p?x=1"),
        (
            {"path_redirect": "/p?x=1", "strip_query": True},
            "/a?b=1",
            "h.com",
            [],
            301,
            "http://h.com/p?x=1",
        ),
        (
            {"path_redirect": "/p", "strip_query": True},
            "/a?b=1",
            "h.com",
            [],
            301,
            "http://h.com/p",
        ),
        ({"strip_query": True}, "/a?b=1", "h.com", [], 301, "http://h.com/a"),
        ({"response_code": "FOUND", "https_redirect": True}, "/", "h", [], 302, "https://h/"),
        ({"response_code": "SEE_OTHER", "https_redirect": True}, "/", "h", [], 303, "https://h/"),
        (
            {"response_code": "TEMPORARY_REDIRECT", "https_redirect": True},
            "/",
            "h",
            [],
            307,
            "https://h/",
        ),
        (
            {"response_code": "PERMANENT_REDIRECT", "https_redirect": True},
            "/",
            "h",
            [],
            308,
            "https://h/",
        ),
    ],
)
def test_redirect_locations(
    redirect: dict[str, Any],
    path: str,
    host: str,
    headers: list[tuple[str, str]],
    status: int,
    location: str,
) -> None:
    decision = _redirect(redirect, path, host, *headers)
    assert (decision.status, decision.location) == (status, location.encode())


@pytest.mark.parametrize(
    ("match", "redirect", "path", "location"),
    [
        ({"prefix": "/old/"}, {"prefix_rewrite": "/new/"}, "/old/x?q", "http://h/new/x?q"),
        ({"path": "/old"}, {"prefix_rewrite": "/new"}, "/old?q", "http://h/new?q"),
        (
            {"safe_regex": {"regex": "/r/.*"}},
            {"prefix_rewrite": "/whole"},
            "/r/x?q",
            "http://h/whole?q",
        ),
        (
            {"prefix": "/old/"},
            {"prefix_rewrite": "/new/", "strip_query": True},
            "/old/x?q",
            "http://h/new/x",
        ),
        (
            {"prefix": "/"},
            {"regex_rewrite": {"pattern": {"regex": "^/(.+)/(.+)$"}, "substitution": "/\\2/\\1"}},
            "/a/b?q",
            "http://h/b/a?q",
        ),
        (
            {"prefix": "/"},
            {"regex_rewrite": {"pattern": {"regex": ".*"}, "substitution": ""}},
            "/a",
            "http://h/a",
        ),
    ],
)
def test_redirect_path_rewrites(
    match: dict[str, Any], redirect: dict[str, Any], path: str, location: str
) -> None:
    assert _redirect(redirect, path, "h", match=match).location == location.encode()


def test_redirect_reply_headers_carry_response_mutations() -> None:
    route = {
        "match": {"prefix": "/"},
        "redirect": {"https_redirect": True},
        "response_headers_to_add": [{"header": {"key": "x-r", "value": "1"}}],
    }
    decision = table(one_route(route)).route(request("/a", "h"))
    assert isinstance(decision, Redirect)
    assert local_reply_headers(decision) == [
        (b":status", b"301"),
        (b"location", b"https://h/a"),
        (b"x-r", b"1"),
    ]


def test_require_tls() -> None:
    config = one_route(
        {"match": {"prefix": "/"}, "direct_response": {"status": 200}}, require_tls="EXTERNAL_ONLY"
    )
    t = table(config)
    assert t.route(request("/a?b", "h:80")) == Redirect(301, b"https://h:80/a?b")
    assert isinstance(t.route(request("/", "h", ("x-envoy-internal", "true"))), DirectResponse)
    assert isinstance(t.route(request("/", "h", ("x-forwarded-proto", "https"))), DirectResponse)
    config["virtual_hosts"][0]["require_tls"] = "ALL"
    assert isinstance(
        table(config).route(request("/", "h", ("x-envoy-internal", "true"))), Redirect
    )


@pytest.mark.parametrize(
    ("direct", "path", "status", "body", "location"),
    [
        ({"status": 200, "body": {"inline_string": "hello"}}, "/a", 200, b"hello", None),
        ({"status": 503, "body": {"inline_bytes": "AAE="}}, "/a", 503, b"\x00\x01", None),
        ({"status": 204}, "/a", 204, b"", None),
        ({"status": 201}, "/made?x", 201, b"", b"http://h:80/made?x"),
        (
            {"status": 302, "body": {"inline_string": "moved"}},
            "/a",
            302,
            b"moved",
            b"http://h:80/a",
        ),
    ],
)
def test_direct_responses(
    direct: dict[str, Any], path: str, status: int, body: bytes, location: bytes | None
) -> None:
    decision = table(one_route({"match": {"prefix": "/"}, "direct_response": direct})).route(
        request(path, "h:80")
    )
    assert decision == DirectResponse(status, body, location)


def test_direct_response_reply_headers() -> None:
    route = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": "hi"}},
    }
    decision = table(one_route(route)).route(request())
    assert isinstance(decision, DirectResponse)
    assert local_reply_headers(decision) == [
        (b":status", b"200"),
        (b"content-length", b"2"),
        (b"content-type", b"text/plain"),
    ]


def test_direct_response_body_limit() -> None:
    route = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": "x" * 4097}},
    }
    with pytest.raises(ConfigError, match="response body size is 4097 bytes; maximum is 4096"):
        table(one_route(route))
    config = one_route(route)
    config["max_direct_response_body_size_bytes"] = 5000
    assert isinstance(table(config).route(request()), DirectResponse)


def test_virtual_host_flags_reach_the_decision() -> None:
    config = one_route(
        {
            "match": {"prefix": "/"},
            "route": {
                "cluster": "c",
                "priority": "HIGH",
                "upgrade_configs": [{"upgrade_type": "WebSocket"}],
            },
        },
        include_request_attempt_count=True,
        include_attempt_count_in_response=True,
        per_request_buffer_limit_bytes=1024,
    )
    decision = table(config).route(request())
    assert isinstance(decision, Forward)
    assert (
        decision.policy.include_attempt_count_in_request
        and decision.policy.include_attempt_count_in_response
    )
    assert decision.policy.per_request_buffer_limit == 1024
    assert decision.policy.high_priority
    assert decision.policy.upgrades == {"websocket": True}
    assert decision.policy.virtual_host == "vh"
