"""Property tests: compiling only ever fails with ConfigError; routing never fails."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pydp.errors import ConfigError
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
from pydp.upstream.hashing import compute_hash
from tests.pydp.router.util import proto

TEXT = st.text(alphabet=st.sampled_from("ab/*.?#%:;-_ABé\\()[]{}|^$+0123456789&=, "), max_size=12)
SAFE = st.text(alphabet=st.sampled_from("ab/.-_AB0123456789"), min_size=1, max_size=8).map(
    lambda t: "/" + t
)
ACTIONS = st.sampled_from(
    [
        "APPEND_IF_EXISTS_OR_ADD",
        "ADD_IF_ABSENT",
        "OVERWRITE_IF_EXISTS_OR_ADD",
        "OVERWRITE_IF_EXISTS",
    ]
)


def _pick(
    valid: bool, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    return good if valid else st.one_of(good, bad)


def configs(valid: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Route configurations; with `valid` only from parts that compile."""
    text = _pick(valid, SAFE, TEXT)
    name = _pick(
        valid,
        st.sampled_from(["x-a", "x-b", "X-Up", ":method", ":path", ":authority"]),
        st.sampled_from(["", "a b"]),
    )
    mutable = _pick(
        valid,
        st.sampled_from(["x-a", "x-b", "X-Up", "cookie"]),
        st.sampled_from([":path", "host", ""]),
    )
    regex = _pick(
        valid,
        st.sampled_from(
            [
                "/a.*",
                "(a)(b)?",
                "x*",
                "^/(.+)$",
                "(?i)abc",
                "[[:alpha:]]+",
                "a{,3}",
                "/[0-9]+",
                "[^/]*",
            ]
        ),
        st.one_of(st.sampled_from(["(a", "(?=a)", "\\1", "a{2000}", ""]), TEXT),
    )
    duration = _pick(
        valid, st.sampled_from(["0s", "0.5s", "15s", "0.0001s", "3600s"]), st.just("-1s")
    )
    value = _pick(
        valid,
        st.one_of(
            text, st.sampled_from(["%DOWNSTREAM_REMOTE_ADDRESS%", "%UPSTREAM_HOST% %%", "100%%"])
        ),
        st.sampled_from(["%START_TIME%", "50%"]),
    )
    optional_bool = _pick(valid, st.none(), st.booleans())

    def string_matcher() -> st.SearchStrategy[dict[str, Any]]:
        kinds = st.one_of(
            st.builds(lambda v: {"exact": v}, text),
            st.builds(lambda v: {"prefix": v}, text),
            st.builds(lambda v: {"suffix": v}, text),
            st.builds(lambda v: {"contains": v}, text),
        )
        with_case = st.builds(lambda k, ic: {**k, "ignore_case": ic}, kinds, st.booleans())
        return st.one_of(with_case, st.builds(lambda r: {"safe_regex": {"regex": r}}, regex))

    header_matcher = st.builds(
        lambda n, spec, inv, missing: {
            "name": n,
            **spec,
            "invert_match": inv,
            "treat_missing_header_as_empty": missing,
        },
        name,
        st.one_of(
            st.just({}),
            st.builds(lambda v: {"exact_match": v}, text),
            st.builds(lambda v: {"prefix_match": v}, text),
            st.builds(lambda r: {"safe_regex_match": {"regex": r}}, regex),
            st.builds(
                lambda a, b: {"range_match": {"start": a, "end": b}},
                st.integers(-(2**63), 2**63 - 1),
                st.integers(-(2**63), 2**63 - 1),
            ),
            st.builds(lambda p: {"present_match": p}, st.booleans()),
            st.builds(lambda m: {"string_match": m}, string_matcher()),
        ),
        st.booleans(),
        st.booleans(),
    )
    query_matcher = st.builds(
        lambda n, spec: {"name": n, **spec},
        _pick(valid, st.sampled_from(["a", "b"]), st.just("")),
        st.one_of(
            st.just({}),
            st.builds(lambda m: {"string_match": m}, string_matcher()),
            st.builds(lambda p: {"present_match": p}, st.booleans()),
        ),
    )
    match = st.builds(
        lambda spec, ci, headers, query: {
            **spec,
            "case_sensitive": ci,
            "headers": headers,
            "query_parameters": query,
        },
        st.one_of(
            st.builds(
                lambda v: {"prefix": v}, _pick(valid, st.sampled_from(["/", "/a", ""]), TEXT)
            ),
            st.builds(lambda v: {"path": v}, text),
            st.builds(lambda r: {"safe_regex": {"regex": r}}, regex),
            st.builds(
                lambda v: {"path_separated_prefix": v},
                _pick(valid, st.sampled_from(["/a", "/b/c"]), TEXT),
            ),
        ),
        st.booleans(),
        st.lists(header_matcher, max_size=2),
        st.lists(query_matcher, max_size=2),
    )
    headers_to_add = st.lists(
        st.builds(
            lambda key, v, action, keep, append: {
                "header": {"key": key, "value": v},
                **({"append_action": action} if append is None else {"append": append}),
                "keep_empty_value": keep,
            },
            mutable,
            value,
            ACTIONS,
            st.booleans(),
            optional_bool,
        ),
        max_size=2,
    )
    remove = st.lists(mutable, max_size=2)
    rewrite = st.builds(
        lambda p, sub: {"pattern": {"regex": p}, "substitution": sub},
        regex,
        _pick(
            valid,
            st.sampled_from(["", "/new", "x\\\\"]),
            st.sampled_from(["\\1", "\\0-\\2", "\\q"]),
        ),
    )
    retry = st.builds(
        lambda on, n, per_try, base, retriable: {
            "retry_on": on,
            **({} if n is None else {"num_retries": n}),
            "per_try_timeout": per_try,
            **({} if base is None else {"retry_back_off": {"base_interval": base}}),
            **retriable,
        },
        st.sampled_from(["", "5xx", "5xx,reset, gateway-error", ",,", "retriable-headers"]),
        st.none() | st.integers(0, 10),
        duration,
        st.none() | _pick(valid, st.just("0.1s"), st.just("0s")),
        st.one_of(
            st.just({}),
            st.builds(lambda m: {"retriable_headers": m}, st.lists(header_matcher, max_size=2)),
            st.builds(lambda m: {"retriable_request_headers": [m]}, header_matcher),
        ),
    )
    hash_policy = st.one_of(
        st.builds(lambda n: {"header": {"header_name": n}}, name),
        st.builds(lambda r: {"header": {"header_name": ":path", "regex_rewrite": r}}, rewrite),
        st.builds(
            lambda ttl: {"cookie": {"name": "s", "path": "/", **ttl}},
            _pick(valid, st.just({}), st.builds(lambda t: {"ttl": t}, duration)),
        ),
        st.builds(lambda s: {"connection_properties": {"source_ip": s}}, st.booleans()),
        st.builds(
            lambda n: {"query_parameter": {"name": n}}, _pick(valid, st.just("q"), st.just(""))
        ),
    )
    cluster_weight = st.builds(
        lambda target, weight, add, host: {
            **target,
            "weight": weight,
            "request_headers_to_add": add,
            **host,
        },
        _pick(
            valid,
            st.sampled_from([{"name": "c1"}, {"name": "c2"}, {"cluster_header": "x-c"}]),
            st.sampled_from([{}, {"name": "c", "cluster_header": "x-c"}]),
        ),
        _pick(valid, st.integers(1, 5), st.sampled_from([0, 2**32 - 1])),
        headers_to_add,
        st.sampled_from([{}, {"host_rewrite_literal": "up"}]),
    )
    route_action = st.builds(
        lambda spec, rw, host, timeout, rp, hashes: {
            **spec,
            **rw,
            **host,
            "timeout": timeout,
            **rp,
            "hash_policy": hashes,
        },
        st.one_of(
            st.builds(lambda c: {"cluster": c}, _pick(valid, st.just("c1"), st.just(""))),
            st.builds(lambda h: {"cluster_header": h}, name),
            st.builds(
                lambda cs, hn: {"weighted_clusters": {"clusters": cs, **hn}},
                st.lists(cluster_weight, min_size=1, max_size=3),
                st.sampled_from([{}, {"header_name": "x-pick"}]),
            ),
        ),
        st.one_of(
            st.just({}),
            st.builds(lambda v: {"prefix_rewrite": v}, text),
            st.builds(lambda r: {"regex_rewrite": r}, rewrite),
        ),
        st.one_of(
            st.just({}),
            st.builds(
                lambda h, x: {"host_rewrite_literal": h, "append_x_forwarded_host": x},
                st.sampled_from(["up", "up:81"]),
                st.booleans(),
            ),
            st.just({"auto_host_rewrite": True}),
        ),
        duration,
        st.one_of(st.just({}), st.builds(lambda r: {"retry_policy": r}, retry)),
        st.lists(hash_policy, max_size=2),
    )
    redirect = st.builds(
        lambda scheme, host, port, path, strip, code: {
            **scheme,
            "host_redirect": host,
            "port_redirect": port,
            **path,
            "strip_query": strip,
            "response_code": code,
        },
        st.one_of(
            st.just({}),
            st.just({"https_redirect": True}),
            st.builds(lambda v: {"scheme_redirect": v}, st.sampled_from(["http", "ftp"])),
        ),
        st.sampled_from(["", "new.host", "[::1]"]),
        st.integers(0, 70000),
        st.one_of(
            st.just({}),
            st.builds(lambda v: {"path_redirect": v}, text),
            st.builds(lambda v: {"prefix_rewrite": v}, text),
            st.builds(lambda r: {"regex_rewrite": r}, rewrite),
        ),
        st.booleans(),
        st.integers(0, 4),
    )
    direct = st.builds(
        lambda status, body: {
            "status": status,
            **({} if body is None else {"body": {"inline_string": body}}),
        },
        _pick(valid, st.integers(200, 599), st.integers(0, 1000)),
        st.none() | text,
    )
    route = st.builds(
        lambda m, action, add, rm, resp: {
            "match": m,
            **action,
            "request_headers_to_add": add,
            "request_headers_to_remove": rm,
            "response_headers_to_add": resp,
        },
        match,
        st.one_of(
            st.builds(lambda a: {"route": a}, route_action),
            st.builds(lambda a: {"redirect": a}, redirect),
            st.builds(lambda a: {"direct_response": a}, direct),
        ),
        headers_to_add,
        remove,
        headers_to_add,
    )
    domain_lists = (
        st.sampled_from([["*"], ["a.com"], ["*.a.com", "a.*"], ["[::1]:80", "A.B"]])
        if valid
        else st.lists(
            st.sampled_from(["*", "a.com", "*.a.com", "a.*", "A.com", "", "*-x.a.com"]), max_size=3
        )
    )
    vhost = st.builds(
        lambda n, domains, routes, tls, add, rp: {
            "name": n,
            "domains": domains,
            "routes": routes,
            "require_tls": tls,
            "request_headers_to_add": add,
            **({} if rp is None else {"retry_policy": rp}),
        },
        _pick(valid, st.just("v"), st.just("")),
        domain_lists,
        st.lists(route, min_size=1, max_size=3),
        st.integers(0, 2),
        headers_to_add,
        st.none() | retry,
    )
    vhosts = st.lists(vhost, max_size=1) if valid else st.lists(vhost, max_size=3)
    return st.builds(
        lambda vs, flags, add, body_max: {
            "name": "rc",
            "virtual_hosts": vs,
            "request_headers_to_add": add,
            **flags,
            **({} if body_max is None else {"max_direct_response_body_size_bytes": body_max}),
        },
        vhosts,
        st.fixed_dictionaries(
            {},
            optional={
                "most_specific_header_mutations_wins": st.booleans(),
                "ignore_port_in_host_matching": st.booleans(),
                "ignore_path_parameters_in_path_matching": st.booleans(),
            },
        ),
        headers_to_add,
        st.none() | _pick(valid, st.just(100), st.integers(0, 10)),
    )


