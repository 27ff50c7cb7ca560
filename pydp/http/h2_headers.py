"""HTTP/2 header blocks: what RFC 9113 and Envoy require of them, both ways.

Received blocks are checked in two steps. First the protocol (RFC 9113
section 8.2-8.3, the checks the h2 library made): names lowercase, visible
ASCII, no `:` inside; values without NUL/CR/LF or surrounding whitespace;
no connection-specific fields; `te` only `trailers`; pseudo-headers known,
unique, first, and the right ones for a request, a response or trailers;
`:authority` and `host` consistent; `:path` not empty; `content-length`
digits only and consistent. A violation is a connection error
(`H2ConnectionError`, PROTOCOL_ERROR), which is also Envoy's default for
invalid HTTP/2 messaging. Cookie crumbs are joined with `; ` at the end.

Then what Envoy checks above the codec, each a `RemoteProtocolError` for that
stream alone: the limits, a missing `:authority` (taken from `host` when
absent, as Envoy does), CONNECT (unsupported, 404 as Envoy answers it without
a connect_matcher route), a content-length above the body limit, a response
without a valid `:status`.

Sent blocks are normalized as h2 did (names lowercased, values stripped,
connection-specific fields dropped) and `te` other than `trailers` refused.
"""

from __future__ import annotations

from h2.errors import ErrorCodes

from pydp.http.errors import LocalProtocolError, RemoteProtocolError
from pydp.http.events import Event, ExpectContinue, Headers, Request
from pydp.http.h2_frames import H2ConnectionError
from pydp.http.headers import HOP_BY_HOP, status_of
from pydp.http.limits import Limits

CONNECTION_HEADERS = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"}
)
_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path", b":status", b":protocol"})
_REQUEST_ONLY = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})
_NAME_CHARS = bytes(c for c in range(0x21, 0x7F) if not 0x41 <= c <= 0x5A and c != 0x3A)
_VALUE_FORBIDDEN = b"\x00\r\n"
_EDGE_WHITESPACE = (0x20, 0x09)


class RequestHead:
    """A checked request header block: `Request` headers in pydp's order (a copy
    per request is made by `events`), and what the body must match."""

    __slots__ = ("content_length", "expect_continue", "headers")

    def __init__(self, headers: Headers, expect_continue: bool, content_length: int | None) -> None:
        self.headers = headers
        self.expect_continue = expect_continue
        self.content_length = content_length

    def events(self, stream_id: int, end_stream: bool) -> list[Event]:
        request = Request(stream_id, self.headers.copy(), end_stream)
        if self.expect_continue:
            return [request, ExpectContinue(stream_id)]
        return [request]


def _malformed(message: str) -> H2ConnectionError:
    return H2ConnectionError(ErrorCodes.PROTOCOL_ERROR, message)


def _check_fields(raw: list[tuple[bytes, bytes]], trailers: bool) -> tuple[Headers, set[bytes]]:
    """RFC field syntax; (fields with cookies joined at the end, pseudo-header names)."""
    pseudo: set[bytes] = set()
    regular_seen = False
    cookies: list[bytes] = []
    fields: Headers = []
    for name, value in raw:
        if name[:1] == b":":
            if name in pseudo:
                raise _malformed(f"Received duplicate pseudo-header field {name!r}")
            if regular_seen:
                raise _malformed(f"Received pseudo-header field out of sequence: {name!r}")
            if name not in _PSEUDO:
                raise _malformed(f"Received custom pseudo-header field {name!r}")
            if trailers:
                raise _malformed(f"Received pseudo-header in trailer {name!r}")
            pseudo.add(name)
        else:
            regular_seen = True
            if not name:
                raise _malformed("Received header name with zero length.")
            if name.translate(None, _NAME_CHARS):
                raise _malformed(f"Received invalid header name {name!r}")
            if name in CONNECTION_HEADERS:
                raise _malformed(f"Connection-specific header field present: {name!r}.")
            if name == b"te" and value.lower() != b"trailers":
                raise _malformed(f"Invalid value for TE header: {value!r}")
        if value:
            if len(value.translate(None, _VALUE_FORBIDDEN)) != len(value):
                raise _malformed(f"Illegal character in header value: {value!r}")
            if value[0] in _EDGE_WHITESPACE or value[-1] in _EDGE_WHITESPACE:
                raise _malformed(f"Received header value surrounded by whitespace {value!r}")
        if name == b"cookie":
            cookies.append(value)
        else:
            fields.append((name, value))
    if cookies:
        fields.append((b"cookie", b"; ".join(cookies)))
    return fields, pseudo


def _check_limits(headers: Headers, limits: Limits, status: int, what: str = "headers") -> None:
    if len(headers) > limits.max_headers_count:
        raise RemoteProtocolError(
            f"more than {limits.max_headers_count} {what}",
            status=status,
            details="http2.too_many_headers",
        )
    size = 0
    for name, value in headers:
        size += len(name) + len(value)
    if size > limits.max_headers_bytes:
        raise RemoteProtocolError(
            f"{what} larger than {limits.max_headers_bytes} bytes",
            status=status,
            details="http2.headers_too_large",
        )


def content_length(headers: Headers) -> int | None:
    """The declared body length (None: not declared); malformed ones are refused."""
    found = None
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():
                raise _malformed(f"Invalid content-length header: {value!r}")
            length = int(value)
            if found is not None and length != found:
                raise _malformed(f"Conflicting content-length headers: {found} and {length}")
            found = length
    return found


