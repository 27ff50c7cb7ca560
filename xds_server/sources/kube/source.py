"""The Kubernetes API as a source of models, with the same building and checks as the folder.

Theory of operation. For every collection the model reads (Services,
EndpointSlices, Pods and the mesh's policy kinds, in each selected namespace
or across all of them, and the Namespaces themselves when they are selected
by label) a `Watcher`
thread lists and watches, and posts what it learns to the event loop, where
`apply` folds it into that collection's `Store`. `rebuild` then assembles a
model from every store with the folder's `Assembly`, parsing only the objects
that changed since the last build.

What a cluster needs differs from a folder in one way: one bad object must
not freeze the whole mesh. An object the checks refuse is reported (logged
once, and listed in `errors`), and the model keeps the last good version of
that object, or leaves it out if it never had one; everything else moves on.
No model is built until every collection has been listed once, and a watch
that is down never takes anything away: the stores keep their objects until
a fresh list replaces them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass

from xds_server.model import Model
from xds_server.sources.assemble import Assembly, Finding, Outcome, parse_outcome
from xds_server.sources.fields import render_path
from xds_server.sources.kube.api import KubeApi
from xds_server.sources.kube.reflector import Backoff, Delta, RawObject, Reflector
from xds_server.sources.kube.resources import MODEL_RESOURCES, NAMESPACES, Resource
from xds_server.sources.kube.selection import NamespaceSelection
from xds_server.sources.kube.store import Store
from xds_server.sources.kube.watcher import Health, Watcher
from xds_server.sources.manifests import ModelCallback

log = logging.getLogger("xds_server.sources.kube")

Scope = tuple[Resource, str | None]  # a collection: a resource in one namespace, or in all
ObjectId = tuple[str, str, str]  # kind, namespace, name


@dataclass(frozen=True, slots=True)
class KubeOrigin:
    kind: str
    namespace: str
    name: str

    @property
    def id(self) -> ObjectId:
        return (self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else self.name


class KubernetesSource:
    def __init__(
        self,
        api: KubeApi,
        selection: NamespaceSelection | None = None,
        *,
        backoff: Backoff | None = None,
        page_size: int = 500,
        watch_timeout: tuple[int, int] = (300, 600),
        settle: float = 0.02,
        absent_recheck: float = 60.0,
    ) -> None:
        self.api = api
        self.selection = selection or NamespaceSelection()
        self.stores: dict[Scope, Store] = {
            (resource, namespace): Store(resource)
            for resource in MODEL_RESOURCES
            for namespace in self.selection.scopes()
        }
        if self.selection.selector is not None:
            self.stores[(NAMESPACES, None)] = Store(NAMESPACES)
        self.last_good: Model | None = None
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.failures: dict[Scope, str] = {}
        self._backoff = backoff or Backoff()
        self._page_size = page_size
        self._watch_timeout = watch_timeout
        self._settle = settle
        self._absent_recheck = absent_recheck
        self._parsed: dict[ObjectId, tuple[RawObject, Outcome]] = {}
        self._good: dict[ObjectId, Outcome] = {}
        self._wake: asyncio.Event | None = None

    @property
    def synced(self) -> bool:
        """Every collection has been listed at least once."""
        return all(store.synced for store in self.stores.values())

    def apply(self, scope: Scope, item: Delta | Health) -> bool:
        """Takes in what a watcher learnt (on the event loop); True if a store changed."""
        if isinstance(item, Health):
            if item.problem is None:
                self.failures.pop(scope, None)
            else:
                self.failures[scope] = item.problem
            return False
        changed = self.stores[scope].apply(item)
        if changed and self._wake is not None:
            self._wake.set()
        return changed

    def rebuild(self) -> Model | None:
        """The model of the stores, if every one is synced and it differs from the last good."""
        if not self.synced:
            return None
        errors: list[Finding[KubeOrigin]] = []
        notes: list[Finding[KubeOrigin]] = []
        assembly = Assembly(errors.append, notes.append)
        refused: dict[ObjectId, str] = {}
        seen: set[ObjectId] = set()
        admitted = self._admitted_namespaces()
        for (resource, _), store in self.stores.items():
            if resource is NAMESPACES:
                continue
            for (namespace, name), raw in store.objects.items():
                if admitted is not None and namespace not in admitted:
                    continue
                origin = KubeOrigin(resource.kind, namespace, name)
                seen.add(origin.id)
                outcome = self._parse(origin.id, raw)
                if assembly.add(origin, outcome):
                    self._good[origin.id] = outcome
                    continue
                good = self._good.get(origin.id)
                if good is not None and assembly.add(origin, good):
                    refused[origin.id] = "keeping its last good version"
                else:
                    refused[origin.id] = "left out"
        model = assembly.finish()
        self._forget(seen)
        self._report(errors, notes, refused)
        if model == self.last_good:
            return None
        self.last_good = model
        log.info(
            "Kubernetes objects loaded: %d services, %d endpoint slices, %d pods",
            len(model.services),
            sum(len(s) for s in model.slices.values()),
            len(model.pods),
        )
        return model

    async def run(self, on_model: ModelCallback, *, synced: asyncio.Event | None = None) -> None:
        """Watches until cancelled, handing each new model to `on_model`.

        The first model comes once every collection is listed; `synced` is set
        just after it has been handed over.
        """
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        watchers = [self._watcher(loop, scope) for scope in self.stores]
        log.info("watching %s through the Kubernetes API at %s", self.selection, self.api.host)
        for watcher in watchers:
            watcher.start()
        try:
            while True:
                await self._wake.wait()
                await asyncio.sleep(self._settle)  # one rebuild for a burst of events
                self._wake.clear()
                model = self.rebuild()
                if model is not None:
                    outcome = on_model(model)
                    if inspect.isawaitable(outcome):
                        await outcome
                if synced is not None and self.synced:
                    synced.set()
        finally:
            for watcher in watchers:
                watcher.stop()
            await asyncio.to_thread(_join, watchers, 5.0)

    def _watcher(self, loop: asyncio.AbstractEventLoop, scope: Scope) -> Watcher:
        resource, namespace = scope
        reflector = Reflector(
            resource,
            Backoff(self._backoff.initial, self._backoff.maximum, self._backoff.jitter),
            self._page_size,
            self._watch_timeout,
        )
        selector = self.selection.selector if resource is NAMESPACES else None

        def post(item: Delta | Health) -> None:
            loop.call_soon_threadsafe(self.apply, scope, item)

        return Watcher(
            reflector,
            self.api,
            namespace,
            str(selector) if selector else None,
            post,
            self._absent_recheck,
        )

    def _admitted_namespaces(self) -> set[str] | None:
        selector = self.selection.selector
        if selector is None:
            return None
        admitted = set()
        for (_, name), raw in self.stores[(NAMESPACES, None)].objects.items():
            labels = raw["metadata"].get("labels")
            labels = labels if isinstance(labels, dict) else {}
            if selector.matches({k: v for k, v in labels.items() if isinstance(v, str)}):
                admitted.add(name)
        return admitted

    def _parse(self, key: ObjectId, raw: RawObject) -> Outcome:
        cached = self._parsed.get(key)
        if cached is not None and (cached[0] is raw or cached[0] == raw):
            return cached[1]
        outcome = parse_outcome(raw)
        self._parsed[key] = (raw, outcome)
        return outcome

    def _forget(self, present: set[ObjectId]) -> None:
        """Drops what is remembered of objects that are gone."""
        for cache in (self._parsed, self._good):
            for key in [k for k in cache if k not in present]:
                del cache[key]

    def _report(
        self,
        errors: list[Finding[KubeOrigin]],
        notes: list[Finding[KubeOrigin]],
        refused: dict[ObjectId, str],
    ) -> None:
        rendered = [_render(f, refused.get(f.origin.id)) for f in errors]
        new = [e for e in rendered if e not in self.errors]
        for error in new:
            log.error("%s", error)
        if self.errors and not rendered:
            log.info("objects from the Kubernetes API are all valid again")
        self.errors = rendered
        rendered_notes = [f"{f.what}: {f.message}" for f in notes]
        for note in rendered_notes:
            if note not in self.notes:
                log.info("%s", note)
        self.notes = rendered_notes


def _render(finding: Finding[KubeOrigin], consequence: str | None) -> str:
    field = render_path(finding.path)
    parts = [finding.what, field, finding.message] if field else [finding.what, finding.message]
    text = ": ".join(parts)
    return f"{text} ({consequence})" if consequence else text


def _join(watchers: list[Watcher], timeout: float) -> None:
    """Waits for the watcher threads, `timeout` seconds in all (they are daemons)."""
    deadline = time.monotonic() + timeout
    for watcher in watchers:
        watcher.join(max(0.0, deadline - time.monotonic()))
