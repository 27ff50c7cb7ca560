import random
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.extensions.load_balancing_policies.least_request.v3 import least_request_pb2
from envoy.extensions.load_balancing_policies.maglev.v3 import maglev_pb2
from envoy.extensions.load_balancing_policies.ring_hash.v3 import ring_hash_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import any_pb2

from pydp.errors import ConfigError
from pydp.upstream.breakers import RoutingPriority
from pydp.upstream.cluster import (
    HTTP_PROTOCOL_OPTIONS,
    Discovery,
    UpstreamProtocol,
    compile_cluster,
)
from pydp.upstream.cluster_state import UpstreamCluster
from pydp.upstream.hosts import EdsHealth, compile_load_assignment
from pydp.upstream.lb_base import HashFunction, LbPolicy
from pydp.upstream.outlier import Failure
from pydp.upstream.retry import RetryPolicy, RetryStatus

Cluster = cluster_pb2.Cluster
NAME = "outbound|80||a.b.svc.cluster.local"


def eds(**fields: Any) -> Any:
    return Cluster(name=NAME, type=Cluster.EDS, **fields)


def static(*addresses: str, **fields: Any) -> Any:
    cluster = Cluster(name=NAME, type=Cluster.STATIC, **fields)
    group = cluster.load_assignment.endpoints.add()
    for address in addresses:
        socket = group.lb_endpoints.add().endpoint.address.socket_address
        socket.address, socket.port_value = address, 8080
    return cluster


def packed(message: Any) -> Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def http_options(**fields: Any) -> dict[str, Any]:
    return {HTTP_PROTOCOL_OPTIONS: packed(http_protocol_options_pb2.HttpProtocolOptions(**fields))}


def test_eds_defaults() -> None:
    config = compile_cluster(eds())
    assert config.discovery is Discovery.EDS
    assert config.eds_service_name == NAME
    assert config.connect_timeout == 5.0
    assert config.lb.policy is LbPolicy.ROUND_ROBIN
    assert config.lb.healthy_panic_threshold == 50.0
    assert config.protocol is UpstreamProtocol.HTTP1
    assert config.outlier is None
    assert config.breakers.for_priority(RoutingPriority.DEFAULT).max_requests == 1024


def test_eds_service_name_and_timeout() -> None:
    config = compile_cluster(
        eds(
            eds_cluster_config={"service_name": "svc"},
            connect_timeout={"seconds": 1, "nanos": 500_000_000},
        )
    )
    assert config.eds_service_name == "svc"
    assert config.connect_timeout == 1.5


def test_static_inline_assignment() -> None:
    config = compile_cluster(static("10.0.0.1", "10.0.0.2"))
    assert config.discovery is Discovery.STATIC
    assert config.load_assignment is not None
    assert [e.address for e in config.load_assignment.endpoints] == ["10.0.0.1", "10.0.0.2"]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Cluster.ROUND_ROBIN, LbPolicy.ROUND_ROBIN),
        (Cluster.LEAST_REQUEST, LbPolicy.LEAST_REQUEST),
        (Cluster.RANDOM, LbPolicy.RANDOM),
        (Cluster.RING_HASH, LbPolicy.RING_HASH),
        (Cluster.MAGLEV, LbPolicy.MAGLEV),
    ],
)
def test_lb_policies(policy: int, expected: LbPolicy) -> None:
    assert compile_cluster(eds(lb_policy=policy)).lb.policy is expected


def test_common_lb_settings() -> None:
    config = compile_cluster(
        eds(
            common_lb_config={
                "healthy_panic_threshold": {"value": 25.4},
                "locality_weighted_lb_config": {},
                "consistent_hashing_lb_config": {"use_hostname_for_hashing": True},
            },
        )
    )
    lb = config.lb
    assert lb.healthy_panic_threshold == 25.0
    assert lb.locality_weighted and lb.use_hostname_for_hashing and not lb.fail_traffic_on_panic
    zone_aware = {"zone_aware_lb_config": {"fail_traffic_on_panic": True}}
    lb = compile_cluster(eds(common_lb_config=zone_aware)).lb
    assert lb.fail_traffic_on_panic and not lb.locality_weighted


