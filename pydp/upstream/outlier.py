"""Outlier detection: passive health from request outcomes, as Envoy's `DetectorImpl` does it.

Theory of operation:

- Every outcome is an HTTP status: a response's own, 503 for a connect failure
  or reset, 504 for a timeout. A 5xx bumps the host's consecutive-5xx count;
  502/503/504 also bump the consecutive-gateway-failure count (another 5xx
  resets it); anything else resets both. Reaching a threshold exactly is a
  *detection*: the counter restarts, and the host is ejected if the ejection
  fits (`(ejected + 1) / hosts <= max_ejection_percent`, or nothing is ejected
  yet and `always_eject_one_host`) and a random draw under the `enforcing_*`
  percentage succeeds.
- An ejected host stays out for `min(base_ejection_time * backoff,
  max_ejection_time) + jitter`; `backoff` grows by one per ejection (while
  `backoff * base < max + base`) and shrinks by one at each interval tick at
  which the host has been back for at least an interval.
- `tick(now)`, which the caller runs every `interval`, returns hosts whose time
  is up, and runs success-rate and failure-percentage detection over the
  requests of the interval that just ended (mean minus `stdev_factor/1000`
  standard deviations; failure percentage at or above the threshold).

Ejection and return change a host's health, so the owner refreshes its load
balancer through `on_change`.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydp.errors import ConfigError
from pydp.upstream.fields import bounded_percent, duration_ms, reject_unknown, wrapped
from pydp.upstream.hosts import Host


class Failure(enum.Enum):
    """Outcomes that are not an upstream response, with the status Envoy counts them as."""

    CONNECT_FAILURE = "connect_failure"
    RESET = "reset"
    TIMEOUT = "timeout"

    @property
    def status(self) -> int:
        return 504 if self is Failure.TIMEOUT else 503


class EjectionType(enum.Enum):
    CONSECUTIVE_5XX = "consecutive_5xx"
    CONSECUTIVE_GATEWAY_FAILURE = "consecutive_gateway_failure"
    SUCCESS_RATE = "success_rate"
    FAILURE_PERCENTAGE = "failure_percentage"


@dataclass(frozen=True)
class OutlierConfig:
    consecutive_5xx: int = 5
    consecutive_gateway_failure: int = 5
    interval_ms: int = 10_000
    base_ejection_time_ms: int = 30_000
    max_ejection_time_ms: int = 300_000
    max_ejection_time_jitter_ms: int = 0
    max_ejection_percent: int = 10
    always_eject_one_host: bool = False
    enforcing_consecutive_5xx: int = 100
    enforcing_consecutive_gateway_failure: int = 0
    enforcing_success_rate: int = 100
    success_rate_minimum_hosts: int = 5
    success_rate_request_volume: int = 100
    success_rate_stdev_factor: int = 1900
    failure_percentage_threshold: int = 85
    enforcing_failure_percentage: int = 0
    failure_percentage_minimum_hosts: int = 5
    failure_percentage_request_volume: int = 50

    @property
    def interval(self) -> float:
        return self.interval_ms / 1000.0


_ACCEPTED = {
    "consecutive_5xx",
    "interval",
    "base_ejection_time",
    "max_ejection_percent",
    "enforcing_consecutive_5xx",
    "enforcing_success_rate",
    "success_rate_minimum_hosts",
    "success_rate_request_volume",
    "success_rate_stdev_factor",
    "consecutive_gateway_failure",
    "enforcing_consecutive_gateway_failure",
    "failure_percentage_threshold",
    "enforcing_failure_percentage",
    "failure_percentage_minimum_hosts",
    "failure_percentage_request_volume",
    "max_ejection_time",
    "max_ejection_time_jitter",
    "always_eject_one_host",
    # Without split_external_local_origin_errors or active health checking these have no
    # effect in Envoy either.
    "consecutive_local_origin_failure",
    "enforcing_consecutive_local_origin_failure",
    "enforcing_local_origin_success_rate",
    "enforcing_failure_percentage_local_origin",
    "successful_active_health_check_uneject_host",
    "split_external_local_origin_errors",
}


def compile_outlier_detection(pb: Any, resource: str) -> OutlierConfig:
    """Compile `Cluster.outlier_detection`."""
    reject_unknown(pb, _ACCEPTED, resource, "outlier_detection.")
    if pb.split_external_local_origin_errors:
        raise ConfigError(
            resource,
            "outlier_detection.split_external_local_origin_errors",
            "separate tracking of locally originated errors is not supported",
        )
    path = "outlier_detection."
    for name in ("interval", "base_ejection_time"):
        d = getattr(pb, name)
        if pb.HasField(name) and (d.seconds < 0 or (d.seconds == 0 and d.nanos <= 0)):
            raise ConfigError(resource, path + name, "must be greater than 0")
    base = duration_ms(pb, "base_ejection_time", 30_000)
    config = OutlierConfig(
        consecutive_5xx=int(wrapped(pb, "consecutive_5xx", 5)),
        consecutive_gateway_failure=int(wrapped(pb, "consecutive_gateway_failure", 5)),
        interval_ms=duration_ms(pb, "interval", 10_000),
        base_ejection_time_ms=base,
        max_ejection_time_ms=duration_ms(pb, "max_ejection_time", max(300_000, base)),
        max_ejection_time_jitter_ms=duration_ms(pb, "max_ejection_time_jitter", 0),
        max_ejection_percent=bounded_percent(
            pb, "max_ejection_percent", 10, resource, path + "max_ejection_percent"
        ),
        always_eject_one_host=bool(wrapped(pb, "always_eject_one_host", False)),
        enforcing_consecutive_5xx=bounded_percent(
            pb, "enforcing_consecutive_5xx", 100, resource, path + "enforcing_consecutive_5xx"
        ),
        enforcing_consecutive_gateway_failure=bounded_percent(
            pb,
            "enforcing_consecutive_gateway_failure",
            0,
            resource,
            path + "enforcing_consecutive_gateway_failure",
        ),
        enforcing_success_rate=bounded_percent(
            pb, "enforcing_success_rate", 100, resource, path + "enforcing_success_rate"
        ),
        success_rate_minimum_hosts=int(wrapped(pb, "success_rate_minimum_hosts", 5)),
        success_rate_request_volume=int(wrapped(pb, "success_rate_request_volume", 100)),
        success_rate_stdev_factor=int(wrapped(pb, "success_rate_stdev_factor", 1900)),
        failure_percentage_threshold=bounded_percent(
            pb, "failure_percentage_threshold", 85, resource, path + "failure_percentage_threshold"
        ),
        enforcing_failure_percentage=bounded_percent(
            pb, "enforcing_failure_percentage", 0, resource, path + "enforcing_failure_percentage"
        ),
        failure_percentage_minimum_hosts=int(wrapped(pb, "failure_percentage_minimum_hosts", 5)),
        failure_percentage_request_volume=int(wrapped(pb, "failure_percentage_request_volume", 50)),
    )
    if config.max_ejection_time_ms < config.base_ejection_time_ms:
        raise ConfigError(
            resource,
            path + "max_ejection_time",
            "outlier detector's max_ejection_time cannot be smaller than base_ejection_time",
        )
    return config


class _Monitor:
    __slots__ = (
        "backoff",
        "bucket_success",
        "bucket_total",
        "consecutive_5xx",
        "consecutive_gateway_failure",
        "ejected_at",
        "jitter_ms",
        "last_bucket",
        "num_ejections",
        "unejected_at",
    )

    def __init__(self) -> None:
        self.consecutive_5xx = 0
        self.consecutive_gateway_failure = 0
        self.num_ejections = 0
        self.backoff = 0
        self.jitter_ms = 0
        self.ejected_at: float | None = None
        self.unejected_at: float | None = None
        self.bucket_total = 0
        self.bucket_success = 0
        self.last_bucket: tuple[int, int] = (0, 0)


class OutlierDetector:
    """Per-host monitors for one cluster; time is passed in, randomness injected."""

    def __init__(
        self,
        config: OutlierConfig,
        rng: random.Random,
        on_change: Callable[[Host], None] | None = None,
    ) -> None:
        self.config = config
        self.rng = rng
        self.on_change = on_change
        self.monitors: dict[Host, _Monitor] = {}
        self.counters: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    @property
    def ejections_active(self) -> int:
        return sum(1 for h in self.monitors if h.ejected)

    def set_hosts(self, hosts: Iterable[Host]) -> None:
        """Track exactly these hosts: new ones start clean, removed ones are forgotten."""
        wanted = set(hosts)
        for host in list(self.monitors):
            if host not in wanted:
                del self.monitors[host]
        for host in wanted:
            self.monitors.setdefault(host, _Monitor())

    def record_response(self, host: Host, status: int, now: float) -> None:
        """An upstream response's status (Envoy's `putHttpResponseCode`)."""
        monitor = self.monitors.get(host)
        if monitor is None:
            return
        monitor.bucket_total += 1
        if 500 <= status <= 599:
            fired: list[EjectionType] = []
            if status in (502, 503, 504):
                monitor.consecutive_gateway_failure += 1
                if monitor.consecutive_gateway_failure == self.config.consecutive_gateway_failure:
                    fired.append(EjectionType.CONSECUTIVE_GATEWAY_FAILURE)
            else:
                monitor.consecutive_gateway_failure = 0
            monitor.consecutive_5xx += 1
            if monitor.consecutive_5xx == self.config.consecutive_5xx:
                fired.append(EjectionType.CONSECUTIVE_5XX)
            for kind in fired:
                self._on_consecutive(host, monitor, kind, now)
        else:
            monitor.bucket_success += 1
            monitor.consecutive_5xx = 0
            monitor.consecutive_gateway_failure = 0

    def record_failure(self, host: Host, failure: Failure, now: float) -> None:
        """A connect failure, reset or timeout, counted as Envoy maps it to a status."""
        self.record_response(host, failure.status, now)

    def _on_consecutive(
        self, host: Host, monitor: _Monitor, kind: EjectionType, now: float
    ) -> None:
        if host.ejected:
            return
        self._count(f"ejections_detected_{kind.value}")
        if kind is EjectionType.CONSECUTIVE_5XX:
            self._count("ejections_consecutive_5xx")
        self._eject(host, monitor, kind, now)
        if kind is EjectionType.CONSECUTIVE_5XX:
            monitor.consecutive_5xx = 0
        else:
            monitor.consecutive_gateway_failure = 0

    def _enforcing(self, kind: EjectionType) -> int:
        c = self.config
        return {
            EjectionType.CONSECUTIVE_5XX: c.enforcing_consecutive_5xx,
            EjectionType.CONSECUTIVE_GATEWAY_FAILURE: c.enforcing_consecutive_gateway_failure,
            EjectionType.SUCCESS_RATE: c.enforcing_success_rate,
            EjectionType.FAILURE_PERCENTAGE: c.enforcing_failure_percentage,
        }[kind]

    def _eject(self, host: Host, monitor: _Monitor, kind: EjectionType, now: float) -> None:
        active = self.ejections_active
        ejected_percent = 100.0 * (active + 1) / len(self.monitors)
        should = ejected_percent <= min(100, self.config.max_ejection_percent)
        if self.config.always_eject_one_host:
            should = should or active == 0
        if not should:
            self._count("ejections_overflow")
            return
        if kind in (EjectionType.CONSECUTIVE_5XX, EjectionType.SUCCESS_RATE):
            self._count("ejections_total")
        if self.rng.getrandbits(64) % 100 >= self._enforcing(kind):
            return
        self._count("ejections_enforced_total")
        self._count(f"ejections_enforced_{kind.value}")
        host.ejected = True
        monitor.num_ejections += 1
        monitor.ejected_at = now
        monitor.jitter_ms = self.rng.getrandbits(64) % (self.config.max_ejection_time_jitter_ms + 1)
        base = self.config.base_ejection_time_ms
        if monitor.backoff * base < self.config.max_ejection_time_ms + base:
            monitor.backoff += 1
        if self.on_change is not None:
            self.on_change(host)

    def ejection_time(self, host: Host) -> float:
        """How long (seconds) the host's current ejection lasts."""
        monitor = self.monitors[host]
        base = self.config.base_ejection_time_ms
        ms = min(base * monitor.backoff, self.config.max_ejection_time_ms) + monitor.jitter_ms
        return ms / 1000.0

    def tick(self, now: float) -> list[Host]:
        """The interval timer: return hosts whose ejection is over, run rate detection."""
        returned: list[Host] = []
        for host, monitor in self.monitors.items():
            ejected_at = monitor.ejected_at
            if (
                host.ejected
                and ejected_at is not None
                and now - ejected_at >= self.ejection_time(host)
            ):
                self._uneject(host, monitor, now)
                returned.append(host)
            monitor.last_bucket = (monitor.bucket_success, monitor.bucket_total)
            monitor.bucket_success = monitor.bucket_total = 0
        self._rate_ejections(now)
        for host, monitor in self.monitors.items():
            if host.ejected or monitor.unejected_at is None:
                continue
            if now - monitor.unejected_at >= self.config.interval and monitor.backoff:
                monitor.backoff -= 1
        return returned

    def _uneject(self, host: Host, monitor: _Monitor, now: float) -> None:
        host.ejected = False
        monitor.consecutive_5xx = 0
        monitor.consecutive_gateway_failure = 0
        monitor.unejected_at = now
        if self.on_change is not None:
            self.on_change(host)

    def _rate_ejections(self, now: float) -> None:
        c = self.config
        hosts = len(self.monitors)
        if hosts < c.success_rate_minimum_hosts and hosts < c.failure_percentage_minimum_hosts:
            return
        sr_hosts: list[tuple[Host, float]] = []
        fp_hosts: list[tuple[Host, float]] = []
        for host, monitor in self.monitors.items():
            success, total = monitor.last_bucket
            if host.ejected or total == 0:
                continue
            rate = success * 100.0 / total
            if total >= c.success_rate_request_volume:
                sr_hosts.append((host, rate))
            if total >= c.failure_percentage_request_volume:
                fp_hosts.append((host, rate))
        if sr_hosts and len(sr_hosts) >= c.success_rate_minimum_hosts:
            mean = sum(r for _, r in sr_hosts) / len(sr_hosts)
            stdev = math.sqrt(sum((r - mean) ** 2 for _, r in sr_hosts) / len(sr_hosts))
            threshold = mean - c.success_rate_stdev_factor / 1000.0 * stdev
            for host, rate in sr_hosts:
                if rate < threshold:
                    self._count("ejections_success_rate")
                    self._rate_eject(host, EjectionType.SUCCESS_RATE, now)
        if fp_hosts and len(fp_hosts) >= c.failure_percentage_minimum_hosts:
            for host, rate in fp_hosts:
                if 100.0 - rate >= c.failure_percentage_threshold:
                    self._rate_eject(host, EjectionType.FAILURE_PERCENTAGE, now)

    def _rate_eject(self, host: Host, kind: EjectionType, now: float) -> None:
        self._count(f"ejections_detected_{kind.value}")
        if not host.ejected:
            self._eject(host, self.monitors[host], kind, now)

    def stats(self) -> dict[str, int]:
        """Envoy's names, relative to `cluster.<name>.`."""
        names = [
            "ejections_enforced_total",
            "ejections_overflow",
            "ejections_total",
            "ejections_consecutive_5xx",
            "ejections_success_rate",
        ]
        for kind in EjectionType:
            names += [f"ejections_detected_{kind.value}", f"ejections_enforced_{kind.value}"]
        out = {f"outlier_detection.{n}": self.counters.get(n, 0) for n in names}
        out["outlier_detection.ejections_active"] = self.ejections_active
        return out
