"""Path rewrites and redirect Locations, following Envoy's `finalizePathHeader` and `newUri`.

Theory of operation, for a redirect:

1. The request path is rewritten first: `prefix_rewrite` replaces the matched
   part (the configured prefix or exact path; the whole path without query for
   regex routes), `regex_rewrite` replaces the path without its query (a
   regex result that comes out empty leaves the path unchanged, as in Envoy).
2. scheme: `scheme_redirect`, else "https" if `https_redirect`, else the
   request's `:scheme`.
3. port: ":<port_redirect>" when set, else nothing.
4. host: `host_redirect` when set; otherwise the request's `:authority`, with
   its port dropped when a `port_redirect` is set, or when the scheme changes
   and the port is the default of the *original* protocol (`x-forwarded-proto`,
   which Envoy's connection manager always sets; `:scheme` stands in for it
   when the header is absent): ":80" for http, ":443" for https.
5. path: `path_redirect` (keeping the request's query unless the new path has
   one of its own), else the (rewritten) request path; a missing leading "/"
   is added; `strip_query` cuts at the first "?" unless `path_redirect` carried
   a query.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydp.router.regex import Rewrite


def _decode(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _encode(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def path_only(path: bytes) -> bytes:
    cut = len(path)
    for sep in (b"?", b"#"):
        at = path.find(sep, 0, cut)
        if at >= 0:
            cut = at
    return path[:cut]


def rewrite_route_path(
    path: bytes, matched: bytes | None, prefix_rewrite: bytes, regex: Rewrite | None
) -> bytes | None:
    """The new `:path` of a forwarded request, or None when no rewrite is configured."""
    if prefix_rewrite:
        cut = len(matched) if matched is not None else len(path_only(path))
        return prefix_rewrite + path[cut:]
    if regex is not None:
        just_path = path_only(path)
        return _encode(regex.apply(_decode(just_path))) + path[len(just_path) :]
    return None


@dataclass(frozen=True, slots=True)
class RedirectSpec:
    scheme: bytes
    host: bytes
    port: bytes
    path: bytes
    prefix_rewrite: bytes
    regex_rewrite: Rewrite | None
    strip_query: bool

    @property
    def path_has_query(self) -> bool:
        return b"?" in self.path

    def rewritten_path(self, path: bytes, matched: bytes | None) -> bytes:
        if self.regex_rewrite is not None:
            just_path = path_only(path)
            new = _encode(self.regex_rewrite.apply(_decode(just_path)))
            return new + path[len(just_path) :] if new else path
        if self.prefix_rewrite:
            cut = len(matched) if matched is not None else len(path_only(path))
            return self.prefix_rewrite + path[cut:]
        return path


def _request_host(authority: bytes, new_scheme: bytes, new_port: bytes, protocol: bytes) -> bytes:
    if not authority:
        return authority
    if authority[:1] == b"[":
        end = authority.rfind(b"]:")
        end = end + 1 if end >= 0 else -1
    else:
        end = authority.rfind(b":")
    if end < 0:
        return authority
    port = authority[end:]
    remove = bool(new_port)
    if new_scheme != protocol:
        lowered = protocol.lower()
        remove |= lowered == b"https" and port == b":443"
        remove |= lowered == b"http" and port == b":80"
    return authority[:end] if remove else authority


def new_uri(
    spec: RedirectSpec | None, path: bytes, authority: bytes, scheme: bytes, protocol: bytes
) -> bytes:
    """The Location Envoy computes. `path` is the request path after any rewrite."""
    final_scheme = spec.scheme if spec is not None and spec.scheme else scheme
    final_port = spec.port if spec is not None else b""
    if spec is not None and spec.host:
        final_host = spec.host
    else:
        final_host = _request_host(authority, final_scheme, final_port, protocol)
    has_query = spec is not None and spec.path_has_query
    if spec is not None and spec.path:
        final_path = spec.path
        if not has_query:
            query_at = path.find(b"?")
            if query_at >= 0:
                final_path += path[query_at:]
    else:
        final_path = path
    if not final_path.startswith(b"/"):
        final_path = b"/" + final_path
    if spec is not None and spec.strip_query and not has_query:
        query_at = final_path.find(b"?")
        if query_at >= 0:
            final_path = final_path[:query_at]
    return final_scheme + b"://" + final_host + final_port + final_path