HEADER_BYTES = st.binary(max_size=12) | st.sampled_from(
    [b"a.com", b"x.a.com:80", b"/a?b=1&a", b"GET", b"https", b"1"]
)
HEADER_NAMES = st.sampled_from(
    [
        b":path",
        b":authority",
        b":scheme",
        b":method",
        b"x-a",
        b"x-pick",
        b"x-c",
        b"x-forwarded-proto",
        b"host",
        b"",
    ]
)
RAW_HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_BYTES), max_size=8)
REQUEST_LIKE = st.builds(
    lambda path, host, extra: [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", host),
        (b":path", path),
        *extra,
    ],
    st.sampled_from([b"/", b"/a", b"/a/b?a=1&b", b"/b/c;p=1", b"/abc", b"/x?q#f", b"/A/%2F"])
    | HEADER_BYTES,
    st.sampled_from([b"a.com", b"x.a.com", b"a.org:80", b"[::1]:80", b"A.B"]) | HEADER_BYTES,
    RAW_HEADERS,
)
HEADER_LIST = st.one_of(RAW_HEADERS, REQUEST_LIKE)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _compile(config: dict[str, Any]) -> RouteTable | None:
    try:
        return compile_route_config(proto(config))
    except ConfigError as err:
        assert err.resource == "route_config rc"
        assert str(err).startswith("route_config rc: ")
        return None


