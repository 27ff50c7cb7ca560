"""The State of the World stream, fed in memory (no sockets)."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2

from api import contract
from tests.xds_server.factories import (
    Views,
    cluster,
    model,
    parse_sotw,
    sotw,
)
from xds_server.protocol.state import Phase, ProtocolError
from xds_server.protocol.stream import SotwStream

CDS, EDS, LDS, RDS = (
    contract.TYPE_CLUSTER,
    contract.TYPE_ENDPOINT,
    contract.TYPE_LISTENER,
    contract.TYPE_ROUTE,
)
INBOUND = contract.inbound_cluster_name(contract.APP_PORT)


def cluster_names(payload: bytes) -> set[str]:
    out = set()
    for r in parse_sotw(payload).resources:
        c = cluster_pb2.Cluster()
        r.Unpack(c)
        out.add(c.name)
    return out


def test_wildcard_cds_gets_every_cluster_then_ack_is_quiet() -> None:
    views = Views(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    stream = SotwStream(views)
    step = stream.receive(sotw(CDS))
    [response] = step.responses
    assert cluster_names(response.payload) == {cluster("a"), cluster("b"), INBOUND}
    parsed = parse_sotw(response.payload)
    assert parsed.version_info == response.version and parsed.nonce == response.nonce
    ack = stream.receive(sotw(CDS, nonce=response.nonce, version=response.version))
    assert ack.responses == []
    assert [a.version for a in ack.acks] == [response.version]
    assert stream.states[CDS].acked_version == response.version


def test_empty_world_still_answers_the_first_wildcard_request() -> None:
    stream = SotwStream(Views(model()))
    [response] = stream.receive(sotw(CDS)).responses
    assert cluster_names(response.payload) == {INBOUND}
    [lds] = stream.receive(sotw(LDS)).responses
    assert len(parse_sotw(lds.payload).resources) == 2


def test_named_types_answer_only_what_exists_and_was_asked() -> None:
    views = Views(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    stream = SotwStream(views)
    assert stream.receive(sotw(EDS, names=("no-such-cluster",))).responses == []
    [response] = stream.receive(sotw(EDS, names=(cluster("a"),), nonce="", version="")).responses
    assert [r.type_url for r in parse_sotw(response.payload).resources] == [EDS]
    assert response.names == (cluster("a"),)


def test_stale_nonce_is_ignored() -> None:
    views = Views(model(("a", ("127.0.0.11",))))
    stream = SotwStream(views)
    [first] = stream.receive(sotw(CDS)).responses
    step = stream.receive(sotw(CDS, nonce="not-" + first.nonce, version="x"))
    assert step.responses == [] and step.acks == [] and step.nacks == []
    assert stream.states[CDS].phase is Phase.IN_FLIGHT


def test_nack_keeps_last_good_version_and_is_not_resent_in_a_loop() -> None:
    views = Views(model(("a", ("127.0.0.11",))))
    stream = SotwStream(views)
    [first] = stream.receive(sotw(CDS)).responses
    stream.receive(sotw(CDS, nonce=first.nonce, version=first.version))
    views.publish(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    [second] = stream.refresh()
    step = stream.receive(sotw(CDS, nonce=second.nonce, version=first.version, error="bad"))
    assert step.responses == []
    [(type_url, nack)] = step.nacks
    assert type_url == CDS and nack.message == "bad"
    assert nack.version == first.version and nack.rejected_version == second.version
    # The same content is not sent again, however often it is republished ...
    views.publish(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    assert stream.refresh() == []
    # ... but a real change is.
    views.publish(model(("a", ("127.0.0.11",))))
    [third] = stream.refresh()
    assert cluster_names(third.payload) == {cluster("a"), INBOUND}
    stream.receive(sotw(CDS, nonce=third.nonce, version=third.version))
    assert stream.states[CDS].nack is None


def test_one_response_in_flight_per_type() -> None:
    views = Views(model(("a", ("127.0.0.11",))))
    stream = SotwStream(views)
    [first] = stream.receive(sotw(CDS)).responses
    views.publish(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    assert stream.refresh() == []  # still waiting for the ACK of the first
    [second] = stream.receive(sotw(CDS, nonce=first.nonce, version=first.version)).responses
    assert cluster("b") in cluster_names(second.payload)


def test_unchanged_content_is_not_pushed() -> None:
    views = Views(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    stream = SotwStream(views)
    [cds] = stream.receive(sotw(CDS)).responses
    stream.receive(sotw(CDS, nonce=cds.nonce, version=cds.version))
    [eds] = stream.receive(sotw(EDS, names=(cluster("a"),))).responses
    stream.receive(sotw(EDS, names=(cluster("a"),), nonce=eds.nonce, version=eds.version))
    # An endpoint change in b touches neither CDS nor a's endpoints.
    views.publish(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.13",))))
    assert stream.refresh() == []
    views.publish(model(("a", ("127.0.0.14",)), ("b", ("127.0.0.13",))))
    [push] = stream.refresh()
    assert push.type_url == EDS


def test_removed_cluster_outlives_the_routes_that_name_it() -> None:
    views = Views(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    stream = SotwStream(views)
    for type_url in (CDS, LDS):
        [r] = stream.receive(sotw(type_url)).responses
        stream.receive(sotw(type_url, nonce=r.nonce, version=r.version))
    [rds] = stream.receive(
        sotw(RDS, names=(contract.ROUTE_OUTBOUND, contract.ROUTE_INBOUND))
    ).responses
    stream.receive(
        sotw(
            RDS,
            names=(contract.ROUTE_OUTBOUND, contract.ROUTE_INBOUND),
            nonce=rds.nonce,
            version=rds.version,
        )
    )
    views.publish(model(("a", ("127.0.0.11",))))
    pushes = {r.type_url: r for r in stream.refresh()}
    assert set(pushes) == {RDS}, "CDS keeps b while the held routes still name it"
    assert cluster("b") in {*stream.states[CDS].sent}
    [cds] = stream.receive(
        sotw(
            RDS,
            names=(contract.ROUTE_OUTBOUND, contract.ROUTE_INBOUND),
            nonce=pushes[RDS].nonce,
            version=pushes[RDS].version,
        )
    ).responses
    assert cds.type_url == CDS
    assert cluster_names(cds.payload) == {cluster("a"), INBOUND}


def test_responses_follow_push_order() -> None:
    views = Views(model(("a", ("127.0.0.11",))))
    stream = SotwStream(views)
    for type_url in (LDS, CDS):
        [r] = stream.receive(sotw(type_url)).responses
        stream.receive(sotw(type_url, nonce=r.nonce, version=r.version))
    views.publish(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    assert [r.type_url for r in stream.refresh()] == [CDS]


def test_first_request_must_name_its_node() -> None:
    stream = SotwStream(Views(model()))
    with pytest.raises(ProtocolError, match="node id"):
        stream.receive(sotw(CDS, with_node=False))


def test_unknown_type_url_is_a_protocol_error() -> None:
    stream = SotwStream(Views(model()))
    with pytest.raises(ProtocolError, match="unknown type URL"):
        stream.receive(sotw("type.googleapis.com/nope"))
