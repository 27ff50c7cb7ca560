"""The sidecar contract: what the control plane promises every data plane.

Both `xds_server` and `pydp` (and the conformance suite) import this module;
it imports neither. The prose version, with the reasons, is `api/CONTRACT.md`.

A proxy describes itself through its bootstrap's node metadata (the keys
below). The control plane derives a `NodeProfile` from it, and the profile
alone decides what the listeners, routes and local clusters of that proxy
look like, so that many proxies with different ports can share one machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Listener ports and the admin port, as Istio's sidecar uses them.
ADMIN_PORT = 15000
OUTBOUND_PORT = 15001
INBOUND_PORT = 15006
APP_PORT = 8080
OUTBOUND_ADDRESS = "127.0.0.1"
INBOUND_ADDRESS = "0.0.0.0"
APP_ADDRESS = "127.0.0.1"

CLUSTER_DOMAIN = "cluster.local"

# In a cluster, a sidecar proves its identity on the xDS stream with a service
# account token issued for this audience (a projected volume the injection adds).
XDS_TOKEN_AUDIENCE = "xdsmesh"

# Node metadata keys (values are strings, as Envoy's bootstrap carries them).
META_NAMESPACE = "NAMESPACE"
META_SERVICE_ACCOUNT = "SERVICE_ACCOUNT"
META_POD_NAME = "POD_NAME"
META_OUTBOUND_PORT = "OUTBOUND_PORT"
META_OUTBOUND_ADDRESS = "OUTBOUND_ADDRESS"
META_INBOUND_PORT = "INBOUND_PORT"
META_APP_PORT = "APP_PORT"
META_DATAPLANE = "DATAPLANE"

# Resource names every proxy receives.
LISTENER_OUTBOUND = "outbound"
LISTENER_INBOUND = "inbound"
ROUTE_OUTBOUND = "outbound"
ROUTE_INBOUND = "inbound"

# Type URLs of the resources the control plane serves.
TYPE_LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
TYPE_ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
TYPE_CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
TYPE_ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
TYPE_SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

# The order in which a change reaches a proxy: make before break.
PUSH_ORDER = (TYPE_CLUSTER, TYPE_ENDPOINT, TYPE_LISTENER, TYPE_ROUTE, TYPE_SECRET)
SHORT_TYPE_NAMES = {
    TYPE_CLUSTER: "cds",
    TYPE_ENDPOINT: "eds",
    TYPE_LISTENER: "lds",
    TYPE_ROUTE: "rds",
    TYPE_SECRET: "sds",
}


def service_host(name: str, namespace: str, cluster_domain: str = CLUSTER_DOMAIN) -> str:
    """The fully qualified name of a Service: `<name>.<ns>.svc.<domain>`."""
    return f"{name}.{namespace}.svc.{cluster_domain}"


def outbound_cluster_name(port: int, host: str, subset: str = "") -> str:
    """Istio's cluster name for a Service port: `outbound|<port>|<subset>|<host>`."""
    return f"outbound|{port}|{subset}|{host}"


def inbound_cluster_name(port: int) -> str:
    """The cluster that carries inbound traffic to the workload's own port."""
    return f"inbound|{port}||"


def parse_outbound_cluster_name(name: str) -> tuple[int, str, str] | None:
    """(port, subset, host) of an outbound cluster name, or None if it is not one."""
    parts = name.split("|")
    if len(parts) != 4 or parts[0] != "outbound" or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2], parts[3]


def node_id(pod: str, namespace: str) -> str:
    """The node id of a sidecar: `<pod>.<namespace>`."""
    return f"{pod}.{namespace}"


class ContractError(ValueError):
    """Node metadata that breaks the contract; the message names the key."""


@dataclass(frozen=True, slots=True)
class NodeProfile:
    """What the control plane needs to know about one proxy to configure it."""

    namespace: str
    service_account: str = "default"
    outbound_address: str = OUTBOUND_ADDRESS
    outbound_port: int = OUTBOUND_PORT
    inbound_port: int = INBOUND_PORT
    app_port: int = APP_PORT

    @classmethod
    def from_metadata(cls, node_id_: str, metadata: Mapping[str, object]) -> NodeProfile:
        """Read a profile from node metadata; the namespace falls back to the node id."""
        namespace = metadata.get(META_NAMESPACE)
        if namespace is None and "." in node_id_:
            namespace = node_id_.rsplit(".", 1)[1]
        if not isinstance(namespace, str) or not namespace:
            raise ContractError(
                f"node {node_id_!r}: metadata {META_NAMESPACE} is missing and the node id "
                "is not of the form <pod>.<namespace>"
            )
        return cls(
            namespace=namespace,
            service_account=_text(metadata, META_SERVICE_ACCOUNT, "default"),
            outbound_address=_text(metadata, META_OUTBOUND_ADDRESS, OUTBOUND_ADDRESS),
            outbound_port=_port(metadata, META_OUTBOUND_PORT, OUTBOUND_PORT),
            inbound_port=_port(metadata, META_INBOUND_PORT, INBOUND_PORT),
            app_port=_port(metadata, META_APP_PORT, APP_PORT),
        )

    def metadata(self) -> dict[str, str]:
        """The node metadata that yields this profile (what a bootstrap carries)."""
        return {
            META_NAMESPACE: self.namespace,
            META_SERVICE_ACCOUNT: self.service_account,
            META_OUTBOUND_ADDRESS: self.outbound_address,
            META_OUTBOUND_PORT: str(self.outbound_port),
            META_INBOUND_PORT: str(self.inbound_port),
            META_APP_PORT: str(self.app_port),
        }


def _text(metadata: Mapping[str, object], key: str, default: str) -> str:
    value = metadata.get(key, default)
    if not isinstance(value, str) or not value:
        raise ContractError(f"node metadata {key} must be a non-empty string, got {value!r}")
    return value


def _port(metadata: Mapping[str, object], key: str, default: int) -> int:
    value = metadata.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ContractError(f"node metadata {key} must be a port number, got {value!r}")
    return value
