"""AuthorizationPolicies into RBAC filters: selection, order, and each rule shape."""

from __future__ import annotations

from typing import Any

from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from api.contract import NodeProfile
from tests.xds_server.translate.models import as_dict
from xds_server.model import (
    AuthorizationPolicy,
    Model,
    Pod,
    PolicyOperation,
    PolicyRule,
    PolicySource,
)
from xds_server.translate import MeshSecurity, translate_node
from xds_server.translate.rbac import rbac_filters

NODE = NodeProfile("shop", "web", inbound_port=15006, app_port=8080)
PODS = (Pod("shop", "web-1", "web", (("app", "web"),)), Pod("shop", "db-1", "db", (("app", "db"),)))


def http_filters(*policies: AuthorizationPolicy, profile: NodeProfile = NODE) -> list[Any]:
    model = Model.build(pods=PODS, policies=policies)
    listener = translate_node(model, profile).listeners["inbound"]
    hcm = hcm_pb2.HttpConnectionManager()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    return list(hcm.http_filters)


def rules_of(http_filter: Any) -> dict[str, Any]:
    config = rbac_pb2.RBAC()
    assert http_filter.typed_config.Unpack(config)
    return as_dict(config.rules)


def one_rule(rule: PolicyRule, action: str = "ALLOW") -> dict[str, Any]:
    [f] = rbac_filters(
        (AuthorizationPolicy("shop", "p", action, (), (rule,)),), "cluster.local", 8080, 15006
    )
    policies = rules_of(f)["policies"]
    [policy] = policies.values()
    return policy  # type: ignore[no-any-return]


def authenticated(matcher: dict[str, Any]) -> dict[str, Any]:
    return {"authenticated": {"principal_name": matcher}}


def test_no_policy_no_filter() -> None:
    assert [f.name for f in http_filters()] == ["envoy.filters.http.router"]


def test_deny_filter_comes_before_allow_then_router() -> None:
    allow = AuthorizationPolicy("shop", "allow", "ALLOW", (), (PolicyRule(),))
    deny = AuthorizationPolicy("shop", "deny", "DENY", (), (PolicyRule(),))
    filters = http_filters(allow, deny)
    assert [f.name for f in filters] == [
        "envoy.filters.http.rbac",
        "envoy.filters.http.rbac",
        "envoy.filters.http.router",
    ]
    assert rules_of(filters[0])["action"] == "DENY"
    assert list(rules_of(filters[0])["policies"]) == ["ns[shop]-policy[deny]-rule[0]"]
    assert rules_of(filters[1]).get("action", "ALLOW") == "ALLOW"
    assert list(rules_of(filters[1])["policies"]) == ["ns[shop]-policy[allow]-rule[0]"]


def test_allow_without_rules_denies_everything() -> None:
    filters = http_filters(AuthorizationPolicy("shop", "nothing"))
    assert len(filters) == 2
    assert rules_of(filters[0]) == {}  # action ALLOW (the default), no policies: deny all


def test_deny_without_rules_is_no_filter() -> None:
    assert len(http_filters(AuthorizationPolicy("shop", "nothing", "DENY"))) == 1


def test_selection_by_namespace_and_by_labels() -> None:
    web_only = AuthorizationPolicy("shop", "web", "DENY", (("app", "web"),), (PolicyRule(),))
    db_only = AuthorizationPolicy("shop", "db", "DENY", (("app", "db"),), (PolicyRule(),))
    elsewhere = AuthorizationPolicy("data", "all", "DENY", (), (PolicyRule(),))
    [deny, _] = http_filters(web_only, db_only, elsewhere)
    assert list(rules_of(deny)["policies"]) == ["ns[shop]-policy[web]-rule[0]"]
    unknown = NodeProfile("shop", "nobody")  # no Pod runs as it: only namespace-wide policies
    assert len(http_filters(web_only, db_only, profile=unknown)) == 1


def test_empty_rule_matches_everything() -> None:
    assert one_rule(PolicyRule()) == {"permissions": [{"any": True}], "principals": [{"any": True}]}


def test_principals_exact_prefix_suffix_any_and_istio_short_form() -> None:
    rule = PolicyRule(
        sources=(
            PolicySource(
                principals=(
                    "spiffe://cluster.local/ns/a/sa/b",
                    "cluster.local/ns/c/sa/d",
                    "cluster.local/ns/e/*",
                    "*/sa/f",
                    "*",
                )
            ),
        )
    )
    assert one_rule(rule)["principals"] == [
        {
            "or_ids": {
                "ids": [
                    authenticated({"exact": "spiffe://cluster.local/ns/a/sa/b"}),
                    authenticated({"exact": "spiffe://cluster.local/ns/c/sa/d"}),
                    authenticated({"prefix": "spiffe://cluster.local/ns/e/"}),
                    authenticated({"suffix": "/sa/f"}),
                    authenticated({"safe_regex": {"regex": ".+"}}),
                ]
            }
        }
    ]


