"""The table, the JSON result and the self-contained HTML report."""

from __future__ import annotations

import io
import json

from conformance import report_files, report_text
from conformance.results import (
    DIFFERS,
    FAIL,
    PASS,
    Difference,
    RunResult,
    ScenarioResult,
    StepResult,
)


def results() -> list[ScenarioResult]:
    good = ScenarioResult(
        "alpha",
        "all good",
        {"envoy": RunResult("alpha", "envoy", "sotw"), "pydp": RunResult("alpha", "pydp", "sotw")},
    )
    step = StepResult("2", "request", "slow", {"status": 504}, ["status: expected 200, got 504"])
    bad = ScenarioResult(
        "beta",
        "one differs <b>",
        {
            "envoy": RunResult("beta", "envoy", "sotw", outcome=FAIL, steps=[step]),
            "pydp": RunResult("beta", "pydp", "sotw", outcome=DIFFERS),
        },
        [
            Difference(
                "1",
                "first",
                ("envoy", "pydp"),
                "differs at status",
                {"status": 200},
                {"status": 201},
            )
        ],
    )
    return [good, bad]


def test_table_and_details() -> None:
    table = report_text.table(results(), ["envoy", "pydp"])
    lines = table.splitlines()
    assert lines[0].split() == ["scenario", "envoy", "pydp"]
    assert lines[2].split() == ["alpha", PASS, PASS]
    assert lines[3].split() == ["beta", FAIL, DIFFERS]
    out = io.StringIO()
    report_text.details(results(), out)
    assert "step 2 (slow): status: expected 200, got 504" in out.getvalue()
    assert "step 1 (first) envoy vs pydp: differs at status" in out.getvalue()
    assert not report_text.all_passed(results())
    assert report_text.summary(results()) == "1 differs, 1 fail, 2 pass"


def test_json_holds_outcomes_observations_and_differences() -> None:
    doc = json.loads(json.dumps(report_files.to_json(results(), ["envoy", "pydp"], ["sotw"])))
    assert doc["passed"] is False
    beta = doc["scenarios"][1]
    assert beta["outcomes"] == {"envoy": FAIL, "pydp": DIFFERS}
    assert beta["runs"]["envoy"]["steps"][0]["observation"] == {"status": 504}
    assert beta["differences"][0]["right"] == {"status": 201}
    assert "date" in doc["rules"]["dropped_headers"]


def test_html_is_self_contained_with_the_diff() -> None:
    page = report_files.to_html(results(), ["envoy", "pydp"])
    assert page.startswith("<!doctype html>")
    assert "<link" not in page and "<script src" not in page
    assert "one differs &lt;b&gt;" in page
    assert "status: expected 200, got 504" in page
    assert 'class="diff"' in page
    assert "diff_chg" in page


def test_runs_across_data_planes_are_columns_of_their_own() -> None:
    crossed = ScenarioResult(
        "gamma",
        "across",
        {
            name: RunResult("gamma", name, "sotw")
            for name in ("envoy", "pydp", "envoy->pydp", "pydp->envoy")
        },
    )
    everything = [*results(), crossed]
    assert report_text.columns(everything, ["envoy", "pydp"]) == [
        "envoy",
        "pydp",
        "envoy->pydp",
        "pydp->envoy",
    ]
    lines = report_text.table(everything, ["envoy", "pydp"]).splitlines()
    assert lines[0].split() == ["scenario", "envoy", "pydp", "envoy->pydp", "pydp->envoy"]
    assert lines[2].split() == ["alpha", PASS, PASS]  # no run across: blank cells
    assert lines[4].split() == ["gamma", PASS, PASS, PASS, PASS]
    page = report_files.to_html(everything, ["envoy", "pydp"])
    assert "<th>envoy-&gt;pydp</th>" in page
    doc = report_files.to_json(everything, ["envoy", "pydp"], ["sotw"])
    assert doc["scenarios"][2]["outcomes"]["pydp->envoy"] == PASS
