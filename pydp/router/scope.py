"""What a route inherits from its virtual host and route configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydp.router._proto import Where
from pydp.router.headers import HeaderMutation
from pydp.upstream.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class RouteScope:
    """What a route inherits from its virtual host and route configuration."""

    route_name: str
    virtual_host: str
    request_mutations: tuple[HeaderMutation, ...]
    response_mutations: tuple[HeaderMutation, ...]
    retry_policy: RetryPolicy | None
    include_attempt_count_in_request: bool
    include_attempt_count_in_response: bool
    include_is_timeout_retry_header: bool
    per_request_buffer_limit: int | None
    filter_configs: Mapping[str, Any]
    known_filter_configs: frozenset[str]
    max_direct_response_body: int


def filter_configs(proto_map: Any, where: Where, known: frozenset[str]) -> dict[str, Any]:
    """A `typed_per_filter_config` map, refusing filters the caller did not declare."""
    configs: dict[str, Any] = {}
    for name in sorted(proto_map):
        if name not in known:
            raise (
                where.at("typed_per_filter_config")
                .at(name)
                .error("per-route config for a filter pydp does not run")
            )
        configs[name] = proto_map[name]
    return configs
