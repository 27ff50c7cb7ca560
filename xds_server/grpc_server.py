"""The gRPC adapter: xDS services on grpc.aio, around the I/O-free streams.

Responses are already encoded bytes (see `wire.py`), so the response
serializer is the identity. Each RPC runs a reader task that feeds requests
to its stream and a writer (the handler itself) that drains the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.json_format import MessageToDict

from api import contract
from api.contract import ContractError
from xds_server.auth.gate import Denied, Gate
from xds_server.hub import CLOSE, Connection, Hub
from xds_server.protocol.state import ProtocolError, Response
from xds_server.protocol.stream import DeltaStream, SotwStream

log = logging.getLogger("xds_server.grpc")

# (service, SotW method, Delta method, the one type it serves or None for ADS)
SERVICES: tuple[tuple[str, str, str, str | None], ...] = (
    (
        "envoy.service.discovery.v3.AggregatedDiscoveryService",
        "StreamAggregatedResources",
        "DeltaAggregatedResources",
        None,
    ),
    (
        "envoy.service.listener.v3.ListenerDiscoveryService",
        "StreamListeners",
        "DeltaListeners",
        contract.TYPE_LISTENER,
    ),
    (
        "envoy.service.route.v3.RouteDiscoveryService",
        "StreamRoutes",
        "DeltaRoutes",
        contract.TYPE_ROUTE,
    ),
    (
        "envoy.service.cluster.v3.ClusterDiscoveryService",
        "StreamClusters",
        "DeltaClusters",
        contract.TYPE_CLUSTER,
    ),
    (
        "envoy.service.endpoint.v3.EndpointDiscoveryService",
        "StreamEndpoints",
        "DeltaEndpoints",
        contract.TYPE_ENDPOINT,
    ),
)


class _Abort:
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self.code, self.message = code, message


def _identity(data: bytes) -> bytes:
    return data


class XdsServicer:
    def __init__(
        self, hub: Hub, control_plane_id: str = "xds-server", gate: Gate | None = None
    ) -> None:
        self.hub = hub
        self.control_plane_id = control_plane_id
        self.gate = gate  # when set, a stream is served only once its proxy proves its identity

    def handlers(self) -> list[grpc.GenericRpcHandler[Any, Any]]:
        out = []
        for service, sotw_method, delta_method, only in SERVICES:
            methods = {
                sotw_method: grpc.stream_stream_rpc_method_handler(
                    self._rpc(SotwStream, only),
                    request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                    response_serializer=_identity,
                ),
                delta_method: grpc.stream_stream_rpc_method_handler(
                    self._rpc(DeltaStream, only),
                    request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
                    response_serializer=_identity,
                ),
            }
            out.append(grpc.method_handlers_generic_handler(service, methods))
        return out

    def _rpc(
        self, kind: type[SotwStream] | type[DeltaStream], only: str | None
    ) -> Callable[[AsyncIterator[Any], grpc.aio.ServicerContext[Any, Any]], AsyncIterator[bytes]]:
        async def handle(
            requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[bytes]:
            stream = kind(self.hub, self.control_plane_id)
            conn = self.hub.connect(stream, context.peer())
            reader = asyncio.create_task(self._read(requests, conn, only, context))
            try:
                while True:
                    item = await conn.queue.get()
                    if item is CLOSE:
                        return
                    if isinstance(item, _Abort):
                        await context.abort(item.code, item.message)
                    assert isinstance(item, Response)
                    yield item.payload
            finally:
                reader.cancel()
                self.hub.disconnect(conn)

        return handle

    async def _read(
        self,
        requests: AsyncIterator[Any],
        conn: Connection,
        only: str | None,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        stream, queue = conn.stream, conn.queue
        try:
            async for request in requests:
                if self.gate is not None and stream.profile is None:
                    node = request.node
                    metadata = MessageToDict(node.metadata) if node.HasField("metadata") else {}
                    await self.gate.admit(context.invocation_metadata() or (), node.id, metadata)
                if only is not None:
                    if not request.type_url:
                        request.type_url = only
                    elif request.type_url != only:
                        raise ProtocolError(f"this service serves {only}, not {request.type_url}")
                step = stream.receive(request)
                self.hub.account(step)
                self.hub.deliver(conn, step.responses)
            queue.put_nowait(CLOSE)
        except (ProtocolError, ContractError) as e:
            log.warning("closing xDS stream of %r: %s", stream.node_id or "unknown node", e)
            queue.put_nowait(_Abort(grpc.StatusCode.INVALID_ARGUMENT, str(e)))
        except Denied as e:
            log.warning("refused xDS stream from %s: %s", context.peer(), e)
            queue.put_nowait(_Abort(grpc.StatusCode[e.status], str(e)))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the stream must end with a status, not hang
            log.exception("xDS stream of %r failed", stream.node_id)
            queue.put_nowait(_Abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"))


async def start(
    hub: Hub, address: str, *, max_connection_age: float | None = None, gate: Gate | None = None
) -> tuple[grpc.aio.Server, int]:
    """Serve xDS on `address` (port 0 picks one); returns the server and its port."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.max_receive_message_length", 16 << 20),
        ("grpc.so_reuseport", 0),
    ]
    if max_connection_age:
        options += [
            ("grpc.max_connection_age_ms", int(max_connection_age * 1000)),
            ("grpc.max_connection_age_grace_ms", 10_000),
        ]
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers(XdsServicer(hub, gate=gate).handlers())
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen for xDS on {address}")
    await server.start()
    return server, port
