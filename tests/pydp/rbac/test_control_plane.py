"""The control plane's own AuthorizationPolicy translation, compiled by pydp and evaluated.

`xds_server.translate` builds the inbound listener exactly as it is served;
pydp compiles its connection manager (RBAC filters included) and the
requests below get the decisions `api/CONTRACT.md` promises.
"""

from __future__ import annotations

from typing import Any

import pytest
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from pydp.listener.compile_http import compile_http_connection_manager
from pydp.listener.config import HttpConnectionManagerConfig
from pydp.listener.fields import At
from pydp.rbac import RbacRequest, run_filters
from pydp.tls.peer import TlsPeer
from tests.pydp.rbac.helpers import peer, request
from xds_server.model import AuthorizationPolicy, PolicyOperation, PolicyRule, PolicySource
from xds_server.translate.listeners import inbound_listener
from xds_server.translate.security import DISABLE, PERMISSIVE, STRICT

TD = "cluster.local"
INBOUND = 15006
APP = 8080
CLIENT = f"spiffe://{TD}/ns/a/sa/client"
OTHER_SA = f"spiffe://{TD}/ns/a/sa/other"
OTHER_NS = f"spiffe://{TD}/ns/b/sa/client"
FOREIGN = "spiffe://elsewhere/ns/a/sa/client"


def compiled(policies: tuple[AuthorizationPolicy, ...], mode: str = STRICT) -> Any:
    """pydp's connection manager config of the inbound listener the control plane serves."""
    listener = inbound_listener(INBOUND, mode, TD, policies, APP)
    hcm = hcm_pb2.HttpConnectionManager()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    return compile_http_connection_manager(hcm, At("listener inbound"))


def allowed(config: HttpConnectionManagerConfig, rq: RbacRequest) -> bool:
    verdicts = run_filters(config.rbac_filters, rq)
    return all(v.allowed for _, v in verdicts)


def allow(*rules: PolicyRule, name: str = "allow") -> AuthorizationPolicy:
    return AuthorizationPolicy("b", name, "ALLOW", rules=rules)


def deny(*rules: PolicyRule, name: str = "deny") -> AuthorizationPolicy:
    return AuthorizationPolicy("b", name, "DENY", rules=rules)


def source(**fields: tuple[str, ...]) -> tuple[PolicySource, ...]:
    return (PolicySource(**fields),)


def operation(**fields: Any) -> tuple[PolicyOperation, ...]:
    return (PolicyOperation(**fields),)


def test_no_policy_means_no_filter_and_everything_passes() -> None:
    config = compiled(())
    assert config.rbac_filters == ()
    assert allowed(config, request())


def test_mtls_sets_the_verified_peer_as_xfcc() -> None:
    for mode in (STRICT, PERMISSIVE):
        config = compiled((), mode)
        assert config.forward_client_cert_details == "SANITIZE_SET"
        assert config.set_current_client_cert_details == ("uri",)
    assert compiled((), DISABLE).forward_client_cert_details == "SANITIZE"


def test_deny_filter_comes_before_allow_filter() -> None:
    config = compiled(
        (
            allow(PolicyRule()),
            deny(PolicyRule(operations=operation(paths=("/admin*",)))),
        )
    )
    actions = [f.engine.action for f in config.rbac_filters if f.engine is not None]
    assert actions == ["DENY", "ALLOW"]
    assert allowed(config, request(path="/x"))
    assert not allowed(config, request(path="/admin/users?x=1"))


def test_allow_policy_without_rules_denies_everything() -> None:
    config = compiled((allow(),))
    assert not allowed(config, request(peer=peer(CLIENT)))


def test_deny_policy_without_rules_denies_nothing() -> None:
    config = compiled((deny(),))
    assert config.rbac_filters == ()
    assert allowed(config, request())


