"""Upstream failures: Envoy's local replies, flags and stats; retries; breakers; outliers."""

from __future__ import annotations

import trio

from tests.pydp.proxy.backend import RESET, Backends, Received, Reply
from tests.pydp.proxy.client import h1_client, h1_request
from tests.pydp.proxy.harness import PREVIOUS_HOSTS, FakeRuntime, hcm, routes, serving, to

CONNECT = "upstream connect error or disconnect/reset before headers. "


async def closed_port() -> tuple[str, int]:
    sock = trio.socket.socket()
    await sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()[:2]
    sock.close()
    return host, port


async def test_connection_failure(runtime: FakeRuntime) -> None:
    runtime.add_cluster("c", [await closed_port()])
    async with serving(runtime, hcm(routes(to("c")))) as proxy, h1_client(proxy) as client:
        answer = await client.request()
        assert not client.closed
    assert answer.status == 503
    assert answer.body.decode() == CONNECT + "reset reason: remote connection failure"
    assert answer.header("content-type") == "text/plain"
    entry = runtime.entries[0][1]
    assert entry.response_flags == "UF"
    assert entry.upstream_host.startswith("127.0.0.1:")
    assert runtime.counter("cluster.c.upstream_cx_connect_fail") == 1
    assert runtime.counter("cluster.c.upstream_rq_503") == 1


async def test_connection_termination_before_headers(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await backends.start(lambda r: RESET)
    runtime.add_cluster("c", [backend.address])
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        answer = await h1_request(proxy)
    assert answer.status == 503
    assert answer.body.decode() == CONNECT + "reset reason: connection termination"
    assert runtime.entries[0][1].response_flags == "UC"


async def test_upstream_protocol_error_is_502(runtime: FakeRuntime) -> None:
    async def garbage(stream: trio.SocketStream) -> None:
        await stream.receive_some(1000)
        await stream.send_all(b"HTTP/1.1 2x0 what\r\n\r\n")
        await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        nursery.start_soon(trio.serve_listeners, garbage, listeners)
        runtime.add_cluster("c", [listeners[0].socket.getsockname()[:2]])
        async with serving(runtime, hcm(routes(to("c")))) as proxy:
            answer = await h1_request(proxy)
        nursery.cancel_scope.cancel()
    assert answer.status == 502
    assert answer.body.decode() == CONNECT + "reset reason: protocol error"
    assert runtime.entries[0][1].response_flags == "UPE"


async def test_retries_until_success(runtime: FakeRuntime, backends: Backends) -> None:
    def flaky(received: Received) -> Reply:
        return Reply(503 if len(backend.received) < 3 else 200, [], b"n")

    backend = await backends.start(flaky)
    runtime.add_cluster("c", [backend.address])
    policy = {"retry_on": "5xx", "num_retries": 2, "retry_back_off": {"base_interval": "0.001s"}}
    table = routes(
        to("c", retry_policy=policy),
        include_request_attempt_count=True,
        include_attempt_count_in_response=True,
    )
    async with serving(runtime, hcm(table)) as proxy:
        answer = await h1_request(proxy)
    assert answer.status == 200
    assert answer.header("x-envoy-attempt-count") == "3"
    assert [r.header("x-envoy-attempt-count") for r in backend.received] == ["1", "2", "3"]
    assert runtime.entries[0][1].response_flags == "-"
    assert runtime.counter("cluster.c.retry.upstream_rq_503") == 2
    assert runtime.counter("cluster.c.upstream_rq_200") == 1
    assert runtime.clusters["c"].retry_stats.upstream_rq_retry == 2


async def test_retries_exhausted_return_the_last_response(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await backends.start(lambda r: Reply(500, [], b"broken"))
    runtime.add_cluster("c", [backend.address])
    policy = {"retry_on": "5xx", "num_retries": 2, "retry_back_off": {"base_interval": "0.001s"}}
    async with serving(runtime, hcm(routes(to("c", retry_policy=policy)))) as proxy:
        answer = await h1_request(proxy)
    assert (answer.status, answer.body) == (500, b"broken")
    assert len(backend.received) == 3
    assert runtime.entries[0][1].response_flags == "URX"


async def test_4xx_is_not_retried_under_5xx(runtime: FakeRuntime, backends: Backends) -> None:
    backend = await backends.start(lambda r: Reply(404, [], b""))
    runtime.add_cluster("c", [backend.address])
    async with serving(runtime, hcm(routes(to("c", retry_policy={"retry_on": "5xx"})))) as proxy:
        answer = await h1_request(proxy)
    assert answer.status == 404
    assert len(backend.received) == 1


async def test_resets_are_retried_then_reported(runtime: FakeRuntime, backends: Backends) -> None:
    backend = await backends.start(lambda r: RESET)
    runtime.add_cluster("c", [backend.address])
    policy = {"retry_on": "reset", "num_retries": 2, "retry_back_off": {"base_interval": "0.001s"}}
    async with serving(runtime, hcm(routes(to("c", retry_policy=policy)))) as proxy:
        answer = await h1_request(proxy, "POST", body=b"payload")
    assert answer.status == 503
    assert answer.body.decode() == (
        CONNECT + "retried and the latest reset reason: connection termination"
    )
    assert [r.body for r in backend.received] == [b"payload"] * 3
    assert runtime.entries[0][1].response_flags == "URX,UC"


async def test_connect_failures_are_retried_on_another_host(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [await closed_port(), backend.address])
    policy = {
        "retry_on": "connect-failure",
        "num_retries": 1,
        "retry_back_off": {"base_interval": "0.001s"},
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": "type.googleapis.com/" + PREVIOUS_HOSTS.DESCRIPTOR.full_name
                },
            }
        ],
        "host_selection_retry_max_attempts": 3,
    }
    async with serving(runtime, hcm(routes(to("c", retry_policy=policy)))) as proxy:
        answers = [await h1_request(proxy) for _ in range(2)]
    assert [a.status for a in answers] == [200, 200]
    assert len(backend.received) == 2


