import random
from typing import Any

import pytest
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2

from pydp.errors import ConfigError
from pydp.upstream.breakers import BreakerConfig, CircuitBreakers, RoutingPriority, Thresholds
from pydp.upstream.hosts import Host
from pydp.upstream.retry import (
    PREVIOUS_HOSTS_TYPE,
    Headers,
    JitteredExponentialBackOff,
    ResetReason,
    RetryPolicy,
    RetryState,
    RetryStats,
    RetryStatus,
    compile_retry_policy,
)

from .builders import endpoint

RetryPolicyPb = route_components_pb2.RetryPolicy


def state(
    retry_on: str,
    num_retries: int = 5,
    codes: tuple[int, ...] = (),
    headers: list[tuple[bytes, bytes]] | None = None,
    honor: bool = False,
    breakers: CircuitBreakers | None = None,
    **kw: Any,
) -> RetryState:
    tokens = frozenset(t for t in retry_on.split(",") if t)
    policy = RetryPolicy(
        retry_on=tokens, num_retries=num_retries, retriable_status_codes=codes, **kw
    )
    s = RetryState.create(
        policy,
        breakers or CircuitBreakers(),
        random.Random(3),
        request_headers=headers or [],
        honor_request_headers=honor,
    )
    assert s is not None
    return s


# (retry_on, status, response headers, retried?)
RESPONSE_TABLE = [
    ("5xx", 500, [], True),
    ("5xx", 503, [], True),
    ("5xx", 599, [], True),
    ("5xx", 404, [], False),
    ("5xx", 200, [], False),
    ("gateway-error", 502, [], True),
    ("gateway-error", 503, [], True),
    ("gateway-error", 504, [], True),
    ("gateway-error", 500, [], False),
    ("retriable-4xx", 409, [], True),
    ("retriable-4xx", 404, [], False),
    ("retriable-4xx", 503, [], False),
    ("reset", 503, [], False),
    ("connect-failure", 503, [], False),
    ("refused-stream", 503, [], False),
    ("retriable-status-codes", 418, [], True),
    ("retriable-status-codes", 419, [], False),
    ("5xx", 503, [(b"x-envoy-ratelimited", b"true")], False),
    ("envoy-ratelimited", 429, [(b"x-envoy-ratelimited", b"true")], True),
    ("envoy-ratelimited", 429, [], False),
    ("unavailable", 200, [(b"grpc-status", b"14")], True),
    ("unavailable", 200, [(b"grpc-status", b"13")], False),
    ("internal", 200, [(b"grpc-status", b"13")], True),
    ("cancelled", 200, [(b"grpc-status", b"1")], True),
    ("deadline-exceeded", 200, [(b"grpc-status", b"4")], True),
    ("resource-exhausted", 200, [(b"grpc-status", b"8")], True),
    ("resource-exhausted", 200, [], False),
]


@pytest.mark.parametrize(("retry_on", "status", "headers", "retried"), RESPONSE_TABLE)
def test_response_decisions(
    retry_on: str, status: int, headers: list[tuple[bytes, bytes]], retried: bool
) -> None:
    decision = state(retry_on, codes=(418,)).on_response(status, headers)
    assert decision.retry is retried
    assert decision.status is (RetryStatus.YES if retried else RetryStatus.NO)


R = ResetReason
# (retry_on, reset reason, request started, retried?)
RESET_TABLE = [
    ("5xx", R.REMOTE_RESET, True, True),
    ("5xx", R.CONNECTION_FAILURE, False, True),
    ("5xx", R.LOCAL_RESET, True, True),
    ("gateway-error", R.REMOTE_RESET, True, True),
    ("gateway-error", R.CONNECTION_TIMEOUT, False, True),
    ("reset", R.REMOTE_RESET, True, True),
    ("reset", R.CONNECTION_TERMINATION, True, True),
    ("reset", R.LOCAL_RESET, True, True),
    ("reset-before-request", R.REMOTE_RESET, False, True),
    ("reset-before-request", R.REMOTE_RESET, True, False),
    ("connect-failure", R.CONNECTION_FAILURE, False, True),
    ("connect-failure", R.CONNECTION_TIMEOUT, False, True),
    ("connect-failure", R.REMOTE_RESET, True, False),
    ("connect-failure", R.LOCAL_RESET, True, False),
    ("refused-stream", R.REFUSED_STREAM, True, True),
    ("refused-stream", R.REMOTE_RESET, True, False),
    ("retriable-4xx", R.REMOTE_RESET, True, False),
    ("retriable-status-codes", R.REMOTE_RESET, True, False),
    ("5xx", R.OVERFLOW, False, False),
    ("reset", R.OVERFLOW, False, False),
    ("unavailable", R.REMOTE_RESET, True, False),
]


