"""One ADS client's protocol and configuration, joined, still without I/O.

Theory of operation. For each response: decode it (the protocol state),
validate and compile it (the store, through the caller's compilers), then ACK
it, or NACK it with the `ConfigError`'s message if either step failed; after
an ACK, the names the accepted clusters and listeners reference become the
EDS, RDS and SDS subscriptions, so new names are requested and unneeded ones
dropped. The transport adapter only moves bytes: `connect()` on every new
stream, `handle(response)` for every response, and it sends what they return.
"""

from __future__ import annotations

import logging
from typing import Protocol

from api import contract
from pydp.errors import ConfigError
from pydp.xds.decode import Message, Update
from pydp.xds.delta import DeltaState
from pydp.xds.sotw import WILDCARD_TYPES, SotwState
from pydp.xds.store import ConfigStore

log = logging.getLogger(__name__)

TYPES = contract.PUSH_ORDER  # clusters first, as Envoy asks for them
REFERENCED_TYPES = tuple(t for t in TYPES if t not in WILDCARD_TYPES)


class ProtocolState(Protocol):
    """What `SotwState` and `DeltaState` have in common."""

    def connect(self) -> list[Message]: ...
    def receive(self, response: Message) -> Update: ...
    def ack(self, update: Update) -> list[Message]: ...
    def nack(self, type_url: str, nonce: str, message: str) -> list[Message]: ...
    def set_names(self, type_url: str, names: frozenset[str]) -> list[Message]: ...


class AdsSession:
    """Feeds responses through the protocol state and the store; returns requests to send."""

    def __init__(
        self, node: Message, store: ConfigStore, *, delta: bool, node_on_first_message_only: bool
    ) -> None:
        state_class = DeltaState if delta else SotwState
        self.delta = delta
        self.store = store
        self.state: ProtocolState = state_class(
            node, TYPES, node_on_first_message_only=node_on_first_message_only
        )
        self.acks = 0
        self.nacks = 0

    def connect(self) -> list[Message]:
        return self.state.connect()

    def handle(self, response: Message) -> list[Message]:
        try:
            update = self.state.receive(response)
            self.store.apply(update)
        except ConfigError as exc:
            self.nacks += 1
            version = response.system_version_info if self.delta else response.version_info
            log.warning(
                "xDS: rejected %s %s: %s", response.type_url, version or response.nonce, exc
            )
            self.store.reject(response.type_url, version, response.nonce, str(exc))
            return self.state.nack(response.type_url, response.nonce, str(exc))
        self.acks += 1
        log.debug(
            "xDS: accepted %s %s: %d resources, %d removed",
            update.type_url,
            update.version or update.nonce,
            len(update.resources),
            len(update.removed),
        )
        out = self.state.ack(update)
        for type_url in REFERENCED_TYPES:
            out += self.state.set_names(type_url, self.store.wanted(type_url))
        return out
