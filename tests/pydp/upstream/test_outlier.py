import random

import pytest
from envoy.config.cluster.v3 import outlier_detection_pb2

from pydp.errors import ConfigError
from pydp.upstream.hosts import Host
from pydp.upstream.outlier import (
    Failure,
    OutlierConfig,
    OutlierDetector,
    compile_outlier_detection,
)

from .builders import endpoint

OD = outlier_detection_pb2.OutlierDetection


def detector(n: int = 10, seed: int = 1, **settings: object) -> tuple[OutlierDetector, list[Host]]:
    config = OutlierConfig(**settings)  # type: ignore[arg-type]
    changes: list[Host] = []
    od = OutlierDetector(config, random.Random(seed), on_change=changes.append)
    hosts = [Host(endpoint(i)) for i in range(n)]
    od.set_hosts(hosts)
    return od, hosts


def fail(od: OutlierDetector, host: Host, times: int, status: int = 500, now: float = 0.0) -> None:
    for _ in range(times):
        od.record_response(host, status, now)


def test_five_consecutive_5xx_eject() -> None:
    od, hosts = detector()
    fail(od, hosts[0], 4)
    assert not hosts[0].ejected
    fail(od, hosts[0], 1)
    assert hosts[0].ejected
    stats = od.stats()
    assert stats["outlier_detection.ejections_active"] == 1
    assert stats["outlier_detection.ejections_enforced_total"] == 1
    assert stats["outlier_detection.ejections_enforced_consecutive_5xx"] == 1
    assert stats["outlier_detection.ejections_detected_consecutive_5xx"] == 1
    assert stats["outlier_detection.ejections_consecutive_5xx"] == 1


def test_success_resets_the_count() -> None:
    od, hosts = detector()
    fail(od, hosts[0], 4)
    od.record_response(hosts[0], 200, 0.0)
    fail(od, hosts[0], 4)
    assert not hosts[0].ejected


def test_gateway_failures_are_detected_but_not_enforced_by_default() -> None:
    od, hosts = detector(consecutive_5xx=100)
    fail(od, hosts[0], 5, status=503)
    assert not hosts[0].ejected
    stats = od.stats()
    assert stats["outlier_detection.ejections_detected_consecutive_gateway_failure"] == 1
    assert stats["outlier_detection.ejections_enforced_total"] == 0


def test_gateway_failures_eject_when_enforced() -> None:
    od, hosts = detector(consecutive_5xx=100, enforcing_consecutive_gateway_failure=100)
    od.record_failure(hosts[0], Failure.CONNECT_FAILURE, 0.0)
    od.record_failure(hosts[0], Failure.RESET, 0.0)
    od.record_failure(hosts[0], Failure.TIMEOUT, 0.0)
    fail(od, hosts[0], 1, status=502)
    assert not hosts[0].ejected
    fail(od, hosts[0], 1, status=504)
    assert hosts[0].ejected
    assert od.stats()["outlier_detection.ejections_enforced_consecutive_gateway_failure"] == 1


def test_a_non_gateway_5xx_breaks_the_gateway_streak() -> None:
    od, hosts = detector(consecutive_5xx=100, enforcing_consecutive_gateway_failure=100)
    fail(od, hosts[0], 4, status=503)
    fail(od, hosts[0], 1, status=500)
    fail(od, hosts[0], 4, status=503)
    assert not hosts[0].ejected


def test_ejection_timeline_with_backoff() -> None:
    od, hosts = detector()
    host = hosts[0]
    fail(od, host, 5, now=0.0)
    assert od.ejection_time(host) == 30.0
    assert od.tick(10.0) == [] and host.ejected
    assert od.tick(20.0) == [] and host.ejected
    assert od.tick(30.0) == [host] and not host.ejected
    # Ejected again right away: the back-off doubles the time.
    fail(od, host, 5, now=31.0)
    assert host.ejected and od.ejection_time(host) == 60.0
    assert od.tick(90.0) == []
    assert od.tick(91.0) == [host]
    # Healthy intervals shrink the back-off again.
    for t in (101.0, 111.0):
        od.tick(t)
    fail(od, host, 5, now=112.0)
    assert od.ejection_time(host) == 30.0


def test_ejection_time_is_capped() -> None:
    od, hosts = detector(base_ejection_time_ms=100_000, max_ejection_time_ms=250_000)
    host = hosts[0]
    now = 0.0
    for _ in range(5):
        fail(od, host, 5, now=now)
        now += od.ejection_time(host)
        assert od.tick(now) == [host]
    fail(od, host, 5, now=now)
    assert od.ejection_time(host) == 250.0


def test_uneject_resets_counters() -> None:
    od, hosts = detector()
    fail(od, hosts[0], 5)
    fail(od, hosts[0], 3)
    od.tick(30.0)
    fail(od, hosts[0], 4)
    assert not hosts[0].ejected


def test_max_ejection_percent() -> None:
    od, hosts = detector(n=10, max_ejection_percent=20)
    for host in hosts[:3]:
        fail(od, host, 5)
    assert [h.ejected for h in hosts[:3]] == [True, True, False]
    assert od.stats()["outlier_detection.ejections_overflow"] == 1


