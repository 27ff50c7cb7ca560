"""Priority levels: host sets per priority, the load each level gets, and panic mode.

Theory of operation (Envoy's `LoadBalancerBase`):

- A level's *availability* is `min(100, overprovisioning * healthy / hosts)`
  (integer arithmetic, overprovisioning in percent, default 140), computed
  separately for healthy and for degraded hosts; with `weighted_priority_health`
  the counts are sums of host weights. Excluded (draining) hosts do not count.
- The *normalized total availability* is the sum over levels of healthy plus
  degraded availability, capped at 100. Load (100 percent) is handed out level
  by level: each gets `min(remaining, availability * 100 / total)`, first to
  healthy hosts, then what is left to degraded hosts; rounding leftovers go to
  the first level with healthy (else degraded) availability. So with the
  default factor a level that is at least 1/1.4 = 71.4 percent healthy keeps all
  the traffic, and below that the shortfall spills to the next level.
- A level is in *panic* when its (healthy + degraded) share of hosts, in plain
  percent, is below the panic threshold (default 50), unless the total
  availability is 100. In panic a level balances over all its hosts. When every
  level is in panic, load is split by host counts instead.
- A pick draws `hash % 100 + 1` and walks the cumulative healthy loads, then
  the degraded loads.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydp.upstream.hosts import Health, Host, LoadAssignment, Locality


class Availability(enum.Enum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"


@dataclass(frozen=True)
class HostSet:
    """The hosts of one priority level, by health and by locality, at one moment."""

    priority: int
    hosts: tuple[Host, ...]
    healthy: tuple[Host, ...]
    degraded: tuple[Host, ...]
    localities: tuple[Locality, ...]
    hosts_per_locality: tuple[tuple[Host, ...], ...]
    healthy_per_locality: tuple[tuple[Host, ...], ...]
    degraded_per_locality: tuple[tuple[Host, ...], ...]
    locality_weights: tuple[int, ...] | None
    overprovisioning_factor: int
    weighted_priority_health: bool = False


def build_host_sets(
    hosts: Iterable[Host], assignment: LoadAssignment, locality_weighted: bool
) -> tuple[HostSet, ...]:
    """Host sets for priorities 0..max present; excluded hosts are left out entirely."""
    by_priority: dict[int, list[Host]] = {}
    for host in hosts:
        if host.health is not Health.EXCLUDED:
            by_priority.setdefault(host.priority, []).append(host)
    top = max((e.priority for e in assignment.endpoints), default=-1)
    return tuple(
        _host_set(p, by_priority.get(p, []), assignment, locality_weighted) for p in range(top + 1)
    )


def _host_set(
    priority: int, hosts: list[Host], assignment: LoadAssignment, locality_weighted: bool
) -> HostSet:
    per_locality: dict[Locality, list[Host]] = {}
    for host in hosts:
        per_locality.setdefault(host.locality, []).append(host)
    localities = tuple(sorted(per_locality))
    grouped = tuple(tuple(per_locality[loc]) for loc in localities)
    weights = (
        tuple(assignment.locality_weight(priority, loc) for loc in localities)
        if locality_weighted
        else None
    )
    return HostSet(
        priority=priority,
        hosts=tuple(hosts),
        healthy=tuple(h for h in hosts if h.health is Health.HEALTHY),
        degraded=tuple(h for h in hosts if h.health is Health.DEGRADED),
        localities=localities,
        hosts_per_locality=grouped,
        healthy_per_locality=tuple(
            tuple(h for h in group if h.health is Health.HEALTHY) for group in grouped
        ),
        degraded_per_locality=tuple(
            tuple(h for h in group if h.health is Health.DEGRADED) for group in grouped
        ),
        locality_weights=weights,
        overprovisioning_factor=assignment.overprovisioning_factor,
        weighted_priority_health=assignment.weighted_priority_health,
    )


@dataclass(frozen=True)
class PriorityLoads:
    """Percent of traffic per level for healthy and degraded hosts, and panic flags."""

    healthy: tuple[int, ...]
    degraded: tuple[int, ...]
    panic: tuple[bool, ...]
    health: tuple[int, ...] = ()
    degraded_availability: tuple[int, ...] = ()


def _availability(host_set: HostSet) -> tuple[int, int]:
    if host_set.weighted_priority_health:
        total = sum(h.weight for h in host_set.hosts)
        healthy = sum(h.weight for h in host_set.healthy)
        degraded = sum(h.weight for h in host_set.degraded)
    else:
        total = len(host_set.hosts)
        healthy = len(host_set.healthy)
        degraded = len(host_set.degraded)
    if total == 0:
        return 0, 0
    factor = host_set.overprovisioning_factor
    return min(100, factor * healthy // total), min(100, factor * degraded // total)


def _distribute(
    availability: Sequence[int], total_load: int, normalized: int
) -> tuple[list[int], int, int]:
    first = -1
    loads: list[int] = []
    for i, a in enumerate(availability):
        if first < 0 and a > 0:
            first = i
        load = min(total_load, a * 100 // normalized)
        loads.append(load)
        total_load -= load
    return loads, first, total_load


def in_panic(host_set: HostSet, panic_threshold: float) -> bool:
    """Whether the level's healthy plus degraded share of hosts is below the threshold."""
    count = len(host_set.hosts)
    if count == 0:
        return panic_threshold > 0.0
    healthy = 100.0 * len(host_set.healthy) / count
    degraded = 100.0 * len(host_set.degraded) / count
    return healthy + degraded < panic_threshold


