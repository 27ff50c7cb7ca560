"""Listening sockets that follow LDS, and the accept loops that feed the data path.

Theory of operation. `update(changes)` is called, without blocking, with the
listeners the store added, changed or removed. A new listener gets a socket
(SO_REUSEADDR, and SO_REUSEPORT unless the listener turns it off, so several
pydp processes can share a port) bound at once, so a bind failure is logged
and counted before anything waits, and an accept loop in the manager's
nursery. Every accepted connection runs the data path entry point for its
filter with the listener's configuration *at accept time*: a listener changed
at the same address swaps the configuration new connections see, and the
connections already open under the old one drain (`pydp.proxy.drain`: their
current response is their last, and the drain time cancels what is left).
Before a connection reaches its filter, the listener filter (the TLS
inspector, peeking at the first bytes) says whether it opens with a TLS
ClientHello, the most specific filter chain for that is chosen (none: the
connection is closed and counted as `no_filter_chain_match`), and a chain with
a `DownstreamTlsContext` terminates TLS (`pydp.tls.listener`, stats under
`listener.<addr>.ssl.`); the data path gets the TLS stream and the verified
peer. A listener that moves to another address gets a new socket first, then
the old one drains. Draining means the accept loop stops and the socket closes
(new connections are refused), the connections already open may finish until
the drain time, and are then cancelled. `drain()` does that to every listener
at once (SIGTERM).
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import trio

from pydp.listener.config import FilterChainConfig, HttpConnectionManagerConfig, ListenerConfig
from pydp.proxy import serve_http_connection, serve_tcp_connection
from pydp.proxy.drain import Drain
from pydp.runtime import Runtime
from pydp.tls import inspector
from pydp.tls.contexts import TlsContexts
from pydp.tls.listener import choose_chain, terminate_tls
from pydp.xds.store import ListenerChanges

log = logging.getLogger(__name__)

Address = tuple[str, int]


# A data path entry point: `(stream, remote, local, filter config, listener name, runtime,
# *, peer, drain)`: `peer` is the verified TLS client (None without TLS), `drain` the
# `Drain` the connection belongs to. The runtime is typed loosely: the data path asks for
# its own extension of `Runtime`.
Handler = Callable[..., Awaitable[None]]
BACKLOG = 1024
_LISTENER_COUNTERS = (
    "downstream_cx_total",
    "downstream_cx_destroy",
    "no_filter_chain_match",
    "downstream_pre_cx_timeout",
)
_SSL_COUNTERS = (
    "handshake",
    "connection_error",
    "no_certificate",
    "session_reused",
    "fail_verify_no_cert",
    "fail_verify_error",
    "fail_verify_san",
)
DEFAULT_DRAIN_TIME = 600.0
_ACCEPT_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


@dataclass(frozen=True, slots=True)
class ConnectionHandlers:
    """The data path entry points, one per network filter."""

    http: Handler
    tcp: Handler


def default_handlers() -> ConnectionHandlers:
    """The data path's entry points (`pydp.proxy`)."""
    return ConnectionHandlers(serve_http_connection, serve_tcp_connection)


def stat_prefix(address: str, port: int) -> str:
    """Envoy's listener stat prefix: `listener.127.0.0.1_15001.` or `listener.[__1]_80.`."""
    if ":" in address:
        return f"listener.[{address.replace(':', '_')}]_{port}."
    return f"listener.{address}_{port}."


