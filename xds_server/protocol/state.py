"""Per-stream, per-type xDS bookkeeping shared by State of the World and Delta.

No I/O here: a stream object is fed decoded requests and asked to refresh
when a new snapshot is published; it returns the encoded responses to send.
The rules, for every type URL on a stream:

  R1  A request whose response_nonce differs from the nonce last sent for its
      type is stale and ignored. The first request of a type has no nonce.
  R2  A current request with error_detail is a NACK: recorded with its
      message; the proxy keeps what it last ACKed; nothing is resent until
      the content the proxy should have changes again.
  R3  A current request without error_detail ACKs the last response.
  R4  At most one response per type is in flight; a change that arrives while
      one is unacknowledged goes out after the ACK or NACK.
  R5  A response goes out only when the content the proxy should hold differs
      from what it was last sent; the first request of a wildcard type (LDS,
      CDS) is always answered, even with nothing, so the proxy can finish
      initializing.
  R6  Make before break: a resource the proxy holds stays in what it is sent
      while a resource it holds of the parent type still names it (CDS is
      held by RDS, EDS by CDS, RDS by LDS). So a removed Service's cluster
      outlives the routes that used it.
  R7  Several types to answer are answered in PUSH_ORDER: CDS, EDS, LDS, RDS.
  R8  Resource warming: Envoy warms a changed cluster until its
      ClusterLoadAssignment arrives, even an unchanged one, and may not ask
      for it again (Delta never does). So a CDS response that changes a
      cluster the proxy held is followed by that cluster's EDS resource; and
      a Delta subscribe to a name already held sends it again.

`TABLE` below is the state machine for one type; `TypeState` holds it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from api import contract
from xds_server.snapshot import Entries, Entry, View


class Phase(enum.Enum):
    IDLE = "idle"  # no request for this type yet
    WAITING = "waiting"  # subscribed; nothing in flight
    IN_FLIGHT = "in_flight"  # a response awaits its ACK or NACK


class Input(enum.Enum):
    SUBSCRIBE = "subscribe"  # a request without a nonce (first, or after a reconnect)
    ACK = "ack"
    NACK = "nack"
    STALE = "stale"
    SEND = "send"  # the stream decided to send a response


TABLE: Mapping[tuple[Phase, Input], Phase] = {
    (Phase.IDLE, Input.SUBSCRIBE): Phase.WAITING,
    (Phase.WAITING, Input.SUBSCRIBE): Phase.WAITING,
    (Phase.WAITING, Input.SEND): Phase.IN_FLIGHT,
    (Phase.IN_FLIGHT, Input.ACK): Phase.WAITING,
    (Phase.IN_FLIGHT, Input.NACK): Phase.WAITING,
    (Phase.IN_FLIGHT, Input.STALE): Phase.IN_FLIGHT,
    (Phase.WAITING, Input.STALE): Phase.WAITING,
    # Delta clients may change subscriptions with a new request that carries
    # no nonce while a response is in flight; the response stays in flight.
    (Phase.IN_FLIGHT, Input.SUBSCRIBE): Phase.IN_FLIGHT,
}

PARENT = {
    contract.TYPE_CLUSTER: contract.TYPE_ROUTE,
    contract.TYPE_ENDPOINT: contract.TYPE_CLUSTER,
    contract.TYPE_ROUTE: contract.TYPE_LISTENER,
}
WILDCARD_TYPES = frozenset({contract.TYPE_CLUSTER, contract.TYPE_LISTENER})


class ProtocolError(Exception):
    """A request the server cannot make sense of; the stream is closed with it."""


@dataclass(frozen=True, slots=True)
class Nack:
    version: str  # the version the proxy stays on
    nonce: str  # the response it rejected
    rejected_version: str
    message: str


@dataclass(slots=True)
class TypeState:
    type_url: str
    phase: Phase = Phase.IDLE
    wildcard: bool = False
    names: set[str] = field(default_factory=set)
    sent: dict[str, Entry] = field(default_factory=dict)  # what the proxy was last sent
    known: dict[str, str] = field(default_factory=dict)  # Delta: versions it had on reconnect
    nonce: str = ""
    version: str = ""  # version of the last response
    snapshot_version: int = -1  # snapshot the last response came from
    acked_version: str = ""
    answered: bool = False  # R5: a wildcard type's first response went out
    nack: Nack | None = None
    synced: int = -1  # the snapshot version `sent` was last compared with
    dirty: bool = True  # subscriptions or the parent changed: compare everything next time
    _refs: frozenset[str] | None = None

    def step(self, what: Input) -> None:
        try:
            self.phase = TABLE[self.phase, what]
        except KeyError:
            raise ProtocolError(
                f"{contract.SHORT_TYPE_NAMES.get(self.type_url, self.type_url)}: "
                f"{what.value} is not allowed while {self.phase.value}"
            ) from None

    def diff(
        self, view: View, states: Mapping[str, TypeState], candidates: Iterable[str] | None
    ) -> tuple[dict[str, Entry], set[str]]:
        """What changed for the proxy: entries to send, and names it should drop.

        Only `candidates` are looked at (the names that changed since the
        proxy was last in sync); None compares everything.
        """
        entries: Entries = view.get(self.type_url)
        if candidates is None:
            held_names = self.sent.keys() | self.known.keys()
            names: Iterable[str] = (
                entries.keys() | self.names | held_names
                if self.wildcard
                else self.names | held_names
            )
        else:
            names = candidates
        parent = states.get(PARENT.get(self.type_url, ""))
        held = parent.held_refs() if parent is not None else frozenset()
        changed: dict[str, Entry] = {}
        removed: set[str] = set()
        for name in names:
            subscribed = self.wildcard or name in self.names
            want = entries.get(name) if subscribed else None
            have = self.sent.get(name)
            if want is None and have is not None and subscribed and name in held:
                want = have  # R6: still named by what the proxy holds of the parent type
            have_version = have.version if have is not None else self.known.get(name)
            if want is None:
                if have_version is not None:
                    removed.add(name)
            elif have_version != want.version:
                changed[name] = want
        return changed, removed

    def held_refs(self) -> frozenset[str]:
        """Every name the resources last sent of this type refer to."""
        if self._refs is None:
            refs: set[str] = set()
            for entry in self.sent.values():
                refs |= entry.refs
            self._refs = frozenset(refs)
        return self._refs

    def resend(self, names: Iterable[str]) -> None:
        """R8: send `names` again next time, as if the proxy did not hold them."""
        for name in names:
            self.sent.pop(name, None)
            self.known.pop(name, None)
        self._refs = None
        self.dirty = True

    def record_sent(self, changed: Mapping[str, Entry], removed: Iterable[str]) -> None:
        for name in removed:
            self.sent.pop(name, None)
            self.known.pop(name, None)
        for name in changed:
            self.known.pop(name, None)
        self.sent.update(changed)
        self._refs = None


CHILD = {parent: child for child, parent in PARENT.items()}


@dataclass(frozen=True, slots=True)
class Response:
    """One encoded response and what it carried, for the adapter and debug pages."""

    type_url: str
    version: str
    nonce: str
    payload: bytes
    names: tuple[str, ...]
    removed: tuple[str, ...] = ()
    snapshot_version: int = -1


@dataclass(frozen=True, slots=True)
class Ack:
    type_url: str
    version: str
    snapshot_version: int


@dataclass(slots=True)
class Step:
    """What one request produced."""

    responses: list[Response] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    nacks: list[tuple[str, Nack]] = field(default_factory=list)