def test_default_ten_percent_of_few_hosts_ejects_nothing() -> None:
    od, hosts = detector(n=5)
    fail(od, hosts[0], 5)
    assert not hosts[0].ejected
    od2, hosts2 = detector(n=5, always_eject_one_host=True)
    fail(od2, hosts2[0], 5)
    fail(od2, hosts2[1], 5)
    assert [hosts2[0].ejected, hosts2[1].ejected] == [True, False]


def test_enforcing_percentage_is_a_random_draw() -> None:
    ejected = 0
    for seed in range(200):
        od, hosts = detector(n=1, seed=seed, enforcing_consecutive_5xx=30, max_ejection_percent=100)
        fail(od, hosts[0], 5)
        ejected += hosts[0].ejected
    assert 40 <= ejected <= 80


def test_enforcing_zero_never_ejects() -> None:
    od, hosts = detector(enforcing_consecutive_5xx=0)
    fail(od, hosts[0], 50)
    assert not hosts[0].ejected
    assert od.stats()["outlier_detection.ejections_detected_consecutive_5xx"] == 10


def test_jitter_is_added() -> None:
    od, hosts = detector(max_ejection_time_jitter_ms=5000)
    fail(od, hosts[0], 5)
    assert 30.0 <= od.ejection_time(hosts[0]) <= 35.0


def test_on_change_reports_ejections_and_returns() -> None:
    changes: list[Host] = []
    od = OutlierDetector(OutlierConfig(), random.Random(1), on_change=changes.append)
    hosts = [Host(endpoint(i)) for i in range(10)]
    od.set_hosts(hosts)
    fail(od, hosts[2], 5)
    od.tick(30.0)
    assert changes == [hosts[2], hosts[2]]


def test_success_rate_ejection() -> None:
    od, hosts = detector(n=5, max_ejection_percent=100, consecutive_5xx=1000)
    for i, host in enumerate(hosts):
        for r in range(100):
            od.record_response(host, 500 if (i == 0 and r < 50) else 200, 1.0)
    od.tick(10.0)
    assert [h.ejected for h in hosts] == [True, False, False, False, False]
    assert od.stats()["outlier_detection.ejections_enforced_success_rate"] == 1


def test_success_rate_needs_volume_and_hosts() -> None:
    od, hosts = detector(n=5, max_ejection_percent=100, consecutive_5xx=1000)
    for i, host in enumerate(hosts):
        for r in range(99):
            od.record_response(host, 500 if (i == 0 and r < 50) else 200, 1.0)
    od.tick(10.0)
    assert not any(h.ejected for h in hosts)


def test_failure_percentage_detects_but_does_not_enforce_by_default() -> None:
    od, hosts = detector(
        n=5, max_ejection_percent=100, enforcing_success_rate=0, consecutive_5xx=1000
    )
    for host in hosts:
        for r in range(60):
            od.record_response(host, 503 if (host is hosts[1] and r < 55) else 200, 1.0)
    od.tick(10.0)
    assert od.stats()["outlier_detection.ejections_detected_failure_percentage"] == 1
    assert not hosts[1].ejected


def test_removed_hosts_are_forgotten() -> None:
    od, hosts = detector()
    fail(od, hosts[0], 5)
    od.set_hosts(hosts[1:])
    assert od.stats()["outlier_detection.ejections_active"] == 0


def test_compile_defaults() -> None:
    config = compile_outlier_detection(OD(), "cluster c")
    assert config == OutlierConfig()
    assert config.enforcing_consecutive_gateway_failure == 0
    assert config.interval == 10.0


def test_compile_values() -> None:
    pb = OD(
        consecutive_5xx={"value": 3},
        interval={"seconds": 1},
        base_ejection_time={"seconds": 400},
        max_ejection_percent={"value": 50},
        enforcing_consecutive_gateway_failure={"value": 100},
    )
    config = compile_outlier_detection(pb, "cluster c")
    assert config.consecutive_5xx == 3
    assert config.interval_ms == 1000
    assert config.max_ejection_time_ms == 400_000
    assert config.max_ejection_percent == 50


@pytest.mark.parametrize(
    ("pb", "field", "problem"),
    [
        (
            OD(split_external_local_origin_errors=True),
            "split_external_local_origin_errors",
            "locally",
        ),
        (
            OD(base_ejection_time={"seconds": 60}, max_ejection_time={"seconds": 30}),
            "max_ejection_time",
            "cannot be smaller",
        ),
        (OD(max_ejection_percent={"value": 101}), "max_ejection_percent", "at most 100"),
        (OD(interval={}), "interval", "greater than 0"),
        (OD(monitors=[{"name": "x"}]), "monitors", "not supported"),
    ],
)
def test_compile_rejects(pb: object, field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_outlier_detection(pb, "cluster c")
    assert info.value.field == "outlier_detection." + field
    assert problem in info.value.problem
