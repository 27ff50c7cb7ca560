"""Kubernetes YAML for tests: Services with EndpointSlices on loopback backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def service(
    name: str,
    namespace: str,
    port: int,
    target_port: int,
    addresses: list[str],
    *,
    cluster_ip: str | None = None,
    terminating: list[str] | None = None,
    port_name: str = "http",
) -> list[dict[str, Any]]:
    """A Service and one EndpointSlice: `addresses` ready, `terminating` serving but leaving."""
    spec: dict[str, Any] = {"ports": [{"name": port_name, "port": port, "targetPort": target_port}]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    endpoints = [{"addresses": [a], "conditions": {"ready": True}} for a in addresses]
    endpoints += [
        {"addresses": [a], "conditions": {"ready": False, "serving": True, "terminating": True}}
        for a in terminating or []
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-1",
                "namespace": namespace,
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": target_port, "protocol": "TCP"}],
            "endpoints": endpoints,
        },
    ]


def write(path: Path, objects: list[dict[str, Any]]) -> None:
    """Write a multi-document file atomically, as an editor or kubectl would."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    tmp.replace(path)
