"""The two kinds of xDS stream, State of the World and Delta, without I/O.

Both follow the rules in `state.py`. A stream learns its node from the first
request, asks `views` for the current snapshot's view of that node, and
answers with encoded responses. `refresh()` is called when a new snapshot is
published and returns what must be pushed (often nothing: R5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from google.protobuf.json_format import MessageToDict

from api import contract
from api.contract import NodeProfile
from xds_server import wire
from xds_server.protocol.state import (
    CHILD,
    WILDCARD_TYPES,
    Ack,
    Input,
    Nack,
    Phase,
    ProtocolError,
    Response,
    Step,
    TypeState,
)
from xds_server.snapshot import Entry, View

KNOWN_TYPES = frozenset(contract.PUSH_ORDER)


class ViewSource(Protocol):
    """Where a stream finds the current snapshot (the hub, or a test double)."""

    def view(self, profile: NodeProfile) -> tuple[int, View]:
        """The current snapshot's version and its view for `profile`."""

    def changes_since(self, version: int, type_url: str) -> frozenset[str] | None:
        """Shared names of `type_url` changed after `version`; None if not known."""


class Stream:
    """Shared bookkeeping; subclasses read requests and encode responses."""

    delta = False

    def __init__(self, views: ViewSource, control_plane_id: str = "xds-server") -> None:
        self._views = views
        self._identifier = control_plane_id
        self.node_id = ""
        self.profile: NodeProfile | None = None
        self.metadata: dict[str, Any] = {}
        self.states: dict[str, TypeState] = {}
        self._nonce = 0

    def receive(self, request: Any) -> Step:
        """Take one request (DiscoveryRequest or DeltaDiscoveryRequest)."""
        raise NotImplementedError

    def refresh(self) -> list[Response]:
        """Responses that the latest snapshot calls for, in PUSH_ORDER (R7)."""
        if self.profile is None:
            return []
        version, view = self._views.view(self.profile)
        out: list[Response] = []
        for type_url in contract.PUSH_ORDER:
            state = self.states.get(type_url)
            if state is None or state.phase is not Phase.WAITING:
                continue
            if state.synced == version and not state.dirty:
                continue
            response = self._respond(state, view, version)
            if response is not None:
                out.append(response)
        return out

    def _respond(self, state: TypeState, view: View, version: int) -> Response | None:
        candidates: set[str] | None = None
        if not state.dirty and state.synced >= 0:
            changed_shared = self._views.changes_since(state.synced, state.type_url)
            if changed_shared is not None:
                candidates = set(changed_shared) | view.node_names.get(state.type_url, set())
        changed, removed = state.diff(view, self.states, candidates)
        first = state.wildcard and not state.answered
        state.synced, state.dirty = version, False
        if not (changed or removed or first):
            return None
        if state.type_url == contract.TYPE_CLUSTER:
            self._rewarm(state, changed)
        state.record_sent(changed, removed)
        child = self.states.get(CHILD.get(state.type_url, ""))
        if child is not None:
            child.dirty = True  # R6: what it may keep has changed
        response = self._encode(state, changed, removed, version)
        state.answered = True
        if response is not None:
            state.step(Input.SEND)
        return response

    def _rewarm(self, clusters: TypeState, changed: Mapping[str, Entry]) -> None:
        """R8: the endpoints of the changed clusters the proxy held go out again after them."""
        endpoints = self.states.get(contract.TYPE_ENDPOINT)
        if endpoints is None:
            return
        names = {
            ref for name, entry in changed.items() if name in clusters.sent for ref in entry.refs
        }
        warming = names & endpoints.sent.keys()
        if warming:
            endpoints.resend(warming)

    def _learn_node(self, node: Any) -> None:
        if self.profile is not None:
            return
        if not node.id:
            raise ProtocolError("the first request carries no node id")
        self.node_id = node.id
        self.metadata = MessageToDict(node.metadata) if node.HasField("metadata") else {}
        self.profile = NodeProfile.from_metadata(node.id, self.metadata)

    def _state(self, type_url: str) -> TypeState:
        if type_url not in KNOWN_TYPES:
            raise ProtocolError(f"unknown type URL {type_url!r}")
        state = self.states.get(type_url)
        if state is None:
            state = self.states[type_url] = TypeState(type_url)
        return state

    def _on_reply(self, state: TypeState, nonce: str, error: Any, version: str, step: Step) -> bool:
        """Handle R1-R3 for a request carrying a nonce; False if it was stale."""
        if nonce != state.nonce:
            state.step(Input.STALE)
            return False
        if state.phase is Phase.WAITING:
            return True  # the reply was already counted; this one changes subscriptions
        if error is not None and error.message:
            nack = Nack(state.acked_version, nonce, state.version, error.message)
            state.nack = nack
            state.step(Input.NACK)
            step.nacks.append((state.type_url, nack))
        else:
            state.acked_version = version
            state.nack = None
            state.step(Input.ACK)
            step.acks.append(Ack(state.type_url, version, state.snapshot_version))
        return True

    def _next_nonce(self) -> str:
        self._nonce += 1
        return str(self._nonce)

    def _encode(
        self, state: TypeState, changed: dict[str, Entry], removed: set[str], version: int
    ) -> Response | None:
        raise NotImplementedError


