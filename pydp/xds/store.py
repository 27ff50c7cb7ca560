"""The configuration pydp runs with: accepted resources, warming, active snapshot.

Theory of operation. `apply(update)` takes one decoded response. Resources
whose bytes are unchanged keep their compiled form; the others go, all at
once, to the compiler supplied for their type, which returns one compiled
object per name or raises `ConfigError`. On any error nothing changes (the
last good configuration stays in force) and the caller NACKs. Otherwise the
update is *accepted*, and resources become *active* by Envoy's warming rules:

| type                   | becomes active when                                    |
|------------------------|--------------------------------------------------------|
| Cluster                | its EDS assignment and SDS secrets have arrived        |
|                        | (STATIC and DNS clusters at once)                      |
| Listener               | the RDS route configurations and SDS secrets it names  |
|                        | have arrived                                           |
| Route, Endpoint, Secret| at once                                                |

While a new version of a cluster or listener warms, its previous version stays
active; a removed one leaves at once. Routes naming unknown clusters do not
wait (Envoy answers 503). What a cluster or listener references decides the
names the client subscribes to (`wanted`); resources no longer wanted are
dropped.

The active objects form an immutable `Snapshot`, replaced (never mutated)
when it changes, so the data path reads `store.snapshot` once per request and
keeps a consistent view. The handler hears of every new snapshot together
with the listeners added, changed and removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from api import contract
from pydp.xds.decode import Message, Resource, Update
from pydp.xds.deps import Dependency, dependencies

Compiler = Callable[[Mapping[str, Message]], Mapping[str, Any]]
"""Compiles the named resources of one type (those added or changed by one
response) into the objects the data path uses, one per name; raises
`pydp.errors.ConfigError` to reject the response."""

WARMING_TYPES = (contract.TYPE_CLUSTER, contract.TYPE_LISTENER)
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


def keep_messages(resources: Mapping[str, Message]) -> Mapping[str, Any]:
    """The compiler of a type nobody compiles: the protobuf messages themselves."""
    return dict(resources)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The active configuration, by type and name, as compiled objects. Never mutated."""

    listeners: Mapping[str, Any] = field(default_factory=_empty)
    routes: Mapping[str, Any] = field(default_factory=_empty)
    clusters: Mapping[str, Any] = field(default_factory=_empty)
    endpoints: Mapping[str, Any] = field(default_factory=_empty)
    secrets: Mapping[str, Any] = field(default_factory=_empty)
    generation: int = 0


_SNAPSHOT_FIELDS = {
    contract.TYPE_LISTENER: "listeners",
    contract.TYPE_ROUTE: "routes",
    contract.TYPE_CLUSTER: "clusters",
    contract.TYPE_ENDPOINT: "endpoints",
    contract.TYPE_SECRET: "secrets",
}


@dataclass(frozen=True, slots=True)
class ListenerChanges:
    """Listeners that became active, were replaced by a new version, or went away."""

    added: Mapping[str, Any] = field(default_factory=_empty)
    changed: Mapping[str, Any] = field(default_factory=_empty)
    removed: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


class ConfigHandler(Protocol):
    """Told of each new snapshot; called from the xDS client's task, so it must not block."""

    def config_updated(self, snapshot: Snapshot, listeners: ListenerChanges) -> None: ...


@dataclass(frozen=True, slots=True)
class Nack:
    """The last rejected response of a type, for `/config_dump` and logs."""

    version: str
    nonce: str
    message: str
    time: float


@dataclass(frozen=True, slots=True)
class _Entry:
    resource: Resource
    compiled: Any
    needs: frozenset[Dependency]
    updated: float


@dataclass(frozen=True, slots=True)
class DumpedResource:
    name: str
    version: str
    message: Message
    last_updated: float
    warming: bool


@dataclass(frozen=True, slots=True)
class TypeDump:
    """One type's state, as Envoy's `/config_dump` shows it."""

    type_url: str
    version: str
    resources: tuple[DumpedResource, ...]
    last_nack: Nack | None


@dataclass(slots=True)
class _TypeStore:
    version: str = ""
    accepted: dict[str, _Entry] = field(default_factory=dict)
    active: dict[str, _Entry] = field(default_factory=dict)
    warming: set[str] = field(default_factory=set)
    nack: Nack | None = None
    fetched: bool = False


