"""Delta (incremental) ADS bookkeeping for one client, without I/O.

Theory of operation. The same calls as `sotw.SotwState` (`connect`, `receive`,
`ack`, `nack`, `set_names`), but requests carry changes rather than the whole
subscription, responses carry only added, changed and removed resources, and
versions are per resource.

Rules, per type URL:

| event                 | state change                    | request sent                        |
|-----------------------|---------------------------------|-------------------------------------|
| stream opens          | nonce := ""                     | if interested: subscribe = every    |
|                       |                                 | name (wildcard: none), initial_     |
|                       |                                 | resource_versions = versions held   |
| response received     | nonce := response.nonce         | none yet: the caller validates      |
| update accepted (ACK) | versions += its resources,      | response_nonce                      |
|                       | versions -= removed_resources   |                                     |
| update rejected       | none                            | response_nonce, error_detail        |
| names change          | names := new; dropped names'    | subscribe = added names,            |
|                       | versions are forgotten          | unsubscribe = dropped names         |
| ACK/NACK of a stale   | none                            | none                                |
| nonce (a newer one,   |                                 |                                     |
| or a new stream)      |                                 |                                     |

Listener and Cluster subscribe as wildcards in the legacy way (an initial
request naming nothing). A name the server removes stays subscribed, as in
Envoy: it may come back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from envoy.service.discovery.v3 import discovery_pb2

from pydp.errors import ConfigError
from pydp.xds.decode import (
    Message,
    Resource,
    Update,
    decode_delta_resource,
    nack_status,
    short_type,
)
from pydp.xds.sotw import WILDCARD_TYPES


@dataclass(slots=True)
class _TypeState:
    wildcard: bool
    names: frozenset[str] = frozenset()
    versions: dict[str, str] = field(default_factory=dict)
    nonce: str = ""


class DeltaState:
    """The ADS Delta protocol state of one client."""

    def __init__(
        self, node: Message, type_urls: Iterable[str], *, node_on_first_message_only: bool = True
    ) -> None:
        self._node = node
        self._node_once = node_on_first_message_only
        self._first = True
        self._types = {t: _TypeState(wildcard=t in WILDCARD_TYPES) for t in type_urls}

    def connect(self) -> list[Message]:
        """A new stream: resubscribe, telling the server which versions are already here."""
        self._first = True
        out = []
        for type_url, state in self._types.items():
            state.nonce = ""
            if not (state.wildcard or state.names):
                continue
            request = discovery_pb2.DeltaDiscoveryRequest(
                type_url=type_url,
                resource_names_subscribe=sorted(state.names),
                initial_resource_versions=state.versions,
            )
            out.append(self._with_node(request))
        return out

    def receive(self, response: Message) -> Update:
        """Decode a response; raises `ConfigError` if it must be NACKed."""
        type_url = response.type_url
        state = self._types.get(type_url)
        if state is None:
            raise ConfigError(
                f"DeltaDiscoveryResponse nonce {response.nonce!r}",
                "type_url",
                f"{type_url!r} is not a type this client subscribes to",
            )
        state.nonce = response.nonce
        resources: dict[str, Resource] = {}
        for i, wrapper in enumerate(response.resources):
            resource = decode_delta_resource(wrapper, type_url, i)
            if resource is None:
                continue
            if resource.name in resources:
                raise ConfigError(
                    f"{short_type(type_url)} {resource.name}", "name", "appears twice"
                )
            if state.wildcard or resource.name in state.names:
                resources[resource.name] = resource
        removed = frozenset(response.removed_resources)
        both = removed & resources.keys()
        if both:
            raise ConfigError(
                f"{short_type(type_url)} {sorted(both)[0]}",
                "removed_resources",
                "also listed as added",
            )
        return Update(
            type_url=type_url,
            nonce=response.nonce,
            version=response.system_version_info,
            resources=resources,
            removed=removed,
        )

    def ack(self, update: Update) -> list[Message]:
        """The ACK of an update now in force (nothing if its nonce is stale)."""
        state = self._types[update.type_url]
        if update.nonce != state.nonce:
            return []
        for name, resource in update.resources.items():
            state.versions[name] = resource.version
        for name in update.removed:
            state.versions.pop(name, None)
        request = discovery_pb2.DeltaDiscoveryRequest(
            type_url=update.type_url, response_nonce=update.nonce
        )
        return [self._with_node(request)]

    def nack(self, type_url: str, nonce: str, message: str) -> list[Message]:
        """The NACK of a rejected response."""
        state = self._types.get(type_url)
        if state is not None and nonce != state.nonce:
            return []
        request = discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, response_nonce=nonce)
        request.error_detail.CopyFrom(nack_status(message))
        return [self._with_node(request)]

    def set_names(self, type_url: str, names: Iterable[str]) -> list[Message]:
        """Change the subscription of a non-wildcard type; a request if it changed."""
        state = self._types.get(type_url)
        if state is None or state.wildcard:
            return []
        new = frozenset(names)
        added, dropped = new - state.names, state.names - new
        if not added and not dropped:
            return []
        state.names = new
        for name in dropped:
            state.versions.pop(name, None)
        request = discovery_pb2.DeltaDiscoveryRequest(
            type_url=type_url,
            resource_names_subscribe=sorted(added),
            resource_names_unsubscribe=sorted(dropped),
        )
        return [self._with_node(request)]

    def names(self, type_url: str) -> frozenset[str]:
        return self._types[type_url].names

    def versions(self, type_url: str) -> dict[str, str]:
        """The version of each resource of a type accepted so far."""
        return dict(self._types[type_url].versions)

    def nonce(self, type_url: str) -> str:
        return self._types[type_url].nonce

    def _with_node(self, request: Message) -> Message:
        if self._first or not self._node_once:
            request.node.CopyFrom(self._node)
        self._first = False
        return request
