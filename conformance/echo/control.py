"""The control headers a request sends to tell the echo backend how to answer.

| header | effect |
|---|---|
| `x-echo-status: 503` | answer with this status (with `x-echo-fail-first`: the failing status) |
| `x-echo-delay-ms: 200` | wait this long before answering |
| `x-echo-reset: 1` | close the connection abruptly (TCP RST) instead of answering |
| `x-echo-stream: 10x1024` | answer with 10 body chunks of 1024 bytes (gRPC: 10 messages) |
| `x-echo-header-<name>: value` | add the response header `<name>: value` |
| `x-echo-fail-first: 2` with `x-echo-key: k` | fail the first 2 requests carrying key `k` |
| `x-echo-only: a,b` | apply the other controls only on the backends named `a` or `b` |
| `x-echo-grpc-status: 14`, `x-echo-grpc-message: m` | gRPC trailers (default 0 and none) |

A bad value raises `ControlError`, which the backend answers with 400 and the
message, so a mistake in a scenario is never mistaken for proxy behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PREFIX = "x-echo-"
HEADER_PREFIX = "x-echo-header-"
MAX_STREAM_BYTES = 64 * 1024 * 1024
MAX_DELAY_MS = 60_000
_STREAM = re.compile(r"^(\d+)x(\d+)$")


class ControlError(ValueError):
    """A control header with a value the backend cannot obey."""

    def __init__(self, header: str, value: str, problem: str) -> None:
        super().__init__(f"control header {header}: {value!r}: {problem}")
        self.header = header


@dataclass(frozen=True, slots=True)
class Control:
    status: int | None = None
    delay_ms: int = 0
    reset: bool = False
    stream: tuple[int, int] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    fail_first: int = 0
    key: str = ""
    only: frozenset[str] | None = None
    grpc_status: int = 0
    grpc_message: str = ""

    def applies_to(self, name: str) -> bool:
        return self.only is None or name in self.only


def parse_control(headers: Iterable[tuple[str, str]]) -> Control:
    """The controls among `headers` (names lowercase); others are ignored."""
    values: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for name, value in headers:
        if name.startswith(HEADER_PREFIX):
            extra.append((name.removeprefix(HEADER_PREFIX), value))
        elif name.startswith(PREFIX):
            values[name] = value
    only = values.get("x-echo-only")
    return Control(
        status=_optional_int(values, "x-echo-status", 100, 599),
        delay_ms=_optional_int(values, "x-echo-delay-ms", 0, MAX_DELAY_MS) or 0,
        reset=_flag(values, "x-echo-reset"),
        stream=_stream(values.get("x-echo-stream")),
        headers=tuple(extra),
        fail_first=_optional_int(values, "x-echo-fail-first", 0, 1_000_000) or 0,
        key=values.get("x-echo-key", ""),
        only=None if only is None else frozenset(p.strip() for p in only.split(",") if p.strip()),
        grpc_status=_optional_int(values, "x-echo-grpc-status", 0, 16) or 0,
        grpc_message=values.get("x-echo-grpc-message", ""),
    )


def _optional_int(values: dict[str, str], header: str, low: int, high: int) -> int | None:
    raw = values.get(header)
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise ControlError(header, raw, "not a whole number")
    number = int(raw)
    if not low <= number <= high:
        raise ControlError(header, raw, f"must be between {low} and {high}")
    return number


def _flag(values: dict[str, str], header: str) -> bool:
    raw = values.get(header)
    if raw is None:
        return False
    if raw not in ("0", "1", "true", "false"):
        raise ControlError(header, raw, "must be 1, 0, true or false")
    return raw in ("1", "true")


def _stream(raw: str | None) -> tuple[int, int] | None:
    if raw is None:
        return None
    m = _STREAM.match(raw.strip())
    if not m:
        raise ControlError("x-echo-stream", raw, "must be <chunks>x<bytes>, e.g. 10x1024")
    chunks, size = int(m[1]), int(m[2])
    if chunks < 1 or size < 1 or chunks * size > MAX_STREAM_BYTES:
        raise ControlError("x-echo-stream", raw, f"needs 1 to {MAX_STREAM_BYTES} bytes in all")
    return chunks, size
