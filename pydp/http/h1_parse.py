"""httptools (llhttp) callbacks that turn HTTP/1.1 messages into events.

Theory of operation
-------------------
`httptools` parses in C and calls back per URL piece, per complete header
line, per body piece and per message end. A reader collects a head, checks it
against the limits and the smuggling rules, rewrites it into the HTTP/2-style
header list of `pydp.http.events` and appends events to `self.events`; the
owning connection drains that queue. A message the reader rejects raises a
`RemoteProtocolError` from inside the callback; the connection unwraps it
from httptools' `HttpParserCallbackError`. This module has what requests
(`h1_request`) and responses (`h1_response`) share.

What llhttp enforces by itself (strict mode, no leniency flags): CRLF line
endings (a bare LF is an error), no obs-fold, valid tokens and header value
characters, chunk-size syntax, and no message with both Content-Length and
Transfer-Encoding or with two Content-Length headers (even equal ones). The
readers add: Transfer-Encoding must be exactly `chunked` (501 otherwise, as
Envoy), header and URL size and count limits, Host rules, body limits, and
the version rules.

Trailers arrive through `on_header` after the head; they are delivered on
`EndOfMessage` only when trailers are enabled.

A drip-fed head or trailer section that never completes is bounded by
`idle`: bytes fed since the last message, body or head boundary, not counting
the feed where it started; the connection fails the message when it exceeds
twice the header limit (the exact 431 comes from the per-header count).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from pydp.http.errors import ProtocolError, RemoteProtocolError
from pydp.http.events import Data, EndOfMessage, Event, Headers
from pydp.http.headers import HOP_BY_HOP, connection_tokens, sanitize_te
from pydp.http.limits import H1Options, Limits

_WS = (0x20, 0x09)
_SPECIAL = HOP_BY_HOP | {b"content-length", b"te", b"host", b"expect"}
_NOT_IN_TRAILERS = HOP_BY_HOP | {b"content-length", b"host", b"te", b"trailer"}

Queue = deque[Event | ProtocolError]


class MessageReader:
    """What requests and responses share: headers, limits, body, trailers."""

    def __init__(self, limits: Limits, options: H1Options, *, client_side: bool) -> None:
        self.limits = limits
        self.options = options
        self.max_count = limits.max_headers_count
        self.max_bytes = limits.max_headers_bytes
        self.max_body = limits.max_body_bytes
        self.enable_trailers = options.enable_trailers
        self.client_side = client_side
        self.events: Queue = deque()
        self.parser: Any = None
        self.stream_id = 0
        self.chunk_len = 0
        self.idle = 0
        self.in_message = False
        self.stopped = False
        self.keep_alive = True
        self._reset_head()

    def _reset_head(self) -> None:
        self.headers: Headers = []
        self.trailers: Headers = []
        self.in_trailers = False
        self.header_bytes = 0
        self.header_count = 0
        self.content_length: int | None = None
        self.chunked = False
        self.close = False
        self.keep_alive_token = False
        self.upgrade: bytes | None = None
        self.host: bytes | None = None
        self.expect_continue = False
        self.body_bytes = 0

    def error(self, message: str, status: int, details: str) -> RemoteProtocolError:
        if self.client_side:
            status = 502
        return RemoteProtocolError(message, status=status, details=details)

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if value and value[-1] in _WS:
            value = value.rstrip(b" \t")
        count = self.header_count = self.header_count + 1
        size = self.header_bytes = self.header_bytes + len(name) + len(value)
        if count > self.max_count or size > self.max_bytes:
            raise self.over_limit()
        if self.in_trailers:
            if name not in _NOT_IN_TRAILERS:
                self.trailers.append((name, value))
        elif name in _SPECIAL:
            self._special(name, value)
        else:
            self.headers.append((name, value))

    def over_limit(self) -> RemoteProtocolError:
        what = "trailers" if self.in_trailers else "headers"
        if self.header_count > self.max_count:
            return self.error(f"more than {self.max_count} {what}", 431, "http1.too_many_headers")
        return self.error(
            f"{what} larger than {self.max_bytes} bytes", 431, "http1.headers_too_large"
        )

    def _special(self, name: bytes, value: bytes) -> None:
        if name == b"host" and not self.client_side:
            if self.host is not None:
                raise self.error("more than one Host header", 400, "http1.codec_error")
            self.host = value
        elif name == b"content-length":
            self.content_length = int(value)
            self.headers.append((name, value))
        elif name == b"transfer-encoding":
            if self.chunked or value.lower() != b"chunked":
                raise self.error(
                    f"unsupported transfer-encoding {value!r}",
                    501,
                    "http1.invalid_transfer_encoding",
                )
            self.chunked = True
        elif name == b"connection":
            tokens = connection_tokens(value)
            self.close = self.close or b"close" in tokens
            self.keep_alive_token = self.keep_alive_token or b"keep-alive" in tokens
        elif name == b"upgrade":
            self.upgrade = value
        elif name == b"te":
            te = sanitize_te(value)
            if te is not None:
                self.headers.append((name, te))
        elif name == b"expect" and not self.client_side:
            self.expect_continue = value.lower() == b"100-continue"
            self.headers.append((name, value))
        elif name in (b"host", b"expect"):
            self.headers.append((name, value))

    def keep_alive_for(self, version: str) -> bool:
        if version == "1.1":
            return not self.close
        return self.keep_alive_token and not self.close

    def begin_body(self) -> None:
        """Called at the end of a head: what follows are body and trailers."""
        self.in_trailers = True
        self.header_bytes = 0
        self.header_count = 0
        self.trailers = []

    def on_body(self, body: bytes) -> None:
        self.idle = -self.chunk_len
        size = self.body_bytes = self.body_bytes + len(body)
        limit = self.max_body
        if limit is not None and size > limit:
            raise self.error(f"body larger than {limit} bytes", 413, "request_payload_too_large")
        self.events.append(Data(self.stream_id, body))

    def on_chunk_header(self) -> None:
        self.idle = -self.chunk_len

    def end_message(self) -> None:
        self.idle = -self.chunk_len
        self.in_message = False
        trailers = self.trailers
        if trailers and not self.enable_trailers:
            trailers = []
        self.events.append(EndOfMessage(self.stream_id, trailers))
        if not self.keep_alive:
            self.stopped = True


class UnsolicitedError(Exception):
    """Bytes from the peer with no response outstanding."""


def unwrap(exc: Exception, client_side: bool) -> RemoteProtocolError:
    """The RemoteProtocolError behind an httptools exception."""
    context = exc.__context__
    if isinstance(context, RemoteProtocolError):
        return context
    message = str(exc) or type(exc).__name__
    status = 502 if client_side else 400
    details = "http1.codec_error"
    if "Content-Length" in message and "Transfer-Encoding" in message:
        details = "http1.content_length_and_chunked_not_allowed"
    elif type(exc).__name__ == "HttpParserInvalidURLError":
        details = "http1.invalid_url"
    return RemoteProtocolError(f"malformed HTTP/1.1: {message}", status=status, details=details)
