"""Carrying out a scenario's steps in a `World`, recording an observation per step.

A `request` step sends its request `repeat` times (`concurrency` at once). One
request is recorded whole; several are recorded as counts (statuses, backends)
and the distinct observations once the backend's identity is taken out
(`variants`), which is what stays equal between runs and data planes.
`eventually` repeats its request until the expectation holds; `traffic` keeps
sending while its `during` steps run, and checks every reply it got.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import trio

from conformance import expect as checks
from conformance.client import Reply
from conformance.echo.app import BACKEND_HEADER
from conformance.observe import observe
from conformance.results import StepResult
from conformance.scenario import Expect, RequestSpec, Step
from conformance.world import World

MAX_LISTED = 5
TRAFFIC_PAUSE = 0.005


async def run_steps(world: World, steps: tuple[Step, ...]) -> list[StepResult]:
    results: list[StepResult] = []
    for step in steps:
        results += await run_step(world, step)
        if any(r.failures for r in results) and step.action in _FATAL:
            break
    return results


_FATAL = ("wait_for_config", "xds_state", "renewals")


async def run_step(world: World, step: Step) -> list[StepResult]:
    result = StepResult(step.id, step.action, step.label)
    if step.action == "request":
        assert step.request is not None
        await _request(world, step, step.request, result)
    elif step.action == "eventually":
        assert step.request is not None
        await _eventually(world, step, step.request, result)
    elif step.action == "traffic":
        return await _traffic(world, step, result)
    elif step.action in ("apply", "delete", "xds_apply", "xds_delete"):
        await world.change(step.action, step.objects)
        result.compare = "none"
    elif step.action == "stop_backend":
        await world.stop_backend(step.target)
        result.compare = "none"
    elif step.action == "start_backend":
        await world.start_backend(step.target)
        result.compare = "none"
    elif step.action == "restart_control_plane":
        await world.restart_control_plane(step.seconds)
        result.compare = "none"
    elif step.action == "wait_for_config":
        result.compare = "none"
        try:
            await world.wait_for_config(step.timeout)
        except RuntimeError as e:
            result.failures.append(str(e))
    elif step.action == "xds_state":
        await _xds_state(world, step, result)
    elif step.action == "sleep":
        await trio.sleep(step.seconds)
        result.compare = "none"
    elif step.action == "renewals":
        renewed, result.failures = await world.renewals(step.renewals, step.timeout)
        result.observation = {"renewed": renewed}
    elif step.action == "count":
        result.observation = {"requests": await world.backend_count(step.target)}
        if result.observation["requests"] != step.expect.requests:
            result.failures.append(
                f"requests with key {step.target!r}: expected {step.expect.requests}, "
                f"got {result.observation['requests']}"
            )
    else:
        raise ValueError(f"step {step.id}: no action {step.action!r}")
    return [result]


async def _send_many(world: World, spec: RequestSpec, count: int, concurrency: int) -> list[Reply]:
    replies: list[Reply | None] = [None] * count
    limiter = trio.CapacityLimiter(concurrency)

    async def one(i: int) -> None:
        async with limiter:
            replies[i] = await world.request(spec, i)

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(one, i)
    return [r for r in replies if r is not None]


async def _request(world: World, step: Step, spec: RequestSpec, result: StepResult) -> None:
    replies = await _send_many(world, spec, step.repeat, step.concurrency)
    observations = [observe(r, spec.protocol, world.bindings) for r in replies]
    if step.repeat == 1:
        result.observation = observations[0]
        result.failures = checks.check_one(step.expect, observations[0])
        return
    result.compare = "counts"
    result.observation, per_request = summarize(observations, step.expect)
    result.failures = per_request + checks.check_counts(
        step.expect,
        Counter(result.observation["statuses"]),
        Counter(result.observation["backends"]),
    )
    if step.anonymous_backends:
        counts = sorted(result.observation["backends"].values(), reverse=True)
        result.observation["backends"] = {f"#{i + 1}": n for i, n in enumerate(counts)}


def summarize(
    observations: list[dict[str, Any]], expect: Expect
) -> tuple[dict[str, Any], list[str]]:
    """Counts and distinct variants of many observations, and their per-request failures."""
    statuses: Counter[str] = Counter()
    backends: Counter[str] = Counter()
    variants: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    failed = 0
    for i, obs in enumerate(observations):
        statuses[str(obs["status"] if obs["status"] is not None else obs["error"])] += 1
        backends[obs["backend"] or "-"] += 1
        variant = anonymous(obs)
        variants.setdefault(json.dumps(variant, sort_keys=True), variant)
        problems = checks.check_one(expect, obs) if expect.per_request() else []
        if problems:
            failed += 1
            if failed <= MAX_LISTED:
                failures.append(f"request {i + 1}: {'; '.join(problems)}")
    if failed > MAX_LISTED:
        failures.append(f"... {failed} of {len(observations)} requests failed their checks")
    summary = {
        "requests": len(observations),
        "statuses": dict(sorted(statuses.items())),
        "backends": dict(sorted(backends.items())),
        "variants": [variants[k] for k in sorted(variants)],
    }
    return summary, failures


def anonymous(obs: dict[str, Any]) -> dict[str, Any]:
    """An observation without the identity of the backend that answered."""
    out = dict(obs)
    out.pop("backend", None)
    headers = out.get("headers")
    if isinstance(headers, dict):
        out["headers"] = {k: v for k, v in headers.items() if k != BACKEND_HEADER}
    upstream = out.get("upstream")
    if isinstance(upstream, dict):
        upstream = dict(upstream)
        upstream.pop("address", None)
        out["upstream"] = upstream
    return out


async def _eventually(world: World, step: Step, spec: RequestSpec, result: StepResult) -> None:
    attempts = 0
    obs: dict[str, Any] = {}
    problems: list[str] = ["no request was sent"]
    with trio.move_on_after(step.timeout):
        while True:
            attempts += 1
            obs = observe(await world.request(spec), spec.protocol, world.bindings)
            problems = checks.check_one(step.expect, obs)
            if not problems:
                break
            await trio.sleep(0.05)
    result.observation = obs
    if problems:
        result.failures = [f"not within {step.timeout}s ({attempts} tries): {'; '.join(problems)}"]


async def _traffic(world: World, step: Step, result: StepResult) -> list[StepResult]:
    assert step.request is not None
    spec = step.request
    observations: list[dict[str, Any]] = []
    nested: list[StepResult] = []
    done = trio.Event()

    async def load() -> None:
        while not done.is_set():
            observations.append(observe(await world.request(spec), spec.protocol, world.bindings))
            await trio.sleep(TRAFFIC_PAUSE)

    async with trio.open_nursery() as nursery:
        for _ in range(step.concurrency):
            nursery.start_soon(load)
        try:
            nested = await run_steps(world, step.during)
        finally:
            done.set()
    summary, failures = summarize(observations, step.expect)
    result.compare = "traffic"
    result.observation = {
        "requests": summary["requests"],
        "statuses": sorted(summary["statuses"]),
        "backends": sorted(summary["backends"]),
    }
    result.failures = failures + checks.check_counts(
        step.expect, Counter(summary["statuses"]), Counter(summary["backends"])
    )
    if not observations:
        result.failures.append("no request completed while the steps ran")
    return [result, *nested]


async def _xds_state(world: World, step: Step, result: StepResult) -> None:
    states: dict[str, str] | None = None
    problems: list[str] = []
    with trio.move_on_after(step.timeout):
        while True:
            states = await world.xds_states()
            problems = checks.check_xds(step.expect, states)
            if not problems:
                break
            await trio.sleep(0.05)
    wanted = [short for short, _ in step.expect.xds]
    result.observation = {k: (states or {}).get(k) for k in wanted}
    result.failures = problems
