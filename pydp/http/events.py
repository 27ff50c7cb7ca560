"""The events every pydp HTTP connection speaks, whatever the protocol version.

HTTP/1.1 and HTTP/2 connections, server side (downstream) and client side
(upstream), turn bytes into these events and these events into bytes, so the
router never knows which protocol a stream travels on.

Header lists: the contract with the router
------------------------------------------
`Headers` is an HTTP/2-style `list[tuple[bytes, bytes]]`:

* names are lowercase bytes; values are bytes without surrounding whitespace;
* pseudo-headers come first. A request carries exactly, and in this order,
  `:method`, `:scheme`, `:authority`, `:path` (so `headers[0][1]` is the
  method and `headers[3][1]` the path). A response carries `:status` first
  (the decimal status as bytes), and its `status` field holds the same number;
* then the regular headers in the order received; a repeated name stays as
  repeated entries (HTTP/2 `cookie` crumbs are joined with `; `);
* `host` never appears: HTTP/1.1 `Host` (or the absolute-form target) becomes
  `:authority`;
* hop-by-hop headers are never present: `connection`, `keep-alive`,
  `proxy-connection`, `transfer-encoding`, `upgrade`, `http2-settings`, and
  `te` unless its value is `trailers`. `content-length` is kept.

When sending, a connection reads the request line from the four
pseudo-headers, takes a response's status from `Response.status` (a `:status`
entry may be present or not), and drops hop-by-hop headers the caller left in.

Messages and streams
--------------------
Every message is `Request`/`Response`, then any number of `Data`, then exactly
one `EndOfMessage` (which carries the trailers, if any). `end_stream=True` on a
`Request` or `Response` says no body follows: its `EndOfMessage` comes next
with no trailers. A stream ends early with `StreamReset` (either direction) or
`StreamError` (the peer's request or response on that stream is unacceptable).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydp.http.errors import RemoteProtocolError

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Request:
    """A request head. `upgrade` is the Upgrade token of an HTTP/1.1 upgrade
    request the proxy does not tunnel (the `upgrade` header itself is
    stripped); Envoy answers such a request 403 `upgrade_failed` once it is
    routed, and the connection closes after the response."""

    stream_id: int
    headers: Headers
    end_stream: bool = False
    upgrade: bytes | None = None


@dataclass(slots=True)
class ExpectContinue:
    """The request just received carries `Expect: 100-continue` (the header
    stays in `Request.headers`). Answer `InformationalResponse(100)` locally
    (and drop the header upstream), or forward it and relay the upstream 100."""

    stream_id: int


@dataclass(slots=True)
class InformationalResponse:
    """A 1xx response head (never 101)."""

    stream_id: int
    status: int
    headers: Headers


@dataclass(slots=True)
class Response:
    stream_id: int
    status: int
    headers: Headers
    end_stream: bool = False


@dataclass(slots=True)
class Data:
    stream_id: int
    data: bytes


@dataclass(slots=True)
class EndOfMessage:
    stream_id: int
    trailers: Headers = field(default_factory=list)


@dataclass(slots=True)
class StreamReset:
    """The stream was abandoned; `code` is an HTTP/2 error code (`h2.errors.ErrorCodes`).

    HTTP/1.1 has no resets: a peer closing mid-message shows as `StreamReset`
    followed by `ConnectionClosed`, and sending one makes the connection close.
    """

    stream_id: int
    code: int


@dataclass(slots=True)
class StreamError:
    """The peer's message on this stream is unacceptable; the rest of the
    connection is fine. Server side: answer `error.error_status_hint` (the
    stream is still open for that). Client side: the stream was reset already.
    Further events for the stream are suppressed."""

    stream_id: int
    error: RemoteProtocolError


@dataclass(slots=True)
class WindowUpdated:
    """Data queued by `send(Data)` on this stream waiting for HTTP/2 flow
    control has all been written out: resume reading from its source."""

    stream_id: int


@dataclass(slots=True)
class ConnectionClosed:
    """The peer closed the connection (EOF) or sent HTTP/2 GOAWAY.

    After GOAWAY, streams up to `last_stream_id` may still complete; the client
    side has already reported the streams above it as `StreamReset` with
    REFUSED_STREAM (never processed, safe to retry). `error_code` is 0 for a
    graceful close.
    """

    error_code: int = 0
    last_stream_id: int | None = None


Event = (
    Request
    | ExpectContinue
    | InformationalResponse
    | Response
    | Data
    | EndOfMessage
    | StreamReset
    | StreamError
    | WindowUpdated
    | ConnectionClosed
)
