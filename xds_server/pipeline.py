"""From model changes to published snapshots: debounce, translate, check, publish.

A burst of changes becomes one push: the build runs once no change has come
for `quiet` seconds, or `max_delay` seconds after the first change of the
burst, whichever is sooner. The latest model always wins. A snapshot that
fails its consistency check is refused and the last good one stays.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from api.contract import NodeProfile
from xds_server.hub import Hub
from xds_server.model import Model
from xds_server.resources import Resources
from xds_server.snapshot import InconsistentSnapshot, NodeTranslator, Snapshot
from xds_server.sources.overrides import Overrides
from xds_server.sources.overrides import apply as apply_overrides
from xds_server.translate import MeshSecurity, translate_node, translate_shared

log = logging.getLogger("xds_server.pipeline")


@dataclass
class Debouncer:
    """When to act on a burst of events; time is passed in."""

    quiet: float
    max_delay: float
    first: float | None = None
    last: float | None = None

    def event(self, now: float) -> None:
        if self.first is None:
            self.first = now
        self.last = now

    def deadline(self) -> float | None:
        """The moment the pending burst is due, or None if nothing is pending."""
        if self.first is None or self.last is None:
            return None
        return min(self.last + self.quiet, self.first + self.max_delay)

    def take(self, now: float) -> bool:
        """True (and reset) if the pending burst is due at `now`."""
        due = self.deadline()
        if due is None or now < due:
            return False
        self.first = self.last = None
        return True


def build_snapshot(
    model: Model,
    version: int,
    cluster_domain: str,
    previous: Snapshot | None = None,
    overrides: Overrides | None = None,
    security: MeshSecurity | None = None,
    secrets: NodeTranslator | None = None,
) -> Snapshot:
    """`secrets` adds each node's SDS secrets (the CA's `SecretSource`) to its resources."""
    secure = () if security is None else (security,)
    shared = translate_shared(model, cluster_domain, *secure)

    def node(profile: NodeProfile) -> Resources:
        out = translate_node(model, profile, cluster_domain, *secure)
        return out if secrets is None else out.merged(secrets(profile))

    if not overrides:
        return Snapshot(version, shared, node, previous)
    node_overrides = overrides.node
    return Snapshot(
        version,
        apply_overrides(shared, overrides.shared),
        lambda profile: apply_overrides(node(profile), node_overrides),
        previous,
    )


class Pipeline:
    def __init__(
        self,
        hub: Hub,
        cluster_domain: str = "cluster.local",
        quiet: float = 0.1,
        max_delay: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.cluster_domain = cluster_domain
        self._debouncer = Debouncer(quiet, max_delay)
        self._clock = clock
        self._pending: Model | None = None
        self._wake = asyncio.Event()
        self.model: Model | None = None
        self.overrides: Overrides | None = None
        self.security: MeshSecurity | None = None  # None: no mTLS (the translator's default)
        self.secrets: NodeTranslator | None = None  # SDS secrets per node, when a CA runs

    def publish_now(self, model: Model) -> bool:
        """Translate and publish `model` at once; False if it was refused."""
        started = time.monotonic()
        version = self.hub.snapshot.version + 1
        try:
            snapshot = build_snapshot(
                model,
                version,
                self.cluster_domain,
                self.hub.snapshot,
                self.overrides,
                self.security,
                self.secrets,
            )
            self.hub.publish(snapshot)
        except InconsistentSnapshot as e:
            self.hub.metrics.rejected_snapshots.inc()
            log.error(
                "snapshot %d refused, still serving %d: %s", version, self.hub.snapshot.version, e
            )
            return False
        self.model = model
        elapsed = time.monotonic() - started
        self.hub.metrics.build_seconds.observe(elapsed)
        self.hub.metrics.snapshot_version.set(version)
        for warning in snapshot.warnings:
            log.warning("snapshot %d: %s", version, warning)
        log.info(
            "published snapshot %d (%d services) in %.1f ms",
            version,
            len(model.services),
            elapsed * 1000,
        )
        return True

    def republish(self) -> bool:
        """Publish the current model again (new certificates); False if there is none yet."""
        return self.model is not None and self.publish_now(self.model)

    def submit(self, model: Model) -> None:
        """A source saw a change; it is published after the debounce."""
        self._pending = model
        self._debouncer.event(self._clock())
        self._wake.set()

    def submit_overrides(self, overrides: Overrides) -> None:
        """New xDS overrides; the current model is republished with them after the debounce."""
        self.overrides = overrides
        if self._pending is None and self.model is not None:
            self._pending = self.model
        self._debouncer.event(self._clock())
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while (deadline := self._debouncer.deadline()) is not None:
                delay = deadline - self._clock()
                if delay > 0:
                    try:
                        await asyncio.wait_for(self._wake.wait(), delay)
                        self._wake.clear()
                    except TimeoutError:
                        pass
                if self._debouncer.take(self._clock()) and self._pending is not None:
                    model, self._pending = self._pending, None
                    self.publish_now(model)