def compute_loads(host_sets: Sequence[HostSet], panic_threshold: float) -> PriorityLoads:
    """Envoy's per-priority load and panic computation."""
    n = len(host_sets)
    pairs = [_availability(hs) for hs in host_sets]
    health = [p[0] for p in pairs]
    degraded = [p[1] for p in pairs]
    normalized = min(100, sum(health) + sum(degraded))
    healthy_load = [0] * n
    degraded_load = [0] * n
    if normalized > 0:
        healthy_load, first_healthy, remaining = _distribute(health, 100, normalized)
        degraded_load, first_degraded, remaining = _distribute(degraded, remaining, normalized)
        if remaining:
            if first_healthy >= 0:
                healthy_load[first_healthy] += remaining
            else:
                degraded_load[first_degraded] += remaining
    panic = [False] * n
    if panic_threshold == 0 and normalized == 0:
        if n:
            healthy_load[0] = 100
    elif n:
        panic = [normalized != 100 and in_panic(hs, panic_threshold) for hs in host_sets]
        if all(panic):
            healthy_load, degraded_load = _total_panic_loads(host_sets)
        elif normalized == 0:
            # Rounding left no availability yet no level is in panic (a tiny
            # overprovisioning factor). Envoy keeps its previous loads and, on a
            # new balancer, falls through to P=0; say so rather than rely on it.
            healthy_load[0] = 100
    return PriorityLoads(
        tuple(healthy_load), tuple(degraded_load), tuple(panic), tuple(health), tuple(degraded)
    )


def _total_panic_loads(host_sets: Sequence[HostSet]) -> tuple[list[int], list[int]]:
    n = len(host_sets)
    total = sum(len(hs.hosts) for hs in host_sets)
    healthy = [0] * n
    if total == 0:
        healthy[0] = 100
        return healthy, [0] * n
    remaining = 100
    first = -1
    for i, hs in enumerate(host_sets):
        if first < 0 and hs.hosts:
            first = i
        healthy[i] = 100 * len(hs.hosts) // total
        remaining -= healthy[i]
    healthy[first] += remaining
    return healthy, [0] * n


def choose_priority(hash_value: int, loads: PriorityLoads) -> tuple[int, Availability]:
    """The level (index) and availability a pick with this hash goes to."""
    point = hash_value % 100 + 1
    aggregate = 0
    for i, load in enumerate(loads.healthy):
        aggregate += load
        if point <= aggregate:
            return i, Availability.HEALTHY
    for i, load in enumerate(loads.degraded):
        aggregate += load
        if point <= aggregate:
            return i, Availability.DEGRADED
    return 0, Availability.HEALTHY
