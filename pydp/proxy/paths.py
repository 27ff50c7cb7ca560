"""The connection manager's request URL options: `normalize_path`, `merge_slashes`,
`strip_any_host_port` (Envoy's `PathUtil` and `stripPortFromHost`).

Path normalization follows RFC 3986: percent-encoded unreserved characters
are decoded, the hex digits of other escapes uppercased, and dot segments
removed - the parts of Envoy's canonicalization that matter for routing.
The query is never touched.
"""

from __future__ import annotations

import re

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_SLASHES = re.compile(rb"//+")


def _unescape(match: re.Match[bytes]) -> bytes:
    value = int(match.group(1), 16)
    if value in _UNRESERVED:
        return bytes((value,))
    return b"%" + match.group(1).upper()


def remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 section 5.2.4, for an absolute path."""
    out: list[bytes] = []
    segments = path.split(b"/")[1:]
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == b".":
            if last:
                out.append(b"")
        elif segment == b"..":
            if out:
                out.pop()
            if last:
                out.append(b"")
        else:
            out.append(segment)
    return b"/" + b"/".join(out)


def normalize(path: bytes, normalize_path: bool, merge_slashes: bool) -> bytes:
    """`path` (with its query) after the connection manager's path options."""
    cut = path.find(b"?")
    base, query = (path, b"") if cut < 0 else (path[:cut], path[cut:])
    if normalize_path and base.startswith(b"/"):
        if b"%" in base:
            base = _ESCAPE.sub(_unescape, base)
        if b"." in base:
            base = remove_dot_segments(base)
    if merge_slashes and b"//" in base:
        base = _SLASHES.sub(b"/", base)
    return base + query


def strip_port(authority: bytes) -> bytes:
    """`host:port` -> `host` (and `[v6]:port` -> `[v6]`); anything else unchanged."""
    if authority.startswith(b"["):
        end = authority.find(b"]")
        return authority[: end + 1] if end > 0 else authority
    colon = authority.rfind(b":")
    if colon > 0 and authority[colon + 1 :].isdigit():
        return authority[:colon]
    return authority
