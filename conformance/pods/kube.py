"""The Kubernetes objects a world shows its control plane, and the hosts file of a pod.

Pods carry their address (`status.podIP`) and service account; a Service has
its ClusterIP and one EndpointSlice whose endpoints are its pods' addresses,
each with a `targetRef` to its Pod, as the EndpointSlice controller writes
them. A pod's hosts file maps the names a pod's resolver would find through
cluster DNS and its search path to the ClusterIP: `<name>.<ns>.svc.<domain>`,
`<name>.<ns>.svc`, `<name>.<ns>`, and `<name>` alone in the pod's namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from api import contract

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True, slots=True)
class PodInfo:
    name: str
    namespace: str
    address: str
    service_account: str = "default"
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PortInfo:
    name: str
    port: int
    target_port: int
    app_protocol: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceName:
    """A Service as the resolver knows it: its names and ClusterIP."""

    name: str
    namespace: str
    cluster_ip: str

    def names(self, seen_from: str, domain: str = contract.CLUSTER_DOMAIN) -> list[str]:
        fqdn = contract.service_host(self.name, self.namespace, domain)
        out = [fqdn, f"{self.name}.{self.namespace}.svc", f"{self.name}.{self.namespace}"]
        return out + ([self.name] if self.namespace == seen_from else [])


def pod_object(pod: PodInfo) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": dict(pod.labels)},
        "spec": {"serviceAccountName": pod.service_account, "containers": [{"name": "app"}]},
        "status": {"podIP": pod.address, "podIPs": [{"ip": pod.address}], "phase": "Running"},
    }


def service_objects(
    service: ServiceName, ports: Sequence[PortInfo], pods: Sequence[PodInfo]
) -> list[dict[str, Any]]:
    """A Service and its one EndpointSlice, every pod ready."""
    spec_ports = []
    for p in ports:
        item: dict[str, Any] = {"name": p.name, "port": p.port, "targetPort": p.target_port}
        if p.app_protocol:
            item["appProtocol"] = p.app_protocol
        spec_ports.append(item)
    meta = {"name": service.name, "namespace": service.namespace}
    endpoints = [
        {
            "addresses": [pod.address],
            "conditions": {"ready": True},
            "targetRef": {"kind": "Pod", "name": pod.name, "namespace": pod.namespace},
        }
        for pod in pods
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"clusterIP": service.cluster_ip, "ports": spec_ports},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{service.name}-pods",
                "namespace": service.namespace,
                "labels": {SERVICE_NAME_LABEL: service.name},
            },
            "addressType": "IPv4",
            "ports": [{"name": p.name, "port": p.target_port, "protocol": "TCP"} for p in ports],
            "endpoints": endpoints,
        },
    ]


def hosts_file(pod: PodInfo, services: Iterable[ServiceName]) -> str:
    """The pod's `/etc/hosts`: itself, then every Service's names by ClusterIP."""
    lines = ["127.0.0.1 localhost", f"{pod.address} {pod.name}"]
    for service in sorted(services, key=lambda s: (s.namespace, s.name)):
        lines.append(f"{service.cluster_ip} {' '.join(service.names(pod.namespace))}")
    return "\n".join(lines) + "\n"


def resolve(host: str, namespace: str, services: Iterable[ServiceName]) -> str | None:
    """The ClusterIP a pod in `namespace` finds for `host` in its hosts file, or None."""
    for service in services:
        if host in service.names(namespace):
            return service.cluster_ip
    return None
