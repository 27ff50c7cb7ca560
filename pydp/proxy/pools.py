"""Connection pools: per cluster, per host, per upstream protocol, as Envoy keeps them.

Theory of operation
-------------------
`PoolManager` is made once per process and must be running (`await
nursery.start(pools.run)`, or `open_pool_manager()`): HTTP/2 reader tasks,
the outlier detection timers and the data path's request timers (`timers`,
a `pydp.proxy.timers.TimerQueue`) live in its nursery. The data path finds
it as `runtime.pools`.

Per cluster object (a CDS update brings a new one; the old one's pools
drain) a `ClusterPools` holds one `HostPool` per (host, protocol). Getting a
stream for an attempt (`HostPool.acquire`) follows Envoy's pool: take a ready
connection (HTTP/1.1: an idle one, not stale; HTTP/2: one with a free
stream); otherwise the request becomes pending (the pending-requests circuit
breaker, `upstream_rq_pending_overflow` when full) and either opens a
connection (the connections breaker permitting; `upstream_cx_overflow`
otherwise) or waits until the cluster's connection capacity changes. HTTP/2
requests wait for a connection already being opened to the same host.

A cluster with an `UpstreamTlsContext` connects over TLS: the context comes
from the manager's `tls` (`pydp.tls.contexts.TlsContexts`, set by the app),
offering ALPN `h2` or `http/1.1` by the pool's protocol when the context
names none; handshake stats go under `cluster.<name>.ssl.`.

An idle HTTP/1.1 connection has no task reading it, so its pool watches the
idle ones for a close or stray bytes (`select.poll`, all at once): before a
reuse, unless the last sweep is under `_FRESH` old. A connection is then
never reused more than `_FRESH` after the kernel saw it closed, for one
poll(2) per pool and `_FRESH` rather than one per request.

Connections end when the peer closes them, after `max_requests_per_connection`,
when idle longer than the cluster's `idle_timeout` (checked when next
picked), or when their pool drains (cluster gone, updated, or host removed):
idle ones at once, busy ones when their request ends.
"""

from __future__ import annotations

import logging
import select
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

import trio

from pydp.proxy.inbox import Signal
from pydp.proxy.stat_names import ClusterStatNames, cluster_names
from pydp.proxy.timers import TimerQueue
from pydp.proxy.upstream import (
    ConnectFailure,
    H1Upstream,
    H2UpstreamConnection,
    UpstreamStream,
    connect,
)
from pydp.stats import Stats
from pydp.tls.contexts import HTTP2_ALPN, HTTP11_ALPN, ClientContext, TlsContexts, TlsUnavailable
from pydp.upstream.breakers import RoutingPriority
from pydp.upstream.cluster import ClusterConfig
from pydp.upstream.cluster_state import UpstreamCluster
from pydp.upstream.hosts import Host
from pydp.upstream.retry import ResetReason

log = logging.getLogger(__name__)

HTTP1 = "HTTP/1.1"
HTTP2 = "HTTP/2"
DEFAULT_IDLE_TIMEOUT = 3600.0
# How old the last check of the idle connections for a close may be at a reuse.
_FRESH = 0.001
_POLL_CLOSED = select.POLLIN | select.POLLERR | select.POLLHUP


class PoolOverflow(Exception):
    """The pending-requests circuit breaker refused the request."""


