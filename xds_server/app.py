"""The running server: sources, pipeline, xDS and admin endpoints, wired together."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from xds_server import admin, grpc_server
from xds_server.bootstrap import split_address
from xds_server.hub import Hub
from xds_server.pipeline import Pipeline
from xds_server.sources.manifests import ManifestSource
from xds_server.sources.overrides import OverridesSource

log = logging.getLogger("xds_server")


@dataclass(frozen=True)
class Settings:
    manifests: str
    xds_address: str = "127.0.0.1:18000"
    admin_address: str = "127.0.0.1:18001"
    cluster_domain: str = "cluster.local"
    debounce_quiet: float = 0.1
    debounce_max: float = 1.0
    max_connection_age: float | None = None
    xds_overrides: str | None = None


async def serve(settings: Settings) -> None:
    hub = Hub()
    pipeline = Pipeline(
        hub, settings.cluster_domain, settings.debounce_quiet, settings.debounce_max
    )
    source = ManifestSource(settings.manifests)
    overrides = OverridesSource(settings.xds_overrides) if settings.xds_overrides else None
    endpoint = admin.Admin(
        hub, errors=lambda: [*source.errors, *(overrides.errors if overrides else [])]
    )

    if overrides is not None:
        pipeline.overrides = overrides.reload()
    first = source.reload()
    hub.metrics.config_errors.set_function(lambda: len(endpoint.errors()))
    if first is not None:
        pipeline.publish_now(first)
    else:
        log.error("serving an empty configuration until %s loads cleanly", settings.manifests)

    host, port = split_address(settings.admin_address)
    admin_server = await admin.start(endpoint, host, port)
    xds, _ = await grpc_server.start(
        hub, settings.xds_address, max_connection_age=settings.max_connection_age
    )
    log.info(
        "xDS on %s, admin on %s, manifests from %s",
        settings.xds_address,
        settings.admin_address,
        settings.manifests,
    )
    endpoint.ready = True

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [
        asyncio.create_task(pipeline.run()),
        asyncio.create_task(source.watch(pipeline.submit)),
        asyncio.create_task(stop.wait()),
    ]
    if overrides is not None:
        tasks.append(asyncio.create_task(overrides.watch(pipeline.submit_overrides)))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await xds.stop(grace=1.0)
        admin_server.close()
        log.info("stopped")
