"""The text and JSON of `/clusters`, `/listeners` and `/server_info`, as Envoy prints them.

Pure functions of what they are given. Per-host connection and request
counters come from the caller (`HostCounters`), since the connection pools
that count them live in the data path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from envoy.admin.v3 import clusters_pb2, listeners_pb2, metrics_pb2, server_info_pb2
from envoy.config.core.v3 import health_check_pb2
from google.protobuf import duration_pb2, json_format

from pydp.upstream import UpstreamCluster
from pydp.upstream.breakers import RoutingPriority
from pydp.upstream.hosts import EdsHealth, Host

Message = Any
HOST_COUNTERS = ("cx_connect_fail", "cx_total", "rq_error", "rq_success", "rq_timeout", "rq_total")
HOST_GAUGES = ("cx_active", "rq_active", "rq_pending_active")
HostCounters = Callable[[str, Host], Mapping[str, int]]

_EDS_HEALTH = {
    EdsHealth.HEALTHY: health_check_pb2.HEALTHY,
    EdsHealth.DEGRADED: health_check_pb2.DEGRADED,
    EdsHealth.UNHEALTHY: health_check_pb2.UNHEALTHY,
    EdsHealth.DRAINING: health_check_pb2.DRAINING,
}


@dataclass(frozen=True, slots=True)
class ClusterEntry:
    """One cluster as `/clusters` lists it."""

    name: str
    cluster: UpstreamCluster
    added_via_api: bool = True


def _no_counters(cluster: str, host: Host) -> Mapping[str, int]:
    return {}


def _host_values(entry: ClusterEntry, host: Host, counters: HostCounters) -> dict[str, int]:
    values = dict.fromkeys(HOST_COUNTERS + HOST_GAUGES, 0)
    values["rq_active"] = host.active_requests
    values.update(counters(entry.name, host))
    return values


def health_flags(host: Host) -> str:
    """Envoy's `health_flags`: `healthy`, or `/`-prefixed reasons."""
    flags = ""
    if host.ejected:
        flags += "/failed_outlier_check"
    eds = host.endpoint.health
    if eds is EdsHealth.UNHEALTHY:
        flags += "/failed_eds_health"
    elif eds is EdsHealth.DEGRADED:
        flags += "/degraded_eds_health"
    elif eds is EdsHealth.DRAINING:
        flags += "/eds_status_draining"
    return flags or "healthy"


def clusters_text(entries: Iterable[ClusterEntry], counters: HostCounters = _no_counters) -> str:
    """Envoy's `/clusters` text: `name::field::value` and `name::host::stat::value` lines."""
    lines: list[str] = []
    for entry in entries:
        name, config = entry.name, entry.cluster.config
        lines.append(f"{name}::observability_name::{config.alt_stat_name or name}")
        for priority in (RoutingPriority.DEFAULT, RoutingPriority.HIGH):
            t = config.breakers.for_priority(priority)
            for field in ("max_connections", "max_pending_requests", "max_requests", "max_retries"):
                lines.append(f"{name}::{priority.value}_priority::{field}::{getattr(t, field)}")
        lines.append(f"{name}::added_via_api::{str(entry.added_via_api).lower()}")
        if config.eds_service_name:
            lines.append(f"{name}::eds_service_name::{config.eds_service_name}")
        for host in entry.cluster.hosts.values():
            prefix = f"{name}::{host.label}::"
            values = _host_values(entry, host, counters)
            lines.extend(f"{prefix}{stat}::{values[stat]}" for stat in sorted(values))
            locality = host.locality
            lines += [
                f"{prefix}hostname::{host.endpoint.hostname}",
                f"{prefix}health_flags::{health_flags(host)}",
                f"{prefix}weight::{host.weight}",
                f"{prefix}region::{locality.region}",
                f"{prefix}zone::{locality.zone}",
                f"{prefix}sub_zone::{locality.sub_zone}",
                f"{prefix}canary::false",
                f"{prefix}priority::{host.priority}",
                f"{prefix}success_rate::-1",
                f"{prefix}local_origin_success_rate::-1",
            ]
    return "".join(line + "\n" for line in lines)


