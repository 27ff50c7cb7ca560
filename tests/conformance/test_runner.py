"""Which runs a scenario gets: one per data plane, and across them for `cross` in pods mode."""

from __future__ import annotations

from typing import Any

from conformance import load
from conformance.runner import run_names

DOC: dict[str, Any] = {
    "name": "s",
    "description": "d",
    "modes": ["pods"],
    "backends": {"a": "h1"},
    "steps": [{"request": {"host": "x"}}],
}


def test_a_cross_scenario_runs_every_ordered_pair_in_pods_mode() -> None:
    crossed = load.parse({**DOC, "cross": True}, "s.yaml")
    assert run_names(crossed, ["envoy", "pydp"], pods=True) == [
        "envoy",
        "pydp",
        "envoy->pydp",
        "pydp->envoy",
    ]
    assert run_names(crossed, ["envoy"], pods=True) == ["envoy"]
    assert run_names(crossed, ["envoy", "pydp"], pods=False) == ["envoy", "pydp"]


def test_other_scenarios_run_once_per_data_plane() -> None:
    plain = load.parse(DOC, "s.yaml")
    assert run_names(plain, ["envoy", "pydp"], pods=True) == ["envoy", "pydp"]
