"""The manifests folder as a source of models: load, keep the last good model, watch.

`ManifestSource` holds what the server needs: the last model that loaded
(`last_good`), and the errors and notes of the latest attempt. `apply` folds
one `LoadResult` into that state and does nothing but log; `reload` reads the
folder and applies the result; `watch` reloads whenever anything under the
folder changes and hands each new model to a callback. A failed load changes
nothing but `errors`, so the server keeps serving the last good model.

The watcher reloads on any change rather than on changes to manifest files
only: a ConfigMap volume updates by swapping a hidden symlink, and editors
write a temporary file and rename it over the original. Reloading is cheap,
and the callback runs only when the model differs from the last good one.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import watchfiles

from xds_server.model import Model
from xds_server.sources.folder import load_folder
from xds_server.sources.load import LoadResult, ManifestError

__all__ = ["LoadResult", "ManifestError", "ManifestSource", "ModelCallback", "load_folder"]

log = logging.getLogger("xds_server.sources")

ModelCallback = Callable[[Model], Awaitable[None] | None]


class ManifestSource:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.last_good: Model | None = None
        self.errors: list[str] = []
        self.notes: list[str] = []

    def apply(self, result: LoadResult) -> Model | None:
        """Takes in one load; returns its model if it loaded and differs from the last good."""
        notes = list(result.notes)
        if notes != self.notes:
            for note in notes:
                log.info("%s", note)
        self.notes = notes
        if result.model is None:
            errors = [str(e) for e in result.errors]
            if errors != self.errors:
                kept = "keeping the last good model" if self.last_good else "no model yet"
                log.error("manifests in %s rejected (%s):", self.folder, kept)
                for error in errors:
                    log.error("%s", error)
            self.errors = errors
            return None
        if self.errors:
            log.info("manifests in %s are valid again", self.folder)
        self.errors = []
        if result.model == self.last_good:
            return None
        self.last_good = model = result.model
        log.info(
            "manifests in %s loaded: %d services, %d endpoint slices, %d pods",
            self.folder,
            len(model.services),
            sum(len(s) for s in model.slices.values()),
            len(model.pods),
        )
        return model

    def reload(self) -> Model | None:
        """Loads the folder now; returns the new model, if there is one."""
        return self.apply(load_folder(self.folder))

    async def watch(
        self,
        on_model: ModelCallback,
        *,
        ready: asyncio.Event | None = None,
        stop: asyncio.Event | None = None,
        tick_ms: int = 1000,
    ) -> None:
        """Reloads on every change under the folder, until `stop` is set or the task is cancelled.

        Once the watcher runs, it loads the folder (so nothing written before is
        missed), calls `on_model` if that gave a new model, and sets `ready`.
        `on_model` may be a plain function or a coroutine function. Setting
        `stop` ends the watch within 50 ms; a cancellation takes up to `tick_ms`,
        as the thread waiting for changes looks up at that interval.
        """
        first = True
        async for changes in watchfiles.awatch(
            self.folder, stop_event=stop, rust_timeout=tick_ms, yield_on_timeout=True
        ):
            if not (changes or first):
                continue
            model = self.apply(await asyncio.to_thread(load_folder, self.folder))
            if model is not None:
                outcome = on_model(model)
                if inspect.isawaitable(outcome):
                    await outcome
            if first and ready is not None:
                ready.set()
            first = False
