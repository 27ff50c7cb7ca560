"""Compile an `envoy.config.route.v3.RouteConfiguration` into a `RouteTable`.

Every field that pydp cannot honour raises `ConfigError` naming its path;
fields that only feed observability (names, metadata, decorators, tracing,
stat prefixes, virtual clusters) are accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydp.router._proto import Where, check_fields
from pydp.router.forward import ForwardAction, compile_forward
from pydp.router.headers import HeaderMutation, compile_mutation
from pydp.router.matchers import (
    PathSpec,
    compile_header_matchers,
    compile_path_spec,
    compile_query_matcher,
)
from pydp.router.policies import compile_retry
from pydp.router.replies import compile_direct, compile_redirect
from pydp.router.scope import RouteScope, filter_configs
from pydp.router.table import Action, RouteEntry, RouteTable, VirtualHost
from pydp.router.vhosts import VirtualHostTable
from pydp.upstream.retry import RetryPolicy

DEFAULT_MAX_DIRECT_RESPONSE_BODY = 4096

_UNSUPPORTED = "unsupported"
_CONFIG_FIELDS = (
    "name",
    "virtual_hosts",
    "response_headers_to_add",
    "response_headers_to_remove",
    "request_headers_to_add",
    "request_headers_to_remove",
    "most_specific_header_mutations_wins",
    "validate_clusters",
    "max_direct_response_body_size_bytes",
    "ignore_port_in_host_matching",
    "ignore_path_parameters_in_path_matching",
    "typed_per_filter_config",
    "metadata",
)
_VHOST_FIELDS = (
    "name",
    "domains",
    "routes",
    "require_tls",
    "virtual_clusters",
    "request_headers_to_add",
    "request_headers_to_remove",
    "response_headers_to_add",
    "response_headers_to_remove",
    "typed_per_filter_config",
    "include_request_attempt_count",
    "include_attempt_count_in_response",
    "retry_policy",
    "include_is_timeout_retry_header",
    "per_request_buffer_limit_bytes",
    "metadata",
)
_ROUTE_FIELDS = (
    "name",
    "match",
    "route",
    "redirect",
    "direct_response",
    "metadata",
    "decorator",
    "typed_per_filter_config",
    "request_headers_to_add",
    "request_headers_to_remove",
    "response_headers_to_add",
    "response_headers_to_remove",
    "tracing",
    "per_request_buffer_limit_bytes",
    "stat_prefix",
)
_MATCH_FIELDS = (
    "prefix",
    "path",
    "safe_regex",
    "path_separated_prefix",
    "case_sensitive",
    "headers",
    "query_parameters",
)
_MATCH_REASONS = {
    "connect_matcher": "unsupported match type",
    "path_match_policy": "unsupported match type",
    "runtime_fraction": "unsupported matcher",
    "grpc": "unsupported matcher",
    "tls_context": "unsupported matcher",
    "dynamic_metadata": "unsupported matcher",
    "filter_state": "unsupported matcher",
}


class _Levels:
    """The route configuration level, shared by every virtual host."""

    def __init__(self, rc: Any, where: Where, known_filters: frozenset[str]) -> None:
        self.where = where
        self.known_filters = known_filters
        self.most_specific_wins = bool(rc.most_specific_header_mutations_wins)
        self.request = compile_mutation(
            rc.request_headers_to_add, rc.request_headers_to_remove, where, "request"
        )
        self.response = compile_mutation(
            rc.response_headers_to_add, rc.response_headers_to_remove, where, "response"
        )
        self.filter_configs = filter_configs(rc.typed_per_filter_config, where, known_filters)
        self.max_body = (
            rc.max_direct_response_body_size_bytes.value
            if rc.HasField("max_direct_response_body_size_bytes")
            else DEFAULT_MAX_DIRECT_RESPONSE_BODY
        )

    def order(self, *most_specific_first: HeaderMutation) -> tuple[HeaderMutation, ...]:
        """Evaluation order: route, vhost, config; reversed when the most specific wins."""
        levels = [m for m in most_specific_first if m.add or m.remove]
        if self.most_specific_wins:
            levels.reverse()
        return tuple(levels)


def _virtual_clusters(vhost: Any, where: Where) -> None:
    for i, cluster in enumerate(vhost.virtual_clusters):
        w = where.at("virtual_clusters", i)
        check_fields(cluster, w, ("headers", "name"))
        if not cluster.name:
            raise w.at("name").error("value length must be at least 1 characters")
        if not cluster.headers:
            raise w.error("virtual clusters must define 'headers'")
        compile_header_matchers(cluster.headers, w, "headers")


def _action(route: Any, where: Where, path_spec: PathSpec, scope: RouteScope) -> Action:
    kind = route.WhichOneof("action")
    if kind == "route":
        return compile_forward(route.route, where.at("route"), path_spec, scope)
    if kind == "redirect":
        return compile_redirect(route.redirect, where.at("redirect"), path_spec, scope)
    if kind == "direct_response":
        return compile_direct(route.direct_response, where.at("direct_response"), scope)
    raise where.error("one of route, redirect, direct_response is required")


def _route(
    route: Any,
    where: Where,
    levels: _Levels,
    vhost: Any,
    vhost_mutations: tuple[HeaderMutation, HeaderMutation],
    vhost_retry: RetryPolicy | None,
    vhost_configs: dict[str, Any],
) -> RouteEntry:
    check_fields(
        route,
        where,
        _ROUTE_FIELDS,
        {"filter_action": _UNSUPPORTED, "non_forwarding_action": _UNSUPPORTED},
    )
    if not route.HasField("match"):
        raise where.at("match").error("value is required")
    request = compile_mutation(
        route.request_headers_to_add, route.request_headers_to_remove, where, "request"
    )
    response = compile_mutation(
        route.response_headers_to_add, route.response_headers_to_remove, where, "response"
    )
    configs = dict(vhost_configs)
    configs.update(filter_configs(route.typed_per_filter_config, where, levels.known_filters))
    buffer_limit = None
    if route.HasField("per_request_buffer_limit_bytes"):
        buffer_limit = route.per_request_buffer_limit_bytes.value
    elif vhost.HasField("per_request_buffer_limit_bytes"):
        buffer_limit = vhost.per_request_buffer_limit_bytes.value
    scope = RouteScope(
        route_name=route.name,
        virtual_host=vhost.name,
        request_mutations=levels.order(request, vhost_mutations[0], levels.request),
        response_mutations=levels.order(response, vhost_mutations[1], levels.response),
        retry_policy=vhost_retry,
        include_attempt_count_in_request=vhost.include_request_attempt_count,
        include_attempt_count_in_response=vhost.include_attempt_count_in_response,
        include_is_timeout_retry_header=vhost.include_is_timeout_retry_header,
        per_request_buffer_limit=buffer_limit,
        filter_configs=configs,
        known_filter_configs=levels.known_filters,
        max_direct_response_body=levels.max_body,
    )
    match, mw = route.match, where.at("match")
    check_fields(match, mw, _MATCH_FIELDS, _MATCH_REASONS)
    path_spec = compile_path_spec(match, mw)
    headers = compile_header_matchers(match.headers, mw, "headers")
    query = tuple(
        compile_query_matcher(q, mw.at("query_parameters", i))
        for i, q in enumerate(match.query_parameters)
    )
    return RouteEntry(
        route.name, path_spec, headers, query, _action(route, where, path_spec, scope)
    )


def _vhost(vhost: Any, where: Where, levels: _Levels) -> VirtualHost:
    check_fields(
        vhost,
        where,
        _VHOST_FIELDS,
        {"matcher": "unsupported: use routes", "cors": "unsupported: CORS is not implemented"},
    )
    if not vhost.name:
        raise where.at("name").error("value length must be at least 1 characters")
    if vhost.require_tls not in (0, 1, 2):
        raise where.at("require_tls").error("value must be a defined enum")
    _virtual_clusters(vhost, where)
    mutations = (
        compile_mutation(
            vhost.request_headers_to_add, vhost.request_headers_to_remove, where, "request"
        ),
        compile_mutation(
            vhost.response_headers_to_add, vhost.response_headers_to_remove, where, "response"
        ),
    )
    retry = None
    if vhost.HasField("retry_policy"):
        retry = compile_retry(vhost.retry_policy, where.at("retry_policy"))
    configs = dict(levels.filter_configs)
    configs.update(filter_configs(vhost.typed_per_filter_config, where, levels.known_filters))
    routes = tuple(
        _route(r, where.at("routes", i), levels, vhost, mutations, retry, configs)
        for i, r in enumerate(vhost.routes)
    )
    return VirtualHost(vhost.name, routes, int(vhost.require_tls))


def _clusters(table_vhosts: list[VirtualHost]) -> frozenset[str]:
    names: set[str] = set()
    for vhost in table_vhosts:
        for entry in vhost.routes:
            if isinstance(entry.action, ForwardAction):
                names.update(c.forward.cluster for c in entry.action.choices if c.forward.cluster)
    return frozenset(names)


def compile_route_config(rc: Any, known_filter_configs: Collection[str] = ()) -> RouteTable:
    """Compile a `RouteConfiguration`, or raise `ConfigError` naming the first field in the way.

    `known_filter_configs` names the HTTP filters whose `typed_per_filter_config`
    the caller will honour (read from `Forward.filter_configs`); per-filter
    config for any other filter is refused.
    """
    where = Where(f"route_config {rc.name}")
    check_fields(
        rc,
        where,
        _CONFIG_FIELDS,
        {
            "vhds": _UNSUPPORTED,
            "internal_only_headers": _UNSUPPORTED,
            "cluster_specifier_plugins": _UNSUPPORTED,
            "request_mirror_policies": "unsupported: request mirroring is not implemented",
            "vhost_header": _UNSUPPORTED,
        },
    )
    levels = _Levels(rc, where, frozenset(known_filter_configs))
    table: VirtualHostTable[VirtualHost] = VirtualHostTable(
        rc.name, ignore_port=rc.ignore_port_in_host_matching
    )
    compiled: list[VirtualHost] = []
    for i, vhost_proto in enumerate(rc.virtual_hosts):
        w = where.at("virtual_hosts", i)
        vhost = _vhost(vhost_proto, w, levels)
        table.add(list(vhost_proto.domains), vhost, w)
        compiled.append(vhost)
    return RouteTable(
        name=rc.name,
        vhosts=table,
        ignore_path_parameters=rc.ignore_path_parameters_in_path_matching,
        validate_clusters=rc.validate_clusters.value if rc.HasField("validate_clusters") else None,
        clusters=_clusters(compiled),
    )
