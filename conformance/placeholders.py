"""Placeholders in scenarios, and the reverse for observations.

A scenario names backends and ports symbolically: `{backend:NAME}` is the
loopback address the run gave backend NAME, `{port:NAME}` the port number it
gave the port NAME (every backend listens on every named port). A string that
is exactly one `{port:...}` becomes an integer, so that Kubernetes port fields
stay integers. `normalize` does the reverse on what was observed, so that runs
with different addresses (and different data planes) compare equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

PATTERN = re.compile(r"\{(backend|port):([A-Za-z0-9][-A-Za-z0-9_.]*)\}")


class PlaceholderError(KeyError):
    """A placeholder that names no backend or port of the run."""


def find(value: Any) -> Iterator[tuple[str, str]]:
    """Every (kind, name) placeholder in a nested value of dicts, lists and strings."""
    if isinstance(value, str):
        for m in PATTERN.finditer(value):
            yield m[1], m[2]
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from find(k)
            yield from find(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from find(v)


@dataclass(frozen=True)
class Bindings:
    """What the placeholders of one run stand for."""

    backends: Mapping[str, str]
    ports: Mapping[str, int]
    extra: Mapping[str, str] = field(default_factory=dict)  # address -> symbol, e.g. the proxy

    def lookup(self, kind: str, name: str) -> str | int:
        table: Mapping[str, str | int] = self.backends if kind == "backend" else self.ports
        if name not in table:
            raise PlaceholderError(f"{{{kind}:{name}}} names no {kind} of this scenario")
        return table[name]

    def substitute(self, value: Any) -> Any:
        if isinstance(value, str):
            whole = PATTERN.fullmatch(value)
            if whole and whole[1] == "port":
                return self.lookup("port", whole[2])
            return PATTERN.sub(lambda m: str(self.lookup(m[1], m[2])), value)
        if isinstance(value, Mapping):
            return {self.substitute(k): self.substitute(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.substitute(v) for v in value]
        return value

    def normalize(self, value: Any) -> Any:
        """Run-specific addresses and ports back into placeholders, in every string."""
        if isinstance(value, str):
            return self._reverse.sub(lambda m: self._symbols[m[0]], value)
        if isinstance(value, Mapping):
            return {k: self.normalize(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.normalize(v) for v in value]
        return value

    @cached_property
    def _symbols(self) -> dict[str, str]:
        symbols: dict[str, str] = {}
        for name, address in self.backends.items():
            symbols[address] = f"{{backend:{name}}}"
            for port_name, port in self.ports.items():
                symbols[f"{address}:{port}"] = f"{{backend:{name}}}:{{port:{port_name}}}"
        symbols.update(self.extra)
        return symbols

    @cached_property
    def _reverse(self) -> re.Pattern[str]:
        keys = sorted(self._symbols, key=len, reverse=True)
        body = "|".join(re.escape(k) for k in keys) or r"(?!)"
        return re.compile(rf"(?<![\d.])(?:{body})(?!\d)")
