"""The connection manager's RBAC filters and x-forwarded-client-cert settings."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf.json_format import ParseDict

from pydp.errors import ConfigError
from pydp.listener.compile_http import compile_http_connection_manager
from pydp.listener.config import HttpConnectionManagerConfig
from pydp.listener.fields import At
from pydp.rbac import RbacFilter
from tests.pydp.listener.builders import FAULT, hcm, router
from tests.pydp.rbac.helpers import http_filter, method, path_prefix, policy, request, rules

DENY_ADMIN = rules("DENY", {"admin": policy([path_prefix("/admin")])})
ALLOW_GET = rules("ALLOW", {"get": policy([method("GET")])}, rules_stat_prefix="get.")


def compiled(**fields: Any) -> HttpConnectionManagerConfig:
    config = hcm(**fields)
    del config["@type"]
    message = ParseDict(config, hcm_pb2.HttpConnectionManager())
    return compile_http_connection_manager(message, At("listener outbound", "hcm"))


def refused(**fields: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        compiled(**fields)
    assert caught.value.resource == "listener outbound"
    return caught.value


def test_rbac_filters_are_kept_in_order_before_the_router() -> None:
    config = compiled(
        http_filters=[http_filter(DENY_ADMIN), http_filter(ALLOW_GET, name="second"), router()]
    )
    deny, allow = config.rbac_filters
    assert deny.engine is not None and allow.engine is not None
    assert (deny.engine.action, allow.engine.action) == ("DENY", "ALLOW")
    assert (deny.rules_stat_prefix, allow.rules_stat_prefix) == ("", "get.")
    assert not deny.engine.decide(request(path="/admin")).allowed
    assert not allow.engine.decide(request("POST")).allowed


def test_rbac_is_known_by_its_type_url_whatever_its_name() -> None:
    config = compiled(http_filters=[http_filter(ALLOW_GET, name="authz"), router()])
    assert len(config.rbac_filters) == 1


def test_an_optional_rbac_filter_is_still_enforced() -> None:
    config = compiled(http_filters=[{**http_filter(DENY_ADMIN), "is_optional": True}, router()])
    (deny,) = config.rbac_filters
    assert deny.engine is not None


def test_an_rbac_filter_without_rules_allows_everything() -> None:
    config = compiled(http_filters=[http_filter({}), router()])
    assert config.rbac_filters == (RbacFilter(engine=None),)


def test_no_rbac_and_envoys_xfcc_default() -> None:
    config = compiled()
    assert config.rbac_filters == ()
    assert config.forward_client_cert_details == "SANITIZE"
    assert config.set_current_client_cert_details == ()


@pytest.mark.parametrize(
    "mode", ["SANITIZE", "FORWARD_ONLY", "APPEND_FORWARD", "SANITIZE_SET", "ALWAYS_FORWARD_ONLY"]
)
def test_forward_client_cert_modes_are_carried(mode: str) -> None:
    assert compiled(forward_client_cert_details=mode).forward_client_cert_details == mode


def test_client_cert_details_in_envoys_order() -> None:
    config = compiled(
        forward_client_cert_details="APPEND_FORWARD",
        set_current_client_cert_details={"dns": True, "uri": True, "subject": True},
    )
    assert config.set_current_client_cert_details == ("subject", "uri", "dns")
    config = compiled(
        forward_client_cert_details="SANITIZE_SET",
        set_current_client_cert_details={"subject": False, "uri": True},
    )
    assert config.set_current_client_cert_details == ("uri",)


def test_cert_and_chain_are_accepted_where_they_have_no_effect() -> None:
    config = compiled(
        forward_client_cert_details="FORWARD_ONLY",
        set_current_client_cert_details={"cert": True, "chain": True, "uri": True},
    )
    assert config.set_current_client_cert_details == ("uri",)


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        (
            {
                "forward_client_cert_details": "SANITIZE_SET",
                "set_current_client_cert_details": {"cert": True},
            },
            "set_current_client_cert_details.cert",
            "PEM",
        ),
        (
            {
                "forward_client_cert_details": "APPEND_FORWARD",
                "set_current_client_cert_details": {"uri": True, "chain": True},
            },
            "set_current_client_cert_details.chain",
            "PEM",
        ),
        (
            {"forward_client_cert_matcher": {}},
            "forward_client_cert_matcher",
            "not supported",
        ),
        (
            {"http_filters": [{"name": "envoy.filters.http.rbac"}, router()]},
            "http_filters[0].typed_config",
            "needs a typed_config",
        ),
        (
            {"http_filters": [router(), http_filter(DENY_ADMIN)]},
            "http_filters[0]",
            "must be the last",
        ),
        (
            {"http_filters": [http_filter(DENY_ADMIN)]},
            "http_filters",
            "must be envoy.filters.http.router",
        ),
        (
            {
                "http_filters": [
                    http_filter(DENY_ADMIN),
                    {"name": "f", "typed_config": {"@type": FAULT}},
                    router(),
                ]
            },
            "http_filters[1]",
            "pydp supports only envoy.filters.http.rbac and envoy.filters.http.router",
        ),
        (
            {"http_filters": [{**http_filter({}), "disabled": True}, router()]},
            "http_filters[0].disabled",
            "not supported",
        ),
        (
            {"http_filters": [http_filter({"shadow_rules": {}}), router()]},
            "http_filters[0].typed_config.shadow_rules",
            "shadow rules",
        ),
        (
            {
                "http_filters": [
                    http_filter(DENY_ADMIN),
                    http_filter(rules("ALLOW", {"p": policy([{"destination_ip": {}}])})),
                    router(),
                ]
            },
            'http_filters[1].typed_config.rules.policies["p"].permissions[0].destination_ip',
            "not supported by pydp",
        ),
    ],
)
def test_refusals_name_the_field(fields: dict[str, Any], field: str, problem: str) -> None:
    error = refused(**fields)
    assert error.field == f"hcm.{field}"
    assert problem in error.problem
