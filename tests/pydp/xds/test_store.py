from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from pydp.errors import ConfigError
from pydp.xds.decode import Resource, Update, name_of
from pydp.xds.store import ConfigStore, ListenerChanges, Snapshot
from tests.pydp.xds.builders import (
    CDS,
    EDS,
    LDS,
    RDS,
    SDS,
    assignment,
    eds_cluster,
    listener,
    route,
    secret,
    static_cluster,
)


def update(
    type_url: str,
    messages: Iterable[Any],
    *,
    version: str = "1",
    complete: bool | None = None,
    removed: Iterable[str] = (),
) -> Update:
    resources = {}
    for message in messages:
        name = name_of(type_url, message)
        resources[name] = Resource(name, version, message, message.SerializeToString())
    if complete is None:
        complete = type_url in (CDS, LDS)
    return Update(type_url, f"nonce-{version}", version, resources, frozenset(removed), complete)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Snapshot, ListenerChanges]] = []

    def config_updated(self, snapshot: Snapshot, listeners: ListenerChanges) -> None:
        self.calls.append((snapshot, listeners))


class CountingCompiler:
    """Compiles a resource to (name, serialized size); rejects names starting with 'bad'."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, resources: Mapping[str, Any]) -> Mapping[str, Any]:
        self.seen.extend(resources)
        for name in resources:
            if name.startswith("bad"):
                raise ConfigError(f"Cluster {name}", "lb_policy", "MAGLEV is not supported")
        return {name: (name, message.ByteSize()) for name, message in resources.items()}


def test_eds_cluster_warms_until_its_assignment_arrives() -> None:
    store = ConfigStore()
    store.apply(update(CDS, [eds_cluster("a", service_name="a-eds"), static_cluster("s")]))
    assert set(store.snapshot.clusters) == {"s"}
    assert store.warming(CDS) == {"a"}
    assert store.wanted(EDS) == {"a-eds"}
    store.apply(update(EDS, [assignment("a-eds")]))
    assert set(store.snapshot.clusters) == {"a", "s"}
    assert set(store.snapshot.endpoints) == {"a-eds"}
    assert store.warming(CDS) == frozenset()


def test_listener_warms_until_its_route_config_arrives() -> None:
    recorder = Recorder()
    store = ConfigStore(handler=recorder)
    store.apply(update(LDS, [listener("outbound", "outbound-routes"), listener("inline")]))
    assert set(store.snapshot.listeners) == {"inline"}
    assert set(recorder.calls[-1][1].added) == {"inline"}
    assert store.wanted(RDS) == {"outbound-routes"}
    store.apply(update(RDS, [route("outbound-routes", cluster="not-known")]))
    assert set(store.snapshot.listeners) == {"inline", "outbound"}
    assert set(recorder.calls[-1][1].added) == {"outbound"}
    assert "outbound-routes" in store.snapshot.routes  # an unknown cluster does not block


def test_updated_listener_keeps_serving_its_old_version_while_the_new_one_warms() -> None:
    recorder = Recorder()
    store = ConfigStore(handler=recorder)
    store.apply(update(LDS, [listener("l", "r1")]))
    store.apply(update(RDS, [route("r1")]))
    first = store.snapshot.listeners["l"]
    store.apply(update(LDS, [listener("l", "r2")], version="2"))
    assert store.snapshot.listeners["l"] is first
    assert store.wanted(RDS) == {"r1", "r2"}
    store.apply(update(RDS, [route("r2")], version="2"))
    assert store.snapshot.listeners["l"] is not first
    assert set(recorder.calls[-1][1].changed) == {"l"}
    assert store.wanted(RDS) == {"r2"}
    assert set(store.snapshot.routes) == {"r2"}  # r1 is no longer referenced


def test_cluster_waits_for_its_secret() -> None:
    store = ConfigStore()
    store.apply(update(CDS, [eds_cluster("a", secret="cert")]))
    store.apply(update(EDS, [assignment("a")]))
    assert store.wanted(SDS) == {"cert"}
    assert "a" not in store.snapshot.clusters
    store.apply(update(SDS, [secret("cert")]))
    assert "a" in store.snapshot.clusters


def test_rejected_update_changes_nothing() -> None:
    compiler = CountingCompiler()
    recorder = Recorder()
    store = ConfigStore({CDS: compiler}, recorder)
    store.apply(update(CDS, [static_cluster("good")]))
    before = store.snapshot
    with pytest.raises(ConfigError, match="Cluster bad: lb_policy: MAGLEV"):
        store.apply(update(CDS, [static_cluster("bad"), static_cluster("other")], version="2"))
    store.reject(CDS, "2", "nonce-2", "Cluster bad: lb_policy: MAGLEV is not supported")
    assert store.snapshot is before
    assert store.version(CDS) == "1"
    assert len(recorder.calls) == 1
    nack = store.last_nack(CDS)
    assert nack is not None and (nack.version, nack.nonce) == ("2", "nonce-2")
    dump = {d.type_url: d for d in store.dump()}[CDS]
    assert dump.last_nack == nack and [r.name for r in dump.resources] == ["good"]


def test_unchanged_resources_are_not_recompiled() -> None:
    compiler = CountingCompiler()
    store = ConfigStore({CDS: compiler})
    store.apply(update(CDS, [static_cluster("a"), static_cluster("b")]))
    compiled = store.snapshot.clusters["a"]
    store.apply(update(CDS, [static_cluster("a"), static_cluster("b", port=9090)], version="2"))
    assert compiler.seen == ["a", "b", "b"]
    assert store.snapshot.clusters["a"] is compiled
    dump = {d.type_url: d for d in store.dump()}[CDS]
    assert {r.name: r.version for r in dump.resources} == {"a": "2", "b": "2"}


def test_complete_update_removes_what_it_leaves_out() -> None:
    recorder = Recorder()
    store = ConfigStore(handler=recorder)
    store.apply(update(CDS, [eds_cluster("a"), eds_cluster("b")]))
    store.apply(update(EDS, [assignment("a"), assignment("b")], complete=False))
    store.apply(update(CDS, [eds_cluster("b")], version="2"))
    assert set(store.snapshot.clusters) == {"b"}
    assert set(store.snapshot.endpoints) == {"b"}
    assert store.wanted(EDS) == {"b"}


def test_partial_update_keeps_what_it_leaves_out_and_removes_what_it_names() -> None:
    store = ConfigStore()
    store.apply(update(CDS, [static_cluster("a"), static_cluster("b")], complete=False))
    store.apply(update(CDS, [static_cluster("c")], complete=False, removed=["a"]))
    assert set(store.snapshot.clusters) == {"b", "c"}


def test_listener_changes_report_removals() -> None:
    recorder = Recorder()
    store = ConfigStore(handler=recorder)
    store.apply(update(LDS, [listener("x"), listener("y")]))
    store.apply(update(LDS, [listener("y")], version="2"))
    changes = recorder.calls[-1][1]
    assert changes.removed == {"x"} and not changes.added and not changes.changed


def test_snapshots_are_replaced_not_mutated() -> None:
    store = ConfigStore()
    store.apply(update(CDS, [static_cluster("a")]))
    in_flight = store.snapshot
    store.apply(update(CDS, [static_cluster("b")], version="2"))
    assert set(in_flight.clusters) == {"a"}
    assert set(store.snapshot.clusters) == {"b"}
    assert store.snapshot.generation == in_flight.generation + 1
    with pytest.raises(TypeError):
        in_flight.clusters["c"] = 1  # type: ignore[index]


def test_initialized_once_cds_and_lds_are_in_and_warm() -> None:
    store = ConfigStore()
    store.apply(update(CDS, [eds_cluster("a")]))
    store.apply(update(LDS, [listener("l", "r")]))
    assert not store.initialized
    store.apply(update(EDS, [assignment("a")]))
    assert not store.initialized
    store.apply(update(RDS, [route("r")]))
    assert store.initialized
    store.apply(update(CDS, [eds_cluster("b")], version="2"))
    assert store.initialized  # latches, as Envoy's init manager does


def test_a_rejected_first_fetch_still_ends_initialization() -> None:
    store = ConfigStore()
    store.reject(CDS, "1", "n", "bad")
    store.apply(update(LDS, []))
    assert store.initialized


def test_dump_shows_warming_versions_beside_active_ones() -> None:
    store = ConfigStore()
    store.apply(update(LDS, [listener("l", "r1")]))
    store.apply(update(RDS, [route("r1")]))
    store.apply(update(LDS, [listener("l", "r2")], version="2"))
    dump = {d.type_url: d for d in store.dump()}[LDS]
    assert [(r.name, r.version, r.warming) for r in dump.resources] == [
        ("l", "1", False),
        ("l", "2", True),
    ]
    assert dump.version == "2"


def test_compiler_that_skips_a_name_is_a_bug() -> None:
    store = ConfigStore({CDS: lambda resources: {}})
    with pytest.raises(TypeError, match="returned nothing for"):
        store.apply(update(CDS, [static_cluster("a")]))
