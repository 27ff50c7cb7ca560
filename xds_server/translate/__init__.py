"""The translator: a pure function from the model to Envoy v3 resources.

`translate_shared` gives what every proxy receives alike (one EDS cluster and
one ClusterLoadAssignment per TCP Service port); `translate_node` gives what
depends on the proxy's `NodeProfile` (its listeners, route configurations and
inbound cluster). Neither does I/O or imports a source or a server.

Construction is memoized per Service port on hashable model values, so a change
to one Service rebuilds only its messages and every other message is the same
object as in the previous translation. Messages are therefore shared between
results: treat them as immutable (copy before changing one).
"""

from __future__ import annotations

from functools import _CacheInfo

from api import contract
from api.contract import NodeProfile
from xds_server.model import Model
from xds_server.resources import Resources
from xds_server.translate import clusters, endpoints, listeners, routes
from xds_server.translate.clusters import inbound_cluster, outbound_cluster
from xds_server.translate.endpoints import load_assignment
from xds_server.translate.listeners import inbound_listener, outbound_listener
from xds_server.translate.protocol import is_tcp
from xds_server.translate.routes import inbound_route_config, outbound_route_config

__all__ = ["cache_clear", "cache_info", "translate_node", "translate_shared"]


def translate_shared(model: Model, cluster_domain: str = contract.CLUSTER_DOMAIN) -> Resources:
    """Clusters and endpoints of every TCP Service port; the same for every proxy."""
    out = Resources()
    for service in model.sorted_services():
        slices = model.slices.get((service.namespace, service.name), ())
        for port in service.ports:
            if not is_tcp(port):
                continue
            cluster = outbound_cluster(service, port, cluster_domain)
            if cluster.name in out.clusters:
                out.warnings.append(
                    f"{service.key}: port {port.port} is listed twice; "
                    f"cluster {cluster.name!r} built from the first"
                )
                continue
            out.clusters[cluster.name] = cluster
            out.endpoints[cluster.name] = load_assignment(service, port, slices, cluster_domain)
    return out


def translate_node(
    model: Model, profile: NodeProfile, cluster_domain: str = contract.CLUSTER_DOMAIN
) -> Resources:
    """Listeners, route configurations and the inbound cluster of one proxy."""
    outbound_routes, warnings = outbound_route_config(model, profile.namespace, cluster_domain)
    outbound = outbound_listener(profile.outbound_address, profile.outbound_port)
    inbound = inbound_listener(profile.inbound_port)
    inbound_routes = inbound_route_config(profile.app_port)
    app_cluster = inbound_cluster(profile.app_port)
    return Resources(
        clusters={app_cluster.name: app_cluster},
        listeners={outbound.name: outbound, inbound.name: inbound},
        routes={outbound_routes.name: outbound_routes, inbound_routes.name: inbound_routes},
        warnings=warnings,
    )


def cache_info() -> dict[str, _CacheInfo]:
    """Hits, misses and sizes of the per-Service-port memos (for metrics and tests)."""
    return {
        "clusters": clusters.cache_info(),
        "endpoints": endpoints.cache_info(),
        "virtual_hosts": routes.cache_info(),
    }


def cache_clear() -> None:
    """Forget every memoized message (the next translation builds all anew)."""
    for module in (clusters, endpoints, routes, listeners):
        module.cache_clear()
