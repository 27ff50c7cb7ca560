"""The translator: a pure function from the model to Envoy v3 resources.

`translate_shared` gives what every proxy receives alike (one EDS cluster and
one ClusterLoadAssignment per TCP Service port); `translate_node` gives what
depends on the proxy's `NodeProfile` (its listeners, route configurations and
inbound cluster). Neither does I/O or imports a source or a server.

`MeshSecurity` adds the mesh's security: with `mtls`, clusters of mesh Services
originate mTLS and the inbound listener terminates it as the workload's peer
authentication mode says (`mesh.py`, `security.py`); AuthorizationPolicies
become RBAC filters on the inbound listener either way (`rbac.py`). The
certificates themselves are SDS secrets, which the CA adds (`xds_server.ca`).

Construction is memoized per Service port on hashable model values, so a change
to one Service rebuilds only its messages and every other message is the same
object as in the previous translation. Messages are therefore shared between
results: treat them as immutable (copy before changing one).
"""

from __future__ import annotations

from functools import _CacheInfo

from api import contract
from api.contract import NodeProfile
from xds_server.model import AuthorizationPolicy, Model
from xds_server.resources import Resources
from xds_server.translate import clusters, endpoints, listeners, mesh, rbac, routes, security
from xds_server.translate.clusters import inbound_cluster, outbound_cluster
from xds_server.translate.endpoints import load_assignment
from xds_server.translate.listeners import inbound_listener, outbound_listener
from xds_server.translate.mesh import mesh_index
from xds_server.translate.protocol import is_tcp
from xds_server.translate.routes import inbound_route_config, outbound_route_config
from xds_server.translate.security import DISABLE, MeshSecurity

__all__ = ["MeshSecurity", "cache_clear", "cache_info", "translate_node", "translate_shared"]

_NO_SECURITY = MeshSecurity()


def translate_shared(
    model: Model,
    cluster_domain: str = contract.CLUSTER_DOMAIN,
    security: MeshSecurity = _NO_SECURITY,
) -> Resources:
    """Clusters and endpoints of every TCP Service port; the same for every proxy."""
    out = Resources()
    index = mesh_index(model) if security.mtls else None
    for service in model.sorted_services():
        slices = model.slices.get((service.namespace, service.name), ())
        peers = None
        if index is not None:
            peers = index.upstream_identities(model, service, security.trust_domain, security.mode)
        for port in service.ports:
            if not is_tcp(port):
                continue
            cluster = outbound_cluster(service, port, cluster_domain, peers)
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
    model: Model,
    profile: NodeProfile,
    cluster_domain: str = contract.CLUSTER_DOMAIN,
    security: MeshSecurity = _NO_SECURITY,
) -> Resources:
    """Listeners, route configurations and the inbound cluster of one proxy."""
    outbound_routes, warnings = outbound_route_config(model, profile.namespace, cluster_domain)
    outbound = outbound_listener(profile.outbound_address, profile.outbound_port)
    mode, policies = DISABLE, tuple[AuthorizationPolicy, ...]()
    if security.mtls or model.authorization_policies:
        index = mesh_index(model)
        labels = index.workload_labels(profile.namespace, profile.service_account)
        if security.mtls:
            mode = index.peer_mode(profile.namespace, labels, security.mode, warnings)
        policies = index.authorization(profile.namespace, labels)
    inbound = inbound_listener(
        profile.inbound_port, mode, security.trust_domain, policies, profile.app_port
    )
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
    for module in (clusters, endpoints, routes, listeners, mesh, rbac, security):
        module.cache_clear()
