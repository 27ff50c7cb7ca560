"""R8, resource warming: a changed cluster's unchanged endpoints are sent again after it.

Envoy warms an updated cluster until its ClusterLoadAssignment arrives; over
Delta it never asks for it again, since it is already subscribed, so without
R8 the cluster waits for Envoy's initial fetch timeout (15 s).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from api import contract
from tests.xds_server.factories import (
    Views,
    cluster,
    delta,
    model,
    parse_delta,
    parse_sotw,
    service,
    sotw,
)
from xds_server.model import Model
from xds_server.protocol.stream import DeltaStream, SotwStream

CDS, EDS = contract.TYPE_CLUSTER, contract.TYPE_ENDPOINT


def with_h2(name: str, ips: tuple[str, ...]) -> Model:
    """`a` and `b` as `model` makes them, but `name` speaks HTTP/2: its cluster changes."""
    services, slices = [], []
    for svc_name, addresses in (("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))):
        svc, slice_ = service(svc_name, ips=ips if svc_name == name else addresses)
        if svc_name == name:
            port = dataclasses.replace(svc.ports[0], app_protocol="kubernetes.io/h2c")
            svc = dataclasses.replace(svc, ports=(port,))
        services.append(svc)
        slices.append(slice_)
    return Model.build(services, slices)


def synced_sotw(views: Views) -> tuple[SotwStream, str, str]:
    stream = SotwStream(views)
    [cds] = stream.receive(sotw(CDS)).responses
    stream.receive(sotw(CDS, nonce=cds.nonce, version=cds.version))
    names = (cluster("a"), cluster("b"))
    [eds] = stream.receive(sotw(EDS, names=names)).responses
    stream.receive(sotw(EDS, names=names, nonce=eds.nonce, version=eds.version))
    return stream, cds.nonce, eds.nonce


def test_sotw_resends_the_endpoints_of_a_changed_cluster_right_after_it() -> None:
    views = Views(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    stream, _, _ = synced_sotw(views)
    views.publish(with_h2("a", ("127.0.0.11",)))
    cds, eds = stream.refresh()
    assert (cds.type_url, eds.type_url) == (CDS, EDS)
    assert eds.names == (cluster("a"),), "b's cluster did not change: its endpoints stay"
    assert len(parse_sotw(eds.payload).resources) == 1


def test_endpoints_alone_changing_do_not_resend_clusters_and_new_clusters_add_nothing() -> None:
    views = Views(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    stream, _, _ = synced_sotw(views)
    views.publish(model(("a", ("127.0.0.13",)), ("b", ("127.0.0.12",))))
    [eds] = stream.refresh()
    assert eds.type_url == EDS and eds.names == (cluster("a"),)
    stream.receive(sotw(EDS, (cluster("a"), cluster("b")), nonce=eds.nonce, version=eds.version))
    views.publish(model(("a", ("127.0.0.13",)), ("b", ("127.0.0.12",)), ("c", ("127.0.0.14",))))
    [cds] = stream.refresh()
    assert cds.type_url == CDS, "c's endpoints go out when the proxy subscribes to them"


def delta_names(response: Any) -> list[str]:
    return [r.name for r in parse_delta(response.payload).resources]


def test_delta_resends_the_endpoints_of_a_changed_cluster_right_after_it() -> None:
    views = Views(model(("a", ("127.0.0.11",)), ("b", ("127.0.0.12",))))
    stream = DeltaStream(views)
    [cds] = stream.receive(delta(CDS)).responses
    stream.receive(delta(CDS, nonce=cds.nonce))
    [eds] = stream.receive(delta(EDS, subscribe=(cluster("a"), cluster("b")))).responses
    stream.receive(delta(EDS, nonce=eds.nonce))
    views.publish(with_h2("b", ("127.0.0.12",)))
    cds, eds = stream.refresh()
    assert delta_names(cds) == [cluster("b")]
    assert delta_names(eds) == [cluster("b")]


def test_delta_subscribing_again_to_a_held_name_sends_it_again() -> None:
    views = Views(model(("a", ("127.0.0.11",))))
    stream = DeltaStream(views)
    [eds] = stream.receive(delta(EDS, subscribe=(cluster("a"),))).responses
    stream.receive(delta(EDS, nonce=eds.nonce))
    assert stream.refresh() == []
    [again] = stream.receive(delta(EDS, subscribe=(cluster("a"),))).responses
    assert delta_names(again) == [cluster("a")]
