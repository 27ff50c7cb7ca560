"""pydp at run time: the config store, its compilers, clusters, listeners and admin, wired.

Theory of operation. `App` is both the data path's `Runtime` and the
store's `ConfigHandler`. The store compiles each xDS type with the compilers
here (routes -> `RouteTable`, clusters -> `ClusterConfig`, endpoints ->
`LoadAssignment`, listeners -> `ListenerConfig`, also checking that the
listener's address can be bound and its access log files opened, so either
failure is a NACK as in Envoy; secrets -> `TlsSecret`; the failing resource
is kept for `/config_dump`'s `error_state`). On every new snapshot
`config_updated` hands the secrets to the TLS contexts (`pydp.tls.contexts`,
shared by the listeners and the connection pools, whose files are removed
when `run` ends), brings the `UpstreamCluster`s up to date (`pydp.clusters`)
and hands listener changes to the `ListenerManager`. The store is subclassed only to count
updates under Envoy's names (`listener_manager.lds.update_rejected`, ...). `run`
starts the connection pools (whose nursery also runs each cluster's outlier
detection timer), the listener manager, the admin server, the access log
flusher and the xDS client, in that order, in one nursery.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import trio

from api import contract
from pydp import admin_views
from pydp.access_log import FLUSH_INTERVAL, AccessLogFiles, format_entry
from pydp.admin import AdminHandler, serve_admin
from pydp.clusters import ClusterSet, stat_name
from pydp.config_dump import Failure, build_config_dump
from pydp.errors import ConfigError
from pydp.listener.compile import check_addresses, compile_listener
from pydp.listener.config import ListenerConfig
from pydp.listener.manager import (
    DEFAULT_DRAIN_TIME,
    ConnectionHandlers,
    ListenerManager,
    default_handlers,
)
from pydp.proxy import PoolManager
from pydp.router import RouteTable, compile_route_config
from pydp.runtime import AccessLogEntry
from pydp.stats import Stats
from pydp.stats_export import StatsView
from pydp.tls.contexts import TlsContexts
from pydp.tls.secrets import compile_secret
from pydp.upstream import UpstreamCluster, compile_cluster, compile_load_assignment
from pydp.upstream.hosts import Host
from pydp.xds import BootstrapConfig, ConfigStore, ListenerChanges, Snapshot, Update, XdsClient
from pydp.xds.client import Connect
from pydp.xds.decode import Message
from pydp.xds.store import TypeDump

log = logging.getLogger(__name__)

VERSION = "pydp/0.1.0"
_XDS_STATS = {
    contract.TYPE_CLUSTER: "cluster_manager.cds.",
    contract.TYPE_LISTENER: "listener_manager.lds.",
}


class AppStore(ConfigStore):
    """The config store, counting updates per type under Envoy's stat names."""

    def __init__(self, app: App, **kwargs: Any) -> None:
        super().__init__(app.compilers(), app, **kwargs)
        self.app = app

    def apply(self, update: Update) -> None:
        for prefix in self.app.xds_stat_prefixes(update.type_url, update.resources.keys()):
            self.app.stats.inc(prefix + "update_attempt")
        super().apply(update)
        self.app.accepted(update)

    def reject(self, type_url: str, version: str, nonce: str, message: str) -> None:
        super().reject(type_url, version, nonce, message)
        self.app.rejected(type_url, version, message)


