"""The results of a run, as plain data that becomes the JSON report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PASS = "pass"
FAIL = "fail"
DIFFERS = "differs"
EXPECTED = "expected-differs"  # differs, and the scenario says why
SKIP = "skip"
ERROR = "error"
BAD = (FAIL, DIFFERS, ERROR)


@dataclass
class StepResult:
    id: str
    action: str
    label: str
    observation: Any = None
    failures: list[str] = field(default_factory=list)
    compare: str = "exact"  # exact | counts | none: how data planes are compared


@dataclass
class Difference:
    step: str
    label: str
    dataplanes: tuple[str, str]
    detail: str
    left: Any
    right: Any


@dataclass
class RunResult:
    scenario: str
    dataplane: str
    xds: str
    outcome: str = PASS
    error: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    duration: float = 0.0
    logs: dict[str, str] = field(default_factory=dict)
    note: str | None = None

    @property
    def failures(self) -> list[str]:
        return [f"step {s.id} ({s.label}): {f}" for s in self.steps for f in s.failures]


@dataclass
class ScenarioResult:
    name: str
    description: str
    runs: dict[str, RunResult]
    differences: list[Difference] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
