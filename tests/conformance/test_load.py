"""Scenario files: valid ones load, broken ones name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance import load
from conformance.load import ScenarioError
from conformance.scenario import Scenario

GOOD: dict[str, Any] = {
    "name": "demo",
    "description": "a demo",
    "backends": {"a": "h1", "b": {"protocol": "h2"}},
    "manifests": [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "svc"},
            "spec": {"ports": [{"port": 80, "targetPort": "{port:http}"}]},
        }
    ],
    "steps": [
        {"request": {"host": "svc", "headers": {"x-n": 3}}, "expect": {"status": 200}},
        {
            "request": {"host": "svc", "protocol": "grpc", "path": "/x", "body": "hi"},
            "repeat": 20,
            "expect": {"distribution": {"a": 1, "b": 1}, "statuses": {200: 20}},
        },
        {
            "traffic": {"host": "svc"},
            "during": [{"sleep": 0.1}, {"stop_backend": "b"}],
            "expect": {"status": 200},
        },
        {"xds_state": {"rds": "NACKED"}},
        {"count": "k", "expect": {"requests": 2}},
    ],
    "expect_differs": [{"dataplane": "pydp", "reason": "not yet"}],
}


def parse(doc: Any) -> Scenario:
    return load.parse(doc, "demo.yaml")


def broken(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(yaml.safe_dump(GOOD))
    doc.update(changes)
    return doc


def test_a_good_scenario_parses() -> None:
    s = parse(GOOD)
    assert s.name == "demo"
    assert [b.protocol for b in s.backends] == ["h1", "h2"]
    assert s.ports == ("http",)
    first, second, traffic, xds, count = s.steps
    assert first.request is not None and first.request.headers == (("x-n", "3"),)
    assert second.request is not None and second.request.method == "POST"
    assert second.request.body == b"\x00\x00\x00\x00\x02hi"
    assert second.repeat == 20
    assert second.expect.distribution == (("a", 1.0), ("b", 1.0))
    assert second.expect.statuses == ((200, 20),)
    assert [s.id for s in traffic.during] == ["3.1", "3.2"]
    assert xds.expect.xds == (("rds", "NACKED"),)
    assert count.target == "k" and count.expect.requests == 2
    assert s.reason_to_differ("pydp") == "not yet"
    assert s.reason_to_differ("envoy") is None
    assert not s.needs_injection


@pytest.mark.parametrize(
    ("changes", "where", "problem"),
    [
        ({"name": None}, "name", "non-empty string"),
        ({"description": ""}, "description", "non-empty string"),
        ({"backends": {"a": "h3"}}, "backends.a", "must be one of"),
        ({"steps": []}, "steps", "at least one step"),
        ({"steps": [{"request": {"host": "x"}, "sleep": 1}]}, "steps[0]", "exactly one action"),
        ({"steps": [{"request": {"path": "/"}}]}, "steps[0].request.host", "non-empty"),
        ({"steps": [{"request": {"host": "x", "path": "x"}}]}, "steps[0].request.path", "'/'"),
        (
            {"steps": [{"request": {"host": "x"}, "expect": {"stauts": 200}}]},
            "steps[0].expect",
            "stauts",
        ),
        (
            {"steps": [{"request": {"host": "x"}, "expect": {"backend": "zz"}}]},
            "steps[0].expect.backend",
            "zz",
        ),
        ({"steps": [{"stop_backend": "nope"}]}, "steps[0].stop_backend", "no backend"),
        ({"steps": [{"eventually": {"host": "x"}}]}, "steps[0].expect", "required"),
        ({"steps": [{"request": {"host": "{backend:ghost}"}}]}, "steps[0]", "ghost"),
        ({"steps": [{"request": {"host": "x"}, "repeat": 0}]}, "steps[0].repeat", "between"),
        ({"steps": [{"xds_state": {"rds": "MAYBE"}}]}, "steps[0].xds_state.rds", "ACKED"),
        ({"expect_differs": [{"dataplane": "pydp"}]}, "expect_differs[0].reason", "non-empty"),
        ({"xds": [{"@type": "nope"}]}, "xds[0].@type", "must be one of"),
        ({"manifests": [{"kind": "Service"}]}, "manifests[0].apiVersion", "non-empty"),
        ({"surprise": 1}, "(top level)", "surprise"),
    ],
)
def test_a_broken_scenario_names_file_and_field(
    changes: dict[str, Any], where: str, problem: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse(broken(**changes))
    assert caught.value.source == "demo.yaml"
    assert caught.value.where == where
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"demo.yaml: {where}: ")


def test_file_name_must_match_and_yaml_must_parse(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    with pytest.raises(ScenarioError, match=r"other\.yaml: name: 'demo' differs"):
        load.load_file(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load.load_file(path)


def test_injection_is_detected() -> None:
    resource = {
        "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
        "name": "outbound",
    }
    assert parse(broken(xds=[resource])).needs_injection
    nested = [{"traffic": {"host": "x"}, "during": [{"xds_apply": [resource]}]}]
    assert parse(broken(steps=nested)).needs_injection


def test_every_bundled_scenario_loads_and_explains_itself() -> None:
    scenarios = load.load_all()
    assert len(scenarios) >= 20
    for s in scenarios:
        assert s.docs, f"{s.name} names no documentation"
        assert len(s.description) > 60, f"{s.name} explains too little"
        for difference in s.expect_differs:
            assert difference.reason.strip()
    kubernetes_only = [s.name for s in scenarios if not s.needs_injection]
    assert {"host-forms", "endpoint-churn", "grpc", "round-robin"} <= set(kubernetes_only)
