"""Checking observations against a step's `expect`: each unmet check is one message.

Messages say what was expected and what was got, so a failure reads alone.
Per-request checks look at one observation (`observe.py`); aggregate checks
(`distribution`, `statuses`, `backends_seen`) look at the counts of a
repeated step, with the tolerance stated in `stats.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from conformance import stats
from conformance.scenario import Expect


def check_one(expect: Expect, obs: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []

    def differ(what: str, want: object, got: object) -> None:
        if want != got:
            problems.append(f"{what}: expected {want!r}, got {got!r}")

    if expect.status is not None:
        differ("status", expect.status, obs.get("status"))
    if expect.error is not None and (obs.get("error") is not None) != expect.error:
        want = "a client-side failure" if expect.error else "no client-side failure"
        problems.append(f"error: expected {want}, got {obs.get('error')!r}")
    if expect.backend is not None and obs.get("backend") not in expect.backend:
        choices = " or ".join(repr(b) for b in expect.backend)
        problems.append(f"backend: expected {choices}, got {obs.get('backend')!r}")
    problems += _headers("header", expect.headers, obs.get("headers") or {})
    upstream = obs.get("upstream")
    if (expect.upstream or expect.upstream_headers) and upstream is None:
        problems.append("upstream: expected the backend's echo, got none")
    elif upstream is not None:
        for field, want in expect.upstream:
            differ(f"upstream {field}", want, _upstream_field(upstream, field))
        problems += _headers("upstream header", expect.upstream_headers, upstream["headers"])
    body = obs.get("body") or {}
    if expect.body is not None:
        differ("body", expect.body, body.get("text"))
    if expect.body_contains is not None and expect.body_contains not in (body.get("text") or ""):
        problems.append(f"body: expected it to contain {expect.body_contains!r}, got {body!r}")
    if expect.body_length is not None:
        differ("body length", expect.body_length, body.get("length"))
    grpc = obs.get("grpc") or {}
    if expect.grpc_status is not None:
        differ("grpc-status", expect.grpc_status, grpc.get("status"))
    if expect.grpc_message is not None:
        differ("grpc-message", expect.grpc_message, grpc.get("message"))
    if expect.grpc_messages is not None:
        differ("gRPC messages", expect.grpc_messages, grpc.get("messages"))
    for status, more in expect.by_status:
        if obs.get("status") == status:
            problems += [f"(status {status}) {p}" for p in check_one(more, obs)]
    return problems


def _upstream_field(upstream: Mapping[str, Any], field: str) -> str | None:
    if field in ("body_length", "body_sha256"):
        value = (upstream.get("body") or {}).get(field.removeprefix("body_"))
    else:
        value = upstream.get(field)
    return None if value is None else str(value)


def _headers(
    what: str, wanted: tuple[tuple[str, str | None], ...], got: Mapping[str, list[str]]
) -> list[str]:
    problems = []
    for name, want in wanted:
        values = got.get(name)
        if want is None:
            if values is not None:
                problems.append(f"{what} {name}: expected absent, got {values!r}")
        elif values is None:
            problems.append(f"{what} {name}: expected {want!r}, got none")
        elif want not in values and ", ".join(values) != want:
            problems.append(f"{what} {name}: expected {want!r}, got {values!r}")
    return problems


def check_counts(expect: Expect, statuses: Counter[str], backends: Counter[str]) -> list[str]:
    problems = []
    if expect.statuses:
        want = {str(s): n for s, n in expect.statuses}
        got = {k: n for k, n in statuses.items() if n}
        if want != got:
            problems.append(f"statuses: expected {want}, got {dict(sorted(got.items()))}")
    if expect.backends_seen is not None:
        seen = sorted(k for k, n in backends.items() if n and k != "-")
        if seen != list(expect.backends_seen):
            problems.append(f"backends seen: expected {list(expect.backends_seen)}, got {seen}")
    if expect.distinct_backends is not None:
        distinct = sum(1 for k, n in backends.items() if n and k != "-")
        if distinct != expect.distinct_backends:
            problems.append(
                f"distinct backends: expected {expect.distinct_backends}, got {distinct}"
            )
    if expect.distribution:
        verdict = stats.goodness_of_fit(backends, dict(expect.distribution))
        if not verdict.ok:
            problems.append(str(verdict))
    return problems


def check_xds(expect: Expect, states: Mapping[str, str] | None) -> list[str]:
    if states is None:
        return ["xds: the proxy is not connected to the control plane"]
    return [
        f"xds {short}: expected {want}, got {states.get(short, 'nothing sent')}"
        for short, want in expect.xds
        if states.get(short) != want
    ]
