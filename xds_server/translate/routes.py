"""Route configurations: the outbound virtual hosts of every Service port, and inbound.

Outbound, each TCP Service port is one virtual host named `<host>:<port>` that
sends everything (prefix `/`) to its cluster. Its domains are the names a client
in the proxy's namespace may put in the Host header: the FQDN, `<name>.<ns>.svc`,
`<name>.<ns>`, the bare `<name>` for Services in the proxy's own namespace, and the
ClusterIP; each as `host:port`, followed by bare `host` too when the port is 80.

Envoy rejects a whole route configuration in which two virtual hosts share a
domain. Virtual hosts are visited in (namespace, name, port) order and the first
claimant keeps a domain; later claimants lose it and a warning names both. A
virtual host left with no domain at all is dropped.

Virtual hosts are memoized on what they depend on (the Service's name, namespace
and ClusterIP, the port, the domain, and whether the proxy shares the namespace),
so proxies in different namespaces share the messages of other namespaces'
Services. Returned messages are shared and must not be mutated.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import _CacheInfo, lru_cache
from typing import Any, NamedTuple

from envoy.config.route.v3 import route_components_pb2, route_pb2

from api import contract
from xds_server.model import Model, Service, ServicePort
from xds_server.translate.common import CACHE_SIZE, bracketed
from xds_server.translate.protocol import is_tcp


class _HostKey(NamedTuple):
    """What one outbound virtual host depends on."""

    name: str
    namespace: str
    cluster_ip: str | None
    port: int
    cluster_domain: str
    own_namespace: bool


@dataclass(frozen=True, slots=True)
class _VirtualHost:
    owner: str  # names the Service port, for warnings
    domains: tuple[str, ...]
    message: Any


def outbound_virtual_host(
    service: Service, port: ServicePort, cluster_domain: str, own_namespace: bool
) -> Any:
    """The virtual host of one Service port, with all its domains (memoized)."""
    return _outbound_virtual_host(_key(service, port, cluster_domain, own_namespace)).message


def _key(service: Service, port: ServicePort, cluster_domain: str, own: bool) -> _HostKey:
    return _HostKey(
        service.name, service.namespace, service.cluster_ip, port.port, cluster_domain, own
    )


def _domains(key: _HostKey) -> tuple[str, ...]:
    hosts = [
        contract.service_host(key.name, key.namespace, key.cluster_domain),
        f"{key.name}.{key.namespace}.svc",
        f"{key.name}.{key.namespace}",
    ]
    if key.own_namespace:
        hosts.append(key.name)
    if key.cluster_ip and key.cluster_ip != "None":
        hosts.append(bracketed(key.cluster_ip))
    domains: list[str] = []
    for host in hosts:
        domains.append(f"{host}:{key.port}")
        if key.port == 80:
            domains.append(host)
    return tuple(domains)


def _virtual_host_message(name: str, domains: tuple[str, ...] | list[str], cluster: str) -> Any:
    return route_components_pb2.VirtualHost(
        name=name,
        domains=domains,
        routes=[
            route_components_pb2.Route(
                match=route_components_pb2.RouteMatch(prefix="/"),
                route=route_components_pb2.RouteAction(cluster=cluster),
            )
        ],
    )


@lru_cache(maxsize=CACHE_SIZE)
def _outbound_virtual_host(key: _HostKey) -> _VirtualHost:
    host = contract.service_host(key.name, key.namespace, key.cluster_domain)
    domains = _domains(key)
    message = _virtual_host_message(
        f"{host}:{key.port}", domains, contract.outbound_cluster_name(key.port, host)
    )
    return _VirtualHost(f"Service {key.namespace}/{key.name} port {key.port}", domains, message)


def outbound_route_config(
    model: Model, namespace: str, cluster_domain: str
) -> tuple[Any, list[str]]:
    """The outbound RouteConfiguration of a proxy in `namespace`, and any warnings."""
    claimed: dict[str, str] = {}
    virtual_hosts: list[Any] = []
    warnings: list[str] = []
    for service in model.sorted_services():
        own = service.namespace == namespace
        for port in sorted(filter(is_tcp, service.ports), key=lambda p: (p.port, p.name)):
            vhost = _outbound_virtual_host(_key(service, port, cluster_domain, own))
            message = vhost.message
            if any(d in claimed for d in vhost.domains):
                message = _without_claimed(vhost, claimed, warnings)
                if message is None:
                    continue
            virtual_hosts.append(message)
            for d in message.domains:
                claimed[d] = vhost.owner
    config = route_pb2.RouteConfiguration(name=contract.ROUTE_OUTBOUND)
    config.virtual_hosts.extend(virtual_hosts)
    return config, warnings


def _without_claimed(vhost: _VirtualHost, claimed: dict[str, str], warnings: list[str]) -> Any:
    kept = [d for d in vhost.domains if d not in claimed]
    for d in vhost.domains:
        if d in claimed:
            warnings.append(
                f"route {contract.ROUTE_OUTBOUND!r}: domain {d!r} is claimed by both "
                f"{claimed[d]} and {vhost.owner}; kept for {claimed[d]} only"
            )
    if not kept:
        warnings.append(
            f"route {contract.ROUTE_OUTBOUND!r}: virtual host {vhost.message.name!r} of "
            f"{vhost.owner} dropped: every one of its domains is claimed by another"
        )
        return None
    return _virtual_host_message(vhost.message.name, kept, vhost.message.routes[0].route.cluster)


@lru_cache(maxsize=256)
def inbound_route_config(app_port: int) -> Any:
    """The inbound RouteConfiguration: everything to the workload's own port."""
    return route_pb2.RouteConfiguration(
        name=contract.ROUTE_INBOUND,
        virtual_hosts=[
            _virtual_host_message(
                f"inbound|http|{app_port}", ["*"], contract.inbound_cluster_name(app_port)
            )
        ],
    )


def cache_info() -> _CacheInfo:
    return _outbound_virtual_host.cache_info()


def cache_clear() -> None:
    _outbound_virtual_host.cache_clear()
    inbound_route_config.cache_clear()
