"""Routing decisions end to end: forwarded, answered locally, or refused, as Envoy answers."""

from __future__ import annotations

import pytest

from tests.pydp.proxy.backend import Backends
from tests.pydp.proxy.client import h1_client, h1_request, h2_client, raw_exchange
from tests.pydp.proxy.harness import FakeRuntime, hcm, route_table, routes, serving, to


def no_date(answer_headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in answer_headers if k != b"date"]


async def test_routes_by_prefix_to_clusters(runtime: FakeRuntime, backends: Backends) -> None:
    a = await backends.start()
    b = await backends.start()
    runtime.add_cluster("a", [a.address])
    runtime.add_cluster("b", [b.address])
    async with (
        serving(runtime, hcm(routes(to("b", "/b"), to("a")))) as proxy,
        h1_client(proxy) as client,
    ):
        assert (await client.request(path="/b/x")).status == 200
        assert (await client.request(path="/x")).status == 200
        assert (await client.request(path="/b")).status == 200
    assert [r.path for r in a.received] == ["/x"]
    assert [r.path for r in b.received] == ["/b/x", "/b"]
    assert [e.upstream_cluster for _, e in runtime.entries] == ["b", "a", "b"]


async def test_no_route_is_404_with_an_empty_body(runtime: FakeRuntime) -> None:
    table = route_table({"name": "rc", "virtual_hosts": [{"name": "v", "domains": ["only"]}]})
    async with serving(runtime, hcm(table)) as proxy, h1_client(proxy) as client:
        answer = await client.request(path="/x", authority="elsewhere")
        assert not client.closed
    assert answer.status == 404
    assert answer.body == b""
    assert [k for k, _ in answer.headers] == [b":status", b"date", b"server", b"content-length"]
    assert answer.header("server") == "envoy"
    assert answer.header("content-length") == "0"
    ((listener, entry),) = runtime.entries
    assert listener == "listener_0"
    assert (entry.response_code, entry.response_flags, entry.path) == (404, "NR", "/x")
    assert runtime.counter("http.ingress.no_route") == 1
    assert runtime.counter("http.ingress.downstream_rq_4xx") == 1


async def test_missing_rds_table_is_no_route(runtime: FakeRuntime) -> None:
    async with serving(runtime, hcm(rds_name="outbound")) as proxy:
        answer = await h1_request(proxy)
    assert answer.status == 404
    assert runtime.entries[0][1].response_flags == "NR"


async def test_rds_table_is_read_per_request(runtime: FakeRuntime) -> None:
    config = hcm(rds_name="outbound")
    runtime.routes["outbound"] = routes(
        {
            "match": {"prefix": "/"},
            "direct_response": {"status": 200, "body": {"inline_string": "one"}},
        }
    )
    async with serving(runtime, config) as proxy, h1_client(proxy) as client:
        first = await client.request()
        runtime.routes["outbound"] = routes(
            {
                "match": {"prefix": "/"},
                "direct_response": {"status": 201, "body": {"inline_string": "two"}},
            }
        )
        second = await client.request()
    assert (first.status, first.body) == (200, b"one")
    assert (second.status, second.body) == (201, b"two")


async def test_direct_response_as_envoy_sends_it(runtime: FakeRuntime) -> None:
    table = routes(
        {
            "match": {"prefix": "/"},
            "direct_response": {"status": 200, "body": {"inline_string": "hello"}},
        }
    )
    async with serving(runtime, hcm(table)) as proxy:
        answer = await h1_request(proxy)
        head = await h1_request(proxy, "HEAD")
    assert answer.body == b"hello"
    assert no_date(answer.headers) == [
        (b":status", b"200"),
        (b"content-length", b"5"),
        (b"content-type", b"text/plain"),
        (b"server", b"envoy"),
    ]
    assert head.body == b""
    assert head.header("content-length") == "5"
    assert runtime.counter("http.ingress.rq_direct_response") == 2


async def test_redirect(runtime: FakeRuntime) -> None:
    table = routes(
        {
            "match": {"prefix": "/"},
            "redirect": {"host_redirect": "new.example", "response_code": "FOUND"},
        }
    )
    async with serving(runtime, hcm(table)) as proxy:
        answer = await h1_request(proxy, path="/p?q=1")
    assert answer.status == 302
    assert answer.header("location") == "http://new.example/p?q=1"
    assert answer.header("content-length") == "0"
    assert runtime.counter("http.ingress.rq_redirect") == 1


