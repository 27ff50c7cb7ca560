"""Consistent hashing load balancers (ring hash, Maglev): what they share.

Theory of operation (Envoy's `ThreadAwareLoadBalancerBase`): on every refresh
each priority level gets a table built from its hosts' *normalized weights*
(summing to 1): the healthy hosts, or all hosts when the level is in panic;
with locality weighted balancing each locality's share is its configured
weight over the sum, split among its hosts by their weights. Degraded hosts
are never in a table (as in Envoy). A pick takes the request hash (or a random
number when the route computed none), uses it to choose the priority level,
then looks it up in that level's table; a retry host predicate asks the table
for the next candidate with an increasing `attempt`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydp.upstream.hosts import Host
from pydp.upstream.lb_base import LbConfig, LbContext, PriorityAwareLb
from pydp.upstream.priority import HostSet, choose_priority

NormalizedWeights = list[tuple[Host, float]]


class HashTable:
    def choose(self, hash_value: int, attempt: int) -> Host | None:
        raise NotImplementedError


def _normalize_hosts(hosts: Sequence[Host], share: float, out: NormalizedWeights) -> None:
    total = sum(h.weight for h in hosts)
    for host in hosts:
        out.append((host, host.weight * share / total))


def normalized_weights(host_set: HostSet, in_panic: bool) -> NormalizedWeights:
    """Envoy's `normalizeWeights`: (host, weight) pairs whose weights sum to at most 1."""
    out: NormalizedWeights = []
    if not host_set.locality_weights:
        _normalize_hosts(host_set.hosts if in_panic else host_set.healthy, 1.0, out)
        return out
    groups = host_set.hosts_per_locality if in_panic else host_set.healthy_per_locality
    total = sum(host_set.locality_weights)
    if total == 0:
        return out
    for weight, group in zip(host_set.locality_weights, groups, strict=True):
        if weight and group:
            _normalize_hosts(group, weight / total, out)
    return out


class HashingLb(PriorityAwareLb):
    def __init__(self, config: LbConfig, rng: random.Random) -> None:
        super().__init__(config, rng)
        self.tables: tuple[HashTable, ...] = ()

    def build_table(self, weights: NormalizedWeights) -> HashTable:
        raise NotImplementedError

    def refresh(self, host_sets: Sequence[HostSet]) -> None:
        super().refresh(host_sets)
        self.tables = tuple(
            self.build_table(normalized_weights(hs, self.loads.panic[i]))
            for i, hs in enumerate(self.host_sets)
        )

    def choose_host(self, context: LbContext | None = None) -> Host | None:
        if not self.tables:
            return None
        hash_key = context.hash_key if context else None
        h = hash_key if hash_key is not None else self.random64()
        level, _ = choose_priority(h, self.loads)
        if self.loads.panic[level]:
            self.panic_picks += 1
        table = self.tables[level]
        attempts = 1 + (context.host_selection_retry_max_attempts if context else 0)
        host: Host | None = None
        for attempt in range(attempts):
            host = table.choose(h, attempt)
            if host is None or context is None or context.should_select_another_host is None:
                return host
            if not context.should_select_another_host(host):
                return host
        return host
