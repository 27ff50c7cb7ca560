"""kmock's Kubernetes emulator, the real control plane pieces around it, and an ADS client.

Everything runs on one asyncio loop started by `run()` from a plain test
function (pytest runs `async def` tests under trio here): the emulator's
aiohttp server, the source's event loop side, the pipeline, the grpc.aio
server and the client. The source's watcher threads call the emulator over
loopback with the real `kubernetes` client, as they would call a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import grpc
import kmock
import kubernetes
from envoy.service.discovery.v3 import discovery_pb2

from api import contract
from tests.xds_server.factories import node
from xds_server import grpc_server
from xds_server.hub import Hub
from xds_server.model import Model
from xds_server.pipeline import Pipeline
from xds_server.sources.kube.api import KubeApi
from xds_server.sources.kube.reflector import Backoff
from xds_server.sources.kube.resources import (
    ENDPOINT_SLICES,
    MODEL_RESOURCES,
    NAMESPACES,
    PODS,
    SERVICES,
    Resource,
)
from xds_server.sources.kube.selection import NamespaceSelection
from xds_server.sources.kube.source import KubernetesSource

DEADLINE = 20.0
UNAVAILABLE_STATUS = {
    "apiVersion": "v1",
    "kind": "Status",
    "status": "Failure",
    "code": 500,
    "reason": "InternalError",
    "message": "etcdserver: request timed out",
}
ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService"


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), DEADLINE * 2))


def service(
    name: str, port: int = 8080, namespace: str = "default", port_name: str = "http"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ports": [{"name": port_name, "port": port}]},
    }


def endpoint_slice(
    service_name: str,
    addresses: tuple[str, ...],
    port: int = 8080,
    namespace: str = "default",
    port_name: str = "http",
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-abc",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port}],
        "endpoints": [{"addresses": [a]} for a in addresses],
    }


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels or {}},
    }


def cluster_name(name: str, port: int = 8080, namespace: str = "default") -> str:
    return contract.outbound_cluster_name(port, contract.service_host(name, namespace))


def _kmock_key(resource: Resource) -> str:
    return f"{resource.api_version}/{resource.plural}"


NAMESPACE_ALIAS = "mesh-namespaces"


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator, serving Namespaces too.

    kmock 0.8 reads every `/api/v1/namespaces...` path as a namespace prefix,
    so the Namespace collection itself cannot be listed or watched. Its
    requests are served, unchanged otherwise, under an alias plural.
    """

    async def __call__(self, raw_request: Any) -> Any:
        path = raw_request.rel_url.path
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
            aliased = "/".join(["", "api", "v1", NAMESPACE_ALIAS, *parts[3:]])
            url = raw_request.rel_url
            raw_request = raw_request.clone(rel_url=url.with_path(aliased).with_query(url.query))
        return await super().__call__(raw_request)


@dataclass
class Cluster:
    """The emulator, and what a test does to it (as kubectl would, over HTTP)."""

    emulator: kmock.KubernetesEmulator
    server: kmock.Server
    clients: list[Any] = field(default_factory=list)

    def api(self) -> KubeApi:
        configuration = kubernetes.client.Configuration()
        configuration.host = str(self.server.url).rstrip("/")
        client = kubernetes.client.ApiClient(configuration)
        self.clients.append(client)
        return KubeApi(client, connect_timeout=2.0, list_timeout=5.0)

    async def create(self, obj: dict[str, Any]) -> None:
        resource = _resource_of(obj)
        ns = obj["metadata"].get("namespace")
        async with self.emulator.post(resource.path(ns), json=obj) as response:
            assert response.status == 200, await response.text()

    async def patch(self, obj: dict[str, Any], changes: dict[str, Any]) -> None:
        resource = _resource_of(obj)
        meta = obj["metadata"]
        path = f"{resource.path(meta.get('namespace'))}/{meta['name']}"
        async with self.emulator.patch(path, json=changes) as response:
            assert response.status == 200, await response.text()

    async def delete(self, obj: dict[str, Any]) -> None:
        resource = _resource_of(obj)
        meta = obj["metadata"]
        path = f"{resource.path(meta.get('namespace'))}/{meta['name']}"
        async with self.emulator.delete(path) as response:
            assert response.status == 200, await response.text()

    def requests(self, resource: Resource, action: str) -> int:
        """How many list or watch requests for `resource` the emulator has seen."""
        key = kmock.resource(resource.group, resource.version, resource.plural)
        wanted = getattr(kmock.action, action.upper())
        return sum(1 for r in self.emulator if r.resource == key and r.action == wanted)


def _resource_of(obj: dict[str, Any]) -> Resource:
    for resource in (*MODEL_RESOURCES, NAMESPACES):
        if (resource.api_version, resource.kind) == (obj["apiVersion"], obj["kind"]):
            return resource
    raise AssertionError(f"no resource for {obj['kind']}")


@contextlib.asynccontextmanager
async def cluster() -> AsyncIterator[Cluster]:
    async with Emulator() as emulator, kmock.Server(emulator) as server:
        for resource in (SERVICES, ENDPOINT_SLICES, PODS, NAMESPACES):
            key = _kmock_key(resource).replace("namespaces", NAMESPACE_ALIAS)
            emulator.resources[key] = kmock.ResourceInfo(
                kind=resource.kind, namespaced=resource.namespaced, verbs={"list", "watch"}
            )
        c = Cluster(emulator, server)
        try:
            yield c
        finally:
            for client in c.clients:
                client.close()


