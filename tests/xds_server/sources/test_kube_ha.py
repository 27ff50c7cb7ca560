"""Several control plane replicas on one cluster serve the same config to any proxy.

Replicas share nothing but the Kubernetes API; what makes them agree is that
the translation is a function of the objects and a Delta version is a hash
of the resource. A proxy that loses its replica reconnects to another with
the versions it holds (`initial_resource_versions`) and is sent nothing it
already has: it loses nothing and reloads nothing.
"""

from __future__ import annotations

import asyncio

import grpc

from api import contract

from .kube_harness import (
    DEADLINE,
    Client,
    Cluster,
    Plane,
    cluster,
    cluster_name,
    control_plane,
    endpoint_slice,
    run,
    service,
)


async def _snapshot(
    plane: Plane, type_url: str, names: tuple[str, ...] = (), *, delta: bool
) -> dict[str, tuple[str, bytes]]:
    """What a fresh proxy gets from `plane` for `type_url`."""
    async with grpc.aio.insecure_channel(plane.address) as channel:
        client = Client(channel, type_url, delta=delta)
        await client.subscribe(names)
        await client.receive()
        client.close()
        return client.resources


def test_replicas_serve_identical_resources_and_versions() -> None:
    async def scenario() -> None:
        async with cluster() as k:
            for name, ip in (("a", "10.0.0.1"), ("b", "10.0.0.2")):
                await k.create(service(name))
                await k.create(endpoint_slice(name, (ip,)))
            async with control_plane(k.api()) as one, control_plane(k.api()) as two:
                eds = (cluster_name("a"), cluster_name("b"))
                for type_url, names in ((contract.TYPE_CLUSTER, ()), (contract.TYPE_ENDPOINT, eds)):
                    delta_one = await _snapshot(one, type_url, names, delta=True)
                    delta_two = await _snapshot(two, type_url, names, delta=True)
                    assert delta_one == delta_two, "same names, versions and bytes"
                    sotw_one = await _snapshot(one, type_url, names, delta=False)
                    sotw_two = await _snapshot(two, type_url, names, delta=False)
                    assert {n: b for n, (_, b) in sotw_one.items()} == {
                        n: b for n, (_, b) in sotw_two.items()
                    }
                    assert set(delta_one) >= set(names)

    run(scenario)


def test_a_proxy_whose_replica_stops_reconnects_to_another_and_loses_nothing() -> None:
    async def scenario() -> None:
        async with cluster() as k:
            await k.create(service("a"))
            await k.create(endpoint_slice("a", ("10.0.0.1",)))
            async with control_plane(k.api()) as one, control_plane(k.api()) as two:
                channel = grpc.aio.insecure_channel(one.address)
                cds = Client(channel, contract.TYPE_CLUSTER, delta=True)
                await cds.subscribe()
                await cds.until(lambda r: cluster_name("a") in r)
                held = dict(cds.resources)

                await one.server.stop(None)
                try:
                    await asyncio.wait_for(cds.receive(), DEADLINE)
                    raise AssertionError("the stream outlived its server")
                except grpc.aio.AioRpcError as e:
                    assert e.code() is grpc.StatusCode.UNAVAILABLE
                await channel.close(None)

                await _resume_on(two, held, k)

    run(scenario)


def test_max_connection_age_moves_a_proxy_to_another_replica_without_loss() -> None:
    async def scenario() -> None:
        async with cluster() as k:
            await k.create(service("a"))
            async with (
                control_plane(k.api(), max_connection_age=0.5) as one,
                control_plane(k.api()) as two,
            ):
                async with grpc.aio.insecure_channel(one.address) as channel:
                    cds = Client(channel, contract.TYPE_CLUSTER, delta=True)
                    await cds.subscribe()
                    await cds.until(lambda r: cluster_name("a") in r)
                    held = dict(cds.resources)
                    loop = asyncio.get_running_loop()
                    started = loop.time()
                    # At its age the server sends GOAWAY; the stream ends after the grace period.
                    try:
                        await asyncio.wait_for(cds.receive(), DEADLINE)
                        raise AssertionError("the stream outlived its maximum age")
                    except grpc.aio.AioRpcError as e:
                        assert e.code() is grpc.StatusCode.UNAVAILABLE
                    assert loop.time() - started >= 0.4
                await _resume_on(two, held, k)

    run(scenario)


async def _resume_on(plane: Plane, held: dict[str, tuple[str, bytes]], k: Cluster) -> None:
    """Reconnects to `plane` holding `held`: nothing is resent, and a later change arrives alone."""
    async with grpc.aio.insecure_channel(plane.address) as channel:
        resumed = Client(channel, contract.TYPE_CLUSTER, delta=True)
        resumed.resources = dict(held)
        await resumed.subscribe(initial={name: version for name, (version, _) in held.items()})
        await k.create(service("late"))
        carried: set[str] = set()
        while cluster_name("late") not in resumed.resources:
            await asyncio.wait_for(resumed.receive(), DEADLINE)
            carried |= resumed.last
        assert carried == {cluster_name("late")}, "only the change; nothing held is resent"
        assert {n: v for n, v in resumed.resources.items() if n in held} == held
        resumed.close()
