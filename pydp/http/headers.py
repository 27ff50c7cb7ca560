"""Header names and values shared by the HTTP/1.1 and HTTP/2 code."""

from __future__ import annotations

from http import HTTPStatus

from pydp.http.events import Headers

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"http2-settings",
    }
)

# Methods Envoy sends without `content-length: 0` when they carry no body.
BODILESS_METHODS = frozenset({b"GET", b"HEAD", b"DELETE", b"TRACE", b"CONNECT"})

STATUS_BYTES: dict[int, bytes] = {code: str(code).encode() for code in range(100, 1000)}


def reason_phrase(status: int) -> bytes:
    """The reason phrase Envoy writes for `status` ("Unknown" when unnamed)."""
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


def status_of(value: bytes) -> int | None:
    """A three-digit status code, or None when `value` is not one."""
    if len(value) != 3 or not value.isdigit():
        return None
    return int(value)


def connection_tokens(value: bytes) -> list[bytes]:
    return [token.strip() for token in value.lower().split(b",")]


def sanitize_te(value: bytes) -> bytes | None:
    """The `te` value a proxy forwards: `trailers` if asked for, else nothing."""
    return b"trailers" if b"trailers" in connection_tokens(value) else None


def regular(headers: Headers) -> Headers:
    """`headers` without pseudo-headers and hop-by-hop headers."""
    return [(n, v) for n, v in headers if n[:1] != b":" and n not in HOP_BY_HOP]
