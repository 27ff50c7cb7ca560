"""Statistics as Envoy's admin prints them: `/stats` text and JSON, `/stats/prometheus`.

Prometheus names and labels come from Envoy's default tag extraction
(`pydp.stats_tags`); the layout (families by type: counters, gauges, then
histograms with Envoy's buckets; `{}` for no labels) is Envoy's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydp.stats import BUCKETS, Histogram
from pydp.stats_tags import Tags, extract_tags

_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def prometheus_name(name: str) -> str:
    return "envoy_" + _UNSAFE.sub("_", name)


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(tags: Tags, extra: str = "") -> str:
    parts = [f'{_UNSAFE.sub("_", k)}="{_label_value(v)}"' for k, v in tags]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


@dataclass(frozen=True, slots=True)
class StatsView:
    """Everything `/stats` shows, by kind; names are Envoy's flat names."""

    counters: Mapping[str, int]
    gauges: Mapping[str, int]
    histograms: Mapping[str, Histogram]
    text_readouts: Mapping[str, str] = field(default_factory=dict)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render_prometheus(view: StatsView, pattern: re.Pattern[str] | None = None) -> str:
    """Envoy's `/stats/prometheus`: counters, then gauges, then histograms."""
    out: list[str] = []
    for kind, values in (("counter", view.counters), ("gauge", view.gauges)):
        families: dict[str, list[str]] = {}
        for name in sorted(values):
            if pattern is not None and not pattern.search(name):
                continue
            base, tags = extract_tags(name)
            families.setdefault(prometheus_name(base), []).append(
                f"{prometheus_name(base)}{_labels(tags)} {values[name]}\n"
            )
        for family in sorted(families):
            out.append(f"# TYPE {family} {kind}\n")
            out.extend(families[family])
    families = {}
    for name in sorted(view.histograms):
        if pattern is not None and not pattern.search(name):
            continue
        base, tags = extract_tags(name)
        family = prometheus_name(base)
        families.setdefault(family, []).extend(
            _histogram_lines(family, tags, view.histograms[name])
        )
    for family in sorted(families):
        out.append(f"# TYPE {family} histogram\n")
        out.extend(families[family])
    return "".join(out)


def _histogram_lines(family: str, tags: Tags, histogram: Histogram) -> list[str]:
    lines = []
    cumulative = 0
    for bound, count in zip(BUCKETS, histogram.counts, strict=False):
        cumulative += count
        le = 'le="' + _number(bound) + '"'
        lines.append(f"{family}_bucket{_labels(tags, le)} {cumulative}\n")
    infinity = 'le="+Inf"'
    lines.append(f"{family}_bucket{_labels(tags, infinity)} {histogram.count}\n")
    lines.append(f"{family}_sum{_labels(tags)} {_number(histogram.total)}\n")
    lines.append(f"{family}_count{_labels(tags)} {histogram.count}\n")
    return lines


QUANTILES = (0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100)


def quantile(histogram: Histogram, q: float) -> float:
    """An estimate of the `q`th percentile, interpolated inside the bucket it falls in."""
    rank = histogram.count * q / 100
    seen = 0
    lower = 0.0
    for i, count in enumerate(histogram.counts):
        upper = BUCKETS[i] if i < len(BUCKETS) else lower * 2 or 1.0
        if count and seen + count >= rank:
            return lower + (upper - lower) * max(rank - seen, 0) / count
        seen += count
        lower = upper
    return lower


def _summary(histogram: Histogram) -> str:
    if not histogram.count:
        return "No recorded values"
    parts = []
    for q in QUANTILES:
        value = f"{quantile(histogram, q):.6g}"
        parts.append(f"P{q:g}({value},{value})")
    return " ".join(parts)


def render_text(
    view: StatsView, pattern: re.Pattern[str] | None = None, used_only: bool = False
) -> str:
    """Envoy's `/stats`: text readouts, counters and gauges by name, then histograms."""

    def shown(name: str) -> bool:
        return pattern is None or pattern.search(name) is not None

    out = [f'{n}: "{view.text_readouts[n]}"\n' for n in sorted(view.text_readouts) if shown(n)]
    numbers = {**view.counters, **view.gauges}
    for name in sorted(numbers):
        if shown(name) and not (used_only and name in view.counters and not numbers[name]):
            out.append(f"{name}: {numbers[name]}\n")
    for name in sorted(view.histograms):
        histogram = view.histograms[name]
        if shown(name) and not (used_only and not histogram.count):
            out.append(f"{name}: {_summary(histogram)}\n")
    return "".join(out)


def render_json(view: StatsView, pattern: re.Pattern[str] | None = None) -> str:
    """Envoy's `/stats?format=json` (counters, gauges and text readouts by name)."""
    stats: list[dict[str, object]] = []
    numbers: dict[str, object] = {**view.text_readouts, **view.counters, **view.gauges}
    for name in sorted(numbers):
        if pattern is None or pattern.search(name):
            stats.append({"name": name, "value": numbers[name]})
    histograms = []
    for name in sorted(view.histograms):
        if pattern is None or pattern.search(name):
            histogram = view.histograms[name]
            histograms.append(
                {
                    "name": name,
                    "values": [
                        {"cumulative": quantile(histogram, q) if histogram.count else None}
                        for q in QUANTILES
                    ],
                }
            )
    if histograms:
        stats.append(
            {
                "histograms": {
                    "supported_quantiles": list(QUANTILES),
                    "computed_quantiles": histograms,
                }
            }
        )
    return json.dumps({"stats": stats})
