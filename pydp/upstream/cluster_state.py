"""A cluster at run time: its hosts, load balancer, circuit breakers and outlier detector.

`UpstreamCluster` is what the connection adapter and the router hold for each
cluster. It keeps hosts across assignment updates (a host with the same
address keeps its active request count and ejection state, as in Envoy),
rebuilds the load balancer's view whenever membership or health changes, and
gathers the cluster's statistics under Envoy's names. It does no I/O: the
caller reports outcomes (`record_response`, `record_failure`), drives the
outlier interval (`tick(now)` every `outlier_interval` seconds) and tracks
active requests with `on_request_start` / `on_request_end`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydp.upstream.breakers import CircuitBreakers, RoutingPriority
from pydp.upstream.cluster import ClusterConfig
from pydp.upstream.hosts import Health, Host, LoadAssignment
from pydp.upstream.lb import create_load_balancer
from pydp.upstream.lb_base import LbContext, PriorityAwareLb
from pydp.upstream.outlier import Failure, OutlierDetector
from pydp.upstream.priority import build_host_sets
from pydp.upstream.retry import RetryPolicy, RetryState, RetryStats

Headers = Sequence[tuple[bytes, bytes]]


class UpstreamCluster:
    def __init__(self, config: ClusterConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.rng = rng if rng is not None else random.Random()
        self.assignment: LoadAssignment | None = None
        self.hosts: dict[tuple[str, int], Host] = {}
        self.lb = create_load_balancer(config.lb, self.rng)
        self.breakers = CircuitBreakers(config.breakers)
        self.retry_stats = RetryStats()
        self.outlier = (
            OutlierDetector(config.outlier, self.rng, on_change=self._health_changed)
            if config.outlier is not None
            else None
        )
        self._dirty = True
        if config.load_assignment is not None:
            self.update_assignment(config.load_assignment)

    @property
    def initialized(self) -> bool:
        """Whether endpoints are known (always for STATIC; after the first EDS update)."""
        return self.assignment is not None

    @property
    def outlier_interval(self) -> float | None:
        return self.config.outlier.interval if self.config.outlier is not None else None

    def update_assignment(self, assignment: LoadAssignment) -> None:
        """Install a new set of endpoints, keeping the state of hosts that stay."""
        hosts: dict[tuple[str, int], Host] = {}
        for endpoint in assignment.endpoints:
            host = self.hosts.get(endpoint.key)
            if host is None:
                host = Host(endpoint)
            else:
                host.endpoint = endpoint
            hosts[endpoint.key] = host
        self.hosts = hosts
        self.assignment = assignment
        if self.outlier is not None:
            self.outlier.set_hosts(hosts.values())
        self._dirty = True

    def _health_changed(self, host: Host) -> None:
        self._dirty = True

    def _refresh(self) -> None:
        assignment = self.assignment or LoadAssignment()
        weighted = self.config.lb.locality_weighted
        host_sets = build_host_sets(self.hosts.values(), assignment, weighted)
        self.lb.refresh(host_sets)
        self._dirty = False

    def choose_host(self, context: LbContext | None = None) -> Host | None:
        """The host for the next attempt, or None (answer 503 `no healthy upstream`)."""
        if self._dirty:
            self._refresh()
        return self.lb.choose_host(context)

    def on_request_start(self, host: Host) -> None:
        host.active_requests += 1

    def on_request_end(self, host: Host) -> None:
        host.active_requests = max(0, host.active_requests - 1)

    def record_response(self, host: Host, status: int, now: float) -> None:
        if self.outlier is not None:
            self.outlier.record_response(host, status, now)

    def record_failure(self, host: Host, failure: Failure, now: float) -> None:
        if self.outlier is not None:
            self.outlier.record_failure(host, failure, now)

    def tick(self, now: float) -> list[Host]:
        """The outlier detection interval timer; returns hosts brought back."""
        return self.outlier.tick(now) if self.outlier is not None else []

    def retry_state(
        self,
        policy: RetryPolicy | None,
        request_headers: Headers = (),
        priority: RoutingPriority = RoutingPriority.DEFAULT,
        honor_request_headers: bool = False,
    ) -> RetryState | None:
        """A request's retry state against this cluster's breakers and stats."""
        return RetryState.create(
            policy,
            self.breakers,
            self.rng,
            self.retry_stats,
            priority,
            request_headers,
            honor_request_headers,
        )

    def stats(self) -> dict[str, int]:
        """Counters and gauges, named as Envoy names them under `cluster.<name>.`."""
        health = [h.health for h in self.hosts.values()]
        out = {
            "membership_total": len(health),
            "membership_healthy": health.count(Health.HEALTHY),
            "membership_degraded": health.count(Health.DEGRADED),
            "membership_excluded": health.count(Health.EXCLUDED),
            "upstream_rq_active": sum(h.active_requests for h in self.hosts.values()),
        }
        if isinstance(self.lb, PriorityAwareLb):
            out["lb_healthy_panic"] = self.lb.panic_picks
        out.update(self.breakers.stats())
        out.update(self.retry_stats.as_dict())
        if self.outlier is not None:
            out.update(self.outlier.stats())
        return out
