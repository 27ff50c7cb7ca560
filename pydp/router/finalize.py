"""Apply a routing decision to header lists, in the order Envoy's router does."""

from __future__ import annotations

from collections.abc import Sequence

from pydp.router.decisions import DirectResponse, Forward, ForwardPolicy, NoRoute, Redirect
from pydp.router.format import FormatContext
from pydp.router.headers import HeaderList, apply_mutations
from pydp.router.redirect import path_only

_AUTHORITY = b":authority"
_PATH = b":path"
_XFH = b"x-forwarded-host"


def _get(headers: HeaderList, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _set(headers: HeaderList, name: bytes, value: bytes) -> None:
    """Replace every value of `name` by one, keeping the first one's position."""
    at = next((i for i, (key, _) in enumerate(headers) if key == name), len(headers))
    headers[:] = [h for h in headers if h[0] != name]
    headers.insert(at, (name, value))


def update_authority(
    headers: HeaderList, hostname: bytes, *, append_xfh: bool, keep_old: bool
) -> None:
    """Envoy's `Utility::updateAuthority`: set `:authority`, recording the old one as asked."""
    host = _get(headers, _AUTHORITY)
    if host:
        if keep_old:
            _set(headers, b"x-envoy-original-host", host)
        if append_xfh:
            current = _get(headers, _XFH)
            parts = [p for p in (current or b"").split(b",") if p.strip()]
            if not parts or parts[-1] != host:
                _set(headers, _XFH, current + b"," + host if current else host)
    _set(headers, _AUTHORITY, hostname)


def _route_host_rewrite(headers: HeaderList, policy: ForwardPolicy) -> bytes | None:
    """The authority the route's host rewrite asks for (Envoy's `finalizeHostHeader`),
    read after the request mutations; None or empty: leave the authority alone."""
    if policy.host_rewrite:
        return policy.host_rewrite
    if policy.host_rewrite_header is not None:
        return _get(headers, policy.host_rewrite_header)
    if policy.host_rewrite_path_regex is not None:
        path = _get(headers, _PATH) or b""
        just_path = path_only(path)
        text = just_path.decode("utf-8", "surrogateescape")
        return policy.host_rewrite_path_regex.apply(text).encode("utf-8", "surrogateescape")
    return None


def finalize_request_headers(
    headers: Sequence[tuple[bytes, bytes]],
    decision: Forward,
    ctx: FormatContext | None = None,
    *,
    upstream_hostname: bytes | None = None,
    insert_envoy_headers: bool = True,
) -> HeaderList:
    """The request headers to send upstream.

    `upstream_hostname` is the chosen host's name, used by `auto_host_rewrite`
    (Envoy skips the rewrite when the host has no name). `insert_envoy_headers`
    is the router's `!suppress_envoy_headers`: it records the original path in
    `x-envoy-original-path` (and the original host in `x-envoy-original-host`).
    """
    policy = decision.policy
    out = list(headers)
    if policy.request_mutations:
        context = (ctx if ctx is not None else FormatContext()).with_request(out)
        for mutation in policy.request_mutations:
            mutation.apply(out, context)
    if policy.cluster_host_rewrite is not None:
        _set(out, _AUTHORITY, policy.cluster_host_rewrite)
    hostname = _route_host_rewrite(out, policy)
    if hostname:
        update_authority(
            out,
            hostname,
            append_xfh=policy.append_x_forwarded_host,
            keep_old=insert_envoy_headers,
        )
    if decision.path is not None:
        if insert_envoy_headers:
            original = _get(out, _PATH)
            if original is not None:
                _set(out, b"x-envoy-original-path", original)
        _set(out, _PATH, decision.path)
    if policy.auto_host_rewrite and upstream_hostname:
        update_authority(
            out,
            upstream_hostname,
            append_xfh=policy.append_x_forwarded_host,
            keep_old=insert_envoy_headers,
        )
    return out


def finalize_response_headers(
    headers: Sequence[tuple[bytes, bytes]],
    decision: Forward | Redirect | DirectResponse,
    ctx: FormatContext | None = None,
) -> HeaderList:
    """The upstream response headers with the route's response mutations applied."""
    return apply_mutations(headers, decision.response_mutations, ctx)


def local_reply_headers(
    decision: Redirect | DirectResponse | NoRoute, ctx: FormatContext | None = None
) -> HeaderList:
    """Headers of the answer Envoy sends itself: `:status`, Location, route mutations, body type.

    Connection-level headers (`date`, `server`, and `content-length: 0` for an
    empty body on HTTP/1.1) are the connection manager's to add.
    """
    headers: HeaderList = [(b":status", str(decision.status).encode())]
    if isinstance(decision, NoRoute):
        return headers
    if decision.location is not None:
        headers.append((b"location", decision.location))
    headers = apply_mutations(headers, decision.response_mutations, ctx)
    body = decision.body if isinstance(decision, DirectResponse) else b""
    if body:
        _set(headers, b"content-length", str(len(body)).encode())
        if _get(headers, b"content-type") is None:
            headers.append((b"content-type", b"text/plain"))
    else:
        headers = [h for h in headers if h[0] not in (b"content-length", b"content-type")]
    return headers
