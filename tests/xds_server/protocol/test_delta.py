"""The Delta (incremental) stream, fed in memory (no sockets)."""

from __future__ import annotations

from api import contract
from tests.xds_server.factories import Views, cluster, delta, model, parse_delta
from xds_server.protocol.stream import DeltaStream

CDS, EDS = contract.TYPE_CLUSTER, contract.TYPE_ENDPOINT
INBOUND = contract.inbound_cluster_name(contract.APP_PORT)


def test_wildcard_then_only_changes_and_removals() -> None:
    views = Views(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    stream = DeltaStream(views)
    [first] = stream.receive(delta(CDS)).responses
    parsed = parse_delta(first.payload)
    assert {r.name for r in parsed.resources} == {cluster("a"), cluster("b"), INBOUND}
    assert list(parsed.removed_resources) == []
    stream.receive(delta(CDS, nonce=first.nonce))
    [eds] = stream.receive(delta(EDS, subscribe=(cluster("a"), cluster("b")))).responses
    assert {r.name for r in parse_delta(eds.payload).resources} == {cluster("a"), cluster("b")}
    stream.receive(delta(EDS, nonce=eds.nonce))

    views.publish(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.13",))))
    [change] = stream.refresh()
    parsed = parse_delta(change.payload)
    assert change.type_url == EDS
    assert [r.name for r in parsed.resources] == [cluster("b")]
    assert list(parsed.removed_resources) == []


def test_removal_waits_for_the_routes_then_is_sent() -> None:
    views = Views(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    stream = DeltaStream(views)
    for type_url in (CDS, contract.TYPE_LISTENER):
        [r] = stream.receive(delta(type_url)).responses
        stream.receive(delta(type_url, nonce=r.nonce))
    routes = (contract.ROUTE_OUTBOUND, contract.ROUTE_INBOUND)
    [rds] = stream.receive(delta(contract.TYPE_ROUTE, subscribe=routes)).responses
    stream.receive(delta(contract.TYPE_ROUTE, nonce=rds.nonce))
    views.publish(model(("a", ("127.0.0.11",))))
    [route_push] = stream.refresh()
    assert route_push.type_url == contract.TYPE_ROUTE
    [cds] = stream.receive(delta(contract.TYPE_ROUTE, nonce=route_push.nonce)).responses
    parsed = parse_delta(cds.payload)
    assert list(parsed.removed_resources) == [cluster("b")]
    assert list(parsed.resources) == []


def test_initial_versions_skip_what_the_proxy_already_has() -> None:
    views = Views(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    first = DeltaStream(views)
    [r] = first.receive(delta(CDS)).responses
    known = {x.name: x.version for x in parse_delta(r.payload).resources}
    # A reconnect that knows every cluster, one of them at an old version, and one that is gone.
    known[cluster("a")] = "old"
    known["outbound|80||gone.default.svc.cluster.local"] = "v1"
    again = DeltaStream(views)
    [r2] = again.receive(delta(CDS, initial=known)).responses
    parsed = parse_delta(r2.payload)
    assert [x.name for x in parsed.resources] == [cluster("a")]
    assert list(parsed.removed_resources) == ["outbound|80||gone.default.svc.cluster.local"]


def test_unsubscribe_forgets_and_nack_is_recorded() -> None:
    views = Views(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    stream = DeltaStream(views)
    [eds] = stream.receive(delta(EDS, subscribe=(cluster("a"), cluster("b")))).responses
    step = stream.receive(delta(EDS, nonce=eds.nonce, error="cannot"))
    assert [n.message for _, n in step.nacks] == ["cannot"]
    assert stream.receive(delta(EDS, unsubscribe=(cluster("b"),))).responses == []
    assert set(stream.states[EDS].sent) == {cluster("a")}
    views.publish(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.19",))))
    assert stream.refresh() == [], "b's change does not concern a proxy that left it"
