"""Round robin, least request and random: Envoy's EDF-based load balancers.

Theory of operation (Envoy's `ZoneAwareLoadBalancerBase` / `EdfLoadBalancerBase`):

1. A 64-bit random number picks the priority level and availability
   (`priority.choose_priority`); when level 0's healthy hosts take all the
   load and no locality weighting applies (the common case: one level with
   enough healthy hosts), that is the source of every pick (`only_source`)
   and no number is drawn.
2. If that level is in panic, the pick is over all its hosts (or fails, with
   `fail_traffic_on_panic`). Otherwise, with locality weighted balancing, a
   locality is chosen by an EDF schedule over effective locality weights
   (`weight * min(1, overprovisioning * eligible / hosts)`), and the pick is over
   that locality's healthy (or degraded) hosts; else over the level's healthy
   (or degraded) hosts.
3. Within that host list: when all hosts have the same weight, round robin
   walks an index (started at a random seed), least request compares
   `choice_count` random samples (or scans all) by active requests; when weights
   differ both use an EDF schedule, least request with the dynamic weight
   `weight / (active + 1) ** active_request_bias`. Random ignores weights and
   indexes the list with the same random number that chose the priority.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence

from pydp.upstream.edf import EdfScheduler
from pydp.upstream.hosts import Host
from pydp.upstream.lb_base import LbConfig, LbContext, LbPolicy, LoadBalancer, PriorityAwareLb
from pydp.upstream.maglev import MaglevLb
from pydp.upstream.priority import Availability, HostSet, choose_priority
from pydp.upstream.ring_hash import RingHashLb


class SourceKind(enum.Enum):
    ALL = "all"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    LOCALITY_HEALTHY = "locality_healthy"
    LOCALITY_DEGRADED = "locality_degraded"

    __hash__ = object.__hash__  # identity, as RoutingPriority (sources are dict keys)


Source = tuple[int, SourceKind, int]


def source_hosts(host_set: HostSet, kind: SourceKind, locality: int) -> tuple[Host, ...]:
    if kind is SourceKind.ALL:
        return host_set.hosts
    if kind is SourceKind.HEALTHY:
        return host_set.healthy
    if kind is SourceKind.DEGRADED:
        return host_set.degraded
    if kind is SourceKind.LOCALITY_HEALTHY:
        return host_set.healthy_per_locality[locality]
    return host_set.degraded_per_locality[locality]


def effective_locality_weight(host_set: HostSet, index: int, eligible: Sequence[Host]) -> float:
    """Envoy's `effectiveLocalityWeight`: the weight scaled by the locality's availability."""
    assert host_set.locality_weights is not None
    count = len(host_set.hosts_per_locality[index])
    if count == 0:
        return 0.0
    ratio = min(1.0, host_set.overprovisioning_factor / 100.0 * len(eligible) / count)
    return host_set.locality_weights[index] * ratio


class ZoneAwareLb(PriorityAwareLb):
    """Source selection shared by the EDF-based balancers."""

    def __init__(self, config: LbConfig, rng: random.Random) -> None:
        super().__init__(config, rng)
        self.seed = self.random64()
        self._locality_schedulers: dict[tuple[int, Availability], EdfScheduler[int]] = {}
        self.only_source: Source | None = None  # set when every pick has the same source

    def refresh(self, host_sets: Sequence[HostSet]) -> None:
        super().refresh(host_sets)
        self._locality_schedulers = {}
        loads = self.loads
        self.only_source = None
        if loads.healthy and loads.healthy[0] == 100 and not loads.panic[0]:
            self.only_source = (0, SourceKind.HEALTHY, 0)
        if not self.config.locality_weighted:
            return
        for level, host_set in enumerate(self.host_sets):
            if host_set.locality_weights is None:
                continue
            for availability, groups in (
                (Availability.HEALTHY, host_set.healthy_per_locality),
                (Availability.DEGRADED, host_set.degraded_per_locality),
            ):
                scheduler: EdfScheduler[int] = EdfScheduler()
                weights = [
                    effective_locality_weight(host_set, i, group) for i, group in enumerate(groups)
                ]
                for i, weight in enumerate(weights):
                    if weight > 0:
                        scheduler.add(weight, i)
                if len(scheduler):
                    for _ in range(self.seed % len(scheduler)):
                        scheduler.pick_and_add(weights.__getitem__)
                    self._locality_schedulers[(level, availability)] = scheduler
        if (0, Availability.HEALTHY) in self._locality_schedulers:
            self.only_source = None

    def host_source(self, hash_value: int) -> Source | None:
        if self.only_source is not None:
            return self.only_source
        if not self.host_sets:
            return None
        level, availability = choose_priority(hash_value, self.loads)
        if self.loads.panic[level]:
            self.panic_picks += 1
            if self.config.fail_traffic_on_panic:
                return None
            return (level, SourceKind.ALL, 0)
        healthy = availability is Availability.HEALTHY
        if self.config.locality_weighted:
            scheduler = self._locality_schedulers.get((level, availability))
            if scheduler is not None:
                host_set = self.host_sets[level]
                groups = (
                    host_set.healthy_per_locality if healthy else host_set.degraded_per_locality
                )
                locality = scheduler.pick_and_add(
                    lambda i: effective_locality_weight(host_set, i, groups[i])
                )
                if locality is not None:
                    kind = SourceKind.LOCALITY_HEALTHY if healthy else SourceKind.LOCALITY_DEGRADED
                    return (level, kind, locality)
        return (level, SourceKind.HEALTHY if healthy else SourceKind.DEGRADED, 0)

    def hosts_of(self, source: Source) -> tuple[Host, ...]:
        level, kind, locality = source
        return source_hosts(self.host_sets[level], kind, locality)


class EdfLb(ZoneAwareLb):
    """Weighted picks by EDF schedule per host source; equal weights take a fast path."""

    def __init__(self, config: LbConfig, rng: random.Random) -> None:
        super().__init__(config, rng)
        self._schedulers: dict[Source, EdfScheduler[Host] | None] = {}

    def host_weight(self, host: Host) -> float:
        return float(host.weight)

    def refresh(self, host_sets: Sequence[HostSet]) -> None:
        super().refresh(host_sets)
        self._schedulers = {}
        self.reset_sources()

    def reset_sources(self) -> None:
        """Forget per-source state after a refresh (round robin indexes)."""

    def _scheduler(self, source: Source) -> EdfScheduler[Host] | None:
        try:
            return self._schedulers[source]
        except KeyError:
            pass
        hosts = self.hosts_of(source)
        scheduler: EdfScheduler[Host] | None = None
        if len({h.weight for h in hosts}) > 1:
            scheduler = EdfScheduler()
            for host in hosts:
                scheduler.add(self.host_weight(host), host)
            for _ in range(self.seed % len(hosts)):
                scheduler.pick_and_add(self.host_weight)
        self._schedulers[source] = scheduler
        return scheduler

    def choose_once(self, context: LbContext | None, attempt: int) -> Host | None:
        source = self.only_source or self.host_source(self.random64())
        if source is None:
            return None
        scheduler = self._scheduler(source)
        if scheduler is not None:
            return scheduler.pick_and_add(self.host_weight)
        hosts = self.hosts_of(source)
        if not hosts:
            return None
        return self.unweighted_pick(hosts, source)

    def unweighted_pick(self, hosts: tuple[Host, ...], source: Source) -> Host:
        raise NotImplementedError


class RoundRobinLb(EdfLb):
    def __init__(self, config: LbConfig, rng: random.Random) -> None:
        super().__init__(config, rng)
        self._indexes: dict[Source, int] = {}

    def reset_sources(self) -> None:
        self._indexes = {}

    def unweighted_pick(self, hosts: tuple[Host, ...], source: Source) -> Host:
        index = self._indexes.get(source, self.seed)
        self._indexes[source] = index + 1
        return hosts[index % len(hosts)]


class LeastRequestLb(EdfLb):
    def host_weight(self, host: Host) -> float:
        bias = self.config.active_request_bias
        active = host.active_requests + 1
        if bias == 1.0:
            return host.weight / active
        if bias == 0.0:
            return float(host.weight)
        return float(host.weight / active**bias)

    def unweighted_pick(self, hosts: tuple[Host, ...], source: Source) -> Host:
        if self.config.full_scan:
            return self._full_scan(hosts)
        candidate: Host | None = None
        for _ in range(self.config.choice_count):
            sampled = hosts[self.random64() % len(hosts)]
            if candidate is None or sampled.active_requests < candidate.active_requests:
                candidate = sampled
        assert candidate is not None
        return candidate

    def _full_scan(self, hosts: tuple[Host, ...]) -> Host:
        candidate = hosts[0]
        tied = 1
        for sampled in hosts[1:]:
            if sampled.active_requests < candidate.active_requests:
                candidate, tied = sampled, 1
            elif sampled.active_requests == candidate.active_requests:
                tied += 1
                if self.random64() % tied == 0:
                    candidate = sampled
        return candidate


class RandomLb(ZoneAwareLb):
    def choose_once(self, context: LbContext | None, attempt: int) -> Host | None:
        value = self.random64()
        source = self.host_source(value)
        if source is None:
            return None
        hosts = self.hosts_of(source)
        if not hosts:
            return None
        return hosts[value % len(hosts)]


def create_load_balancer(config: LbConfig, rng: random.Random) -> LoadBalancer:
    """A fresh load balancer for the policy in `config`; call `refresh` before picking."""
    classes: dict[LbPolicy, type[PriorityAwareLb]] = {
        LbPolicy.ROUND_ROBIN: RoundRobinLb,
        LbPolicy.LEAST_REQUEST: LeastRequestLb,
        LbPolicy.RANDOM: RandomLb,
        LbPolicy.RING_HASH: RingHashLb,
        LbPolicy.MAGLEV: MaglevLb,
    }
    return classes[config.policy](config, rng)
