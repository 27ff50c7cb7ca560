"""Requests forwarded upstream: headers both ways, connection reuse, HTTP/2, gRPC, bodies."""

from __future__ import annotations

import re

import trio

from tests.pydp.proxy.backend import Backends, Received, Reply
from tests.pydp.proxy.client import h1_client, h1_request, h2_client, raw_exchange
from tests.pydp.proxy.harness import H2_OPTIONS, FakeRuntime, hcm, routes, serving, to

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


async def test_request_headers_upstream(runtime: FakeRuntime, backends: Backends) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    sent = [
        ("x-envoy-retry-on", "5xx"),
        ("x-envoy-upstream-rq-timeout-ms", "1"),
        ("x-envoy-internal", "true"),
        ("x-envoy-expected-rq-timeout-ms", "5"),
        ("x-envoy-decorator-operation", "kept"),
        ("x-envoy-foo", "kept"),
        ("x-forwarded-proto", "https"),
        ("user-agent", "test/1"),
    ]
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        await h1_request(proxy, headers=sent)
        await h1_request(proxy, headers=[("x-request-id", "abc")])
    first, second = backend.received
    names = [name.decode() for name, _ in first.headers]
    for gone in ("x-envoy-retry-on", "x-envoy-upstream-rq-timeout-ms", "x-envoy-internal"):
        assert gone not in names
    assert first.header("x-envoy-expected-rq-timeout-ms") == "15000"
    assert first.header("x-envoy-decorator-operation") == "kept"
    assert first.header("x-envoy-foo") == "kept"
    assert first.header("x-forwarded-proto") == "https"
    assert UUID.match(first.header("x-request-id") or "")
    assert second.header("x-forwarded-proto") == "http"
    assert second.header("x-request-id") == "abc"
    entry = runtime.entries[0][1]
    assert (entry.user_agent, entry.request_id) == ("test/1", first.header("x-request-id"))


async def test_edge_request_headers(runtime: FakeRuntime, backends: Backends) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    config = hcm(routes(to("c")), use_remote_address=True)
    sent = [
        ("x-request-id", "abc"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "1.2.3.4"),
        ("x-envoy-decorator-operation", "gone"),
    ]
    async with serving(runtime, config) as proxy:
        await h1_request(proxy, headers=sent)
    received = backend.received[0]
    assert received.header("x-request-id") != "abc"
    assert received.header("x-forwarded-proto") == "http"
    assert received.header("x-envoy-decorator-operation") is None
    assert received.header("x-envoy-external-address") == "127.0.0.1"
    xff = received.header("x-forwarded-for") or ""
    assert xff.startswith("1.2.3.4,") and len(xff.split(",")) == 2


async def test_response_headers_downstream(runtime: FakeRuntime, backends: Backends) -> None:
    def reply(received: Received) -> Reply:
        headers = [
            (b"content-type", b"text/plain"),
            (b"server", b"gunicorn"),
            (b"date", b"yesterday"),
            (b"x-envoy-upstream-service-time", b"77"),
        ]
        return Reply(200, headers, b"body")

    backend = await backends.start(reply)
    runtime.add_cluster("c", [backend.address])
    table = routes(to("c"), include_attempt_count_in_response=True)
    async with serving(runtime, hcm(table, server_name=b"pydp")) as proxy:
        answer = await h1_request(proxy)
    assert [name for name, _ in answer.headers] == [
        b":status",
        b"content-type",
        b"server",
        b"date",
        b"x-envoy-upstream-service-time",
        b"x-envoy-attempt-count",
    ]
    assert answer.header("server") == "pydp"
    assert answer.header("date") == "yesterday"
    assert answer.header("x-envoy-upstream-service-time") != "77"
    assert runtime.entries[0][1].upstream_service_time == answer.header(
        "x-envoy-upstream-service-time"
    )