def clusters_json(
    entries: Iterable[ClusterEntry], counters: HostCounters = _no_counters
) -> dict[str, Any]:
    """Envoy's `/clusters?format=json` (`envoy.admin.v3.Clusters`)."""
    out = clusters_pb2.Clusters()
    for entry in entries:
        config = entry.cluster.config
        status = out.cluster_statuses.add(
            name=entry.name,
            added_via_api=entry.added_via_api,
            observability_name=config.alt_stat_name or entry.name,
            eds_service_name=config.eds_service_name,
        )
        for priority in (RoutingPriority.DEFAULT, RoutingPriority.HIGH):
            t = config.breakers.for_priority(priority)
            threshold = status.circuit_breakers.thresholds.add(
                priority=0 if priority is RoutingPriority.DEFAULT else 1
            )
            threshold.max_connections.value = t.max_connections
            threshold.max_pending_requests.value = t.max_pending_requests
            threshold.max_requests.value = t.max_requests
            threshold.max_retries.value = t.max_retries
        for host in entry.cluster.hosts.values():
            _host_status(status.host_statuses.add(), entry, host, counters)
    return _dict(out)


def _host_status(status: Message, entry: ClusterEntry, host: Host, counters: HostCounters) -> None:
    status.address.socket_address.address = host.address
    status.address.socket_address.port_value = host.port
    values = _host_values(entry, host, counters)
    for name in HOST_COUNTERS:
        status.stats.add(name=name, value=values[name])
    for name in HOST_GAUGES:
        status.stats.add(name=name, value=values[name], type=metrics_pb2.SimpleMetric.GAUGE)
    status.health_status.eds_health_status = _EDS_HEALTH[host.endpoint.health]
    status.health_status.failed_outlier_check = host.ejected
    status.weight = host.weight
    status.hostname = host.endpoint.hostname
    status.priority = host.priority
    status.locality.region = host.locality.region
    status.locality.zone = host.locality.zone
    status.locality.sub_zone = host.locality.sub_zone


@dataclass(frozen=True, slots=True)
class ListenerEntry:
    name: str
    address: str
    port: int


def _label(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def listeners_text(entries: Iterable[ListenerEntry]) -> str:
    """Envoy's `/listeners`: `name::address:port` per line."""
    return "".join(f"{e.name}::{_label(e.address, e.port)}\n" for e in entries)


def listeners_json(entries: Iterable[ListenerEntry]) -> dict[str, Any]:
    out = listeners_pb2.Listeners()
    for e in entries:
        status = out.listener_statuses.add(name=e.name)
        status.local_address.socket_address.address = e.address
        status.local_address.socket_address.port_value = e.port
    return _dict(out)


def server_info(
    *,
    version: str,
    state: str,
    uptime: float,
    node: Message,
    concurrency: int,
    config_path: str,
    log_level: str,
    drain_time: float,
) -> dict[str, Any]:
    """Envoy's `/server_info` (`envoy.admin.v3.ServerInfo`)."""
    info = server_info_pb2.ServerInfo(version=version, hot_restart_version="disabled")
    info.state = server_info_pb2.ServerInfo.State.Value(state)
    info.uptime_current_epoch.CopyFrom(_duration(uptime))
    info.uptime_all_epochs.CopyFrom(_duration(uptime))
    options = info.command_line_options
    options.concurrency = concurrency
    options.config_path = config_path
    options.log_level = log_level
    options.mode = server_info_pb2.CommandLineOptions.Serve
    options.drain_time.CopyFrom(_duration(drain_time))
    options.disable_hot_restart = True
    info.node.CopyFrom(node)
    result: dict[str, Any] = json_format.MessageToDict(
        info, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return result


def _duration(seconds: float) -> Message:
    return duration_pb2.Duration(seconds=int(seconds))


def _dict(message: Message) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result