async def test_circuit_breaker_overflow(runtime: FakeRuntime, backends: Backends) -> None:
    release = trio.Event()
    both_arrived = trio.Event()

    async def slow(received: Received) -> Reply:
        if len(backend.received) == 2:
            both_arrived.set()
        await release.wait()
        return Reply(200, [], b"slow")

    backend = await backends.start(slow)
    runtime.add_cluster(
        "c",
        [backend.address],
        circuit_breakers={"thresholds": [{"max_requests": 2, "max_retries": 0}]},
    )
    table = routes(to("c"), include_attempt_count_in_response=True)
    results: list[tuple[int, str | None, bytes]] = []
    async with serving(runtime, hcm(table)) as proxy:

        async def one() -> None:
            answer = await h1_request(proxy)
            results.append((answer.status, answer.header("x-envoy-overloaded"), answer.body))

        async with trio.open_nursery() as nursery:
            for _ in range(2):
                nursery.start_soon(one)
            await both_arrived.wait()
            for _ in range(2):
                await one()
            release.set()
        after = await h1_request(proxy)
    overflow = (503, "true", (CONNECT + "reset reason: overflow").encode())
    assert sorted(results) == [(200, None, b"slow")] * 2 + [overflow] * 2
    assert after.status == 200
    flags = sorted(e.response_flags for _, e in runtime.entries)
    assert flags == ["-", "-", "-", "UO", "UO"]
    assert runtime.clusters["c"].breakers.upstream_rq_pending_overflow == 2


async def test_max_connections_makes_requests_wait(
    runtime: FakeRuntime, backends: Backends
) -> None:
    async def slow(received: Received) -> Reply:
        await trio.sleep(0.02)
        return Reply(200, [], b"")

    backend = await backends.start(slow)
    runtime.add_cluster(
        "c", [backend.address], circuit_breakers={"thresholds": [{"max_connections": 1}]}
    )
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        statuses: list[int] = []

        async def one() -> None:
            statuses.append((await h1_request(proxy)).status)

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(one)
    assert statuses == [200] * 4
    assert backend.connections == 1
    assert runtime.counter("cluster.c.upstream_rq_pending_total") == 4


async def test_outlier_detection_ejects_a_failing_host(
    runtime: FakeRuntime, backends: Backends
) -> None:
    good = await backends.start()
    bad = await backends.start(lambda r: Reply(503, [], b"bad"))
    runtime.add_cluster(
        "c",
        [good.address, bad.address],
        outlier_detection={
            "consecutive_5xx": 3,
            "interval": "10s",
            "base_ejection_time": "30s",
            "max_ejection_percent": 100,
        },
    )
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        statuses = [(await h1_request(proxy)).status for _ in range(12)]
    assert statuses.count(503) == 3
    assert statuses[-6:] == [200] * 6
    assert len(bad.received) == 3
    assert runtime.clusters["c"].outlier is not None
    assert any(h.ejected for h in runtime.clusters["c"].hosts.values())
