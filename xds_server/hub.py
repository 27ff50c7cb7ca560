"""The hub: the published snapshot, the connected streams, and pushes between them.

Publishing a snapshot first builds and checks the view of every connected
node profile, so an inconsistent snapshot is refused as a whole and the last
good one stays; then every stream is refreshed and queues only what changed
for it. Runs on one event loop; nothing here awaits.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from api.contract import SHORT_TYPE_NAMES, NodeProfile
from xds_server.metrics import Metrics
from xds_server.protocol.state import Response, Step
from xds_server.protocol.stream import Stream
from xds_server.resources import Resources
from xds_server.snapshot import Snapshot, View

log = logging.getLogger("xds_server.hub")
CLOSE = object()  # queued to end a stream
HISTORY = 64  # snapshots whose changes are remembered, so streams catch up incrementally


@dataclass(eq=False)
class Connection:
    id: int
    stream: Stream
    peer: str
    connected_at: float = field(default_factory=time.time)
    queue: asyncio.Queue[Response | object] = field(default_factory=asyncio.Queue)


class Hub:
    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or Metrics()
        self.snapshot = Snapshot(0, Resources(), lambda _profile: Resources())
        self.connections: dict[int, Connection] = {}
        self._ids = itertools.count(1)
        self._published_at: dict[int, float] = {0: time.monotonic()}
        self._changes: dict[int, Mapping[str, frozenset[str]] | None] = {}
        self.on_publish: list[Callable[[Snapshot], None]] = []

    def view(self, profile: NodeProfile) -> tuple[int, View]:
        return self.snapshot.version, self.snapshot.view(profile)

    def changes_since(self, version: int, type_url: str) -> frozenset[str] | None:
        """Shared names of `type_url` that changed after `version`; None if not remembered."""
        out: set[str] = set()
        for v in range(version + 1, self.snapshot.version + 1):
            changes = self._changes.get(v)
            if changes is None:
                return None
            out |= changes.get(type_url, frozenset())
        return frozenset(out)

    def connect(self, stream: Stream, peer: str) -> Connection:
        conn = Connection(next(self._ids), stream, peer)
        self.connections[conn.id] = conn
        self.metrics.connected.labels("delta" if stream.delta else "sotw").inc()
        return conn

    def disconnect(self, conn: Connection) -> None:
        if self.connections.pop(conn.id, None) is not None:
            self.metrics.connected.labels("delta" if conn.stream.delta else "sotw").dec()

    def publish(self, snapshot: Snapshot) -> None:
        """Make `snapshot` current and push what changed; raises if it is inconsistent."""
        for profile in {c.stream.profile for c in self.connections.values()}:
            if profile is not None:
                snapshot.view(profile)  # builds and checks; InconsistentSnapshot propagates
        started = time.monotonic()
        self.snapshot = snapshot
        snapshot.release_reuse()
        self._published_at[snapshot.version] = started
        self._changes[snapshot.version] = snapshot.changes
        for old in [v for v in self._published_at if v < snapshot.version - HISTORY]:
            del self._published_at[old]
            self._changes.pop(old, None)
        for conn in list(self.connections.values()):
            self.deliver(conn, conn.stream.refresh())
        self.metrics.push_seconds.observe(time.monotonic() - started)
        for callback in self.on_publish:
            callback(snapshot)

    def deliver(self, conn: Connection, responses: list[Response]) -> None:
        for response in responses:
            self.metrics.pushes.labels(_short(response.type_url)).inc()
            conn.queue.put_nowait(response)

    def account(self, step: Step) -> None:
        """Metrics for the ACKs and NACKs a request carried."""
        now = time.monotonic()
        for ack in step.acks:
            published = self._published_at.get(ack.snapshot_version)
            if published is not None:
                self.metrics.convergence.labels(_short(ack.type_url)).observe(now - published)
        for type_url, nack in step.nacks:
            self.metrics.nacks.labels(_short(type_url)).inc()
            log.warning(
                "proxy rejected %s version %s: %s",
                _short(type_url),
                nack.rejected_version,
                nack.message,
            )


def _short(type_url: str) -> str:
    return SHORT_TYPE_NAMES.get(type_url, type_url.rsplit(".", 1)[-1])