def test_ring_hash_settings() -> None:
    ring = {
        "minimum_ring_size": {"value": 64},
        "hash_function": Cluster.RingHashLbConfig.MURMUR_HASH_2,
    }
    lb = compile_cluster(eds(lb_policy=Cluster.RING_HASH, ring_hash_lb_config=ring)).lb
    assert (lb.minimum_ring_size, lb.maximum_ring_size) == (64, 8388608)
    assert lb.hash_function is HashFunction.MURMUR_HASH_2


def test_least_request_and_maglev_settings() -> None:
    least = {"choice_count": {"value": 3}, "active_request_bias": {"default_value": 0.5}}
    lb = compile_cluster(eds(lb_policy=Cluster.LEAST_REQUEST, least_request_lb_config=least)).lb
    assert (lb.choice_count, lb.active_request_bias) == (3, 0.5)
    maglev = {"table_size": {"value": 7}}
    assert (
        compile_cluster(eds(lb_policy=Cluster.MAGLEV, maglev_lb_config=maglev)).lb.table_size == 7
    )


def test_load_balancing_policy_extensions_first_known_wins() -> None:
    lbp = Cluster().load_balancing_policy
    unknown = lbp.policies.add().typed_extension_config
    unknown.name, unknown.typed_config.type_url = "x", "type.googleapis.com/example.Unknown"
    entry = lbp.policies.add().typed_extension_config
    entry.typed_config.Pack(
        least_request_pb2.LeastRequest(choice_count={"value": 4}, selection_method=1)
    )
    lbp.policies.add().typed_extension_config.typed_config.Pack(maglev_pb2.Maglev())
    config = compile_cluster(eds(load_balancing_policy=lbp))
    assert config.lb.policy is LbPolicy.LEAST_REQUEST
    assert config.lb.choice_count == 4 and config.lb.full_scan


def test_ring_hash_extension() -> None:
    lbp = Cluster().load_balancing_policy
    lbp.policies.add().typed_extension_config.typed_config.Pack(
        ring_hash_pb2.RingHash(
            hash_function=ring_hash_pb2.RingHash.MURMUR_HASH_2, maximum_ring_size={"value": 2048}
        )
    )
    lb = compile_cluster(eds(load_balancing_policy=lbp)).lb
    assert (lb.policy, lb.hash_function, lb.maximum_ring_size) == (
        LbPolicy.RING_HASH,
        HashFunction.MURMUR_HASH_2,
        2048,
    )


@pytest.mark.parametrize(
    ("options", "protocol"),
    [
        ({"explicit_http_config": {"http2_protocol_options": {}}}, UpstreamProtocol.HTTP2),
        ({"explicit_http_config": {"http_protocol_options": {}}}, UpstreamProtocol.HTTP1),
        ({"use_downstream_protocol_config": {}}, UpstreamProtocol.USE_DOWNSTREAM),
    ],
)
def test_typed_protocol_options(options: dict[str, Any], protocol: UpstreamProtocol) -> None:
    config = compile_cluster(eds(typed_extension_protocol_options=http_options(**options)))
    assert config.protocol is protocol


def test_legacy_http2_and_common_options() -> None:
    config = compile_cluster(
        eds(
            http2_protocol_options={"max_concurrent_streams": {"value": 10}},
            common_http_protocol_options={
                "idle_timeout": {"seconds": 60},
                "max_requests_per_connection": {"value": 5},
            },
        )
    )
    assert config.protocol is UpstreamProtocol.HTTP2
    assert config.http2_options.max_concurrent_streams.value == 10
    assert config.idle_timeout == 60.0
    assert config.max_requests_per_connection == 5