@pytest.mark.parametrize(("retry_on", "reason", "started", "retried"), RESET_TABLE)
def test_reset_decisions(retry_on: str, reason: ResetReason, started: bool, retried: bool) -> None:
    assert state(retry_on).on_reset(reason, started).retry is retried


def test_no_policy_means_no_state() -> None:
    assert RetryState.create(RetryPolicy(), CircuitBreakers(), random.Random()) is None
    assert RetryState.create(None, CircuitBreakers(), random.Random()) is None


def test_retry_limit() -> None:
    s = state("5xx", num_retries=2)
    assert s.on_response(503).retry
    assert s.on_response(503).retry
    third = s.on_response(503)
    assert third.status is RetryStatus.NO_RETRY_LIMIT_EXCEEDED
    assert s.stats.upstream_rq_retry_limit_exceeded == 1
    assert s.stats.upstream_rq_retry == 2


def test_retry_circuit_breaker_overflow_and_release() -> None:
    cb = CircuitBreakers(BreakerConfig({RoutingPriority.DEFAULT: Thresholds(max_retries=1)}))
    first = state("5xx", breakers=cb)
    second = state("5xx", breakers=cb)
    assert first.on_response(503).retry
    overflow = second.on_response(503)
    assert overflow.status is RetryStatus.NO_OVERFLOW
    assert cb.upstream_rq_retry_overflow == 1
    assert first.on_response(200).status is RetryStatus.NO
    assert first.stats.upstream_rq_retry_success == 1
    assert second.on_response(503).retry
    second.close()
    assert cb.manager().retries.count == 0


def test_retry_resource_is_held_until_the_next_outcome() -> None:
    cb = CircuitBreakers()
    s = state("5xx", breakers=cb)
    s.on_response(503)
    assert cb.manager().retries.count == 1
    s.on_response(503)
    assert cb.manager().retries.count == 1
    s.close()
    assert cb.manager().retries.count == 0


def test_backoff_grows_and_is_bounded() -> None:
    s = state("5xx", num_retries=10)
    bounds = [0.025, 0.05, 0.1, 0.2, 0.25, 0.25, 0.25]
    for bound in bounds:
        decision = s.on_response(503)
        assert 0.0 <= decision.backoff < bound


def test_backoff_strategy_matches_envoy() -> None:
    class Fixed(random.Random):
        def getrandbits(self, k: int) -> int:
            return 999

    b = JitteredExponentialBackOff(500, 30000, Fixed())
    assert b.next_backoff_ms() == 999 % 500
    assert b.next_backoff_ms() == 999 % 1000
    b.reset()
    assert b.next_backoff_ms() == 499


def test_backoff_intervals_cover_their_range() -> None:
    rng = random.Random(5)
    values = []
    for _ in range(2000):
        b = JitteredExponentialBackOff(25, 250, rng)
        values.append(b.next_backoff_ms())
    assert min(values) == 0 and max(values) == 24


def test_custom_backoff_intervals() -> None:
    s = state("5xx", num_retries=10, base_interval=0.1, max_interval=0.15)
    decisions = [s.on_response(503).backoff for _ in range(6)]
    assert all(d < 0.15 for d in decisions)
    assert s.backoff.max_ms == 150


def test_too_early_is_retried_immediately() -> None:
    decision = state("retriable-status-codes", codes=(425,)).on_response(425)
    assert decision.retry and decision.backoff == 0.0


def test_retriable_headers() -> None:
    def has_retry_me(headers: Headers) -> bool:
        return any(n == b"x-retry-me" for n, _ in headers)

    s = state("retriable-headers", retriable_headers=(has_retry_me,))
    assert not s.on_response(200, []).retry
    assert s.on_response(200, [(b"x-retry-me", b"1")]).retry


