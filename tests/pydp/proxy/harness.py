"""A proxy under test: a runtime made of real compiled objects, and a loopback listener."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from google.protobuf.json_format import ParseDict

from pydp.listener.config import AccessLogConfig, HttpConnectionManagerConfig, TcpProxyConfig
from pydp.proxy import PoolManager, serve_http_connection, serve_tcp_connection
from pydp.proxy.drain import Drain
from pydp.router import RouteTable, compile_route_config
from pydp.runtime import AccessLogEntry
from pydp.stats import Stats
from pydp.upstream import UpstreamCluster, compile_cluster


class FakeRuntime:
    def __init__(self, pools: PoolManager) -> None:
        self.pools = pools
        self.stats = Stats()
        self.routes: dict[str, RouteTable] = {}
        self.clusters: dict[str, UpstreamCluster] = {}
        self.entries: list[tuple[str, AccessLogEntry]] = []

    def route_table(self, name: str) -> RouteTable | None:
        return self.routes.get(name)

    def cluster(self, name: str) -> UpstreamCluster | None:
        return self.clusters.get(name)

    def access_log(self, listener: str, entry: AccessLogEntry) -> None:
        self.entries.append((listener, entry))

    def now(self) -> float:
        return trio.current_time()

    def counter(self, name: str) -> int:
        return self.stats.counters.get(name, 0)

    def add_cluster(
        self,
        name: str,
        endpoints: Sequence[tuple[str, int]],
        **fields: Any,
    ) -> UpstreamCluster:
        """A STATIC cluster from `Cluster` fields (JSON names); `seed` seeds its randomness."""
        seed = fields.pop("seed", 1)
        proto = ParseDict(
            {
                "name": name,
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {
                    "cluster_name": name,
                    "endpoints": [
                        {
                            "lb_endpoints": [
                                {
                                    "endpoint": {
                                        "address": {
                                            "socket_address": {"address": a, "port_value": p}
                                        }
                                    }
                                }
                                for a, p in endpoints
                            ]
                        }
                    ],
                },
                **fields,
            },
            cluster_pb2.Cluster(),
        )
        cluster = UpstreamCluster(compile_cluster(proto), random.Random(seed))
        self.clusters[name] = cluster
        return cluster


# Registered for `ParseDict` of retry host predicates.
PREVIOUS_HOSTS = previous_hosts_pb2.PreviousHostsPredicate

H2_OPTIONS = {
    "typed_extension_protocol_options": {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    }
}


def route_table(config: dict[str, Any]) -> RouteTable:
    return compile_route_config(ParseDict(config, route_pb2.RouteConfiguration()))


def routes(*routes: dict[str, Any], **vhost: Any) -> RouteTable:
    """A table with one virtual host for `*` holding `routes`."""
    return route_table(
        {
            "name": "rc",
            "virtual_hosts": [{"name": "vh", "domains": ["*"], "routes": list(routes), **vhost}],
        }
    )


def to(cluster: str, prefix: str = "/", **action: Any) -> dict[str, Any]:
    return {"match": {"prefix": prefix}, "route": {"cluster": cluster, **action}}


def hcm(table: RouteTable | None = None, **fields: Any) -> HttpConnectionManagerConfig:
    """With an access log, so that every request reaches `FakeRuntime.access_log`."""
    fields.setdefault("access_logs", (AccessLogConfig(),))
    return HttpConnectionManagerConfig(stat_prefix="ingress", route_table=table, **fields)


@asynccontextmanager
async def serving(
    runtime: FakeRuntime,
    config: HttpConnectionManagerConfig | TcpProxyConfig,
    listener: str = "listener_0",
    drain: Drain | None = None,
) -> AsyncIterator[tuple[str, int]]:
    """The proxy listening on 127.0.0.1:0 with `config`; yields its address.

    Connections join `drain`, if given, as a listener's do."""

    async def handle(stream: trio.SocketStream) -> None:
        remote = stream.socket.getpeername()[:2]
        local = stream.socket.getsockname()[:2]
        if isinstance(config, TcpProxyConfig):
            await serve_tcp_connection(stream, remote, local, config, listener, runtime)
        else:
            await serve_http_connection(
                stream, remote, local, config, listener, runtime, drain=drain
            )

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        address = listeners[0].socket.getsockname()[:2]
        nursery.start_soon(trio.serve_listeners, handle, listeners)
        yield address
        nursery.cancel_scope.cancel()
