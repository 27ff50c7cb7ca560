"""Endpoints and hosts: a ClusterLoadAssignment compiled, and the live hosts built from it.

`compile_load_assignment` turns the proto into an immutable `LoadAssignment`
(endpoints with their priority, locality, weight and EDS health). A `Host` is
the live object the load balancers pick: it carries what the data plane learns
at run time (active requests, outlier ejection) and survives assignment updates
as long as its address stays, as Envoy keeps a host's state across EDS updates.

Health follows Envoy: EDS UNKNOWN and HEALTHY are healthy, DEGRADED is
degraded, UNHEALTHY and TIMEOUT are unhealthy (never picked unless the priority
is in panic), DRAINING is excluded (never picked, and left out of the health
arithmetic). An outlier-ejected host is unhealthy.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Any

from envoy.config.core.v3 import health_check_pb2

from pydp.errors import ConfigError
from pydp.upstream.fields import reject_unknown, wrapped

DEFAULT_OVERPROVISIONING_FACTOR = 140
MAX_PRIORITY = 128
UINT32_MAX = (1 << 32) - 1


class EdsHealth(enum.Enum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"


class Health(enum.Enum):
    """A host's coarse health, as the load balancers see it."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    EXCLUDED = "excluded"


_EDS_HEALTH = {
    health_check_pb2.UNKNOWN: EdsHealth.HEALTHY,
    health_check_pb2.HEALTHY: EdsHealth.HEALTHY,
    health_check_pb2.DEGRADED: EdsHealth.DEGRADED,
    health_check_pb2.UNHEALTHY: EdsHealth.UNHEALTHY,
    health_check_pb2.TIMEOUT: EdsHealth.UNHEALTHY,
    health_check_pb2.DRAINING: EdsHealth.DRAINING,
}