def test_circuit_breakers_and_outlier_detection() -> None:
    config = compile_cluster(
        eds(
            circuit_breakers={"thresholds": [{"max_requests": {"value": 3}}]},
            outlier_detection={"consecutive_5xx": {"value": 2}},
        )
    )
    assert config.breakers.for_priority(RoutingPriority.DEFAULT).max_requests == 3
    assert config.outlier is not None and config.outlier.consecutive_5xx == 2


REJECTED: list[tuple[Any, str, str]] = [
    (Cluster(name=NAME, type=Cluster.LOGICAL_DNS), "type", "unsupported cluster type LOGICAL_DNS"),
    (Cluster(name=NAME, type=Cluster.STRICT_DNS), "type", "unsupported cluster type STRICT_DNS"),
    (
        Cluster(name=NAME, type=Cluster.ORIGINAL_DST),
        "type",
        "unsupported cluster type ORIGINAL_DST",
    ),
    (
        Cluster(name=NAME, cluster_type={"name": "envoy.clusters.aggregate"}),
        "cluster_type",
        "custom",
    ),
    (eds(lb_policy=Cluster.CLUSTER_PROVIDED), "lb_policy", "CLUSTER_PROVIDED"),
    (eds(health_checks=[{"timeout": {"seconds": 1}}]), "health_checks", "not supported"),
    (
        eds(lb_subset_config={"subset_selectors": [{"keys": ["v"]}]}),
        "lb_subset_config",
        "not supported",
    ),
    (eds(connect_timeout={}), "connect_timeout", "greater than 0"),
    (eds(load_assignment={"cluster_name": "x"}), "load_assignment", "EDS"),
    (
        eds(lb_policy=Cluster.MAGLEV, maglev_lb_config={"table_size": {"value": 100}}),
        "maglev_lb_config.table_size",
        "prime",
    ),
    (
        eds(
            ring_hash_lb_config={
                "minimum_ring_size": {"value": 10},
                "maximum_ring_size": {"value": 5},
            }
        ),
        "ring_hash_lb_config.minimum_ring_size",
        "minimum_ring_size (10) > maximum_ring_size (5)",
    ),
    (
        eds(ring_hash_lb_config={"minimum_ring_size": {"value": 9_000_000}}),
        "ring_hash_lb_config.minimum_ring_size",
        "at most",
    ),
    (
        eds(least_request_lb_config={"choice_count": {"value": 1}}),
        "least_request_lb_config.choice_count",
        "at least 2",
    ),
    (
        eds(least_request_lb_config={"slow_start_config": {}}),
        "least_request_lb_config.slow_start_config",
        "not supported",
    ),
    (
        eds(round_robin_lb_config={"slow_start_config": {}}),
        "round_robin_lb_config.slow_start_config",
        "not supported",
    ),
    (
        eds(common_lb_config={"healthy_panic_threshold": {"value": 120}}),
        "common_lb_config.healthy_panic_threshold",
        "between",
    ),
    (
        eds(
            common_lb_config={
                "consistent_hashing_lb_config": {"hash_balance_factor": {"value": 150}}
            }
        ),
        "common_lb_config.consistent_hashing_lb_config.hash_balance_factor",
        "not supported",
    ),
    (
        eds(common_lb_config={"override_host_status": {}}),
        "common_lb_config.override_host_status",
        "not supported",
    ),
    (eds(upstream_bind_config={}), "upstream_bind_config", "not supported"),
    (eds(filters=[{"name": "f"}]), "filters", "not supported"),
    (eds(lrs_server={}), "lrs_server", "not supported"),
    (
        eds(
            typed_extension_protocol_options={
                "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions": any_pb2.Any()
            }
        ),
        "typed_extension_protocol_options[envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions]",
        "unsupported",
    ),
    (
        eds(typed_extension_protocol_options=http_options(auto_config={})),
        f"typed_extension_protocol_options[{HTTP_PROTOCOL_OPTIONS}].auto_config",
        "not supported",
    ),
    (
        eds(
            typed_extension_protocol_options=http_options(
                explicit_http_config={"http3_protocol_options": {}}
            )
        ),
        f"typed_extension_protocol_options[{HTTP_PROTOCOL_OPTIONS}].explicit_http_config.http3_protocol_options",
        "unsupported",
    ),
    (
        eds(common_http_protocol_options={"max_stream_duration": {"seconds": 1}}),
        "common_http_protocol_options.max_stream_duration",
        "not supported",
    ),
    (
        eds(outlier_detection={"split_external_local_origin_errors": True}),
        "outlier_detection.split_external_local_origin_errors",
        "not supported",
    ),
    (
        eds(circuit_breakers={"thresholds": [{"max_connection_pools": {"value": 1}}]}),
        "circuit_breakers.thresholds[0].max_connection_pools",
        "not supported",
    ),
    (
        eds(load_balancing_policy={"policies": [{"typed_extension_config": {"name": "x"}}]}),
        "load_balancing_policy",
        "supported",
    ),
]