@dataclass
class Plane:
    """One control plane replica: hub, pipeline, Kubernetes source and xDS server."""

    hub: Hub
    pipeline: Pipeline
    source: KubernetesSource
    port: int
    server: grpc.aio.Server

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def control_plane(
    api: KubeApi,
    selection: NamespaceSelection | None = None,
    *,
    max_connection_age: float | None = None,
    wait_synced: bool = True,
) -> AsyncIterator[Plane]:
    hub = Hub()
    pipeline = Pipeline(hub, quiet=0.01, max_delay=0.05)
    source = KubernetesSource(
        api,
        selection,
        backoff=Backoff(initial=0.05, maximum=0.2, jitter=0.0),
        settle=0.005,
        absent_recheck=0.05,
    )
    synced = asyncio.Event()

    def on_model(model: Model) -> None:
        if synced.is_set():
            pipeline.submit(model)
        else:
            pipeline.publish_now(model)

    tasks = [
        asyncio.create_task(pipeline.run()),
        asyncio.create_task(source.run(on_model, synced=synced)),
    ]
    server = None
    try:
        if wait_synced:
            await asyncio.wait_for(synced.wait(), DEADLINE)
        server, port = await grpc_server.start(
            hub, "127.0.0.1:0", max_connection_age=max_connection_age
        )
        yield Plane(hub, pipeline, source, port, server)
    finally:
        if server is not None:
            await server.stop(None)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Client:
    """An ADS client on one stream, SotW or Delta, that ACKs what it gets.

    `resources` holds what the client has now: name -> (version, serialized
    resource); `responses` counts what it received.
    """

    def __init__(self, channel: grpc.aio.Channel, type_url: str, *, delta: bool = False) -> None:
        self.type_url = type_url
        self.delta = delta
        method, request, response = (
            (
                "DeltaAggregatedResources",
                discovery_pb2.DeltaDiscoveryRequest,
                discovery_pb2.DeltaDiscoveryResponse,
            )
            if delta
            else (
                "StreamAggregatedResources",
                discovery_pb2.DiscoveryRequest,
                discovery_pb2.DiscoveryResponse,
            )
        )
        self._response_type = response
        multi: Any = channel.stream_stream(
            f"{ADS}/{method}",
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )
        self.call = multi()
        self.resources: dict[str, tuple[str, bytes]] = {}
        self.responses = 0
        self.last: set[str] = set()  # the names the last response carried

    async def subscribe(
        self, names: tuple[str, ...] = (), initial: dict[str, str] | None = None
    ) -> None:
        if self.delta:
            request = discovery_pb2.DeltaDiscoveryRequest(
                type_url=self.type_url,
                resource_names_subscribe=list(names),
                initial_resource_versions=initial or {},
            )
        else:
            request = discovery_pb2.DiscoveryRequest(
                type_url=self.type_url, resource_names=list(names)
            )
        request.node.CopyFrom(node())
        await self.call.write(request)

    async def receive(self) -> None:
        """Reads one response, applies it and ACKs it."""
        response = await self.call.read()
        assert isinstance(response, self._response_type), "the server ended the stream"
        self.responses += 1
        if self.delta:
            self.last = {r.name for r in response.resources}
            for r in response.resources:
                self.resources[r.name] = (r.version, r.resource.value)
            for name in response.removed_resources:
                self.resources.pop(name, None)
            await self.call.write(
                discovery_pb2.DeltaDiscoveryRequest(
                    type_url=self.type_url, response_nonce=response.nonce
                )
            )
        else:
            fresh = {}
            self.last = set()
            for any_ in response.resources:
                name = _name_of(self.type_url, any_.value)
                fresh[name] = (response.version_info, any_.value)
                self.last.add(name)
            self.resources = fresh
            await self.call.write(
                discovery_pb2.DiscoveryRequest(
                    type_url=self.type_url,
                    version_info=response.version_info,
                    response_nonce=response.nonce,
                )
            )

    async def until(self, check: Callable[[dict[str, tuple[str, bytes]]], bool]) -> None:
        """Receives until `check` holds for what the client has."""

        async def loop() -> None:
            while not check(self.resources):
                await self.receive()

        await asyncio.wait_for(loop(), DEADLINE)

    def names(self) -> set[str]:
        return set(self.resources)

    def close(self) -> None:
        self.call.cancel()


def _name_of(type_url: str, value: bytes) -> str:
    from envoy.config.cluster.v3 import cluster_pb2  # noqa: PLC0415
    from envoy.config.endpoint.v3 import endpoint_pb2  # noqa: PLC0415

    if type_url == contract.TYPE_ENDPOINT:
        return str(endpoint_pb2.ClusterLoadAssignment.FromString(value).cluster_name)
    return str(cluster_pb2.Cluster.FromString(value).name)


async def eventually(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Waits (polling) until `check` holds; fails naming `what` after the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        outcome = check()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)
