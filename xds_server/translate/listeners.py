"""Listeners: outbound (the app's egress proxy) and inbound (in front of the app).

Both are one filter chain holding the HTTP connection manager, whose routes come
by RDS over ADS and whose only HTTP filter is the router. The codec is AUTO, so
a downstream may speak HTTP/1.1 or HTTP/2 with prior knowledge (h2c).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2

from api import contract
from xds_server.translate.common import ads_source, socket_address

HCM_FILTER = "envoy.filters.network.http_connection_manager"
ROUTER_FILTER = "envoy.filters.http.router"


def http_connection_manager(stat_prefix: str, route_config_name: str) -> Any:
    router = any_pb2.Any()
    router.Pack(router_pb2.Router())
    return hcm_pb2.HttpConnectionManager(
        stat_prefix=stat_prefix,
        codec_type=hcm_pb2.HttpConnectionManager.AUTO,
        rds=hcm_pb2.Rds(config_source=ads_source(), route_config_name=route_config_name),
        http_filters=[hcm_pb2.HttpFilter(name=ROUTER_FILTER, typed_config=router)],
    )


def _listener(name: str, address: str, port: int, direction: int, *, route: str) -> Any:
    hcm = any_pb2.Any()
    hcm.Pack(http_connection_manager(name, route))
    return listener_pb2.Listener(
        name=name,
        address=socket_address(address, port),
        traffic_direction=direction,
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[listener_components_pb2.Filter(name=HCM_FILTER, typed_config=hcm)]
            )
        ],
    )


@lru_cache(maxsize=1024)
def outbound_listener(address: str, port: int) -> Any:
    """The listener the workload sends its outgoing requests to."""
    return _listener(
        contract.LISTENER_OUTBOUND,
        address,
        port,
        base_pb2.OUTBOUND,
        route=contract.ROUTE_OUTBOUND,
    )


@lru_cache(maxsize=1024)
def inbound_listener(port: int) -> Any:
    """The listener that receives requests for the workload."""
    return _listener(
        contract.LISTENER_INBOUND,
        contract.INBOUND_ADDRESS,
        port,
        base_pb2.INBOUND,
        route=contract.ROUTE_INBOUND,
    )


def cache_clear() -> None:
    outbound_listener.cache_clear()
    inbound_listener.cache_clear()
