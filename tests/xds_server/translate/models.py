"""Small models for the translator's tests."""

from __future__ import annotations

from google.protobuf import json_format

from xds_server.model import Endpoint, EndpointPort, EndpointSlice, Service, ServicePort


def service(
    name: str,
    namespace: str = "default",
    *ports: ServicePort,
    cluster_ip: str | None = None,
) -> Service:
    return Service(namespace, name, ports or (ServicePort(80, "http"),), cluster_ip=cluster_ip)


def endpoint_slice(
    service_name: str,
    *endpoints: Endpoint,
    namespace: str = "default",
    port: int = 8080,
    port_name: str = "http",
    suffix: str = "a",
) -> EndpointSlice:
    return EndpointSlice(
        namespace,
        f"{service_name}-{suffix}",
        service_name,
        (EndpointPort(port, port_name),),
        endpoints,
    )


def ready(address: str, zone: str | None = None, node: str | None = None) -> Endpoint:
    return Endpoint((address,), zone=zone, node_name=node)


def terminating(address: str) -> Endpoint:
    return Endpoint((address,), ready=False, serving=True, terminating=True)


def as_dict(message: object) -> dict[str, object]:
    out: dict[str, object] = json_format.MessageToDict(
        message,  # type: ignore[arg-type]
        preserving_proto_field_name=True,
    )
    return out
