"""The running server: a source, the pipeline, xDS and admin endpoints, wired together.

The source is a manifests folder, or the Kubernetes API. With the folder the
server serves at once (an empty configuration if the folder does not load).
With Kubernetes it serves xDS only once every watched collection has been
listed and the first model is published: a proxy that reconnects to a fresh
replica must never be handed an empty configuration.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xds_server import admin, grpc_server
from xds_server.bootstrap import split_address
from xds_server.ca.service import MeshCa, SecuritySettings
from xds_server.hub import Hub
from xds_server.model import Model
from xds_server.pipeline import Pipeline
from xds_server.sources.manifests import ManifestSource
from xds_server.sources.overrides import OverridesSource

if TYPE_CHECKING:
    from xds_server.sources.kube.source import KubernetesSource

log = logging.getLogger("xds_server")


@dataclass(frozen=True)
class KubeSettings:
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    namespaces: tuple[str, ...] = ()
    namespace_selector: str | None = None


@dataclass(frozen=True)
class Settings:
    manifests: str | None = None
    xds_address: str = "127.0.0.1:18000"
    admin_address: str = "127.0.0.1:18001"
    cluster_domain: str = "cluster.local"
    debounce_quiet: float = 0.1
    debounce_max: float = 1.0
    max_connection_age: float | None = None
    xds_overrides: str | None = None
    kubernetes: KubeSettings | None = field(default=None)
    security: SecuritySettings | None = None  # a CA: SDS, mTLS and xDS authentication


async def serve(settings: Settings) -> None:
    hub = Hub()
    pipeline = Pipeline(
        hub, settings.cluster_domain, settings.debounce_quiet, settings.debounce_max
    )
    ca = MeshCa.start(settings.security, settings.kubernetes) if settings.security else None
    if ca is not None:
        ca.install(pipeline)
    source = _source(settings)
    overrides = OverridesSource(settings.xds_overrides) if settings.xds_overrides else None
    endpoint = admin.Admin(
        hub, errors=lambda: [*_errors(source), *(overrides.errors if overrides else [])]
    )
    hub.metrics.config_errors.set_function(lambda: len(endpoint.errors()))
    if overrides is not None:
        pipeline.overrides = overrides.reload()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = split_address(settings.admin_address)
    admin_server = await admin.start(endpoint, host, port)
    stopping = asyncio.create_task(stop.wait())
    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(pipeline.run()), stopping]
    if overrides is not None:
        tasks.append(asyncio.create_task(overrides.watch(pipeline.submit_overrides)))
    if ca is not None:
        tasks.append(asyncio.create_task(ca.renew(pipeline)))
    xds = None
    try:
        if isinstance(source, ManifestSource):
            first = source.reload()
            if first is not None:
                pipeline.publish_now(first)
            else:
                log.error("serving an empty configuration until %s loads cleanly", source.folder)
            tasks.append(asyncio.create_task(source.watch(pipeline.submit)))
        else:
            watching = await _start_watching(source, pipeline, stopping)
            if watching is None:
                return
            tasks.append(watching)
        xds, _ = await grpc_server.start(
            hub,
            settings.xds_address,
            max_connection_age=settings.max_connection_age,
            gate=ca.gate if ca is not None else None,
        )
        log.info(
            "xDS on %s, admin on %s, configuration from %s",
            settings.xds_address,
            settings.admin_address,
            _describe(source),
        )
        endpoint.ready = True
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if xds is not None:
            await xds.stop(grace=1.0)
        admin_server.close()
        log.info("stopped")


def _source(settings: Settings) -> ManifestSource | KubernetesSource:
    """The source the settings name: `ManifestSource` or `KubernetesSource`."""
    if settings.kubernetes is None:
        if settings.manifests is None:
            raise ValueError("no source: give a manifests folder or Kubernetes settings")
        return ManifestSource(settings.manifests)
    from xds_server.sources.kube.api import KubeApi  # noqa: PLC0415
    from xds_server.sources.kube.config import make_client  # noqa: PLC0415
    from xds_server.sources.kube.selection import NamespaceSelection  # noqa: PLC0415
    from xds_server.sources.kube.source import KubernetesSource  # noqa: PLC0415

    kube = settings.kubernetes
    selection = NamespaceSelection.of(kube.namespaces, kube.namespace_selector)
    client = make_client(
        kubeconfig=kube.kubeconfig, context=kube.context, in_cluster=kube.in_cluster
    )
    return KubernetesSource(KubeApi(client), selection)


async def _start_watching(
    source: KubernetesSource, pipeline: Pipeline, stopped: asyncio.Task[Any]
) -> asyncio.Task[None] | None:
    """Starts the Kubernetes source; returns its task once the first model is published.

    None if the server was asked to stop first.
    """
    synced = asyncio.Event()

    def on_model(model: Model) -> None:
        if synced.is_set():
            pipeline.submit(model)
        elif not pipeline.publish_now(model):
            log.error("the first model from Kubernetes was refused; serving an empty one")

    watching = asyncio.create_task(source.run(on_model, synced=synced))
    waiting = asyncio.create_task(synced.wait())
    log.info("waiting for the first list of every watched collection")
    await asyncio.wait([watching, waiting, stopped], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if watching.done():
        watching.result()  # raises what ended it
        raise RuntimeError("the Kubernetes source stopped")
    if not synced.is_set():
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        return None
    return watching


def _errors(source: ManifestSource | KubernetesSource) -> list[str]:
    if isinstance(source, ManifestSource):
        return source.errors
    return [*source.errors, *source.failures.values()]


def _describe(source: ManifestSource | KubernetesSource) -> str:
    if isinstance(source, ManifestSource):
        return str(source.folder)
    return f"the Kubernetes API ({source.selection})"
