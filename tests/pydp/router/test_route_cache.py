"""Remembered decisions: the same as routing afresh, for every kind of route; bounded."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pydp.router import Forward, RouteTable, finalize_request_headers
from pydp.router.table import CACHE_SIZE
from tests.pydp.router.util import request, table

CONFIG: dict[str, Any] = {
    "name": "rc",
    "virtual_hosts": [
        {
            "name": "app",
            "domains": ["app", "app:80"],
            "routes": [
                {
                    "match": {"prefix": "/h", "headers": [{"name": "x-h", "exact_match": "1"}]},
                    "route": {"cluster": "by-header"},
                },
                {
                    "match": {"prefix": "/q", "query_parameters": [{"name": "v"}]},
                    "route": {"cluster": "by-query"},
                },
                {
                    "match": {"prefix": "/w"},
                    "route": {
                        "weighted_clusters": {
                            "clusters": [{"name": "w1", "weight": 1}, {"name": "w2", "weight": 1}]
                        }
                    },
                },
                {"match": {"prefix": "/n"}, "route": {"cluster_header": "x-cluster"}},
                {"match": {"prefix": "/r"}, "route": {"cluster": "r", "prefix_rewrite": "/x"}},
                {
                    "match": {"prefix": "/t"},
                    "route": {"cluster": "t", "host_rewrite_header": "x-target"},
                },
                {
                    "match": {"prefix": "/g"},
                    "route": {
                        "cluster": "g",
                        "host_rewrite_path_regex": {
                            "pattern": {"regex": "^/g([^/]*)"},
                            "substitution": "g\\1.example",
                        },
                    },
                },
                {
                    "match": {"prefix": "/e"},
                    "route": {"cluster": "e"},
                    "request_headers_to_add": [
                        {"header": {"key": "x-echo", "value": "%REQ(x-target?x-h)%"}}
                    ],
                },
                {
                    "match": {"prefix": "/d"},
                    "direct_response": {"status": 301, "body": {"inline_string": "moved"}},
                },
                {"match": {"prefix": "/s"}, "redirect": {"scheme_redirect": "https"}},
                {"match": {"prefix": "/"}, "route": {"cluster": "root"}},
            ],
        },
        {
            "name": "secure",
            "domains": ["secure"],
            "require_tls": "ALL",
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "s"}}],
        },
        {
            "name": "plain",
            "domains": ["plain"],
            "routes": [{"match": {"path": "/only"}, "route": {"cluster": "p"}}],
        },
    ],
}

PATHS = st.tuples(
    st.sampled_from(
        ["/h", "/q", "/w", "/n", "/r", "/t", "/g", "/e", "/d", "/s", "/", "/only", "/other"]
    ),
    st.sampled_from(["", "1", "/a"]),
    st.sampled_from(["", "?v=1", "?w=2"]),
).map("".join)
HEADERS = st.lists(
    st.sampled_from(
        [
            ("x-h", "1"),
            ("x-h", "2"),
            ("x-cluster", "c1"),
            ("x-forwarded-proto", "https"),
            ("x-target", "a.example"),
            ("x-target", "b.example"),
        ]
    ),
    max_size=3,
    unique=True,
)
REQUESTS = st.tuples(
    PATHS,
    st.sampled_from(["app", "app:80", "secure", "plain", "elsewhere"]),
    HEADERS,
    st.sampled_from(["http", "https"]),
    st.integers(min_value=0, max_value=2**64 - 1),
)

CACHED = table(CONFIG)


@given(st.lists(REQUESTS, min_size=1, max_size=20))
def test_a_remembered_decision_is_the_one_made_afresh(
    requests: list[tuple[str, str, list[tuple[str, str]], str, int]],
) -> None:
    for path, host, headers, scheme, random_value in requests:
        headers_list = request(path, host, *headers, scheme=scheme)
        fresh = table(CONFIG).route(headers_list, random_value)
        assert CACHED.route(headers_list, random_value) == fresh
        cached = CACHED.route(headers_list, random_value)
        assert cached == fresh
        if isinstance(fresh, Forward):
            assert isinstance(cached, Forward)
            sent = finalize_request_headers(headers_list, cached)
            assert sent == finalize_request_headers(headers_list, fresh)


def test_decisions_by_url_alone_are_remembered_others_are_not() -> None:
    routes: RouteTable = table(CONFIG)
    plain = request("/a", "app")
    assert routes.route(plain) is routes.route(plain)
    weighted = request("/w", "app")
    picks = [routes.route(weighted, value) for value in range(8)]
    assert {d.cluster for d in picks if isinstance(d, Forward)} == {"w1", "w2"}
    named = [routes.route(request("/n", "app", ("x-cluster", name))) for name in ("c1", "c2")]
    assert {d.cluster for d in named if isinstance(d, Forward)} == {"c1", "c2"}


def test_the_cache_is_bounded() -> None:
    routes: RouteTable = table(CONFIG)
    for i in range(CACHE_SIZE + 10):
        routes.route(request(f"/p{i}", "app"))
    assert 0 < len(routes._cache) <= CACHE_SIZE
    routes.route(request("/h", "app", ("x-h", "1")))
    assert (b"app", b"/h") not in routes._cache


def test_routes_reading_other_headers_at_finalize_time_are_remembered_safely() -> None:
    routes: RouteTable = table(CONFIG)
    authorities = []
    echoed = []
    for target in ("a.example", "b.example", None):
        extra = [("x-target", target)] if target else []
        for path in ("/t", "/e"):
            headers = request(path, "app", *extra)
            decision = routes.route(headers)
            assert isinstance(decision, Forward)
            assert routes.route(headers) is decision, "the decision is remembered"
            sent = dict(finalize_request_headers(headers, decision))
            if path == "/t":
                authorities.append(sent[b":authority"])
            else:
                echoed.append(sent.get(b"x-echo"))
    assert authorities == [b"a.example", b"b.example", b"app"]
    assert echoed == [b"a.example", b"b.example", None]
    for path, authority in (("/gone/x", b"gone.example/x"), ("/gx", b"gx.example")):
        headers = request(path, "app")
        decision = routes.route(headers)
        assert isinstance(decision, Forward)
        assert dict(finalize_request_headers(headers, decision))[b":authority"] == authority
