"""The plain-text outputs: a progress line per finished run, and the final table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from conformance.results import BAD, RunResult, ScenarioResult


def progress_line(result: RunResult, done: int, total: int) -> str:
    width = len(str(total))
    extra = f" ({result.note})" if result.note else ""
    return (
        f"[{done:>{width}}/{total}] {result.scenario} [{result.xds}] on {result.dataplane}: "
        f"{result.outcome} in {result.duration:.1f}s{extra}"
    )


def columns(results: Sequence[ScenarioResult], dataplanes: Sequence[str]) -> list[str]:
    """The data planes, then every run across data planes (`envoy->pydp`) some scenario had."""
    out = list(dataplanes)
    for r in results:
        out += [name for name in r.runs if name not in out]
    return out


def table(results: Sequence[ScenarioResult], dataplanes: Sequence[str]) -> str:
    """Scenarios by runs; a blank cell where a scenario has no such run (not `cross`)."""
    names = [r.name for r in results] or ["(none)"]
    dataplanes = columns(results, dataplanes)
    first = max(len("scenario"), *(len(n) for n in names))
    widths = [max(len(dp), len("expected-differs")) for dp in dataplanes]
    lines = [
        "  ".join(
            [
                "scenario".ljust(first),
                *(dp.ljust(w) for dp, w in zip(dataplanes, widths, strict=True)),
            ]
        ),
        "  ".join(["-" * first, *("-" * w for w in widths)]),
    ]
    for r in results:
        cells = [
            (r.runs[dp].outcome if dp in r.runs else "").ljust(w)
            for dp, w in zip(dataplanes, widths, strict=True)
        ]
        lines.append("  ".join([r.name.ljust(first), *cells]).rstrip())
    return "\n".join(lines)


def summary(results: Sequence[ScenarioResult]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        for run in r.runs.values():
            counts[run.outcome] = counts.get(run.outcome, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing ran"


def details(results: Sequence[ScenarioResult], out: TextIO) -> None:
    """What went wrong, for every run that is not a pass."""
    for r in results:
        for run in r.runs.values():
            if run.outcome not in BAD:
                continue
            out.write(f"\n{r.name} on {run.dataplane}: {run.outcome}\n")
            if run.error:
                out.write(f"  error: {run.error}\n")
            for failure in run.failures:
                out.write(f"  {failure}\n")
        for d in r.differences:
            left, right = d.dataplanes
            out.write(f"\n{r.name}: step {d.step} ({d.label}) {left} vs {right}: {d.detail}\n")


def all_passed(results: Sequence[ScenarioResult]) -> bool:
    return all(run.outcome not in BAD for r in results for run in r.runs.values())
