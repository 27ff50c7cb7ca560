"""What a resource needs from other xDS types before it can serve.

Envoy warms a cluster until its ClusterLoadAssignment (EDS) and its TLS
secrets (SDS) have arrived, and a listener until the route configurations its
HTTP connection managers name (RDS) and its secrets have arrived. The same
references decide what the client subscribes to: EDS names follow the
clusters, RDS names follow the listeners, SDS names follow both. Routes that
name clusters do not wait for them (Envoy answers 503 for an unknown cluster).
"""

from __future__ import annotations

from collections.abc import Iterator

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from api import contract
from pydp.errors import ConfigError
from pydp.xds.decode import TYPE_PREFIX, Message, unpack

Dependency = tuple[str, str]  # (type URL, resource name)

_HCM_TYPE = TYPE_PREFIX + http_connection_manager_pb2.HttpConnectionManager.DESCRIPTOR.full_name
_TLS_TYPES = {
    TYPE_PREFIX + tls_pb2.DownstreamTlsContext.DESCRIPTOR.full_name,
    TYPE_PREFIX + tls_pb2.UpstreamTlsContext.DESCRIPTOR.full_name,
}


def dependencies(type_url: str, name: str, message: Message) -> frozenset[Dependency]:
    """The resources `message` waits for, as (type URL, name) pairs."""
    if type_url == contract.TYPE_CLUSTER:
        return frozenset(_cluster_dependencies(name, message))
    if type_url == contract.TYPE_LISTENER:
        return frozenset(_listener_dependencies(name, message))
    return frozenset()


def _cluster_dependencies(name: str, cluster: Message) -> Iterator[Dependency]:
    if cluster.WhichOneof("cluster_discovery_type") == "type" and (
        cluster.type == cluster_pb2.Cluster.EDS
    ):
        yield contract.TYPE_ENDPOINT, cluster.eds_cluster_config.service_name or cluster.name
    if cluster.HasField("transport_socket"):
        yield from _secrets(f"Cluster {name}", "transport_socket", cluster.transport_socket)


def _listener_dependencies(name: str, listener: Message) -> Iterator[Dependency]:
    chains = [(f"filter_chains[{i}]", c) for i, c in enumerate(listener.filter_chains)]
    if listener.HasField("default_filter_chain"):
        chains.append(("default_filter_chain", listener.default_filter_chain))
    for path, chain in chains:
        for j, network_filter in enumerate(chain.filters):
            typed = network_filter.typed_config
            if typed.type_url != _HCM_TYPE:
                continue
            hcm = unpack(typed, _HCM_TYPE, f"Listener {name} {path}.filters[{j}]")
            if hcm.WhichOneof("route_specifier") == "rds":
                yield contract.TYPE_ROUTE, hcm.rds.route_config_name
        if chain.HasField("transport_socket"):
            yield from _secrets(
                f"Listener {name}", f"{path}.transport_socket", chain.transport_socket
            )


def _secrets(resource: str, path: str, socket: Message) -> Iterator[Dependency]:
    typed = socket.typed_config
    if typed.type_url not in _TLS_TYPES:
        return
    tls = unpack(typed, typed.type_url, f"{resource} {path}")
    common = tls.common_tls_context
    configs = list(common.tls_certificate_sds_secret_configs)
    if common.HasField("validation_context_sds_secret_config"):
        configs.append(common.validation_context_sds_secret_config)
    if common.HasField("combined_validation_context"):
        combined = common.combined_validation_context
        if combined.HasField("validation_context_sds_secret_config"):
            configs.append(combined.validation_context_sds_secret_config)
    for config in configs:
        if not config.HasField("sds_config"):
            continue  # a secret from the bootstrap, not from xDS
        if not config.sds_config.HasField("ads"):
            raise ConfigError(resource, f"{path}: sds_config", "pydp fetches secrets over ADS only")
        yield contract.TYPE_SECRET, config.name
