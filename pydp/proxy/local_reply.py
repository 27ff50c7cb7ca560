"""The answers pydp sends itself, shaped as Envoy shapes them.

A local reply is `:status`, then the headers the caller adds (the router's
`x-envoy-overloaded`, `x-envoy-attempt-count`, the route's response
mutations), then `content-length` and `content-type: text/plain` when there
is a body; the connection adds `date` and `server` after that. A gRPC
request gets a trailers-only gRPC answer instead: HTTP 200 with
`content-type: application/grpc`, `grpc-status` mapped from the HTTP status
and the body as a percent-encoded `grpc-message`.

Also here, the words Envoy uses: reset reasons in reply bodies, the response
flags they set, and the body of a codec error reply.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydp.http.errors import ProtocolError
from pydp.http.headers import STATUS_BYTES, reason_phrase
from pydp.upstream.retry import ResetReason

HeaderList = list[tuple[bytes, bytes]]

NO_HEALTHY_UPSTREAM = b"no healthy upstream"
UPSTREAM_TIMEOUT = b"upstream request timeout"
STREAM_TIMEOUT = b"stream timeout"
REQUEST_TIMEOUT = b"request timeout"
REQUEST_HEADER_TIMEOUT = b"request header timeout"
RBAC_ACCESS_DENIED = b"RBAC: access denied"
OVERLOADED = (b"x-envoy-overloaded", b"true")

RESET_REASON_TEXT = {
    ResetReason.CONNECTION_FAILURE: "remote connection failure",
    ResetReason.CONNECTION_TIMEOUT: "connection timeout",
    ResetReason.CONNECTION_TERMINATION: "connection termination",
    ResetReason.LOCAL_RESET: "local reset",
    ResetReason.REMOTE_RESET: "remote reset",
    ResetReason.REFUSED_STREAM: "remote refused stream reset",
    ResetReason.PROTOCOL_ERROR: "protocol error",
    ResetReason.OVERFLOW: "overflow",
}

RESET_REASON_FLAG = {
    ResetReason.CONNECTION_FAILURE: "UF",
    ResetReason.CONNECTION_TIMEOUT: "UF",
    ResetReason.CONNECTION_TERMINATION: "UC",
    ResetReason.LOCAL_RESET: "LR",
    ResetReason.REMOTE_RESET: "UR",
    ResetReason.REFUSED_STREAM: "UR",
    ResetReason.PROTOCOL_ERROR: "UPE",
    ResetReason.OVERFLOW: "UO",
}

# Envoy's HCM rejects these itself (empty body); other codec errors answer
# the status's reason phrase.
_EMPTY_BODY_DETAILS = frozenset({"missing_host_header", "route_not_found", "missing_path_rejected"})

_GRPC_STATUS = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}
_GRPC_UNKNOWN = 2
_CONTENT = (b"content-length", b"content-type")
_TEXT_PLAIN = (b"content-type", b"text/plain")
_GRPC_CONTENT_TYPE = (b"content-type", b"application/grpc")


def reset_body(reason: ResetReason, retried: bool) -> bytes:
    """Envoy's body for an upstream reset before the response started."""
    latest = "retried and the latest " if retried else ""
    return (
        "upstream connect error or disconnect/reset before headers. "
        f"{latest}reset reason: {RESET_REASON_TEXT[reason]}"
    ).encode()


def reset_status(reason: ResetReason) -> int:
    return 502 if reason is ResetReason.PROTOCOL_ERROR else 503


def codec_error_body(error: ProtocolError) -> bytes:
    if error.details in _EMPTY_BODY_DETAILS:
        return b""
    return reason_phrase(error.error_status_hint)


def is_grpc(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """Envoy's `isGrpcRequestHeaders`: a gRPC content type."""
    for name, value in headers:
        if name == b"content-type":
            return value == b"application/grpc" or value.startswith(
                (b"application/grpc+", b"application/grpc;")
            )
    return False


def grpc_status_for(http_status: int) -> int:
    return _GRPC_STATUS.get(http_status, _GRPC_UNKNOWN)


def percent_encode(message: bytes) -> bytes:
    """gRPC's `grpc-message` encoding: `%` and bytes outside 0x20-0x7e as %XX."""
    if all(0x20 <= b <= 0x7E and b != 0x25 for b in message):
        return message
    return b"".join(
        bytes((b,)) if 0x20 <= b <= 0x7E and b != 0x25 else b"%%%02X" % b for b in message
    )


def text_reply(status: int, body: bytes, extra: Sequence[tuple[bytes, bytes]] = ()) -> HeaderList:
    """Headers of a plain local reply (without `date` and `server`)."""
    headers: HeaderList = [(b":status", STATUS_BYTES[status]), *extra]
    if body:
        headers = [h for h in headers if h[0] != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        if not any(name == b"content-type" for name, _ in headers):
            headers.append(_TEXT_PLAIN)
    return headers


def grpc_reply(status: int, body: bytes, extra: Sequence[tuple[bytes, bytes]] = ()) -> HeaderList:
    """Headers of a trailers-only gRPC local reply for HTTP `status`."""
    headers: HeaderList = [(b":status", b"200")]
    headers += [h for h in extra if h[0] not in _CONTENT]
    headers.append(_GRPC_CONTENT_TYPE)
    headers.append((b"grpc-status", str(grpc_status_for(status)).encode()))
    if body:
        headers.append((b"grpc-message", percent_encode(body)))
    return headers
