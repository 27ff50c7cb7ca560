"""The admin HTTP endpoint: readiness, metrics and what each proxy holds.

  /ready                        200 once the first load of the sources is done
  /metrics                      Prometheus text
  /debug/syncz                  per proxy and type: sent, ACKed, NACKed version and error
  /debug/config_dump?proxy=ID   the resources that proxy was last sent, as JSON
  /debug/errors                 the sources' current errors (empty when the last load was good)

A small h11 server on asyncio: one request per connection, no keep-alive.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf.json_format import MessageToDict
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api import contract
from xds_server.hub import Connection, Hub

log = logging.getLogger("xds_server.admin")

_MESSAGES: dict[str, Any] = {
    contract.TYPE_CLUSTER: cluster_pb2.Cluster,
    contract.TYPE_ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
    contract.TYPE_LISTENER: listener_pb2.Listener,
    contract.TYPE_ROUTE: route_pb2.RouteConfiguration,
}


class Admin:
    def __init__(self, hub: Hub, errors: Callable[[], list[str]] = list) -> None:
        self.hub = hub
        self.errors = errors
        self.ready = False

    def handle(self, target: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of `target`."""
        url = urlsplit(target)
        query = parse_qs(url.query)
        if url.path == "/ready":
            return (200, "text/plain", b"ready\n") if self.ready else (503, "text/plain", b"")
        if url.path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.hub.metrics.registry)
        if url.path == "/debug/syncz":
            return _json([self._sync(c) for c in self._connections()])
        if url.path == "/debug/errors":
            return _json({"snapshot": self.hub.snapshot.version, "errors": self.errors()})
        if url.path == "/debug/config_dump":
            wanted = query.get("proxy", [""])[0]
            conns = [c for c in self._connections() if c.stream.node_id == wanted]
            if not conns:
                return 404, "text/plain", f"no proxy {wanted!r} is connected\n".encode()
            return _json(self._dump(conns[-1]))
        return 404, "text/plain", b"not found\n"

    def _connections(self) -> list[Connection]:
        return sorted(self.hub.connections.values(), key=lambda c: (c.stream.node_id, c.id))

    def _sync(self, conn: Connection) -> dict[str, Any]:
        types = {}
        for type_url, state in conn.stream.states.items():
            types[contract.SHORT_TYPE_NAMES[type_url]] = {
                "sent": state.version,
                "nonce": state.nonce,
                "acked": state.acked_version,
                "state": "NACKED"
                if state.nack
                else (
                    "ACKED"
                    if state.phase.name == "WAITING" and state.acked_version == state.version
                    else "SENT"
                ),
                "resources": len(state.sent),
                "nack": None
                if state.nack is None
                else {
                    "rejected_version": state.nack.rejected_version,
                    "error": state.nack.message,
                },
            }
        return {
            "proxy": conn.stream.node_id,
            "peer": conn.peer,
            "variant": "delta" if conn.stream.delta else "sotw",
            "connected_at": conn.connected_at,
            "types": types,
        }

    def _dump(self, conn: Connection) -> dict[str, Any]:
        out: dict[str, Any] = {"proxy": conn.stream.node_id, "metadata": conn.stream.metadata}
        for type_url, state in conn.stream.states.items():
            cls = _MESSAGES.get(type_url)
            if cls is None:
                continue
            out[contract.SHORT_TYPE_NAMES[type_url]] = {
                "version": state.version,
                "resources": [
                    MessageToDict(cls.FromString(e.payload)) for _, e in sorted(state.sent.items())
                ],
            }
        return out

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.Request):
                    status, ctype, body = self.handle(event.target.decode("latin-1"))
                    headers = [
                        ("content-type", ctype),
                        ("content-length", str(len(body))),
                        ("connection", "close"),
                    ]
                    writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
                    writer.write(conn.send(h11.Data(data=body)))
                    writer.write(conn.send(h11.EndOfMessage()))
                    await writer.drain()
                return
        except h11.RemoteProtocolError as e:
            log.debug("bad admin request: %s", e)
        finally:
            writer.close()


def _json(value: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


async def start(admin: Admin, host: str, port: int) -> asyncio.Server:
    return await asyncio.start_server(admin.serve, host, port)
