"""Typed views of a route's retry and hash policies, compiled from the protos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydp.router._proto import Where, check_fields, duration_ms, header_name
from pydp.router.matchers import HeaderMatcher, compile_header_matchers
from pydp.router.regex import Rewrite

PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
_PREVIOUS_HOSTS_TYPE = (
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)
DEFAULT_BASE_INTERVAL = 0.025


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`envoy.config.route.v3.RetryPolicy`, times in seconds.

    `retry_on` keeps the configured tokens in order (Envoy ignores unknown
    ones). Without `retry_back_off` Envoy backs off from 25 ms; `max_interval`
    defaults to ten times `base_interval`.
    """

    retry_on: tuple[str, ...] = ()
    num_retries: int = 1
    per_try_timeout: float | None = None
    per_try_idle_timeout: float | None = None
    retriable_status_codes: tuple[int, ...] = ()
    base_interval: float = DEFAULT_BASE_INTERVAL
    max_interval: float = DEFAULT_BASE_INTERVAL * 10
    host_selection_retry_max_attempts: int = 1
    retry_host_predicates: tuple[str, ...] = ()
    retriable_headers: tuple[HeaderMatcher, ...] = ()
    retriable_request_headers: tuple[HeaderMatcher, ...] = ()


_RETRY_FIELDS = (
    "retry_on",
    "num_retries",
    "per_try_timeout",
    "per_try_idle_timeout",
    "retry_host_predicate",
    "host_selection_retry_max_attempts",
    "retriable_status_codes",
    "retry_back_off",
    "retriable_headers",
    "retriable_request_headers",
)


def _host_predicate(proto: Any, where: Where) -> str:
    check_fields(proto, where, ("name", "typed_config"))
    type_url = proto.typed_config.type_url if proto.HasField("typed_config") else ""
    if type_url == _PREVIOUS_HOSTS_TYPE or (not type_url and proto.name == PREVIOUS_HOSTS):
        return PREVIOUS_HOSTS
    raise where.error(f"unsupported retry host predicate {proto.name or type_url!r}")


def compile_retry_policy(proto: Any, where: Where) -> RetryPolicy:
    check_fields(proto, where, _RETRY_FIELDS)
    tokens = tuple(t.strip() for t in proto.retry_on.split(","))
    base = DEFAULT_BASE_INTERVAL
    maximum: float | None = None
    if proto.HasField("retry_back_off"):
        back_off = proto.retry_back_off
        bw = where.at("retry_back_off")
        check_fields(back_off, bw, ("base_interval", "max_interval"))
        if not back_off.HasField("base_interval"):
            raise bw.at("base_interval").error("value is required")
        base_ms = duration_ms(back_off.base_interval, bw.at("base_interval"))
        if back_off.base_interval.seconds == 0 and back_off.base_interval.nanos == 0:
            raise bw.at("base_interval").error("value must be greater than 0s")
        base_ms = max(base_ms, 1)
        base = base_ms / 1000
        if back_off.HasField("max_interval"):
            max_ms = max(duration_ms(back_off.max_interval, bw.at("max_interval")), 1)
            if max_ms < base_ms:
                raise bw.error("max_interval must be greater than or equal to the base_interval")
            maximum = max_ms / 1000

    def optional_seconds(field: str) -> float | None:
        if not proto.HasField(field):
            return None
        ms = duration_ms(getattr(proto, field), where.at(field))
        return ms / 1000 if ms else None

    return RetryPolicy(
        retry_on=tuple(t for t in tokens if t),
        num_retries=proto.num_retries.value if proto.HasField("num_retries") else 1,
        per_try_timeout=optional_seconds("per_try_timeout"),
        per_try_idle_timeout=optional_seconds("per_try_idle_timeout"),
        retriable_status_codes=tuple(int(c) for c in proto.retriable_status_codes),
        base_interval=base,
        max_interval=maximum if maximum is not None else base * 10,
        host_selection_retry_max_attempts=int(proto.host_selection_retry_max_attempts) or 1,
        retry_host_predicates=tuple(
            _host_predicate(p, where.at("retry_host_predicate", i))
            for i, p in enumerate(proto.retry_host_predicate)
        ),
        retriable_headers=compile_header_matchers(
            proto.retriable_headers, where, "retriable_headers"
        ),
        retriable_request_headers=compile_header_matchers(
            proto.retriable_request_headers, where, "retriable_request_headers"
        ),
    )


@dataclass(frozen=True, slots=True)
class HeaderHash:
    header_name: bytes
    rewrite: Rewrite | None
    terminal: bool


@dataclass(frozen=True, slots=True)
class CookieHash:
    name: str
    ttl: float | None
    path: str
    attributes: tuple[tuple[str, str], ...]
    terminal: bool


@dataclass(frozen=True, slots=True)
class SourceIpHash:
    terminal: bool


@dataclass(frozen=True, slots=True)
class QueryParameterHash:
    name: bytes
    terminal: bool


HashPolicy = HeaderHash | CookieHash | SourceIpHash | QueryParameterHash


def compile_hash_policy(proto: Any, where: Where) -> HashPolicy | None:
    """One `RouteAction.HashPolicy`; None for `connection_properties` without `source_ip`."""
    check_fields(
        proto, where, ("header", "cookie", "connection_properties", "query_parameter", "terminal")
    )
    terminal = bool(proto.terminal)
    kind = proto.WhichOneof("policy_specifier")
    w = where.at(kind) if kind else where
    if kind == "header":
        check_fields(proto.header, w, ("header_name", "regex_rewrite"))
        rewrite = None
        if proto.header.HasField("regex_rewrite"):
            rewrite = Rewrite.compile(proto.header.regex_rewrite, w.at("regex_rewrite"))
        return HeaderHash(
            header_name(proto.header.header_name, w.at("header_name")), rewrite, terminal
        )
    if kind == "cookie":
        cookie = proto.cookie
        check_fields(cookie, w, ("name", "ttl", "path", "attributes"))
        if not cookie.name:
            raise w.at("name").error("value must not be empty")
        ttl = duration_ms(cookie.ttl, w.at("ttl")) / 1000 if cookie.HasField("ttl") else None
        attributes = []
        for i, attribute in enumerate(cookie.attributes):
            check_fields(attribute, w.at("attributes", i), ("name", "value"))
            attributes.append((attribute.name, attribute.value))
        return CookieHash(cookie.name, ttl, cookie.path, tuple(attributes), terminal)
    if kind == "connection_properties":
        check_fields(proto.connection_properties, w, ("source_ip",))
        return SourceIpHash(terminal) if proto.connection_properties.source_ip else None
    if kind == "query_parameter":
        check_fields(proto.query_parameter, w, ("name",))
        if not proto.query_parameter.name:
            raise w.at("name").error("value must not be empty")
        return QueryParameterHash(proto.query_parameter.name.encode("utf-8"), terminal)
    raise where.error("one of header, cookie, connection_properties, query_parameter is required")