@pytest.mark.parametrize(("cluster", "field", "problem"), REJECTED)
def test_unsupported_config_is_rejected(cluster: Any, field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_cluster(cluster)
    assert info.value.field == field
    assert info.value.resource == f"cluster {NAME}"
    assert problem in str(info.value)


def test_error_message_names_cluster_and_field() -> None:
    with pytest.raises(
        ConfigError,
        match=(
            r"^cluster outbound\|80\|\|a\.b\.svc\.cluster\.local: "
            r"type: unsupported cluster type LOGICAL_DNS$"
        ),
    ):
        compile_cluster(Cluster(name=NAME, type=Cluster.LOGICAL_DNS))


def test_static_endpoint_errors_name_the_path() -> None:
    cluster = static("not-an-ip")
    with pytest.raises(ConfigError) as info:
        compile_cluster(cluster)
    assert (
        info.value.field
        == "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address"
    )


def cla(*groups: tuple[int, list[tuple[str, int]]], **policy: Any) -> Any:
    out = endpoint_pb2.ClusterLoadAssignment(cluster_name=NAME)
    for priority, endpoints in groups:
        group = out.endpoints.add(priority=priority)
        for address, health in endpoints:
            lb_endpoint = group.lb_endpoints.add(health_status=health)
            lb_endpoint.endpoint.address.socket_address.address = address
            lb_endpoint.endpoint.address.socket_address.port_value = 80
    if policy:
        out.policy.CopyFrom(endpoint_pb2.ClusterLoadAssignment.Policy(**policy))
    return out


def test_compile_load_assignment_health_and_policy() -> None:
    H = health_check_pb2
    la = compile_load_assignment(
        cla(
            (0, [("10.0.0.1", H.UNKNOWN), ("10.0.0.2", H.HEALTHY), ("10.0.0.3", H.DEGRADED)]),
            (1, [("10.0.0.4", H.UNHEALTHY), ("10.0.0.5", H.DRAINING), ("10.0.0.6", H.TIMEOUT)]),
            overprovisioning_factor={"value": 200},
        ),
        "eds x",
    )
    assert [e.health for e in la.endpoints] == [
        EdsHealth.HEALTHY,
        EdsHealth.HEALTHY,
        EdsHealth.DEGRADED,
        EdsHealth.UNHEALTHY,
        EdsHealth.DRAINING,
        EdsHealth.UNHEALTHY,
    ]
    assert [e.priority for e in la.endpoints] == [0, 0, 0, 1, 1, 1]
    assert la.overprovisioning_factor == 200


def test_compile_load_assignment_weights_and_metadata() -> None:
    out = cla((0, [("10.0.0.1", 0)]))
    group = out.endpoints[0]
    group.load_balancing_weight.value = 7
    group.locality.zone = "z1"
    group.lb_endpoints[0].load_balancing_weight.value = 3
    group.lb_endpoints[0].metadata.filter_metadata["envoy.lb"].update({"hash_key": "k1"})
    la = compile_load_assignment(out, "eds x")
    (e,) = la.endpoints
    assert (e.weight, e.locality.zone, e.hash_key) == (3, "z1", "k1")
    assert la.locality_weight(0, e.locality) == 7


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda c: c.endpoints[0].lb_endpoints[0].load_balancing_weight.SetInParent(),
            "endpoints[0].lb_endpoints[0].load_balancing_weight",
        ),
        (lambda c: setattr(c.endpoints[0], "priority", 129), "endpoints[0].priority"),
        (lambda c: c.policy.drop_overloads.add(category="x"), "policy.drop_overloads"),
        (lambda c: c.named_endpoints["a"].SetInParent(), "named_endpoints"),
        (
            lambda c: (
                c.endpoints[0]
                .lb_endpoints[0]
                .endpoint.address.socket_address.__setattr__("named_port", "http")
            ),
            "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.named_port",
        ),
        (
            lambda c: (
                c.endpoints[0].lb_endpoints[0].endpoint.address.pipe.__setattr__("path", "/s")
            ),
            "endpoints[0].lb_endpoints[0].endpoint.address",
        ),
        (
            lambda c: c.endpoints[0].lb_endpoints[0].endpoint.additional_addresses.add(),
            "endpoints[0].lb_endpoints[0].endpoint.additional_addresses",
        ),
        (
            lambda c: c.policy.overprovisioning_factor.SetInParent(),
            "policy.overprovisioning_factor",
        ),
    ],
)
def test_compile_load_assignment_rejects(mutate: Any, field: str) -> None:
    out = cla((0, [("10.0.0.1", 0)]))
    mutate(out)
    with pytest.raises(ConfigError) as info:
        compile_load_assignment(out, "eds x")
    assert info.value.field == field


