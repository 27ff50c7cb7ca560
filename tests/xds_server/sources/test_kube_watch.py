"""The Kubernetes source with the real client against kmock's emulator, seen by an ADS client.

Faults are injected as kmock reactions that answer a chosen list or watch
request instead of the emulator: a `410 Gone` in the middle of a watch, a
connection dropped mid-stream, lists that answer 500. Changes made "behind
the watch's back" (`emulator.objects[...]`, which emits no event) can only
reach the proxies through a fresh list, which is how each test proves that
one happened.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import kmock
import pytest
from envoy.config.endpoint.v3 import endpoint_pb2

from api import contract
from xds_server.sources.kube.resources import PEER_AUTHENTICATIONS, SERVICES
from xds_server.sources.kube.selection import NamespaceSelection

from .kube_harness import (
    NAMESPACE_ALIAS,
    UNAVAILABLE_STATUS,
    Client,
    cluster,
    cluster_name,
    control_plane,
    endpoint_slice,
    eventually,
    namespace,
    run,
    service,
)

SERVICES_KEY = kmock.resource("", "v1", "services")
GONE = {
    "type": "ERROR",
    "object": {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": 410,
        "reason": "Expired",
        "message": "too old resource version: 5 (42)",
    },
}
UNAVAILABLE = UNAVAILABLE_STATUS
Resources = dict[str, tuple[str, bytes]]


def addresses(resources: Resources) -> set[str]:
    out = set()
    for _, value in resources.values():
        assignment = endpoint_pb2.ClusterLoadAssignment.FromString(value)
        for locality in assignment.endpoints:
            for lb in locality.lb_endpoints:
                out.add(lb.endpoint.address.socket_address.address)
    return out


def test_initial_list_then_adds_modifies_and_deletes_reach_a_proxy() -> None:
    async def scenario() -> None:
        async with cluster() as k:
            await k.create(service("a"))
            await k.create(endpoint_slice("a", ("10.0.0.1",)))
            await k.create(service("b", namespace="shop"))
            async with (
                control_plane(k.api()) as plane,
                grpc.aio.insecure_channel(plane.address) as channel,
            ):
                cds = Client(channel, contract.TYPE_CLUSTER, delta=True)
                await cds.subscribe()
                initial = {cluster_name("a"), cluster_name("b", namespace="shop")}
                await cds.until(lambda r: initial <= r.keys())
                eds = Client(channel, contract.TYPE_ENDPOINT, delta=True)
                await eds.subscribe((cluster_name("a"),))
                await eds.until(lambda r: addresses(r) == {"10.0.0.1"})

                await k.create(service("c"))
                await cds.until(lambda r: cluster_name("c") in r)
                await k.patch(
                    endpoint_slice("a", ()),
                    {"endpoints": [{"addresses": ["10.0.0.2"]}, {"addresses": ["10.0.0.3"]}]},
                )
                await eds.until(lambda r: addresses(r) == {"10.0.0.2", "10.0.0.3"})
                await k.patch(service("c"), {"spec": {"ports": [{"name": "http", "port": 81}]}})
                await cds.until(lambda r: cluster_name("c", 81) in r and cluster_name("c") not in r)
                await k.delete(service("b", namespace="shop"))
                await cds.until(lambda r: cluster_name("b", namespace="shop") not in r)
                assert k.requests(SERVICES, "list") == 1, "no list beyond the first"
                cds.close()
                eds.close()

    run(scenario)


def test_gone_in_the_middle_of_a_watch_lists_again_and_catches_up() -> None:
    async def scenario() -> None:
        async with cluster() as k:
            await k.create(service("a"))
            await k.create(service("b"))
            go = asyncio.Event()

            async def first_watch() -> AsyncIterator[Any]:
                yield {"type": "MODIFIED", "object": service("a", port=81)}
                await go.wait()
                yield GONE

            k.emulator[kmock.action.WATCH, SERVICES_KEY][:1] << first_watch
            async with (
                control_plane(k.api()) as plane,
                grpc.aio.insecure_channel(plane.address) as channel,
            ):
                cds = Client(channel, contract.TYPE_CLUSTER, delta=True)
                await cds.subscribe()
                await cds.until(lambda r: {cluster_name("a", 81), cluster_name("b")} <= r.keys())
                # Behind the watch's back: a's port as the event said, and b deleted.
                k.emulator.objects["v1/services", "default", "a"].patch(
                    {"spec": {"ports": [{"name": "http", "port": 81}]}}
                )
                k.emulator.objects["v1/services", "default", "b"].delete()
                go.set()
                await cds.until(lambda r: cluster_name("b") not in r)
                assert cluster_name("a", 81) in cds.resources
                assert k.requests(SERVICES, "list") == 2
                cds.close()

    run(scenario)


def test_a_dropped_connection_lists_again_and_the_watch_goes_on() -> None:
    async def scenario() -> None:
        async with cluster() as k:
            await k.create(service("a"))
            await k.create(service("b"))
            drop = asyncio.Event()

            async def first_watch(request: kmock.Request) -> AsyncIterator[Any]:
                yield {"type": "ADDED", "object": service("a")}
                await drop.wait()
                raw: Any = request._raw_request
                raw.transport.close()

            k.emulator[kmock.action.WATCH, SERVICES_KEY][:1] << first_watch
            async with (
                control_plane(k.api()) as plane,
                grpc.aio.insecure_channel(plane.address) as channel,
            ):
                cds = Client(channel, contract.TYPE_CLUSTER, delta=True)
                await cds.subscribe()
                await cds.until(lambda r: {cluster_name("a"), cluster_name("b")} <= r.keys())
                k.emulator.objects["v1/services", "default", "b"].delete()
                drop.set()
                await cds.until(lambda r: cluster_name("b") not in r)
                await eventually(
                    lambda: k.requests(SERVICES, "watch") >= 2, "a second watch of services"
                )
                await k.create(service("c"))
                await cds.until(lambda r: cluster_name("c") in r)
                assert k.requests(SERVICES, "list") == 2
                cds.close()

    run(scenario)


def test_an_api_server_answering_errors_is_retried_and_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="xds_server.sources.kube")

    async def scenario() -> None:
        async with cluster() as k:
            await k.create(service("a"))
            k.emulator[kmock.action.LIST, SERVICES_KEY][:3] << 500 << UNAVAILABLE
            async with (
                control_plane(k.api()) as plane,
                grpc.aio.insecure_channel(plane.address) as channel,
            ):
                assert k.requests(SERVICES, "list") == 4
                assert plane.source.failures == {}, "cleared once a list succeeds"
                cds = Client(channel, contract.TYPE_CLUSTER, delta=True)
                await cds.subscribe()
                await cds.until(lambda r: cluster_name("a") in r)
                cds.close()

    run(scenario)
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert failures[0] == (
        "services in all namespaces: list: 500 Internal Server Error: "
        "etcdserver: request timed out; listing again now"
    )
    assert [f.rsplit("; ", 1)[1] for f in failures[1:]] == [
        "listing again in 0.05 s",
        "listing again in 0.1 s",
    ]


def test_while_the_watch_is_down_proxies_keep_the_last_state() -> None:
    async def scenario() -> None:
        async with cluster() as k:
            await k.create(service("a"))
            await k.create(service("b"))
            drop = asyncio.Event()
            outage = False

            async def first_watch(request: kmock.Request) -> AsyncIterator[Any]:
                yield {"type": "ADDED", "object": service("a")}
                await drop.wait()
                raw: Any = request._raw_request
                raw.transport.close()

            k.emulator[kmock.action.WATCH, SERVICES_KEY][:1] << first_watch
            k.emulator[kmock.action.LIST, SERVICES_KEY][lambda _: outage] << 500 << UNAVAILABLE
            async with (
                control_plane(k.api()) as plane,
                grpc.aio.insecure_channel(plane.address) as channel,
            ):
                both = {cluster_name("a"), cluster_name("b")}
                cds = Client(channel, contract.TYPE_CLUSTER, delta=True)
                await cds.subscribe()
                await cds.until(lambda r: both <= r.keys())
                await k.create(service("c"))  # the injected watch does not carry it
                outage = True
                drop.set()
                await eventually(lambda: k.requests(SERVICES, "list") >= 3, "two failed lists")
                assert plane.source.failures, "the outage is reported"
                late = Client(channel, contract.TYPE_CLUSTER, delta=True)
                await late.subscribe()
                await late.until(lambda r: both <= r.keys())
                assert cluster_name("c") not in late.resources
                assert both <= cds.resources.keys()
                outage = False
                await cds.until(lambda r: cluster_name("c") in r)
                assert both <= cds.resources.keys()
                await eventually(lambda: plane.source.failures == {}, "the outage to clear")
                cds.close()
                late.close()

    run(scenario)


def test_bookmarks_move_the_watch_forward_without_a_list() -> None:
    async def scenario() -> None:
        async with cluster() as k:
            await k.create(service("a"))

            async def first_watch() -> AsyncIterator[Any]:
                meta = {"resourceVersion": "42"}
                yield {"type": "BOOKMARK", "object": {"kind": "Service", "metadata": meta}}

            k.emulator[kmock.action.WATCH, SERVICES_KEY][:1] << first_watch
            async with control_plane(k.api()):
                await eventually(lambda: k.requests(SERVICES, "watch") >= 2, "a second watch")
                watches = [r for r in k.emulator if r.action == kmock.action.WATCH]
                params = [r.params for r in watches if r.resource == SERVICES_KEY]
                assert params[0]["allowWatchBookmarks"] == "true"
                assert params[1]["resourceVersion"] == "42"
                assert k.requests(SERVICES, "list") == 1

    run(scenario)


def test_bad_objects_from_the_api_are_reported_and_never_reach_a_proxy() -> None:
    async def scenario() -> None:
        async with cluster() as k:
            await k.create(service("a"))
            await k.create(service("bad", port=0))
            async with (
                control_plane(k.api()) as plane,
                grpc.aio.insecure_channel(plane.address) as channel,
            ):
                cds = Client(channel, contract.TYPE_CLUSTER, delta=True)
                await cds.subscribe()
                await cds.until(lambda r: cluster_name("a") in r)
                assert not any("bad" in name for name in cds.resources)
                assert plane.source.errors == [
                    "Service default/bad: spec.ports[0].port: "
                    "must be an integer 1-65535, got 0 (left out)"
                ]
                await k.patch(service("a"), {"spec": {"ports": [{"name": "http", "port": 0}]}})
                await eventually(lambda: len(plane.source.errors) == 2, "a second error")
                assert plane.source.errors[0].endswith("(keeping its last good version)")
                await k.create(service("c"))
                await cds.until(lambda r: cluster_name("c") in r)
                assert cluster_name("a") in cds.resources
                cds.close()

    run(scenario)


def test_only_the_named_namespaces_are_watched() -> None:
    async def scenario() -> None:
        async with cluster() as k:
            for ns in ("shop", "web", "other"):
                await k.create(service("a", namespace=ns))
            selection = NamespaceSelection.of(("shop", "web"))
            async with (
                control_plane(k.api(), selection) as plane,
                grpc.aio.insecure_channel(plane.address) as channel,
            ):
                cds = Client(channel, contract.TYPE_CLUSTER, delta=True)
                await cds.subscribe()
                wanted = {cluster_name("a", namespace=ns) for ns in ("shop", "web")}
                await cds.until(lambda r: wanted <= r.keys())
                await k.create(service("b", namespace="other"))
                await k.create(service("b", namespace="web"))
                await cds.until(lambda r: cluster_name("b", namespace="web") in r)
                assert not any("other" in name for name in cds.resources)
                reads = (kmock.action.LIST, kmock.action.WATCH)
                paths = {
                    r.url.path
                    for r in k.emulator
                    if r.resource == SERVICES_KEY and r.action in reads
                }
                assert paths == {
                    "/api/v1/namespaces/shop/services",
                    "/api/v1/namespaces/web/services",
                }
                cds.close()

    run(scenario)


def test_namespaces_are_selected_by_label_and_follow_relabelling() -> None:
    async def scenario() -> None:
        async with cluster() as k:
            await k.create(namespace("shop", {"mesh": "on"}))
            await k.create(namespace("web"))
            await k.create(service("a", namespace="shop"))
            await k.create(service("a", namespace="web"))
            selection = NamespaceSelection.of(selector="mesh=on")
            async with (
                control_plane(k.api(), selection) as plane,
                grpc.aio.insecure_channel(plane.address) as channel,
            ):
                cds = Client(channel, contract.TYPE_CLUSTER, delta=True)
                await cds.subscribe()
                await cds.until(lambda r: cluster_name("a", namespace="shop") in r)
                assert cluster_name("a", namespace="web") not in cds.resources
                await k.patch(namespace("web"), {"metadata": {"labels": {"mesh": "on"}}})
                await cds.until(lambda r: cluster_name("a", namespace="web") in r)
                # The emulator ignores the selector it is sent: the source checks it too.
                namespace_lists = [
                    r
                    for r in k.emulator
                    if r.action == kmock.action.LIST and r.url.path.endswith(NAMESPACE_ALIAS)
                ]
                assert namespace_lists[0].params["labelSelector"] == "mesh=on"
                cds.close()

    run(scenario)


def test_the_mesh_policy_kinds_are_read_once_their_crds_are_installed() -> None:
    async def scenario() -> None:
        async with cluster() as k:
            await k.create(service("a"))
            async with control_plane(k.api()) as plane:
                store = plane.source.stores[(PEER_AUTHENTICATIONS, None)]
                assert store.synced and store.objects == {}, "no CRD: synced, and empty"
                k.emulator.resources["security.xdsmesh.io/v1alpha1/peerauthentications"] = (
                    kmock.ResourceInfo(kind="PeerAuthentication", namespaced=True)
                )
                policy = {
                    "apiVersion": "security.xdsmesh.io/v1alpha1",
                    "kind": "PeerAuthentication",
                    "metadata": {"name": "strict", "namespace": "default"},
                    "spec": {"mtls": {"mode": "STRICT"}},
                }
                await k.create(policy)
                await eventually(lambda: bool(store.objects), "the policy in the store")
                assert set(store.objects) == {("default", "strict")}
                await eventually(
                    lambda: k.requests(PEER_AUTHENTICATIONS, "watch") >= 1, "a watch of it"
                )

    run(scenario)
