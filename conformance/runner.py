"""Running scenarios on data planes: one world per (scenario, data plane, xDS variant).

`run_suite` runs every combination (`jobs` at a time, each on its own
addresses), then compares the data planes of each scenario and decides the
outcomes (`compare.py`). A scenario with `cross: true`, in pods mode with two
data planes or more, also runs across them: the run `envoy->pydp` has Envoy
in every client pod and pydp in every backend pod, and is compared with the
reference like any run (`run_names`). A run that cannot start or breaks is an `error` with
the tail of every process log; a scenario that needs xDS injection on a
control plane without it is a `skip` that says so, and so is one that does
not run in the mode asked for (`pods`: each backend a pod behind a sidecar,
see `conformance/pods/`; `loopback` otherwise).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from conformance import compare, controlplane, steps
from conformance.controlplane import ControlPlaneError
from conformance.dataplanes import REFERENCE, REGISTRY
from conformance.pods.system import PodsError
from conformance.pods.world import open_pod_world
from conformance.procs import StartError
from conformance.results import ERROR, FAIL, SKIP, RunResult, ScenarioResult
from conformance.scenario import CROSS, Scenario
from conformance.world import Settings, World, WorldError, open_world

Progress = Callable[[RunResult, int, int], None]


@dataclass
class Options:
    dataplanes: Sequence[str]
    xds_modes: Sequence[str] = ("sotw",)
    xds_server: str = "xds-server"
    jobs: int = 1
    keep: Path | None = None  # keep every run's files here
    run_timeout: float = 180.0
    logs_on_success: bool = False
    workroot: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    pods: bool = False  # run in pods mode: network namespaces with transparent capture

    @property
    def mode(self) -> str:
        return "pods" if self.pods else "loopback"


def result_key(scenario: Scenario, xds: str, modes: Sequence[str]) -> str:
    return scenario.name if len(modes) == 1 else f"{scenario.name} [{xds}]"


def run_names(scenario: Scenario, dataplanes: Sequence[str], pods: bool) -> list[str]:
    """The runs of a scenario: one per data plane, then, for a `cross` scenario in pods
    mode, one per ordered pair of them (`client->server`)."""
    names = list(dataplanes)
    if pods and scenario.cross and "pods" in scenario.modes:
        names += [f"{a}{CROSS}{b}" for a in dataplanes for b in dataplanes if a != b]
    return names


async def run_one(scenario: Scenario, dataplane: str, xds: str, options: Options) -> RunResult:
    """Run `scenario` on `dataplane`: a data plane's name, or `client->server` across two."""
    result = RunResult(scenario.name, dataplane, xds)
    clients, _, backends = dataplane.partition(CROSS)
    if options.mode not in scenario.modes:
        result.outcome = SKIP
        result.note = f"runs in {', '.join(scenario.modes)} mode only, not {options.mode}"
        return result
    inject = scenario.needs_injection
    if inject and not controlplane.supports_injection(options.xds_server):
        result.outcome = SKIP
        result.note = (
            f"needs xDS injection: {options.xds_server} has no {controlplane.OVERRIDES_FLAG} flag"
        )
        return result
    root = options.keep or options.workroot
    root.mkdir(parents=True, exist_ok=True)
    label = dataplane.replace(CROSS, "-to-")
    workdir = Path(tempfile.mkdtemp(prefix=f"{scenario.name}-{label}-{xds}-", dir=root))
    settings = Settings(options.xds_server, xds == "delta", workdir, inject)
    started = time.monotonic()
    world = None
    try:
        with trio.fail_after(options.run_timeout):
            opened: AbstractAsyncContextManager[World]
            if options.pods:
                peer = REGISTRY[backends] if backends else None
                opened = open_pod_world(scenario, REGISTRY[clients], settings, peer)
            else:
                opened = open_world(scenario, REGISTRY[clients], settings)
            async with opened as world:
                result.steps = await steps.run_steps(world, scenario.steps)
                if result.failures:
                    result.outcome = FAIL
                if result.failures or options.logs_on_success:
                    result.logs = world.logs()
    except trio.TooSlowError:
        result.outcome, result.error = ERROR, f"did not finish within {options.run_timeout}s"
    except (WorldError, StartError, ControlPlaneError, PodsError, OSError) as e:
        result.outcome, result.error = ERROR, str(e)
    finally:
        result.duration = round(time.monotonic() - started, 2)
        if world is not None and result.outcome == ERROR:
            result.logs = world.logs()
        if options.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


async def run_suite(
    scenarios: Sequence[Scenario], options: Options, progress: Progress | None = None
) -> list[ScenarioResult]:
    names = {s.name: run_names(s, options.dataplanes, options.pods) for s in scenarios}
    combos = [(s, x, dp) for s in scenarios for x in options.xds_modes for dp in names[s.name]]
    runs: dict[tuple[str, str, str], RunResult] = {}
    limiter = trio.CapacityLimiter(max(1, options.jobs))
    finished = 0

    async def one(scenario: Scenario, xds: str, dataplane: str) -> None:
        nonlocal finished
        async with limiter:
            result = await run_one(scenario, dataplane, xds, options)
        runs[(scenario.name, xds, dataplane)] = result
        finished += 1
        if progress is not None:
            progress(result, finished, len(combos))

    async with trio.open_nursery() as nursery:
        for combo in combos:
            nursery.start_soon(one, *combo)

    out = []
    for scenario in scenarios:
        for xds in options.xds_modes:
            by_dp = {dp: runs[(scenario.name, xds, dp)] for dp in names[scenario.name]}
            differences = compare.compare_runs(by_dp, REFERENCE)
            compare.decide(scenario, by_dp, differences)
            out.append(
                ScenarioResult(
                    result_key(scenario, xds, options.xds_modes),
                    scenario.description,
                    by_dp,
                    differences,
                )
            )
    return out
