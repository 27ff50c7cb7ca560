"""Which namespaces the control plane reads: all, a list, or those whose labels match.

A label selector has the syntax `kubectl -l` takes: requirements separated
by commas, each `key`, `!key`, `key=value` (or `==`), `key!=value`,
`key in (a,b)` or `key notin (a,b)`. It is sent to the API server with the
Namespace watch and checked again here, so that a server which ignores it
cannot widen the selection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from xds_server.sources.fields import dns_label, label_key, label_value

_SET = re.compile(r"(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)")
_EQUALITY = re.compile(r"(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)")
_EXISTS = re.compile(r"(?P<neg>!?)\s*(?P<key>[^\s!=(),]+)")


class SelectorError(ValueError):
    """A label selector or namespace name that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        if self.op == "in":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values


@dataclass(frozen=True, slots=True)
class LabelSelector:
    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return self.text


def parse_selector(text: str) -> LabelSelector:
    """A label selector; raises `SelectorError` naming the requirement that is wrong."""
    requirements = []
    for part in _split(text):
        requirement = _requirement(part.strip())
        if requirement is None:
            raise SelectorError(f"label selector {text!r}: cannot read {part.strip()!r}")
        if problem := label_key(requirement.key):
            raise SelectorError(f"label selector {text!r}: key {problem}")
        for value in requirement.values:
            if problem := label_value(value):
                raise SelectorError(f"label selector {text!r}: value {problem}")
        requirements.append(requirement)
    if not requirements:
        raise SelectorError("label selector is empty")
    return LabelSelector(text, tuple(requirements))


def _split(text: str) -> list[str]:
    """The requirements of `text`: split at commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def _requirement(part: str) -> Requirement | None:
    if m := _SET.fullmatch(part):
        values = frozenset(v.strip() for v in m["values"].split(",") if v.strip())
        return Requirement(m["key"], m["op"], values) if values else None
    if m := _EQUALITY.fullmatch(part):
        return Requirement(m["key"], "notin" if m["op"] == "!=" else "in", frozenset([m["value"]]))
    if m := _EXISTS.fullmatch(part):
        return Requirement(m["key"], "!" if m["neg"] else "exists")
    return None


@dataclass(frozen=True, slots=True)
class NamespaceSelection:
    """All namespaces (the default), the ones named, or the ones a label selector matches."""

    names: tuple[str, ...] = ()
    selector: LabelSelector | None = None

    def __post_init__(self) -> None:
        if self.names and self.selector is not None:
            raise SelectorError("select namespaces by name or by label, not both")
        for name in self.names:
            if problem := dns_label(name):
                raise SelectorError(f"namespace {problem}")

    @classmethod
    def of(cls, names: tuple[str, ...] = (), selector: str | None = None) -> NamespaceSelection:
        """From command line values: names may be comma-separated; duplicates are dropped."""
        split = [n.strip() for item in names for n in item.split(",") if n.strip()]
        unique = tuple(dict.fromkeys(split))
        return cls(unique, parse_selector(selector) if selector is not None else None)

    def scopes(self) -> tuple[str | None, ...]:
        """The namespaces to list and watch in; None is all of them."""
        return self.names or (None,)

    def __str__(self) -> str:
        if self.names:
            return f"namespaces {', '.join(self.names)}"
        if self.selector is not None:
            return f"namespaces labelled {self.selector}"
        return "all namespaces"
