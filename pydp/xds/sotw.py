"""State of the World ADS bookkeeping for one client, without I/O.

Theory of operation. The caller owns the stream. It calls `connect()` when a
stream opens and sends what it returns; `receive(response)` for each response,
which decodes it into an `Update` (or raises `ConfigError`); then `ack(update)`
once the update is in force or `nack(type_url, nonce, message)` if it was
rejected; and `set_names(type_url, names)` whenever the resources it needs
change. Each call returns the requests to send, so the whole protocol can be
driven in memory.

Rules, per type URL (SotW sends the whole subscription in every request):

| event                  | state change               | request sent (names = subscription)        |
|------------------------|----------------------------|--------------------------------------------|
| stream opens           | nonce := ""                | if interested: version = last accepted     |
| response received      | nonce := response.nonce    | none yet: the caller validates first       |
| update accepted (ACK)  | version := response's      | version = response's, nonce = response's   |
| update rejected (NACK) | none                       | version = last accepted, nonce, error      |
| names change           | names := new               | version = last accepted, nonce = last seen |
| ACK/NACK of a stale    | none                       | none                                       |
| nonce (a newer one, or a new stream)                |                                            |

Listener and Cluster are wildcard: their subscription is empty (all), they are
always of interest, and their responses are complete. Other types are of
interest once they have had a name on this stream; dropping the last name sends
an empty subscription, as Envoy does. Resources a response carries for names
not subscribed to are ignored. The node goes in the first request of a stream
only when `node_on_first_message_only`, else in every request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from envoy.service.discovery.v3 import discovery_pb2

from api import contract
from pydp.errors import ConfigError
from pydp.xds.decode import Message, Resource, Update, decode_sotw_resource, nack_status, short_type

WILDCARD_TYPES = frozenset({contract.TYPE_LISTENER, contract.TYPE_CLUSTER})


@dataclass(slots=True)
class _TypeState:
    wildcard: bool
    names: frozenset[str] = frozenset()
    version: str = ""
    nonce: str = ""
    sent: bool = False  # a request for this type went out on the current stream


class SotwState:
    """The ADS State of the World protocol state of one client."""

    def __init__(
        self, node: Message, type_urls: Iterable[str], *, node_on_first_message_only: bool = True
    ) -> None:
        self._node = node
        self._node_once = node_on_first_message_only
        self._first = True
        self._types = {t: _TypeState(wildcard=t in WILDCARD_TYPES) for t in type_urls}

    def connect(self) -> list[Message]:
        """A new stream: forget its nonces and resend every subscription with its version."""
        self._first = True
        out = []
        for type_url, state in self._types.items():
            state.nonce = ""
            state.sent = False
            if state.wildcard or state.names:
                out.append(self._request(type_url))
        return out

    def receive(self, response: Message) -> Update:
        """Decode a response; raises `ConfigError` if it must be NACKed."""
        type_url = response.type_url
        state = self._types.get(type_url)
        if state is None:
            raise ConfigError(
                f"DiscoveryResponse version {response.version_info!r}",
                "type_url",
                f"{type_url!r} is not a type this client subscribes to",
            )
        state.nonce = response.nonce
        resources: dict[str, Resource] = {}
        for i, packed in enumerate(response.resources):
            resource = decode_sotw_resource(packed, type_url, response.version_info, i)
            if resource is None:
                continue
            if resource.name in resources:
                raise ConfigError(
                    f"{short_type(type_url)} {resource.name}", "name", "appears twice in a response"
                )
            if state.wildcard or resource.name in state.names:
                resources[resource.name] = resource
        return Update(
            type_url=type_url,
            nonce=response.nonce,
            version=response.version_info,
            resources=resources,
            complete=state.wildcard,
        )

    def ack(self, update: Update) -> list[Message]:
        """The ACK of an update now in force (nothing if its nonce is stale)."""
        state = self._types[update.type_url]
        if update.nonce != state.nonce:
            return []
        state.version = update.version
        return [self._request(update.type_url)]

    def nack(self, type_url: str, nonce: str, message: str) -> list[Message]:
        """The NACK of a rejected response: the last accepted version and the reason."""
        state = self._types.get(type_url)
        if state is None:
            request = discovery_pb2.DiscoveryRequest(type_url=type_url, response_nonce=nonce)
            request.error_detail.CopyFrom(nack_status(message))
            return [self._with_node(request)]
        if nonce != state.nonce:
            return []
        request = self._request(type_url)
        request.error_detail.CopyFrom(nack_status(message))
        return [request]

    def set_names(self, type_url: str, names: Iterable[str]) -> list[Message]:
        """Change the subscription of a non-wildcard type; a request if it changed."""
        state = self._types.get(type_url)
        if state is None or state.wildcard:
            return []
        new = frozenset(names)
        if new == state.names:
            return []
        state.names = new
        if not new and not state.sent:
            return []
        return [self._request(type_url)]

    def names(self, type_url: str) -> frozenset[str]:
        return self._types[type_url].names

    def version(self, type_url: str) -> str:
        """The last accepted version of a type ("" before any)."""
        return self._types[type_url].version

    def nonce(self, type_url: str) -> str:
        """The nonce of the last response of a type on the current stream."""
        return self._types[type_url].nonce

    def _request(self, type_url: str) -> Message:
        state = self._types[type_url]
        state.sent = True
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            version_info=state.version,
            response_nonce=state.nonce,
            resource_names=sorted(state.names),
        )
        return self._with_node(request)

    def _with_node(self, request: Message) -> Message:
        if self._first or not self._node_once:
            request.node.CopyFrom(self._node)
        self._first = False
        return request
