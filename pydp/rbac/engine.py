"""An RBAC filter's rules: named policies and an action, decided on one request.

As Envoy's engine: the policies are tried in the order of their names (a
`std::map`), and the first that matches is the effective policy. With ALLOW a
request is allowed when some policy matches, so ALLOW without policies denies
everything; with DENY it is allowed when none does, so DENY without policies
allows everything. A filter without `rules` has no engine: it allows every
request and counts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydp.rbac.matchers import Predicate
from pydp.rbac.request import RbacRequest


@dataclass(frozen=True, slots=True)
class Policy:
    """Matches when one of its permissions and one of its principals match."""

    name: str
    permissions: Predicate
    principals: Predicate

    def matches(self, rq: RbacRequest) -> bool:
        return self.permissions(rq) and self.principals(rq)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    policy: str | None  # the effective (first matching) policy, None when none matched


@dataclass(frozen=True, slots=True)
class RbacEngine:
    action: str  # "ALLOW" | "DENY"
    policies: tuple[Policy, ...]  # sorted by name

    def decide(self, rq: RbacRequest) -> Verdict:
        matched = None
        for policy in self.policies:
            if policy.matches(rq):
                matched = policy.name
                break
        return Verdict((matched is not None) == (self.action == "ALLOW"), matched)


@dataclass(frozen=True, slots=True)
class RbacFilter:
    """One `envoy.filters.http.rbac` of a connection manager.

    Its stats are `http.<stat_prefix>.rbac.<rules_stat_prefix>allowed|denied`
    and, with `track_per_rule_stats`, `...policy.<name>.allowed|denied` of the
    effective policy; `shadow_rules_stat_prefix` only names the (zero) shadow
    counters, since pydp refuses shadow rules.
    """

    engine: RbacEngine | None
    rules_stat_prefix: str = ""
    shadow_rules_stat_prefix: str = ""
    track_per_rule_stats: bool = False


def run_filters(filters: Sequence[RbacFilter], rq: RbacRequest) -> list[tuple[RbacFilter, Verdict]]:
    """The verdicts of a connection manager's RBAC filters, in order, up to the first
    denial (the request goes no further); filters without rules give none."""
    verdicts = []
    for rbac in filters:
        engine = rbac.engine
        if engine is not None:
            verdict = engine.decide(rq)
            verdicts.append((rbac, verdict))
            if not verdict.allowed:
                break
    return verdicts
