"""Synthetic models for the benchmarks: many Services, endpoints spread over zones.

Service `i` is `svc-<i>` in namespace `ns-<i mod namespaces>`, with a ClusterIP,
an `http` port 80 and, for every fourth Service, a `grpc` port 9090 as well
(an HTTP/2 cluster). Its one EndpointSlice holds `endpoints` ready endpoints
spread round-robin over three zones and four nodes per zone. Everything is a
pure function of its arguments, so two processes agree on the model.
"""

from __future__ import annotations

from api.contract import NodeProfile
from xds_server.model import Endpoint, EndpointPort, EndpointSlice, Model, Service, ServicePort

ZONES = ("zone-a", "zone-b", "zone-c")
NODES_PER_ZONE = 4


def namespace(index: int) -> str:
    return f"ns-{index}"


def profiles(count: int) -> list[NodeProfile]:
    """One sidecar profile per namespace `ns-0` .. `ns-<count-1>`."""
    return [NodeProfile(namespace=namespace(i)) for i in range(count)]


def _ip(prefix: int, n: int) -> str:
    return f"{prefix}.{n >> 16 & 0xFF}.{n >> 8 & 0xFF}.{n & 0xFF}"


def _ports(index: int) -> tuple[ServicePort, ...]:
    http = ServicePort(80, name="http", target_port=8080)
    if index % 4 == 3:
        return (http, ServicePort(9090, name="grpc", target_port=9090))
    return (http,)


def _endpoint(address: str, slot: int) -> Endpoint:
    zone = ZONES[slot % len(ZONES)]
    return Endpoint((address,), zone=zone, node_name=f"{zone}-node-{slot % NODES_PER_ZONE}")


def service(index: int, namespaces: int, endpoints: int) -> tuple[Service, EndpointSlice]:
    ns = namespace(index % namespaces)
    name = f"svc-{index:05d}"
    ports = _ports(index)
    svc = Service(ns, name, ports, cluster_ip=_ip(10, 0x600000 + index))
    slice_ = EndpointSlice(
        ns,
        f"{name}-0",
        name,
        tuple(EndpointPort(int(p.target_port or p.port), name=p.name) for p in ports),
        tuple(_endpoint(_ip(10, 0x10000 + index * 64 + j), j) for j in range(endpoints)),
    )
    return svc, slice_


def synthetic_model(services: int = 1000, endpoints: int = 10, namespaces: int = 3) -> Model:
    pairs = [service(i, namespaces, endpoints) for i in range(services)]
    return Model.build([s for s, _ in pairs], [sl for _, sl in pairs])


def change_endpoint(model: Model, change: int) -> tuple[Model, str]:
    """`model` with one endpoint of one Service moved to a fresh address.

    Change `k` picks a Service and an endpoint slot from `k`, so successive
    changes touch different Services; returns the new model and the key of
    the Service it changed (`<namespace>/<name>`).
    """
    keys = sorted(model.slices)
    key = keys[(change * 7919) % len(keys)]
    [old] = model.slices[key]
    if not old.endpoints:
        raise ValueError(f"Service {key[0]}/{key[1]} has no endpoint to change")
    slot = change % len(old.endpoints)
    moved = _endpoint(_ip(11, change), slot)
    endpoints = (*old.endpoints[:slot], moved, *old.endpoints[slot + 1 :])
    new = EndpointSlice(old.namespace, old.name, old.service_name, old.ports, endpoints)
    slices = dict(model.slices)
    slices[key] = (new,)
    return Model(model.services, slices, model.pods), f"{key[0]}/{key[1]}"
