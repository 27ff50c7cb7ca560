"""`xdsmesh-conformance run --pods`: the scenarios marked for pods, across pods, on both planes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance import load
from conformance.load import ScenarioError
from conformance.results import PASS, SKIP
from tests.pods.support import require_pods

SCENARIO: dict[str, Any] = {
    "name": "demo",
    "description": "a demo",
    "backends": {"a": "h1"},
    "steps": [{"request": {"host": "svc"}}],
}


def conformance(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def test_a_scenario_runs_on_loopback_unless_its_modes_say_otherwise() -> None:
    assert load.parse(SCENARIO, "demo.yaml").modes == ("loopback",)
    both = load.parse({**SCENARIO, "modes": ["loopback", "pods"]}, "demo.yaml")
    assert both.modes == ("loopback", "pods")
    assert load.parse({**SCENARIO, "modes": ["pods"]}, "demo.yaml").modes == ("pods",)


@pytest.mark.parametrize(
    ("modes", "problem"),
    [
        (["cluster"], "modes[0]: must be one of loopback, pods, got 'cluster'"),
        ([], "modes: needs at least one of loopback, pods"),
        ("pods", "modes: must be a list"),
    ],
)
def test_bad_modes_are_named(modes: object, problem: str) -> None:
    with pytest.raises(ScenarioError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        load.parse({**SCENARIO, "modes": modes}, "demo.yaml")


def test_the_bundled_scenarios_say_which_run_as_pods(tmp_path: Path) -> None:
    scenarios = {s.name: s for s in load.load_all()}
    assert "pods" in scenarios["host-forms"].modes
    assert scenarios["grpc"].modes == ("loopback",)  # the inbound hop is HTTP/1.1 only
    listing = conformance("list", cwd=tmp_path).stdout.splitlines()
    assert any(line.startswith("host-forms [pods]:") for line in listing)
    assert any(line.startswith("grpc:") for line in listing)


def test_pods_mode_on_envoy_and_pydp(tmp_path: Path) -> None:
    require_pods()
    out = tmp_path / "result.json"
    done = conformance(
        "run", "--pods", "--dataplane", "envoy", "--dataplane", "pydp",
        "--scenario", "host-forms", "round-robin", "grpc", "--jobs", "2", "--json", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "as pods" in done.stdout
    result = {s["name"]: s for s in json.loads(out.read_text())["scenarios"]}
    for name in ("host-forms", "round-robin"):
        assert result[name]["outcomes"] == {"envoy": PASS, "pydp": PASS}, result[name]
        assert result[name]["differences"] == []
    assert result["grpc"]["outcomes"] == {"envoy": SKIP, "pydp": SKIP}
    assert "loopback mode only" in result["grpc"]["runs"]["envoy"]["note"]
    for dataplane in ("envoy", "pydp"):
        steps = result["host-forms"]["runs"][dataplane]["steps"]
        by_cluster_ip = next(s for s in steps if s["label"] == "ClusterIP with port")
        assert by_cluster_ip["observation"]["backend"] == "reviews-1"
        # Every pod has its own loopback: the backend was reached by its sidecar there.
        assert by_cluster_ip["observation"]["upstream"]["address"] == "127.0.0.1:8080"
        seen = by_cluster_ip["observation"]["upstream"]["headers"]
        assert seen["x-forwarded-proto"] == ["http"]
