"""Limits and protocol options, with Envoy's defaults.

`Limits` applies to one direction of one connection: a server connection
limits the requests it parses (Envoy's `max_request_headers_kb`,
`max_headers_count`), a client connection the responses. `H1Options` and
`H2Options` mirror the matching fields of Envoy's `Http1ProtocolOptions` and
`Http2ProtocolOptions`; the config layer fills them from xDS.
"""

from __future__ import annotations

from dataclasses import dataclass

ENVOY_MAX_HEADERS_BYTES = 60 * 1024
ENVOY_MAX_HEADERS_COUNT = 100
ENVOY_H2_WINDOW = 256 * 1024 * 1024
ENVOY_H2_MAX_CONCURRENT_STREAMS = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """`max_headers_bytes` counts the URL and every header name and value
    (431 when exceeded, as Envoy); trailers are counted separately against the
    same limits. `max_url_bytes`, when set, answers 414 for a longer URL.
    `max_body_bytes`, when set, answers 413 for a longer body."""

    max_headers_bytes: int = ENVOY_MAX_HEADERS_BYTES
    max_headers_count: int = ENVOY_MAX_HEADERS_COUNT
    max_url_bytes: int | None = None
    max_body_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class H1Options:
    """`accept_http_10` off answers HTTP/1.0 requests 426 (Envoy's default);
    `default_host_for_http_10` fills `:authority` for a 1.0 request without
    Host. `enable_trailers` off drops chunked trailers both ways, as Envoy does
    by default. `allow_absolute_url` accepts absolute-form targets."""

    accept_http_10: bool = False
    default_host_for_http_10: bytes | None = None
    enable_trailers: bool = False
    allow_absolute_url: bool = True


@dataclass(frozen=True, slots=True)
class H2Options:
    """Flow-control windows and the concurrency we advertise. The windows
    bound what a peer may send before the consumer acknowledges it."""

    initial_stream_window_size: int = ENVOY_H2_WINDOW
    initial_connection_window_size: int = ENVOY_H2_WINDOW
    max_concurrent_streams: int = ENVOY_H2_MAX_CONCURRENT_STREAMS
