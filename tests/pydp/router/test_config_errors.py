"""Every field pydp cannot honour is refused with a `ConfigError` naming its path."""

from __future__ import annotations

from typing import Any

import pytest

from pydp.errors import ConfigError
from pydp.router import Forward, compile_route_config
from tests.pydp.router.util import one_route, proto, request, table

R = "virtual_hosts[0].routes[0]"
STRUCT = {"@type": "type.googleapis.com/google.protobuf.Struct", "value": {}}


def _route(**route: Any) -> dict[str, Any]:
    return one_route({"match": {"prefix": "/"}, "route": {"cluster": "c"}, **route})


def _match(**match: Any) -> dict[str, Any]:
    return one_route({"match": match, "route": {"cluster": "c"}})


def _action(**action: Any) -> dict[str, Any]:
    return one_route({"match": {"prefix": "/"}, "route": action})


def _retry(**policy: Any) -> dict[str, Any]:
    return _action(cluster="c", retry_policy=policy)


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("connect", _match(connect_matcher={}), f"{R}.match.connect_matcher", "unsupported match type"),
    (
        "template",
        _match(path_match_policy={"name": "t"}),
        f"{R}.match.path_match_policy",
        "unsupported match type",
    ),
    (
        "runtime",
        _match(prefix="/", runtime_fraction={"runtime_key": "k"}),
        f"{R}.match.runtime_fraction",
        "unsupported matcher",
    ),
    ("grpc", _match(prefix="/", grpc={}), f"{R}.match.grpc", "unsupported matcher"),
    (
        "tls",
        _match(prefix="/", tls_context={"presented": True}),
        f"{R}.match.tls_context",
        "unsupported matcher",
    ),
    (
        "metadata",
        _match(prefix="/", dynamic_metadata=[{"filter": "f"}]),
        f"{R}.match.dynamic_metadata",
        "unsupported matcher",
    ),
    (
        "filter state",
        _match(prefix="/", filter_state=[{"key": "k"}]),
        f"{R}.match.filter_state",
        "unsupported matcher",
    ),
    ("no path spec", _match(headers=[{"name": "a"}]), f"{R}.match", "one of prefix, path"),
    (
        "psp slash",
        _match(path_separated_prefix="/a/"),
        f"{R}.match.path_separated_prefix",
        "does not match regex",
    ),
    (
        "psp query",
        _match(path_separated_prefix="/a?b"),
        f"{R}.match.path_separated_prefix",
        "does not match regex",
    ),
    (
        "regex empty",
        _match(safe_regex={"regex": ""}),
        f"{R}.match.safe_regex.regex",
        "must not be empty",
    ),
    ("regex bad", _match(safe_regex={"regex": "(a"}), f"{R}.match.safe_regex.regex", "missing )"),
    (
        "header regex",
        _match(prefix="/", headers=[{"name": "a", "safe_regex_match": {"regex": "a(?=b)"}}]),
        f"{R}.match.headers[0].safe_regex_match.regex",
        "lookahead",
    ),
    (
        "regex ignore case",
        _match(
            prefix="/",
            headers=[
                {"name": "a", "string_match": {"safe_regex": {"regex": "a"}, "ignore_case": True}}
            ],
        ),
        f"{R}.match.headers[0].string_match.ignore_case",
        "ignore_case has no effect for safe_regex",
    ),
    (
        "custom string",
        _match(prefix="/", headers=[{"name": "a", "string_match": {"custom": {"name": "x"}}}]),
        f"{R}.match.headers[0].string_match.custom",
        "unsupported field",
    ),
    (
        "empty prefix match",
        _match(prefix="/", headers=[{"name": "a", "prefix_match": ""}]),
        f"{R}.match.headers[0].prefix_match",
        "must not be empty",
    ),
    (
        "empty sm suffix",
        _match(prefix="/", query_parameters=[{"name": "a", "string_match": {"suffix": ""}}]),
        f"{R}.match.query_parameters[0].string_match.suffix",
        "must not be empty",
    ),
    (
        "empty header name",
        _match(prefix="/", headers=[{"name": ""}]),
        f"{R}.match.headers[0].name",
        "must not be empty",
    ),
    (
        "empty query name",
        _match(prefix="/", query_parameters=[{"name": ""}]),
        f"{R}.match.query_parameters[0].name",
        "must not be empty",
    ),
    (
        "no action",
        one_route({"match": {"prefix": "/"}}),
        R,
        "one of route, redirect, direct_response is required",
    ),
    (
        "filter action",
        one_route({"match": {"prefix": "/"}, "filter_action": {}}),
        f"{R}.filter_action",
        "unsupported",
    ),
    (
        "non forwarding",
        one_route({"match": {"prefix": "/"}, "non_forwarding_action": {}}),
        f"{R}.non_forwarding_action",
        "unsupported",
    ),
    (
        "route filter config",
        _route(typed_per_filter_config={"envoy.filters.http.fault": STRUCT}),
        f"{R}.typed_per_filter_config.envoy.filters.http.fault",
        "filter pydp does not run",
    ),
    (
        "plugin",
        _action(cluster_specifier_plugin="p"),
        f"{R}.route.cluster_specifier_plugin",
        "unsupported field",
    ),
    ("empty cluster", _action(cluster=""), f"{R}.route.cluster", "at least 1 characters"),
    (
        "no cluster",
        _action(timeout="1s"),
        f"{R}.route",
        "one of cluster, cluster_header, weighted_clusters is required",
    ),
    (
        "mirror",
        _action(cluster="c", request_mirror_policies=[{"cluster": "m"}]),
        f"{R}.route.request_mirror_policies",
        "unsupported field",
    ),
    (
        "metadata match",
        _action(cluster="c", metadata_match={"filter_metadata": {"envoy.lb": {}}}),
        f"{R}.route.metadata_match",
        "unsupported field",
    ),
    (
        "hedge",
        _action(cluster="c", hedge_policy={}),
        f"{R}.route.hedge_policy",
        "unsupported field",
    ),
    (
        "internal redirect",
        _action(cluster="c", internal_redirect_action="HANDLE_INTERNAL_REDIRECT"),
        f"{R}.route.internal_redirect_action",
        "unsupported field",
    ),
    (
        "stream duration",
        _action(cluster="c", max_stream_duration={}),
        f"{R}.route.max_stream_duration",
        "unsupported field",
    ),
    (
        "rate limits",
        _action(cluster="c", rate_limits=[{"actions": []}]),
        f"{R}.route.rate_limits",
        "unsupported field",
    ),
    (
        "host header rewrite name",
        _action(cluster="c", host_rewrite_header="x\ny"),
        f"{R}.route.host_rewrite_header",
        "forbidden character",
    ),
    (
        "host path regex without pattern",
        _action(cluster="c", host_rewrite_path_regex={"substitution": "a"}),
        f"{R}.route.host_rewrite_path_regex.pattern.regex",
        "regex must not be empty",
    ),
    (
        "host path regex group",
        _action(
            cluster="c",
            host_rewrite_path_regex={"pattern": {"regex": "^/(a)"}, "substitution": "\\2"},
        ),
        f"{R}.route.host_rewrite_path_regex.substitution",
        "refers to group 2; pattern has 1",
    ),
    (
        "host path regex lookahead",
        _action(
            cluster="c",
            host_rewrite_path_regex={"pattern": {"regex": "(?=a)"}, "substitution": "x"},
        ),
        f"{R}.route.host_rewrite_path_regex.pattern.regex",
        "lookahead is not supported",
    ),
    (
        "host path regex newline",
        _action(
            cluster="c",
            host_rewrite_path_regex={"pattern": {"regex": "a"}, "substitution": "x\r\ny: z"},
        ),
        f"{R}.route.host_rewrite_path_regex.substitution",
        "must not contain NUL, CR or LF",
    ),
    (
        "both rewrites",
        _action(
            cluster="c",
            prefix_rewrite="/a",
            regex_rewrite={"pattern": {"regex": "a"}, "substitution": "b"},
        ),
        f"{R}.route",
        "Specify only one of prefix_rewrite, regex_rewrite",
    ),
    (
        "negative timeout",
        _action(cluster="c", timeout="-1s"),
        f"{R}.route.timeout",
        "must not be negative",
    ),
    (
        "connect upgrade",
        _action(cluster="c", upgrade_configs=[{"upgrade_type": "CONNECT", "connect_config": {}}]),
        f"{R}.route.upgrade_configs[0].connect_config",
        "unsupported field",
    ),
    (
        "dup upgrade",
        _action(
            cluster="c",
            upgrade_configs=[{"upgrade_type": "websocket"}, {"upgrade_type": "WebSocket"}],
        ),
        f"{R}.route.upgrade_configs[1]",
        "Duplicate upgrade WebSocket",
    ),
    (
        "hash filter state",
        _action(cluster="c", hash_policy=[{"filter_state": {"key": "k"}}]),
        f"{R}.route.hash_policy[0].filter_state",
        "hashing on filter state is not supported",
    ),
    (
        "hash empty",
        _action(cluster="c", hash_policy=[{"terminal": True}]),
        f"{R}.route.hash_policy[0]",
        "one of header, cookie",
    ),
    (
        "hash cookie ttl",
        _action(cluster="c", hash_policy=[{"cookie": {"name": "s", "ttl": "10s"}}]),
        f"{R}.route.hash_policy[0].cookie.ttl",
        "generating cookies is not supported",
    ),
    (
        "hash cookie attribute",
        _action(
            cluster="c", hash_policy=[{"cookie": {"name": "s", "attributes": [{"value": "v"}]}}]
        ),
        f"{R}.route.hash_policy[0].cookie.attributes[0].name",
        "value length must be at least 1 characters",
    ),
    (
        "hash header name",
        _action(cluster="c", hash_policy=[{"header": {"header_name": ""}}]),
        f"{R}.route.hash_policy[0].header.header_name",
        "value length must be at least 1 characters",
    ),
    (
        "hash rewrite not re2",
        _action(
            cluster="c",
            hash_policy=[
                {
                    "header": {
                        "header_name": ":path",
                        "regex_rewrite": {"pattern": {"regex": "(?=a)"}, "substitution": ""},
                    }
                }
            ],
        ),
        f"{R}.route.hash_policy[0].header.regex_rewrite.pattern.regex",
        "lookahead is not supported",
    ),
    (
        "wc zero",
        _action(weighted_clusters={"clusters": [{"name": "a", "weight": 0}]}),
        f"{R}.route.weighted_clusters",
        "Sum of weights in the weighted_cluster must be greater than 0.",
    ),
    (
        "wc no weight",
        _action(weighted_clusters={"clusters": [{"name": "a"}]}),
        f"{R}.route.weighted_clusters.clusters[0].weight",
        "value is required",
    ),
    (
        "wc both",
        _action(
            weighted_clusters={"clusters": [{"name": "a", "cluster_header": "x", "weight": 1}]}
        ),
        f"{R}.route.weighted_clusters.clusters[0]",
        "Only one of name or cluster_header can be specified",
    ),
    (
        "wc neither",
        _action(weighted_clusters={"clusters": [{"weight": 1}]}),
        f"{R}.route.weighted_clusters.clusters[0]",
        "At least one of name or cluster_header need to be specified",
    ),
    (
        "wc empty",
        _action(weighted_clusters={"clusters": []}),
        f"{R}.route.weighted_clusters.clusters",
        "at least 1 item",
    ),
    (
        "wc hash",
        _action(
            weighted_clusters={"clusters": [{"name": "a", "weight": 1}], "use_hash_policy": True}
        ),
        f"{R}.route.weighted_clusters.use_hash_policy",
        "by hash is unsupported",
    ),
    (
        "wc overflow",
        _action(
            weighted_clusters={
                "clusters": [{"name": "a", "weight": 2**32 - 1}, {"name": "b", "weight": 1}]
            }
        ),
        f"{R}.route.weighted_clusters",
        "exceeds 4294967295",
    ),
    (
        "wc metadata",
        _action(weighted_clusters={"clusters": [{"name": "a", "weight": 1, "metadata_match": {}}]}),
        f"{R}.route.weighted_clusters.clusters[0].metadata_match",
        "unsupported field",
    ),
    (
        "retry priority",
        _retry(retry_priority={"name": "p"}),
        f"{R}.route.retry_policy.retry_priority",
        "not supported",
    ),
    (
        "retry predicate by name",
        _retry(retry_host_predicate=[{"name": "envoy.retry_host_predicates.previous_hosts"}]),
        f"{R}.route.retry_policy.retry_host_predicate[0]",
        "Didn't find a registered implementation for "
        "'envoy.retry_host_predicates.previous_hosts' with type URL: ''",
    ),
    (
        "retry predicate",
        _retry(retry_host_predicate=[{"name": "p", "typed_config": STRUCT}]),
        f"{R}.route.retry_policy.retry_host_predicate[0]",
        "unsupported retry host predicate google.protobuf.Struct",
    ),
    (
        "retry backoff order",
        _retry(retry_back_off={"base_interval": "1s", "max_interval": "0.5s"}),
        f"{R}.route.retry_policy.retry_back_off.max_interval",
        "retry_policy.max_interval must greater than or equal to the base_interval",
    ),
    (
        "retry backoff base",
        _retry(retry_back_off={"max_interval": "1s"}),
        f"{R}.route.retry_policy.retry_back_off.base_interval",
        "value is required",
    ),
    (
        "retry backoff base zero",
        _retry(retry_back_off={"base_interval": "0s"}),
        f"{R}.route.retry_policy.retry_back_off.base_interval",
        "value must be greater than 0s",
    ),
    (
        "retry backoff max zero",
        _retry(retry_back_off={"base_interval": "0.0001s", "max_interval": "0s"}),
        f"{R}.route.retry_policy.retry_back_off.max_interval",
        "value must be greater than 0s",
    ),
    (
        "retry negative per try",
        _retry(per_try_timeout="-1s"),
        f"{R}.route.retry_policy.per_try_timeout",
        "must not be negative",
    ),
    (
        "retry header matcher",
        _retry(retriable_headers=[{"name": "x", "safe_regex_match": {"regex": "(?=a)"}}]),
        f"{R}.route.retry_policy.retriable_headers[0].safe_regex_match.regex",
        "lookahead is not supported",
    ),
    (
        "retry rate limited",
        _retry(rate_limited_retry_back_off={"reset_headers": [{"name": "retry-after"}]}),
        f"{R}.route.retry_policy.rate_limited_retry_back_off",
        "not supported",
    ),
    (
        "vhost retry",
        one_route(
            {"match": {"prefix": "/"}, "route": {"cluster": "c"}},
            retry_policy={"retriable_request_headers": [{"name": ""}]},
        ),
        "virtual_hosts[0].retry_policy.retriable_request_headers[0].name",
        "header name must not be empty",
    ),
    (
        "direct status",
        one_route({"match": {"prefix": "/"}, "direct_response": {"status": 199}}),
        f"{R}.direct_response.status",
        "[200, 600)",
    ),
    (
        "direct file",
        one_route(
            {
                "match": {"prefix": "/"},
                "direct_response": {"status": 200, "body": {"filename": "/etc/hosts"}},
            }
        ),
        f"{R}.direct_response.body.filename",
        "bodies read from files are unsupported",
    ),
    (
        "direct env",
        one_route(
            {
                "match": {"prefix": "/"},
                "direct_response": {"status": 200, "body": {"environment_variable": "X"}},
            }
        ),
        f"{R}.direct_response.body.environment_variable",
        "unsupported",
    ),
    (
        "direct format",
        one_route(
            {
                "match": {"prefix": "/"},
                "direct_response": {"status": 200, "body_format": {"text_format": "x"}},
            }
        ),
        f"{R}.direct_response.body_format",
        "unsupported field",
    ),
    (
        "redirect regex",
        one_route(
            {
                "match": {"prefix": "/"},
                "redirect": {"regex_rewrite": {"pattern": {"regex": "(?<=a)"}, "substitution": ""}},
            }
        ),
        f"{R}.redirect.regex_rewrite.pattern.regex",
        "lookbehind",
    ),
    (
        "vhost matcher",
        one_route({"match": {"prefix": "/"}, "route": {"cluster": "c"}}, matcher={}),
        "virtual_hosts[0].matcher",
        "unsupported",
    ),
    (
        "vhost cors",
        one_route({"match": {"prefix": "/"}, "route": {"cluster": "c"}}, cors={}),
        "virtual_hosts[0].cors",
        "CORS",
    ),
    (
        "vhost hedge",
        one_route({"match": {"prefix": "/"}, "route": {"cluster": "c"}}, hedge_policy={}),
        "virtual_hosts[0].hedge_policy",
        "unsupported field",
    ),
    (
        "vhost rate limits",
        one_route(
            {"match": {"prefix": "/"}, "route": {"cluster": "c"}}, rate_limits=[{"actions": []}]
        ),
        "virtual_hosts[0].rate_limits",
        "unsupported field",
    ),
    (
        "vhost no name",
        one_route({"match": {"prefix": "/"}, "route": {"cluster": "c"}}, name=""),
        "virtual_hosts[0].name",
        "at least 1 characters",
    ),
    (
        "virtual cluster",
        one_route(
            {"match": {"prefix": "/"}, "route": {"cluster": "c"}}, virtual_clusters=[{"name": "v"}]
        ),
        "virtual_hosts[0].virtual_clusters[0]",
        "virtual clusters must define 'headers'",
    ),
    ("vhds", {"name": "rc", "vhds": {}}, "vhds", "unsupported"),
    (
        "internal only",
        {"name": "rc", "internal_only_headers": ["x"]},
        "internal_only_headers",
        "unsupported",
    ),
    (
        "rc mirror",
        {"name": "rc", "request_mirror_policies": [{"cluster": "m"}]},
        "request_mirror_policies",
        "mirroring",
    ),
    ("vhost header", {"name": "rc", "vhost_header": "x-host"}, "vhost_header", "unsupported"),
]


