"""How long a full snapshot takes to build: translate, serialize, version, check.

    python -m bench.snapshot_build [--services 1000] [--endpoints 10] [--repeat 5]

Four cases, each repeated and reported as median and minimum in ms:

- cold: translator memos cleared, then `build_snapshot` and the view of one
  node profile (the view forces node translation, encoding of every
  resource and the consistency check);
- warm: the same after one endpoint of one Service changed, built on the
  previous snapshot as the pipeline does (memos and entry reuse in play);
- the same two with three node profiles (three namespaces) viewed.

Then the size of what one snapshot holds: resources and encoded bytes.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from api import contract
from api.contract import NodeProfile
from bench.models import change_endpoint, profiles, synthetic_model
from xds_server import translate
from xds_server.model import Model
from xds_server.pipeline import build_snapshot
from xds_server.snapshot import Entry, Snapshot

DOMAIN = contract.CLUSTER_DOMAIN


@dataclass
class Case:
    name: str
    seconds: list[float]


def _timed(run: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _build(
    model: Model, version: int, views: Sequence[NodeProfile], previous: Snapshot | None
) -> Snapshot:
    snapshot = build_snapshot(model, version, DOMAIN, previous)
    for profile in views:
        snapshot.view(profile)
    snapshot.release_reuse()
    return snapshot


def cold(model: Model, views: Sequence[NodeProfile], repeat: int) -> Case:
    seconds = []
    for _ in range(repeat):
        translate.cache_clear()
        seconds.append(_timed(lambda: _build(model, 1, views, None)))
    return Case(f"cold, {len(views)} profile(s)", seconds)


def warm(model: Model, views: Sequence[NodeProfile], repeat: int) -> Case:
    snapshot = _build(model, 1, views, None)
    seconds = []
    for change in range(1, repeat + 1):
        model, _ = change_endpoint(model, change)
        previous = snapshot
        started = time.perf_counter()
        snapshot = _build(model, previous.version + 1, views, previous)
        seconds.append(time.perf_counter() - started)
    return Case(f"warm, 1 endpoint changed, {len(views)} profile(s)", seconds)


def sizes(snapshot: Snapshot) -> dict[str, int]:
    """Distinct resources of a snapshot's built views and their encoded sizes."""
    entries: dict[tuple[str, str, str], Entry] = {}
    for view in snapshot.views().values():
        for es in view.by_type.values():
            for e in es.values():
                entries[e.type_url, e.name, e.version] = e
    return {
        "resources": len(entries),
        "payload bytes": sum(len(e.payload) for e in entries.values()),
        "SotW-encoded bytes": sum(len(e.sotw) for e in entries.values()),
        "Delta-encoded bytes": sum(len(e.delta) for e in entries.values()),
    }


def report(cases: Sequence[Case]) -> str:
    width = max(len(c.name) for c in cases)
    lines = [f"{'case':<{width}}  {'median ms':>10}  {'min ms':>10}"]
    for c in cases:
        median = statistics.median(c.seconds) * 1000
        lines.append(f"{c.name:<{width}}  {median:>10.1f}  {min(c.seconds) * 1000:>10.1f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.snapshot_build", description=__doc__)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    model = synthetic_model(args.services, args.endpoints)
    one, three = profiles(1), profiles(3)
    clusters = sum(len(s.ports) for s in model.services.values())
    print(
        f"model: {len(model.services)} Services, {clusters} Service ports (clusters), "
        f"{args.endpoints} endpoints each, {args.repeat} repeats"
    )
    cases = [
        cold(model, one, args.repeat),
        warm(model, one, args.repeat),
        cold(model, three, args.repeat),
        warm(model, three, args.repeat),
    ]
    print(report(cases))
    for count in (one, three):
        snapshot = _build(model, 1, count, None)
        figures = ", ".join(f"{v} {k}" for k, v in sizes(snapshot).items())
        print(f"snapshot with {len(count)} profile(s): {figures}")


if __name__ == "__main__":
    main()
