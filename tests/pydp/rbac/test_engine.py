"""ALLOW and DENY, the effective policy, and a chain of filters."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pydp.rbac import RbacEngine, RbacFilter, RbacRequest, run_filters
from tests.pydp.rbac.helpers import (
    CLIENT,
    method,
    path_prefix,
    peer,
    policy,
    principal_name,
    rbac_filter,
    request,
    rules,
)


def engine(action: str, policies: dict[str, Any]) -> RbacEngine:
    compiled = rbac_filter(rules(action, policies)).engine
    assert compiled is not None
    return compiled


def test_allow_lets_through_what_a_policy_matches() -> None:
    allow = engine("ALLOW", {"get": policy([method("GET")])})
    assert allow.decide(request("GET")).allowed
    assert allow.decide(request("GET")).policy == "get"
    verdict = allow.decide(request("POST"))
    assert (verdict.allowed, verdict.policy) == (False, None)


def test_deny_stops_what_a_policy_matches() -> None:
    deny = engine("DENY", {"admin": policy([path_prefix("/admin")])})
    verdict = deny.decide(request(path="/admin/x"))
    assert (verdict.allowed, verdict.policy) == (False, "admin")
    assert deny.decide(request(path="/x")).allowed


def test_without_policies_allow_denies_all_and_deny_allows_all() -> None:
    assert not engine("ALLOW", {}).decide(request()).allowed
    assert engine("DENY", {}).decide(request()).allowed


def test_a_filter_without_rules_has_no_engine() -> None:
    assert rbac_filter({}) == RbacFilter(engine=None)
    assert run_filters([rbac_filter({})], request()) == []


def test_a_policy_needs_a_permission_and_a_principal() -> None:
    allow = engine("ALLOW", {"p": policy([method("GET")], [principal_name(CLIENT)])})
    assert allow.decide(request("GET", peer=peer(CLIENT))).allowed
    assert not allow.decide(request("GET")).allowed
    assert not allow.decide(request("POST", peer=peer(CLIENT))).allowed


def test_the_effective_policy_is_the_first_matching_name() -> None:
    deny = engine(
        "DENY",
        {
            "zz": policy([path_prefix("/admin")]),
            "aa": policy([path_prefix("/adm")]),
            "mm": policy([path_prefix("/ad")]),
        },
    )
    assert [p.name for p in deny.policies] == ["aa", "mm", "zz"]
    assert deny.decide(request(path="/admin/x")).policy == "aa"
    assert deny.decide(request(path="/adz")).policy == "mm"


def test_filters_run_in_order_until_one_denies() -> None:
    deny = rbac_filter(rules("DENY", {"admin": policy([path_prefix("/admin")])}))
    allow = rbac_filter(rules("ALLOW", {"get": policy([method("GET")])}))
    empty = rbac_filter({})
    chain = [deny, empty, allow]
    assert [(f, v.allowed) for f, v in run_filters(chain, request("GET", "/x"))] == [
        (deny, True),
        (allow, True),
    ]
    assert [(f, v.allowed) for f, v in run_filters(chain, request("GET", "/admin"))] == [
        (deny, False)
    ]
    assert [(f, v.allowed) for f, v in run_filters(chain, request("POST", "/x"))] == [
        (deny, True),
        (allow, False),
    ]


POLICIES = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.builds(
        policy,
        st.lists(
            st.sampled_from([method("GET"), path_prefix("/a"), {"destination_port": 80}]),
            min_size=1,
            max_size=2,
        ),
    ),
    max_size=4,
)
REQUESTS = st.builds(
    request,
    method=st.sampled_from(["GET", "PUT"]),
    path=st.sampled_from(["/a", "/b"]),
    port=st.sampled_from([80, 81]),
)


@given(POLICIES, REQUESTS)
def test_deny_is_the_opposite_of_allow_with_the_same_effective_policy(
    policies: dict[str, Any], rq: RbacRequest
) -> None:
    allowed = engine("ALLOW", policies).decide(rq)
    denied = engine("DENY", policies).decide(rq)
    assert denied.allowed is not allowed.allowed
    assert denied.policy == allowed.policy
    assert (allowed.policy is None) is not allowed.allowed