@SETTINGS
@given(configs(valid=False))
def test_compiling_raises_only_config_error(config: dict[str, Any]) -> None:
    _compile(config)


@SETTINGS
@given(configs(valid=True))
def test_valid_parts_compile(config: dict[str, Any]) -> None:
    assert isinstance(compile_route_config(proto(config)), RouteTable)


@SETTINGS
@given(
    configs(valid=True), st.lists(HEADER_LIST, min_size=1, max_size=4), st.integers(0, 2**64 - 1)
)
def test_routing_never_raises(
    config: dict[str, Any], requests: list[list[tuple[bytes, bytes]]], random_value: int
) -> None:
    routes = compile_route_config(proto(config))
    ctx = FormatContext(("10.0.0.1", 1234), ("10.0.0.2", 80), ("10.0.0.3", 8080))
    for headers in requests:
        decision = routes.route(headers, random_value)
        if isinstance(decision, Forward):
            sent = finalize_request_headers(headers, decision, ctx, upstream_hostname=b"up")
            assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in sent)
            finalize_response_headers([(b":status", b"200")], decision, ctx)
            value = compute_hash(decision.policy.hash_policies, headers, "10.0.0.1")
            assert value is None or 0 <= value < 2**64
            retry = decision.policy.retry_policy
            if retry is not None:
                for match in (*retry.retriable_headers, *retry.retriable_request_headers):
                    assert isinstance(match(headers), bool)
        else:
            assert isinstance(decision, Redirect | DirectResponse | NoRoute)
            reply = local_reply_headers(decision, ctx)
            assert reply[0] == (b":status", str(decision.status).encode())
