import pytest

from pydp.upstream.hosts import EdsHealth, Host, Locality
from pydp.upstream.lb_base import LbContext, LbPolicy
from pydp.upstream.priority import build_host_sets

from .builders import assignment, balancer, endpoint, label, pick_counts

EDF_POLICIES = [LbPolicy.ROUND_ROBIN, LbPolicy.LEAST_REQUEST]
ALL_POLICIES = list(LbPolicy)


def test_round_robin_cycles_in_order_from_a_random_start() -> None:
    lb, _ = balancer(LbPolicy.ROUND_ROBIN, assignment([endpoint(i) for i in range(4)]))
    picks = [lb.choose_host() for _ in range(8)]
    labels = [h.label for h in picks if h is not None]
    first = int(labels[0].split(".")[3].split(":")[0])
    assert labels == [label((first + i) % 4) for i in range(8)]


def test_round_robin_start_depends_on_the_seed() -> None:
    la = assignment([endpoint(i) for i in range(16)])
    starts = set()
    for seed in range(8):
        lb, _ = balancer(LbPolicy.ROUND_ROBIN, la, seed=seed)
        host = lb.choose_host()
        assert host is not None
        starts.add(host.label)
    assert len(starts) > 1


def test_weighted_round_robin_is_exact_over_a_cycle() -> None:
    la = assignment([endpoint(0, weight=1), endpoint(1, weight=2), endpoint(2, weight=5)])
    lb, _ = balancer(LbPolicy.ROUND_ROBIN, la)
    counts = pick_counts(lb, 800)
    assert counts == {label(0): 100, label(1): 200, label(2): 500}


def test_weighted_round_robin_interleaves() -> None:
    la = assignment([endpoint(0, weight=1), endpoint(1, weight=3)])
    lb, _ = balancer(LbPolicy.ROUND_ROBIN, la)
    window = [lb.choose_host() for _ in range(4)]
    assert sorted(h.label for h in window if h) == [label(0), label(1), label(1), label(1)]


@pytest.mark.parametrize("policy", [LbPolicy.LEAST_REQUEST, LbPolicy.RANDOM])
def test_unweighted_policies_spread_evenly(policy: LbPolicy) -> None:
    lb, _ = balancer(policy, assignment([endpoint(i) for i in range(4)]))
    counts = pick_counts(lb, 20000)
    assert set(counts) == {label(i) for i in range(4)}
    for count in counts.values():
        assert abs(count - 5000) < 400  # within 8%


def test_random_ignores_weights_as_envoy_does() -> None:
    la = assignment([endpoint(0, weight=1), endpoint(1, weight=9)])
    lb, _ = balancer(LbPolicy.RANDOM, la)
    counts = pick_counts(lb, 20000)
    assert abs(counts[label(0)] - 10000) < 600


def test_weighted_least_request_follows_weights_when_idle() -> None:
    la = assignment([endpoint(0, weight=1), endpoint(1, weight=3)])
    lb, _ = balancer(LbPolicy.LEAST_REQUEST, la)
    counts = pick_counts(lb, 4000)
    assert abs(counts[label(1)] / 4000 - 0.75) < 0.02


def test_weighted_least_request_divides_weight_by_active_requests() -> None:
    la = assignment([endpoint(0, weight=2), endpoint(1, weight=4)])
    lb, hosts = balancer(LbPolicy.LEAST_REQUEST, la)
    hosts[1].active_requests = 3  # effective weight 4 / 4 = 1 against 2 / 1 = 2
    counts = pick_counts(lb, 3000)
    assert counts[label(0)] > 1.7 * counts[label(1)]


def test_active_request_bias_zero_is_plain_weighted_round_robin() -> None:
    la = assignment([endpoint(0, weight=2), endpoint(1, weight=4)])
    lb, hosts = balancer(LbPolicy.LEAST_REQUEST, la, active_request_bias=0.0)
    hosts[1].active_requests = 50
    counts = pick_counts(lb, 600)
    assert counts == {label(0): 200, label(1): 400}


