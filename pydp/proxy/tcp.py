"""`serve_tcp_connection`: Envoy's `tcp_proxy` to one cluster.

Pick a host (flag UH when none), take a connection from the circuit
breakers (UO), connect within the cluster's `connect_timeout` (UF, and a
connect failure for outlier detection), then copy bytes both ways. An EOF
from one side is passed on as a half-close (`send_eof`), and the proxy ends
when both directions have ended, when either side fails, or after
`idle_timeout` without a byte either way. One access log entry per
connection; `tcp.<stat_prefix>.*` and the cluster's connection stats. Either
side may be TLS: the listener terminates it downstream, a cluster with an
`UpstreamTlsContext` originates it (no ALPN unless the context names one);
TLS has no half-close, so an EOF there ends both directions.
"""

from __future__ import annotations

import logging
import time

import trio

from pydp.listener.config import TcpProxyConfig
from pydp.proxy.context import ProxyRuntime
from pydp.proxy.drain import Drain
from pydp.proxy.stat_names import ClusterStatNames, TcpStatNames, cluster_names, tcp_names
from pydp.proxy.stream_info import StreamInfo
from pydp.proxy.upstream import ConnectFailure, connect
from pydp.stats import Stats
from pydp.tls.peer import TlsPeer
from pydp.upstream import Failure, ResetReason, RoutingPriority

log = logging.getLogger(__name__)

RECEIVE_SIZE = 65536


async def serve_tcp_connection(
    stream: trio.abc.Stream,
    remote: tuple[str, int],
    local: tuple[str, int],
    config: TcpProxyConfig,
    listener_name: str,
    runtime: ProxyRuntime,
    *,
    peer: TlsPeer | None = None,
    drain: Drain | None = None,
) -> None:
    """Proxy `stream` to a host of `config.cluster` until both sides are done; closes it.

    `peer` (the verified TLS client) is not used by the TCP proxy, nor `drain`: a
    draining TCP connection runs until the drain deadline cancels it."""
    stats = runtime.stats
    names = tcp_names(config.stat_prefix)
    stats.inc(names.cx_total)
    info = StreamInfo(time.time(), trio.current_time())
    info.cluster = config.cluster
    try:
        await _proxy(stream, config, runtime, info, names)
    except Exception:
        log.exception("TCP connection from %s on %s failed", remote, listener_name)
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()
        runtime.access_log(listener_name, info.tcp_entry(trio.current_time(), remote))


async def _proxy(
    stream: trio.abc.Stream,
    config: TcpProxyConfig,
    runtime: ProxyRuntime,
    info: StreamInfo,
    names: TcpStatNames,
) -> None:
    stats = runtime.stats
    cluster = runtime.cluster(config.cluster)
    if cluster is None:
        stats.inc(names.cx_no_route)
        info.flag("NC")
        return
    cnames = cluster_names(cluster.config.alt_stat_name or cluster.config.name)
    host = cluster.choose_host(None)
    if host is None:
        stats.inc(cnames.cx_none_healthy)
        info.flag("UH")
        return
    info.upstream_host = host
    breakers = cluster.breakers
    if not breakers.try_acquire_connection(RoutingPriority.DEFAULT, host):
        info.flag("UO")
        return
    try:
        try:
            tls = runtime.pools.client_tls(cluster.config)
            upstream = await connect(
                host.address,
                host.port,
                cluster.config.connect_timeout,
                tls,
                stats,
                cnames.prefix + "ssl.",
            )
        except ConnectFailure as failure:
            stats.inc(cnames.cx_connect_fail)
            if failure.reason is ResetReason.CONNECTION_TIMEOUT:
                stats.inc(cnames.cx_connect_timeout)
            cluster.record_failure(host, Failure.CONNECT_FAILURE, runtime.now())
            info.flag("UF")
            return
        stats.inc(cnames.cx_total)
        stats.gauge_add(cnames.cx_active, 1)
        try:
            await _splice(stream, upstream, config.idle_timeout, stats, names, cnames, info)
        finally:
            stats.gauge_add(cnames.cx_active, -1)
            stats.inc(cnames.cx_destroy)
            with trio.CancelScope(shield=True):
                await upstream.aclose()
    finally:
        breakers.release_connection(RoutingPriority.DEFAULT, host)


async def _splice(
    downstream: trio.abc.Stream,
    upstream: trio.abc.Stream,
    idle_timeout: float | None,
    stats: Stats,
    names: TcpStatNames,
    cnames: ClusterStatNames,
    info: StreamInfo,
) -> None:
    async with trio.open_nursery() as nursery:
        scope = nursery.cancel_scope

        def activity() -> None:
            if idle_timeout:
                scope.deadline = trio.current_time() + idle_timeout

        activity()

        async def copy(src: trio.abc.Stream, dst: trio.abc.Stream, upward: bool) -> None:
            while True:
                try:
                    data = await src.receive_some(RECEIVE_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    scope.cancel()
                    return
                if not data:
                    if isinstance(dst, trio.abc.HalfCloseableStream):
                        try:
                            await dst.send_eof()
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            scope.cancel()
                    else:
                        scope.cancel()
                    return
                try:
                    await dst.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    scope.cancel()
                    return
                size = len(data)
                if upward:
                    info.bytes_received += size
                    stats.inc(names.cx_rx_bytes_total, size)
                    stats.inc(cnames.cx_tx_bytes_total, size)
                else:
                    info.bytes_sent += size
                    stats.inc(names.cx_tx_bytes_total, size)
                    stats.inc(cnames.cx_rx_bytes_total, size)
                activity()

        nursery.start_soon(copy, downstream, upstream, True)
        nursery.start_soon(copy, upstream, downstream, False)
    if scope.cancelled_caught and idle_timeout and trio.current_time() >= scope.deadline:
        stats.inc(names.idle_timeout)
