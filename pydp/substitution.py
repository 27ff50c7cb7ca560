"""Envoy's substitution format strings, split into literal text and commands.

Both the access log (`pydp.access_log`) and header values (`pydp.router.format`)
use the syntax: text with `%COMMAND%`, `%COMMAND(argument)%` or
`%COMMAND(argument):length%` in it, and `%%` for a percent sign. What the
commands mean is each caller's; the split is here, with Envoy's pattern for a
command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMMAND = re.compile(r"%([A-Z]|[A-Z][A-Z0-9_]*[A-Z0-9])(\((.*?)\))?(:([0-9]+))?%")


class FormatSyntaxError(ValueError):
    """No valid command starts at `position` (a `%` that is neither `%%` nor a command)."""

    def __init__(self, position: int) -> None:
        super().__init__(f"couldn't find valid command at position {position}")
        self.position = position


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    argument: str | None  # None without parentheses; "" for `()`
    length: int | None


def split_format(text: str) -> list[str | Command]:
    """The literal runs (`%%` already made `%`) and commands of `text`, in order."""
    parts: list[str | Command] = []
    literal: list[str] = []
    pos = 0
    while pos < len(text):
        at = text.find("%", pos)
        if at < 0:
            literal.append(text[pos:])
            break
        literal.append(text[pos:at])
        if text.startswith("%%", at):
            literal.append("%")
            pos = at + 2
            continue
        match = _COMMAND.match(text, at)
        if match is None:
            raise FormatSyntaxError(at)
        if any(literal):
            parts.append("".join(literal))
        literal = []
        length = match.group(5)
        parts.append(Command(match.group(1), match.group(3), int(length) if length else None))
        pos = match.end()
    if any(literal):
        parts.append("".join(literal))
    return parts