CASES = [
    # (rules of one ALLOW policy, request, expected)
    (PolicyRule(source(principals=(CLIENT,))), request(peer=peer(CLIENT)), True),
    (PolicyRule(source(principals=(CLIENT,))), request(peer=peer(OTHER_SA)), False),
    (PolicyRule(source(principals=(CLIENT,))), request(), False),
    (
        PolicyRule(source(principals=("cluster.local/ns/a/sa/client",))),
        request(peer=peer(CLIENT)),
        True,
    ),
    (PolicyRule(source(principals=("*",))), request(peer=peer(OTHER_NS)), True),
    (PolicyRule(source(principals=("*",))), request(peer=peer()), False),
    (PolicyRule(source(principals=("*",))), request(), False),
    (PolicyRule(source(principals=("*/sa/client",))), request(peer=peer(OTHER_NS)), True),
    (PolicyRule(source(principals=("*/sa/client",))), request(peer=peer(OTHER_SA)), False),
    (PolicyRule(source(principals=(f"spiffe://{TD}/ns/a/*",))), request(peer=peer(OTHER_SA)), True),
    (PolicyRule(source(namespaces=("a",))), request(peer=peer(OTHER_SA)), True),
    (PolicyRule(source(namespaces=("a",))), request(peer=peer(OTHER_NS)), False),
    (PolicyRule(source(namespaces=("a",))), request(peer=peer(FOREIGN)), False),
    (PolicyRule(source(namespaces=("*",))), request(peer=peer(OTHER_NS)), True),
    (PolicyRule(source(not_principals=(CLIENT,))), request(peer=peer(OTHER_SA)), True),
    (PolicyRule(source(not_principals=(CLIENT,))), request(peer=peer(CLIENT)), False),
    (PolicyRule(source(not_namespaces=("a",))), request(), True),
    (PolicyRule(operations=operation(methods=("GET", "HEAD"))), request("HEAD"), True),
    (PolicyRule(operations=operation(methods=("GET",))), request("POST"), False),
    (PolicyRule(operations=operation(not_methods=("DELETE",))), request("GET"), True),
    (PolicyRule(operations=operation(not_methods=("DELETE",))), request("DELETE"), False),
    (PolicyRule(operations=operation(paths=("/api/*",))), request(path="/api/v1?q=1"), True),
    (PolicyRule(operations=operation(paths=("/api/*",))), request(path="/x?/api/"), False),
    (PolicyRule(operations=operation(paths=("*.js",))), request(path="/app.js#top"), True),
    (PolicyRule(operations=operation(paths=("/health",))), request(path="/health/"), False),
    (PolicyRule(operations=operation(not_paths=("/admin*",))), request(path="/adm"), True),
    (PolicyRule(operations=operation(ports=(APP,))), request(port=INBOUND), True),
    (PolicyRule(operations=operation(ports=(APP,))), request(port=APP), False),
    (PolicyRule(operations=operation(ports=(9999,))), request(port=INBOUND), False),
    (PolicyRule(operations=operation(not_ports=(APP,))), request(port=INBOUND), False),
    (
        PolicyRule(
            source(principals=(CLIENT,)),
            operation(methods=("GET",), paths=("/api/*",)),
        ),
        request("GET", "/api/x", peer=peer(CLIENT)),
        True,
    ),
    (
        PolicyRule(
            source(principals=(CLIENT,)),
            operation(methods=("GET",), paths=("/api/*",)),
        ),
        request("POST", "/api/x", peer=peer(CLIENT)),
        False,
    ),
]


@pytest.mark.parametrize(("rule", "rq", "expected"), CASES)
def test_allow_rules(rule: PolicyRule, rq: RbacRequest, expected: bool) -> None:
    assert allowed(compiled((allow(rule),)), rq) is expected


@pytest.mark.parametrize(("rule", "rq", "expected"), CASES)
def test_deny_rules_are_their_opposite(rule: PolicyRule, rq: RbacRequest, expected: bool) -> None:
    assert allowed(compiled((deny(rule),)), rq) is not expected


def test_several_policies_and_rules() -> None:
    policies = (
        allow(
            PolicyRule(source(namespaces=("a",)), operation(methods=("GET",))),
            PolicyRule(source(principals=(OTHER_NS,))),
            name="readers",
        ),
        deny(PolicyRule(source(principals=(OTHER_SA,)), operation(paths=("/secret*",)))),
    )
    config = compiled(policies)
    cases: list[tuple[str, str, TlsPeer | None, bool]] = [
        ("GET", "/x", peer(CLIENT), True),
        ("POST", "/x", peer(CLIENT), False),
        ("POST", "/x", peer(OTHER_NS), True),
        ("GET", "/secret/1", peer(OTHER_SA), False),
        ("GET", "/secret/1", peer(CLIENT), True),
        ("GET", "/x", None, False),
    ]
    for method, path, client, expected in cases:
        assert allowed(config, request(method, path, peer=client)) is expected, (method, path)
    denied = run_filters(config.rbac_filters, request("GET", "/secret", peer=peer(OTHER_SA)))
    assert denied[-1][1].policy == "ns[b]-policy[deny]-rule[0]"
