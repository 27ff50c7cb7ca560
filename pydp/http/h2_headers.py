"""HTTP/2 header blocks (already validated by h2) to pydp header lists.

h2 has checked the syntax: lowercase names, pseudo-headers first and known,
no connection-specific headers, `te` only `trailers`, no CR/LF/NUL. What is
left is what Envoy checks above the codec, each a `RemoteProtocolError` for
that stream alone: the limits, a missing `:authority` (taken from `host` when
absent, as Envoy does), CONNECT (unsupported, 404 as Envoy answers it without
a connect_matcher route), and a content-length above the body limit.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydp.http.errors import RemoteProtocolError
from pydp.http.events import (
    Event,
    ExpectContinue,
    Headers,
    InformationalResponse,
    Request,
    Response,
)
from pydp.http.headers import status_of
from pydp.http.limits import Limits


def _check_limits(headers: Headers, limits: Limits, status: int, what: str = "headers") -> None:
    if len(headers) > limits.max_headers_count:
        raise RemoteProtocolError(
            f"more than {limits.max_headers_count} {what}",
            status=status,
            details="http2.too_many_headers",
        )
    size = sum(len(name) + len(value) for name, value in headers)
    if size > limits.max_headers_bytes:
        raise RemoteProtocolError(
            f"{what} larger than {limits.max_headers_bytes} bytes",
            status=status,
            details="http2.headers_too_large",
        )


def request_events(
    stream_id: int, raw: Iterable[tuple[bytes, bytes]], end_stream: bool, limits: Limits
) -> list[Event]:
    """`Request` (and `ExpectContinue`) from a request header block."""
    headers: Headers = [(name, value) for name, value in raw]
    _check_limits(headers, limits, 431)
    pseudo: dict[bytes, bytes] = {}
    rest: Headers = []
    host = None
    expect_continue = False
    for name, value in headers:
        if name[:1] == b":":
            pseudo[name] = value
        elif name == b"host":
            host = value if host is None else host
        else:
            if name == b"expect" and value.lower() == b"100-continue":
                expect_continue = True
            rest.append((name, value))
    method = pseudo.get(b":method", b"")
    if method == b"CONNECT":
        raise RemoteProtocolError("CONNECT is not supported", status=404, details="route_not_found")
    authority = pseudo.get(b":authority", host)
    if authority is None:
        raise RemoteProtocolError(
            "missing :authority and Host", status=400, details="missing_host_header"
        )
    path = pseudo.get(b":path")
    scheme = pseudo.get(b":scheme")
    if path is None or scheme is None:
        raise RemoteProtocolError(
            "missing :path or :scheme", status=400, details="missing_path_rejected"
        )
    limit = limits.max_body_bytes
    if limit is not None:
        for name, value in rest:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise RemoteProtocolError(
                    f"content-length {int(value)} exceeds {limit} bytes",
                    status=413,
                    details="request_payload_too_large",
                )
    out: list[Event] = [
        Request(
            stream_id,
            [
                (b":method", method),
                (b":scheme", scheme),
                (b":authority", authority),
                (b":path", path),
                *rest,
            ],
            end_stream,
        )
    ]
    if expect_continue:
        out.append(ExpectContinue(stream_id))
    return out


def response_event(
    stream_id: int, raw: Iterable[tuple[bytes, bytes]], end_stream: bool, limits: Limits
) -> Response | InformationalResponse:
    """`Response` or `InformationalResponse` from a response header block."""
    headers: Headers = [(name, value) for name, value in raw]
    _check_limits(headers, limits, 502)
    status = status_of(headers[0][1]) if headers and headers[0][0] == b":status" else None
    if status is None or status < 100:
        raise RemoteProtocolError(
            "response without a valid :status", status=502, details="http2.invalid.header.field"
        )
    if status < 200:
        return InformationalResponse(stream_id, status, headers)
    return Response(stream_id, status, headers, end_stream)


def trailers(raw: Iterable[tuple[bytes, bytes]], limits: Limits, status: int) -> Headers:
    headers: Headers = [(name, value) for name, value in raw]
    _check_limits(headers, limits, status, "trailers")
    return headers
