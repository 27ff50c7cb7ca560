"""What routing one request decides: forward it, redirect it, answer it directly, or 404."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydp.router.headers import HeaderMutation
from pydp.router.regex import Rewrite
from pydp.upstream.hashing import HashPolicy
from pydp.upstream.retry import RetryPolicy

DEFAULT_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class ForwardPolicy:
    """What the matched route (and, for weighted clusters, the picked cluster) says.

    Fixed at compile time and shared by every request that takes the route.
    Timeouts are seconds: `timeout` None means disabled (configured as 0);
    `idle_timeout` None means not set at the route (the connection manager's
    stream idle timeout applies) and 0.0 means disabled. Host rewrites, in
    Envoy's order: the weighted cluster's literal (`cluster_host_rewrite`);
    then the route's, one of: a literal (`host_rewrite`), the first value of
    a request header (`host_rewrite_header`, read after the request
    mutations), or the path without query through a regex substitution
    (`host_rewrite_path_regex`) - each left alone when it comes out empty, and
    each appending `x-forwarded-host` if asked; then, once the caller has
    picked a host, `auto_host_rewrite` to that host's name. The header and
    path rewrites are computed by `finalize_request_headers`, so a decision
    never holds a value taken from one request.
    """

    route_name: str = ""
    virtual_host: str = ""
    cluster_not_found_status: int = 503
    cluster_host_rewrite: bytes | None = None
    host_rewrite: bytes | None = None
    host_rewrite_header: bytes | None = None
    host_rewrite_path_regex: Rewrite | None = None
    auto_host_rewrite: bool = False
    append_x_forwarded_host: bool = False
    request_mutations: tuple[HeaderMutation, ...] = ()
    response_mutations: tuple[HeaderMutation, ...] = ()
    timeout: float | None = DEFAULT_TIMEOUT
    idle_timeout: float | None = None
    retry_policy: RetryPolicy | None = None
    hash_policies: tuple[HashPolicy, ...] = ()
    include_attempt_count_in_request: bool = False
    include_attempt_count_in_response: bool = False
    include_is_timeout_retry_header: bool = False
    per_request_buffer_limit: int | None = None
    high_priority: bool = False
    upgrades: Mapping[str, bool] = field(default_factory=dict)
    filter_configs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Forward:
    """Send the request upstream to `cluster`, under `policy`.

    `cluster` is empty when a `cluster_header` named no cluster; the caller
    answers `policy.cluster_not_found_status` (as it does for an unknown
    cluster). Local replies sent once a route is chosen (unknown cluster,
    timeout, no healthy upstream) carry `policy.response_mutations` too, as in
    Envoy. `path` is the rewritten `:path`, None when no rewrite applies. Use
    `finalize_request_headers` and `finalize_response_headers` to apply it.
    """

    cluster: str
    path: bytes | None = None
    policy: ForwardPolicy = field(default_factory=ForwardPolicy)

    @property
    def response_mutations(self) -> tuple[HeaderMutation, ...]:
        return self.policy.response_mutations


@dataclass(frozen=True, slots=True)
class Redirect:
    """Answer `status` with `location` and an empty body."""

    status: int
    location: bytes
    response_mutations: tuple[HeaderMutation, ...] = ()
    route_name: str = ""


@dataclass(frozen=True, slots=True)
class DirectResponse:
    """Answer `status` with `body`. `location` is set for 201 and 3xx, as Envoy does."""

    status: int
    body: bytes
    location: bytes | None = None
    response_mutations: tuple[HeaderMutation, ...] = ()
    route_name: str = ""


@dataclass(frozen=True, slots=True)
class NoRoute:
    """No virtual host or no route matched: Envoy answers 404 with an empty body."""

    status: int = 404


NO_ROUTE = NoRoute()

Decision = Forward | Redirect | DirectResponse | NoRoute
