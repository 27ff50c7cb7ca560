"""KubernetesSource without I/O: deltas in, models and errors out."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from xds_server.model import Model
from xds_server.sources.assemble import Outcome, parse_outcome
from xds_server.sources.kube.api import KubeApi
from xds_server.sources.kube.reflector import Remove, Replace, Upsert
from xds_server.sources.kube.resources import MODEL_RESOURCES, NAMESPACES, SERVICES
from xds_server.sources.kube.selection import NamespaceSelection
from xds_server.sources.kube.source import KubernetesSource
from xds_server.sources.kube.watcher import Health

from .kube_harness import endpoint_slice, namespace, service


def source(selection: NamespaceSelection | None = None) -> KubernetesSource:
    return KubernetesSource(KubeApi(None), selection)


def sync(s: KubernetesSource, *objects: dict[str, Any]) -> None:
    """Every collection listed, with `objects` in the ones of their kind."""
    for (resource, ns), _ in s.stores.items():
        mine = tuple(
            o
            for o in objects
            if o["kind"] == resource.kind and ns in (None, o["metadata"].get("namespace"))
        )
        s.apply((resource, ns), Replace(mine))


def ports(model: Model | None) -> dict[str, int]:
    assert model is not None
    return {name: svc.ports[0].port for (_, name), svc in model.services.items()}


def test_no_model_until_every_collection_is_listed() -> None:
    s = source()
    s.apply((SERVICES, None), Replace((service("a"),)))
    for resource in MODEL_RESOURCES[1:-1]:
        s.apply((resource, None), Replace(()))
    assert not s.synced
    assert s.rebuild() is None
    s.apply((MODEL_RESOURCES[-1], None), Replace(()))
    assert ports(s.rebuild()) == {"a": 8080}


def test_deltas_change_the_model_and_an_unchanged_model_is_not_handed_out() -> None:
    s = source()
    sync(s, service("a"), endpoint_slice("a", ("10.0.0.1",)))
    first = s.rebuild()
    assert first is not None
    assert s.rebuild() is None
    assert s.apply((SERVICES, None), Upsert(service("b")))
    assert ports(s.rebuild()) == {"a": 8080, "b": 8080}
    s.apply((SERVICES, None), Remove(service("a")))
    model = s.rebuild()
    assert ports(model) == {"b": 8080}
    assert model is not None and model.slices  # the slice of a stays, reported as a note
    assert s.notes == ["EndpointSlice default/a-abc: Service default/a is not defined"]


def test_a_bad_new_object_is_left_out_and_named(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xds_server.sources.kube")
    s = source()
    sync(s, service("a"), service("bad", port=0))
    assert ports(s.rebuild()) == {"a": 8080}
    expected = (
        "Service default/bad: spec.ports[0].port: must be an integer 1-65535, got 0 (left out)"
    )
    assert s.errors == [expected]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [expected]
    caplog.clear()
    s.apply((SERVICES, None), Upsert(service("c")))
    s.rebuild()
    assert not [r for r in caplog.records if r.levelno == logging.ERROR], "logged once"


def test_a_good_object_turned_bad_keeps_its_last_good_version() -> None:
    s = source()
    sync(s, service("a", port=81))
    s.rebuild()
    s.apply((SERVICES, None), Upsert(service("a", port=70000)))
    assert s.rebuild() is None, "nothing changed for the proxies"
    assert s.errors == [
        "Service default/a: spec.ports[0].port: must be an integer 1-65535, got 70000 "
        "(keeping its last good version)"
    ]
    s.apply((SERVICES, None), Upsert(service("a", port=82)))
    assert ports(s.rebuild()) == {"a": 82}
    assert s.errors == []


def test_a_deleted_object_is_forgotten_even_its_last_good_version() -> None:
    s = source()
    sync(s, service("a", port=81))
    s.rebuild()
    s.apply((SERVICES, None), Remove(service("a")))
    s.rebuild()
    s.apply((SERVICES, None), Upsert(service("a", port=0)))
    assert s.rebuild() is None
    assert ports(s.last_good) == {}
    assert s.errors[0].endswith("(left out)")


def test_slice_ports_that_name_no_service_port_are_errors_but_the_slice_stays() -> None:
    s = source()
    sync(s, service("a"), endpoint_slice("a", ("10.0.0.1",), port_name="grpc"))
    model = s.rebuild()
    assert model is not None and ("default", "a") in model.slices
    assert s.errors == [
        "EndpointSlice default/a-abc: ports[0].name: "
        "Service default/a has no port named 'grpc' (it has 'http')"
    ]


def test_only_namespaces_whose_labels_match_are_read() -> None:
    s = source(NamespaceSelection.of(selector="mesh=on"))
    assert (NAMESPACES, None) in s.stores
    sync(
        s,
        namespace("in", {"mesh": "on"}),
        namespace("out", {"mesh": "off"}),
        service("a", namespace="in"),
        service("b", namespace="out"),
    )
    assert ports(s.rebuild()) == {"a": 8080}
    s.apply((NAMESPACES, None), Upsert(namespace("out", {"mesh": "on"})))
    assert ports(s.rebuild()) == {"a": 8080, "b": 8080}


def test_named_namespaces_are_one_collection_each() -> None:
    s = source(NamespaceSelection.of(("shop", "web")))
    assert set(s.stores) == {(r, ns) for r in MODEL_RESOURCES for ns in ("shop", "web")}
    sync(s, service("a", namespace="shop"), service("b", namespace="web"))
    assert ports(s.rebuild()) == {"a": 8080, "b": 8080}


def test_failures_are_kept_per_collection_until_it_lists_again() -> None:
    s = source()
    scope = (SERVICES, None)
    assert not s.apply(scope, Health("services in all namespaces: list: 500 Internal Server Error"))
    assert list(s.failures.values()) == [
        "services in all namespaces: list: 500 Internal Server Error"
    ]
    s.apply(scope, Health(None))
    assert s.failures == {}


def test_unchanged_objects_are_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    s = source()
    sync(s, service("a"), service("b"))
    s.rebuild()
    parsed: list[dict[str, Any]] = []

    def counting(obj: dict[str, Any]) -> Outcome:
        parsed.append(obj)
        return parse_outcome(obj)

    monkeypatch.setattr("xds_server.sources.kube.source.parse_outcome", counting)
    s.apply((SERVICES, None), Upsert(service("b", port=81)))
    s.apply((SERVICES, None), Upsert(service("a")))  # equal to what is cached
    s.rebuild()
    assert [o["metadata"]["name"] for o in parsed] == ["b"]