def open_socket(config: ListenerConfig) -> socket.socket:
    """A bound, listening socket for `config` (raises OSError as bind or listen do)."""
    family = socket.AF_INET6 if ":" in config.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if config.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((config.address, config.port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class ActiveListener:
    """One listening socket and the connections it accepted."""

    def __init__(self, config: ListenerConfig, sock: socket.socket) -> None:
        self.config = config
        self.socket = sock
        self.port = int(sock.getsockname()[1])
        self.stat_prefix = stat_prefix(config.address, self.port)
        self.accepting = trio.CancelScope()
        self.connections = 0
        self.draining = False
        self.done = trio.Event()
        self.drain = Drain()  # the connections accepted under `config`

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def bind_key(self) -> Address:
        return (self.config.address, self.config.port)


class ListenerManager:
    """Opens, updates and drains listeners; runs in its own nursery (`run`)."""

    def __init__(
        self,
        runtime: Runtime,
        handlers: ConnectionHandlers | Callable[[], ConnectionHandlers] = default_handlers,
        *,
        drain_time: float = DEFAULT_DRAIN_TIME,
        tls: TlsContexts | None = None,
    ) -> None:
        self.runtime = runtime
        self.stats = runtime.stats
        self.drain_time = drain_time
        self.tls = tls
        self._handlers = handlers
        self._nursery: trio.Nursery | None = None
        self._pending: list[ListenerChanges] = []
        self._active: dict[str, ActiveListener] = {}
        self._draining: set[ActiveListener] = set()
        self.stopped = False

    def active(self) -> list[ActiveListener]:
        return [self._active[name] for name in sorted(self._active)]

    def listener(self, name: str) -> ActiveListener | None:
        return self._active.get(name)

    def draining(self) -> list[ActiveListener]:
        return list(self._draining)

    def is_draining(self, name: str) -> bool:
        """Whether connections of listener `name` should wind down (it was removed or moved)."""
        return self.stopped or any(d.name == name for d in self._draining)

    def config(self, name: str) -> ListenerConfig | None:
        """The configuration of listener `name`, active or draining."""
        found = self._active.get(name)
        if found is not None:
            return found.config
        for draining in self._draining:
            if draining.name == name:
                return draining.config
        return None

    def bind_error(self, config: ListenerConfig) -> str | None:
        """Why `config`'s address cannot be bound now, or None (checked before accepting LDS)."""
        if any(a.bind_key == (config.address, config.port) for a in self._every()):
            return None
        try:
            open_socket(config).close()
        except OSError as exc:
            return f"cannot bind '{_label(config.address, config.port)}': {exc.strerror}"
        return None

    def _every(self) -> Iterator[ActiveListener]:
        yield from self._active.values()
        yield from self._draining

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve listeners until cancelled."""
        if not isinstance(self._handlers, ConnectionHandlers):
            self._handlers = self._handlers()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for changes in self._pending:
                self.update(changes)
            self._pending.clear()
            task_status.started()
            await trio.sleep_forever()

    def update(self, changes: ListenerChanges) -> None:
        """Apply LDS changes: removals first (so an address can pass to another listener)."""
        if self._nursery is None:
            self._pending.append(changes)
            return
        if self.stopped:
            return
        for name in sorted(changes.removed):
            self._stop(name)
            self.stats.inc("listener_manager.listener_removed")
        for name, config in sorted(changes.changed.items()):
            self._change(name, config)
            self.stats.inc("listener_manager.listener_modified")
        for _, config in sorted(changes.added.items()):
            self._start(config)
            self.stats.inc("listener_manager.listener_added")
        self._gauges()

    def _gauges(self) -> None:
        self.stats.gauge_set("listener_manager.total_listeners_active", len(self._active))
        self.stats.gauge_set("listener_manager.total_listeners_draining", len(self._draining))

    def _start(self, config: ListenerConfig) -> None:
        assert self._nursery is not None
        try:
            sock = open_socket(config)
        except OSError as exc:
            self.stats.inc("listener_manager.listener_create_failure")
            log.error(
                "listener %s: cannot bind '%s': %s",
                config.name,
                _label(config.address, config.port),
                exc.strerror,
            )
            return
        self.stats.inc("listener_manager.listener_create_success")
        active = ActiveListener(config, sock)
        self._active[config.name] = active
        self._seed_stats(active)
        self._nursery.start_soon(self._serve, active)

    def _seed_stats(self, active: ActiveListener) -> None:
        """The listener's counters at 0, as Envoy shows them before any connection."""
        prefix = active.stat_prefix
        config = active.config
        counters = list(_LISTENER_COUNTERS)
        if any(chain.tls is not None for chain in config.chains()):
            counters += [f"ssl.{name}" for name in _SSL_COUNTERS]
        for stat in counters:
            self.stats.inc(prefix + stat, 0)
        for gauge in ("downstream_cx_active", "downstream_pre_cx_active"):
            self.stats.gauge_add(prefix + gauge, 0)
        if config.tls_inspector is not None:
            for stat in inspector.COUNTERS:
                self.stats.inc(inspector.STATS + stat, 0)

    def _change(self, name: str, config: ListenerConfig) -> None:
        old = self._active.get(name)
        if old is not None and old.bind_key == (config.address, config.port):
            old.config = config
            old.drain.start(trio.current_time() + self.drain_time)
            old.drain = Drain()
            self.stats.inc("listener_manager.listener_in_place_updated")
            return
        self._start(config)
        if old is not None:
            if self._active.get(name) is old:  # the new socket could not be bound
                return
            self._drain(old)

    def _stop(self, name: str) -> None:
        active = self._active.pop(name, None)
        if active is not None:
            self._drain(active)

    def _drain(self, active: ActiveListener) -> None:
        active.drain.start(trio.current_time() + self.drain_time)
        active.draining = True
        self._draining.add(active)
        active.accepting.cancel()

    def stop_accepting(self) -> None:
        """Close every listening socket; open connections carry on (draining)."""
        self.stopped = True
        for name in list(self._active):
            self._stop(name)
        self._gauges()

    async def drain(self, drain_time: float | None = None) -> None:
        """Stop accepting everywhere; return when no connection is left or the drain time passed."""
        self.stop_accepting()
        with trio.move_on_after(self.drain_time if drain_time is None else drain_time):
            for active in list(self._draining):
                await active.done.wait()

    async def _serve(self, active: ActiveListener) -> None:
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(active.socket))
        try:
            async with trio.open_nursery() as connections:
                with active.accepting:
                    await self._accept_loop(active, listener, connections)
                await listener.aclose()
                connections.cancel_scope.deadline = trio.current_time() + self.drain_time
        finally:
            with trio.CancelScope(shield=True):
                await listener.aclose()
            self._draining.discard(active)
            active.done.set()
            self._gauges()

    async def _accept_loop(
        self, active: ActiveListener, listener: trio.SocketListener, connections: trio.Nursery
    ) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_RESOURCE_ERRORS:
                    raise
                log.error("listener %s: accept failed: %s", active.name, exc.strerror)
                await trio.sleep(0.1)
                continue
            connections.start_soon(self._connection, active, stream)

    async def _connection(self, active: ActiveListener, stream: trio.SocketStream) -> None:
        config = active.config
        try:
            chain = await choose_chain(config, stream, self.stats, active.stat_prefix)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        if chain is None:
            await trio.aclose_forcefully(stream)
            return
        handlers = self._handlers
        assert isinstance(handlers, ConnectionHandlers)
        prefix = active.stat_prefix
        started = trio.current_time()
        active.connections += 1
        self.stats.inc(prefix + "downstream_cx_total")
        self.stats.gauge_add(prefix + "downstream_cx_active", 1)
        drain = active.drain
        scope = trio.CancelScope()
        drain.guard(scope)
        try:
            with scope:
                await self._serve_connection(active, stream, chain, handlers, drain)
        finally:
            drain.release(scope)
            active.connections -= 1
            self.stats.gauge_add(prefix + "downstream_cx_active", -1)
            self.stats.inc(prefix + "downstream_cx_destroy")
            self.stats.observe(
                prefix + "downstream_cx_length_ms", (trio.current_time() - started) * 1000
            )
            await trio.aclose_forcefully(stream)

    async def _serve_connection(
        self,
        active: ActiveListener,
        stream: trio.SocketStream,
        chain: FilterChainConfig,
        handlers: ConnectionHandlers,
        drain: Drain,
    ) -> None:
        config, prefix = active.config, active.stat_prefix
        try:
            remote = _address(stream.socket.getpeername())
            local = _address(stream.socket.getsockname())
            served: trio.abc.Stream = stream
            peer = None
            if chain.tls is not None:
                secured = await terminate_tls(
                    chain, stream, self.tls, self.stats, prefix, config.name
                )
                if secured is None:
                    return
                served, peer = secured
            handler = (
                handlers.http
                if isinstance(chain.filter, HttpConnectionManagerConfig)
                else handlers.tcp
            )
            args = (served, remote, local, chain.filter, config.name, self.runtime)
            await handler(*args, peer=peer, drain=drain)
        except OSError as exc:
            log.debug("listener %s: connection ended: %s", config.name, exc)
        except Exception:
            log.exception("listener %s: connection handler failed", config.name)


def _address(raw: Any) -> Address:
    return (str(raw[0]), int(raw[1]))


def _label(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