class HostPool:
    """The connections of one cluster to one host, for one protocol."""

    def __init__(self, owner: ClusterPools, host: Host, protocol: str) -> None:
        self.owner = owner
        self.host = host
        self.protocol = protocol
        self.idle: list[H1Upstream] = []
        self.h2: list[H2UpstreamConnection] = []
        self.connecting = 0
        self.draining = False
        self.max_requests = owner.cluster.config.max_requests_per_connection
        self.idle_timeout = owner.idle_timeout
        self.http1 = protocol == HTTP1
        self._watch = select.poll()  # the idle HTTP/1.1 connections' sockets
        self._watched: dict[int, H1Upstream] = {}
        self._swept = -DEFAULT_IDLE_TIMEOUT
        # Envoy's per-host counters and gauges, for the admin's /clusters.
        self.stats: defaultdict[str, int] = defaultdict(int)

    async def acquire(self, priority: RoutingPriority) -> UpstreamStream:
        """A stream for one attempt; raises `PoolOverflow` or `ConnectFailure`."""
        ready = self.ready()
        if ready is not None:
            return ready
        owner = self.owner
        breakers = owner.cluster.breakers
        if not breakers.try_acquire_pending_request(priority):
            raise PoolOverflow()
        stats, names = owner.stats, owner.names
        stats.inc(names.rq_pending_total)
        stats.gauge_add(names.rq_pending_active, 1)
        self.stats["rq_pending_active"] += 1
        try:
            while True:
                ready = self.ready()
                if ready is not None:
                    return ready
                if (self.protocol == HTTP1 or not self.connecting) and (
                    breakers.try_acquire_connection(priority, self.host)
                ):
                    await self._connect(priority)
                    continue
                await owner.capacity.wait()
        finally:
            breakers.release_pending_request(priority)
            stats.gauge_add(names.rq_pending_active, -1)
            self.stats["rq_pending_active"] -= 1

    def ready(self) -> UpstreamStream | None:
        """A stream on a connection ready now, if any (else `acquire`)."""
        if self.http1:
            idle = self.idle
            if not idle:
                return None
            now = idle[-1].clock.current_time()
            if now - self._swept >= _FRESH:
                self._sweep(now)
            while idle:
                conn = idle.pop()
                self._unwatch(conn)
                if conn.closed:
                    continue
                if now - conn.last_used < self.idle_timeout:
                    return conn.open()
                conn.close()
            return None
        for h2 in self.h2:
            if h2.usable():
                if trio.current_time() - h2.last_used >= self.owner.idle_timeout and not h2.streams:
                    h2.drain()
                    continue
                return h2.open_stream()
        return None

    def _sweep(self, now: float) -> None:
        """Close the idle connections the peer closed or sent bytes on."""
        self._swept = now
        for fd, _ in self._watch.poll(0):
            conn = self._watched.get(fd)
            if conn is not None:
                conn.close()

    def _park(self, conn: H1Upstream) -> None:
        self._watch.register(conn.fd, _POLL_CLOSED)
        self._watched[conn.fd] = conn
        self.idle.append(conn)

    def _unwatch(self, conn: H1Upstream) -> None:
        if self._watched.pop(conn.fd, None) is not None:
            self._watch.unregister(conn.fd)

    async def _connect(self, priority: RoutingPriority) -> None:
        owner = self.owner
        stats, names = owner.stats, owner.names
        host = self.host
        self.connecting += 1
        try:
            config = owner.cluster.config
            tls = owner.manager.client_tls(config, HTTP11_ALPN if self.http1 else HTTP2_ALPN)
            sock = await connect(
                host.address, host.port, config.connect_timeout, tls, stats, names.prefix + "ssl."
            )
        except ConnectFailure as failure:
            owner.cluster.breakers.release_connection(priority, host)
            stats.inc(names.cx_connect_fail)
            self.stats["cx_connect_fail"] += 1
            if failure.reason is ResetReason.CONNECTION_TIMEOUT:
                stats.inc(names.cx_connect_timeout)
            raise
        except BaseException:
            owner.cluster.breakers.release_connection(priority, host)
            raise
        finally:
            self.connecting -= 1
            owner.capacity.fire()
        stats.inc(names.cx_total)
        stats.gauge_add(names.cx_active, 1)
        self.stats["cx_total"] += 1
        self.stats["cx_active"] += 1
        max_requests = owner.cluster.config.max_requests_per_connection
        if self.protocol == HTTP1:
            stats.inc(names.cx_http1_total)
            conn = H1Upstream(sock, self, priority)
            conn.last_used = trio.current_time()
            self._park(conn)
        else:
            stats.inc(names.cx_http2_total)
            h2 = H2UpstreamConnection(sock, self, priority)
            h2.max_requests = max_requests
            self.h2.append(h2)
            owner.manager.spawn(h2.run, owner.cluster.config.idle_timeout)

    def release_h1(self, conn: H1Upstream) -> None:
        max_requests = self.max_requests
        if (
            self.draining
            or not conn.reusable()
            or (max_requests is not None and conn.requests >= max_requests)
        ):
            conn.close()
            return
        conn.last_used = conn.clock.current_time()
        self._park(conn)
        self.owner.capacity.fire()

    def connection_closed(self, conn: H1Upstream | H2UpstreamConnection) -> None:
        owner = self.owner
        owner.cluster.breakers.release_connection(conn.priority, self.host)
        owner.stats.gauge_add(owner.names.cx_active, -1)
        owner.stats.inc(owner.names.cx_destroy)
        self.stats["cx_active"] -= 1
        if isinstance(conn, H2UpstreamConnection):
            if conn in self.h2:
                self.h2.remove(conn)
        else:
            self._unwatch(conn)
            if conn in self.idle:
                self.idle.remove(conn)
        owner.capacity.fire()

    def capacity_changed(self) -> None:
        self.owner.capacity.fire()

    def flush_soon(self, conn: H2UpstreamConnection) -> None:
        self.owner.manager.spawn(conn.flush)

    def drain(self) -> None:
        self.draining = True
        for conn in list(self.idle):
            conn.close()
        self.idle.clear()
        for h2 in list(self.h2):
            h2.drain()


