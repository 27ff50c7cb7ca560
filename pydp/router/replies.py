"""The `redirect` and `direct_response` actions: answers Envoy sends without an upstream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydp.router._proto import Where, check_fields
from pydp.router.decisions import DirectResponse, Redirect
from pydp.router.headers import HeaderMutation
from pydp.router.matchers import PathSpec
from pydp.router.redirect import RedirectSpec, new_uri
from pydp.router.regex import Rewrite
from pydp.router.request import RequestView
from pydp.router.scope import RouteScope

_REDIRECT_CODES = {0: 301, 1: 302, 2: 303, 3: 307, 4: 308}


@dataclass(frozen=True, slots=True)
class RedirectAction:
    spec: RedirectSpec
    status: int
    path_spec: PathSpec
    response_mutations: tuple[HeaderMutation, ...]
    route_name: str

    def decide(self, request: RequestView, scheme: bytes, protocol: bytes) -> Redirect:
        path = self.spec.rewritten_path(request.path, self.path_spec.matched)
        location = new_uri(self.spec, path, request.authority or b"", scheme, protocol)
        return Redirect(self.status, location, self.response_mutations, self.route_name)


@dataclass(frozen=True, slots=True)
class DirectAction:
    status: int
    body: bytes
    response_mutations: tuple[HeaderMutation, ...]
    route_name: str

    def decide(self, request: RequestView, scheme: bytes, protocol: bytes) -> DirectResponse:
        location = None
        if self.status == 201 or 300 <= self.status < 400:
            location = new_uri(None, request.path, request.authority or b"", scheme, protocol)
        return DirectResponse(
            self.status, self.body, location, self.response_mutations, self.route_name
        )


def compile_redirect(
    proto: Any, where: Where, path_spec: PathSpec, scope: RouteScope
) -> RedirectAction:
    check_fields(
        proto,
        where,
        (
            "https_redirect",
            "scheme_redirect",
            "host_redirect",
            "port_redirect",
            "path_redirect",
            "prefix_rewrite",
            "regex_rewrite",
            "response_code",
            "strip_query",
        ),
    )
    status = _REDIRECT_CODES.get(proto.response_code)
    if status is None:
        raise where.at("response_code").error("value must be a defined enum")
    for field in ("host_redirect", "path_redirect", "prefix_rewrite"):
        if any(c in getattr(proto, field) for c in "\0\r\n"):
            raise where.at(field).error("invalid header value")
    scheme = b"https" if proto.https_redirect else proto.scheme_redirect.encode("utf-8")
    regex = None
    if proto.HasField("regex_rewrite"):
        regex = Rewrite.compile(proto.regex_rewrite, where.at("regex_rewrite"))
    spec = RedirectSpec(
        scheme=scheme,
        host=proto.host_redirect.encode("utf-8"),
        port=f":{proto.port_redirect}".encode() if proto.port_redirect else b"",
        path=proto.path_redirect.encode("utf-8"),
        prefix_rewrite=proto.prefix_rewrite.encode("utf-8"),
        regex_rewrite=regex,
        strip_query=proto.strip_query,
    )
    return RedirectAction(spec, status, path_spec, scope.response_mutations, scope.route_name)


def compile_direct(proto: Any, where: Where, scope: RouteScope) -> DirectAction:
    check_fields(proto, where, ("status", "body"))
    if not 200 <= proto.status < 600:
        raise where.at("status").error("value must be inside range [200, 600)")
    body = b""
    if proto.HasField("body"):
        bw = where.at("body")
        check_fields(
            proto.body,
            bw,
            ("inline_bytes", "inline_string"),
            {
                "filename": "bodies read from files are unsupported",
                "environment_variable": "bodies read from the environment are unsupported",
            },
        )
        body = proto.body.inline_bytes or proto.body.inline_string.encode("utf-8")
        if len(body) > scope.max_direct_response_body:
            raise bw.error(
                f"response body size is {len(body)} bytes; "
                f"maximum is {scope.max_direct_response_body}"
            )
    return DirectAction(int(proto.status), body, scope.response_mutations, scope.route_name)
