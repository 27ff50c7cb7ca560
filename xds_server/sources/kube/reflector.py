"""List then watch one Kubernetes collection, without I/O.

Theory of operation. A `Reflector` is the state machine of client-go's
reflector for one resource in one scope (a namespace, or all of them). The
adapter asks it what to do (`next_call`), makes that call, and feeds back
what came: a page of a list (`listed`), each line of a watch (`received`),
the clean end of a watch (`ended`) or a failure (`failed`, which answers how
long to wait). What it learns comes out as deltas for the cache: `Replace`
with the full list once its last page is in, then `Upsert` and `Remove` per
watch event. It never produces a delta that empties the cache on a failure:
the cache keeps the last state until a fresh list replaces it.

- A list is paged (`limit`/`continue`); its resourceVersion is where the
  watch starts.
- Each event moves the resourceVersion forward, and so does a `BOOKMARK`
  (asked for with `allowWatchBookmarks`), which carries no object.
- A watch that ends cleanly (the server's `timeoutSeconds`) is resumed from
  the last resourceVersion at once.
- A custom resource whose CRD is not installed (its list answers 404) has
  no objects; it is listed again now and then, to notice the CRD.
- `410 Gone` (the resourceVersion was compacted away, as an `ERROR` event or
  as the status of the call), any other error, a dropped connection or a
  malformed answer: the next call is a fresh list, after a back-off that
  doubles from `initial` to `maximum` and starts at zero after a healthy
  stretch (a clean end, or an event delivered).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xds_server.sources.kube.resources import Resource

HTTP_GONE = 410
HTTP_NOT_FOUND = 404

RawObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ListCall:
    limit: int
    continue_token: str = ""


@dataclass(frozen=True, slots=True)
class WatchCall:
    resource_version: str
    timeout_seconds: int


Call = ListCall | WatchCall


@dataclass(frozen=True, slots=True)
class Replace:
    """A complete, fresh list: the cache becomes exactly these objects."""

    objects: tuple[RawObject, ...]


@dataclass(frozen=True, slots=True)
class Upsert:
    obj: RawObject


@dataclass(frozen=True, slots=True)
class Remove:
    obj: RawObject


Delta = Replace | Upsert | Remove


class CallFailed(Exception):
    """A list or watch that failed, with the HTTP status when the server gave one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Backoff:
    """Delays between failed attempts: 0, then `initial` doubling up to `maximum`, jittered."""

    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.2
    rand: Callable[[], float] = random.random
    attempts: int = 0

    def next(self) -> float:
        attempts, self.attempts = self.attempts, self.attempts + 1
        if attempts == 0:
            return 0.0
        delay = min(self.maximum, self.initial * 2.0 ** (attempts - 1))
        return delay * (1 - self.jitter * self.rand())

    def reset(self) -> None:
        self.attempts = 0


@dataclass
class Reflector:
    resource: Resource
    backoff: Backoff = field(default_factory=Backoff)
    page_size: int = 500
    watch_timeout: tuple[int, int] = (300, 600)
    rand: Callable[[], float] = random.random
    watching: bool = False
    resource_version: str = ""
    _continue: str = ""
    _pages: list[RawObject] = field(default_factory=list)

    def next_call(self) -> Call:
        if self.watching:
            low, high = self.watch_timeout
            return WatchCall(self.resource_version, low + int((high - low) * self.rand()))
        return ListCall(self.page_size, self._continue)

    def listed(self, body: object) -> Replace | None:
        """One page of a list; the whole list once its last page is in."""
        what = "list"
        body = _mapping(body, what)
        items = body.get("items")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise CallFailed(f"{what}: items is not a list")
        self._pages += (self._normalize(item, what) for item in items)
        meta = _mapping(body.get("metadata", {}), f"{what}: metadata")
        token = meta.get("continue")
        if isinstance(token, str) and token:
            self._continue = token
            return None
        version = meta.get("resourceVersion")
        self.resource_version = version if isinstance(version, str) else ""
        objects, self._pages, self._continue = tuple(self._pages), [], ""
        self.watching = True
        return Replace(objects)

    def received(self, event: object) -> Delta | None:
        """One event of a watch; raises `CallFailed` for an `ERROR` event."""
        what = "watch"
        event = _mapping(event, f"{what}: event")
        kind, obj = event.get("type"), event.get("object")
        if kind == "ERROR":
            status = _mapping(obj, f"{what}: ERROR event")
            code = status.get("code")
            reason = status.get("reason") or "Error"
            message = status.get("message") or ""
            raise CallFailed(
                f"{what}: {reason}: {message}".rstrip(": "), code if isinstance(code, int) else None
            )
        if kind == "BOOKMARK":
            self._advance(_mapping(obj, f"{what}: BOOKMARK"))
            self.backoff.reset()
            return None
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            raise CallFailed(f"{what}: unknown event type {kind!r}")
        normalized = self._normalize(obj, f"{what}: {kind} event")
        self._advance(normalized)
        self.backoff.reset()
        return Remove(normalized) if kind == "DELETED" else Upsert(normalized)

    def ended(self) -> None:
        """The server closed the watch cleanly: resume from the last resourceVersion."""
        self.backoff.reset()

    def failed(self) -> float:
        """A call failed: the next one is a fresh list, after the delay returned."""
        self.watching = False
        self._continue, self._pages = "", []
        return self.backoff.next()

    def absent(self, error: CallFailed) -> Replace | None:
        """A list answered 404: for a custom resource whose CRD is not installed, no objects.

        None for anything else (a real failure). The next call is a list, so
        the resource is noticed once its CRD is installed.
        """
        if not (self.resource.custom and error.status == HTTP_NOT_FOUND and not self.watching):
            return None
        self._continue, self._pages = "", []
        self.backoff.reset()
        return Replace(())

    def _advance(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata")
        version = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
        if isinstance(version, str) and version:
            self.resource_version = version

    def _normalize(self, obj: object, what: str) -> RawObject:
        """The object with the apiVersion and kind that list items leave out."""
        if not isinstance(obj, dict):
            raise CallFailed(f"{what}: an object is not a mapping")
        meta = obj.get("metadata")
        if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
            raise CallFailed(f"{what}: an object has no metadata.name")
        obj.setdefault("apiVersion", self.resource.api_version)
        obj.setdefault("kind", self.resource.kind)
        return obj


def object_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of an object a reflector let through."""
    meta = obj["metadata"]
    namespace = meta.get("namespace")
    return (namespace if isinstance(namespace, str) else "", meta["name"])


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CallFailed(f"{what} is not a JSON object")
    return value
