"""RBAC filters on the request path: 403 `RBAC: access denied` before the upstream, stats, logs."""

from __future__ import annotations

from typing import Any

from pydp.listener.config import HttpConnectionManagerConfig
from pydp.rbac import RbacFilter
from tests.pydp.proxy.backend import Backend, Backends
from tests.pydp.proxy.client import h1_client, h2_client
from tests.pydp.proxy.harness import FakeRuntime, hcm, routes, serving, to
from tests.pydp.rbac.helpers import (
    CLIENT,
    method,
    path_prefix,
    peer,
    policy,
    principal_name,
    rbac_filter,
    rules,
    serving_with_peer,
)

DENY_ADMIN = rbac_filter(rules("DENY", {"deny admin": policy([path_prefix("/admin")])}))
ALLOW_GET = rbac_filter(
    rules(
        "ALLOW",
        {"get": policy([method("GET")])},
        rules_stat_prefix="get",
        track_per_rule_stats=True,
    )
)
RBAC = "http.ingress.rbac."


async def app(runtime: FakeRuntime, backends: Backends) -> Backend:
    backend = await backends.start()
    runtime.add_cluster("app", [backend.address])
    return backend


def config(*filters: RbacFilter, **fields: Any) -> HttpConnectionManagerConfig:
    return hcm(routes(to("app")), rbac_filters=filters, **fields)


