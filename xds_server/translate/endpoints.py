"""ClusterLoadAssignments: the endpoints of one Service port, grouped by locality.

Endpoint selection is the model's (`resolve_endpoints`, kube-proxy's rules). A
locality is (zone, node name) -> (`zone`, `sub_zone`); groups are ordered by
locality and endpoints within a group by address, so equal inputs give equal
bytes. A port with no endpoints still gets an assignment, empty, so that Envoy
finishes warming the cluster and answers 503 instead of waiting.

Memoized on (Service, port, the Service's slices, domain); returned messages
are shared and must not be mutated.
"""

from __future__ import annotations

from functools import _CacheInfo, lru_cache
from itertools import groupby
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from xds_server.model import (
    EndpointSlice,
    ResolvedEndpoint,
    Service,
    ServicePort,
    resolve_endpoints,
)
from xds_server.translate.clusters import cluster_name_of
from xds_server.translate.common import CACHE_SIZE


def _locality(e: ResolvedEndpoint) -> tuple[str, str]:
    return (e.zone, e.node_name)


@lru_cache(maxsize=CACHE_SIZE)
def load_assignment(
    service: Service,
    port: ServicePort,
    slices: tuple[EndpointSlice, ...],
    cluster_domain: str,
) -> Any:
    """The ClusterLoadAssignment for the cluster of `port` of `service`."""
    cla = endpoint_pb2.ClusterLoadAssignment(
        cluster_name=cluster_name_of(service, port, cluster_domain)
    )
    resolved = sorted(resolve_endpoints(service, port, slices), key=_locality)
    for (zone, node_name), group in groupby(resolved, key=_locality):
        locality_endpoints = cla.endpoints.add()
        if zone or node_name:
            locality_endpoints.locality.CopyFrom(base_pb2.Locality(zone=zone, sub_zone=node_name))
        for e in group:
            socket = locality_endpoints.lb_endpoints.add().endpoint.address.socket_address
            socket.address = e.address
            socket.port_value = e.port
    return cla


def cache_info() -> _CacheInfo:
    return load_assignment.cache_info()


def cache_clear() -> None:
    load_assignment.cache_clear()
