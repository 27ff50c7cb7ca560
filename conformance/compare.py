"""Comparing data planes with each other, and deciding each run's outcome.

Every data plane is compared with the reference (Envoy when it ran, else the
first), step by step, as the step says (`StepResult.compare`):

- `exact`: the observations must be equal; the detail lists the paths that differ;
- `counts`: same number of requests, the same distinct variants, and status and
  backend counts that pass the homogeneity test of `stats.py`;
- `traffic`: the same set of statuses (request counts depend on timing);
- `none`: actions, not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance import stats
from conformance.results import (
    DIFFERS,
    ERROR,
    EXPECTED,
    FAIL,
    PASS,
    SKIP,
    Difference,
    RunResult,
    StepResult,
)
from conformance.scenario import Scenario

MAX_PATHS = 8


def reference_of(runs: Mapping[str, RunResult], preferred: str) -> str | None:
    usable = [dp for dp, run in runs.items() if run.outcome not in (SKIP, ERROR)]
    if preferred in usable:
        return preferred
    return usable[0] if usable else None


def compare_runs(runs: Mapping[str, RunResult], preferred: str) -> list[Difference]:
    reference = reference_of(runs, preferred)
    if reference is None:
        return []
    base = runs[reference]
    out: list[Difference] = []
    for dp, run in runs.items():
        if dp == reference or run.outcome in (SKIP, ERROR):
            continue
        theirs = {s.id: s for s in run.steps}
        for step in base.steps:
            other = theirs.pop(step.id, None)
            if other is None:
                out.append(_missing(step, (reference, dp), dp, step.observation, None))
                continue
            detail = compare_step(step, other)
            if detail:
                out.append(
                    Difference(
                        step.id,
                        step.label,
                        (reference, dp),
                        detail,
                        step.observation,
                        other.observation,
                    )
                )
        for other in theirs.values():
            out.append(_missing(other, (reference, dp), reference, None, other.observation))
    return out


def _missing(
    step: StepResult, pair: tuple[str, str], who: str, left: Any, right: Any
) -> Difference:
    """A step that ran on one side of `pair` only; `who` is the side that lacks it."""
    return Difference(
        step.id, step.label, pair, f"step {step.id} did not run on {who}", left, right
    )


def compare_step(a: StepResult, b: StepResult) -> str:
    """Why two results of the same step differ, or '' if they agree."""
    if a.compare == "none":
        return ""
    if a.compare == "counts":
        return _compare_counts(a.observation, b.observation)
    if a.compare == "traffic":
        mine, theirs = a.observation["statuses"], b.observation["statuses"]
        return "" if mine == theirs else f"statuses seen under traffic: {mine} vs {theirs}"
    paths = differing_paths(a.observation, b.observation)
    if not paths:
        return ""
    more = f" and {len(paths) - MAX_PATHS} more" if len(paths) > MAX_PATHS else ""
    return "differs at " + ", ".join(paths[:MAX_PATHS]) + more


def _compare_counts(a: dict[str, Any], b: dict[str, Any]) -> str:
    problems = []
    if a["requests"] != b["requests"]:
        problems.append(f"requests {a['requests']} vs {b['requests']}")
    for key in ("statuses", "backends"):
        verdict = stats.homogeneity(a[key], b[key])
        if not verdict.ok:
            problems.append(f"{key}: {verdict}")
    if a["variants"] != b["variants"]:
        paths = differing_paths(a["variants"], b["variants"], "variants")
        problems.append("variants differ at " + ", ".join(paths[:MAX_PATHS]))
    return "; ".join(problems)


def differing_paths(a: Any, b: Any, prefix: str = "") -> list[str]:
    """JSON paths at which `a` and `b` differ (dicts by key, lists by index)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            here = f"{prefix}.{key}" if prefix else str(key)
            if key not in a or key not in b:
                out.append(here)
            else:
                out += differing_paths(a[key], b[key], here)
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = []
        for i in range(max(len(a), len(b))):
            here = f"{prefix}[{i}]"
            if i >= len(a) or i >= len(b):
                out.append(here)
            else:
                out += differing_paths(a[i], b[i], here)
        return out
    return [] if a == b else [prefix or "(value)"]


def decide(
    scenario: Scenario, runs: Mapping[str, RunResult], differences: list[Difference]
) -> None:
    """Set each run's outcome from its failures and the differences."""
    differing = {d.dataplanes[1] for d in differences}
    for dp, run in runs.items():
        if run.outcome in (SKIP, ERROR):
            continue
        reason = scenario.reason_to_differ(dp)
        if run.failures:
            run.outcome = EXPECTED if reason else FAIL
        elif dp in differing:
            run.outcome = EXPECTED if reason else DIFFERS
        else:
            run.outcome = PASS
        if run.outcome == EXPECTED:
            run.note = reason
