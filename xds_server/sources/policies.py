"""The mesh's security kinds (`security.xdsmesh.io/v1alpha1`) into model objects.

`PeerAuthentication` and `AuthorizationPolicy` have the shapes of Istio's
kinds of the same names (the CRDs are in `api/crds/`). A field the mesh does
not implement is an error, never ignored: an authorization rule that quietly
lost a condition would allow more than its author meant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from xds_server.model import (
    MTLS_MODES,
    POLICY_ACTIONS,
    AuthorizationPolicy,
    Labels,
    PeerAuthentication,
    PolicyOperation,
    PolicyRule,
    PolicySource,
    split_pattern,
)
from xds_server.sources.fields import Check, FieldPath, Reader, one_of, show

GROUP = "security.xdsmesh.io"
VERSION = "v1alpha1"
KINDS = ("PeerAuthentication", "AuthorizationPolicy")

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP method (RFC 9110 token)
_NAMESPACE_CHARS = re.compile(r"[a-z0-9-]*")
_PRINCIPAL_CHARS = re.compile(r"[A-Za-z0-9._~%!$&'()+,;=:@/-]*")


def _unknown(r: Reader, obj: Mapping[str, object], path: FieldPath, known: Iterable[str]) -> None:
    allowed = set(known)
    for key in obj:
        if key not in allowed:
            names = ", ".join(sorted(allowed))
            r.fail((*path, str(key)), f"is not supported by the mesh (it reads {names})")


def _selector(r: Reader, spec: Mapping[str, object]) -> Labels:
    selector = r.mapping(spec, ("spec", "selector"))
    _unknown(r, selector, ("spec", "selector"), ("matchLabels",))
    return r.labels(selector, ("spec", "selector", "matchLabels"))


def peer_authentication(
    r: Reader, obj: Mapping[str, object], namespace: str, name: str, labels: Labels
) -> PeerAuthentication:
    spec = r.mapping(obj, ("spec",))
    _unknown(r, spec, ("spec",), ("selector", "mtls"))
    mtls = r.mapping(spec, ("spec", "mtls"))
    _unknown(r, mtls, ("spec", "mtls"), ("mode",))
    mode = r.string(mtls, ("spec", "mtls", "mode"), one_of(*MTLS_MODES))
    return PeerAuthentication(namespace, name, mode or "UNSET", _selector(r, spec))


def authorization_policy(
    r: Reader, obj: Mapping[str, object], namespace: str, name: str, labels: Labels
) -> AuthorizationPolicy:
    spec = r.mapping(obj, ("spec",))
    _unknown(r, spec, ("spec",), ("selector", "action", "rules"))
    action = r.string(spec, ("spec", "action"), one_of(*POLICY_ACTIONS))
    rules = tuple(_rule(r, path, item) for path, item in r.items(spec, ("spec", "rules")))
    return AuthorizationPolicy(namespace, name, action or "ALLOW", _selector(r, spec), rules)


def _rule(r: Reader, path: FieldPath, rule: Mapping[str, object]) -> PolicyRule:
    _unknown(r, rule, path, ("from", "to"))
    sources = []
    for item_path, item in r.items(rule, (*path, "from")):
        _unknown(r, item, item_path, ("source",))
        sources.append(_source(r, (*item_path, "source"), r.mapping(item, (*item_path, "source"))))
    operations = []
    for item_path, item in r.items(rule, (*path, "to")):
        _unknown(r, item, item_path, ("operation",))
        at = (*item_path, "operation")
        operations.append(_operation(r, at, r.mapping(item, at, required=True)))
    return PolicyRule(tuple(sources), tuple(operations))


_SOURCE_FIELDS = ("principals", "notPrincipals", "namespaces", "notNamespaces")
_OPERATION_FIELDS = ("methods", "notMethods", "paths", "notPaths", "ports", "notPorts")


def _nonempty(
    r: Reader, obj: Mapping[str, object], path: FieldPath, fields: tuple[str, ...]
) -> None:
    _unknown(r, obj, path, fields)
    if not any(obj.get(f) for f in fields):
        r.fail(path, f"must set at least one of {', '.join(fields)}")


def _source(r: Reader, path: FieldPath, source: Mapping[str, object]) -> PolicySource:
    _nonempty(r, source, path, _SOURCE_FIELDS)

    def read(field: str, check: Check) -> tuple[str, ...]:
        return _strings(r, source, (*path, field), check)

    return PolicySource(
        principals=read("principals", principal),
        not_principals=read("notPrincipals", principal),
        namespaces=read("namespaces", namespace_pattern),
        not_namespaces=read("notNamespaces", namespace_pattern),
    )


def _operation(r: Reader, path: FieldPath, operation: Mapping[str, object]) -> PolicyOperation:
    _nonempty(r, operation, path, _OPERATION_FIELDS)

    def read(field: str, check: Check) -> tuple[str, ...]:
        return _strings(r, operation, (*path, field), check)

    return PolicyOperation(
        methods=read("methods", method),
        not_methods=read("notMethods", method),
        paths=read("paths", path_pattern),
        not_paths=read("notPaths", path_pattern),
        ports=_ports(r, operation, (*path, "ports")),
        not_ports=_ports(r, operation, (*path, "notPorts")),
    )


def _strings(
    r: Reader, parent: Mapping[str, object], path: FieldPath, check: Check
) -> tuple[str, ...]:
    if parent.get(str(path[-1])) is None:
        return ()
    return tuple(r.strings(parent, path, check))


def _ports(r: Reader, parent: Mapping[str, object], path: FieldPath) -> tuple[int, ...]:
    value = parent.get(str(path[-1]))
    if value is None:
        return ()
    if not isinstance(value, list):
        r.fail(path, f"must be a list, got {show(value)}")
        return ()
    out = []
    for i, item in enumerate(value):
        number = int(item) if isinstance(item, str) and item.isdigit() else item
        if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 65536:
            r.fail((*path, i), f"must be a port number 1-65535, got {show(item)}")
            continue
        out.append(number)
    return tuple(out)


def _wildcard(value: str, what: str) -> tuple[str, str | None]:
    text, where = split_pattern(value)
    if "*" in text:
        raise ValueError(f"{what} may hold one '*', at its start or end, got {show(value)}")
    return text, where


def principal(value: str) -> str | None:
    try:
        rest, _ = _wildcard(value, "a principal")
    except ValueError as e:
        return str(e)
    if not value or not _PRINCIPAL_CHARS.fullmatch(rest):
        return (
            f"must be a SPIFFE ID such as 'spiffe://cluster.local/ns/NS/sa/SA', got {show(value)}"
        )
    return None


def namespace_pattern(value: str) -> str | None:
    try:
        rest, where = _wildcard(value, "a namespace")
    except ValueError as e:
        return str(e)
    if not value or not _NAMESPACE_CHARS.fullmatch(rest) or (where is None and not rest):
        return f"must be a namespace name, got {show(value)}"
    return None


def method(value: str) -> str | None:
    if "*" in value or not _TOKEN.fullmatch(value):
        return f"must be an HTTP method such as 'GET', got {show(value)}"
    return None


def path_pattern(value: str) -> str | None:
    try:
        rest, where = _wildcard(value, "a path")
    except ValueError as e:
        return str(e)
    if where in (None, "prefix") and not rest.startswith("/"):
        return f"must start with '/' (or be '*' or '*<suffix>'), got {show(value)}"
    if any(c in rest for c in "?# \t"):
        return f"must be a path without query or fragment, got {show(value)}"
    return None
