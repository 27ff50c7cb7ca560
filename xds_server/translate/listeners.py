"""Listeners: outbound (the app's egress proxy) and inbound (in front of the app).

Both hold the HTTP connection manager, whose routes come by RDS over ADS and
whose last HTTP filter is the router. The codec is AUTO, so a downstream may
speak HTTP/1.1 or HTTP/2 with prior knowledge (h2c), or either by ALPN over TLS.

The outbound listener is one plaintext filter chain. The inbound listener
depends on the workload's peer authentication mode: DISABLE is one plaintext
chain; STRICT one mTLS chain (a client certificate of the trust domain is
required, so a plaintext client fails the handshake); PERMISSIVE both, told
apart by the TLS inspector (`transport_protocol: tls`). Its HTTP filters are
the workload's RBAC filters (`rbac.py`), then the router. With mTLS the
connection manager replaces any `x-forwarded-client-cert` a client sent with
the verified peer's SPIFFE ID (Envoy's SANITIZE_SET), as Istio does.
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
from xds_server.model import AuthorizationPolicy
from xds_server.translate.common import ads_source, socket_address
from xds_server.translate.rbac import rbac_filters
from xds_server.translate.security import (
    DISABLE,
    PERMISSIVE,
    STRICT,
    TLS_INSPECTOR,
    downstream_tls,
    tls_inspector,
)

HCM_FILTER = "envoy.filters.network.http_connection_manager"
ROUTER_FILTER = "envoy.filters.http.router"


def http_connection_manager(
    stat_prefix: str, route_config_name: str, filters: tuple[Any, ...] = ()
) -> Any:
    router = any_pb2.Any()
    router.Pack(router_pb2.Router())
    return hcm_pb2.HttpConnectionManager(
        stat_prefix=stat_prefix,
        codec_type=hcm_pb2.HttpConnectionManager.AUTO,
        rds=hcm_pb2.Rds(config_source=ads_source(), route_config_name=route_config_name),
        http_filters=[*filters, hcm_pb2.HttpFilter(name=ROUTER_FILTER, typed_config=router)],
    )


def _hcm_filter(hcm: Any) -> Any:
    packed = any_pb2.Any()
    packed.Pack(hcm)
    return listener_components_pb2.Filter(name=HCM_FILTER, typed_config=packed)


def _listener(
    name: str, address: str, port: int, direction: int, *, route: str, filters: tuple[Any, ...] = ()
) -> Any:
    return listener_pb2.Listener(
        name=name,
        address=socket_address(address, port),
        traffic_direction=direction,
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[_hcm_filter(http_connection_manager(name, route, filters))]
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


@lru_cache(maxsize=4096)
def inbound_listener(
    port: int,
    mode: str = DISABLE,
    trust_domain: str = contract.CLUSTER_DOMAIN,
    policies: tuple[AuthorizationPolicy, ...] = (),
    app_port: int = contract.APP_PORT,
) -> Any:
    """The listener that receives requests for the workload.

    `mode` is the workload's peer authentication mode (DISABLE when the mesh
    has no CA); `policies` are the AuthorizationPolicies that select it.
    """
    filters = rbac_filters(policies, trust_domain, app_port, port) if policies else ()
    if mode == DISABLE:
        return _listener(
            contract.LISTENER_INBOUND,
            contract.INBOUND_ADDRESS,
            port,
            base_pb2.INBOUND,
            route=contract.ROUTE_INBOUND,
            filters=filters,
        )
    if mode not in (STRICT, PERMISSIVE):
        raise ValueError(f"unknown peer authentication mode {mode!r}")
    hcm = http_connection_manager(contract.LISTENER_INBOUND, contract.ROUTE_INBOUND, filters)
    hcm.forward_client_cert_details = hcm_pb2.HttpConnectionManager.SANITIZE_SET
    hcm.set_current_client_cert_details.uri = True
    network_filter = _hcm_filter(hcm)
    chains = [
        listener_components_pb2.FilterChain(
            name="inbound-mtls",
            filter_chain_match=listener_components_pb2.FilterChainMatch(
                transport_protocol="tls" if mode == PERMISSIVE else ""
            ),
            transport_socket=downstream_tls(trust_domain),
            filters=[network_filter],
        )
    ]
    listener = listener_pb2.Listener(
        name=contract.LISTENER_INBOUND,
        address=socket_address(contract.INBOUND_ADDRESS, port),
        traffic_direction=base_pb2.INBOUND,
        filter_chains=chains,
    )
    if mode == PERMISSIVE:
        listener.filter_chains.add(name="inbound-plaintext", filters=[network_filter])
        listener.listener_filters.add(name=TLS_INSPECTOR, typed_config=tls_inspector())
    return listener


def cache_clear() -> None:
    outbound_listener.cache_clear()
    inbound_listener.cache_clear()
