"""HTTP/1.1 request heads (server side) into `Request` events.

Theory of operation
-------------------
On top of the shared reader (`pydp.http.h1_parse`): the request line and Host
become the four pseudo-headers (absolute-form targets give their own scheme
and authority), the version rules apply (HTTP/1.0 only when accepted, as
Envoy's `accept_http_10`), CONNECT is refused, and each parsed head queues
its (keep-alive, HTTP/1.0) pair in `heads` for the connection.

Upgrade requests: llhttp stops after an upgrade request's head and hands the
rest of the input back. h2c upgrades are plain requests (as Envoy); others
are reported in `Request.upgrade` and end the connection after the response.
A body the head announced is re-parsed by the connection through a fresh
parser fed a synthetic head: in `synthetic` mode the head is ignored and the
body and trailers go to the original stream.
"""

from __future__ import annotations

from collections import deque

from pydp.http.events import ExpectContinue, Request
from pydp.http.h1_parse import MessageReader
from pydp.http.limits import H1Options, Limits


class RequestReader(MessageReader):
    """Server side: parses requests. Streams are numbered 1, 3, 5 ..."""

    def __init__(self, limits: Limits, options: H1Options, scheme: bytes) -> None:
        super().__init__(limits, options, client_side=False)
        self.scheme = scheme
        self.url = b""
        self.next_stream_id = 1
        self.synthetic = False
        self.upgrade_body = False
        # (keep_alive, http10) of each parsed request head, in order.
        self.heads: deque[tuple[bool, bool]] = deque()

    def new_stream_id(self) -> int:
        stream_id = self.next_stream_id
        self.next_stream_id += 2
        return stream_id

    def on_message_begin(self) -> None:
        self.idle = -self.chunk_len
        if self.synthetic:
            return
        self.in_message = True
        self.stream_id = self.new_stream_id()
        self.url = b""
        self._reset_head()

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)
        max_url = self.limits.max_url_bytes
        if max_url is not None and len(self.url) > max_url:
            raise self.error(f"URL longer than {max_url} bytes", 414, "uri_too_long")
        if self.header_bytes > self.max_bytes:
            raise self.over_limit()

    def on_headers_complete(self) -> None:
        self.idle = -self.chunk_len
        if self.synthetic:
            self.synthetic = False
            self.begin_body()
            return
        parser = self.parser
        version: str = parser.get_http_version()
        method: bytes = parser.get_method()
        http10 = version != "1.1"
        if http10:
            if version not in ("1.0", "0.9"):
                raise self.error(f"unsupported HTTP version {version}", 400, "http1.codec_error")
            if not self.options.accept_http_10:
                raise self.error("HTTP/1.0 is not enabled", 426, "low_version")
        if method == b"CONNECT":
            # Envoy's route matchers never match a CONNECT without a
            # connect_matcher, which pydp does not support.
            raise self.error("CONNECT is not supported", 404, "route_not_found")
        keep_alive = self.keep_alive_for(version)
        url = self.url
        if url[:1] == b"/" and self.host is not None:
            scheme, authority, path = self.scheme, self.host, url
        else:
            scheme, authority, path = self._target(method, http10)
        upgrade = None
        self.upgrade_body = False
        if parser.should_upgrade():
            if self.upgrade is not None and self.upgrade.lower() != b"h2c":
                upgrade = self.upgrade
                keep_alive = False
            self.upgrade_body = self.chunked or bool(self.content_length)
        limit = self.limits.max_body_bytes
        if limit is not None and self.content_length is not None and self.content_length > limit:
            raise self.error(
                f"content-length {self.content_length} exceeds {limit} bytes",
                413,
                "request_payload_too_large",
            )
        self.keep_alive = keep_alive
        headers = [
            (b":method", method),
            (b":scheme", scheme),
            (b":authority", authority),
            (b":path", path),
        ]
        headers += self.headers
        end_stream = not self.chunked and not self.content_length
        self.heads.append((keep_alive, http10))
        self.events.append(Request(self.stream_id, headers, end_stream, upgrade))
        if self.expect_continue and not http10:
            self.events.append(ExpectContinue(self.stream_id))
        self.begin_body()

    def _target(self, method: bytes, http10: bool) -> tuple[bytes, bytes, bytes]:
        """(:scheme, :authority, :path) from the request target and Host."""
        url = self.url
        scheme = self.scheme
        authority = self.host
        if url[:1] == b"/" or (url == b"*" and method == b"OPTIONS"):
            path = url
        elif self.options.allow_absolute_url and b"://" in url:
            scheme, _, rest = url.partition(b"://")
            scheme = scheme.lower()
            end = len(rest)
            for sep in (b"/", b"?"):
                index = rest.find(sep)
                if index != -1:
                    end = min(end, index)
            authority, path = rest[:end], rest[end:]
            if scheme not in (b"http", b"https") or not authority or b"@" in authority:
                raise self.error(f"invalid absolute URL {url[:100]!r}", 400, "http1.invalid_url")
            if path[:1] != b"/":
                path = b"/" + path
        else:
            raise self.error(f"invalid request target {url[:100]!r}", 400, "http1.invalid_url")
        if authority is None:
            if http10 and self.options.default_host_for_http_10 is not None:
                authority = self.options.default_host_for_http_10
            else:
                raise self.error("missing Host header", 400, "missing_host_header")
        return scheme, authority, path

    def on_message_complete(self) -> None:
        if self.upgrade_body:
            # llhttp skips an upgrade request's body: it is re-parsed.
            return
        self.end_message()
