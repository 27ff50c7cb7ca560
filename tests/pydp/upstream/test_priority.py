import pytest

from pydp.upstream.hosts import EdsHealth, Host
from pydp.upstream.priority import (
    Availability,
    PriorityLoads,
    build_host_sets,
    choose_priority,
    compute_loads,
)

from .builders import assignment, endpoint, host_sets


def level_endpoints(priority: int, healthy: int, total: int, degraded: int = 0, start: int = 0):  # type: ignore[no-untyped-def]
    out = []
    for i in range(total):
        if i < healthy:
            health = EdsHealth.HEALTHY
        elif i < healthy + degraded:
            health = EdsHealth.DEGRADED
        else:
            health = EdsHealth.UNHEALTHY
        out.append(endpoint(start + i, priority=priority, health=health))
    return out


def loads_for(
    levels: list[tuple[int, int]], threshold: float = 50.0, factor: int = 140
) -> PriorityLoads:
    endpoints = []
    for p, (healthy, total) in enumerate(levels):
        endpoints += level_endpoints(p, healthy, total, start=1000 * p)
    return compute_loads(
        host_sets(assignment(endpoints, overprovisioning_factor=factor)), threshold
    )


# Envoy's documented spill-over table for two priorities with the default 1.4 factor.
@pytest.mark.parametrize(
    ("p0_healthy", "p1_healthy", "expected"),
    [
        (100, 100, (100, 0)),
        (72, 100, (100, 0)),
        (71, 100, (99, 1)),
        (50, 100, (70, 30)),
        (25, 100, (35, 65)),
        (0, 100, (0, 100)),
    ],
)
def test_spill_over_to_next_priority(
    p0_healthy: int, p1_healthy: int, expected: tuple[int, int]
) -> None:
    loads = loads_for([(p0_healthy, 100), (p1_healthy, 100)])
    assert loads.healthy == expected
    assert loads.degraded == (0, 0)
    assert loads.panic == (False, False)


def test_overprovisioning_factor_changes_the_spill() -> None:
    loads = loads_for([(80, 100), (100, 100)], factor=100)
    assert loads.healthy == (80, 20)


def test_partial_availability_is_normalized_and_rounding_goes_to_first_healthy() -> None:
    # health 14 and 70 -> total 84: 16 + 83, remainder 1 to P0; P0 alone is in panic.
    loads = loads_for([(1, 10), (5, 10)])
    assert loads.healthy == (17, 83)
    assert loads.panic == (True, False)


def test_no_panic_when_total_availability_is_full() -> None:
    loads = loads_for([(2, 10), (6, 10)])
    assert loads.healthy == (28, 72)
    assert loads.panic == (False, False)


def test_total_panic_splits_by_host_count() -> None:
    loads = loads_for([(2, 10), (3, 30)])
    assert loads.panic == (True, True)
    assert loads.healthy == (25, 75)


def test_panic_threshold_zero_sends_everything_to_p0_when_nothing_is_healthy() -> None:
    loads = loads_for([(0, 10), (0, 10)], threshold=0)
    assert loads.healthy == (100, 0)
    assert loads.panic == (False, False)


def test_degraded_hosts_take_what_healthy_ones_cannot() -> None:
    eps = level_endpoints(0, 5, 10, degraded=5)
    loads = compute_loads(host_sets(assignment(eps)), 50.0)
    assert loads.healthy == (70,)
    assert loads.degraded == (30,)


def test_envoy_documented_healthy_and_degraded_example() -> None:
    eps = level_endpoints(0, 1, 10, degraded=2)
    eps += level_endpoints(1, 2, 10, degraded=1, start=100)
    eps += level_endpoints(2, 1, 10, start=200)
    loads = compute_loads(host_sets(assignment(eps, overprovisioning_factor=100)), 0)
    assert loads.healthy == (16, 28, 14)
    assert loads.degraded == (28, 14, 0)


def test_weighted_priority_health_uses_weights() -> None:
    eps = [endpoint(0, weight=9), endpoint(1, weight=1, health=EdsHealth.UNHEALTHY)]
    eps += [endpoint(2, priority=1)]
    la = assignment(eps)
    by_count = compute_loads(host_sets(la), 50.0)
    weighted_la = type(la)(la.endpoints, la.locality_weights, 140, True)
    by_weight = compute_loads(host_sets(weighted_la), 50.0)
    assert by_count.healthy == (70, 30)
    assert by_weight.healthy == (100, 0)


def test_draining_hosts_are_left_out_of_the_arithmetic() -> None:
    eps = [endpoint(0), endpoint(1, health=EdsHealth.DRAINING)]
    (level,) = host_sets(assignment(eps))
    assert [h.label for h in level.hosts] == ["10.0.0.0:8080"]
    assert compute_loads((level,), 50.0).healthy == (100,)


def test_ejected_host_counts_as_unhealthy() -> None:
    la = assignment([endpoint(0), endpoint(1)])
    hosts = [Host(e) for e in la.endpoints]
    hosts[0].ejected = True
    (level,) = build_host_sets(hosts, la, False)
    assert level.healthy == (hosts[1],)
    assert hosts[0] in level.hosts


def test_empty_priorities_in_between_get_no_load() -> None:
    eps = level_endpoints(0, 0, 4) + level_endpoints(2, 4, 4, start=10)
    loads = compute_loads(host_sets(assignment(eps)), 50.0)
    assert loads.healthy == (0, 0, 100)


@pytest.mark.parametrize(
    ("hash_value", "expected"),
    [
        (0, (0, Availability.HEALTHY)),
        (69, (0, Availability.HEALTHY)),
        (70, (1, Availability.HEALTHY)),
        (89, (1, Availability.HEALTHY)),
        (90, (0, Availability.DEGRADED)),
        (199, (0, Availability.DEGRADED)),
    ],
)
def test_choose_priority_walks_cumulative_loads(
    hash_value: int, expected: tuple[int, Availability]
) -> None:
    loads = PriorityLoads((70, 20), (10, 0), (False, False))
    assert choose_priority(hash_value, loads) == expected
