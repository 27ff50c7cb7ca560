"""`/config_dump`: the configuration pydp holds, shaped as Envoy's `envoy.admin.v3.ConfigDump`.

Built from the store's `dump()` with Envoy's own admin messages and printed
with protobuf's JSON mapping (proto field names, defaults left out), so the
result parses as Envoy's does: one entry per type under `configs`, in Envoy's
order (bootstrap, clusters, endpoints with `?include_eds`, listeners, scoped
routes, routes, secrets), active and warming resources with their
`version_info` and `last_updated`, and the last rejected update of a resource
as its `error_state`. `?resource=<field>` returns the items of that field
alone, each with its own `@type`, as Envoy does. Sensitive fields (private
keys, passwords) print as `[redacted]`, as in Envoy (`pydp.tls.redact`):
secrets are shown whole but for their keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from google.protobuf import any_pb2, json_format, timestamp_pb2

from api import contract
from pydp.tls.redact import redacted
from pydp.xds.store import DumpedResource, TypeDump

Message = Any
Shared = config_dump_shared_pb2


@dataclass(frozen=True, slots=True)
class Failure:
    """A resource the last update of its type was rejected for."""

    name: str
    message: Message | None  # the rejected resource, when it could be decoded
    details: str
    version: str
    time: float


def _timestamp(seconds: float) -> Message:
    stamp = timestamp_pb2.Timestamp()
    millis = int(seconds * 1000)
    stamp.seconds, stamp.nanos = divmod(millis, 1000)
    stamp.nanos *= 1_000_000
    return stamp


def _packed(message: Message) -> Message:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def _error_state(failure: Failure) -> Message:
    state = Shared.UpdateFailureState(details=failure.details, version_info=failure.version)
    state.last_update_attempt.CopyFrom(_timestamp(failure.time))
    if failure.message is not None:
        state.failed_configuration.CopyFrom(_packed(redacted(failure.message)))
    return state


def _by_type(dumps: Iterable[TypeDump]) -> dict[str, TypeDump]:
    return {d.type_url: d for d in dumps}


def _clusters(
    dump: TypeDump | None,
    static: Iterable[Message],
    failures: Mapping[str, Failure],
    started: float,
) -> Message:
    out = Shared.ClustersConfigDump(version_info=dump.version if dump else "")
    for cluster in static:
        entry = out.static_clusters.add(cluster=_packed(redacted(cluster)))
        entry.last_updated.CopyFrom(_timestamp(started))
    seen = set()
    for resource in dump.resources if dump else ():
        target = out.dynamic_warming_clusters if resource.warming else out.dynamic_active_clusters
        entry = target.add(
            version_info=resource.version, cluster=_packed(redacted(resource.message))
        )
        entry.last_updated.CopyFrom(_timestamp(resource.last_updated))
        if not resource.warming and resource.name in failures:
            entry.error_state.CopyFrom(_error_state(failures[resource.name]))
            seen.add(resource.name)
    for name, failure in sorted(failures.items()):
        if name not in seen:
            out.dynamic_active_clusters.add().error_state.CopyFrom(_error_state(failure))
    return out


def _endpoints(
    dump: TypeDump | None, clusters: TypeDump | None, static: Iterable[Message]
) -> Message:
    out = Shared.EndpointsConfigDump()
    for cluster in static:
        if cluster.HasField("load_assignment"):
            out.static_endpoint_configs.add(endpoint_config=_packed(cluster.load_assignment))
    assignments: dict[str, Message] = {}
    for resource in clusters.resources if clusters else ():
        if not resource.warming and resource.message.HasField("load_assignment"):
            cla = endpoint_pb2.ClusterLoadAssignment()
            cla.CopyFrom(resource.message.load_assignment)
            cla.cluster_name = cla.cluster_name or resource.name
            assignments[resource.name] = cla
    for resource in dump.resources if dump else ():
        assignments.setdefault(resource.name, resource.message)
    for name in sorted(assignments):
        out.dynamic_endpoint_configs.add(endpoint_config=_packed(assignments[name]))
    return out


def _listeners(dump: TypeDump | None, failures: Mapping[str, Failure]) -> Message:
    out = Shared.ListenersConfigDump(version_info=dump.version if dump else "")
    entries: dict[str, Message] = {}
    for resource in dump.resources if dump else ():
        entry = entries.get(resource.name)
        if entry is None:
            entry = entries[resource.name] = Shared.ListenersConfigDump.DynamicListener(
                name=resource.name
            )
        state = entry.warming_state if resource.warming else entry.active_state
        _fill_listener_state(state, resource)
    for name, failure in failures.items():
        entry = entries.setdefault(name, Shared.ListenersConfigDump.DynamicListener(name=name))
        entry.error_state.CopyFrom(_error_state(failure))
    for name in sorted(entries):
        out.dynamic_listeners.add().CopyFrom(entries[name])
    return out


def _fill_listener_state(state: Message, resource: DumpedResource) -> None:
    state.version_info = resource.version
    state.listener.CopyFrom(_packed(redacted(resource.message)))
    state.last_updated.CopyFrom(_timestamp(resource.last_updated))


def _routes(dump: TypeDump | None, failures: Mapping[str, Failure]) -> Message:
    out = Shared.RoutesConfigDump()
    for resource in dump.resources if dump else ():
        entry = out.dynamic_route_configs.add(
            version_info=resource.version, route_config=_packed(resource.message)
        )
        entry.last_updated.CopyFrom(_timestamp(resource.last_updated))
        if resource.name in failures:
            entry.error_state.CopyFrom(_error_state(failures[resource.name]))
    return out


def _secrets(dump: TypeDump | None) -> Message:
    out = config_dump_pb2.SecretsConfigDump()
    for resource in dump.resources if dump else ():
        target = out.dynamic_warming_secrets if resource.warming else out.dynamic_active_secrets
        entry = target.add(name=resource.name, version_info=resource.version)
        entry.secret.CopyFrom(_packed(redacted(resource.message)))
        entry.last_updated.CopyFrom(_timestamp(resource.last_updated))
    return out


def build_config_dump(
    dumps: Iterable[TypeDump],
    *,
    bootstrap: Message | None = None,
    started: float = 0.0,
    failures: Mapping[str, Mapping[str, Failure]] | None = None,
    include_eds: bool = False,
) -> Message:
    """The `envoy.admin.v3.ConfigDump` message for the store's state."""
    by_type = _by_type(dumps)
    failures = failures or {}
    static = list(bootstrap.static_resources.clusters) if bootstrap is not None else []
    configs: list[Message] = []
    if bootstrap is not None:
        boot = config_dump_pb2.BootstrapConfigDump(bootstrap=redacted(bootstrap))
        boot.last_updated.CopyFrom(_timestamp(started))
        configs.append(boot)
    clusters = by_type.get(contract.TYPE_CLUSTER)
    configs.append(_clusters(clusters, static, failures.get(contract.TYPE_CLUSTER, {}), started))
    if include_eds:
        configs.append(_endpoints(by_type.get(contract.TYPE_ENDPOINT), clusters, static))
    configs.append(
        _listeners(by_type.get(contract.TYPE_LISTENER), failures.get(contract.TYPE_LISTENER, {}))
    )
    configs.append(Shared.ScopedRoutesConfigDump())
    configs.append(_routes(by_type.get(contract.TYPE_ROUTE), failures.get(contract.TYPE_ROUTE, {})))
    configs.append(_secrets(by_type.get(contract.TYPE_SECRET)))
    out = config_dump_pb2.ConfigDump()
    out.configs.extend(_packed(c) for c in configs)
    return out


class UnknownResource(LookupError):
    """`?resource=` names no repeated field of any config."""


def to_json(dump: Message, resource: str | None = None) -> dict[str, Any]:
    """Envoy's JSON for a ConfigDump, or for one of its repeated fields (`?resource=`)."""
    if resource is None:
        return _dict(dump)
    for packed in dump.configs:
        config = _unpacked(packed)
        descriptor = config.DESCRIPTOR.fields_by_name.get(resource)
        if descriptor is None or not descriptor.is_repeated:
            continue
        return {"configs": [_dict(_packed(item)) for item in getattr(config, resource)]}
    raise UnknownResource(resource)


def _unpacked(packed: Message) -> Message:
    for message_class in (
        config_dump_pb2.BootstrapConfigDump,
        Shared.ClustersConfigDump,
        Shared.EndpointsConfigDump,
        Shared.ListenersConfigDump,
        Shared.ScopedRoutesConfigDump,
        Shared.RoutesConfigDump,
        config_dump_pb2.SecretsConfigDump,
    ):
        if packed.Is(message_class.DESCRIPTOR):
            message = message_class()
            packed.Unpack(message)
            return message
    raise TypeError(packed.type_url)


def _dict(message: Message) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result