async def test_denied_request_gets_envoys_403_and_never_reaches_the_app(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await app(runtime, backends)
    async with serving(runtime, config(DENY_ADMIN)) as proxy, h1_client(proxy) as client:
        denied = await client.request(path="/admin/users")
        assert not client.closed
        allowed = await client.request(path="/users")
    assert [k for k, _ in denied.headers] == [
        b":status",
        b"content-length",
        b"content-type",
        b"date",
        b"server",
    ]
    assert (denied.status, denied.body) == (403, b"RBAC: access denied")
    assert (denied.header("content-length"), denied.header("content-type")) == ("19", "text/plain")
    assert denied.header("server") == "envoy"
    assert allowed.status == 200
    assert [r.path for r in backend.received] == ["/users"]
    (_, denial), (_, passed) = runtime.entries
    assert (denial.response_code, denial.response_flags) == (403, "-")
    assert denial.extra["RESPONSE_CODE_DETAILS"] == "rbac_access_denied_matched_policy[deny_admin]"
    assert denial.upstream_cluster == "app"
    assert (passed.response_code, passed.response_flags) == (200, "-")
    assert "RESPONSE_CODE_DETAILS" not in passed.extra
    assert runtime.counter(RBAC + "allowed") == 1
    assert runtime.counter(RBAC + "denied") == 1
    assert runtime.counter("http.ingress.downstream_rq_4xx") == 1
    assert runtime.counter("cluster.app.upstream_rq_total") == 1
    assert RBAC + "shadow_denied" in runtime.stats.counters


async def test_filters_run_in_order_and_count_under_their_own_prefix(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await app(runtime, backends)
    async with serving(runtime, config(DENY_ADMIN, ALLOW_GET)) as proxy, h1_client(proxy) as client:
        statuses = [
            (await client.request(m, p)).status
            for m, p in [("GET", "/a"), ("POST", "/a"), ("GET", "/admin"), ("HEAD", "/b")]
        ]
    assert statuses == [200, 403, 403, 403]
    assert [r.path for r in backend.received] == ["/a"]
    counters = {k: v for k, v in runtime.stats.counters.items() if k.startswith(RBAC)}
    assert counters == {
        RBAC + "allowed": 3,
        RBAC + "denied": 1,
        RBAC + "shadow_allowed": 0,
        RBAC + "shadow_denied": 0,
        RBAC + "get.allowed": 1,
        RBAC + "get.denied": 2,
        RBAC + "get.policy.get.allowed": 1,
    }
    details = [e.extra.get("RESPONSE_CODE_DETAILS") for _, e in runtime.entries]
    assert details == [
        None,
        "rbac_access_denied_matched_policy[none]",
        "rbac_access_denied_matched_policy[deny_admin]",
        "rbac_access_denied_matched_policy[none]",
    ]


async def test_head_and_early_replies(runtime: FakeRuntime, backends: Backends) -> None:
    backend = await app(runtime, backends)
    async with serving(runtime, config(ALLOW_GET)) as proxy:
        async with h1_client(proxy) as client:
            head = await client.request("HEAD", "/")
        async with h1_client(proxy) as client:
            post = await client.request("POST", "/", body=[b"x" * 10, b"y" * 10])
            assert client.closed
    assert (head.status, head.body, head.header("content-length")) == (403, b"", "19")
    assert (post.status, post.body) == (403, b"RBAC: access denied")
    assert backend.received == []


async def test_grpc_and_http2_requests_are_denied_the_grpc_way(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await app(runtime, backends)
    grpc = [("content-type", "application/grpc"), ("te", "trailers")]
    async with serving(runtime, config(ALLOW_GET)) as proxy, h2_client(proxy) as client:
        answer = await client.request("POST", "/pkg.Svc/Call", grpc, b"\0\0\0\0\0")
        plain = await client.request("DELETE", "/x")
        ok = await client.request("GET", "/x")
    assert answer.status == 200
    assert [(k, v) for k, v in answer.headers if k not in (b"date", b"server")] == [
        (b":status", b"200"),
        (b"content-type", b"application/grpc"),
        (b"grpc-status", b"7"),
        (b"grpc-message", b"RBAC: access denied"),
    ]
    assert (plain.status, plain.body) == (403, b"RBAC: access denied")
    assert ok.status == 200
    assert [r.protocol for r in backend.received] == ["HTTP/1.1"]


async def test_a_denied_direct_response_route_is_still_denied(runtime: FakeRuntime) -> None:
    table = routes({"match": {"prefix": "/"}, "direct_response": {"status": 200}})
    async with (
        serving(runtime, hcm(table, rbac_filters=(ALLOW_GET,))) as proxy,
        h1_client(proxy) as client,
    ):
        assert (await client.request("PUT")).status == 403
        assert (await client.request("GET")).status == 200
    assert runtime.counter("http.ingress.rq_direct_response") == 1
    assert runtime.entries[0][1].upstream_cluster == "-"


async def test_a_filter_without_rules_counts_nothing(
    runtime: FakeRuntime, backends: Backends
) -> None:
    await app(runtime, backends)
    async with (
        serving(runtime, config(RbacFilter(engine=None))) as proxy,
        h1_client(proxy) as client,
    ):
        assert (await client.request("DELETE", "/admin")).status == 200
    assert not [k for k in runtime.stats.counters if ".rbac." in k]


async def test_destination_port_is_the_listeners_port(
    runtime: FakeRuntime, backends: Backends
) -> None:
    await app(runtime, backends)

    def on_port(port: int) -> HttpConnectionManagerConfig:
        return config(
            rbac_filter(rules("ALLOW", {"here": policy([{"destination_port": port}])})),
            rbac_filter(rules("DENY", {"elsewhere": policy([{"destination_port": port + 1}])})),
        )

    async with serving_with_peer(runtime, on_port, None) as proxy, h1_client(proxy) as client:
        assert (await client.request()).status == 200
    assert runtime.counter(RBAC + "allowed") == 2


async def test_principals_are_the_connections_verified_peer(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await app(runtime, backends)
    only_client = config(
        rbac_filter(rules("ALLOW", {"client": policy(principals=[principal_name(CLIENT)])}))
    )
    outcomes = []
    for client_peer in (peer(CLIENT), peer("spiffe://cluster.local/ns/a/sa/other"), peer(), None):
        async with (
            serving_with_peer(runtime, only_client, client_peer) as proxy,
            h1_client(proxy) as client,
        ):
            outcomes.append((await client.request()).status)
    assert outcomes == [200, 403, 403, 403]
    assert len(backend.received) == 1
