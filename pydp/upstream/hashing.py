"""Request hashes for consistent hashing, from a route's hash policies (Envoy's `HashPolicyImpl`).

Each policy may yield a 64-bit value: a header (all values of that header,
sorted, concatenated and hashed with xxHash64, after an optional regex
rewrite of each value), a cookie (only when the request carries it; pydp does
not generate cookies, so a `ttl` is refused), the connection's source IP, or a
query parameter (its first value, not decoded). Values are combined as
`rotl(hash, 1) ^ new`, so that duplicate policies do not cancel out; once a
`terminal` policy has produced a value the rest are skipped. No value at all
means no hash, and the hashing balancers then pick at random, as Envoy does.

Envoy's regexes are RE2, which this package does not translate: the caller
compiles a header's `regex_rewrite` (the router passes its RE2 `Rewrite`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydp.errors import ConfigError
from pydp.upstream.digest import MASK, xxh64
from pydp.upstream.fields import reject_unknown

Headers = Sequence[tuple[bytes, bytes]]


class Rewriter(Protocol):
    """A compiled `RegexMatchAndSubstitute`: replaces every match in `text`."""

    def apply(self, text: str) -> str: ...


CompileRewrite = Callable[[Any, str], Rewriter]


@dataclass(frozen=True)
class HeaderHash:
    """`rewrite` runs on each value decoded as UTF-8 (undecodable bytes kept as surrogates)."""

    name: bytes
    terminal: bool = False
    rewrite: Rewriter | None = None


@dataclass(frozen=True)
class CookieHash:
    name: bytes
    terminal: bool = False


@dataclass(frozen=True)
class SourceIpHash:
    terminal: bool = False


@dataclass(frozen=True)
class QueryParameterHash:
    name: bytes
    terminal: bool = False


HashPolicy = HeaderHash | CookieHash | SourceIpHash | QueryParameterHash


def _header_hash(policy: HeaderHash, headers: Headers) -> int | None:
    values = [value for name, value in headers if name == policy.name]
    if not values:
        return None
    if policy.rewrite is not None:
        apply = policy.rewrite.apply
        values = [
            apply(v.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
            for v in values
        ]
    return xxh64(b"".join(sorted(values)))


def cookie_value(headers: Headers, name: bytes) -> bytes:
    """The value of cookie `name` as Envoy's `parseCookieValue` reads it; empty if absent."""
    for header, value in headers:
        if header != b"cookie":
            continue
        for part in value.split(b";"):
            if not part:
                continue
            equals = part.find(b"=")
            if equals < 0:
                continue
            if part[:equals].lstrip(b" ") == name:
                v = part[equals + 1 :]
                if len(v) >= 2 and v.startswith(b'"') and v.endswith(b'"'):
                    v = v[1:-1]
                return v
    return b""


def _query_hash(policy: QueryParameterHash, headers: Headers) -> int | None:
    path = next((v for n, v in headers if n == b":path"), None)
    if path is None:
        return None
    start = path.find(b"?")
    if start < 0:
        return None
    for param in path[start + 1 :].split(b"&"):
        if not param:
            continue
        name, sep, value = param.partition(b"=")
        if name == policy.name:
            return xxh64(value if sep else b"")
    return None


def _source_ip_hash(source_address: str | None) -> int | None:
    if not source_address:
        return None
    try:
        text = str(ipaddress.ip_address(source_address))
    except ValueError:
        return None
    return xxh64(text.encode())


def _evaluate(policy: HashPolicy, headers: Headers, source_address: str | None) -> int | None:
    if isinstance(policy, HeaderHash):
        return _header_hash(policy, headers)
    if isinstance(policy, CookieHash):
        value = cookie_value(headers, policy.name)
        return xxh64(value) if value else None
    if isinstance(policy, QueryParameterHash):
        return _query_hash(policy, headers)
    return _source_ip_hash(source_address)


def compute_hash(
    policies: Sequence[HashPolicy], headers: Headers, source_address: str | None
) -> int | None:
    """The request's hash: `headers` are lowercase (name, value) pairs, HTTP/2 style."""
    result: int | None = None
    for policy in policies:
        value = _evaluate(policy, headers, source_address)
        if value is not None:
            old = ((result << 1) | (result >> 63)) & MASK if result is not None else 0
            result = old ^ value
        if policy.terminal and result is not None:
            break
    return result


def compile_hash_policies(
    policies: Sequence[Any],
    resource: str,
    field: str,
    compile_rewrite: CompileRewrite | None = None,
) -> tuple[HashPolicy, ...]:
    """Compile `RouteAction.hash_policy` entries; `field` is their path in the resource.

    `compile_rewrite(proto, path)` compiles a header's `regex_rewrite`; without
    it a rewrite is refused. `connection_properties` without `source_ip` yields
    no policy, as in Envoy.
    """
    compiled = (
        _compile_one(p, resource, f"{field}[{i}]", compile_rewrite) for i, p in enumerate(policies)
    )
    return tuple(p for p in compiled if p is not None)


_POLICY_FIELDS = {"header", "cookie", "connection_properties", "query_parameter", "terminal"}


def _compile_one(
    policy: Any, resource: str, path: str, compile_rewrite: CompileRewrite | None
) -> HashPolicy | None:
    kind = policy.WhichOneof("policy_specifier")
    if kind == "filter_state":
        raise ConfigError(
            resource, path + ".filter_state", "hashing on filter state is not supported"
        )
    reject_unknown(policy, _POLICY_FIELDS, resource, path + ".")
    if kind is None:
        raise ConfigError(
            resource,
            path,
            "one of header, cookie, connection_properties, query_parameter is required",
        )
    terminal = bool(policy.terminal)
    spec, at = getattr(policy, kind), f"{path}.{kind}."
    if kind == "header":
        reject_unknown(spec, {"header_name", "regex_rewrite"}, resource, at)
        name = _header_name(spec.header_name, resource, at + "header_name")
        rewrite = None
        if spec.HasField("regex_rewrite"):
            if compile_rewrite is None:
                raise ConfigError(
                    resource, at + "regex_rewrite", "regex rewrites are not supported here"
                )
            rewrite = compile_rewrite(spec.regex_rewrite, at + "regex_rewrite")
        return HeaderHash(name, terminal, rewrite)
    if kind == "cookie":
        if spec.HasField("ttl"):
            raise ConfigError(resource, at + "ttl", "generating cookies is not supported")
        reject_unknown(spec, {"name", "path", "attributes"}, resource, at)
        for i, attribute in enumerate(spec.attributes):
            reject_unknown(attribute, {"name", "value"}, resource, f"{at}attributes[{i}].")
            _nonempty(attribute.name, resource, f"{at}attributes[{i}].name")
        return CookieHash(_nonempty(spec.name, resource, at + "name"), terminal)
    if kind == "connection_properties":
        reject_unknown(spec, {"source_ip"}, resource, at)
        return SourceIpHash(terminal) if spec.source_ip else None
    reject_unknown(spec, {"name"}, resource, at)
    return QueryParameterHash(_nonempty(spec.name, resource, at + "name"), terminal)


def _nonempty(value: str, resource: str, path: str) -> bytes:
    if not value:
        raise ConfigError(resource, path, "value length must be at least 1 characters")
    return value.encode("utf-8")


def _header_name(value: str, resource: str, path: str) -> bytes:
    """A configured header name as lowercase bytes (ASCII folding only, as `LowerCaseString`)."""
    if any(c in value for c in "\0\r\n"):
        raise ConfigError(resource, path, "header name contains a forbidden character")
    return _nonempty(value, resource, path).lower()
