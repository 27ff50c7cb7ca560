"""A connection before its filter chain runs: the TLS inspector, the chain, the handshake.

`choose_chain` runs the listener filter (the TLS inspector, when the
listener has or needs it) within `listener_filters_timeout`, then picks the
most specific chain for what it found (`ListenerConfig.chain_for`); None
means the connection must close (counted as Envoy does:
`downstream_pre_cx_timeout`, `no_filter_chain_match`, or a ClientHello too
large). `terminate_tls` does a TLS chain's handshake within its
`transport_socket_connect_timeout`, else its filter's idle timeout, and
returns the TLS stream with the verified peer, or None (counted under
`<listener prefix>ssl.`).
"""

from __future__ import annotations

import logging
import math

import trio

from pydp.listener.config import (
    TRANSPORT_RAW_BUFFER,
    TRANSPORT_TLS,
    FilterChainConfig,
    ListenerConfig,
)
from pydp.stats import Stats
from pydp.tls import inspector
from pydp.tls.client_hello import Detection
from pydp.tls.contexts import TlsContexts, TlsUnavailable
from pydp.tls.handshake import TlsFailure, accept
from pydp.tls.peer import TlsPeer

log = logging.getLogger(__name__)


async def choose_chain(
    config: ListenerConfig, stream: trio.SocketStream, stats: Stats, prefix: str
) -> FilterChainConfig | None:
    """The filter chain of an accepted connection (`prefix`: the listener's stat prefix)."""
    transport = TRANSPORT_RAW_BUFFER
    if config.tls_inspector is not None:
        stats.gauge_add(prefix + "downstream_pre_cx_active", 1)
        try:
            with trio.move_on_after(config.listener_filters_timeout or math.inf) as waited:
                result = await inspector.peek_client_hello(
                    stream.socket, config.tls_inspector.max_client_hello_size
                )
        finally:
            stats.gauge_add(prefix + "downstream_pre_cx_active", -1)
        if waited.cancelled_caught:
            stats.inc(prefix + "downstream_pre_cx_timeout")
            if not config.continue_on_listener_filters_timeout:
                return None
        elif result is None:
            return None
        else:
            inspector.count(stats, result)
            if result.detection is Detection.TOO_LARGE:
                return None
            if result.detection is Detection.TLS:
                transport = TRANSPORT_TLS
    chain = config.chain_for(transport)
    if chain is None:
        stats.inc(prefix + "no_filter_chain_match")
    return chain


async def terminate_tls(
    chain: FilterChainConfig,
    stream: trio.SocketStream,
    contexts: TlsContexts | None,
    stats: Stats,
    prefix: str,
    listener_name: str,
) -> tuple[trio.abc.Stream, TlsPeer] | None:
    """The TLS stream and verified peer of a connection on a TLS chain; None: close it."""
    assert chain.tls is not None
    try:
        if contexts is None:
            raise TlsUnavailable("this listener manager has no TLS contexts")
        context = contexts.server(chain.tls)
    except TlsUnavailable as exc:
        log.error("listener %s: cannot terminate TLS: %s", listener_name, exc)
        stats.inc(prefix + "ssl.connection_error")
        return None
    limit = chain.transport_socket_connect_timeout or chain.filter.idle_timeout
    with trio.move_on_after(limit or math.inf) as waited:
        try:
            return await accept(stream, context, stats, prefix + "ssl.")
        except TlsFailure as failure:
            log.debug("listener %s: %s", listener_name, failure)
            return None
    if waited.cancelled_caught and chain.transport_socket_connect_timeout:
        stats.inc(prefix + "downstream_cx_transport_socket_connect_timeout")
    return None