def test_retriable_request_headers_gate_all_retries() -> None:
    def is_get(headers: Headers) -> bool:
        return (b":method", b"GET") in headers

    post = state("5xx", headers=[(b":method", b"POST")], retriable_request_headers=(is_get,))
    get = state("5xx", headers=[(b":method", b"GET")], retriable_request_headers=(is_get,))
    assert not post.on_response(503).retry
    assert get.on_response(503).retry


def test_request_headers_ignored_unless_trusted() -> None:
    headers = [(b"x-envoy-retry-on", b"5xx"), (b"x-envoy-max-retries", b"0")]
    assert (
        RetryState.create(
            RetryPolicy(), CircuitBreakers(), random.Random(), request_headers=headers
        )
        is None
    )
    s = state("retriable-4xx", headers=headers)
    assert not s.on_response(503).retry


def test_trusted_request_headers_add_policies_and_limits() -> None:
    headers = [
        (b"x-envoy-retry-on", b"5xx, bogus"),
        (b"x-envoy-retry-grpc-on", b"unavailable"),
        (b"x-envoy-max-retries", b"1"),
        (b"x-envoy-retriable-status-codes", b"418,x"),
    ]
    s = RetryState.create(
        RetryPolicy(),
        CircuitBreakers(),
        random.Random(),
        request_headers=headers,
        honor_request_headers=True,
    )
    assert s is not None
    assert s.retry_on == {"5xx", "unavailable"}
    assert s.retries_remaining == 1
    assert s.status_codes == [418]
    assert s.on_response(503).retry
    assert s.on_response(503).status is RetryStatus.NO_RETRY_LIMIT_EXCEEDED


def test_trusted_retriable_header_names() -> None:
    headers = [(b"x-envoy-retriable-header-names", b"X-Upstream-Busy")]
    s = state("retriable-headers", headers=headers, honor=True)
    assert s.on_response(200, [(b"x-upstream-busy", b"")]).retry


def test_previous_hosts_context() -> None:
    s = state("5xx", retry_previous_hosts=True, host_selection_retry_max_attempts=3)
    assert s.lb_context(7).should_select_another_host is None
    host = Host(endpoint(0))
    s.on_host_attempted(host)
    context = s.lb_context(7)
    assert context.hash_key == 7
    assert context.host_selection_retry_max_attempts == 3
    assert context.should_select_another_host is not None
    assert context.should_select_another_host(host)
    assert not context.should_select_another_host(Host(endpoint(1)))


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="unknown retry_on"):
        RetryPolicy(retry_on=frozenset({"5xx", "nope"}))
    with pytest.raises(ValueError, match="max_interval"):
        RetryPolicy(base_interval=1.0, max_interval=0.5)


def test_compile_retry_policy() -> None:
    pb = RetryPolicyPb(
        retry_on="5xx,unavailable , bogus",
        num_retries={"value": 3},
        per_try_timeout={"seconds": 2},
        retriable_status_codes=[418],
        retry_back_off={"base_interval": {"nanos": 100_000}, "max_interval": {"seconds": 1}},
        host_selection_retry_max_attempts=4,
    )
    # Envoy finds the predicate by its type; the name does not matter.
    pb.retry_host_predicate.add(name="any").typed_config.Pack(
        previous_hosts_pb2.PreviousHostsPredicate()
    )
    policy = compile_retry_policy(pb, "route r")
    assert policy.retry_on == {"5xx", "unavailable"}
    assert policy.num_retries == 3
    assert policy.per_try_timeout == 2.0
    assert policy.retriable_status_codes == (418,)
    assert policy.backoff_ms() == (1, 1000)
    assert policy.retry_previous_hosts
    assert policy.host_selection_retry_max_attempts == 4


def test_compile_defaults() -> None:
    policy = compile_retry_policy(RetryPolicyPb(retry_on="reset"), "route r")
    assert policy.num_retries == 1
    assert policy.backoff_ms() == (25, 250)
    assert policy.per_try_timeout is None and not policy.retry_previous_hosts


