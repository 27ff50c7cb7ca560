"""The two kinds of xDS stream, State of the World and Delta, without I/O.

Both follow the rules in `state.py`. A stream learns its node from the first
request, asks `views` for the current snapshot's view of that node, and
answers with encoded responses. `refresh()` is called when a new snapshot is
published and returns what must be pushed (often nothing: R5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.json_format import MessageToDict

from api import contract
from api.contract import NodeProfile
from xds_server import wire
from xds_server.protocol.state import (
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

ViewSource = Callable[[NodeProfile], tuple[int, View]]
KNOWN_TYPES = frozenset(contract.PUSH_ORDER)


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
        snapshot_version, view = self._views(self.profile)
        out: list[Response] = []
        for type_url in contract.PUSH_ORDER:
            state = self.states.get(type_url)
            if state is not None and state.phase is Phase.WAITING:
                response = self._maybe_respond(state, view, snapshot_version)
                if response is not None:
                    out.append(response)
        return out

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

    def _maybe_respond(
        self, state: TypeState, view: View, snapshot_version: int
    ) -> Response | None:
        desired = state.desired(view, self.states)
        response = self._encode(state, desired, snapshot_version)
        if response is None:
            return None
        state.step(Input.SEND)
        return response

    def _next_nonce(self) -> str:
        self._nonce += 1
        return str(self._nonce)

    def _encode(
        self, state: TypeState, desired: dict[str, Entry], snapshot_version: int
    ) -> Response | None:
        raise NotImplementedError


def content_version(entries: Iterable[Entry]) -> str:
    """A version string that changes exactly when the content changes."""
    h = hashlib.blake2b(digest_size=8)
    for e in sorted(entries, key=lambda e: e.name):
        h.update(e.name.encode())
        h.update(e.version.encode())
    return h.hexdigest()


class SotwStream(Stream):
    """State of the World: every response carries the whole subscribed set."""

    def receive(self, request: Any) -> Step:
        step = Step()
        self._learn_node(request.node)
        state = self._state(request.type_url)
        names = set(request.resource_names)
        if request.response_nonce:
            if not self._on_reply(
                state,
                request.response_nonce,
                request.error_detail if request.HasField("error_detail") else None,
                request.version_info,
                step,
            ):
                return step
        else:
            state.step(Input.SUBSCRIBE)
        state.names = names - {"*"}
        state.wildcard = request.type_url in WILDCARD_TYPES and (not names or "*" in names)
        step.responses.extend(self.refresh())
        return step

    def _encode(
        self, state: TypeState, desired: dict[str, Entry], snapshot_version: int
    ) -> Response | None:
        first = state.wildcard and not state.answered
        if (
            not first
            and desired.keys() == state.sent.keys()
            and all(
                desired[n] is state.sent[n] or desired[n].version == state.sent[n].version
                for n in desired
            )
        ):
            return None
        entries = [desired[n] for n in sorted(desired)]
        version = content_version(entries)
        nonce = self._next_nonce()
        payload = wire.sotw_response(
            version,
            state.type_url,
            nonce,
            (e.sotw for e in entries),
            wire.control_plane(self._identifier, 6),
        )
        state.sent = desired
        state.answered = True
        state.nonce, state.version, state.snapshot_version = nonce, version, snapshot_version
        return Response(
            state.type_url,
            version,
            nonce,
            payload,
            tuple(sorted(desired)),
            snapshot_version=snapshot_version,
        )


class DeltaStream(Stream):
    """Delta (incremental): responses carry what changed and what was removed."""

    delta = True

    def receive(self, request: Any) -> Step:
        step = Step()
        self._learn_node(request.node)
        state = self._state(request.type_url)
        if request.response_nonce:
            if not self._on_reply(
                state,
                request.response_nonce,
                request.error_detail if request.HasField("error_detail") else None,
                state.version,
                step,
            ):
                return step
        else:
            first = state.phase is Phase.IDLE
            state.step(Input.SUBSCRIBE)
            if first:
                state.known.update(request.initial_resource_versions)
                if request.type_url in WILDCARD_TYPES and not request.resource_names_subscribe:
                    state.wildcard = True
        subscribe = set(request.resource_names_subscribe)
        unsubscribe = set(request.resource_names_unsubscribe)
        if "*" in subscribe:
            state.wildcard = True
        if "*" in unsubscribe:
            state.wildcard = False
        state.names |= subscribe - {"*"}
        state.names -= unsubscribe
        for name in unsubscribe:
            state.known.pop(name, None)
            state.sent.pop(name, None)
        step.responses.extend(self.refresh())
        return step

    def _encode(
        self, state: TypeState, desired: dict[str, Entry], snapshot_version: int
    ) -> Response | None:
        first = state.wildcard and not state.answered
        changed = [desired[n] for n in sorted(desired) if state.known.get(n) != desired[n].version]
        removed = sorted(n for n in state.known if n not in desired)
        if not changed and not removed and not first:
            return None
        nonce = self._next_nonce()
        version = str(snapshot_version)
        payload = wire.delta_response(
            version,
            state.type_url,
            nonce,
            (e.delta for e in changed),
            removed,
            wire.control_plane(self._identifier, 7),
        )
        state.sent = desired
        state.known = {n: e.version for n, e in desired.items()}
        state.answered = True
        state.nonce, state.version, state.snapshot_version = nonce, version, snapshot_version
        return Response(
            state.type_url,
            version,
            nonce,
            payload,
            tuple(e.name for e in changed),
            tuple(removed),
            snapshot_version,
        )