def request_head(raw: list[tuple[bytes, bytes]], limits: Limits) -> RequestHead:
    """A received request header block, checked."""
    fields, pseudo = _check_fields(raw, trailers=False)
    method = authority = path = scheme = host = None
    rest: Headers = []
    expect_continue = False
    for name, value in fields:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":authority":
                authority = value
            elif name == b":path":
                path = value
            elif name == b":scheme":
                scheme = value
        elif name == b"host":
            if host is not None:
                raise _malformed("Request header block has multiple Host headers.")
            host = value
        else:
            if name == b"expect" and value.lower() == b"100-continue":
                expect_continue = True
            rest.append((name, value))
    if method is None:
        raise _malformed("Header block missing mandatory b':method' header")
    if b":status" in pseudo:
        raise _malformed("Encountered response-only headers {b':status'}")
    if method == b"CONNECT" and b":protocol" not in pseudo:
        if scheme is not None or path is not None:
            raise _malformed("Ordinary CONNECT MUST NOT include :scheme or :path")
    else:
        if scheme is None or path is None:
            missing = b":scheme" if scheme is None else b":path"
            raise _malformed(f"Header block missing mandatory {missing!r} header")
        if b":protocol" in pseudo and method != b"CONNECT":
            raise _malformed("Encountered connect-request-only headers {b':protocol'}")
    if authority is None and host is None:
        raise _malformed("Request header block does not have an :authority or Host header.")
    if authority is not None and host is not None and authority != host:
        raise _malformed(
            f"Request header block has mismatched :authority and Host headers: "
            f"{authority!r} / {host!r}"
        )
    if path is not None and not path:
        raise _malformed("An empty :path header is forbidden")
    length = content_length(rest)
    _check_limits(fields, limits, 431)
    if method == b"CONNECT":
        raise RemoteProtocolError("CONNECT is not supported", status=404, details="route_not_found")
    if authority is None:
        authority = host
    assert authority is not None and path is not None and scheme is not None
    limit = limits.max_body_bytes
    if limit is not None and length is not None and length > limit:
        raise RemoteProtocolError(
            f"content-length {length} exceeds {limit} bytes",
            status=413,
            details="request_payload_too_large",
        )
    headers = [(b":method", method), (b":scheme", scheme), (b":authority", authority)]
    headers.append((b":path", path))
    headers += rest
    return RequestHead(headers, expect_continue, length)


def response_head(raw: list[tuple[bytes, bytes]], limits: Limits) -> tuple[Headers, int]:
    """A received response header block, checked: (headers, status)."""
    fields, pseudo = _check_fields(raw, trailers=False)
    if b":status" not in pseudo:
        raise _malformed("Header block missing mandatory b':status' header")
    if pseudo & _REQUEST_ONLY:
        raise _malformed(f"Encountered request-only headers {pseudo & _REQUEST_ONLY}")
    _check_limits(fields, limits, 502)
    status = status_of(fields[0][1]) if fields[0][0] == b":status" else None
    if status is None or status < 100:
        raise RemoteProtocolError(
            "response without a valid :status", status=502, details="http2.invalid.header.field"
        )
    return fields, status


def trailers(raw: list[tuple[bytes, bytes]], limits: Limits, status: int) -> Headers:
    fields, _ = _check_fields(raw, trailers=True)
    _check_limits(fields, limits, status, "trailers")
    return fields


# -- sending ---------------------------------------------------------------------------------

_NORMAL: set[bytes] = set()  # names seen to need nothing but a value check
_NORMAL_MAX = 4096
_WHITESPACE = frozenset(b" \t\r\n\x0b\x0c")
_NOT_SENT = CONNECTION_HEADERS | HOP_BY_HOP


def outbound(headers: Headers, *, regular_only: bool = False) -> Headers:
    """Fields to send: normalized (names lowercased, values stripped), connection-
    specific ones dropped, `te` other than `trailers` refused; with `regular_only`
    (a response's fields after its `:status`) pseudo-headers are dropped too."""
    out: Headers = []
    normal = _NORMAL
    for header in headers:
        name, value = header
        if name not in normal:
            fixed = _normalized(name, value, regular_only)
            if fixed is None:
                continue
            header = fixed  # noqa: PLW2901
        elif value and (value[0] in _WHITESPACE or value[-1] in _WHITESPACE):
            header = (name, value.strip())  # noqa: PLW2901
        out.append(header)
    return out


def _normalized(name: bytes, value: bytes, regular_only: bool) -> tuple[bytes, bytes] | None:
    clean = name.strip().lower()
    if clean in _NOT_SENT or (regular_only and clean[:1] == b":"):
        return None
    if clean == b"te":
        if value.strip().lower() != b"trailers":
            raise LocalProtocolError(f"Invalid value for TE header: {value!r}")
    elif clean == name and clean[:1] != b":" and len(_NORMAL) < _NORMAL_MAX:
        _NORMAL.add(name)
    return clean, value.strip()


def check_outbound_request(headers: Headers) -> None:
    """The pseudo-headers of a request to send (its regular fields go through `outbound`)."""
    seen: dict[bytes, bytes] = {}
    for name, value in headers:
        if name[:1] != b":":
            break
        if name in seen or name not in _REQUEST_ONLY:
            raise LocalProtocolError(f"invalid or repeated pseudo-header {name!r} in a request")
        seen[name] = value
    method = seen.get(b":method")
    if method is None:
        raise LocalProtocolError("request without :method")
    if method != b"CONNECT" and (not seen.get(b":path") or b":scheme" not in seen):
        raise LocalProtocolError("request without :scheme or with an empty :path")
    if b":authority" not in seen and not any(name == b"host" for name, _ in headers):
        raise LocalProtocolError("request without :authority or host")