@dataclass(frozen=True, order=True)
class Locality:
    region: str = ""
    zone: str = ""
    sub_zone: str = ""


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of a load assignment."""

    address: str
    port: int
    priority: int = 0
    locality: Locality = Locality()
    weight: int = 1
    health: EdsHealth = EdsHealth.HEALTHY
    hostname: str = ""
    hash_key: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.address, self.port)


@dataclass(frozen=True)
class LoadAssignment:
    """A compiled ClusterLoadAssignment."""

    endpoints: tuple[Endpoint, ...] = ()
    locality_weights: tuple[tuple[int, Locality, int], ...] = ()
    overprovisioning_factor: int = DEFAULT_OVERPROVISIONING_FACTOR
    weighted_priority_health: bool = False

    def locality_weight(self, priority: int, locality: Locality) -> int:
        """The weight of a locality at a priority; 0 when the assignment gives none."""
        weight = 0
        for p, loc, w in self.locality_weights:
            if p == priority and loc == locality:
                weight = w
        return weight


class Host:
    """A live upstream host. Identity is the object; the key is (address, port)."""

    __slots__ = (
        "active_requests",
        "address",
        "ejected",
        "endpoint",
        "port",
    )

    def __init__(self, endpoint: Endpoint) -> None:
        self.address = endpoint.address
        self.port = endpoint.port
        self.endpoint = endpoint
        self.active_requests = 0
        self.ejected = False

    def __repr__(self) -> str:
        return f"Host({self.label})"

    @property
    def label(self) -> str:
        """The address as Envoy prints it: `1.2.3.4:80` or `[::1]:80`."""
        if ":" in self.address:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"

    @property
    def weight(self) -> int:
        return self.endpoint.weight

    @property
    def priority(self) -> int:
        return self.endpoint.priority

    @property
    def locality(self) -> Locality:
        return self.endpoint.locality

    @property
    def health(self) -> Health:
        eds = self.endpoint.health
        if eds is EdsHealth.DRAINING:
            return Health.EXCLUDED
        if eds is EdsHealth.UNHEALTHY or self.ejected:
            return Health.UNHEALTHY
        if eds is EdsHealth.DEGRADED:
            return Health.DEGRADED
        return Health.HEALTHY

    def hash_key(self, use_hostname: bool) -> str:
        """The key consistent hashing places this host by (Envoy's `hashKey`)."""
        if self.endpoint.hash_key:
            return self.endpoint.hash_key
        if use_hostname:
            return self.endpoint.hostname
        return self.label


_CLA_FIELDS = {"cluster_name", "endpoints", "policy"}
_POLICY_FIELDS = {"overprovisioning_factor", "weighted_priority_health"}
_LOCALITY_FIELDS = {"locality", "metadata", "lb_endpoints", "load_balancing_weight", "priority"}
_LOCALITY_FIELDS |= {"proximity"}
_LB_ENDPOINT_FIELDS = {"endpoint", "health_status", "metadata", "load_balancing_weight"}
_ENDPOINT_FIELDS = {"address", "health_check_config", "hostname"}
_SOCKET_FIELDS = {"address", "port_value", "protocol"}


def compile_load_assignment(cla: Any, resource: str) -> LoadAssignment:
    """Compile a ClusterLoadAssignment; `resource` names it in errors."""
    reject_unknown(cla, _CLA_FIELDS, resource)
    overprovisioning = DEFAULT_OVERPROVISIONING_FACTOR
    weighted = False
    if cla.HasField("policy"):
        reject_unknown(cla.policy, _POLICY_FIELDS, resource, "policy.")
        overprovisioning = int(
            wrapped(cla.policy, "overprovisioning_factor", DEFAULT_OVERPROVISIONING_FACTOR)
        )
        if overprovisioning == 0:
            raise ConfigError(resource, "policy.overprovisioning_factor", "must be greater than 0")
        weighted = bool(cla.policy.weighted_priority_health)
    endpoints: list[Endpoint] = []
    weights: list[tuple[int, Locality, int]] = []
    seen: set[tuple[str, int]] = set()
    locality_sums: dict[int, int] = {}
    for i, group in enumerate(cla.endpoints):
        path = f"endpoints[{i}]."
        reject_unknown(group, _LOCALITY_FIELDS, resource, path)
        if group.priority > MAX_PRIORITY:
            raise ConfigError(resource, path + "priority", f"must be at most {MAX_PRIORITY}")
        locality = Locality(group.locality.region, group.locality.zone, group.locality.sub_zone)
        if group.HasField("load_balancing_weight"):
            weight = group.load_balancing_weight.value
            if weight < 1:
                raise ConfigError(resource, path + "load_balancing_weight", "must be at least 1")
            weights.append((group.priority, locality, weight))
            locality_sums[group.priority] = locality_sums.get(group.priority, 0) + weight
            if locality_sums[group.priority] > UINT32_MAX:
                raise ConfigError(
                    resource,
                    path + "load_balancing_weight",
                    "the sum of weights of all localities at the same priority exceeds "
                    f"{UINT32_MAX}",
                )
        host_sum = 0
        for j, lb_endpoint in enumerate(group.lb_endpoints):
            endpoint = _endpoint(
                lb_endpoint, group.priority, locality, resource, f"{path}lb_endpoints[{j}]."
            )
            if endpoint.key in seen:
                continue
            seen.add(endpoint.key)
            host_sum += endpoint.weight
            if host_sum > UINT32_MAX:
                raise ConfigError(
                    resource,
                    f"{path}lb_endpoints[{j}].load_balancing_weight",
                    f"the sum of weights of all upstream hosts in a locality exceeds {UINT32_MAX}",
                )
            endpoints.append(endpoint)
    return LoadAssignment(tuple(endpoints), tuple(weights), overprovisioning, weighted)


def _endpoint(
    lb_endpoint: Any, priority: int, locality: Locality, resource: str, path: str
) -> Endpoint:
    reject_unknown(lb_endpoint, _LB_ENDPOINT_FIELDS, resource, path)
    endpoint = lb_endpoint.endpoint
    reject_unknown(endpoint, _ENDPOINT_FIELDS, resource, path + "endpoint.")
    address_path = path + "endpoint.address"
    if endpoint.address.WhichOneof("address") != "socket_address":
        raise ConfigError(resource, address_path, "only socket_address endpoints are supported")
    socket = endpoint.address.socket_address
    reject_unknown(socket, _SOCKET_FIELDS, resource, address_path + ".socket_address.")
    if socket.protocol != 0:
        raise ConfigError(
            resource, address_path + ".socket_address.protocol", "only TCP is supported"
        )
    try:
        ip = ipaddress.ip_address(socket.address)
    except ValueError:
        raise ConfigError(
            resource,
            address_path + ".socket_address.address",
            f"malformed IP address: {socket.address}",
        ) from None
    weight = 1
    if lb_endpoint.HasField("load_balancing_weight"):
        weight = lb_endpoint.load_balancing_weight.value
        if weight < 1:
            raise ConfigError(resource, path + "load_balancing_weight", "must be at least 1")
    health = _EDS_HEALTH.get(lb_endpoint.health_status)
    if health is None:
        raise ConfigError(
            resource, path + "health_status", f"unknown value {lb_endpoint.health_status}"
        )
    hash_key = ""
    lb_meta = lb_endpoint.metadata.filter_metadata.get("envoy.lb")
    if lb_meta is not None and "hash_key" in lb_meta.fields:
        value = lb_meta.fields["hash_key"]
        if value.WhichOneof("kind") == "string_value":
            hash_key = value.string_value
    return Endpoint(
        address=str(ip),
        port=socket.port_value,
        priority=priority,
        locality=locality,
        weight=weight,
        health=health,
        hostname=endpoint.hostname,
        hash_key=hash_key,
    )