def test_upstream_cluster_keeps_host_state_across_updates() -> None:
    cluster = UpstreamCluster(compile_cluster(eds()), random.Random(1))
    assert not cluster.initialized
    assert cluster.choose_host() is None
    cluster.update_assignment(
        compile_load_assignment(cla((0, [("10.0.0.1", 0), ("10.0.0.2", 0)])), "x")
    )
    host = cluster.hosts[("10.0.0.1", 80)]
    cluster.on_request_start(host)
    cluster.update_assignment(compile_load_assignment(cla((0, [("10.0.0.1", 0)])), "x"))
    assert cluster.hosts[("10.0.0.1", 80)] is host
    assert host.active_requests == 1
    assert cluster.choose_host() is host
    assert cluster.stats()["membership_total"] == 1


def test_upstream_cluster_ejects_and_returns_hosts() -> None:
    config = compile_cluster(
        static("10.0.0.1", "10.0.0.2", outlier_detection={"max_ejection_percent": {"value": 50}})
    )
    cluster = UpstreamCluster(config, random.Random(1))
    bad = cluster.hosts[("10.0.0.1", 8080)]
    for _ in range(5):
        cluster.record_failure(bad, Failure.RESET, 0.0)
    assert bad.ejected
    assert {cluster.choose_host() for _ in range(10)} == {cluster.hosts[("10.0.0.2", 8080)]}
    assert cluster.stats()["outlier_detection.ejections_active"] == 1
    assert cluster.outlier_interval == 10.0
    assert cluster.tick(30.0) == [bad]
    assert {cluster.choose_host() for _ in range(10)} == set(cluster.hosts.values())


def test_upstream_cluster_retry_state_uses_cluster_breakers() -> None:
    config = compile_cluster(
        static("10.0.0.1", circuit_breakers={"thresholds": [{"max_retries": {"value": 0}}]})
    )
    cluster = UpstreamCluster(config, random.Random(1))

    state = cluster.retry_state(RetryPolicy(retry_on=frozenset({"5xx"})))
    assert state is not None
    assert state.on_response(503).status is RetryStatus.NO_OVERFLOW
    assert cluster.stats()["upstream_rq_retry_overflow"] == 1
