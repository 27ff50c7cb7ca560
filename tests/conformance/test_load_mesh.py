"""Scenario files of pods mode: identities, client pods, the mesh's CA, TLS clients, `cross`."""

from __future__ import annotations

import re
from typing import Any

import pytest

from conformance import load
from conformance.load import ScenarioError
from conformance.scenario import (
    DEFAULT_CLIENT,
    Client,
    ClientTls,
    ExpectedDifference,
    MeshCA,
    Scenario,
)

MESH: dict[str, Any] = {
    "name": "mesh",
    "description": "a mesh",
    "modes": ["pods"],
    "cross": True,
    "ca": {"cert_ttl": "3s", "mtls_mode": "STRICT", "trust_domain": "prod.example"},
    "clients": {
        "conformance": {"service_account": "frontend"},
        "outsider": {"sidecar": False, "namespace": "edge", "labels": {"team": "x"}},
    },
    "backends": {
        "reviews-1": {"protocol": "h1", "namespace": "shop", "service_account": "reviews"},
        "web-1": {"protocol": "any", "labels": {"app": "web", "tier": "front"}},
        "plain-1": "h1",
    },
    "steps": [
        {"request": {"host": "reviews.shop:9080"}},
        {
            "request": {
                "host": "{backend:reviews-1}:8080",
                "from": "outsider",
                "tls": {"certificate": "foreign", "trust_domain": "other.example"},
            },
            "expect": {"error": True},
        },
        {"request": {"host": "{backend:reviews-1}:8080", "from": "outsider", "tls": None}},
        {"renewals": 2, "timeout": 15},
    ],
}


def parse(**changes: Any) -> Scenario:
    return load.parse({**MESH, **changes}, "mesh.yaml")


def problem(**changes: Any) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse(**changes)
    assert caught.value.source == "mesh.yaml"
    return f"{caught.value.where}: {caught.value.problem}"


def test_a_mesh_scenario_parses() -> None:
    s = parse()
    assert s.cross is True
    assert s.ca == MeshCA("3s", "STRICT", "prod.example")
    assert s.ca.serve_flags() == (
        "--cert-ttl", "3s", "--mtls-mode", "STRICT", "--trust-domain", "prod.example"
    )  # fmt: skip
    reviews, web, plain = s.backends
    assert (reviews.namespace, reviews.service_account, reviews.pod_labels) == (
        "shop",
        "reviews",
        {"app": "reviews-1"},
    )
    assert web.pod_labels == {"app": "web", "tier": "front"}
    assert (plain.namespace, plain.service_account) == ("default", "default")
    assert s.client(DEFAULT_CLIENT) == Client(DEFAULT_CLIENT, service_account="frontend")
    assert s.client("outsider") == Client(
        "outsider", "edge", labels=(("team", "x"),), sidecar=False
    )
    assert [c.name for c in s.client_pods] == [DEFAULT_CLIENT, "outsider"]
    first, foreign, default_tls, renewals = s.steps
    assert (first.request and first.request.client, first.request and first.request.tls) == (
        DEFAULT_CLIENT,
        None,
    )
    assert foreign.request is not None and foreign.request.client == "outsider"
    assert foreign.request.tls == ClientTls("foreign", "other.example")
    assert default_tls.request is not None and default_tls.request.tls == ClientTls()
    assert (renewals.action, renewals.renewals, renewals.timeout) == ("renewals", 2, 15.0)


def test_the_default_client_is_there_without_clients() -> None:
    s = parse(clients={}, steps=[{"request": {"host": "x"}}])
    assert s.client_pods == (Client(DEFAULT_CLIENT),)
    with pytest.raises(KeyError, match="no client pod 'nobody'"):
        s.client("nobody")


def test_ca_true_is_the_defaults() -> None:
    ca = parse(ca=True).ca
    assert ca == MeshCA()
    assert ca.serve_flags() == ()