async def test_keep_alive_reuses_upstream_connections(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        async with h1_client(proxy) as client:
            for _ in range(5):
                assert (await client.request()).status == 200
        for _ in range(3):
            assert (await h1_request(proxy)).status == 200
    assert len(backend.received) == 8
    assert backend.connections == 1
    assert runtime.counter("cluster.c.upstream_cx_total") == 1
    assert runtime.counter("cluster.c.upstream_rq_total") == 8
    assert runtime.counter("cluster.c.upstream_rq_200") == 8
    assert runtime.counter("http.ingress.downstream_cx_total") == 4
    assert runtime.counter("http.ingress.downstream_rq_2xx") == 8
    assert runtime.stats.gauges["cluster.c.upstream_cx_active"] == 1


async def test_a_closed_idle_upstream_connection_is_not_reused(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        assert (await h1_request(proxy)).status == 200
        (pool,) = runtime.pools._clusters["c"].pools.values()
        (idle,) = pool.idle
        assert isinstance(idle.sock, trio.SocketStream)
        idle.sock.socket.shutdown(1)
        await trio.sleep(0.05)
        assert (await h1_request(proxy)).status == 200
    assert backend.connections == 2


async def test_h2c_downstream_to_h1_upstream(runtime: FakeRuntime, backends: Backends) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    async with serving(runtime, hcm(routes(to("c")))) as proxy, h2_client(proxy) as client:
        answers = []

        async def one(n: int) -> None:
            answers.append(await client.request("POST", f"/{n}", body=b"x" * n))

        async with trio.open_nursery() as nursery:
            for n in range(1, 6):
                nursery.start_soon(one, n)
    assert sorted(a.body for a in answers) == [b"x" * n for n in range(1, 6)]
    assert {r.protocol for r in backend.received} == {"HTTP/1.1"}
    assert {e.protocol for _, e in runtime.entries} == {"HTTP/2"}
    assert runtime.counter("http.ingress.downstream_cx_http2_total") == 1


async def test_h2_upstream_multiplexes(runtime: FakeRuntime, backends: Backends) -> None:
    async def slow(received: Received) -> Reply:
        await trio.sleep(0.05)
        return Reply(200, [], received.path.encode())

    backend = await backends.start(slow, protocol="h2")
    runtime.add_cluster("c", [backend.address], **H2_OPTIONS)
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        results: list[bytes] = []

        async def one(n: int) -> None:
            results.append((await h1_request(proxy, path=f"/{n}")).body)

        async with trio.open_nursery() as nursery:
            for n in range(6):
                nursery.start_soon(one, n)
    assert sorted(results) == sorted(f"/{n}".encode() for n in range(6))
    assert backend.connections == 1
    assert {r.protocol for r in backend.received} == {"HTTP/2"}


async def test_grpc_trailers_end_to_end(runtime: FakeRuntime, backends: Backends) -> None:
    def grpc(received: Received) -> Reply:
        assert received.trailers == [(b"x-client-trailer", b"1")]
        return Reply(
            200,
            [(b"content-type", b"application/grpc")],
            [b"\0\0\0\0\x02hi", b"\0\0\0\0\x02yo"],
            [(b"grpc-status", b"0"), (b"grpc-message", b"ok")],
        )

    backend = await backends.start(grpc, protocol="h2")
    runtime.add_cluster("c", [backend.address], **H2_OPTIONS)
    headers = [("content-type", "application/grpc"), ("te", "trailers")]
    async with serving(runtime, hcm(routes(to("c")))) as proxy, h2_client(proxy) as client:
        answer = await client.request(
            "POST",
            "/pkg.Svc/Call",
            headers,
            b"\0\0\0\0\x01x",
            trailers=[(b"x-client-trailer", b"1")],
        )
    assert answer.status == 200
    assert answer.body == b"\0\0\0\0\x02hi\0\0\0\0\x02yo"
    assert answer.trailers == [(b"grpc-status", b"0"), (b"grpc-message", b"ok")]
    assert backend.received[0].header("te") == "trailers"


async def test_expect_100_continue_is_answered_locally(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    request = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n"
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        stream = await trio.open_tcp_stream(*proxy)
        await stream.send_all(request)
        first = await stream.receive_some(1000)
        await stream.send_all(b"hello")
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            rest += await stream.receive_some(1000)
        await stream.aclose()
    assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")
    assert backend.received[0].header("expect") is None
    assert backend.received[0].body == b"hello"
    assert runtime.counter("http.ingress.downstream_rq_1xx") == 1


async def test_pipelined_requests_answer_in_order(runtime: FakeRuntime, backends: Backends) -> None:
    backend = await backends.start(
        lambda r: Reply(200, [(b"content-length", b"2")], r.path[-2:].encode())
    )
    runtime.add_cluster("c", [backend.address])
    requests = b"".join(b"GET /p%d HTTP/1.1\r\nhost: x\r\n\r\n" % n for n in range(3))
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        data, closed = await raw_exchange(proxy, requests, wait=0.3)
    assert not closed
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.index(b"p0") < data.index(b"p1") < data.index(b"p2")


async def test_large_bodies_both_ways(runtime: FakeRuntime, backends: Backends) -> None:
    size = 3 * 1024 * 1024 + 7
    chunks = [bytes([n % 251]) * 65536 for n in range(size // 65536)] + [b"z" * (size % 65536)]
    body = b"".join(chunks)
    backend = await backends.start(
        lambda r: Reply(200, [], [r.body[i : i + 100_000] for i in range(0, len(r.body), 100_000)])
    )
    backend2 = await backends.start(lambda r: Reply(200, [], r.body), protocol="h2")
    runtime.add_cluster("c", [backend.address])
    runtime.add_cluster("c2", [backend2.address], **H2_OPTIONS)
    table = routes(
        to("c2", "/h2", retry_policy={"retry_on": "5xx", "num_retries": 1}),
        to("c", retry_policy={"retry_on": "5xx", "num_retries": 1}),
    )
    async with serving(runtime, hcm(table)) as proxy:
        async with h1_client(proxy) as client:
            one = await client.request("POST", "/", body=chunks)
            two = await client.request("POST", "/h2", body=chunks)
        async with h2_client(proxy) as h2:
            three = await h2.request("POST", "/", body=body)
            four = await h2.request("POST", "/h2", body=body)
    for answer in (one, two, three, four):
        assert answer.status == 200
        assert answer.body == body
    assert [e.bytes_received for _, e in runtime.entries] == [size] * 4
    assert [e.bytes_sent for _, e in runtime.entries] == [size] * 4