def test_compile_truncates_to_milliseconds_as_envoy() -> None:
    pb = RetryPolicyPb(
        per_try_timeout={"nanos": 900_000},
        per_try_idle_timeout={"seconds": 1, "nanos": 234_900_000},
        retry_back_off={"base_interval": {"nanos": 100_000}, "max_interval": {"nanos": 200_000}},
    )
    policy = compile_retry_policy(pb, "route r")
    assert policy.per_try_timeout is None
    assert policy.per_try_idle_timeout == 1.234
    assert policy.backoff_ms() == (1, 1)


def test_compile_header_matchers_with_the_callers_compiler() -> None:
    seen: list[str] = []

    def compile_matcher(pb: Any, path: str) -> Any:
        seen.append(path)
        name = pb.name.encode()
        return lambda headers: any(n == name for n, _ in headers)

    pb = RetryPolicyPb(
        retry_on="retriable-headers",
        retriable_headers=[{"name": "x-a"}, {"name": "x-b"}],
        retriable_request_headers=[{"name": "x-c"}],
    )
    policy = compile_retry_policy(pb, "route r", "vh.retry_policy", compile_matcher)
    assert seen == [
        "vh.retry_policy.retriable_headers[0]",
        "vh.retry_policy.retriable_headers[1]",
        "vh.retry_policy.retriable_request_headers[0]",
    ]
    assert [m([(b"x-b", b"")]) for m in policy.retriable_headers] == [False, True]
    assert policy.retriable_request_headers[0]([(b"x-c", b"1")])


@pytest.mark.parametrize(
    ("pb", "field"),
    [
        (RetryPolicyPb(retry_priority={"name": "x"}), "retry_policy.retry_priority"),
        (RetryPolicyPb(rate_limited_retry_back_off={}), "retry_policy.rate_limited_retry_back_off"),
        (
            RetryPolicyPb(retry_host_predicate=[{"name": "other"}]),
            "retry_policy.retry_host_predicate[0]",
        ),
        (
            RetryPolicyPb(retry_host_predicate=[{"name": PREVIOUS_HOSTS_TYPE}]),
            "retry_policy.retry_host_predicate[0]",
        ),
        (RetryPolicyPb(retriable_headers=[{"name": "x"}]), "retry_policy.retriable_headers"),
        (
            RetryPolicyPb(
                retry_back_off={"base_interval": {"seconds": 2}, "max_interval": {"seconds": 1}}
            ),
            "retry_policy.retry_back_off.max_interval",
        ),
        (
            RetryPolicyPb(retry_back_off={"max_interval": {"seconds": 1}}),
            "retry_policy.retry_back_off.base_interval",
        ),
        (
            RetryPolicyPb(retry_back_off={"base_interval": {}}),
            "retry_policy.retry_back_off.base_interval",
        ),
        (
            RetryPolicyPb(retry_back_off={"base_interval": {"nanos": 1}, "max_interval": {}}),
            "retry_policy.retry_back_off.max_interval",
        ),
        (RetryPolicyPb(per_try_timeout={"seconds": -1}), "retry_policy.per_try_timeout"),
    ],
)
def test_compile_rejects(pb: object, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_retry_policy(pb, "route r")
    assert info.value.field == field


def test_compile_previous_hosts_by_name_only_is_refused_as_envoy_does() -> None:
    pb = RetryPolicyPb(
        retry_host_predicate=[{"name": "envoy.retry_host_predicates.previous_hosts"}]
    )
    with pytest.raises(ConfigError) as info:
        compile_retry_policy(pb, "route r")
    assert info.value.problem == (
        "Didn't find a registered implementation for "
        "'envoy.retry_host_predicates.previous_hosts' with type URL: ''"
    )


def test_stats_are_shared_per_cluster() -> None:
    stats = RetryStats()
    cb = CircuitBreakers()
    for _ in range(2):
        s = RetryState.create(RetryPolicy(retry_on=frozenset({"5xx"})), cb, random.Random(), stats)
        assert s is not None
        s.on_response(503)
        s.close()
    assert stats.as_dict()["upstream_rq_retry"] == 2
    assert stats.upstream_rq_retry_backoff_exponential == 2
