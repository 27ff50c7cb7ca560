"""Circuit breakers: per-cluster resource limits, per routing priority, as Envoy counts them.

Four resources per priority (DEFAULT and HIGH, each with its own thresholds):
connections, pending requests, requests and retries; with a `retry_budget`
the retry limit is `max(budget_percent% of (active + pending requests),
min_retry_concurrency)` instead of `max_retries`. `try_acquire_*` takes one
unit or refuses and counts the overflow under Envoy's stat name; `release_*`
gives it back. The caller answers a refused request with 503 and
`x-envoy-overloaded: true`; a refused connection leaves the request pending; a
refused retry returns the upstream response as is. As in Envoy, a request
refused for `max_requests` counts as `upstream_rq_pending_overflow`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envoy.config.core.v3 import base_pb2

from pydp.errors import ConfigError
from pydp.upstream.fields import percent, reject_unknown, wrapped
from pydp.upstream.hosts import Host


class RoutingPriority(enum.Enum):
    DEFAULT = "default"
    HIGH = "high"

    # Members are singletons that compare by identity; Enum's own __hash__ hashes
    # the name in Python, on every lookup of a per-priority table.
    __hash__ = object.__hash__


@dataclass(frozen=True)
class RetryBudget:
    budget_percent: float = 20.0
    min_retry_concurrency: int = 3


@dataclass(frozen=True)
class Thresholds:
    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 1024
    max_retries: int = 3
    retry_budget: RetryBudget | None = None
    track_remaining: bool = False


@dataclass(frozen=True)
class BreakerConfig:
    thresholds: dict[RoutingPriority, Thresholds] = field(default_factory=dict)
    per_host_max_connections: dict[RoutingPriority, int] = field(default_factory=dict)

    def for_priority(self, priority: RoutingPriority) -> Thresholds:
        return self.thresholds.get(priority, Thresholds())


_PRIORITIES = {
    base_pb2.DEFAULT: RoutingPriority.DEFAULT,
    base_pb2.HIGH: RoutingPriority.HIGH,
}
_THRESHOLD_FIELDS = {
    "priority",
    "max_connections",
    "max_pending_requests",
    "max_requests",
    "max_retries",
    "retry_budget",
    "track_remaining",
}


def compile_circuit_breakers(pb: Any, resource: str) -> BreakerConfig:
    """Compile `Cluster.circuit_breakers`; the first entry for a priority wins, as in Envoy."""
    reject_unknown(pb, {"thresholds", "per_host_thresholds"}, resource, "circuit_breakers.")
    thresholds: dict[RoutingPriority, Thresholds] = {}
    for i, t in enumerate(pb.thresholds):
        path = f"circuit_breakers.thresholds[{i}]."
        reject_unknown(t, _THRESHOLD_FIELDS, resource, path)
        priority = _priority(t.priority, resource, path)
        budget = None
        if t.HasField("retry_budget"):
            budget = RetryBudget(
                percent(t.retry_budget, "budget_percent", 20.0, resource, path + "retry_budget"),
                int(wrapped(t.retry_budget, "min_retry_concurrency", 3)),
            )
        thresholds.setdefault(
            priority,
            Thresholds(
                max_connections=int(wrapped(t, "max_connections", 1024)),
                max_pending_requests=int(wrapped(t, "max_pending_requests", 1024)),
                max_requests=int(wrapped(t, "max_requests", 1024)),
                max_retries=int(wrapped(t, "max_retries", 3)),
                retry_budget=budget,
                track_remaining=bool(t.track_remaining),
            ),
        )
    per_host: dict[RoutingPriority, int] = {}
    for i, t in enumerate(pb.per_host_thresholds):
        path = f"circuit_breakers.per_host_thresholds[{i}]."
        reject_unknown(t, {"priority", "max_connections"}, resource, path)
        per_host.setdefault(
            _priority(t.priority, resource, path), int(wrapped(t, "max_connections", 1024))
        )
    return BreakerConfig(thresholds, per_host)


def _priority(value: int, resource: str, path: str) -> RoutingPriority:
    priority = _PRIORITIES.get(value)
    if priority is None:
        raise ConfigError(resource, path + "priority", f"unknown routing priority {value}")
    return priority


class Resource:
    """One limited resource: a count against a maximum (fixed, or computed for budgets)."""

    def __init__(self, maximum: Callable[[], int]) -> None:
        self.count = 0
        self._maximum = maximum

    @property
    def max(self) -> int:
        return self._maximum()

    def can_create(self) -> bool:
        return self.count < self._maximum()

    @property
    def remaining(self) -> int:
        return max(0, self._maximum() - self.count)

    def inc(self) -> None:
        self.count += 1

    def dec(self) -> None:
        if self.count <= 0:
            raise RuntimeError("released a circuit breaker resource that was not held")
        self.count -= 1


class ResourceManager:
    """The four resources of one routing priority."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.connections = Resource(lambda: thresholds.max_connections)
        self.pending_requests = Resource(lambda: thresholds.max_pending_requests)
        self.requests = Resource(lambda: thresholds.max_requests)
        budget = thresholds.retry_budget
        if budget is None:
            self.retries = Resource(lambda: thresholds.max_retries)
        else:
            self.retries = Resource(lambda: self._budget(budget))

    def _budget(self, budget: RetryBudget) -> int:
        active = self.requests.count + self.pending_requests.count
        return max(int(budget.budget_percent / 100.0 * active), budget.min_retry_concurrency)


