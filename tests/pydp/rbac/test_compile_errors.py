"""What pydp cannot honour is refused with a `ConfigError` naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from pydp.errors import ConfigError
from pydp.rbac import compile_rbac_filter
from tests.pydp.rbac.helpers import RESOURCE, policy, rbac_message, rules

P = 'rules.policies["p"]'


def one(permission: dict[str, Any] | None = None, principal: dict[str, Any] | None = None) -> Any:
    """A filter whose one policy `p` has this permission and principal."""
    return rules(
        "ALLOW",
        {
            "p": policy(
                [{"any": True} if permission is None else permission],
                [{"any": True} if principal is None else principal],
            )
        },
    )


@pytest.mark.parametrize(
    ("config", "field", "problem"),
    [
        ({"shadow_rules": {}}, "shadow_rules", "shadow rules are not supported"),
        (
            {"matcher": {"matcher_list": {"matchers": []}}},
            "matcher",
            "matcher API is not supported",
        ),
        ({"rules": {"action": "LOG"}}, "rules.action", "LOG is not supported"),
        (
            {"rules": {"audit_logging_options": {"audit_condition": "ON_DENY"}}},
            "rules.audit_logging_options",
            "audit logging",
        ),
        (
            rules("ALLOW", {"p": {**policy(), "condition": {"const_expr": {"bool_value": True}}}}),
            f"{P}.condition",
            "CEL",
        ),
        (rules("ALLOW", {"p": {"principals": [{"any": True}]}}), f"{P}.permissions", "at least 1"),
        (rules("ALLOW", {"p": {"permissions": [{"any": True}]}}), f"{P}.principals", "at least 1"),
        (one({}), f"{P}.permissions[0]", "one of any, and_rules"),
        (one({"any": False}), f"{P}.permissions[0].any", "must be true"),
        (one(principal={"any": False}), f"{P}.principals[0].any", "must be true"),
        (
            one({"destination_ip": {"address_prefix": "10.0.0.0", "prefix_len": 8}}),
            f"{P}.permissions[0].destination_ip",
            "not supported by pydp",
        ),
        (
            one({"requested_server_name": {"exact": "a"}}),
            f"{P}.permissions[0].requested_server_name",
            "not supported",
        ),
        (
            one({"destination_port_range": {"start": 1, "end": 2}}),
            f"{P}.permissions[0].destination_port_range",
            "not supported",
        ),
        (one({"destination_port": 70000}), f"{P}.permissions[0].destination_port", "65535"),
        (one({"and_rules": {}}), f"{P}.permissions[0].and_rules.rules", "at least 1"),
        (
            one({"or_rules": {"rules": [{"any": True}, {"metadata": {}}]}}),
            f"{P}.permissions[0].or_rules.rules[1].metadata",
            "not supported",
        ),
        (
            one({"not_rule": {"uri_template": {}}}),
            f"{P}.permissions[0].not_rule.uri_template",
            "not supported",
        ),
        (one({"url_path": {}}), f"{P}.permissions[0].url_path", "path is required"),
        (
            one({"url_path": {"path": {"prefix": ""}}}),
            f"{P}.permissions[0].url_path.path.prefix",
            "must not be empty",
        ),
        (
            one({"url_path": {"path": {"safe_regex": {"regex": "(?=x)"}}}}),
            f"{P}.permissions[0].url_path.path.safe_regex.regex",
            "lookahead",
        ),
        (one({"header": {"exact_match": "x"}}), f"{P}.permissions[0].header.name", "empty"),
        (
            one(principal={"source_ip": {"address_prefix": "10.0.0.1", "prefix_len": 32}}),
            f"{P}.principals[0].source_ip",
            "not supported by pydp",
        ),
        (
            one(principal={"header": {"name": "x-user", "present_match": True}}),
            f"{P}.principals[0].header",
            "not supported",
        ),
        (
            one(principal={"and_ids": {"ids": [{"any": True}, {"remote_ip": {}}]}}),
            f"{P}.principals[0].and_ids.ids[1].remote_ip",
            "not supported",
        ),
        (one(principal={"or_ids": {}}), f"{P}.principals[0].or_ids.ids", "at least 1"),
        (one(principal={}), f"{P}.principals[0]", "one of any, and_ids"),
        (
            one(
                principal={
                    "authenticated": {
                        "principal_name": {"safe_regex": {"regex": "a"}, "ignore_case": True}
                    }
                }
            ),
            f"{P}.principals[0].authenticated.principal_name.ignore_case",
            "no effect",
        ),
    ],
)
def test_refusals_name_the_field(config: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_rbac_filter(rbac_message(config), RESOURCE, "http_filters[0].typed_config")
    assert caught.value.resource == RESOURCE
    assert caught.value.field == f"http_filters[0].typed_config.{field}"
    assert problem in caught.value.problem


def test_shadow_rules_stat_prefix_alone_is_accepted() -> None:
    compiled = compile_rbac_filter(rbac_message({"shadow_rules_stat_prefix": "s."}), RESOURCE)
    assert (compiled.engine, compiled.shadow_rules_stat_prefix) == (None, "s.")
