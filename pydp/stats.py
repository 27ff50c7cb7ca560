"""pydp's statistics, named as Envoy names them.

Names are Envoy's flat stat names (`cluster.<name>.upstream_rq_total`,
`http.<stat_prefix>.downstream_rq_2xx`, `listener.<address>.downstream_cx_total`,
...), so that `/stats` reads like Envoy's and `/stats/prometheus` can extract
the same tags (`envoy_cluster_name`, `envoy_response_code_class`, ...).
Counters only grow; gauges go up and down; histograms keep the values
observed (in milliseconds) in bucket counts.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

# Envoy's default histogram buckets, in milliseconds.
BUCKETS = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
)


@dataclass(slots=True)
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, value_ms: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value_ms)] += 1
        self.total += value_ms
        self.count += 1


class Stats:
    def __init__(self) -> None:
        self.counters: defaultdict[str, int] = defaultdict(int)
        self.gauges: defaultdict[str, int] = defaultdict(int)
        self.histograms: defaultdict[str, Histogram] = defaultdict(Histogram)

    def inc(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def gauge_add(self, name: str, delta: int) -> None:
        self.gauges[name] += delta

    def gauge_set(self, name: str, value: int) -> None:
        self.gauges[name] = value

    def observe(self, name: str, value_ms: float) -> None:
        histogram = self.histograms[name]
        histogram.counts[bisect.bisect_left(BUCKETS, value_ms)] += 1
        histogram.total += value_ms
        histogram.count += 1
