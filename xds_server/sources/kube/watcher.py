"""One thread per watched collection, driving its `Reflector` with the blocking client.

The client is synchronous (urllib3), the server runs on asyncio: each
collection's list+watch loop runs in a daemon thread, and everything it
learns goes to the event loop through `post` (`loop.call_soon_threadsafe`).
The thread keeps no state of its own beyond the open watch, which `stop`
shuts down so that a blocked read returns at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from xds_server.sources.kube.api import KubeApi, Watch
from xds_server.sources.kube.reflector import CallFailed, Delta, ListCall, Reflector, Replace

log = logging.getLogger("xds_server.sources.kube")


@dataclass(frozen=True, slots=True)
class Health:
    """How a collection's calls go: `problem` is None once a list succeeds again."""

    problem: str | None


Post = Callable[[Delta | Health], None]


class Watcher:
    def __init__(
        self,
        reflector: Reflector,
        api: KubeApi,
        namespace: str | None,
        selector: str | None,
        post: Post,
        absent_recheck: float = 60.0,
    ) -> None:
        self.reflector = reflector
        self.api = api
        self.namespace = namespace
        self.selector = selector
        self._post = post
        self.absent_recheck = absent_recheck
        scope = f"namespace {namespace}" if namespace else "all namespaces"
        self.name = f"{reflector.resource} in {scope}"
        self._stop = threading.Event()
        self._watch: Watch | None = None
        self._failing = False
        self._absent_logged = False
        self._thread = threading.Thread(target=self._run, name=f"watch {self.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        watch = self._watch
        if watch is not None:
            watch.shutdown()

    def join(self, timeout: float | None = None) -> bool:
        """Waits for the thread to end; True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as e:
                if self._stop.is_set():
                    return
                empty = self.reflector.absent(e) if isinstance(e, CallFailed) else None
                if empty is not None:
                    self._absent(empty)
                    continue
                if not isinstance(e, CallFailed):
                    log.exception("%s: unexpected failure", self.name)
                delay = self.reflector.failed()
                when = f"in {delay:.2g} s" if delay else "now"
                log.warning("%s: %s; listing again %s", self.name, e, when)
                self._failing = True
                if not self._send(Health(f"{self.name}: {e}")):
                    return
                self._stop.wait(delay)

    def _absent(self, empty: Replace) -> None:
        if not self._absent_logged:
            log.info(
                "%s: not served (is its CustomResourceDefinition installed?); "
                "reading none, and looking again every %.0f s",
                self.name,
                self.absent_recheck,
            )
            self._absent_logged = True
        if self._send(empty) and self._failing:
            self._failing = False
            self._send(Health(None))
        self._stop.wait(self.absent_recheck)

    def _step(self) -> None:
        call = self.reflector.next_call()
        if isinstance(call, ListCall):
            body = self.api.list_page(self.reflector.resource, self.namespace, call, self.selector)
            listed = self.reflector.listed(body)
            if listed is not None:
                log.info("%s: listed %d objects", self.name, len(listed.objects))
                self._absent_logged = False
                self._send(listed)
                if self._failing:
                    self._failing = False
                    self._send(Health(None))
            return
        with self.api.watch(self.reflector.resource, self.namespace, call, self.selector) as watch:
            self._watch = watch
            try:
                if self._stop.is_set():
                    return
                for event in watch:
                    delta = self.reflector.received(event)
                    if delta is not None and not self._send(delta):
                        return
                    if self._stop.is_set():
                        return
            finally:
                self._watch = None
        if not self._stop.is_set():
            self.reflector.ended()

    def _send(self, item: Delta | Health) -> bool:
        """Hands `item` to the event loop; False (and stops) once the loop is gone."""
        try:
            self._post(item)
        except RuntimeError:  # the event loop is closed
            self._stop.set()
            return False
        return True
