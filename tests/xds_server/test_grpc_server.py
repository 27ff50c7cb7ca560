"""The gRPC adapter over a real socket: ADS, per-type services, and bad clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2

from api import contract
from tests.xds_server.factories import delta, model, sotw
from xds_server import grpc_server
from xds_server.hub import Hub
from xds_server.pipeline import Pipeline

Scenario = Callable[[grpc.aio.Channel, Pipeline], Awaitable[None]]


def run(scenario: Scenario) -> None:
    """Run `scenario` against a real server on loopback, in its own asyncio loop."""

    async def main() -> None:
        hub = Hub()
        pipeline = Pipeline(hub)
        pipeline.publish_now(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
        server, port = await grpc_server.start(hub, "127.0.0.1:0")
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await asyncio.wait_for(scenario(channel, pipeline), 20)
        finally:
            await server.stop(None)

    asyncio.run(main())


def stream(
    channel: grpc.aio.Channel, service: str, method: str, request_type: Any, response_type: Any
) -> Any:
    return channel.stream_stream(
        f"/{service}/{method}",
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )


def sotw_call(channel: grpc.aio.Channel, service: str, method: str) -> Any:
    return stream(
        channel, service, method, discovery_pb2.DiscoveryRequest, discovery_pb2.DiscoveryResponse
    )()


async def _requests(*items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


def test_per_type_services_serve_their_type_without_a_type_url() -> None:
    async def scenario(channel: grpc.aio.Channel, _: Pipeline) -> None:
        for service, method, type_url, names in [
            (
                "envoy.service.cluster.v3.ClusterDiscoveryService",
                "StreamClusters",
                contract.TYPE_CLUSTER,
                (),
            ),
            (
                "envoy.service.listener.v3.ListenerDiscoveryService",
                "StreamListeners",
                contract.TYPE_LISTENER,
                (),
            ),
            (
                "envoy.service.route.v3.RouteDiscoveryService",
                "StreamRoutes",
                contract.TYPE_ROUTE,
                (contract.ROUTE_OUTBOUND,),
            ),
            (
                "envoy.service.endpoint.v3.EndpointDiscoveryService",
                "StreamEndpoints",
                contract.TYPE_ENDPOINT,
                (contract.outbound_cluster_name(8080, contract.service_host("a", "default")),),
            ),
        ]:
            call = sotw_call(channel, service, method)
            request = sotw("", names=names)
            await call.write(request)
            response = await call.read()
            assert response.type_url == type_url
            assert {r.type_url for r in response.resources} == {type_url}
            assert response.control_plane.identifier == "xds-server"
            call.cancel()

    run(scenario)


def test_ads_pushes_a_change_to_a_subscribed_stream() -> None:
    async def scenario(channel: grpc.aio.Channel, pipeline: Pipeline) -> None:
        call = sotw_call(
            channel,
            "envoy.service.discovery.v3.AggregatedDiscoveryService",
            "StreamAggregatedResources",
        )
        await call.write(sotw(contract.TYPE_CLUSTER))
        first = await call.read()
        await call.write(sotw(contract.TYPE_CLUSTER, nonce=first.nonce, version=first.version_info))
        pipeline.publish_now(model(("a", ("127.0.0.11",))))
        second = await call.read()
        assert len(second.resources) == len(first.resources) - 1
        assert second.nonce != first.nonce
        call.cancel()

    run(scenario)


def test_delta_ads_over_the_wire() -> None:
    async def scenario(channel: grpc.aio.Channel, _: Pipeline) -> None:
        call = stream(
            channel,
            "envoy.service.discovery.v3.AggregatedDiscoveryService",
            "DeltaAggregatedResources",
            discovery_pb2.DeltaDiscoveryRequest,
            discovery_pb2.DeltaDiscoveryResponse,
        )()
        await call.write(delta(contract.TYPE_CLUSTER))
        response = await call.read()
        assert {r.name for r in response.resources} >= {
            contract.outbound_cluster_name(8080, contract.service_host("a", "default"))
        }
        call.cancel()

    run(scenario)


@pytest.mark.parametrize(
    ("request_", "detail"),
    [
        (sotw(contract.TYPE_CLUSTER, with_node=False), "node id"),
        (sotw("type.googleapis.com/nope"), "unknown type URL"),
    ],
)
def test_a_bad_client_gets_invalid_argument_naming_the_problem(request_: Any, detail: str) -> None:
    async def scenario(channel: grpc.aio.Channel, _: Pipeline) -> None:
        call = sotw_call(
            channel,
            "envoy.service.discovery.v3.AggregatedDiscoveryService",
            "StreamAggregatedResources",
        )
        await call.write(request_)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert detail in (caught.value.details() or "")

    run(scenario)


def test_wrong_type_on_a_per_type_service_is_refused() -> None:
    async def scenario(channel: grpc.aio.Channel, _: Pipeline) -> None:
        call = sotw_call(channel, "envoy.service.route.v3.RouteDiscoveryService", "StreamRoutes")
        await call.write(sotw(contract.TYPE_CLUSTER))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "serves" in (caught.value.details() or "")

    run(scenario)


def test_bad_node_metadata_is_refused_with_the_key() -> None:
    async def scenario(channel: grpc.aio.Channel, _: Pipeline) -> None:
        call = sotw_call(
            channel,
            "envoy.service.discovery.v3.AggregatedDiscoveryService",
            "StreamAggregatedResources",
        )
        request = sotw(contract.TYPE_CLUSTER)
        request.node.metadata.fields[contract.META_OUTBOUND_PORT].string_value = "99999"
        await call.write(request)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert contract.META_OUTBOUND_PORT in (caught.value.details() or "")

    run(scenario)