class App:
    """The running proxy: the `Runtime` the data path reads and the store's handler."""

    def __init__(
        self,
        bootstrap: BootstrapConfig,
        *,
        bootstrap_message: Message | None = None,
        handlers: ConnectionHandlers | Callable[[], ConnectionHandlers] = default_handlers,
        pools: Any = None,
        drain_time: float = DEFAULT_DRAIN_TIME,
        flush_interval: float = FLUSH_INTERVAL,
        concurrency: int = 1,
        config_path: str = "",
        log_level: str = "info",
        admin: bool = True,
        connect: Connect | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.bootstrap_message = bootstrap_message
        self.stats = Stats()
        self.rng = rng if rng is not None else random.Random()
        self.tls = TlsContexts()
        self.pools = pools if pools is not None else PoolManager(self.tls)
        if isinstance(self.pools, PoolManager) and self.pools.tls is None:
            self.pools.tls = self.tls
        self.drain_time = drain_time
        self.concurrency = concurrency
        self.config_path = config_path
        self.log_level = log_level
        self.admin_enabled = admin
        self.admin_port: int | None = None
        self.access_log_files = AccessLogFiles()
        self.flush_interval = flush_interval
        self.clusters = ClusterSet(self.stats, self.pools, self.rng)
        self.failures: dict[str, dict[str, Failure]] = {}
        self._failing: dict[str, tuple[str, Message | None, str]] = {}
        self._changed: dict[str, set[str]] = {}
        self.versions: dict[str, dict[str, str]] = {}
        self._connect = connect
        self._started = time.time()
        self._state = "PRE_INITIALIZING"
        self.quit_requested = trio.Event()
        self.listeners = ListenerManager(self, handlers, drain_time=drain_time, tls=self.tls)
        self.store = AppStore(self)
        self.client: XdsClient | None = None

    # -- Runtime ---------------------------------------------------------------------------

    def route_table(self, name: str) -> RouteTable | None:
        table: RouteTable | None = self.store.snapshot.routes.get(name)
        return table

    def cluster(self, name: str) -> UpstreamCluster | None:
        return self.clusters.get(name)

    def access_log(self, listener: str, entry: AccessLogEntry) -> None:
        config: ListenerConfig | None = self.listeners.config(listener)
        if config is None:
            config = self.store.snapshot.listeners.get(listener)
        if config is None:
            return
        for access_log in config.access_logs:
            self.access_log_files.write(access_log.path, format_entry(entry, access_log.format))

    def now(self) -> float:
        return trio.current_time()

    def is_draining(self, listener: str) -> bool:
        """Whether `listener` drains (removed, moved, or SIGTERM): the data path may close
        idle connections and answer with `connection: close` (not yet in `Runtime`)."""
        return self.listeners.is_draining(listener)

    # -- compilers ---------------------------------------------------------------------------

    def compilers(self) -> dict[str, Callable[[Mapping[str, Message]], Mapping[str, Any]]]:
        compilers: dict[str, Callable[[Mapping[str, Message]], Mapping[str, Any]]] = {
            contract.TYPE_ROUTE: self._each(contract.TYPE_ROUTE, compile_route_config),
            contract.TYPE_CLUSTER: self._each(contract.TYPE_CLUSTER, compile_cluster),
            contract.TYPE_ENDPOINT: self._each(
                contract.TYPE_ENDPOINT,
                lambda cla: compile_load_assignment(
                    cla, f"ClusterLoadAssignment {cla.cluster_name}"
                ),
            ),
            contract.TYPE_LISTENER: self._compile_listeners,
            contract.TYPE_SECRET: self._each(contract.TYPE_SECRET, compile_secret),
        }
        return {t: self._noting_changes(t, c) for t, c in compilers.items()}

    def _noting_changes(
        self, type_url: str, compiler: Callable[[Mapping[str, Message]], Mapping[str, Any]]
    ) -> Callable[[Mapping[str, Message]], Mapping[str, Any]]:
        """Note which resources an update changes: they take its version in `/config_dump`."""

        def noting(resources: Mapping[str, Message]) -> Mapping[str, Any]:
            self._changed[type_url] = set(resources)
            return compiler(resources)

        return noting

    def _each(
        self, type_url: str, compile_one: Callable[[Message], Any]
    ) -> Callable[[Mapping[str, Message]], Mapping[str, Any]]:
        def compiler(resources: Mapping[str, Message]) -> Mapping[str, Any]:
            out = {}
            for name, message in resources.items():
                try:
                    out[name] = compile_one(message)
                except ConfigError as exc:
                    self._failing[type_url] = (name, message, str(exc))
                    raise
            return out

        return compiler

    def _compile_listeners(self, resources: Mapping[str, Message]) -> Mapping[str, Any]:
        configs: dict[str, ListenerConfig] = {}
        name = ""
        try:
            for name, message in resources.items():
                configs[name] = compile_listener(message)
            for config in configs.values():
                name = config.name
                self._check_listener(config)
            check_addresses(configs)
        except ConfigError as exc:
            if exc.resource.startswith("listener "):
                name = exc.resource.removeprefix("listener ")
            self._failing[contract.TYPE_LISTENER] = (name, resources.get(name), str(exc))
            raise
        return configs

    def _check_listener(self, config: ListenerConfig) -> None:
        error = self.listeners.bind_error(config)
        if error is not None:
            raise ConfigError(f"listener {config.name}", "address", error)
        for i, access_log in enumerate(config.access_logs):
            try:
                self.access_log_files.open(access_log.path)
            except OSError as exc:
                raise ConfigError(
                    f"listener {config.name}",
                    f"access_log[{i}].path",
                    f"unable to open file '{access_log.path}': {exc.strerror}",
                ) from None

    # -- xDS bookkeeping ---------------------------------------------------------------------

    def xds_stat_prefixes(self, type_url: str, names: Any) -> list[str]:
        """Where Envoy counts updates of `type_url` (per RDS subscription, per EDS cluster)."""
        if type_url in _XDS_STATS:
            return [_XDS_STATS[type_url]]
        names = set(names)
        if type_url == contract.TYPE_ROUTE:
            return sorted(
                {
                    f"http.{chain.filter.stat_prefix}.rds.{chain.filter.rds_name}."
                    for config in self.store.snapshot.listeners.values()
                    for chain in config.chains()
                    if getattr(chain.filter, "rds_name", None) in names
                }
            )
        if type_url == contract.TYPE_SECRET:
            return [f"sds.{name}." for name in sorted(names)]
        if type_url == contract.TYPE_ENDPOINT:
            return [
                f"cluster.{stat_name(config)}."
                for config in self.store.snapshot.clusters.values()
                if config.eds_service_name in names
            ]
        return []

    def accepted(self, update: Update) -> None:
        for prefix in self.xds_stat_prefixes(update.type_url, update.resources.keys()):
            self.stats.inc(prefix + "update_success")
        versions = self.versions.setdefault(update.type_url, {})
        for name in self._changed.pop(update.type_url, ()):
            versions[name] = update.version
        for name in update.removed:
            versions.pop(name, None)
        failures = self.failures.get(update.type_url)
        if failures:
            for name in ["", *update.resources, *update.removed]:
                failures.pop(name, None)
        self._failing.pop(update.type_url, None)

    def rejected(self, type_url: str, version: str, message: str) -> None:
        self._changed.pop(type_url, None)
        name, resource, details = self._failing.pop(type_url, ("", None, message))
        for prefix in self.xds_stat_prefixes(type_url, [name]):
            self.stats.inc(prefix + "update_rejected")
        failure = Failure(name, resource, details, version, time.time())
        self.failures.setdefault(type_url, {})[name] = failure

    # -- ConfigHandler -----------------------------------------------------------------------

    def config_updated(self, snapshot: Snapshot, listeners: ListenerChanges) -> None:
        self.tls.update(snapshot.secrets)
        self.clusters.sync(snapshot, len(self.store.warming(contract.TYPE_CLUSTER)))
        if listeners:
            self.listeners.update(listeners)
        self._check_live()

    # -- state -------------------------------------------------------------------------------

    def _check_live(self) -> None:
        if self._state == "INITIALIZING" and self.store.initialized:
            self._state = "LIVE"
            log.info("all clusters and listeners initialized; pydp is live")

    def server_state(self) -> str:
        self._check_live()
        return self._state

    async def drain(self, drain_time: float | None = None) -> None:
        """Stop accepting and let open connections finish (up to the drain time)."""
        self._state = "DRAINING"
        await self.listeners.drain(drain_time)

    def request_quit(self) -> None:
        self.quit_requested.set()

    def drain_listeners(self) -> None:
        self._state = "DRAINING"
        self.listeners.stop_accepting()

    # -- admin views -------------------------------------------------------------------------

    def stats_view(self) -> StatsView:
        counters = dict(self.stats.counters)
        gauges = dict(self.stats.gauges)
        self.clusters.add_stats(counters, gauges)
        state = self.server_state()
        gauges["server.live"] = int(state == "LIVE")
        gauges["server.state"] = ("LIVE", "DRAINING", "PRE_INITIALIZING", "INITIALIZING").index(
            state
        )
        gauges["server.uptime"] = int(time.time() - self._started)
        gauges["server.concurrency"] = self.concurrency
        connected = self.client is not None and self.client.connected
        gauges["control_plane.connected_state"] = int(connected)
        text = {
            _XDS_STATS[t] + "version_text": self.store.version(t)
            for t in (contract.TYPE_CLUSTER, contract.TYPE_LISTENER)
        }
        return StatsView(counters, gauges, dict(self.stats.histograms), text)

    def config_dump(self, include_eds: bool) -> Any:
        return build_config_dump(
            [self._with_versions(d) for d in self.store.dump()],
            bootstrap=self.bootstrap_message,
            started=self._started,
            failures=self.failures,
            include_eds=include_eds,
        )

    def _with_versions(self, dump: TypeDump) -> TypeDump:
        """Each resource with the version of the update that last changed it (Envoy's
        `version_info`: the response's version, which Delta gives as `system_version_info`)."""
        versions = self.versions.get(dump.type_url, {})
        resources = tuple(
            dataclasses.replace(r, version=versions.get(r.name, r.version)) for r in dump.resources
        )
        return dataclasses.replace(dump, resources=resources)

    def cluster_entries(self) -> list[admin_views.ClusterEntry]:
        found = self.clusters.clusters
        return [admin_views.ClusterEntry(n, found[n]) for n in sorted(found)]

    def host_counters(self, cluster: str, host: Host) -> Mapping[str, int]:
        hook = getattr(self.pools, "host_stats", None)
        if hook is None:
            return {}
        found: Mapping[str, int] = hook(cluster, host)
        return found

    def listener_entries(self) -> list[admin_views.ListenerEntry]:
        return [
            admin_views.ListenerEntry(a.name, a.config.address, a.port)
            for a in self.listeners.active()
        ]

    def server_info(self) -> dict[str, Any]:
        return admin_views.server_info(
            version=VERSION,
            state=self.server_state(),
            uptime=time.time() - self._started,
            node=self.bootstrap.node,
            concurrency=self.concurrency,
            config_path=self.config_path,
            log_level=self.log_level,
            drain_time=self.drain_time,
        )

    # -- tasks -------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; `started` once listening for admin and xDS is under way."""
        try:
            async with trio.open_nursery() as nursery:
                if hasattr(self.pools, "run"):
                    await nursery.start(self.pools.run)
                await nursery.start(self.listeners.run)
                if self.admin_enabled and self.bootstrap.admin_port is not None:
                    host = self.bootstrap.admin_address or "127.0.0.1"
                    handler = AdminHandler(self)
                    self.admin_port = await nursery.start(
                        serve_admin, handler, host, self.bootstrap.admin_port
                    )
                nursery.start_soon(self.access_log_files.run_flusher, self.flush_interval)
                self.client = XdsClient(self.bootstrap, self.store, connect=self._connect)
                self._state = "INITIALIZING"
                await nursery.start(self.client.run)
                nursery.start_soon(self._wait_initialized, self.client)
                task_status.started()
        finally:
            self.access_log_files.close()
            self.tls.close()

    async def _wait_initialized(self, client: XdsClient) -> None:
        await client.initialized.wait()
        self._check_live()
