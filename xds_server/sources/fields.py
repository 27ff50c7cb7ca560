"""Typed reads of fields from a Kubernetes object, collecting every problem.

A `Reader` never raises on bad input: each accessor returns the value when it
is well formed and otherwise records a `FieldProblem` (the field's path and
what is wrong) and returns a neutral value, so that one pass over an object
reports all of its problems. A null value counts as absent, as it does for
the Kubernetes API. Name checks follow the apimachinery validators.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from xds_server.model import Labels

FieldPath = tuple[str | int, ...]
Check = Callable[[str], str | None]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def render_path(path: FieldPath) -> str:
    """`("spec", "ports", 1, "port")` as `spec.ports[1].port`; odd keys are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def show(value: object) -> str:
    """A short rendering of a YAML value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else text[:56] + "...'"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


@dataclass(frozen=True, slots=True)
class FieldProblem:
    path: FieldPath
    message: str

    def __str__(self) -> str:
        return f"{render_path(self.path)}: {self.message}" if self.path else self.message


def _matches(pattern: str, max_len: int, what: str) -> Check:
    compiled = re.compile(pattern)

    def check(value: str) -> str | None:
        if len(value) > max_len:
            return f"must be a {what} of at most {max_len} characters, got {show(value)}"
        if not compiled.fullmatch(value):
            return f"must be a {what}, got {show(value)}"
        return None

    return check


_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
dns_label = _matches(_LABEL, 63, "DNS label (lowercase letters, digits, '-')")
dns1035_label = _matches(r"[a-z]([-a-z0-9]*[a-z0-9])?", 63, "DNS-1035 label (starts with a letter)")
dns_subdomain = _matches(rf"{_LABEL}(\.{_LABEL})*", 253, "DNS subdomain")
_label_name = _matches(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", 63, "label name")
label_value = _matches(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", 63, "label value")


def label_key(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and (problem := dns_subdomain(prefix)):
        return f"prefix {problem}"
    return _label_name(name)


def port_name(value: str) -> str | None:
    """IANA service name, as a container port name or a named targetPort must be."""
    ok = (
        len(value) <= 15
        and re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", value) is not None
        and "--" not in value
        and re.search("[a-z]", value) is not None
    )
    return None if ok else f"must be an IANA service name (e.g. 'http'), got {show(value)}"


def ip_address(version: int | None = None) -> Check:
    def check(value: str) -> str | None:
        try:
            parsed = ipaddress.ip_address(value)
        except ValueError:
            return f"must be an IP address, got {show(value)}"
        if version is not None and parsed.version != version:
            return f"must be an IPv{version} address, got {show(value)}"
        return None

    return check


def one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        return (
            None if value in choices else f"must be one of {', '.join(choices)}, got {show(value)}"
        )

    return check


def _field(parent: Mapping[str, object], path: FieldPath) -> object:
    """The value of the field `path` ends with, in its parent mapping."""
    key = path[-1]
    return parent.get(key) if isinstance(key, str) else None


@dataclass
class Reader:
    problems: list[FieldProblem] = field(default_factory=list)

    def fail(self, path: FieldPath, message: str) -> None:
        self.problems.append(FieldProblem(path, message))

    def _get(self, parent: Mapping[str, object], path: FieldPath, required: bool) -> object:
        value = _field(parent, path)
        if value is None and required:
            self.fail(path, "required")
        return value

    def mapping(
        self, parent: Mapping[str, object], path: FieldPath, *, required: bool = False
    ) -> Mapping[str, object]:
        value = self._get(parent, path, required)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, f"must be a mapping, got {show(value)}")
            return {}
        return value

    def items(
        self, parent: Mapping[str, object], path: FieldPath, *, required: bool = False
    ) -> list[tuple[FieldPath, Mapping[str, object]]]:
        """The mappings of a list field, each with its own path."""
        out: list[tuple[FieldPath, Mapping[str, object]]] = []
        for item_path, item in self._list(parent, path, required):
            if isinstance(item, Mapping):
                out.append((item_path, item))
            else:
                self.fail(item_path, f"must be a mapping, got {show(item)}")
        return out

    def strings(
        self, parent: Mapping[str, object], path: FieldPath, check: Check | None = None
    ) -> list[str]:
        """A required list of strings."""
        out: list[str] = []
        for item_path, item in self._list(parent, path, required=True):
            if (value := self._string(item, item_path, check)) is not None:
                out.append(value)
        return out

    def _list(
        self, parent: Mapping[str, object], path: FieldPath, required: bool
    ) -> list[tuple[FieldPath, object]]:
        value = self._get(parent, path, required)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"must be a list, got {show(value)}")
            return []
        return [((*path, i), item) for i, item in enumerate(value)]

    def string(
        self,
        parent: Mapping[str, object],
        path: FieldPath,
        check: Check | None = None,
        *,
        required: bool = False,
    ) -> str | None:
        value = self._get(parent, path, required)
        return None if value is None else self._string(value, path, check)

    def _string(self, value: object, path: FieldPath, check: Check | None) -> str | None:
        if not isinstance(value, str):
            self.fail(path, f"must be a string, got {show(value)}")
            return None
        if check and (problem := check(value)):
            self.fail(path, problem)
            return None
        return value

    def port(
        self, parent: Mapping[str, object], path: FieldPath, *, required: bool = False
    ) -> int | None:
        value = self._get(parent, path, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.fail(path, f"must be an integer 1-65535, got {show(value)}")
            return None
        return value

    def port_or_name(self, parent: Mapping[str, object], path: FieldPath) -> int | str | None:
        """An IntOrString port (a Service's targetPort): a number or a port name."""
        value = _field(parent, path)
        if isinstance(value, str):
            return self._string(value, path, port_name)
        return self.port(parent, path)

    def boolean(self, parent: Mapping[str, object], path: FieldPath) -> bool | None:
        value = self._get(parent, path, False)
        if value is None or isinstance(value, bool):
            return value
        self.fail(path, f"must be true or false, got {show(value)}")
        return None

    def labels(self, parent: Mapping[str, object], path: FieldPath) -> Labels:
        """A map of label keys to label values (labels, or a selector)."""
        pairs: dict[str, str] = {}
        for key, value in self.mapping(parent, path).items():
            if not isinstance(key, str):
                self.fail(path, f"keys must be strings, got {show(key)}")
                continue
            if problem := label_key(key):
                self.fail(path, f"key {problem}")
                continue
            if (checked := self._string(value, (*path, key), label_value)) is not None:
                pairs[key] = checked
        return tuple(sorted(pairs.items()))
