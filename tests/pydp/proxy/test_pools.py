"""Connection pools: reuse limits, HTTP/2 stream limits, draining on config changes."""

from __future__ import annotations

import trio
import trio.testing

from tests.pydp.proxy.backend import Backends, Received, Reply
from tests.pydp.proxy.client import h1_request
from tests.pydp.proxy.harness import H2_OPTIONS, FakeRuntime, hcm, routes, serving, to


async def test_max_requests_per_connection(runtime: FakeRuntime, backends: Backends) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address], max_requests_per_connection=2)
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        for _ in range(5):
            assert (await h1_request(proxy)).status == 200
    assert backend.connections == 3
    assert [r.connection for r in backend.received] == [1, 1, 2, 2, 3]


async def test_idle_upstream_connections_expire(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    backend = await backends.start()
    idle = {"common_http_protocol_options": {"idle_timeout": "10s"}}
    runtime.add_cluster("c", [backend.address], **idle)
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        await h1_request(proxy)
        await trio.sleep(5)
        await h1_request(proxy)
        await trio.sleep(11)
        await h1_request(proxy)
    assert [r.connection for r in backend.received] == [1, 1, 2]


async def test_one_sweep_closes_every_idle_connection_the_peer_closed(
    runtime: FakeRuntime, backends: Backends
) -> None:
    async def slow(received: Received) -> Reply:
        await trio.sleep(0.02)
        return Reply()

    backend = await backends.start(slow)
    runtime.add_cluster("c", [backend.address])
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(h1_request, proxy)
        (pool,) = runtime.pools._clusters["c"].pools.values()
        assert len(pool.idle) == 3
        for conn in pool.idle[:2]:
            assert isinstance(conn.sock, trio.SocketStream)
            conn.sock.socket.shutdown(1)  # the backend sees EOF and closes its end
        await trio.sleep(0.05)
        assert (await h1_request(proxy)).status == 200
        assert len(pool.idle) == 1
    assert backend.connections == 3  # the last request reused the one left open
    assert runtime.counter("cluster.c.upstream_cx_destroy") == 2


async def test_h2_respects_max_concurrent_streams(runtime: FakeRuntime, backends: Backends) -> None:
    active = 0
    peak = 0

    async def handler(received: Received) -> Reply:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await trio.sleep(0.02)
        active -= 1
        return Reply()

    backend = await backends.start(handler, protocol="h2", max_concurrent_streams=2)
    runtime.add_cluster(
        "c",
        [backend.address],
        circuit_breakers={"thresholds": [{"max_connections": 1}]},
        **H2_OPTIONS,
    )
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        await h1_request(proxy)
        statuses: list[int] = []

        async def one() -> None:
            statuses.append((await h1_request(proxy)).status)

        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(one)
    assert statuses == [200] * 6
    assert peak == 2
    assert backend.connections == 1


async def test_removed_hosts_and_clusters_drain(runtime: FakeRuntime, backends: Backends) -> None:
    one = await backends.start()
    two = await backends.start()
    runtime.add_cluster("c", [one.address, two.address])
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        for _ in range(2):
            await h1_request(proxy)
        assert runtime.stats.gauges["cluster.c.upstream_cx_active"] == 2
        runtime.pools.hosts_changed("c", [one.address])
        assert runtime.stats.gauges["cluster.c.upstream_cx_active"] == 1
        runtime.pools.cluster_removed("c")
        assert runtime.stats.gauges["cluster.c.upstream_cx_active"] == 0
        await h1_request(proxy)
    assert one.connections + two.connections == 3
    assert runtime.counter("cluster.c.upstream_cx_destroy") == 2


async def test_a_new_cluster_object_gets_new_pools(
    runtime: FakeRuntime, backends: Backends
) -> None:
    backend = await backends.start()
    runtime.add_cluster("c", [backend.address])
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        await h1_request(proxy)
        runtime.add_cluster("c", [backend.address], connect_timeout="2s")
        await h1_request(proxy)
        await trio.testing.wait_all_tasks_blocked(cushion=0.02)
    assert backend.connections == 2
    assert runtime.stats.gauges["cluster.c.upstream_cx_active"] == 1


async def test_outlier_timer_brings_hosts_back(
    runtime: FakeRuntime, backends: Backends, autojump_clock: trio.testing.MockClock
) -> None:
    failing = True
    bad = await backends.start(lambda r: Reply(503 if failing else 200))
    good = await backends.start()
    runtime.add_cluster(
        "c",
        [good.address, bad.address],
        outlier_detection={
            "consecutive_5xx": 2,
            "interval": "1s",
            "base_ejection_time": "5s",
            "max_ejection_percent": 100,
        },
    )
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        for _ in range(4):
            await h1_request(proxy)
        host = runtime.clusters["c"].hosts[bad.address]
        assert host.ejected
        failing = False
        await trio.sleep(7)
        assert not host.ejected
        for _ in range(4):
            await h1_request(proxy)
    assert len(bad.received) == 4


async def test_host_stats_for_the_admin(runtime: FakeRuntime, backends: Backends) -> None:
    good = await backends.start()
    bad = await backends.start(lambda r: Reply(500))
    runtime.add_cluster("c", [good.address, bad.address])
    async with serving(runtime, hcm(routes(to("c")))) as proxy:
        for _ in range(4):
            await h1_request(proxy)
    hosts = runtime.clusters["c"].hosts
    good_stats = runtime.pools.host_stats("c", hosts[good.address])
    bad_stats = runtime.pools.host_stats("c", hosts[bad.address])
    assert good_stats == {
        "rq_pending_active": 0,
        "cx_total": 1,
        "cx_active": 1,
        "rq_total": 2,
        "rq_success": 2,
    }
    assert (bad_stats["rq_total"], bad_stats["rq_error"]) == (2, 2)
    assert runtime.pools.host_stats("nope", hosts[good.address]) == {}
