"""Small helpers for reading xDS protos: field paths for errors, field whitelists, durations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydp.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Where:
    """A position inside one resource, used to name the field in a `ConfigError`."""

    resource: str
    path: str = ""

    def at(self, field: str, index: int | None = None) -> Where:
        step = field if index is None else f"{field}[{index}]"
        return Where(self.resource, f"{self.path}.{step}" if self.path else step)

    def error(self, problem: str) -> ConfigError:
        return ConfigError(self.resource, self.path or "(resource)", problem)


def check_fields(
    msg: Any, where: Where, allowed: Iterable[str], reasons: Mapping[str, str] | None = None
) -> None:
    """Raise for the first field set on `msg` that is not in `allowed`.

    Set fields are those `ListFields` reports: present messages, non-default
    scalars and non-empty repeated fields, so any new field in the API that a
    config uses is refused rather than ignored. `reasons` words the refusal
    for particular fields.
    """
    allowed_set = frozenset(allowed)
    for field, _ in msg.ListFields():
        if field.name not in allowed_set:
            problem = (reasons or {}).get(field.name, "unsupported field")
            raise where.at(field.name).error(problem)


def duration_ms(duration: Any, where: Where) -> int:
    """Milliseconds of a `google.protobuf.Duration`, truncated as Envoy does."""
    if duration.seconds < 0 or duration.nanos < 0:
        raise where.error("duration must not be negative")
    if duration.nanos >= 1_000_000_000:
        raise where.error("duration nanos out of range")
    return int(duration.seconds) * 1000 + int(duration.nanos) // 1_000_000


def ascii_lower(value: str) -> str:
    """Lowercase ASCII letters only, as Envoy's `LowerCaseString` does."""
    return value.encode("utf-8", "surrogateescape").lower().decode("utf-8", "surrogateescape")


def header_name(value: str, where: Where) -> bytes:
    """A configured header name as the lowercase bytes used for lookups."""
    if not value:
        raise where.error("header name must not be empty")
    if any(c in value for c in "\0\r\n"):
        raise where.error("header name contains a forbidden character")
    return value.encode("utf-8").lower()
