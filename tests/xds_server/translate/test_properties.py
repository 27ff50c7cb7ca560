"""Invariants of the translator over random small models."""

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from hypothesis import given
from hypothesis import strategies as st

from api.contract import NodeProfile
from xds_server.model import (
    Endpoint,
    EndpointPort,
    EndpointSlice,
    Model,
    Service,
    ServicePort,
)
from xds_server.resources import Resources
from xds_server.translate import cache_clear, translate_node, translate_shared

NAMESPACES = ("a", "b", "c")
NAMES = ("x", "y", "z")
PORT_NAMES = ("", "http", "grpc", "h2c-x", "tcp")

service_ports = st.builds(
    ServicePort,
    port=st.sampled_from((80, 81, 8080)),
    name=st.sampled_from(PORT_NAMES),
    protocol=st.sampled_from(("TCP", "TCP", "UDP")),
    app_protocol=st.sampled_from((None, "http2", "http", "kubernetes.io/h2c")),
)
services = st.builds(
    Service,
    namespace=st.sampled_from(NAMESPACES),
    name=st.sampled_from(NAMES),
    ports=st.lists(service_ports, max_size=3).map(tuple),
    cluster_ip=st.sampled_from((None, "10.96.0.1", "10.96.0.2", "fd00::1", "None")),
)
endpoints = st.builds(
    Endpoint,
    addresses=st.lists(
        st.sampled_from(("10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::2")), min_size=1, max_size=2
    ).map(tuple),
    ready=st.booleans(),
    serving=st.booleans(),
    terminating=st.booleans(),
    zone=st.sampled_from((None, "z1", "z2")),
    node_name=st.sampled_from((None, "n1")),
)
slices = st.builds(
    EndpointSlice,
    namespace=st.sampled_from(NAMESPACES),
    name=st.sampled_from(("s1", "s2")),
    service_name=st.sampled_from(NAMES),
    ports=st.lists(
        st.builds(EndpointPort, port=st.integers(1, 65535), name=st.sampled_from(PORT_NAMES)),
        max_size=2,
    ).map(tuple),
    endpoints=st.lists(endpoints, max_size=3).map(tuple),
)
inputs = st.tuples(
    st.lists(services, max_size=6),
    st.lists(slices, max_size=4),
    st.sampled_from(NAMESPACES),
)


def _hcm_route_names(resources: Resources) -> list[str]:
    names = []
    for listener in resources.listeners.values():
        for chain in listener.filter_chains:
            for network_filter in chain.filters:
                hcm = hcm_pb2.HttpConnectionManager()
                assert network_filter.typed_config.Unpack(hcm)
                names.append(hcm.rds.route_config_name)
    return names


def _wire(resources: Resources) -> dict[str, dict[str, bytes]]:
    return {
        type_url: {name: m.SerializeToString(deterministic=True) for name, m in by_name.items()}
        for type_url, by_name in resources.by_type().items()
    }


def _route_clusters(route_config: Any) -> list[str]:
    return [route.route.cluster for vh in route_config.virtual_hosts for route in vh.routes]


@given(inputs)
def test_translation_invariants(data: tuple[list[Service], list[EndpointSlice], str]) -> None:
    service_list, slice_list, namespace = data
    model = Model.build(service_list, slice_list)
    profile = NodeProfile(namespace)
    shared = translate_shared(model)
    node = translate_node(model, profile)
    everything = shared.merged(node)  # raises on a name defined twice

    # Every route's cluster exists.
    for route_config in everything.routes.values():
        for cluster in _route_clusters(route_config):
            assert cluster in everything.clusters
    # Every listener's RDS name exists.
    for route_name in _hcm_route_names(everything):
        assert route_name in everything.routes
    # EDS clusters and assignments correspond one to one, under the same name.
    eds = {
        name
        for name, cluster in everything.clusters.items()
        if cluster.type == cluster_pb2.Cluster.EDS
    }
    assert eds == set(everything.endpoints)
    for name in eds:
        assert everything.clusters[name].eds_cluster_config.service_name == name
        assert everything.endpoints[name].cluster_name == name
    # One cluster per distinct TCP port of each Service.
    expected = {
        (s.namespace, s.name, p.port)
        for s in model.services.values()
        for p in s.ports
        if p.protocol == "TCP"
    }
    assert len(eds) == len(expected)
    # Within a route configuration, domains and virtual host names are unique and non-empty.
    for route_config in everything.routes.values():
        domains = [d for vh in route_config.virtual_hosts for d in vh.domains]
        assert len(domains) == len(set(domains))
        names = [vh.name for vh in route_config.virtual_hosts]
        assert len(names) == len(set(names))
        assert all(len(vh.domains) > 0 for vh in route_config.virtual_hosts)
    # Every Service TCP port is reachable by its FQDN.
    outbound = everything.routes["outbound"]
    fqdn_domains = {d for vh in outbound.virtual_hosts for d in vh.domains}
    for ns, name, port in expected:
        assert f"{name}.{ns}.svc.cluster.local:{port}" in fqdn_domains

    # Deterministic: the same world given in another order gives the same bytes, even
    # when built afresh rather than from the memos.
    again = Model.build(reversed(service_list), reversed(slice_list))
    if again.services == model.services:
        cache_clear()
        assert _wire(translate_shared(again).merged(translate_node(again, profile))) == _wire(
            everything
        )
    assert translate_node(model, profile).warnings == node.warnings
