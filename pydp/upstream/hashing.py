"""Request hashes for consistent hashing, from a route's hash policies (Envoy's `HashPolicyImpl`).

Each policy may yield a 64-bit value: a header (all values of that header,
sorted, concatenated and hashed with xxHash64, after an optional regex
rewrite of each value), a cookie (only when the request carries it; pydp does
not generate cookies), the connection's source IP, or a query parameter (its
first value, not decoded). Values are combined as `rotl(hash, 1) ^ new`, so that
duplicate policies do not cancel out; once a `terminal` policy has produced a
value the rest are skipped. No value at all means no hash, and the hashing
balancers then pick at random, as Envoy does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydp.errors import ConfigError
from pydp.upstream.digest import MASK, xxh64

Headers = Sequence[tuple[bytes, bytes]]


@dataclass(frozen=True)
class HeaderHash:
    name: bytes
    terminal: bool = False
    rewrite_pattern: re.Pattern[str] | None = None
    rewrite_substitution: str = ""


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
    if policy.rewrite_pattern is not None:
        values = [
            policy.rewrite_pattern.sub(policy.rewrite_substitution, v.decode("latin-1")).encode(
                "latin-1"
            )
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
    policies: Sequence[Any], resource: str, field: str
) -> tuple[HashPolicy, ...]:
    """Compile `RouteAction.hash_policy` entries; `field` is their path in the resource."""
    compiled = (_compile_one(p, resource, f"{field}[{i}]") for i, p in enumerate(policies))
    return tuple(p for p in compiled if p is not None)


def _compile_one(policy: Any, resource: str, path: str) -> HashPolicy | None:
    kind = policy.WhichOneof("policy_specifier")
    terminal = bool(policy.terminal)
    if kind == "header":
        name = policy.header.header_name.lower().encode()
        if not name:
            raise ConfigError(resource, path + ".header.header_name", "must not be empty")
        if not policy.header.HasField("regex_rewrite"):
            return HeaderHash(name, terminal)
        rewrite = policy.header.regex_rewrite
        try:
            pattern = re.compile(rewrite.pattern.regex)
        except re.error as exc:
            raise ConfigError(resource, path + ".header.regex_rewrite.pattern", str(exc)) from None
        return HeaderHash(name, terminal, pattern, rewrite.substitution)
    if kind == "cookie":
        if policy.cookie.HasField("ttl"):
            raise ConfigError(resource, path + ".cookie.ttl", "generating cookies is not supported")
        if not policy.cookie.name:
            raise ConfigError(resource, path + ".cookie.name", "must not be empty")
        return CookieHash(policy.cookie.name.encode(), terminal)
    if kind == "connection_properties":
        return SourceIpHash(terminal) if policy.connection_properties.source_ip else None
    if kind == "query_parameter":
        if not policy.query_parameter.name:
            raise ConfigError(resource, path + ".query_parameter.name", "must not be empty")
        return QueryParameterHash(policy.query_parameter.name.encode(), terminal)
    if kind == "filter_state":
        raise ConfigError(
            resource, path + ".filter_state", "hashing on filter state is not supported"
        )
    raise ConfigError(resource, path, "a hash policy must set one policy specifier")
