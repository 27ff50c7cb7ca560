"""The compiled route table and the per-request routing walk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydp.router.decisions import NO_ROUTE, Decision, Redirect
from pydp.router.forward import ForwardAction
from pydp.router.matchers import HeaderMatcher, PathSpec, QueryParameterMatcher
from pydp.router.replies import DirectAction, RedirectAction
from pydp.router.request import RequestView
from pydp.router.vhosts import VirtualHostTable

TLS_NONE, TLS_EXTERNAL_ONLY, TLS_ALL = 0, 1, 2

Action = ForwardAction | RedirectAction | DirectAction


@dataclass(frozen=True, slots=True)
class RouteEntry:
    name: str
    path: PathSpec
    headers: tuple[HeaderMatcher, ...]
    query: tuple[QueryParameterMatcher, ...]
    action: Action

    def matches(self, request: RequestView, match_path: bytes) -> bool:
        if not self.path.test(match_path):
            return False
        for header in self.headers:
            if not header.matches(request):
                return False
        return all(q.matches(request) for q in self.query)


@dataclass(frozen=True, slots=True)
class VirtualHost:
    name: str
    routes: tuple[RouteEntry, ...]
    require_tls: int = TLS_NONE


@dataclass(frozen=True, slots=True)
class RouteTable:
    """A compiled `RouteConfiguration`; `route` is pure and safe to call concurrently."""

    name: str
    vhosts: VirtualHostTable[VirtualHost]
    ignore_path_parameters: bool = False
    validate_clusters: bool | None = None
    clusters: frozenset[str] = frozenset()

    def route(self, headers: Sequence[tuple[bytes, bytes]], random_value: int = 0) -> Decision:
        """Route one request given as an HTTP/2-style header list.

        `random_value` is the unsigned random number Envoy draws per stream; it
        picks among weighted clusters (`random_value % total_weight`).
        """
        request = RequestView(headers)
        vhost = self.vhosts.find(request.authority)
        if vhost is None:
            return NO_ROUTE
        scheme = request.first(b":scheme") or b""
        protocol = request.first(b"x-forwarded-proto") or scheme
        if vhost.require_tls != TLS_NONE and protocol != b"https":
            internal = request.first(b"x-envoy-internal") == b"true"
            if vhost.require_tls == TLS_ALL or not internal:
                authority = request.authority or b""
                return Redirect(301, b"https://" + authority + request.path)
        match_path = request.path_only
        if self.ignore_path_parameters:
            match_path = match_path.split(b";", 1)[0]
        for entry in vhost.routes:
            if entry.matches(request, match_path):
                action = entry.action
                if isinstance(action, ForwardAction):
                    return action.decide(request, random_value)
                return action.decide(request, scheme, protocol)
        return NO_ROUTE
