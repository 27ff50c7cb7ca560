"""The control plane's Prometheus metrics, in a registry of its own per server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connected = Gauge(
            "xds_connected_proxies", "xDS streams open now", ["variant"], registry=r
        )
        self.pushes = Counter("xds_pushes", "Responses sent to proxies", ["type"], registry=r)
        self.nacks = Counter("xds_nacks", "Responses proxies rejected", ["type"], registry=r)
        self.push_seconds = Histogram(
            "xds_push_seconds",
            "Time to compute the pushes of one snapshot for every stream",
            buckets=_SECONDS,
            registry=r,
        )
        self.convergence = Histogram(
            "xds_convergence_seconds",
            "Time from a snapshot's publication to a proxy's ACK of it",
            ["type"],
            buckets=_SECONDS,
            registry=r,
        )
        self.build_seconds = Histogram(
            "xds_snapshot_build_seconds",
            "Time to translate and encode a snapshot",
            buckets=_SECONDS,
            registry=r,
        )
        self.snapshot_version = Gauge(
            "xds_snapshot_version", "Version of the published snapshot", registry=r
        )
        self.config_errors = Gauge(
            "xds_config_errors", "Errors in the sources' last load (0 when it was good)", registry=r
        )
        self.rejected_snapshots = Counter(
            "xds_rejected_snapshots", "Snapshots refused as inconsistent", registry=r
        )
