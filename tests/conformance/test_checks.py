"""Observations, expectation checks, and the comparison of data planes."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

from conformance import compare, expect, observe
from conformance.client import Reply
from conformance.echo.grpc_frame import frame
from conformance.placeholders import Bindings
from conformance.results import DIFFERS, EXPECTED, FAIL, PASS, SKIP, RunResult, StepResult
from conformance.scenario import Backend, Expect, ExpectedDifference, Scenario
from conformance.steps import summarize

BINDINGS = Bindings({"a": "127.9.9.11"}, {"http": 4000})


def echo_reply(**upstream_headers: str) -> Reply:
    body = {
        "name": "a",
        "address": "127.9.9.11:4000",
        "protocol": "HTTP/1.1",
        "method": "GET",
        "path": "/p",
        "query": "q=1",
        "authority": "svc",
        "headers": {"x-request-id": ["abc"], **{k: [v] for k, v in upstream_headers.items()}},
        "body": {"length": 0, "sha256": "e3"},
    }
    raw = json.dumps(body).encode()
    return Reply(
        status=200,
        headers=(
            ("x-echo-backend", "a"),
            ("content-type", "application/json"),
            ("content-length", str(len(raw))),
            ("date", "today"),
            ("server", "envoy"),
            ("x-envoy-upstream-service-time", "3"),
        ),
        body=raw,
    )


def test_observe_an_echo_reply() -> None:
    obs = observe.observe(echo_reply(), "h1", BINDINGS)
    assert obs["backend"] == "a"
    assert "date" not in obs["headers"] and "server" not in obs["headers"]
    assert obs["headers"]["content-length"] == ["*"]
    assert obs["headers"]["x-envoy-upstream-service-time"] == ["*"]
    assert obs["upstream"]["address"] == "{backend:a}:{port:http}"
    assert obs["upstream"]["headers"]["x-request-id"] == ["*"]
    assert "name" not in obs["upstream"]
    assert obs["body"] is None


def test_expected_timeout_is_masked_only_on_retries() -> None:
    first = observe.observe(echo_reply(**{"x-envoy-expected-rq-timeout-ms": "250"}), "h1", BINDINGS)
    assert first["upstream"]["headers"]["x-envoy-expected-rq-timeout-ms"] == ["250"]
    retried = echo_reply(**{"x-envoy-expected-rq-timeout-ms": "231", "x-envoy-attempt-count": "2"})
    obs = observe.observe(retried, "h1", BINDINGS)
    assert obs["upstream"]["headers"]["x-envoy-expected-rq-timeout-ms"] == ["*"]


def test_observe_a_local_reply_and_grpc() -> None:
    local = Reply(status=503, headers=(("content-length", "19"),), body=b"no healthy upstream")
    obs = observe.observe(local, "h1", BINDINGS)
    assert obs["backend"] is None
    assert obs["body"]["text"] == "no healthy upstream"
    assert obs["headers"]["content-length"] == ["19"]
    grpc = Reply(
        status=200,
        headers=(("x-echo-backend", "a"), ("content-type", "application/grpc")),
        body=frame(json.dumps({"headers": {}, "address": "127.9.9.11:4000"}).encode())
        + frame(b"x"),
        trailers=(("grpc-status", "0"),),
    )
    obs = observe.observe(grpc, "grpc", BINDINGS)
    assert obs["grpc"]["status"] == 0
    assert obs["grpc"]["messages"] == 2
    assert obs["upstream"]["address"] == "{backend:a}:{port:http}"


def test_check_one_reports_each_unmet_expectation() -> None:
    obs = observe.observe(echo_reply(**{"x-added": "yes"}), "h1", BINDINGS)
    good = Expect(
        status=200,
        backend=("a",),
        upstream=(("path", "/p"), ("query", "q=1"), ("body_length", "0")),
        upstream_headers=(("x-added", "yes"), ("x-gone", None)),
        headers=(("content-type", "application/json"),),
    )
    assert expect.check_one(good, obs) == []
    bad = Expect(
        status=404,
        backend=(None,),
        upstream=(("path", "/other"),),
        upstream_headers=(("x-added", None),),
        headers=(("x-missing", "1"),),
        body="text",
    )
    problems = expect.check_one(bad, obs)
    assert problems == [
        "status: expected 404, got 200",
        "backend: expected None, got 'a'",
        "header x-missing: expected '1', got none",
        "upstream path: expected '/other', got '/p'",
        "upstream header x-added: expected absent, got ['yes']",
        "body: expected 'text', got None",
    ]


def test_by_status_applies_to_matching_replies_only() -> None:
    rule = Expect(by_status=((503, Expect(headers=(("x-envoy-overloaded", "true"),))),))
    assert expect.check_one(rule, {"status": 200, "headers": {}}) == []
    assert expect.check_one(rule, {"status": 503, "headers": {}}) == [
        "(status 503) header x-envoy-overloaded: expected 'true', got none"
    ]


def test_check_counts() -> None:
    backends = Counter({"a": 50, "b": 50})
    statuses = Counter({"200": 100})
    rule = Expect(
        statuses=((200, 100),),
        backends_seen=("a", "b"),
        distinct_backends=2,
        distribution=(("a", 1.0), ("b", 1.0)),
    )
    assert expect.check_counts(rule, statuses, backends) == []
    skewed = Counter({"a": 95, "b": 5})
    problems = expect.check_counts(rule, Counter({"200": 99, "503": 1}), skewed)
    assert problems[0].startswith("statuses: expected {'200': 100}")
    assert "does not fit" in problems[1]


def test_summarize_counts_and_variants() -> None:
    one = observe.observe(echo_reply(), "h1", BINDINGS)
    other = copy.deepcopy(one)
    other["backend"] = "b"
    other["upstream"]["address"] = "{backend:b}:{port:http}"
    other["headers"]["x-echo-backend"] = ["b"]
    summary, failures = summarize([one, other, one], Expect(status=200))
    assert summary["backends"] == {"a": 2, "b": 1}
    assert summary["statuses"] == {"200": 3}
    assert len(summary["variants"]) == 1
    assert failures == []
    _, failures = summarize([one], Expect(status=404))
    assert failures == ["request 1: status: expected 404, got 200"]


def test_differing_paths() -> None:
    a = {"x": 1, "y": [1, 2], "z": {"k": "v"}}
    b = {"x": 1, "y": [1, 3, 4], "z": {"k": "w"}, "extra": 0}
    assert compare.differing_paths(a, b) == ["extra", "y[1]", "y[2]", "z.k"]


def _run(
    dp: str, observation: Any, failures: list[str] | None = None, kind: str = "exact"
) -> RunResult:
    step = StepResult("1", "request", "r", observation, failures or [], kind)
    return RunResult("s", dp, "sotw", steps=[step])


def _scenario(differs: tuple[ExpectedDifference, ...] = ()) -> Scenario:
    return Scenario("s", "d", "s.yaml", (Backend("a", "h1"),), (), (), expect_differs=differs)


def test_compare_and_decide() -> None:
    runs = {"envoy": _run("envoy", {"status": 200}), "pydp": _run("pydp", {"status": 201})}
    differences = compare.compare_runs(runs, "envoy")
    assert [d.detail for d in differences] == ["differs at status"]
    compare.decide(_scenario(), runs, differences)
    assert (runs["envoy"].outcome, runs["pydp"].outcome) == (PASS, DIFFERS)
    compare.decide(_scenario((ExpectedDifference("pydp", "not built yet"),)), runs, differences)
    assert runs["pydp"].outcome == EXPECTED
    assert runs["pydp"].note == "not built yet"


def test_a_step_that_ran_on_one_side_only_names_the_side_without_it() -> None:
    action = StepResult("2", "apply", "change", None, [], "none")  # no observation
    extra = StepResult("3", "request", "more", {"status": 200})
    runs = {"envoy": _run("envoy", {"status": 200}), "pydp": _run("pydp", {"status": 200})}
    runs["envoy"].steps.append(action)
    runs["pydp"].steps.append(extra)
    details = [d.detail for d in compare.compare_runs(runs, "envoy")]
    assert details == ["step 2 did not run on pydp", "step 3 did not run on envoy"]


def test_a_failed_expectation_is_a_failure_and_skips_are_not_compared() -> None:
    runs = {
        "envoy": _run("envoy", {"status": 200}, ["status: expected 404, got 200"]),
        "pydp": RunResult("s", "pydp", "sotw", outcome=SKIP),
    }
    assert compare.compare_runs(runs, "envoy") == []
    compare.decide(_scenario(), runs, [])
    assert runs["envoy"].outcome == FAIL
    assert runs["pydp"].outcome == SKIP


def test_counts_are_compared_with_the_tolerance() -> None:
    def counts(a: int, b: int) -> dict[str, Any]:
        return {
            "requests": a + b,
            "statuses": {"200": a + b},
            "backends": {"a": a, "b": b},
            "variants": [],
        }

    same = compare.compare_step(
        StepResult("1", "request", "r", counts(100, 100), [], "counts"),
        StepResult("1", "request", "r", counts(96, 104), [], "counts"),
    )
    assert same == ""
    different = compare.compare_step(
        StepResult("1", "request", "r", counts(100, 100), [], "counts"),
        StepResult("1", "request", "r", counts(190, 10), [], "counts"),
    )
    assert "backends" in different and "different distribution" in different
