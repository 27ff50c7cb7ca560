"""`xdsmesh-conformance` end to end: real xds-server, echo backends and Envoy on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import cli, dataplanes, load
from conformance.procs import executable
from conformance.results import PASS, SKIP
from conformance.runner import Options, run_one, run_suite
from tests.harness.reports import failed_logs


@pytest.fixture(autouse=True)
def _binaries_installed() -> None:
    """The project's install (tests/run.sh) brings both; their absence is a failure."""
    assert executable("envoy") is not None, "envoy is not installed"
    assert executable("xds-server") is not None, "xds-server is not installed"


def conformance(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def test_the_whole_suite_passes_on_both_data_planes_in_sotw_and_delta(tmp_path: Path) -> None:
    out, page = tmp_path / "result.json", tmp_path / "report.html"
    done = conformance(
        "run", "--dataplane", "envoy", "--dataplane", "pydp",
        "--xds", "sotw", "--xds", "delta", "--jobs", "2",
        "--json", str(out), "--html", str(page),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr + failed_logs(out)
    result = json.loads(out.read_text())
    assert result["passed"] is True
    assert result["xds"] == ["sotw", "delta"]
    assert result["rules"]["tolerance"]["alpha"] == 0.001
    every = [s.name for s in load.load_all() if "loopback" in s.modes]
    assert len(every) >= 30
    names = [s["name"] for s in result["scenarios"]]
    assert names == [f"{n} [{x}]" for n in every for x in ("sotw", "delta")]  # file order
    for scenario in result["scenarios"]:
        assert scenario["outcomes"] == {"envoy": PASS, "pydp": PASS}, scenario["name"]
        for plane in ("envoy", "pydp"):
            run = scenario["runs"][plane]
            assert run["steps"] and all(not s["failures"] for s in run["steps"])
    host_forms = next(s for s in result["scenarios"] if s["name"] == "host-forms [delta]")
    for plane in ("envoy", "pydp"):
        first = host_forms["runs"][plane]["steps"][0]["observation"]
        assert first["backend"] == "reviews-1"
        assert first["upstream"]["address"] == "{backend:reviews-1}:{port:http}"
        assert first["upstream"]["query"] == "x=1"
    total = 2 * 2 * len(every)
    assert "scenario" in done.stdout and f"[{total}/{total}]" in done.stdout
    assert page.read_text().startswith("<!doctype html>")


async def test_two_runs_of_envoy_do_not_differ(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(dataplanes.REGISTRY, "envoy-again", dataplanes.REGISTRY["envoy"])
    [scenario] = [s for s in load.load_all() if s.name == "round-robin"]
    server = executable("xds-server")
    assert server is not None
    options = Options(["envoy", "envoy-again"], ["sotw"], server, jobs=2, workroot=tmp_path)
    [result] = await run_suite([scenario], options)
    assert result.differences == []
    assert {run.outcome for run in result.runs.values()} == {PASS}


async def test_injection_without_the_flag_is_skipped(tmp_path: Path) -> None:
    fake = tmp_path / "old-xds-server"
    fake.write_text("#!/bin/sh\necho 'usage: xds-server serve --manifests DIR'\n")
    fake.chmod(0o755)
    [scenario] = [s for s in load.load_all() if s.name == "route-matching"]
    result = await run_one(scenario, "envoy", "sotw", Options(["envoy"], xds_server=str(fake)))
    assert result.outcome == SKIP
    assert result.note is not None and "--xds-overrides" in result.note


def test_list_names_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    for scenario in load.load_all():
        assert listed.count(f"{scenario.name}") >= 1
    assert "route-matching [xds injection]" in listed


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--scenario", "no-such-scenario"]) == 2
    assert "no-such-scenario" in capsys.readouterr().err
    assert cli.main(["run", "--dataplane", "nginx"]) == 2
    (tmp_path / "bad.yaml").write_text("name: bad\ndescription: x\nbackends: {}\nsteps: []\n")
    assert cli.main(["list", "--scenarios-dir", str(tmp_path)]) == 2
    assert "bad.yaml: backends: needs at least one backend" in capsys.readouterr().err


def test_an_unavailable_dataplane_is_an_error_not_a_pass(tmp_path: Path) -> None:
    ghost = dataplanes.DataPlane("ghost", "no-such-program-xyz", ())
    with pytest.raises(LookupError, match="no-such-program-xyz"):
        ghost.command(tmp_path / "b.yaml")