@pytest.mark.parametrize(
    ("config", "field", "problem"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_unsupported_and_invalid_configs(config: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        table(config)
    assert err.value.resource == "route_config rc"
    assert err.value.field == field
    assert problem in err.value.problem


def test_message_names_resource_field_and_problem() -> None:
    with pytest.raises(ConfigError) as err:
        table(_match(connect_matcher={}))
    assert str(err.value) == f"route_config rc: {R}.match.connect_matcher: unsupported match type"


def test_retry_policy_errors_name_the_full_path() -> None:
    config = _route()
    config["name"] = "outbound"
    config["virtual_hosts"][0]["routes"].append(
        {
            "match": {"prefix": "/r"},
            "route": {"cluster": "c", "retry_policy": {"retry_back_off": {"max_interval": "1s"}}},
        }
    )
    with pytest.raises(ConfigError) as err:
        table(config)
    assert str(err.value) == (
        "route_config outbound: virtual_hosts[0].routes[1].route.retry_policy.retry_back_off"
        ".base_interval: value is required"
    )


def test_declared_filter_configs_are_exposed_most_specific_last() -> None:
    config = _route(typed_per_filter_config={"envoy.filters.http.fault": STRUCT})
    config["typed_per_filter_config"] = {"envoy.filters.http.fault": STRUCT, "other": STRUCT}
    decision = compile_route_config(proto(config), {"envoy.filters.http.fault", "other"}).route(
        request()
    )
    assert isinstance(decision, Forward)
    assert set(decision.policy.filter_configs) == {"envoy.filters.http.fault", "other"}


def test_observability_only_fields_are_accepted() -> None:
    config = _route(
        name="r",
        decorator={"operation": "op"},
        tracing={},
        stat_prefix="s",
        metadata={"filter_metadata": {"x": {}}},
    )
    config["virtual_hosts"][0]["virtual_clusters"] = [
        {"name": "v", "headers": [{"name": ":method", "exact_match": "GET"}]}
    ]
    decision = table(config).route(request())
    assert isinstance(decision, Forward) and decision.policy.route_name == "r"
