from __future__ import annotations

import pytest
from envoy.service.discovery.v3 import discovery_pb2

from pydp.errors import ConfigError
from pydp.xds.sotw import SotwState
from tests.pydp.xds.builders import (
    CDS,
    EDS,
    LDS,
    RDS,
    assignment,
    eds_cluster,
    node,
    packed,
    route,
    sotw,
)

TYPES = (CDS, EDS, LDS, RDS)


def test_connect_subscribes_to_wildcard_types_only_with_node_once() -> None:
    state = SotwState(node(), TYPES)
    requests = state.connect()
    assert [r.type_url for r in requests] == [CDS, LDS]
    assert all(list(r.resource_names) == [] for r in requests)
    assert all(r.version_info == "" and r.response_nonce == "" for r in requests)
    assert requests[0].node.id == "app-1.default"
    assert not requests[1].HasField("node")


def test_node_in_every_request_unless_first_message_only() -> None:
    state = SotwState(node(), TYPES, node_on_first_message_only=False)
    assert all(r.node.id == "app-1.default" for r in state.connect())


def test_ack_echoes_version_and_nonce() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    update = state.receive(sotw(CDS, "v1", "n1", [eds_cluster("a"), eds_cluster("b")]))
    assert sorted(update.resources) == ["a", "b"]
    assert update.complete
    assert update.resources["a"].version == "v1"
    [ack] = state.ack(update)
    assert (ack.type_url, ack.version_info, ack.response_nonce) == (CDS, "v1", "n1")
    assert not ack.HasField("error_detail")
    assert state.version(CDS) == "v1"


def test_nack_keeps_last_accepted_version_and_carries_detail() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    state.ack(state.receive(sotw(CDS, "v1", "n1", [eds_cluster("a")])))
    state.receive(sotw(CDS, "v2", "n2", [eds_cluster("a")]))
    [nack] = state.nack(CDS, "n2", "Cluster a: lb_policy: MAGLEV is not supported")
    assert (nack.version_info, nack.response_nonce) == ("v1", "n2")
    assert nack.error_detail.code == 13
    assert nack.error_detail.message == "Cluster a: lb_policy: MAGLEV is not supported"
    assert state.version(CDS) == "v1"


def test_long_nack_messages_are_truncated_like_envoys() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    state.receive(sotw(CDS, "v1", "n1", []))
    [nack] = state.nack(CDS, "n1", "x" * 10_000)
    assert nack.error_detail.message == "x" * 4096 + "...(truncated)"


def test_ack_of_a_stale_nonce_sends_nothing() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    old = state.receive(sotw(CDS, "v1", "n1", [eds_cluster("a")]))
    new = state.receive(sotw(CDS, "v2", "n2", [eds_cluster("b")]))
    assert state.ack(old) == []
    assert state.nack(CDS, "n1", "late") == []
    assert state.version(CDS) == ""
    [ack] = state.ack(new)
    assert (ack.version_info, ack.response_nonce) == ("v2", "n2")


def test_a_new_stream_forgets_nonces_so_old_updates_are_stale() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    update = state.receive(sotw(CDS, "v1", "n1", [eds_cluster("a")]))
    state.connect()
    assert state.ack(update) == []
    assert state.nonce(CDS) == ""


def test_subscription_changes_carry_latest_nonce_and_accepted_version() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    assert state.set_names(EDS, []) == []
    [request] = state.set_names(EDS, ["b", "a"])
    assert (request.type_url, list(request.resource_names)) == (EDS, ["a", "b"])
    assert state.set_names(EDS, ["a", "b"]) == []
    state.ack(state.receive(sotw(EDS, "e1", "en1", [assignment("a"), assignment("b")])))
    [request] = state.set_names(EDS, ["a"])
    assert (list(request.resource_names), request.version_info, request.response_nonce) == (
        ["a"],
        "e1",
        "en1",
    )
    [request] = state.set_names(EDS, [])
    assert list(request.resource_names) == []  # Envoy unsubscribes by sending an empty list


def test_reconnect_resends_subscriptions_with_accepted_versions() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    state.ack(state.receive(sotw(CDS, "c7", "n1", [eds_cluster("a")])))
    state.set_names(EDS, ["a"])
    state.ack(state.receive(sotw(EDS, "e3", "n2", [assignment("a")])))
    requests = {r.type_url: r for r in state.connect()}
    assert set(requests) == {CDS, EDS, LDS}
    assert (requests[CDS].version_info, requests[CDS].response_nonce) == ("c7", "")
    assert (requests[EDS].version_info, list(requests[EDS].resource_names)) == ("e3", ["a"])
    assert requests[LDS].version_info == ""
    assert sum(r.HasField("node") for r in requests.values()) == 1


def test_resources_not_subscribed_to_are_ignored() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    state.set_names(RDS, ["outbound"])
    update = state.receive(sotw(RDS, "r1", "n1", [route("outbound"), route("other")]))
    assert list(update.resources) == ["outbound"]
    assert not update.complete


def test_unknown_type_url_is_rejected_and_nacked() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    response = sotw("type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig", "1", "n", [])
    with pytest.raises(ConfigError, match="not a type this client subscribes to"):
        state.receive(response)
    [nack] = state.nack(response.type_url, "n", "unknown type")
    assert nack.response_nonce == "n" and nack.error_detail.code == 13


def test_resource_of_the_wrong_type_is_rejected() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    with pytest.raises(ConfigError, match=r"Cluster resources\[0\]: type_url: .*RouteConfig"):
        state.receive(sotw(CDS, "1", "n", [route("r")]))
    assert state.nonce(CDS) == "n"


def test_undecodable_resource_is_rejected() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    response = discovery_pb2.DiscoveryResponse(type_url=CDS, version_info="1", nonce="n")
    response.resources.add(type_url=CDS, value=b"\xff\xff\xff")
    with pytest.raises(ConfigError, match=r"Cluster resources\[0\]: value: does not decode"):
        state.receive(response)


def test_duplicate_names_are_rejected() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    with pytest.raises(ConfigError, match="Cluster a: name: appears twice"):
        state.receive(sotw(CDS, "1", "n", [eds_cluster("a"), eds_cluster("a")]))


def test_resource_wrapper_is_unwrapped_and_heartbeats_skipped() -> None:
    state = SotwState(node(), TYPES)
    state.connect()
    response = sotw(CDS, "1", "n", [])
    response.resources.append(
        packed(discovery_pb2.Resource(name="a", resource=packed(eds_cluster("a"))))
    )
    response.resources.append(packed(discovery_pb2.Resource(name="b")))
    assert list(state.receive(response).resources) == ["a"]