class CircuitBreakers:
    """A cluster's resource managers and overflow counters."""

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config or BreakerConfig()
        self.managers = {p: ResourceManager(self.config.for_priority(p)) for p in RoutingPriority}
        self.host_connections: dict[Host, int] = {}
        self.upstream_cx_overflow = 0
        self.upstream_rq_pending_overflow = 0
        self.upstream_rq_retry_overflow = 0

    def manager(self, priority: RoutingPriority = RoutingPriority.DEFAULT) -> ResourceManager:
        return self.managers[priority]

    def try_acquire_connection(
        self, priority: RoutingPriority = RoutingPriority.DEFAULT, host: Host | None = None
    ) -> bool:
        """A new connection (to `host`, when per-host limits apply) may be opened."""
        resource = self.managers[priority].connections
        host_limit = self.config.per_host_max_connections.get(priority)
        host_ok = (
            host is None or host_limit is None or self.host_connections.get(host, 0) < host_limit
        )
        if not resource.can_create() or not host_ok:
            self.upstream_cx_overflow += 1
            return False
        resource.inc()
        if host is not None:
            self.host_connections[host] = self.host_connections.get(host, 0) + 1
        return True

    def release_connection(
        self, priority: RoutingPriority = RoutingPriority.DEFAULT, host: Host | None = None
    ) -> None:
        self.managers[priority].connections.dec()
        if host is not None:
            left = self.host_connections.get(host, 0) - 1
            if left > 0:
                self.host_connections[host] = left
            else:
                self.host_connections.pop(host, None)

    def try_acquire_pending_request(
        self, priority: RoutingPriority = RoutingPriority.DEFAULT
    ) -> bool:
        return self._acquire(
            self.managers[priority].pending_requests, "upstream_rq_pending_overflow"
        )

    def release_pending_request(self, priority: RoutingPriority = RoutingPriority.DEFAULT) -> None:
        self.managers[priority].pending_requests.dec()

    def try_acquire_request(self, priority: RoutingPriority = RoutingPriority.DEFAULT) -> bool:
        return self._acquire(self.managers[priority].requests, "upstream_rq_pending_overflow")

    def release_request(self, priority: RoutingPriority = RoutingPriority.DEFAULT) -> None:
        self.managers[priority].requests.dec()

    def try_acquire_retry(self, priority: RoutingPriority = RoutingPriority.DEFAULT) -> bool:
        return self._acquire(self.managers[priority].retries, "upstream_rq_retry_overflow")

    def release_retry(self, priority: RoutingPriority = RoutingPriority.DEFAULT) -> None:
        self.managers[priority].retries.dec()

    def _acquire(self, resource: Resource, overflow_stat: str) -> bool:
        if not resource.can_create():
            setattr(self, overflow_stat, getattr(self, overflow_stat) + 1)
            return False
        resource.inc()
        return True

    def stats(self) -> dict[str, int]:
        """Envoy's names, relative to `cluster.<name>.`."""
        out = {
            "upstream_cx_overflow": self.upstream_cx_overflow,
            "upstream_rq_pending_overflow": self.upstream_rq_pending_overflow,
            "upstream_rq_retry_overflow": self.upstream_rq_retry_overflow,
        }
        for priority, m in self.managers.items():
            prefix = f"circuit_breakers.{priority.value}."
            resources = (
                ("cx", m.connections, "cx_open", "remaining_cx"),
                ("pending", m.pending_requests, "rq_pending_open", "remaining_pending"),
                ("rq", m.requests, "rq_open", "remaining_rq"),
                ("retries", m.retries, "rq_retry_open", "remaining_retries"),
            )
            for _, resource, open_name, remaining_name in resources:
                out[prefix + open_name] = 0 if resource.can_create() else 1
                out[prefix + remaining_name] = resource.remaining
        return out
