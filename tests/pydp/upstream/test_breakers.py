import pytest
from envoy.config.cluster.v3 import circuit_breaker_pb2
from envoy.config.core.v3 import base_pb2

from pydp.errors import ConfigError
from pydp.upstream.breakers import (
    BreakerConfig,
    CircuitBreakers,
    RetryBudget,
    RoutingPriority,
    Thresholds,
    compile_circuit_breakers,
)
from pydp.upstream.hosts import Host

from .builders import endpoint

CB = circuit_breaker_pb2.CircuitBreakers


def breakers(**thresholds: object) -> CircuitBreakers:
    return CircuitBreakers(BreakerConfig({RoutingPriority.DEFAULT: Thresholds(**thresholds)}))  # type: ignore[arg-type]


def test_defaults_are_envoys() -> None:
    cb = CircuitBreakers()
    m = cb.manager()
    assert (m.connections.max, m.pending_requests.max, m.requests.max, m.retries.max) == (
        1024,
        1024,
        1024,
        3,
    )


def test_request_overflow_and_release() -> None:
    cb = breakers(max_requests=2)
    assert cb.try_acquire_request()
    assert cb.try_acquire_request()
    assert not cb.try_acquire_request()
    assert cb.upstream_rq_pending_overflow == 1
    assert cb.stats()["circuit_breakers.default.rq_open"] == 1
    cb.release_request()
    assert cb.stats()["circuit_breakers.default.remaining_rq"] == 1
    assert cb.try_acquire_request()


def test_pending_overflow() -> None:
    cb = breakers(max_pending_requests=1)
    assert cb.try_acquire_pending_request()
    assert not cb.try_acquire_pending_request()
    assert cb.stats()["upstream_rq_pending_overflow"] == 1
    cb.release_pending_request()
    assert cb.try_acquire_pending_request()


def test_connection_overflow_and_per_host_limit() -> None:
    config = BreakerConfig(
        {RoutingPriority.DEFAULT: Thresholds(max_connections=3)}, {RoutingPriority.DEFAULT: 1}
    )
    cb = CircuitBreakers(config)
    a, b = Host(endpoint(0)), Host(endpoint(1))
    assert cb.try_acquire_connection(host=a)
    assert not cb.try_acquire_connection(host=a)
    assert cb.try_acquire_connection(host=b)
    assert cb.try_acquire_connection()
    assert not cb.try_acquire_connection()
    assert cb.upstream_cx_overflow == 2
    cb.release_connection(host=a)
    assert cb.try_acquire_connection(host=a)


def test_retry_overflow() -> None:
    cb = breakers(max_retries=1)
    assert cb.try_acquire_retry()
    assert not cb.try_acquire_retry()
    assert cb.upstream_rq_retry_overflow == 1
    assert cb.stats()["circuit_breakers.default.rq_retry_open"] == 1


def test_retry_budget_scales_with_active_requests() -> None:
    cb = breakers(retry_budget=RetryBudget(budget_percent=50.0, min_retry_concurrency=2))
    assert cb.manager().retries.max == 2
    for _ in range(10):
        cb.try_acquire_request()
    assert cb.manager().retries.max == 5


def test_priorities_are_independent() -> None:
    cb = breakers(max_requests=1)
    assert cb.try_acquire_request()
    assert not cb.try_acquire_request()
    assert cb.try_acquire_request(RoutingPriority.HIGH)


def test_release_without_acquire_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        CircuitBreakers().release_request()


def test_compile_thresholds() -> None:
    pb = CB(
        thresholds=[
            CB.Thresholds(priority=base_pb2.HIGH, max_requests={"value": 7}),
            CB.Thresholds(
                max_connections={"value": 5}, max_retries={"value": 0}, track_remaining=True
            ),
            CB.Thresholds(max_connections={"value": 99}),
        ],
        per_host_thresholds=[CB.Thresholds(max_connections={"value": 2})],
    )
    config = compile_circuit_breakers(pb, "cluster c")
    assert config.for_priority(RoutingPriority.HIGH).max_requests == 7
    default = config.for_priority(RoutingPriority.DEFAULT)
    assert (default.max_connections, default.max_retries, default.max_requests) == (5, 0, 1024)
    assert default.track_remaining
    assert config.per_host_max_connections == {RoutingPriority.DEFAULT: 2}


def test_compile_retry_budget_defaults() -> None:
    pb = CB(thresholds=[CB.Thresholds(retry_budget=CB.Thresholds.RetryBudget())])
    budget = (
        compile_circuit_breakers(pb, "cluster c").for_priority(RoutingPriority.DEFAULT).retry_budget
    )
    assert budget == RetryBudget(20.0, 3)


@pytest.mark.parametrize(
    ("pb", "field"),
    [
        (
            CB(thresholds=[CB.Thresholds(max_connection_pools={"value": 1})]),
            "thresholds[0].max_connection_pools",
        ),
        (
            CB(per_host_thresholds=[CB.Thresholds(max_requests={"value": 1})]),
            "per_host_thresholds[0].max_requests",
        ),
    ],
)
def test_compile_rejects_unsupported(pb: object, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_circuit_breakers(pb, "cluster c")
    assert info.value.field == "circuit_breakers." + field