def test_least_request_prefers_idle_hosts() -> None:
    la = assignment([endpoint(i) for i in range(4)])
    lb, hosts = balancer(LbPolicy.LEAST_REQUEST, la)
    for host in hosts[1:]:
        host.active_requests = 5
    counts = pick_counts(lb, 8000)
    # P2C picks the idle host unless both samples miss it: 1 - (3/4)**2 = 7/16.
    assert abs(counts[label(0)] / 8000 - 7 / 16) < 0.03


def test_least_request_full_scan_always_finds_the_idle_host() -> None:
    la = assignment([endpoint(i) for i in range(5)])
    lb, hosts = balancer(LbPolicy.LEAST_REQUEST, la, full_scan=True)
    for host in hosts:
        host.active_requests = 2
    hosts[3].active_requests = 0
    assert pick_counts(lb, 200) == {label(3): 200}


def test_least_request_full_scan_breaks_ties_uniformly() -> None:
    lb, _ = balancer(
        LbPolicy.LEAST_REQUEST, assignment([endpoint(i) for i in range(3)]), full_scan=True
    )
    counts = pick_counts(lb, 9000)
    for count in counts.values():
        assert abs(count - 3000) < 300


def test_more_choices_pick_the_idle_host_more_often() -> None:
    la = assignment([endpoint(i) for i in range(8)])
    two, hosts2 = balancer(LbPolicy.LEAST_REQUEST, la)
    four, hosts4 = balancer(LbPolicy.LEAST_REQUEST, la, choice_count=4)
    for hosts in (hosts2, hosts4):
        for host in hosts[1:]:
            host.active_requests = 1
    assert pick_counts(four, 4000)[label(0)] > pick_counts(two, 4000)[label(0)] * 1.5


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_unhealthy_hosts_are_skipped(policy: LbPolicy) -> None:
    eps = [endpoint(i) for i in range(4)] + [endpoint(4, health=EdsHealth.UNHEALTHY)]
    la = assignment(eps)
    lb, hosts = balancer(policy, la)
    hosts[0].ejected = True
    lb.refresh(build_host_sets(hosts, la, False))
    counts = pick_counts(lb, 500)
    assert set(counts) == {label(1), label(2), label(3)}


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_panic_uses_all_hosts_but_never_draining_ones(policy: LbPolicy) -> None:
    eps = [endpoint(0)] + [endpoint(i, health=EdsHealth.UNHEALTHY) for i in range(1, 4)]
    eps.append(endpoint(9, health=EdsHealth.DRAINING))
    lb, _ = balancer(policy, assignment(eps))
    counts = pick_counts(lb, 2000)
    assert set(counts) == {label(i) for i in range(4)}
    assert lb.panic_picks == 2000


@pytest.mark.parametrize("policy", [LbPolicy.ROUND_ROBIN, LbPolicy.LEAST_REQUEST, LbPolicy.RANDOM])
def test_fail_traffic_on_panic(policy: LbPolicy) -> None:
    eps = [endpoint(0)] + [endpoint(i, health=EdsHealth.UNHEALTHY) for i in range(1, 4)]
    lb, _ = balancer(policy, assignment(eps), fail_traffic_on_panic=True)
    assert lb.choose_host() is None


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_panic_threshold_zero_disables_panic(policy: LbPolicy) -> None:
    eps = [endpoint(0)] + [endpoint(i, health=EdsHealth.UNHEALTHY) for i in range(1, 4)]
    lb, _ = balancer(policy, assignment(eps), healthy_panic_threshold=0.0)
    assert pick_counts(lb, 300) == {label(0): 300}


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_no_hosts_gives_none(policy: LbPolicy) -> None:
    lb, _ = balancer(policy, assignment([]))
    assert lb.choose_host() is None
    lb2, _ = balancer(policy, assignment([endpoint(0, health=EdsHealth.DRAINING)]))
    assert lb2.choose_host() is None


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_traffic_spills_to_the_next_priority(policy: LbPolicy) -> None:
    eps = [
        endpoint(i, health=EdsHealth.HEALTHY if i < 5 else EdsHealth.UNHEALTHY) for i in range(10)
    ]
    eps += [endpoint(100 + i, priority=1) for i in range(10)]
    lb, _ = balancer(policy, assignment(eps))
    counts = pick_counts(lb, 10000)
    p1 = sum(counts.get(label(100 + i), 0) for i in range(10))
    assert abs(p1 / 10000 - 0.30) < 0.03


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_a_refresh_that_unloads_level_0_ends_its_single_source(policy: LbPolicy) -> None:
    healthy = [endpoint(i) for i in range(10)] + [endpoint(100 + i, priority=1) for i in range(10)]
    lb, _ = balancer(policy, assignment(healthy))
    assert set(pick_counts(lb, 1000)) <= {label(i) for i in range(10)}  # all on level 0
    half = [
        endpoint(i, health=EdsHealth.HEALTHY if i < 5 else EdsHealth.UNHEALTHY) for i in range(10)
    ]
    la = assignment(half + [endpoint(100 + i, priority=1) for i in range(10)])
    lb.refresh(build_host_sets([Host(e) for e in la.endpoints], la, False))
    counts = pick_counts(lb, 10000)
    p1 = sum(counts.get(label(100 + i), 0) for i in range(10))
    assert abs(p1 / 10000 - 0.30) < 0.03


