from __future__ import annotations

import pytest

from pydp.errors import ConfigError
from pydp.xds.delta import DeltaState
from tests.pydp.xds.builders import CDS, EDS, LDS, RDS, assignment, delta, eds_cluster, node

TYPES = (CDS, EDS, LDS, RDS)


def test_connect_subscribes_to_wildcards_the_legacy_way() -> None:
    state = DeltaState(node(), TYPES)
    requests = state.connect()
    assert [r.type_url for r in requests] == [CDS, LDS]
    assert all(list(r.resource_names_subscribe) == [] for r in requests)
    assert all(dict(r.initial_resource_versions) == {} for r in requests)
    assert requests[0].node.id == "app-1.default"
    assert not requests[1].HasField("node")


def test_ack_by_nonce_and_versions_per_resource() -> None:
    state = DeltaState(node(), TYPES)
    state.connect()
    update = state.receive(
        delta(CDS, "n1", [("a", "1", eds_cluster("a")), ("b", "4", eds_cluster("b"))])
    )
    assert {n: r.version for n, r in update.resources.items()} == {"a": "1", "b": "4"}
    assert not update.complete
    [ack] = state.ack(update)
    assert (ack.type_url, ack.response_nonce) == (CDS, "n1")
    assert not ack.HasField("error_detail")
    assert state.versions(CDS) == {"a": "1", "b": "4"}

    update = state.receive(delta(CDS, "n2", [("a", "2", eds_cluster("a"))], removed=["b"]))
    assert update.removed == {"b"}
    state.ack(update)
    assert state.versions(CDS) == {"a": "2"}


def test_nack_leaves_versions_alone() -> None:
    state = DeltaState(node(), TYPES)
    state.connect()
    state.ack(state.receive(delta(CDS, "n1", [("a", "1", eds_cluster("a"))])))
    state.receive(delta(CDS, "n2", [("a", "2", eds_cluster("a"))]))
    [nack] = state.nack(CDS, "n2", "Cluster a: type: bad")
    assert nack.response_nonce == "n2"
    assert (nack.error_detail.code, nack.error_detail.message) == (13, "Cluster a: type: bad")
    assert state.versions(CDS) == {"a": "1"}


def test_stale_nonce_is_not_acked() -> None:
    state = DeltaState(node(), TYPES)
    state.connect()
    old = state.receive(delta(CDS, "n1", [("a", "1", eds_cluster("a"))]))
    state.receive(delta(CDS, "n2", []))
    assert state.ack(old) == []
    assert state.nack(CDS, "n1", "late") == []
    assert state.versions(CDS) == {}


def test_subscribe_and_unsubscribe_send_only_the_difference() -> None:
    state = DeltaState(node(), TYPES)
    state.connect()
    [request] = state.set_names(EDS, ["a", "b"])
    assert (list(request.resource_names_subscribe), list(request.resource_names_unsubscribe)) == (
        ["a", "b"],
        [],
    )
    state.ack(
        state.receive(delta(EDS, "n1", [("a", "1", assignment("a")), ("b", "1", assignment("b"))]))
    )
    [request] = state.set_names(EDS, ["b", "c"])
    assert (list(request.resource_names_subscribe), list(request.resource_names_unsubscribe)) == (
        ["c"],
        ["a"],
    )
    assert state.versions(EDS) == {"b": "1"}
    assert state.set_names(EDS, ["c", "b"]) == []
    assert state.set_names(CDS, ["x"]) == []  # wildcard types are not narrowed


def test_removed_names_stay_subscribed() -> None:
    state = DeltaState(node(), TYPES)
    state.connect()
    state.set_names(EDS, ["a"])
    state.ack(state.receive(delta(EDS, "n1", removed=["a"])))
    assert state.names(EDS) == {"a"}
    [_, eds, _] = state.connect()
    assert list(eds.resource_names_subscribe) == ["a"]


def test_reconnect_sends_initial_resource_versions() -> None:
    state = DeltaState(node(), TYPES)
    state.connect()
    state.ack(state.receive(delta(CDS, "n1", [("a", "7", eds_cluster("a"))])))
    state.set_names(EDS, ["a"])
    state.ack(state.receive(delta(EDS, "n2", [("a", "3", assignment("a"))])))
    requests = {r.type_url: r for r in state.connect()}
    assert set(requests) == {CDS, EDS, LDS}
    assert dict(requests[CDS].initial_resource_versions) == {"a": "7"}
    assert list(requests[CDS].resource_names_subscribe) == []
    assert dict(requests[EDS].initial_resource_versions) == {"a": "3"}
    assert list(requests[EDS].resource_names_subscribe) == ["a"]
    assert all(r.response_nonce == "" for r in requests.values())
    assert state.nonce(CDS) == ""


def test_unwatched_names_are_ignored_and_heartbeats_skipped() -> None:
    state = DeltaState(node(), TYPES)
    state.connect()
    state.set_names(EDS, ["a"])
    response = delta(EDS, "n1", [("a", "1", assignment("a")), ("z", "1", assignment("z"))])
    response.resources.add(name="a-heartbeat", version="1")
    assert list(state.receive(response).resources) == ["a"]


def test_unknown_type_and_contradictory_response_are_errors() -> None:
    state = DeltaState(node(), TYPES)
    state.connect()
    with pytest.raises(ConfigError, match="not a type this client subscribes to"):
        state.receive(delta("type.googleapis.com/foo.Bar", "n1"))
    with pytest.raises(ConfigError, match="Cluster a: removed_resources: also listed as added"):
        state.receive(delta(CDS, "n2", [("a", "1", eds_cluster("a"))], removed=["a"]))
    with pytest.raises(ConfigError, match="Cluster a: type_url"):
        state.receive(delta(CDS, "n3", [("a", "1", assignment("a"))]))