@pytest.mark.parametrize(
    "field",
    [
        {"ca": {}},
        {"cross": True},
        {"clients": {"x": {}}},
        {"backends": {"a": {"protocol": "h1", "namespace": "shop"}}},
        {"backends": {"a": {"protocol": "h1", "labels": {"app": "a"}}}},
    ],
)
def test_pods_fields_on_a_loopback_scenario_are_named(field: dict[str, Any]) -> None:
    doc = {
        "name": "mesh",
        "description": "d",
        "backends": {"a": "h1"},
        "steps": [{"request": {"host": "x"}}],
    }
    with pytest.raises(ScenarioError, match="exists in pods mode only"):
        load.parse({**doc, **field}, "mesh.yaml")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ca": {"mtls_mode": "LOOSE"}}, "ca.mtls_mode: must be one of STRICT, PERMISSIVE"),
        ({"ca": {"cert_ttl": "soon"}}, "ca.cert_ttl: must be a duration such as 3s"),
        ({"ca": {"trust_domain": "Prod"}}, "ca.trust_domain: 'Prod': lowercase"),
        ({"ca": {"root": "x"}}, "ca: unknown field(s) root"),
        ({"cross": "yes"}, "cross: must be true or false"),
        (
            {"clients": {"conformance": {"sidecar": False}}},
            "clients.conformance.sidecar: the default client 'conformance' has a sidecar",
        ),
        ({"clients": {"web-1": {}}}, "clients.web-1: 'web-1' is a backend's name too"),
        (
            {"clients": {"x": {"namespace": "Shop_1"}}},
            "clients.x.namespace: 'Shop_1' is not a DNS label",
        ),
        ({"clients": {"x": {"sidecar": "no"}}}, "clients.x.sidecar: must be true or false"),
        (
            {"backends": {"conformance": "h1"}},
            "backends.conformance: 'conformance' is the client pod's name",
        ),
        (
            {"backends": {"a": {"protocol": "h3"}}},
            "backends.a.protocol: must be one of h1, h2, grpc, any",
        ),
        (
            {"steps": [{"request": {"host": "x", "from": "nobody"}}]},
            "steps[0].request.from: names no client pod of this scenario: 'nobody'",
        ),
        (
            {"steps": [{"request": {"host": "x", "tls": {}}}]},
            "steps[0].request.tls: client pod 'conformance' has a sidecar",
        ),
        (
            {
                "steps": [
                    {"request": {"host": "x", "from": "outsider", "tls": {"certificate": "x"}}}
                ]
            },
            "steps[0].request.tls.certificate: must be one of mesh, foreign, none",
        ),
        (
            {"steps": [{"request": {"host": "x", "from": "outsider", "tls": {"sni": "x"}}}]},
            "steps[0].request.tls: unknown field(s) sni",
        ),
        (
            {
                "steps": [
                    {
                        "request": {
                            "host": "x",
                            "from": "outsider",
                            "protocol": "grpc",
                            "tls": {},
                        }
                    }
                ]
            },
            "steps[0].request.tls: goes with protocol h1 or h2",
        ),
        ({"steps": [{"renewals": 0}]}, "steps[0].renewals: must be between 1 and 20"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], message: str) -> None:
    assert problem(**changes).startswith(message)


@pytest.mark.parametrize(
    "step",
    [
        {"renewals": 1},
        {"request": {"host": "x", "from": "outsider", "tls": {}}},
    ],
)
def test_certificates_need_the_ca(step: dict[str, Any]) -> None:
    doc = {k: v for k, v in MESH.items() if k != "ca"}
    with pytest.raises(ScenarioError, match=re.escape("needs the mesh's CA: add `ca:`")):
        load.parse({**doc, "steps": [step]}, "mesh.yaml")


def test_a_reason_to_differ_covers_the_runs_across_its_data_plane() -> None:
    s = parse(expect_differs=[{"dataplane": "pydp", "reason": "not yet"}])
    assert s.reason_to_differ("pydp") == "not yet"
    assert s.reason_to_differ("envoy->pydp") == "not yet"
    assert s.reason_to_differ("pydp->envoy") == "not yet"
    assert s.reason_to_differ("envoy") is None
    exact = parse(expect_differs=[{"dataplane": "envoy->pydp", "reason": "one way"}])
    assert exact.expect_differs == (ExpectedDifference("envoy->pydp", "one way"),)
    assert exact.reason_to_differ("envoy->pydp") == "one way"
    assert exact.reason_to_differ("pydp->envoy") is None


def test_the_bundled_zero_trust_scenarios_run_as_pods_with_the_ca() -> None:
    bundled = {s.name: s for s in load.load_all()}
    names = {
        "mtls-between-sidecars",
        "strict-refuses-plaintext",
        "permissive-accepts-both",
        "foreign-trust-domain-refused",
        "authz-by-principal",
        "authz-by-namespace",
        "authz-by-method-and-path",
        "cert-rotation-under-traffic",
    }
    assert names <= {name for name, s in bundled.items() if s.ca is not None}
    for name in names:
        assert bundled[name].modes == ("pods",), name
    assert bundled["mtls-between-sidecars"].cross
    assert bundled["cert-rotation-under-traffic"].ca == MeshCA(cert_ttl="3s")


def test_no_scenario_is_pending() -> None:
    """conformance/pending/ holds only its README: every scenario passes on both planes."""
    assert load.load_all(load.bundled_dir().parent / "pending") == []