@pytest.mark.parametrize("policy", [LbPolicy.ROUND_ROBIN, LbPolicy.LEAST_REQUEST, LbPolicy.RANDOM])
def test_locality_weights_split_traffic_when_enabled(policy: LbPolicy) -> None:
    a, b = Locality(zone="a"), Locality(zone="b")
    eps = [endpoint(i, zone="a") for i in range(2)] + [endpoint(10 + i, zone="b") for i in range(6)]
    la = assignment(eps, [(0, a, 3), (0, b, 1)])
    lb, _ = balancer(policy, la, locality_weighted=True)
    counts = pick_counts(lb, 8000)
    zone_a = counts.get(label(0), 0) + counts.get(label(1), 0)
    assert abs(zone_a / 8000 - 0.75) < 0.03
    plain, _ = balancer(policy, la)
    plain_a = sum(pick_counts(plain, 8000).get(label(i), 0) for i in range(2))
    assert abs(plain_a / 8000 - 0.25) < 0.03


def test_locality_weight_scales_with_locality_health() -> None:
    a, b = Locality(zone="a"), Locality(zone="b")
    eps = [endpoint(0, zone="a"), endpoint(1, zone="a", health=EdsHealth.UNHEALTHY)]
    eps += [endpoint(10, zone="b"), endpoint(11, zone="b")]
    la = assignment(eps, [(0, a, 1), (0, b, 1)])
    lb, _ = balancer(LbPolicy.ROUND_ROBIN, la, locality_weighted=True)
    counts = pick_counts(lb, 1700)
    # Zone a is half healthy: effective weight min(1, 1.4 * 0.5) = 0.7 against 1.
    assert counts[label(0)] == 700


def test_locality_without_weight_gets_nothing() -> None:
    a = Locality(zone="a")
    eps = [endpoint(0, zone="a"), endpoint(1, zone="b")]
    lb, _ = balancer(LbPolicy.ROUND_ROBIN, assignment(eps, [(0, a, 5)]), locality_weighted=True)
    assert pick_counts(lb, 50) == {label(0): 50}


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_host_predicate_reselects(policy: LbPolicy) -> None:
    lb, hosts = balancer(policy, assignment([endpoint(i) for i in range(3)]))
    avoid = {hosts[0], hosts[1]}
    context = LbContext(
        hash_key=12345 if policy in (LbPolicy.RING_HASH, LbPolicy.MAGLEV) else None,
        should_select_another_host=avoid.__contains__,
        host_selection_retry_max_attempts=50,
    )
    counts = pick_counts(lb, 20, context)
    assert counts == {label(2): 20}


def test_host_predicate_keeps_the_last_pick_when_attempts_run_out() -> None:
    lb, hosts = balancer(LbPolicy.ROUND_ROBIN, assignment([endpoint(0)]))
    context = LbContext(
        should_select_another_host=lambda h: True, host_selection_retry_max_attempts=2
    )
    assert lb.choose_host(context) is hosts[0]
