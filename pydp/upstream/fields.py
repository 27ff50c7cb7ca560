"""Helpers for compiling Envoy protos: reading wrappers and durations, refusing unknown fields.

Compilation is strict: every field that is set must be one this package knows how
to honour (or knows to be without effect here); anything else raises
`ConfigError` naming the field, so that the xDS client NACKs it instead of pydp
silently behaving differently from Envoy.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydp.errors import ConfigError


def reject_unknown(msg: Any, allowed: Collection[str], resource: str, prefix: str = "") -> None:
    """Raise ConfigError for the first set field of `msg` not in `allowed`."""
    for descriptor, _ in msg.ListFields():
        if descriptor.name not in allowed:
            raise ConfigError(resource, prefix + descriptor.name, "field is not supported by pydp")


def wrapped(msg: Any, field: str, default: Any) -> Any:
    """The value of a google.protobuf wrapper field, or `default` when unset."""
    return getattr(msg, field).value if msg.HasField(field) else default


def seconds(duration: Any) -> float:
    return float(duration.seconds) + float(duration.nanos) / 1e9


def duration_or(msg: Any, field: str, default: float | None) -> float | None:
    """A Duration field in seconds, or `default` when unset."""
    return seconds(getattr(msg, field)) if msg.HasField(field) else default


def duration_ms(msg: Any, field: str, default_ms: int) -> int:
    """A Duration field in whole milliseconds (Envoy's PROTOBUF_GET_MS_OR_DEFAULT)."""
    if not msg.HasField(field):
        return default_ms
    d = getattr(msg, field)
    return int(d.seconds) * 1000 + int(d.nanos) // 1_000_000


def percent(msg: Any, field: str, default: float, resource: str, path: str) -> float:
    """A `type.v3.Percent` field (0-100), or `default` when unset."""
    if not msg.HasField(field):
        return default
    value = float(getattr(msg, field).value)
    if not 0.0 <= value <= 100.0:
        raise ConfigError(resource, path, f"percent must be between 0 and 100, got {value}")
    return value


def bounded_percent(msg: Any, field: str, default: int, resource: str, path: str) -> int:
    """A UInt32Value percentage that Envoy's validation bounds to 0-100."""
    value = int(wrapped(msg, field, default))
    if value > 100:
        raise ConfigError(resource, path, f"value must be at most 100, got {value}")
    return value
