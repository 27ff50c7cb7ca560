"""The mesh's security kinds: parsed from manifests into the model, errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from xds_server.model import (
    AuthorizationPolicy,
    PeerAuthentication,
    PolicyOperation,
    PolicyRule,
    PolicySource,
)
from xds_server.sources.load import load_texts
from xds_server.sources.parse import InvalidObject, Skipped, parse_object

GROUP = "security.xdsmesh.io/v1alpha1"
CRDS = Path(__file__).parents[3] / "api" / "crds"


def policy(
    kind: str, spec: dict[str, Any], name: str = "p", namespace: str = "shop"
) -> dict[str, Any]:
    return {
        "apiVersion": GROUP,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def test_peer_authentication() -> None:
    parsed = parse_object(
        policy(
            "PeerAuthentication",
            {"selector": {"matchLabels": {"app": "web"}}, "mtls": {"mode": "STRICT"}},
        )
    )
    assert parsed == PeerAuthentication("shop", "p", "STRICT", (("app", "web"),))
    assert parse_object(policy("PeerAuthentication", {})) == PeerAuthentication("shop", "p")


def test_authorization_policy_every_field() -> None:
    spec = {
        "selector": {"matchLabels": {"app": "web"}},
        "action": "DENY",
        "rules": [
            {
                "from": [
                    {
                        "source": {
                            "principals": ["cluster.local/ns/a/sa/b", "spiffe://td/ns/c/*"],
                            "notPrincipals": ["*/sa/admin"],
                            "namespaces": ["front*"],
                            "notNamespaces": ["kube-system"],
                        }
                    }
                ],
                "to": [
                    {
                        "operation": {
                            "methods": ["GET", "HEAD"],
                            "notMethods": ["DELETE"],
                            "paths": ["/api/*", "*.png", "/exact"],
                            "notPaths": ["/api/admin*"],
                            "ports": [8080, "9090"],
                            "notPorts": ["15000"],
                        }
                    }
                ],
            },
            {},
        ],
    }
    parsed = parse_object(policy("AuthorizationPolicy", spec))
    assert parsed == AuthorizationPolicy(
        "shop",
        "p",
        "DENY",
        (("app", "web"),),
        (
            PolicyRule(
                (
                    PolicySource(
                        ("cluster.local/ns/a/sa/b", "spiffe://td/ns/c/*"),
                        ("*/sa/admin",),
                        ("front*",),
                        ("kube-system",),
                    ),
                ),
                (
                    PolicyOperation(
                        ("GET", "HEAD"),
                        ("DELETE",),
                        ("/api/*", "*.png", "/exact"),
                        ("/api/admin*",),
                        (8080, 9090),
                        (15000,),
                    ),
                ),
            ),
            PolicyRule(),
        ),
    )


def test_defaults_allow_with_no_rules() -> None:
    assert parse_object(policy("AuthorizationPolicy", {})) == AuthorizationPolicy("shop", "p")


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"action": "AUDIT"}, "spec.action", "must be one of ALLOW, DENY"),
        ({"rules": [{"when": []}]}, "spec.rules[0].when", "not supported by the mesh"),
        (
            {"rules": [{"to": [{"operation": {"hosts": ["a"]}}]}]},
            "operation.hosts",
            "not supported",
        ),
        ({"rules": [{"from": [{"source": {}}]}]}, "spec.rules[0].from[0].source", "at least one"),
        ({"rules": [{"from": [{"source": {"principals": ["a*b"]}}]}]}, "principals[0]", "one '*'"),
        (
            {"rules": [{"from": [{"source": {"namespaces": ["Shop"]}}]}]},
            "namespaces[0]",
            "namespace",
        ),
        ({"rules": [{"to": [{"operation": {"paths": ["api"]}}]}]}, "paths[0]", "start with '/'"),
        ({"rules": [{"to": [{"operation": {"methods": ["G T"]}}]}]}, "methods[0]", "HTTP method"),
        ({"rules": [{"to": [{"operation": {"ports": [0]}}]}]}, "ports[0]", "port number"),
        ({"selector": {"matchExpressions": []}}, "spec.selector.matchExpressions", "not supported"),
    ],
)
def test_authorization_policy_errors_name_the_field(
    spec: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidObject) as e:
        parse_object(policy("AuthorizationPolicy", spec))
    assert e.value.what == "AuthorizationPolicy shop/p"
    assert any(field in str(p) and message in str(p) for p in e.value.problems), e.value


def test_peer_authentication_mode_error() -> None:
    with pytest.raises(InvalidObject, match=r"spec\.mtls\.mode: must be one of UNSET"):
        parse_object(policy("PeerAuthentication", {"mtls": {"mode": "strict"}}))


def test_istio_kinds_are_skipped_with_a_hint() -> None:
    obj = policy("AuthorizationPolicy", {})
    obj["apiVersion"] = "security.istio.io/v1"
    skipped = parse_object(obj)
    assert isinstance(skipped, Skipped)
    assert "security.xdsmesh.io/v1alpha1" in skipped.reason


def test_the_folder_loads_policies_into_the_model() -> None:
    text = yaml.safe_dump_all(
        [
            policy("PeerAuthentication", {"mtls": {"mode": "PERMISSIVE"}}, name="ns-wide"),
            policy("AuthorizationPolicy", {"action": "DENY", "rules": [{}]}, name="deny"),
        ]
    )
    result = load_texts([("policies.yaml", text)])
    assert result.model is not None, result.errors
    assert result.model.peer_authentications[("shop", "ns-wide")].mode == "PERMISSIVE"
    assert result.model.authorization_policies[("shop", "deny")].rules == (PolicyRule(),)
    broken = load_texts(
        [("bad.yaml", yaml.safe_dump(policy("AuthorizationPolicy", {"action": "NOPE"})))]
    )
    [error] = broken.errors
    assert "bad.yaml" in str(error) and "AuthorizationPolicy shop/p" in str(error)
    assert "spec.action" in str(error)


def test_crds_declare_the_group_and_kinds_the_parser_reads() -> None:
    kinds = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        [version] = spec["versions"]
        kinds[spec["names"]["kind"]] = f"{spec['group']}/{version['name']}"
        assert crd["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
    assert kinds == {"PeerAuthentication": GROUP, "AuthorizationPolicy": GROUP}
