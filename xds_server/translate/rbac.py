"""AuthorizationPolicies into Envoy's RBAC HTTP filters on the inbound listener.

Theory of operation. Envoy's RBAC filter has one action: with ALLOW it lets
through the requests one of its policies matches and denies the rest; with
DENY the reverse. So, as Istio does, the DENY policies selecting a workload
become one filter and its ALLOW policies a second one after it: a request
must pass the DENY filter (no DENY rule matches) and then the ALLOW filter
(some ALLOW rule matches). When no ALLOW policy selects the workload there is
no ALLOW filter and everything not denied passes; when ALLOW policies select
it but have no rules, the ALLOW filter has no policies and denies all.
A denied request gets Envoy's 403 `RBAC: access denied` and never reaches
the workload.

Each rule is one Envoy policy named `ns[<ns>]-policy[<name>]-rule[<i>]`:
its principals are its sources (any one), its permissions its operations
(any one); within a source or an operation every field set must match, and a
field matches if any of its values does (`not...` fields: if none does).

- principal `spiffe://td/ns/a/sa/b` (the scheme may be left out): the peer
  certificate's URI SAN, exactly; `x*` as a prefix, `*x` as a suffix, `*` any
  authenticated peer;
- namespace `a`: a peer SPIFFE ID of the trust domain in namespace `a` (a
  regular expression; `*` wildcards as above);
- method: the `:method` header; path: the path without its query, exact,
  prefix or suffix;
- port: the workload's port. A proxy serves one port (`APP_PORT`) behind its
  inbound listener, so a port is decided here: the workload's port becomes
  the inbound listener's `destination_port`, any other port never matches.

The output uses only `any`, `and_*`, `or_*`, `not_*`, `authenticated`,
`header`, `url_path` and `destination_port`: the subset pydp implements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from envoy.config.rbac.v3 import rbac_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as rbac_filter_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.type.matcher.v3 import path_pb2, regex_pb2, string_pb2
from google.protobuf import any_pb2

from xds_server.ca.identity import SPIFFE_SCHEME
from xds_server.model import AuthorizationPolicy, PolicyOperation, PolicyRule, PolicySource
from xds_server.model import split_pattern as _split

RBAC_FILTER = "envoy.filters.http.rbac"
_SEGMENT = "[^/]"


def _escape(text: str) -> str:
    """A trust domain or namespace as a regular expression ('.' is their only special char)."""
    return text.replace(".", "\\.")


def policy_name(policy: AuthorizationPolicy, rule: int) -> str:
    return f"ns[{policy.namespace}]-policy[{policy.name}]-rule[{rule}]"


@lru_cache(maxsize=4096)
def rbac_filters(
    policies: tuple[AuthorizationPolicy, ...], trust_domain: str, app_port: int, inbound_port: int
) -> tuple[Any, ...]:
    """The RBAC HTTP filters, DENY first, for the policies that select one workload."""
    ports = _Ports(app_port, inbound_port)
    out = []
    for action, enum in (("DENY", rbac_pb2.RBAC.DENY), ("ALLOW", rbac_pb2.RBAC.ALLOW)):
        chosen = [p for p in policies if p.action == action]
        if not chosen:
            continue
        rules = rbac_pb2.RBAC(action=enum)
        for policy in chosen:
            for i, rule in enumerate(policy.rules):
                rules.policies[policy_name(policy, i)].CopyFrom(_policy(rule, trust_domain, ports))
        if action == "DENY" and not rules.policies:
            continue  # a DENY policy without rules denies nothing
        packed = any_pb2.Any()
        packed.Pack(rbac_filter_pb2.RBAC(rules=rules))
        out.append(hcm_pb2.HttpFilter(name=RBAC_FILTER, typed_config=packed))
    return tuple(out)


class _Ports:
    def __init__(self, app_port: int, inbound_port: int) -> None:
        self.app_port, self.inbound_port = app_port, inbound_port


def _policy(rule: PolicyRule, trust_domain: str, ports: _Ports) -> Any:
    principals = [_source(s, trust_domain) for s in rule.sources] or [rbac_pb2.Principal(any=True)]
    permissions = [_operation(o, ports) for o in rule.operations] or [rbac_pb2.Permission(any=True)]
    return rbac_pb2.Policy(permissions=permissions, principals=principals)


# Principals


def _source(source: PolicySource, trust_domain: str) -> Any:
    def principal(value: str) -> Any:
        return _authenticated(_principal_matcher(value))

    def namespace(value: str) -> Any:
        return _authenticated(_namespace_matcher(value, trust_domain))

    parts = _fields(
        [
            (source.principals, principal, False),
            (source.not_principals, principal, True),
            (source.namespaces, namespace, False),
            (source.not_namespaces, namespace, True),
        ],
        _or_ids,
        _not_id,
    )
    return _and_ids(parts) if parts else rbac_pb2.Principal(any=True)


def _authenticated(matcher: Any) -> Any:
    return rbac_pb2.Principal(
        authenticated=rbac_pb2.Principal.Authenticated(principal_name=matcher)
    )


def _spiffe(text: str) -> str:
    return text if text.startswith(SPIFFE_SCHEME) else SPIFFE_SCHEME + text


def _principal_matcher(value: str) -> Any:
    text, where = _split(value)
    if where == "any":
        return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=".+"))
    if where == "suffix":
        return string_pb2.StringMatcher(suffix=text)
    if where == "prefix":
        return string_pb2.StringMatcher(prefix=_spiffe(text))
    return string_pb2.StringMatcher(exact=_spiffe(text))


def _namespace_matcher(value: str, trust_domain: str) -> Any:
    text, where = _split(value)
    pattern = {
        None: _escape(text),
        "any": f"{_SEGMENT}+",
        "prefix": f"{_escape(text)}{_SEGMENT}*",
        "suffix": f"{_SEGMENT}*{_escape(text)}",
    }[where]
    regex = f"{_escape(SPIFFE_SCHEME + trust_domain)}/ns/{pattern}/sa/{_SEGMENT}+"
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=regex))


def _or_ids(ids: list[Any]) -> Any:
    return ids[0] if len(ids) == 1 else rbac_pb2.Principal(or_ids=rbac_pb2.Principal.Set(ids=ids))


def _and_ids(ids: list[Any]) -> Any:
    return ids[0] if len(ids) == 1 else rbac_pb2.Principal(and_ids=rbac_pb2.Principal.Set(ids=ids))


def _not_id(principal: Any) -> Any:
    return rbac_pb2.Principal(not_id=principal)


# Permissions


def _operation(operation: PolicyOperation, ports: _Ports) -> Any:
    parts = _fields(
        [
            (operation.methods, _method, False),
            (operation.not_methods, _method, True),
            (operation.paths, _path, False),
            (operation.not_paths, _path, True),
        ],
        _or_rules,
        _not_rule,
    )
    if operation.ports:
        parts.append(
            rbac_pb2.Permission(destination_port=ports.inbound_port)
            if ports.app_port in operation.ports
            else _never()
        )
    if ports.app_port in operation.not_ports:
        parts.append(_never())
    return _and_rules(parts) if parts else rbac_pb2.Permission(any=True)


def _never() -> Any:
    return rbac_pb2.Permission(not_rule=rbac_pb2.Permission(any=True))


def _method(value: str) -> Any:
    return rbac_pb2.Permission(
        header=route_components_pb2.HeaderMatcher(
            name=":method", string_match=string_pb2.StringMatcher(exact=value)
        )
    )


def _path(value: str) -> Any:
    text, where = _split(value)
    if where == "any":
        return rbac_pb2.Permission(any=True)
    field = {None: "exact", "prefix": "prefix", "suffix": "suffix"}[where]
    matcher = string_pb2.StringMatcher(**{field: text})
    return rbac_pb2.Permission(url_path=path_pb2.PathMatcher(path=matcher))


def _or_rules(rules: list[Any]) -> Any:
    if len(rules) == 1:
        return rules[0]
    return rbac_pb2.Permission(or_rules=rbac_pb2.Permission.Set(rules=rules))


def _and_rules(rules: list[Any]) -> Any:
    if len(rules) == 1:
        return rules[0]
    return rbac_pb2.Permission(and_rules=rbac_pb2.Permission.Set(rules=rules))


def _not_rule(rule: Any) -> Any:
    return rbac_pb2.Permission(not_rule=rule)


def _fields(
    fields: Sequence[tuple[tuple[str, ...], Callable[[str], Any], bool]],
    any_of: Callable[[list[Any]], Any],
    negate: Callable[[Any], Any],
) -> list[Any]:
    """One matcher per non-empty field: any of its values, negated for `not...` fields."""
    out = []
    for values, one, negated in fields:
        if values:
            matcher = any_of([one(v) for v in values])
            out.append(negate(matcher) if negated else matcher)
    return out


def cache_clear() -> None:
    rbac_filters.cache_clear()
