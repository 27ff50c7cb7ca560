"""Debouncing, and a refused snapshot leaving the last good one in place."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest

from tests.xds_server.factories import PROFILE, model
from xds_server.hub import Hub
from xds_server.model import Model
from xds_server.pipeline import Debouncer, Pipeline
from xds_server.protocol.stream import SotwStream
from xds_server.resources import Resources
from xds_server.translate import translate_shared


def test_a_burst_is_due_after_the_quiet_period() -> None:
    d = Debouncer(quiet=0.1, max_delay=1.0)
    assert d.deadline() is None
    d.event(0.0)
    d.event(0.05)
    assert d.deadline() == pytest.approx(0.15)
    assert not d.take(0.1)
    assert d.take(0.16)
    assert d.deadline() is None


def test_a_burst_that_never_quiets_is_due_at_the_maximum_delay() -> None:
    d = Debouncer(quiet=0.1, max_delay=1.0)
    for i in range(20):
        d.event(i * 0.05)
        assert not d.take(i * 0.05)
    assert d.take(1.0)


@given(st.lists(st.floats(min_value=0, max_value=0.09), min_size=1, max_size=200))
def test_never_later_than_the_maximum_delay(gaps: list[float]) -> None:
    d = Debouncer(quiet=0.1, max_delay=1.0)
    first, now = gaps[0], 0.0
    for gap in gaps:
        now += gap
        d.event(now)
        due = d.deadline()
        assert due is not None and due <= first + 1.0 + 1e-9


def test_many_submissions_become_one_publish() -> None:
    async def main(hub: Hub) -> Pipeline:
        pipeline = Pipeline(hub, quiet=0.05, max_delay=5.0)
        published = asyncio.Event()
        hub.on_publish.append(lambda _snapshot: published.set())
        task = asyncio.create_task(pipeline.run())
        for i in range(20):
            pipeline.submit(model(("a", (f"127.0.0.{11 + i}",))))
            await asyncio.sleep(0.001)
        await asyncio.wait_for(published.wait(), 5)
        await asyncio.sleep(0.2)
        task.cancel()
        return pipeline

    hub = Hub()
    pipeline = asyncio.run(main(hub))
    assert hub.snapshot.version == 1
    assert pipeline.model == model(("a", ("127.0.0.30",)))


def test_an_inconsistent_snapshot_is_refused_and_the_last_good_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = Hub()
    pipeline = Pipeline(hub)
    assert pipeline.publish_now(model(("a", ("127.0.0.11",))))
    good = hub.snapshot
    stream = SotwStream(hub)
    stream.profile = PROFILE  # a proxy of this profile is connected
    hub.connect(stream, "test")

    def loses_clusters(m: Model, domain: str) -> Resources:
        out = translate_shared(m, domain)
        out.clusters.clear()
        out.endpoints.clear()
        return out

    monkeypatch.setattr("xds_server.pipeline.translate_shared", loses_clusters)
    assert not pipeline.publish_now(model(("a", ("127.0.0.12",))))
    assert hub.snapshot is good
    assert pipeline.model == model(("a", ("127.0.0.11",)))
    assert "xds_rejected_snapshots_total 1.0" in _metrics(hub)


def _metrics(hub: Hub) -> str:

    return generate_latest(hub.metrics.registry).decode()
