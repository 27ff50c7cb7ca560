"""`serve_http_connection`: one accepted connection of an HTTP connection manager.

The protocol comes from the codec setting; `auto` picks HTTP/2 when the
client opens with the prior-knowledge preface (or negotiated `h2` over TLS)
and HTTP/1.1 otherwise, as Envoy's automatic codec does. Over TLS the
listener has done the handshake and verified the client (`peer`, which the
requests see as `HttpContext.peer`); the connection counts as
`downstream_cx_ssl_total` / `_active` too.
"""

from __future__ import annotations

import logging

import trio

from pydp.http import detect_protocol, protocol_from_alpn
from pydp.listener.config import HttpConnectionManagerConfig
from pydp.proxy.context import HttpContext, ProxyRuntime
from pydp.proxy.downstream_h1 import H1Downstream
from pydp.proxy.downstream_h2 import H2Downstream
from pydp.proxy.drain import Drain
from pydp.tls.peer import TlsPeer
from pydp.tls.stream import TlsStream

log = logging.getLogger(__name__)

_PREFACE_READ = 65536


async def serve_http_connection(
    stream: trio.abc.Stream,
    remote: tuple[str, int],
    local: tuple[str, int],
    config: HttpConnectionManagerConfig,
    listener_name: str,
    runtime: ProxyRuntime,
    *,
    peer: TlsPeer | None = None,
    drain: Drain | None = None,
) -> None:
    """Serve HTTP on `stream` until either side ends it; closes `stream`.

    A failure inside (a bug) is logged and ends this connection only. When `drain`
    starts, the connection finishes its current response (or GOAWAY) and closes."""
    tls = isinstance(stream, TlsStream)
    scheme = b"https" if tls else b"http"
    ctx = HttpContext(config, listener_name, runtime, remote, local, scheme, peer, drain)
    stats, names = ctx.stats, ctx.names
    stats.inc(names.cx_total)
    stats.gauge_add(names.cx_active, 1)
    ssl_active = ""
    if tls:
        ssl_active = f"http.{config.stat_prefix}.downstream_cx_ssl_active"
        stats.inc(f"http.{config.stat_prefix}.downstream_cx_ssl_total")
        stats.gauge_add(ssl_active, 1)
    try:
        await _serve(stream, ctx, config, tls)
    except Exception:
        log.exception("connection from %s on %s failed", remote, listener_name)
    finally:
        stats.gauge_add(names.cx_active, -1)
        stats.inc(names.cx_destroy)
        if ssl_active:
            stats.gauge_add(ssl_active, -1)
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def _serve(
    stream: trio.abc.Stream, ctx: HttpContext, config: HttpConnectionManagerConfig, tls: bool
) -> None:
    stats, names = ctx.stats, ctx.names
    protocol, initial = await _detect(stream, config, tls)
    if protocol is None:
        if initial is None:
            stats.inc(names.cx_idle_timeout)
        return
    if protocol == "h2":
        stats.inc(names.cx_http2_total)
        stats.gauge_add(names.cx_http2_active, 1)
        try:
            await H2Downstream(stream, ctx).run(initial or b"")
        finally:
            stats.gauge_add(names.cx_http2_active, -1)
    else:
        stats.inc(names.cx_http1_total)
        stats.gauge_add(names.cx_http1_active, 1)
        try:
            await H1Downstream(stream, ctx).run(initial or b"")
        finally:
            stats.gauge_add(names.cx_http1_active, -1)


async def _detect(
    stream: trio.abc.Stream, config: HttpConnectionManagerConfig, tls: bool
) -> tuple[str | None, bytes | None]:
    """(protocol, bytes already read); protocol None when the client left first
    (bytes None: it stayed idle past `idle_timeout`)."""
    if config.codec == "http2":
        return "h2", b""
    if config.codec == "http1":
        return "http/1.1", b""
    if tls:
        assert isinstance(stream, TlsStream)
        handshaken = False
        with trio.move_on_after(config.idle_timeout or float("inf")):
            try:
                await stream.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return None, b""
            handshaken = True
        if not handshaken:
            return None, None
        alpn = stream.selected_alpn_protocol()
        if alpn is not None:
            return protocol_from_alpn(alpn), b""
    data = b""
    with trio.move_on_after(config.idle_timeout or float("inf")):
        while True:
            try:
                chunk = await stream.receive_some(_PREFACE_READ)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                chunk = b""
            if not chunk:
                return None, data
            data += chunk
            protocol = detect_protocol(data)
            if protocol is not None:
                return protocol, data
    return None, None