def test_namespaces_become_principal_regexes_of_the_trust_domain() -> None:
    rule = PolicyRule(
        sources=(PolicySource(namespaces=("front", "team-*"), not_namespaces=("*-test",)),)
    )
    assert one_rule(rule)["principals"] == [
        {
            "and_ids": {
                "ids": [
                    {
                        "or_ids": {
                            "ids": [
                                authenticated(
                                    {
                                        "safe_regex": {
                                            "regex": r"spiffe://cluster\.local/ns/front/sa/[^/]+"
                                        }
                                    }
                                ),
                                authenticated(
                                    {
                                        "safe_regex": {
                                            "regex": r"spiffe://cluster\.local/ns/team-[^/]*/sa/[^/]+"
                                        }
                                    }
                                ),
                            ]
                        }
                    },
                    {
                        "not_id": authenticated(
                            {
                                "safe_regex": {
                                    "regex": r"spiffe://cluster\.local/ns/[^/]*-test/sa/[^/]+"
                                }
                            }
                        )
                    },
                ]
            }
        }
    ]


def test_sources_are_alternatives_and_fields_within_one_all_apply() -> None:
    rule = PolicyRule(
        sources=(
            PolicySource(principals=("cluster.local/ns/a/sa/b",), not_principals=("*/sa/x",)),
            PolicySource(namespaces=("c",)),
        )
    )
    principals = one_rule(rule)["principals"]
    assert len(principals) == 2
    assert principals[0] == {
        "and_ids": {
            "ids": [
                authenticated({"exact": "spiffe://cluster.local/ns/a/sa/b"}),
                {"not_id": authenticated({"suffix": "/sa/x"})},
            ]
        }
    }


def test_methods_and_paths() -> None:
    rule = PolicyRule(
        operations=(
            PolicyOperation(
                methods=("GET",),
                not_methods=("DELETE", "PUT"),
                paths=("/exact", "/api/*", "*.png"),
                not_paths=("*",),
            ),
        )
    )
    [permission] = one_rule(rule)["permissions"]
    assert permission == {
        "and_rules": {
            "rules": [
                {"header": {"name": ":method", "string_match": {"exact": "GET"}}},
                {
                    "not_rule": {
                        "or_rules": {
                            "rules": [
                                {
                                    "header": {
                                        "name": ":method",
                                        "string_match": {"exact": "DELETE"},
                                    }
                                },
                                {"header": {"name": ":method", "string_match": {"exact": "PUT"}}},
                            ]
                        }
                    }
                },
                {
                    "or_rules": {
                        "rules": [
                            {"url_path": {"path": {"exact": "/exact"}}},
                            {"url_path": {"path": {"prefix": "/api/"}}},
                            {"url_path": {"path": {"suffix": ".png"}}},
                        ]
                    }
                },
                {"not_rule": {"any": True}},
            ]
        }
    }


def test_ports_are_decided_against_the_workload_port() -> None:
    ours = one_rule(PolicyRule(operations=(PolicyOperation(ports=(9000, 8080)),)))
    assert ours["permissions"] == [{"destination_port": 15006}]
    other = one_rule(PolicyRule(operations=(PolicyOperation(ports=(9000,)),)))
    assert other["permissions"] == [{"not_rule": {"any": True}}]
    excluded = one_rule(PolicyRule(operations=(PolicyOperation(not_ports=(8080,)),)))
    assert excluded["permissions"] == [{"not_rule": {"any": True}}]
    not_excluded = one_rule(PolicyRule(operations=(PolicyOperation(not_ports=(9000,)),)))
    assert not_excluded["permissions"] == [{"any": True}]


def test_rbac_applies_on_every_inbound_chain_with_mtls() -> None:
    deny = AuthorizationPolicy("shop", "deny", "DENY", (), (PolicyRule(),))
    model = Model.build(pods=PODS, policies=[deny])
    listener = translate_node(model, NODE, security=MeshSecurity(mtls=True)).listeners["inbound"]
    assert len(listener.filter_chains) == 2
    for chain in listener.filter_chains:
        hcm = hcm_pb2.HttpConnectionManager()
        assert chain.filters[0].typed_config.Unpack(hcm)
        assert [f.name for f in hcm.http_filters] == [
            "envoy.filters.http.rbac",
            "envoy.filters.http.router",
        ]