class ClusterPools:
    """The pools of one cluster object, sharing its connection capacity."""

    def __init__(self, manager: PoolManager, cluster: UpstreamCluster, stats: Stats) -> None:
        self.manager = manager
        self.cluster = cluster
        self.stats = stats
        self.names: ClusterStatNames = cluster_names(
            cluster.config.alt_stat_name or cluster.config.name
        )
        self.idle_timeout = cluster.config.idle_timeout or DEFAULT_IDLE_TIMEOUT
        self.pools: dict[tuple[str, int, str], HostPool] = {}
        self.capacity = Signal()

    def pool(self, host: Host, protocol: str) -> HostPool:
        key = (host.address, host.port, protocol)
        pool = self.pools.get(key)
        if pool is None or pool.host is not host:
            if pool is not None:
                pool.drain()
            pool = self.pools[key] = HostPool(self, host, protocol)
        return pool

    def drain(self, keep: set[tuple[str, int]] | None = None) -> None:
        for key, pool in list(self.pools.items()):
            if keep is None or key[:2] not in keep:
                pool.drain()
                del self.pools[key]
        self.capacity.fire()


class PoolManager:
    """Every upstream connection of the process, the outlier detection timers and the
    connections' and requests' timeouts."""

    def __init__(self, tls: TlsContexts | None = None) -> None:
        self.tls = tls
        self.timers = TimerQueue()
        self._clusters: dict[str, ClusterPools] = {}
        self._tickers: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the background tasks until cancelled; then close every connection."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.timers.run)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            for name in list(self._clusters):
                self.cluster_removed(name)

    def client_tls(self, config: ClusterConfig, alpn: str = "") -> ClientContext | None:
        """The TLS client context of a cluster (None: plaintext); `alpn` is offered when the
        cluster's context names none. Raises `ConnectFailure` when it cannot be had."""
        if config.tls is None:
            return None
        try:
            if self.tls is None:
                raise TlsUnavailable("the pool manager has no TLS contexts")
            return self.tls.client(config.tls, alpn)
        except TlsUnavailable as exc:
            log.error("cluster %s: cannot originate TLS: %s", config.name, exc)
            raise ConnectFailure(ResetReason.CONNECTION_FAILURE, config.name, str(exc)) from None

    def spawn(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        if self._nursery is None:
            raise RuntimeError("PoolManager.run() is not running: start it in a nursery first")
        self._nursery.start_soon(fn, *args)

    def for_cluster(
        self, cluster: UpstreamCluster, stats: Stats, now: Callable[[], float]
    ) -> ClusterPools:
        """The pools of `cluster`; a new cluster object under a known name drains the old."""
        name = cluster.config.name
        pools = self._clusters.get(name)
        if pools is not None and pools.cluster is cluster:
            return pools
        if pools is not None:
            pools.drain()
            self._stop_ticker(name)
        pools = self._clusters[name] = ClusterPools(self, cluster, stats)
        interval = cluster.outlier_interval
        if interval is not None and self._nursery is not None:
            scope = trio.CancelScope()
            self._tickers[name] = scope
            self._nursery.start_soon(_tick, cluster, now, interval, scope)
        return pools

    def cluster_removed(self, name: str) -> None:
        """Drain every pool of cluster `name` and stop its outlier timer."""
        pools = self._clusters.pop(name, None)
        if pools is not None:
            pools.drain()
        self._stop_ticker(name)

    def hosts_changed(self, name: str, hosts: Iterable[tuple[str, int]]) -> None:
        """Drain the pools of cluster `name` whose host is not in `hosts` any more."""
        pools = self._clusters.get(name)
        if pools is not None:
            pools.drain(set(hosts))

    def host_stats(self, cluster: str, host: Host) -> dict[str, int]:
        """Envoy's per-host counters of `cluster` (for `/clusters`), over its pools."""
        pools = self._clusters.get(cluster)
        out: defaultdict[str, int] = defaultdict(int)
        if pools is not None:
            for (address, port, _), pool in pools.pools.items():
                if (address, port) == (host.address, host.port):
                    for key, value in pool.stats.items():
                        out[key] += value
        return dict(out)

    def _stop_ticker(self, name: str) -> None:
        scope = self._tickers.pop(name, None)
        if scope is not None:
            scope.cancel()


async def _tick(
    cluster: UpstreamCluster, now: Callable[[], float], interval: float, scope: trio.CancelScope
) -> None:
    with scope:
        while True:
            await trio.sleep(interval)
            cluster.tick(now())


@asynccontextmanager
async def open_pool_manager(tls: TlsContexts | None = None) -> AsyncIterator[PoolManager]:
    """A running `PoolManager` for the duration of the block."""
    async with trio.open_nursery() as nursery:
        pools = PoolManager(tls)
        await nursery.start(pools.run)
        try:
            yield pools
        finally:
            nursery.cancel_scope.cancel()
