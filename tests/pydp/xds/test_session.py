from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pydp.errors import ConfigError
from pydp.xds.session import AdsSession
from pydp.xds.store import ConfigStore
from tests.pydp.xds.builders import (
    CDS,
    EDS,
    LDS,
    RDS,
    assignment,
    delta,
    eds_cluster,
    listener,
    node,
    route,
    sotw,
)


def strict_clusters(resources: Mapping[str, Any]) -> Mapping[str, Any]:
    """A fake cluster compiler: connect_timeout must not exceed 10 s."""
    out = {}
    for name, cluster in resources.items():
        if cluster.connect_timeout.seconds > 10:
            raise ConfigError(f"Cluster {name}", "connect_timeout", "must be at most 10s")
        out[name] = ("compiled", name)
    return out


def session(*, delta_: bool = False) -> AdsSession:
    store = ConfigStore({CDS: strict_clusters})
    return AdsSession(node(), store, delta=delta_, node_on_first_message_only=True)


def slow(name: str) -> Any:
    cluster = eds_cluster(name)
    cluster.connect_timeout.seconds = 60
    return cluster


def test_sotw_cluster_update_is_acked_then_endpoints_requested() -> None:
    ads = session()
    ads.connect()
    ack, eds = ads.handle(sotw(CDS, "1", "n1", [eds_cluster("a"), eds_cluster("b", "b-eds")]))
    assert (ack.type_url, ack.version_info, ack.response_nonce) == (CDS, "1", "n1")
    assert (eds.type_url, list(eds.resource_names)) == (EDS, ["a", "b-eds"])
    [ack] = ads.handle(sotw(EDS, "e1", "n2", [assignment("a"), assignment("b-eds")]))
    assert (ack.type_url, ack.version_info) == (EDS, "e1")
    assert ads.store.snapshot.clusters["a"] == ("compiled", "a")


def test_sotw_rejected_update_is_nacked_and_last_good_config_stays() -> None:
    ads = session()
    ads.connect()
    ads.handle(sotw(CDS, "1", "n1", [eds_cluster("a")]))
    ads.handle(sotw(EDS, "e1", "n2", [assignment("a")]))
    before = ads.store.snapshot
    [nack] = ads.handle(sotw(CDS, "2", "n3", [eds_cluster("a"), slow("b")]))
    assert (nack.version_info, nack.response_nonce) == ("1", "n3")
    assert nack.error_detail.message == "Cluster b: connect_timeout: must be at most 10s"
    assert ads.store.snapshot is before
    assert ads.nacks == 1
    last = ads.store.last_nack(CDS)
    assert last is not None and last.version == "2"
    ack, _ = ads.handle(sotw(CDS, "3", "n4", [eds_cluster("a"), eds_cluster("c")]))
    assert (ack.version_info, ack.HasField("error_detail")) == ("3", False)


def test_listener_changes_move_the_route_subscription() -> None:
    ads = session()
    ads.connect()
    _, rds = ads.handle(
        sotw(LDS, "1", "n1", [listener("in", "inbound"), listener("out", "outbound")])
    )
    assert (rds.type_url, list(rds.resource_names)) == (RDS, ["inbound", "outbound"])
    ads.handle(sotw(RDS, "r1", "n2", [route("inbound"), route("outbound")]))
    _, rds = ads.handle(sotw(LDS, "2", "n3", [listener("out", "outbound")]))
    assert (list(rds.resource_names), rds.version_info, rds.response_nonce) == (
        ["outbound"],
        "r1",
        "n2",
    )
    assert set(ads.store.snapshot.routes) == {"outbound"}


def test_unknown_type_url_is_nacked() -> None:
    ads = session()
    ads.connect()
    [nack] = ads.handle(sotw("type.googleapis.com/envoy.config.core.v3.Foo", "1", "n1", []))
    assert nack.response_nonce == "n1"
    assert "not a type this client subscribes to" in nack.error_detail.message


@pytest.mark.parametrize("delta_", [False, True])
def test_reconnect_resumes_with_what_was_accepted(delta_: bool) -> None:
    ads = session(delta_=delta_)
    ads.connect()
    if delta_:
        ads.handle(delta(CDS, "n1", [("a", "v1", eds_cluster("a"))]))
        ads.handle(delta(EDS, "n2", [("a", "v9", assignment("a"))]))
    else:
        ads.handle(sotw(CDS, "v1", "n1", [eds_cluster("a")]))
        ads.handle(sotw(EDS, "v9", "n2", [assignment("a")]))
    requests = {r.type_url: r for r in ads.connect()}
    assert set(requests) == {CDS, EDS, LDS}
    if delta_:
        assert dict(requests[EDS].initial_resource_versions) == {"a": "v9"}
        assert list(requests[EDS].resource_names_subscribe) == ["a"]
    else:
        assert (requests[EDS].version_info, list(requests[EDS].resource_names)) == ("v9", ["a"])
    assert "a" in ads.store.snapshot.clusters


def test_delta_nack_and_subscription_changes() -> None:
    ads = session(delta_=True)
    ads.connect()
    ack, eds = ads.handle(delta(CDS, "n1", [("a", "1", eds_cluster("a"))]))
    assert (ack.response_nonce, list(eds.resource_names_subscribe)) == ("n1", ["a"])
    [nack] = ads.handle(delta(CDS, "n2", [("b", "1", slow("b"))]))
    assert nack.response_nonce == "n2"
    assert nack.error_detail.message == "Cluster b: connect_timeout: must be at most 10s"
    ack, eds = ads.handle(delta(CDS, "n3", removed=["a"]))
    assert list(eds.resource_names_unsubscribe) == ["a"]
    assert ads.store.snapshot.clusters == {}
