"""Reading listener protos: field paths for errors, whitelists, `Any`s, durations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydp.errors import ConfigError

Message = Any
TYPE_PREFIX = "type.googleapis.com/"


def type_url(message_class: Any) -> str:
    return TYPE_PREFIX + str(message_class.DESCRIPTOR.full_name)


class At:
    """A position inside one listener, to name the field in a `ConfigError`."""

    def __init__(self, resource: str, path: str = "") -> None:
        self.resource = resource
        self.path = path

    def __truediv__(self, step: str) -> At:
        if step.startswith("["):
            return At(self.resource, self.path + step)
        return At(self.resource, f"{self.path}.{step}" if self.path else step)

    def error(self, problem: str) -> ConfigError:
        return ConfigError(self.resource, self.path or "(resource)", problem)

    def only(
        self, message: Message, allowed: Iterable[str], reasons: Mapping[str, str] | None = None
    ) -> None:
        """Refuse the first set field of `message` that is not in `allowed` (`reasons` word
        the refusal of particular fields)."""
        allowed = frozenset(allowed)
        for descriptor, _ in message.ListFields():
            if descriptor.name not in allowed:
                problem = (reasons or {}).get(descriptor.name, "is not supported by pydp")
                raise (self / descriptor.name).error(problem)


def unpack(packed: Message, expected: Mapping[str, Any], at: At, kind: str) -> Message:
    """The message in `packed`, which must be one of the `expected` types (by type URL)."""
    message_class = expected.get(packed.type_url)
    if message_class is None:
        raise at.error(f"unsupported {kind} type {packed.type_url or '(none)'}")
    message = message_class()
    if not packed.Unpack(message):
        raise at.error(f"does not decode as {packed.type_url}")
    return message


def seconds(duration: Message) -> float:
    return float(duration.seconds) + float(duration.nanos) / 1e9


def timeout(message: Message, field: str, default: float | None) -> float | None:
    """A Duration field in seconds; unset gives `default`, zero disables (None)."""
    if not message.HasField(field):
        return default
    value = seconds(getattr(message, field))
    return value if value > 0 else None


def flag(message: Message, field: str, default: bool) -> bool:
    """A `BoolValue` field, or `default` when unset."""
    return bool(getattr(message, field).value) if message.HasField(field) else default
