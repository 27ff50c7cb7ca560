"""RBAC permissions and principals compiled into predicates on an `RbacRequest`.

The subset pydp evaluates, with Envoy's meaning:

- permissions: `any`, `and_rules`, `or_rules`, `not_rule`, `header` (every
  `HeaderMatcher` form the router supports, on the request headers after the
  connection manager's mutations), `url_path` (the path without query and
  fragment; a request without `:path` never matches) and `destination_port`
  (the local port of the downstream connection);
- principals: `any`, `and_ids`, `or_ids`, `not_id` and `authenticated`. A
  plaintext connection matches no `authenticated`; on TLS, one without
  `principal_name` matches any peer, else the name is tried on the peer
  certificate's URI SANs, then its DNS SANs, then its subject.

Every other kind is refused with a `ConfigError` naming its field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydp.rbac.request import RbacRequest
from pydp.router._proto import Where, check_fields
from pydp.router.matchers import StringTest, compile_header_matcher, compile_string_matcher

Predicate = Callable[[RbacRequest], bool]
MAX_PORT = 65535

_PERMISSIONS = (
    "any",
    "and_rules",
    "or_rules",
    "not_rule",
    "header",
    "url_path",
    "destination_port",
)
_PRINCIPALS = ("any", "and_ids", "or_ids", "not_id", "authenticated")


def always(_: RbacRequest) -> bool:
    return True


def _all_of(predicates: Sequence[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda rq: all(p(rq) for p in predicates)


def _any_of(predicates: Sequence[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda rq: any(p(rq) for p in predicates)


def _negate(predicate: Predicate) -> Predicate:
    return lambda rq: not predicate(rq)


def _kind(proto: Any, oneof: str, supported: Sequence[str], where: Where) -> str:
    kind: str | None = proto.WhichOneof(oneof)
    if kind is None:
        raise where.error(f"one of {', '.join(supported)} is required")
    if kind not in supported:
        raise where.at(kind).error(
            f"is not supported by pydp (it evaluates {', '.join(supported)})"
        )
    return kind


def _set(
    items: Sequence[Any], where: Where, field: str, one: Callable[[Any, Where], Predicate]
) -> list[Predicate]:
    if not items:
        raise where.at(field).error("must have at least 1 item")
    return [one(item, where.at(field, i)) for i, item in enumerate(items)]


def compile_permissions(protos: Sequence[Any], where: Where, field: str) -> Predicate:
    """Any of a policy's `permissions`."""
    return _any_of(_set(protos, where, field, compile_permission))


def compile_principals(protos: Sequence[Any], where: Where, field: str) -> Predicate:
    """Any of a policy's `principals`."""
    return _any_of(_set(protos, where, field, compile_principal))


def compile_permission(proto: Any, where: Where) -> Predicate:
    """One `envoy.config.rbac.v3.Permission`."""
    kind = _kind(proto, "rule", _PERMISSIONS, where)
    at = where.at(kind)
    if kind == "any":
        if not proto.any:
            raise at.error("must be true")
        return always
    if kind == "and_rules":
        check_fields(proto.and_rules, at, ("rules",))
        return _all_of(_set(proto.and_rules.rules, at, "rules", compile_permission))
    if kind == "or_rules":
        check_fields(proto.or_rules, at, ("rules",))
        return _any_of(_set(proto.or_rules.rules, at, "rules", compile_permission))
    if kind == "not_rule":
        return _negate(compile_permission(proto.not_rule, at))
    if kind == "header":
        matcher = compile_header_matcher(proto.header, at)
        return lambda rq: matcher.matches(rq.headers)
    if kind == "url_path":
        return _url_path(proto.url_path, at)
    port = int(proto.destination_port)
    if port > MAX_PORT:
        raise at.error(f"must be at most {MAX_PORT}, got {port}")
    return lambda rq: rq.local_port == port


def _url_path(proto: Any, where: Where) -> Predicate:
    check_fields(proto, where, ("path",))
    if not proto.HasField("path"):
        raise where.error("path is required")
    test = compile_string_matcher(proto.path, where.at("path"))

    def matches(rq: RbacRequest) -> bool:
        path = rq.path
        return path is not None and test(path)

    return matches


def compile_principal(proto: Any, where: Where) -> Predicate:
    """One `envoy.config.rbac.v3.Principal`."""
    kind = _kind(proto, "identifier", _PRINCIPALS, where)
    at = where.at(kind)
    if kind == "any":
        if not proto.any:
            raise at.error("must be true")
        return always
    if kind == "and_ids":
        check_fields(proto.and_ids, at, ("ids",))
        return _all_of(_set(proto.and_ids.ids, at, "ids", compile_principal))
    if kind == "or_ids":
        check_fields(proto.or_ids, at, ("ids",))
        return _any_of(_set(proto.or_ids.ids, at, "ids", compile_principal))
    if kind == "not_id":
        return _negate(compile_principal(proto.not_id, at))
    check_fields(proto.authenticated, at, ("principal_name",))
    if not proto.authenticated.HasField("principal_name"):
        return _any_peer
    return _authenticated(
        compile_string_matcher(proto.authenticated.principal_name, at.at("principal_name"))
    )


def _any_peer(rq: RbacRequest) -> bool:
    return rq.peer is not None


def _authenticated(test: StringTest) -> Predicate:
    def matches(rq: RbacRequest) -> bool:
        if rq.peer is None:
            return False
        sans, subject = rq.peer_names()
        return any(test(name) for name in sans) or test(subject)

    return matches