class ConfigStore:
    """Accepted and active xDS configuration, with Envoy's warming rules."""

    def __init__(
        self,
        compilers: Mapping[str, Compiler] | None = None,
        handler: ConfigHandler | None = None,
        *,
        initial_types: tuple[str, ...] = (contract.TYPE_CLUSTER, contract.TYPE_LISTENER),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._compilers = dict(compilers or {})
        self._handler = handler
        self._initial_types = initial_types
        self._clock = clock
        self._types = {t: _TypeStore() for t in _SNAPSHOT_FIELDS}
        self._initialized = False
        self._wanted: dict[str, frozenset[str]] | None = None
        self.snapshot = Snapshot()

    @property
    def initialized(self) -> bool:
        """True once the first CDS and LDS responses are in and nothing they named still warms.

        Latches, as Envoy's initialization does; `finish_initialization`
        ends it early (Envoy's `initial_fetch_timeout`).
        """
        return self._initialized

    def finish_initialization(self) -> None:
        self._initialized = True

    def wanted(self, type_url: str) -> frozenset[str]:
        """The names of `type_url` that accepted or active clusters and listeners reference."""
        if self._wanted is None:
            wanted: dict[str, set[str]] = {t: set() for t in self._types}
            for source in WARMING_TYPES:
                state = self._types[source]
                for entries in (state.accepted, state.active):
                    for entry in entries.values():
                        for needed_type, name in entry.needs:
                            wanted[needed_type].add(name)
            self._wanted = {t: frozenset(names) for t, names in wanted.items()}
        return self._wanted[type_url]

    def warming(self, type_url: str) -> frozenset[str]:
        return frozenset(self._types[type_url].warming)

    def version(self, type_url: str) -> str:
        return self._types[type_url].version

    def last_nack(self, type_url: str) -> Nack | None:
        return self._types[type_url].nack

    def apply(self, update: Update) -> None:
        """Accept an update, or raise `ConfigError` and change nothing."""
        state = self._types[update.type_url]
        changed = {
            name: resource
            for name, resource in update.resources.items()
            if name not in state.accepted or state.accepted[name].resource.raw != resource.raw
        }
        needs = {
            name: dependencies(update.type_url, name, r.message) for name, r in changed.items()
        }
        compiled = self._compile(update.type_url, changed)
        removed = set(update.removed)
        if update.complete:
            removed |= state.accepted.keys() - update.resources.keys()

        now = self._clock()
        self._wanted = None
        before = self._active_listeners()
        touched: set[str] = set()
        for name, resource in update.resources.items():
            if name in changed:
                state.accepted[name] = _Entry(resource, compiled[name], needs[name], now)
                state.warming.add(name)
            else:  # same bytes: keep the compiled object, note the new version
                old = state.accepted[name]
                entry = _Entry(resource, old.compiled, old.needs, old.updated)
                state.accepted[name] = entry
                if state.active.get(name) is old:
                    state.active[name] = entry
        for name in removed:
            state.accepted.pop(name, None)
            state.warming.discard(name)
            if state.active.pop(name, None) is not None:
                touched.add(update.type_url)
        state.version = update.version
        state.fetched = True
        state.nack = None

        touched |= self._activate()
        touched |= self._prune()
        self._check_initialized()
        if touched:
            self._publish(touched, before)

    def reject(self, type_url: str, version: str, nonce: str, message: str) -> None:
        """Record a NACK; the configuration in force does not change."""
        state = self._types.get(type_url)
        if state is None:
            return
        state.nack = Nack(version, nonce, message, self._clock())
        state.fetched = True  # Envoy ends initialization on a rejected first fetch too
        self._check_initialized()

    def dump(self) -> list[TypeDump]:
        """Every type's accepted resources (active and warming), version and last NACK."""
        out = []
        for type_url, state in self._types.items():
            resources = []
            for name in sorted(state.accepted.keys() | state.active.keys()):
                active = state.active.get(name)
                accepted = state.accepted.get(name)
                if active is not None:
                    resources.append(_dumped(name, active, warming=False))
                if accepted is not None and accepted is not active and name in state.warming:
                    resources.append(_dumped(name, accepted, warming=True))
            out.append(TypeDump(type_url, state.version, tuple(resources), state.nack))
        return out

    def _compile(self, type_url: str, changed: Mapping[str, Resource]) -> Mapping[str, Any]:
        if not changed:
            return {}
        compiler = self._compilers.get(type_url, keep_messages)
        compiled = compiler({name: r.message for name, r in changed.items()})
        missing = changed.keys() - compiled.keys()
        if missing:
            raise TypeError(f"compiler for {type_url} returned nothing for {sorted(missing)}")
        return compiled

    def _prune(self) -> set[str]:
        """Drop referenced-only resources that nothing references any more."""
        touched = set()
        for type_url, state in self._types.items():
            if type_url in WARMING_TYPES:
                continue
            gone = (state.accepted.keys() | state.active.keys()) - self.wanted(type_url)
            for name in gone:
                state.accepted.pop(name, None)
                if state.active.pop(name, None) is not None:
                    touched.add(type_url)
        return touched

    def _activate(self) -> set[str]:
        touched = set()
        for type_url, state in self._types.items():
            for name in list(state.warming):
                entry = state.accepted[name]
                if all(n in self._types[t].accepted for t, n in entry.needs):
                    state.active[name] = entry
                    state.warming.discard(name)
                    touched.add(type_url)
                    self._wanted = None
        return touched

    def _check_initialized(self) -> None:
        if self._initialized:
            return
        if all(self._types[t].fetched for t in self._initial_types) and not any(
            self._types[t].warming for t in WARMING_TYPES
        ):
            self._initialized = True

    def _active_listeners(self) -> dict[str, _Entry]:
        return dict(self._types[contract.TYPE_LISTENER].active)

    def _publish(self, touched: set[str], before: dict[str, _Entry]) -> None:
        fields = {
            _SNAPSHOT_FIELDS[t]: MappingProxyType(
                {name: e.compiled for name, e in self._types[t].active.items()}
            )
            for t in touched
        }
        old = self.snapshot
        self.snapshot = Snapshot(
            listeners=fields.get("listeners", old.listeners),
            routes=fields.get("routes", old.routes),
            clusters=fields.get("clusters", old.clusters),
            endpoints=fields.get("endpoints", old.endpoints),
            secrets=fields.get("secrets", old.secrets),
            generation=old.generation + 1,
        )
        after = self._types[contract.TYPE_LISTENER].active
        changes = ListenerChanges(
            added=MappingProxyType({n: e.compiled for n, e in after.items() if n not in before}),
            changed=MappingProxyType(
                {
                    n: e.compiled
                    for n, e in after.items()
                    if n in before and before[n].compiled is not e.compiled
                }
            ),
            removed=frozenset(before.keys() - after.keys()),
        )
        if self._handler is not None:
            self._handler.config_updated(self.snapshot, changes)


def _dumped(name: str, entry: _Entry, *, warming: bool) -> DumpedResource:
    return DumpedResource(
        name, entry.resource.version, entry.resource.message, entry.updated, warming
    )
