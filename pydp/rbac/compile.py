"""Compile `envoy.extensions.filters.http.rbac.v3.RBAC` into an `RbacFilter`.

Only enforced `rules` with action ALLOW or DENY are evaluated; shadow rules,
the `matcher` API, the LOG action, audit logging and CEL conditions are
refused with a `ConfigError` naming the field, which NACKs the resource.
"""

from __future__ import annotations

from typing import Any

from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as rbac_filter_pb2

from pydp.rbac.engine import Policy, RbacEngine, RbacFilter
from pydp.rbac.matchers import compile_permissions, compile_principals
from pydp.router._proto import Where, check_fields

RBAC_FILTER = "envoy.filters.http.rbac"
RBAC_TYPE = "type.googleapis.com/" + rbac_filter_pb2.RBAC.DESCRIPTOR.full_name
_ACTIONS = {rbac_pb2.RBAC.ALLOW: "ALLOW", rbac_pb2.RBAC.DENY: "DENY"}
_FILTER_FIELDS = ("rules", "rules_stat_prefix", "shadow_rules_stat_prefix", "track_per_rule_stats")
_FILTER_REASONS = {
    "matcher": "the matcher API is not supported by pydp; use rules",
    "shadow_rules": "shadow rules are not supported by pydp",
    "shadow_matcher": "shadow rules are not supported by pydp",
}
_POLICY_REASONS = {
    "condition": "CEL conditions are not supported by pydp",
    "checked_condition": "CEL conditions are not supported by pydp",
    "cel_config": "CEL conditions are not supported by pydp",
}


def compile_rbac_filter(proto: Any, resource: str, path: str = "") -> RbacFilter:
    """The filter of an `RBAC` message; errors name `resource` and the field under `path`."""
    where = Where(resource, path)
    check_fields(proto, where, _FILTER_FIELDS, _FILTER_REASONS)
    engine = compile_rules(proto.rules, where.at("rules")) if proto.HasField("rules") else None
    return RbacFilter(
        engine=engine,
        rules_stat_prefix=proto.rules_stat_prefix,
        shadow_rules_stat_prefix=proto.shadow_rules_stat_prefix,
        track_per_rule_stats=bool(proto.track_per_rule_stats),
    )


def compile_rules(proto: Any, where: Where) -> RbacEngine:
    """An `envoy.config.rbac.v3.RBAC`: the action and its policies, in name order."""
    check_fields(
        proto,
        where,
        ("action", "policies"),
        {"audit_logging_options": "audit logging is not supported by pydp"},
    )
    action = _ACTIONS.get(proto.action)
    if action is None:
        name = rbac_pb2.RBAC.Action.Name(proto.action)
        raise where.at("action").error(f"{name} is not supported by pydp (ALLOW or DENY)")
    policies = tuple(
        _policy(name, proto.policies[name], where.at(f'policies["{name}"]'))
        for name in sorted(proto.policies, key=lambda n: n.encode())
    )
    return RbacEngine(action, policies)


def _policy(name: str, proto: Any, where: Where) -> Policy:
    check_fields(proto, where, ("permissions", "principals"), _POLICY_REASONS)
    return Policy(
        name=name,
        permissions=compile_permissions(proto.permissions, where, "permissions"),
        principals=compile_principals(proto.principals, where, "principals"),
    )