async def test_unknown_cluster_is_503_without_body(runtime: FakeRuntime) -> None:
    async with serving(runtime, hcm(routes(to("missing")))) as proxy:
        answer = await h1_request(proxy)
    assert answer.status == 503
    assert answer.body == b""
    assert answer.header("content-length") == "0"
    assert runtime.entries[0][1].response_flags == "NC"
    assert runtime.counter("http.ingress.no_cluster") == 1


async def test_cluster_not_found_response_code(runtime: FakeRuntime) -> None:
    table = routes(to("missing", cluster_not_found_response_code="NOT_FOUND"))
    async with serving(runtime, hcm(table)) as proxy:
        answer = await h1_request(proxy)
    assert answer.status == 404


async def test_no_healthy_upstream(runtime: FakeRuntime) -> None:
    runtime.add_cluster("empty", [])
    table = routes(to("empty"), include_attempt_count_in_response=True)
    async with serving(runtime, hcm(table)) as proxy, h1_client(proxy) as client:
        answer = await client.request()
        assert not client.closed
    assert (answer.status, answer.body) == (503, b"no healthy upstream")
    assert no_date(answer.headers) == [
        (b":status", b"503"),
        (b"x-envoy-attempt-count", b"1"),
        (b"content-length", b"19"),
        (b"content-type", b"text/plain"),
        (b"server", b"envoy"),
    ]
    assert runtime.entries[0][1].response_flags == "UH"


async def test_no_healthy_upstream_over_grpc(runtime: FakeRuntime) -> None:
    runtime.add_cluster("empty", [])
    grpc = [("content-type", "application/grpc"), ("te", "trailers")]
    async with serving(runtime, hcm(routes(to("empty")))) as proxy, h2_client(proxy) as client:
        answer = await client.request("POST", "/pkg.Svc/Call", grpc, b"\0\0\0\0\0")
    assert answer.status == 200
    assert answer.body == b""
    assert no_date(answer.headers) == [
        (b":status", b"200"),
        (b"content-type", b"application/grpc"),
        (b"grpc-status", b"14"),
        (b"grpc-message", b"no healthy upstream"),
        (b"server", b"envoy"),
    ]


async def test_route_response_headers_on_local_replies(runtime: FakeRuntime) -> None:
    runtime.add_cluster("empty", [])
    table = routes(
        to("empty"),
        response_headers_to_add=[{"header": {"key": "x-vhost", "value": "yes"}}],
    )
    async with serving(runtime, hcm(table)) as proxy:
        answer = await h1_request(proxy)
    assert answer.header("x-vhost") == "yes"


async def test_upgrade_is_refused_with_403_and_close(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    request = b"GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        data, closed = await raw_exchange(proxy, request)
    assert data.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"connection: close\r\n" in data
    assert b"content-length: 0\r\n" in data
    assert data.endswith(b"\r\n\r\n")
    assert closed
    assert backend.received == []


async def test_host_and_path_rewrite(runtime: FakeRuntime, backends: Backends) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    table = routes(to("c", "/api", prefix_rewrite="/v2", host_rewrite_literal="internal"))
    async with serving(runtime, hcm(table)) as proxy:
        await h1_request(proxy, path="/api/items")
    received = backend.received[0]
    assert received.path == "/v2/items"
    assert received.header(":authority") == "internal"
    assert received.header("x-envoy-original-path") == "/api/items"
    assert runtime.entries[0][1].path == "/api/items"


async def test_a_failing_request_ends_its_connection_only(
    runtime: FakeRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(name: str) -> None:
        raise RuntimeError("route table lookup failed")

    runtime.route_table = broken  # type: ignore[method-assign]
    async with serving(runtime, hcm(rds_name="outbound")) as proxy:
        data, closed = await raw_exchange(proxy, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        runtime.route_table = lambda name: None  # type: ignore[method-assign]
        answer = await h1_request(proxy)
    assert (data, closed) == (b"", True)
    assert answer.status == 404
    assert "route table lookup failed" in caplog.text