class SotwStream(Stream):
    """State of the World.

    LDS and CDS responses carry every resource the proxy should hold; EDS
    and RDS responses carry only what changed, as the xDS protocol allows
    for those types (a resource left out of them is not removed).
    """

    def receive(self, request: Any) -> Step:
        step = Step()
        self._learn_node(request.node)
        state = self._state(request.type_url)
        if request.response_nonce:
            error = request.error_detail if request.HasField("error_detail") else None
            if not self._on_reply(state, request.response_nonce, error, request.version_info, step):
                return step
        else:
            state.step(Input.SUBSCRIBE)
        names = set(request.resource_names)
        wildcard = request.type_url in WILDCARD_TYPES and (not names or "*" in names)
        names.discard("*")
        if names != state.names or wildcard != state.wildcard:
            state.names, state.wildcard, state.dirty = names, wildcard, True
        step.responses.extend(self.refresh())
        return step

    def _encode(
        self, state: TypeState, changed: dict[str, Entry], removed: set[str], version: int
    ) -> Response | None:
        if state.type_url in WILDCARD_TYPES:
            entries = [state.sent[n] for n in sorted(state.sent)]
        elif changed:
            entries = [changed[n] for n in sorted(changed)]
        else:
            return None  # only removals, which State of the World cannot say for this type
        nonce = self._next_nonce()
        text = str(version)
        payload = wire.sotw_response(
            text,
            state.type_url,
            nonce,
            (e.sotw for e in entries),
            wire.control_plane(self._identifier, 6),
        )
        state.nonce, state.version, state.snapshot_version = nonce, text, version
        return Response(
            state.type_url,
            text,
            nonce,
            payload,
            tuple(e.name for e in entries),
            snapshot_version=version,
        )


class DeltaStream(Stream):
    """Delta (incremental): responses carry what changed and what was removed."""

    delta = True

    def receive(self, request: Any) -> Step:
        step = Step()
        self._learn_node(request.node)
        state = self._state(request.type_url)
        if request.response_nonce:
            error = request.error_detail if request.HasField("error_detail") else None
            if not self._on_reply(state, request.response_nonce, error, state.version, step):
                return step
        else:
            first = state.phase is Phase.IDLE
            state.step(Input.SUBSCRIBE)
            if first:
                state.known.update(request.initial_resource_versions)
                if request.type_url in WILDCARD_TYPES and not request.resource_names_subscribe:
                    state.wildcard = True
                state.dirty = True
        subscribe = set(request.resource_names_subscribe)
        unsubscribe = set(request.resource_names_unsubscribe)
        if subscribe or unsubscribe:
            state.dirty = True
        again = subscribe & state.names
        if again:
            state.resend(again)  # R8: asked for again, so sent again
        if "*" in subscribe:
            state.wildcard = True
        if "*" in unsubscribe:
            state.wildcard = False
        state.names |= subscribe - {"*"}
        state.names -= unsubscribe
        if unsubscribe:
            state.record_sent({}, unsubscribe)
        step.responses.extend(self.refresh())
        return step

    def _encode(
        self, state: TypeState, changed: dict[str, Entry], removed: set[str], version: int
    ) -> Response | None:
        nonce = self._next_nonce()
        text = str(version)
        payload = wire.delta_response(
            text,
            state.type_url,
            nonce,
            (changed[n].delta for n in sorted(changed)),
            sorted(removed),
            wire.control_plane(self._identifier, 7),
        )
        state.nonce, state.version, state.snapshot_version = nonce, text, version
        return Response(
            state.type_url,
            text,
            nonce,
            payload,
            tuple(sorted(changed)),
            tuple(sorted(removed)),
            version,
        )
