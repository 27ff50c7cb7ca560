"""Turning the `Any`s of a discovery response into typed resources.

Both protocol variants hand the rest of the client an `Update`: the decoded
resources of one response, each with its name, version and the serialized
bytes it came from (the store compares those bytes to skip unchanged
resources, and shows them in `/config_dump`). Anything that cannot be decoded
raises `ConfigError`, which the caller turns into a NACK.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2
from google.protobuf import descriptor_pool, message_factory
from google.rpc import status_pb2

from api import contract
from pydp.errors import ConfigError

Message = Any  # an xds-protos message (the package ships no type stubs)

TYPE_PREFIX = "type.googleapis.com/"
TYPE_RESOURCE_WRAPPER = TYPE_PREFIX + "envoy.service.discovery.v3.Resource"

# Envoy reports a rejected update with gRPC code 13 (INTERNAL) and truncates the message.
NACK_CODE = 13
MAX_NACK_MESSAGE = 4096

# The resource types pydp knows, and the field that names a resource of each.
MESSAGE_CLASSES: dict[str, Any] = {
    contract.TYPE_LISTENER: listener_pb2.Listener,
    contract.TYPE_ROUTE: route_pb2.RouteConfiguration,
    contract.TYPE_CLUSTER: cluster_pb2.Cluster,
    contract.TYPE_ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
    contract.TYPE_SECRET: secret_pb2.Secret,
}
_NAME_FIELD = {contract.TYPE_ENDPOINT: "cluster_name"}

# Imported for their registration in the descriptor pool: resources embed them in `Any`s.
_REGISTERED = (http_connection_manager_pb2, tls_pb2)


@dataclass(frozen=True, slots=True)
class Resource:
    """One decoded resource of a response."""

    name: str
    version: str
    message: Message
    raw: bytes


@dataclass(frozen=True, slots=True)
class Update:
    """The decoded content of one response, before the store accepts or rejects it.

    `complete` is true when the response lists every resource of its type
    (State of the World for Listener and Cluster), so that a resource it does
    not list has been removed.
    """

    type_url: str
    nonce: str
    version: str
    resources: Mapping[str, Resource]
    removed: frozenset[str] = frozenset()
    complete: bool = False


def short_type(type_url: str) -> str:
    """`Cluster` for the Cluster type URL: the word Envoy's messages use."""
    return type_url.rsplit(".", 1)[-1]


def message_class(type_url: str) -> Any:
    """The generated class for a type URL, from those registered in the default pool."""
    known = MESSAGE_CLASSES.get(type_url)
    if known is not None:
        return known
    if not type_url.startswith(TYPE_PREFIX):
        raise KeyError(type_url)
    descriptor = descriptor_pool.Default().FindMessageTypeByName(type_url[len(TYPE_PREFIX) :])
    return message_factory.GetMessageClass(descriptor)


def unpack(packed: Any, type_url: str, where: str | Callable[[], str]) -> Message:
    """Decode `packed` (an `Any`), which must hold a `type_url`.

    `where` names it in errors (a callable, to build the name only on error).
    """
    if packed.type_url != type_url:
        raise ConfigError(
            _text(where),
            "type_url",
            f"{packed.type_url!r} does not match the expected {type_url!r}",
        )
    try:
        return message_class(type_url).FromString(packed.value)
    except KeyError:
        raise ConfigError(_text(where), "type_url", f"unknown type {type_url!r}") from None
    except Exception as exc:  # protobuf's DecodeError is not a stable public type
        raise ConfigError(_text(where), "value", f"does not decode as {type_url}: {exc}") from exc


def _text(where: str | Callable[[], str]) -> str:
    return where if isinstance(where, str) else where()


def name_of(type_url: str, message: Message) -> str:
    """The resource name a message carries (`cluster_name` for endpoints, else `name`)."""
    name: str = getattr(message, _NAME_FIELD.get(type_url, "name"), "")
    return name


def decode_sotw_resource(packed: Any, type_url: str, version: str, index: int) -> Resource | None:
    """One resource of a State of the World response; None for a TTL heartbeat."""

    def where() -> str:
        return f"{short_type(type_url)} resources[{index}]"

    if packed.type_url == TYPE_RESOURCE_WRAPPER:
        wrapper = unpack(packed, TYPE_RESOURCE_WRAPPER, where)
        if not wrapper.HasField("resource"):
            return None
        packed = wrapper.resource
    message = unpack(packed, type_url, where)
    name = name_of(type_url, message)
    if not name:
        raise ConfigError(where(), _NAME_FIELD.get(type_url, "name"), "is empty")
    return Resource(name, version, message, packed.value)


def decode_delta_resource(wrapper: Any, type_url: str, index: int) -> Resource | None:
    """One resource of a Delta response; None for a TTL heartbeat (no `resource`)."""

    def where() -> str:
        return f"{short_type(type_url)} {wrapper.name or f'resources[{index}]'}"

    if not wrapper.HasField("resource"):
        return None
    message = unpack(wrapper.resource, type_url, where)
    name = wrapper.name or name_of(type_url, message)
    if not name:
        raise ConfigError(where(), "name", "is empty")
    return Resource(name, wrapper.version, message, wrapper.resource.value)


def nack_status(message: str) -> Any:
    """The `error_detail` of a NACK, as Envoy fills it (code INTERNAL, message truncated)."""
    if len(message.encode()) > MAX_NACK_MESSAGE:
        message = message.encode()[:MAX_NACK_MESSAGE].decode(errors="ignore") + "...(truncated)"
    return status_pb2.Status(code=NACK_CODE, message=message)
