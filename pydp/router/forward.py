"""The `route` action: compile it, and pick the cluster and path per request.

Theory of operation: everything that does not depend on the request is baked
into a `ForwardPolicy` at compile time, and a ready `Forward` is built per
possible cluster (one for a plain `cluster`, one per weighted cluster). At
request time an action picks one and, only when the request decides
something (the cluster named by a header, the rewritten path), wraps the
same policy in a new `Forward`; otherwise the prebuilt object is returned.

Weighted clusters pick as Envoy does: `random_value % total_weight`, falling
in `[0, w1)`, `[w1, w1 + w2)`, ...; `header_name`, when it names a header
present exactly once with an unsigned integer value, replaces `random_value`.
`total_weight` is deprecated and ignored by Envoy 1.40 (the sum is used), and
so it is here; `runtime_key_prefix` changes nothing without runtime overrides,
and pydp has none.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from pydp.router._proto import Where, check_fields, duration_ms, header_name
from pydp.router.decisions import Forward, ForwardPolicy
from pydp.router.headers import HeaderMutation, compile_mutation
from pydp.router.matchers import PathSpec
from pydp.router.policies import compile_hashes, compile_retry
from pydp.router.redirect import rewrite_route_path
from pydp.router.regex import Rewrite
from pydp.router.request import RequestView
from pydp.router.scope import RouteScope, filter_configs

_UINT32_MAX = 2**32 - 1
_UINT64 = re.compile(rb"[ \t\n\v\f\r]*\+?([0-9]+)[ \t\n\v\f\r]*\Z")
_NOT_FOUND_CODES = {0: 503, 1: 404, 2: 500}


@dataclass(frozen=True, slots=True)
class _Choice:
    end: int
    forward: Forward
    cluster_header: bytes | None


@dataclass(frozen=True, slots=True)
class ForwardAction:
    choices: tuple[_Choice, ...]
    total_weight: int
    random_header: bytes | None
    path_spec: PathSpec
    prefix_rewrite: bytes
    regex_rewrite: Rewrite | None

    @property
    def by_url_only(self) -> bool:
        """Whether `decide` depends on nothing but the request's URL (no random pick
        among clusters, no cluster named by a header)."""
        return len(self.choices) == 1 and self.choices[0].cluster_header is None

    def decide(self, request: RequestView, random_value: int) -> Forward:
        choices = self.choices
        if len(choices) == 1:
            choice = choices[0]
        else:
            value = random_value
            if self.random_header is not None:
                values = request.get_all(self.random_header)
                if len(values) == 1:
                    m = _UINT64.match(values[0])
                    if m is not None and int(m.group(1)) < 2**64:
                        value = int(m.group(1))
            selected = value % self.total_weight
            choice = next(c for c in choices if selected < c.end)
        forward = choice.forward
        cluster = forward.cluster
        if choice.cluster_header is not None:
            named = request.first(choice.cluster_header)
            cluster = named.decode("utf-8", "surrogateescape") if named else ""
        elif not (self.prefix_rewrite or self.regex_rewrite is not None):
            return forward
        path = None
        if self.prefix_rewrite or self.regex_rewrite is not None:
            path = rewrite_route_path(
                request.path, self.path_spec.matched, self.prefix_rewrite, self.regex_rewrite
            )
        return Forward(cluster, path, forward.policy)


_ROUTE_ACTION_FIELDS = (
    "cluster",
    "cluster_header",
    "weighted_clusters",
    "cluster_not_found_response_code",
    "prefix_rewrite",
    "regex_rewrite",
    "host_rewrite_literal",
    "host_rewrite_header",
    "host_rewrite_path_regex",
    "auto_host_rewrite",
    "append_x_forwarded_host",
    "timeout",
    "idle_timeout",
    "retry_policy",
    "priority",
    "hash_policy",
    "upgrade_configs",
)


def _upgrades(protos: Any, where: Where) -> dict[str, bool]:
    upgrades: dict[str, bool] = {}
    for i, config in enumerate(protos):
        w = where.at("upgrade_configs", i)
        check_fields(config, w, ("upgrade_type", "enabled"))
        kind = config.upgrade_type.lower()
        if not kind:
            raise w.at("upgrade_type").error("value must not be empty")
        if kind in upgrades:
            raise w.error(f"Duplicate upgrade {config.upgrade_type}")
        upgrades[kind] = config.enabled.value if config.HasField("enabled") else True
    return upgrades


def _weighted(
    proto: Any, where: Where, template: ForwardPolicy, scope: RouteScope
) -> tuple[tuple[_Choice, ...], int, bytes | None]:
    check_fields(
        proto,
        where,
        ("clusters", "total_weight", "runtime_key_prefix", "header_name"),
        {"use_hash_policy": "picking weighted clusters by hash is unsupported"},
    )
    if not proto.clusters:
        raise where.at("clusters").error("value must contain at least 1 item(s)")
    choices: list[_Choice] = []
    total = 0
    for i, cluster in enumerate(proto.clusters):
        w = where.at("clusters", i)
        check_fields(
            cluster,
            w,
            (
                "name",
                "cluster_header",
                "weight",
                "request_headers_to_add",
                "request_headers_to_remove",
                "response_headers_to_add",
                "response_headers_to_remove",
                "typed_per_filter_config",
                "host_rewrite_literal",
            ),
        )
        if bool(cluster.name) == bool(cluster.cluster_header):
            raise w.error(
                "Only one of name or cluster_header can be specified"
                if cluster.name
                else "At least one of name or cluster_header need to be specified"
            )
        if not cluster.HasField("weight"):
            raise w.at("weight").error("value is required")
        total += cluster.weight.value
        if total > _UINT32_MAX:
            raise where.error(
                f"The sum of weights of all weighted clusters of route {scope.route_name} "
                f"exceeds {_UINT32_MAX}"
            )
        request = compile_mutation(
            cluster.request_headers_to_add, cluster.request_headers_to_remove, w, "request"
        )
        response = compile_mutation(
            cluster.response_headers_to_add, cluster.response_headers_to_remove, w, "response"
        )
        configs = dict(template.filter_configs)
        configs.update(
            filter_configs(cluster.typed_per_filter_config, w, scope.known_filter_configs)
        )
        policy = dataclasses.replace(
            template,
            cluster_host_rewrite=cluster.host_rewrite_literal.encode("utf-8") or None,
            request_mutations=_chain(request, template.request_mutations),
            response_mutations=_chain(response, template.response_mutations),
            filter_configs=configs,
        )
        forward = Forward(cluster.name, None, policy)
        cluster_header = (
            header_name(cluster.cluster_header, w.at("cluster_header"))
            if cluster.cluster_header
            else None
        )
        if cluster.weight.value:
            choices.append(_Choice(total, forward, cluster_header))
    if total == 0:
        raise where.error("Sum of weights in the weighted_cluster must be greater than 0.")
    random_header = (
        header_name(proto.header_name, where.at("header_name")) if proto.header_name else None
    )
    return tuple(choices), total, random_header


def _chain(first: HeaderMutation, rest: tuple[HeaderMutation, ...]) -> tuple[HeaderMutation, ...]:
    return rest if not (first.add or first.remove) else (first, *rest)


def compile_forward(
    proto: Any, where: Where, path_spec: PathSpec, scope: RouteScope
) -> ForwardAction:
    check_fields(proto, where, _ROUTE_ACTION_FIELDS)
    prefix_rewrite = proto.prefix_rewrite.encode("utf-8")
    regex_rewrite = None
    if proto.HasField("regex_rewrite"):
        if prefix_rewrite:
            raise where.error(
                "Specify only one of prefix_rewrite, regex_rewrite or path_rewrite_policy"
            )
        regex_rewrite = Rewrite.compile(proto.regex_rewrite, where.at("regex_rewrite"))
    timeout: float | None = 15.0
    if proto.HasField("timeout"):
        ms = duration_ms(proto.timeout, where.at("timeout"))
        timeout = ms / 1000 if ms else None
    idle = None
    if proto.HasField("idle_timeout"):
        idle = duration_ms(proto.idle_timeout, where.at("idle_timeout")) / 1000
    retry = scope.retry_policy
    if proto.HasField("retry_policy"):
        retry = compile_retry(proto.retry_policy, where.at("retry_policy"))
    host_header = None
    if proto.host_rewrite_header:
        host_header = header_name(proto.host_rewrite_header, where.at("host_rewrite_header"))
    host_regex = None
    if proto.HasField("host_rewrite_path_regex"):
        host_regex = Rewrite.compile(
            proto.host_rewrite_path_regex, where.at("host_rewrite_path_regex")
        )
    not_found = _NOT_FOUND_CODES.get(proto.cluster_not_found_response_code)
    if not_found is None:
        raise where.at("cluster_not_found_response_code").error("value must be a defined enum")
    policy = ForwardPolicy(
        route_name=scope.route_name,
        virtual_host=scope.virtual_host,
        cluster_not_found_status=not_found,
        host_rewrite=proto.host_rewrite_literal.encode("utf-8") or None,
        host_rewrite_header=host_header,
        host_rewrite_path_regex=host_regex,
        auto_host_rewrite=proto.auto_host_rewrite.value,
        append_x_forwarded_host=proto.append_x_forwarded_host,
        request_mutations=scope.request_mutations,
        response_mutations=scope.response_mutations,
        timeout=timeout,
        idle_timeout=idle,
        retry_policy=retry,
        hash_policies=compile_hashes(proto.hash_policy, where.at("hash_policy")),
        include_attempt_count_in_request=scope.include_attempt_count_in_request,
        include_attempt_count_in_response=scope.include_attempt_count_in_response,
        include_is_timeout_retry_header=scope.include_is_timeout_retry_header,
        per_request_buffer_limit=scope.per_request_buffer_limit,
        high_priority=proto.priority == 1,
        upgrades=_upgrades(proto.upgrade_configs, where),
        filter_configs=scope.filter_configs,
    )
    kind = proto.WhichOneof("cluster_specifier")
    random_header = None
    if kind == "cluster":
        if not proto.cluster:
            raise where.at("cluster").error("value length must be at least 1 characters")
        choices: tuple[_Choice, ...] = (_Choice(1, Forward(proto.cluster, None, policy), None),)
        total = 1
    elif kind == "cluster_header":
        name = header_name(proto.cluster_header, where.at("cluster_header"))
        choices, total = (_Choice(1, Forward("", None, policy), name),), 1
    elif kind == "weighted_clusters":
        choices, total, random_header = _weighted(
            proto.weighted_clusters, where.at("weighted_clusters"), policy, scope
        )
    elif kind is None:
        raise where.error("one of cluster, cluster_header, weighted_clusters is required")
    else:
        raise where.at(kind).error("unsupported cluster specifier")
    return ForwardAction(choices, total, random_header, path_spec, prefix_rewrite, regex_rewrite)
