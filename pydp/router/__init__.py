"""pydp's router: compile an Envoy `RouteConfiguration` and route requests as Envoy does.

Pure: no I/O. `compile_route_config` raises `pydp.errors.ConfigError` for
anything it cannot honour; `RouteTable.route` maps an HTTP/2-style header list
to a `Decision`; the `finalize_*` helpers apply a decision to header lists.
"""

from pydp.router.compile import compile_route_config
from pydp.router.decisions import (
    DEFAULT_TIMEOUT,
    NO_ROUTE,
    Decision,
    DirectResponse,
    Forward,
    ForwardPolicy,
    NoRoute,
    Redirect,
)
from pydp.router.finalize import (
    finalize_request_headers,
    finalize_response_headers,
    local_reply_headers,
)
from pydp.router.format import FormatContext
from pydp.router.headers import AppendAction, HeaderMutation, apply_mutations
from pydp.router.matchers import HeaderMatcher
from pydp.router.table import RouteTable

__all__ = [
    "DEFAULT_TIMEOUT",
    "NO_ROUTE",
    "AppendAction",
    "Decision",
    "DirectResponse",
    "FormatContext",
    "Forward",
    "ForwardPolicy",
    "HeaderMatcher",
    "HeaderMutation",
    "NoRoute",
    "Redirect",
    "RouteTable",
    "apply_mutations",
    "compile_route_config",
    "finalize_request_headers",
    "finalize_response_headers",
    "local_reply_headers",
]
