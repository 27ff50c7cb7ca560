"""The TLS inspector listener filter on a trio socket: peek, never consume.

The client's first bytes are read with `MSG_PEEK`, so the filter chain
chosen afterwards (TLS or plaintext) reads them again from the start. A
ClientHello rarely comes in pieces; when it does, the peek is repeated after
a short, growing pause (a peeked socket stays readable, so there is no event
to wait for). Envoy's counters: `tls_inspector.tls_found`, `tls_not_found`,
`client_hello_too_large`, and `sni_found`/`sni_not_found`,
`alpn_found`/`alpn_not_found` for TLS clients.
"""

from __future__ import annotations

import socket

import trio

from pydp.stats import Stats
from pydp.tls.client_hello import MAX_CLIENT_HELLO, Detection, Inspection, inspect

STATS = "tls_inspector."
COUNTERS = (
    "tls_found",
    "tls_not_found",
    "client_hello_too_large",
    "sni_found",
    "sni_not_found",
    "alpn_found",
    "alpn_not_found",
)
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.05


async def peek_client_hello(
    sock: trio.socket.SocketType, max_size: int = MAX_CLIENT_HELLO
) -> Inspection | None:
    """What the client's first bytes say; None if it closed before they said anything.

    Waits as long as the client sends nothing: the caller bounds it (Envoy's
    `listener_filters_timeout`)."""
    pause = _FIRST_PAUSE
    seen = 0
    while True:
        try:
            data = await sock.recv(max_size, socket.MSG_PEEK)
        except OSError:
            return None
        if not data:
            return None
        result = inspect(data, max_size)
        if result.detection is not Detection.NEED_MORE:
            return result
        if len(data) > seen:
            seen, pause = len(data), _FIRST_PAUSE
        await trio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)


def count(stats: Stats, result: Inspection) -> None:
    """Envoy's `tls_inspector.*` counters for one inspected connection."""
    if result.detection is Detection.TOO_LARGE:
        stats.inc(STATS + "client_hello_too_large")
        return
    if result.detection is not Detection.TLS or result.hello is None:
        stats.inc(STATS + "tls_not_found")
        return
    stats.inc(STATS + "tls_found")
    stats.inc(STATS + ("sni_found" if result.hello.server_name else "sni_not_found"))
    stats.inc(STATS + ("alpn_found" if result.hello.alpn else "alpn_not_found"))
