"""Property tests: any assignment gives a picker that never raises and picks only eligible hosts."""

import random
from typing import Any

from envoy.config.endpoint.v3 import endpoint_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from pydp.upstream.hosts import Health, Host, compile_load_assignment
from pydp.upstream.lb import create_load_balancer
from pydp.upstream.lb_base import LbConfig, LbContext, LbPolicy, PriorityAwareLb
from pydp.upstream.priority import build_host_sets, compute_loads

HEALTH_STATUSES = [0, 1, 2, 3, 4, 5]  # UNKNOWN, HEALTHY, UNHEALTHY, DRAINING, TIMEOUT, DEGRADED

endpoint_st = st.tuples(
    st.integers(0, 40),  # address suffix
    st.sampled_from(HEALTH_STATUSES),
    st.one_of(st.none(), st.integers(1, 50)),  # endpoint weight
)
group_st = st.tuples(
    st.integers(0, 4),  # priority
    st.sampled_from(["", "a", "b"]),  # zone
    st.one_of(st.none(), st.integers(1, 10)),  # locality weight
    st.lists(endpoint_st, max_size=6),
)
cla_st = st.tuples(st.lists(group_st, max_size=6), st.one_of(st.none(), st.integers(1, 300)))


def build_cla(groups: list[Any], overprovisioning: int | None) -> Any:
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name="c")
    for priority, zone, locality_weight, endpoints in groups:
        group = cla.endpoints.add(priority=priority)
        group.locality.zone = zone
        if locality_weight is not None:
            group.load_balancing_weight.value = locality_weight
        for suffix, health, weight in endpoints:
            lb_endpoint = group.lb_endpoints.add(health_status=health)
            socket = lb_endpoint.endpoint.address.socket_address
            socket.address, socket.port_value = f"10.1.0.{suffix}", 80
            if weight is not None:
                lb_endpoint.load_balancing_weight.value = weight
    if overprovisioning is not None:
        cla.policy.overprovisioning_factor.value = overprovisioning
    return cla


@settings(max_examples=150, deadline=None)
@given(
    cla=cla_st,
    policy=st.sampled_from(list(LbPolicy)),
    locality_weighted=st.booleans(),
    fail_on_panic=st.booleans(),
    threshold=st.sampled_from([0.0, 50.0, 100.0]),
    ejected=st.sets(st.integers(0, 40)),
    seed=st.integers(0, 2**32),
)
def test_picks_are_eligible_hosts_of_the_assignment(
    cla: Any,
    policy: LbPolicy,
    locality_weighted: bool,
    fail_on_panic: bool,
    threshold: float,
    ejected: set[int],
    seed: int,
) -> None:
    assignment = compile_load_assignment(build_cla(*cla), "eds c")
    config = LbConfig(
        policy=policy,
        healthy_panic_threshold=threshold,
        locality_weighted=locality_weighted,
        fail_traffic_on_panic=fail_on_panic,
        minimum_ring_size=16,
        table_size=13,
    )
    rng = random.Random(seed)
    lb = create_load_balancer(config, rng)
    assert isinstance(lb, PriorityAwareLb)
    hosts = [Host(e) for e in assignment.endpoints]
    for host in hosts:
        host.ejected = int(host.address.rsplit(".", 1)[1]) in ejected
        host.active_requests = rng.randrange(3)
    lb.refresh(build_host_sets(hosts, assignment, locality_weighted))
    for _ in range(30):
        context = LbContext(hash_key=rng.getrandbits(64)) if rng.random() < 0.5 else None
        picked = lb.choose_host(context)
        if picked is None:
            continue
        assert picked in hosts
        assert picked.health is not Health.EXCLUDED
        assert picked in lb.host_sets[picked.priority].hosts
        if picked.health is Health.UNHEALTHY:
            assert lb.loads.panic[picked.priority]


@settings(max_examples=150, deadline=None)
@given(cla=cla_st, threshold=st.sampled_from([0.0, 50.0, 100.0]))
def test_priority_loads_always_add_up_to_100(cla: Any, threshold: float) -> None:
    assignment = compile_load_assignment(build_cla(*cla), "eds c")
    host_sets = build_host_sets([Host(e) for e in assignment.endpoints], assignment, False)
    loads = compute_loads(host_sets, threshold)
    if host_sets:
        assert sum(loads.healthy) + sum(loads.degraded) == 100
        assert all(load >= 0 for load in loads.healthy + loads.degraded)
