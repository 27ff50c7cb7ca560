"""The compiled route table and the per-request routing walk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydp.router.decisions import NO_ROUTE, Decision, Redirect
from pydp.router.forward import ForwardAction
from pydp.router.matchers import HeaderMatcher, PathSpec, QueryParameterMatcher
from pydp.router.replies import DirectAction, RedirectAction
from pydp.router.request import RequestView
from pydp.router.vhosts import VirtualHostTable

TLS_NONE, TLS_EXTERNAL_ONLY, TLS_ALL = 0, 1, 2
CACHE_SIZE = 1024

Action = ForwardAction | RedirectAction | DirectAction


@dataclass(frozen=True, slots=True)
class RouteEntry:
    name: str
    path: PathSpec
    headers: tuple[HeaderMatcher, ...]
    query: tuple[QueryParameterMatcher, ...]
    action: Action

    def matches_rest(self, request: RequestView) -> bool:
        """The header and query parameter matchers (the path already matched)."""
        for header in self.headers:
            if not header.matches(request):
                return False
        return all(query.matches(request) for query in self.query)


@dataclass(frozen=True, slots=True)
class VirtualHost:
    name: str
    routes: tuple[RouteEntry, ...]
    require_tls: int = TLS_NONE


@dataclass(frozen=True, slots=True)
class RouteTable:
    """A compiled `RouteConfiguration`; `route` is pure and safe to call concurrently.

    Decisions that depend only on `:authority` and `:path` (no TLS requirement,
    no header or query matcher on a route whose path matched, one cluster, no
    cluster header) are remembered by those two values, up to `CACHE_SIZE`."""

    name: str
    vhosts: VirtualHostTable[VirtualHost]
    ignore_path_parameters: bool = False
    validate_clusters: bool | None = None
    clusters: frozenset[str] = frozenset()
    _cache: dict[tuple[bytes, bytes], Decision] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def route(self, headers: Sequence[tuple[bytes, bytes]], random_value: int = 0) -> Decision:
        """Route one request given as an HTTP/2-style header list.

        `random_value` is the unsigned random number Envoy draws per stream; it
        picks among weighted clusters (`random_value % total_weight`).
        """
        key = None
        if len(headers) >= 4 and headers[3][0] == b":path" and headers[2][0] == b":authority":
            key = (headers[2][1], headers[3][1])
            found = self._cache.get(key)
            if found is not None:
                return found
        decision, only_by_url = self._route(RequestView(headers), random_value)
        if only_by_url and key is not None:
            cache = self._cache
            if len(cache) >= CACHE_SIZE:
                cache.clear()
            cache[key] = decision
        return decision

    def _route(self, request: RequestView, random_value: int) -> tuple[Decision, bool]:
        """The decision, and whether it depends on nothing but `:authority` and `:path`."""
        vhost = self.vhosts.find(request.authority)
        if vhost is None:
            return NO_ROUTE, True
        if vhost.require_tls != TLS_NONE and _protocol(request) != b"https":
            internal = request.first(b"x-envoy-internal") == b"true"
            if vhost.require_tls == TLS_ALL or not internal:
                authority = request.authority or b""
                return Redirect(301, b"https://" + authority + request.path), False
        only_by_url = vhost.require_tls == TLS_NONE
        match_path = request.path_only
        if self.ignore_path_parameters:
            match_path = match_path.split(b";", 1)[0]
        for entry in vhost.routes:
            if not entry.path.test(match_path):
                continue
            if entry.headers or entry.query:
                only_by_url = False  # this route's fate, so the decision, rest on them
                if not entry.matches_rest(request):
                    continue
            action = entry.action
            if type(action) is ForwardAction:
                decision = action.decide(request, random_value)
                return decision, only_by_url and action.by_url_only
            assert not isinstance(action, ForwardAction)
            return action.decide(request, request.scheme, _protocol(request)), False
        return NO_ROUTE, only_by_url


def _protocol(request: RequestView) -> bytes:
    """The scheme the client used, as the router's TLS and redirect logic reads it."""
    return request.first(b"x-forwarded-proto") or request.scheme
