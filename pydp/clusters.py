"""The clusters in force: one `UpstreamCluster` per active cluster, kept across updates.

`sync(snapshot)` follows each new snapshot: a cluster that appears gets an
`UpstreamCluster`; one whose `Cluster` changed gets a new one (its old
connection pools drain); one whose endpoints alone changed keeps its object
and gets the new `LoadAssignment` (hosts that stay keep their active
requests and ejection state, as in Envoy); one that went away is dropped with
its stats. The connection pools hear of each change (`cluster_removed`,
`hosts_changed` with the (address, port) of the hosts that remain).
"""

from __future__ import annotations

import logging
import random
from typing import Any

from pydp.stats import Stats
from pydp.upstream import ClusterConfig, UpstreamCluster
from pydp.upstream.cluster import Discovery
from pydp.upstream.hosts import LoadAssignment
from pydp.xds import Snapshot

log = logging.getLogger(__name__)

_SEEDED_COUNTERS = (
    "upstream_cx_total",
    "upstream_cx_connect_fail",
    "upstream_rq_total",
    "upstream_rq_completed",
    "upstream_rq_timeout",
    "membership_change",
)
_SEEDED_GAUGES = ("upstream_cx_active", "upstream_rq_pending_active")


def stat_name(config: ClusterConfig) -> str:
    """The name a cluster's stats go under (`alt_stat_name` if set, as in Envoy)."""
    return config.alt_stat_name or config.name


def is_gauge(key: str) -> bool:
    """Whether an `UpstreamCluster.stats()` entry is a gauge in Envoy."""
    return (
        key.startswith(("membership_", "circuit_breakers."))
        or key.endswith("_active")
        or key == "max_host_weight"
    )


class ClusterSet:
    """The active clusters by name, with Envoy's `cluster_manager.*` stats."""

    def __init__(self, stats: Stats, pools: Any, rng: random.Random) -> None:
        self.stats = stats
        self.pools = pools
        self.rng = rng
        self.clusters: dict[str, UpstreamCluster] = {}

    def get(self, name: str) -> UpstreamCluster | None:
        return self.clusters.get(name)

    def sync(self, snapshot: Snapshot, warming: int) -> None:
        """Follow `snapshot`; `warming` is how many clusters still wait for endpoints."""
        for name in [n for n in self.clusters if n not in snapshot.clusters]:
            gone = self.clusters.pop(name)
            self._forget_stats(f"cluster.{stat_name(gone.config)}.")
            self.stats.inc("cluster_manager.cluster_removed")
            self._notify("cluster_removed", name)
        for name, config in snapshot.clusters.items():
            current = self.clusters.get(name)
            assignment = self._assignment(snapshot, config)
            if current is None or current.config is not config:
                cluster = UpstreamCluster(config, self.rng)
                if config.discovery is Discovery.EDS and assignment is not None:
                    cluster.update_assignment(assignment)
                self.clusters[name] = cluster
                self.stats.inc(
                    "cluster_manager.cluster_added"
                    if current is None
                    else "cluster_manager.cluster_modified"
                )
                self._seed_cluster_stats(stat_name(config))
                if current is not None:
                    self._notify("cluster_removed", name)
                self._notify("hosts_changed", name, list(cluster.hosts))
            elif assignment is not None and assignment is not current.assignment:
                current.update_assignment(assignment)
                self.stats.inc(f"cluster.{stat_name(config)}.membership_change")
                self._notify("hosts_changed", name, list(current.hosts))
        self.stats.gauge_set("cluster_manager.active_clusters", len(self.clusters))
        self.stats.gauge_set("cluster_manager.warming_clusters", warming)

    @staticmethod
    def _assignment(snapshot: Snapshot, config: ClusterConfig) -> LoadAssignment | None:
        if config.discovery is Discovery.EDS:
            found: LoadAssignment | None = snapshot.endpoints.get(config.eds_service_name)
            return found
        return config.load_assignment

    def _seed_cluster_stats(self, name: str) -> None:
        for stat in _SEEDED_COUNTERS:
            self.stats.inc(f"cluster.{name}.{stat}", 0)
        for stat in _SEEDED_GAUGES:
            self.stats.gauge_add(f"cluster.{name}.{stat}", 0)

    def _forget_stats(self, prefix: str) -> None:
        for table in (self.stats.counters, self.stats.gauges, self.stats.histograms):
            for key in [k for k in table if k.startswith(prefix)]:
                del table[key]

    def _notify(self, method: str, *args: Any) -> None:
        hook = getattr(self.pools, method, None)
        if hook is None:
            return
        try:
            hook(*args)
        except Exception:
            log.exception("connection pools: %s%r failed", method, args)

    def add_stats(self, counters: dict[str, int], gauges: dict[str, int]) -> None:
        """Each cluster's own counters and gauges (`UpstreamCluster.stats()`), by Envoy name."""
        for cluster in self.clusters.values():
            prefix = f"cluster.{stat_name(cluster.config)}."
            tracked = {
                f"circuit_breakers.{p.value}."
                for p, t in cluster.config.breakers.thresholds.items()
                if t.track_remaining
            }
            for key, value in cluster.stats().items():
                if ".remaining_" in key and not key.startswith(tuple(tracked)):
                    continue  # Envoy keeps remaining_* only with `track_remaining`
                target = gauges if is_gauge(key) else counters
                target[prefix + key] = value
